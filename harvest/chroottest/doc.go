// Package chroottest starts private, real Cyrus IMAP and Courier-IMAP
// servers for integration tests of the harvester, as dovecottest does for
// Dovecot: StartCyrus(t, opts) and StartCourier(t, opts) return a Server on
// a free port of 127.0.0.1 with generated users, stopped by t.Cleanup, and
// helpers that change the mail the way another client would (Append,
// SetFlags, Expunge, RenewUIDValidity, LoadMaildir, Stop/Restart).
//
// The Debian packages of both conflict with dovecot-imapd and with each
// other (Conflicts: imap-server), so each server lives in a debootstrap
// root of its own, made by scripts/server-roots.sh under
// $MAILVAULT_SERVER_ROOTS (default /var/cache/mailvault/roots/{cyrus,courier}),
// and runs chrooted into it (Cyrus 3.6.1, Courier-IMAP 5.0.13 with
// courier-authlib 0.71.4, Debian bookworm). Without a complete root, or not as
// root, a test skips, or fails when CI=true so that CI cannot go green by
// skipping.
//
// # Invariants
//
//   - One server per root at a time: the packages keep state in fixed
//     places of the root (/etc/imapd.conf, /etc/cyrus.conf, /dev/log,
//     /etc/courier/userdb, /run/courier/authdaemon). Start takes a flock on
//     the root for the server's life, so servers of one kind run one after
//     the other, across test binaries too; a Cyrus and a Courier run side by
//     side. The flock dies with the process: a killed test leaves no lock.
//   - Owned and gone on Stop: the server's leader runs in the foreground in
//     its own process group with Pdeathsig. Stop signals the group, then
//     kills whatever still has the root as its root directory (Cyrus's
//     idled daemonises out of the group) and returns only when nothing is
//     left. Start does the same first, for what a killed test left behind.
//   - Private state: everything an instance writes is under /srv/mv in the
//     root (Server.Dir on the host), made fresh by Start and removed by the
//     cleanup. No mount is made: neither server needs /proc for what the
//     tests do, so there is nothing to unmount after a failed test.
//   - Stop/Restart keep the port, users and mail.
//
// # Cyrus
//
//   - /etc/imapd.conf points configdirectory, the partition, sockets and
//     the sasldb at /srv/mv; admins: cyrus; SASL auxprop sasldb with PLAIN
//     and LOGIN; allowplaintext. Users are saslpasswd2 entries; the admin
//     creates user.NAME over IMAP. Folders are INBOX.a (separator ".";
//     Server.Mailbox maps a folder name).
//   - /etc/cyrus.conf: START recover and idled, SERVICES imap on the port,
//     EVENTS checkpoint. Without idled Cyrus answers IDLE but only looks for
//     changes every imapidlepoll (60 s); with it an APPEND is announced at
//     once.
//   - Cyrus logs only to syslog: Start listens on the root's /dev/log and
//     writes the lines to Server.LogFile (shown when a test fails).
//   - Cyrus refuses an APPEND with a bare LF ("NO Message contains bare
//     newlines"): every helper appends with LF turned into CRLF, and
//     LoadMaildir APPENDs the files (four connections) rather than copying
//     them: Cyrus keeps its own index. UIDs then follow the order the
//     appends finish in.
//   - UIDVALIDITY cannot be set: RenewUIDValidity deletes and re-creates the
//     mailbox and appends its messages back (new epoch, UIDs from 1). A new
//     mailbox gets the user's next UIDVALIDITY (old + 1 here).
//
// # Courier
//
//   - authdaemond with authuserdb only (authdaemonrc is rewritten); users
//     in /etc/courier/userdb with an MD5 imappw (userdbpw -md5), made into
//     userdb.dat by makeuserdb. The Maildirs belong to nobody.
//   - couriertcpd runs in the foreground (the init script's courierlogger
//     would daemonise it) with MAXPERIP 200 (default 20) and the package's
//     /etc/courier/imapd environment: IDLE is offered, no CONDSTORE, no
//     ESEARCH, no LIST-STATUS.
//   - Without FAM/Gamin, Courier's IDLE does not watch the Maildir: it
//     looks for new mail every IMAP_IDLE_TIMEOUT (60 s in the package's
//     /etc/courier/imapd), so an APPEND is announced a minute late; the
//     harvester notices and checks itself (harvest/idlecheck.go,
//     docs/servers.md).
//   - A folder that exists makes CREATE answer a bare NO ("Cannot create
//     this folder."); the helpers check with STATUS.
//   - LoadMaildir copies the files into cur/ (tmp/, then rename) and opens
//     the folder so Courier assigns UIDs; Courier stores LF and serves
//     BODY[] with CRLF, as Dovecot does.
//   - RenewUIDValidity rewrites the first line of courierimapuiddb
//     ("1 UIDVALIDITY NEXTUID") with old + 1000, keeping every UID.
package chroottest
