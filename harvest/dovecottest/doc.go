// Package dovecottest starts private, real Dovecot IMAP servers for
// integration tests of the harvester: Start(t, opts) returns a Server on
// 127.0.0.1 with its own users and Maildirs, stopped by t.Cleanup; helpers
// change the mail behind the harvester's back the way another client, an
// admin or a migration would (Append, SetFlags, Expunge,
// ChangeUIDValidity, LoadMaildir, Stop/Restart).
//
// It needs the Debian package dovecot-imapd (Dovecot 2.3; checked with
// 2.3.19.1). Without it a test skips, or fails when CI=true so that CI
// cannot go green by skipping.
//
// # Invariants
//
//   - Private: nothing is read from /etc/dovecot and nothing is written
//     outside t.TempDir() — config, log, base_dir (sockets, pid file),
//     state_dir, instance_name, passwd-file, homes. Any number of servers
//     run side by side and next to a system Dovecot, as root or as an
//     ordinary user.
//   - Owned: the master runs in the foreground (dovecot -F) as a child of
//     the test in its own process group. Stop and the cleanup return only
//     when every process of the group is gone; on Linux the master gets
//     SIGTERM if the test binary dies (Pdeathsig), so a test killed by
//     -timeout leaves no server behind.
//   - Ready means ready: Start returns after a greeting carrying
//     CAPABILITY, i.e. once logins work.
//   - Stop/Restart keep the ports, users and mail: a harvester sees an
//     outage, then the same server again.
//
// # Layout of Server.Dir
//
//	dovecot.conf    the generated config (Server.ConfigFile; doveadm -c)
//	dovecot.log     log_path (Server.LogFile), tail printed when a test fails
//	dovecot.stderr  the master's stdio: errors from before logging started
//	passwd          passwd-file, "user:{PLAIN}password"
//	run/            base_dir (under /tmp/dovecottest-* when Dir is too long)
//	state/          state_dir
//	home/USER/Maildir/  mail, Maildir++: folder "a/b" is .a.b/
//	tls/            ca.pem, server.pem, server.key with Options.TLS
//
// # Configuration, and the traps behind it
//
//   - Dovecot runs as root in CI but refuses to run login or mail processes
//     as root: default_login_user = dovenull, default_internal_user =
//     dovecot (both created by dovecot-core), and the mail belongs to
//     nobody:nogroup (userdb static uid/gid; first_valid_uid/last_valid_uid
//     pinned to it, as Dovecot rejects uids below 500 by default). testing's
//     temporary directories are 0700, so Start adds o+x on them up to
//     os.TempDir(). As an ordinary user everything runs as that user
//     (default_internal_group too, chroot off).
//   - Unix socket paths are limited to 107 bytes: with a long test name,
//     base_dir moves to a short directory under /tmp.
//   - Listeners: imap on a free port of 127.0.0.1, ssl = no and
//     disable_plaintext_auth = no; with Options.TLS also imaps on another
//     port (and STARTTLS on imap), with an ECDSA certificate for 127.0.0.1
//     and localhost signed by a CA made for this server (Server.CAFile,
//     Server.CAPool, Server.TLSConfig). Ports are picked by binding :0; a
//     port taken in between makes Start retry with new ones.
//   - passdb passwd-file with {PLAIN} passwords, userdb static, no auth
//     cache. Dovecot re-reads the passwd-file when it changes, but checks at
//     most once per second: AddUser waits until doveadm sees the user.
//   - The auth penalty is off (the anvil-auth-penalty socket is mode 0):
//     otherwise one wrong-password test delays every later login from
//     127.0.0.1 by 2..15 s. auth_failure_delay = 0, yet a failed login
//     still takes ~0.5 s (Dovecot flushes failures on a 500 ms timer) and
//     answers NO [AUTHENTICATIONFAILED].
//   - mail_max_userip_connections = Options.MaxUserIPConnections (50; the
//     Dovecot default is 10). Over the limit, LOGIN answers NO [LIMIT].
//   - protocols = imap, no plugins (no FTS: SEARCH is Dovecot's own
//     substring search, the reference behaviour), mail_fsync = never.
//   - IDLE is on (Dovecot always offers it). New mail reaches an idling
//     client through inotify after Dovecot's 0.5 s notify delay (measured
//     ~0.6 s after APPEND); mailbox_idle_check_interval = 1 secs is the
//     fallback where inotify does not work. imap_idle_notify_interval is
//     left at 2 mins: it only paces the "* OK Still here" keepalives.
//   - The greeting: a connection accepted before the auth process is up
//     first gets "* OK Waiting for authentication process to respond..";
//     Start waits for the real "* OK [CAPABILITY ...] ready." instead.
//   - Stopping: SIGTERM to the master alone (what "doveadm stop" does)
//     takes a second and leaves an imap process with a client running for
//     ~10 s more. Stop sends SIGTERM to the whole process group, so every
//     session gets "* BYE Server shutting down." and is gone in
//     milliseconds; the master, though, sometimes sits in its shutdown wait
//     for up to 6 s, so whatever is left after 0.5 s (master, anvil: no
//     mail state) gets SIGKILL. Stop takes 15..500 ms. Dovecot logs a
//     "Killed with signal 15" warning per process.
//
// # What BODY[] returns: LF and CRLF
//
// Dovecot stores messages with LF line ends (mail_save_crlf = no) and
// serves them with CRLF: in BODY[], every LF not preceded by CR becomes
// CRLF; CRLF, a bare CR, 8-bit bytes and a missing final newline come back
// as they were. This holds both for an APPENDed message (an LF-only APPEND
// comes back CRLF; a CRLF APPEND comes back byte-exact, though the file on
// disk has LF) and for a Maildir file copied in by LoadMaildir. RFC822.SIZE
// is the CRLF size. A harvester archiving BODY[] of an LF-only original
// therefore stores CRLF; compare with the original converted LF→CRLF.
//
// # Other behaviour worth knowing
//
//   - ChangeUIDValidity (doveadm mailbox update --uid-validity) keeps UIDs
//     and contents; a session with that mailbox selected is disconnected
//     when Dovecot notices.
//   - APPENDed mail lands in new/ with \Recent; in FLAGS from a read-only
//     session \Recent may appear (IMAP4rev1).
//   - LoadMaildir copies files (tmp/, then rename into cur/) and lets
//     Dovecot assign UIDs in file-name order; the file mtime becomes the
//     INTERNALDATE and ":2,S" in a name becomes \Seen. 2,500 corpus
//     messages load in ~1.1 s this way against ~7 s for one-by-one APPEND
//     (2 CPUs; BenchmarkLoad).
package dovecottest
