//go:build unix

package dovecottest

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"mailvault/harvest/imaptest"
)

// debianPackage is what to install when the Dovecot binaries are missing.
const debianPackage = "dovecot-imapd"

// Timeouts. Dovecot starts in well under a second on an idle machine; the
// generous limits are for a loaded CI runner with -race.
const (
	startTimeout = 20 * time.Second
	stopTimeout  = 10 * time.Second
	stopGrace    = 500 * time.Millisecond
)

// errBindRace marks a start that failed because another process took one of
// the ports between picking it and Dovecot binding it; Start retries.
var errBindRace = errors.New("listen port taken")

// Options configure a Server. A nil *Options is equivalent to a zero Options.
type Options struct {
	// Users are the accounts that exist from the start, all with Password.
	// Default: ["alice"]. More can be added with Server.AddUser.
	Users []string
	// Password is every user's password (stored {PLAIN} in the passwd-file).
	// Default: "secret".
	Password string
	// MaxUserIPConnections is Dovecot's mail_max_userip_connections: how many
	// IMAP sessions one user may have from one IP. Dovecot's default is 10;
	// the default here is 50 so parallel harvesters are not capped by
	// accident. Set it low to test the "too many connections" path.
	MaxUserIPConnections int
	// TLS adds an implicit-TLS (imaps) listener, Server.TLSAddr, with a
	// certificate for 127.0.0.1 and localhost signed by a CA generated for
	// this server (Server.CAFile, Server.CAPool). STARTTLS is then offered on
	// the plain listener too.
	TLS bool
	// OAuth2TokenInfoURL turns on XOAUTH2 and OAUTHBEARER logins, checked by
	// Dovecot's oauth2 passdb with a GET of this URL followed by the token
	// (for example "http://127.0.0.1:8080/tokeninfo?access_token="). The
	// answer must be 200 with a JSON object whose "username" is the user.
	OAuth2TokenInfoURL string
}

// Server is one private Dovecot instance. The exported fields are fixed by
// Start and stay valid across Stop and Restart (same ports, same mail).
//
// The helper methods are safe for concurrent use: each opens its own IMAP
// connection. Stop and Restart must not race with each other or with helpers
// that need the server up.
type Server struct {
	// Addr is the plain IMAP listener, "127.0.0.1:port". LOGIN works
	// without TLS (disable_plaintext_auth = no).
	Addr string
	// TLSAddr is the implicit-TLS listener, or "" without Options.TLS.
	TLSAddr string
	// CAFile is the PEM file of the CA that signed the server certificate,
	// or "" without Options.TLS.
	CAFile string
	// ConfigFile is the generated dovecot.conf; pass it to doveadm -c.
	ConfigFile string
	// Dir is the root of everything this server writes (a t.TempDir()).
	Dir string
	// LogFile is Dovecot's log (log_path): logins, errors, auth failures.
	LogFile string

	password string
	mailUID  int // owner of the mail files; imap runs as this user
	mailGID  int
	asRoot   bool
	started  bool // Start succeeded: the log is worth showing on failure
	doveadm  string
	dovecot  string
	caPool   *x509.CertPool

	mu    sync.Mutex // guards users and run
	users []string   // in passwd-file order
	run   *run       // the running master; nil when stopped
}

// Start starts a private Dovecot for t and registers a t.Cleanup that stops
// it and waits until every one of its processes is gone.
//
// Without the Dovecot binaries, Start skips the test, or fails it when the
// CI environment variable is true: CI must install dovecot-imapd.
func Start(t testing.TB, opts *Options) *Server {
	t.Helper()
	var o Options
	if opts != nil {
		o = *opts
	}
	if len(o.Users) == 0 {
		o.Users = []string{"alice"}
	}
	if o.Password == "" {
		o.Password = "secret"
	}
	if o.MaxUserIPConnections <= 0 {
		o.MaxUserIPConnections = 50
	}

	dovecot, doveadm, err := findBinaries()
	if err != nil {
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			t.Fatalf("dovecottest: %v: install the Debian package %s (apt-get install -y %s)", err, debianPackage, debianPackage)
		}
		t.Skipf("dovecottest: %v: install the Debian package %s to run this test", err, debianPackage)
	}

	s := &Server{
		Dir:      t.TempDir(),
		password: o.Password,
		dovecot:  dovecot,
		doveadm:  doveadm,
		asRoot:   os.Geteuid() == 0,
	}
	s.ConfigFile = filepath.Join(s.Dir, "dovecot.conf")
	s.LogFile = filepath.Join(s.Dir, "dovecot.log")

	// Registered before anything can start, so a half-started server is
	// stopped too. Runs before t.TempDir's removal (cleanups are LIFO).
	t.Cleanup(func() {
		if t.Failed() && s.started {
			t.Logf("dovecottest: %s", s.logTail(40))
		}
		if err := s.Stop(); err != nil {
			t.Errorf("dovecottest: %v", err)
		}
		if target, err := os.Readlink(filepath.Join(s.Dir, "run-link")); err == nil {
			os.RemoveAll(target)
		}
	})

	if err := s.setup(&o); err != nil {
		t.Fatalf("dovecottest: %v", err)
	}
	begin := time.Now()
	for attempt := 1; ; attempt++ {
		err = s.start()
		if err == nil {
			break
		}
		if !errors.Is(err, errBindRace) || attempt == 3 {
			t.Fatalf("dovecottest: %v", err)
		}
		// Someone took a port: pick new ones and try again.
		if err := s.pickPorts(o.TLS); err != nil {
			t.Fatalf("dovecottest: %v", err)
		}
		if err := s.writeConfig(&o); err != nil {
			t.Fatalf("dovecottest: %v", err)
		}
	}
	s.started = true
	t.Logf("dovecottest: dovecot up on %s (tls %q) in %v, dir %s", s.Addr, s.TLSAddr, time.Since(begin).Round(time.Millisecond), s.Dir)
	return s
}

// Address returns Addr, for code shared with other test servers
// (harvesttest.Server).
func (s *Server) Address() string { return s.Addr }

// Password returns user's password. Every user has the same one
// (Options.Password); the method exists so tests do not depend on that.
func (s *Server) Password(user string) string { return s.password }

// CAPool returns a pool holding the CA that signed the server certificate,
// for tls.Config.RootCAs; nil without Options.TLS.
func (s *Server) CAPool() *x509.CertPool { return s.caPool }

// TLSConfig returns a client TLS configuration trusting CAPool, with
// ServerName 127.0.0.1; nil without Options.TLS.
func (s *Server) TLSConfig() *tls.Config {
	if s.caPool == nil {
		return nil
	}
	return &tls.Config{RootCAs: s.caPool, ServerName: "127.0.0.1"}
}

// findBinaries locates dovecot and doveadm, and checks that the imap
// binary (dovecot-imapd, separate from dovecot-core) is installed too.
// /usr/sbin is searched explicitly: it is often not in a user's PATH.
func findBinaries() (dovecot, doveadm string, err error) {
	look := func(name string, dirs ...string) string {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
		for _, d := range dirs {
			if p := filepath.Join(d, name); isExecutable(p) {
				return p
			}
		}
		return ""
	}
	dovecot = look("dovecot", "/usr/sbin", "/usr/local/sbin")
	if dovecot == "" {
		return "", "", errors.New("dovecot binary not found")
	}
	doveadm = look("doveadm", "/usr/bin", "/usr/local/bin", filepath.Dir(dovecot))
	if doveadm == "" {
		return "", "", errors.New("doveadm binary not found")
	}
	prefix := filepath.Dir(filepath.Dir(dovecot)) // /usr/sbin/dovecot -> /usr
	for _, libexec := range []string{"lib/dovecot", "libexec/dovecot", "lib64/dovecot"} {
		if isExecutable(filepath.Join(prefix, libexec, "imap")) {
			return dovecot, doveadm, nil
		}
	}
	return "", "", fmt.Errorf("dovecot found at %s but not its imap binary", dovecot)
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// setup creates the directory tree, users, certificates and configuration.
func (s *Server) setup(o *Options) error {
	if err := s.pickMailUser(); err != nil {
		return err
	}
	if s.asRoot {
		// imap runs as the mail user and auth as dovecot: both must be able
		// to walk down to their files, but testing makes its directories 0700.
		if err := openTempAncestors(s.Dir); err != nil {
			return err
		}
	}
	for _, d := range []string{"home", "state"} {
		if err := os.Mkdir(filepath.Join(s.Dir, d), 0o755); err != nil {
			return fmt.Errorf("setup: %w", err)
		}
	}
	for _, u := range o.Users {
		if err := s.addUser(u); err != nil {
			return err
		}
	}
	if o.TLS {
		if err := s.writeCerts(); err != nil {
			return err
		}
	}
	if err := s.pickPorts(o.TLS); err != nil {
		return err
	}
	return s.writeConfig(o)
}

// pickMailUser chooses the uid/gid that owns the mail. As root, Dovecot
// refuses to run mail processes as root, so an existing unprivileged system
// user is borrowed: nobody (present everywhere), else dovecot (created by
// dovecot-core). As an ordinary user, it is that user.
func (s *Server) pickMailUser() error {
	if !s.asRoot {
		s.mailUID, s.mailGID = os.Geteuid(), os.Getegid()
		return nil
	}
	for _, name := range []string{"nobody", "dovecot"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.Atoi(u.Uid)
		gid, err2 := strconv.Atoi(u.Gid)
		if err1 == nil && err2 == nil && uid != 0 {
			s.mailUID, s.mailGID = uid, gid
			return nil
		}
	}
	return errors.New("setup: no unprivileged user (nobody, dovecot) to own the mail")
}

// openTempAncestors adds search (x) permission for others to dir and to its
// ancestors below os.TempDir() — the 0700 directories testing creates — so
// that Dovecot's unprivileged processes can reach the files below.
func openTempAncestors(dir string) error {
	tmp := filepath.Clean(os.TempDir())
	for d := filepath.Clean(dir); strings.HasPrefix(d, tmp+string(filepath.Separator)); d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("setup: %w", err)
		}
		if mode := fi.Mode().Perm(); mode&0o011 != 0o011 {
			if err := os.Chmod(d, mode|0o011); err != nil {
				return fmt.Errorf("setup: %w", err)
			}
		}
	}
	return nil
}

// pickPorts reserves free ports on 127.0.0.1. Both listeners are held open
// together so they cannot get the same port; the short window between
// closing them and Dovecot binding them is covered by Start's retry.
func (s *Server) pickPorts(withTLS bool) error {
	n := 1
	if withTLS {
		n = 2
	}
	var addrs []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("pick port: %w", err)
		}
		defer l.Close()
		addrs = append(addrs, l.Addr().String())
	}
	s.Addr = addrs[0]
	if withTLS {
		s.TLSAddr = addrs[1]
	}
	return nil
}

// baseDir is where Dovecot puts its sockets and pid file. Unix socket paths
// are limited to 107 bytes and Dovecot's longest relative one is about 25
// ("token-login/imap-urlauth"), so a long t.TempDir() (long test names)
// falls back to a short directory under /tmp.
func (s *Server) baseDir() (string, error) {
	d := filepath.Join(s.Dir, "run")
	if len(d) <= 70 {
		return d, nil
	}
	short := filepath.Join(s.Dir, "run-link")
	if target, err := os.Readlink(short); err == nil {
		return target, nil
	}
	target, err := os.MkdirTemp("/tmp", "dovecottest-")
	if err != nil {
		return "", fmt.Errorf("setup: short base_dir: %w", err)
	}
	if err := os.Chmod(target, 0o755); err != nil {
		return "", fmt.Errorf("setup: %w", err)
	}
	// The link records the directory for a rewrite of the config and for
	// removal by Start's cleanup.
	if err := os.Symlink(target, short); err != nil {
		return "", fmt.Errorf("setup: %w", err)
	}
	return target, nil
}

func (s *Server) port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// writeConfig writes a complete, self-contained dovecot.conf: it includes
// nothing from /etc/dovecot, so the system configuration cannot leak in.
func (s *Server) writeConfig(o *Options) error {
	base, err := s.baseDir()
	if err != nil {
		return err
	}
	loginUser, internalUser, internalGroup := "dovenull", "dovecot", "dovecot"
	if !s.asRoot {
		// Everything runs as the current user: Dovecot cannot switch.
		u, err := user.Current()
		if err != nil {
			return fmt.Errorf("setup: %w", err)
		}
		g, err := user.LookupGroupId(strconv.Itoa(os.Getegid()))
		if err != nil {
			return fmt.Errorf("setup: %w", err)
		}
		loginUser, internalUser, internalGroup = u.Username, u.Username, g.Name
	}
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("# Generated by mailvault/harvest/dovecottest for one test; see its package doc.")
	p("base_dir = %s", base)
	p("state_dir = %s", filepath.Join(s.Dir, "state"))
	p("instance_name = dovecottest-%s-%s", strconv.Itoa(os.Getpid()), s.port(s.Addr))
	p("log_path = %s", s.LogFile)
	p("auth_verbose = yes")
	p("protocols = imap")
	p("listen = 127.0.0.1")
	p("shutdown_clients = yes")
	p("")
	p("default_login_user = %s", loginUser)
	p("default_internal_user = %s", internalUser)
	p("default_internal_group = %s", internalGroup)
	p("first_valid_uid = %d", s.mailUID)
	p("last_valid_uid = %d", s.mailUID)
	p("first_valid_gid = %d", s.mailGID)
	p("last_valid_gid = %d", s.mailGID)
	p("")
	p("disable_plaintext_auth = no")
	p("auth_failure_delay = 0")
	if o.OAuth2TokenInfoURL == "" {
		p("auth_mechanisms = plain login")
	} else {
		p("auth_mechanisms = plain login xoauth2 oauthbearer")
		conf := filepath.Join(s.Dir, "dovecot-oauth2.conf.ext")
		text := fmt.Sprintf("tokeninfo_url = %s\nusername_attribute = username\n", o.OAuth2TokenInfoURL)
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			return fmt.Errorf("setup: %w", err)
		}
		p("passdb {")
		p("  driver = oauth2")
		p("  mechanisms = xoauth2 oauthbearer")
		p("  args = %s", conf)
		p("}")
	}
	p("passdb {")
	p("  driver = passwd-file")
	p("  args = scheme=PLAIN username_format=%%u %s", filepath.Join(s.Dir, "passwd"))
	if o.OAuth2TokenInfoURL != "" {
		p("  mechanisms = plain login")
	}
	p("}")
	p("userdb {")
	p("  driver = static")
	p("  args = uid=%d gid=%d home=%s/%%u", s.mailUID, s.mailGID, filepath.Join(s.Dir, "home"))
	p("}")
	p("")
	p("mail_location = maildir:~/Maildir")
	p("namespace inbox {")
	p("  inbox = yes")
	p("  separator = /")
	p("}")
	p("mail_max_userip_connections = %d", o.MaxUserIPConnections)
	p("mail_fsync = never")
	p("mailbox_idle_check_interval = 1 secs")
	p("")
	if o.TLS {
		p("ssl = yes")
		p("ssl_cert = <%s", filepath.Join(s.Dir, "tls", "server.pem"))
		p("ssl_key = <%s", filepath.Join(s.Dir, "tls", "server.key"))
	} else {
		p("ssl = no")
	}
	p("service imap-login {")
	p("  inet_listener imap {")
	p("    address = 127.0.0.1")
	p("    port = %s", s.port(s.Addr))
	p("  }")
	p("  inet_listener imaps {")
	if o.TLS {
		p("    address = 127.0.0.1")
		p("    port = %s", s.port(s.TLSAddr))
		p("    ssl = yes")
	} else {
		p("    port = 0")
	}
	p("  }")
	if !s.asRoot {
		p("  chroot =")
	}
	p("}")
	// The auth penalty delays every login from an IP by 2..15 s after a
	// failed one: one wrong-password test would slow all later logins from
	// 127.0.0.1. auth disables it when it cannot connect to this socket.
	p("service anvil {")
	p("  unix_listener anvil-auth-penalty {")
	p("    mode = 0")
	p("  }")
	if !s.asRoot {
		// chroot needs root; without it these would fail to start.
		p("  chroot =")
	}
	p("}")
	if !s.asRoot {
		p("service imap-urlauth-login {")
		p("  chroot =")
		p("}")
	}
	if err := os.WriteFile(s.ConfigFile, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	return nil
}

// run is one life of the master process.
type run struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been reaped
	err    error         // cmd.Wait's result; read only after exited is closed
}

// start runs the master in the foreground (dovecot -F) as a child of the
// test process, so that Stop can wait for it properly and, on Linux, a test
// binary killed by a timeout takes its Dovecot with it (Pdeathsig).
func (s *Server) start() error {
	stderrPath := filepath.Join(s.Dir, "dovecot.stderr")
	stderr, err := os.OpenFile(stderrPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("start dovecot: %w", err)
	}
	defer stderr.Close()
	logStart := fileSize(s.LogFile)
	errStart := fileSize(stderrPath)

	s.mu.Lock()
	if s.run != nil {
		s.mu.Unlock()
		return nil
	}
	cmd := exec.Command(s.dovecot, "-F", "-c", s.ConfigFile)
	cmd.Dir = s.Dir
	cmd.Stdout = stderr
	cmd.Stderr = stderr
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		return fmt.Errorf("start dovecot: %w", err)
	}
	r := &run{cmd: cmd, exited: make(chan struct{})}
	s.run = r
	s.mu.Unlock()
	go func() {
		r.err = cmd.Wait()
		close(r.exited)
	}()

	err = s.waitReady(r)
	if err == nil {
		return nil
	}
	// Clean up the failed instance, then explain with what it logged.
	stopErr := s.Stop()
	// Errors before the log process is up (config errors) go to stderr
	// only; later ones to both.
	tail := tailFrom(s.LogFile, logStart)
	if tail == "" {
		tail = tailFrom(stderrPath, errStart)
	}
	if strings.Contains(tail, "Address already in use") {
		err = fmt.Errorf("%w: %v", errBindRace, err)
	}
	if stopErr != nil {
		err = fmt.Errorf("%w (and %v)", err, stopErr)
	}
	return fmt.Errorf("start dovecot -c %s: %w\n--- log ---\n%s", s.ConfigFile, err, tail)
}

// waitReady waits until the plain (and TLS) listener sends a real greeting:
// Dovecot accepts connections before its auth process is up and then first
// says "* OK Waiting for authentication process to respond.."; only the
// "* OK [CAPABILITY ...] ... ready." line means logins will work.
func (s *Server) waitReady(r *run) error {
	deadline := time.Now().Add(startTimeout)
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case <-r.exited:
			return fmt.Errorf("dovecot exited during start: %v", r.err)
		default:
		}
		lastErr = s.greeting(deadline)
		if lastErr == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("not ready after %v: %w", startTimeout, lastErr)
}

func (s *Server) greeting(deadline time.Time) error {
	check := func(conn net.Conn) error {
		defer conn.Close()
		conn.SetDeadline(deadline)
		r := bufio.NewReader(conn)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return fmt.Errorf("read greeting: %w", err)
			}
			if strings.HasPrefix(line, "* OK [CAPABILITY") {
				fmt.Fprintf(conn, "z LOGOUT\r\n")
				return nil
			}
			if !strings.HasPrefix(line, "* OK") {
				return fmt.Errorf("unexpected greeting %q", line)
			}
		}
	}
	d := net.Dialer{Timeout: time.Second}
	conn, err := d.Dial("tcp", s.Addr)
	if err != nil {
		return err
	}
	if err := check(conn); err != nil {
		return err
	}
	if s.TLSAddr == "" {
		return nil
	}
	tconn, err := tls.DialWithDialer(&d, "tcp", s.TLSAddr, s.TLSConfig())
	if err != nil {
		return err
	}
	return check(tconn)
}

// Stop stops the server and returns when its master and all of its
// children are gone; the mail stays. Stopping a stopped server is a no-op.
// Start's cleanup calls Stop; tests call it to simulate an outage.
func (s *Server) Stop() error {
	s.mu.Lock()
	r := s.run
	s.mu.Unlock()
	if r == nil {
		return nil
	}
	pgid := r.cmd.Process.Pid // the master leads its own process group
	// SIGTERM to the master alone (what "doveadm stop" does) leaves an imap
	// process with a client running ~10 s after the master has gone.
	// SIGTERM to the whole group stops each process the clean way (a
	// session gets "* BYE Server shutting down.") within milliseconds.
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	// But the master then sometimes sits in its shutdown wait (up to 6 s,
	// for children it already lost) and anvil may outlive it. Neither holds
	// mail, so what is left after a grace period is killed.
	if !waitGroupGone(pgid, r.exited, stopGrace) {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		if !waitGroupGone(pgid, r.exited, stopTimeout) {
			return fmt.Errorf("stop dovecot %s: processes of group %d still alive %v after SIGKILL", s.Addr, pgid, stopTimeout)
		}
	}
	s.mu.Lock()
	s.run = nil
	s.mu.Unlock()
	return nil
}

// waitGroupGone waits until the master has been reaped and no live process
// is left in its group, and reports whether that happened within d.
func waitGroupGone(pgid int, exited <-chan struct{}, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		select {
		case <-exited:
			if !groupAlive(pgid) {
				return true
			}
		default:
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Restart starts a stopped server again (stopping it first if it runs) on
// the same ports, with the same users and mail. It fails if another
// process took one of the ports in the meantime.
func (s *Server) Restart() error {
	if err := s.Stop(); err != nil {
		return err
	}
	return s.start()
}

// Running reports whether the master process is up.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.run != nil
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// tailFrom returns the last 30 lines written to path after offset.
func tailFrom(path string, offset int64) string {
	b, err := os.ReadFile(path)
	if err != nil || int64(len(b)) <= offset {
		return ""
	}
	lines := strings.SplitAfter(string(b[offset:]), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return strings.Join(lines, "")
}

// logTail returns the last n lines of the Dovecot log, for failed tests.
func (s *Server) logTail(n int) string { return imaptest.LogTail(s.LogFile, n) }

// addUser appends name to the passwd-file and creates its home, owned by
// the mail user. The file is replaced by rename so the auth process never
// reads half a line.
func (s *Server) addUser(name string) error {
	if name == "" || strings.ContainsAny(name, ":/\n\r\t ") || name == "." || name == ".." {
		return fmt.Errorf("add user %q: invalid name", name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if slices.Contains(s.users, name) {
		return nil
	}
	users := append(slices.Clone(s.users), name)
	var b strings.Builder
	for _, u := range users {
		fmt.Fprintf(&b, "%s:{PLAIN}%s\n", u, s.password)
	}
	path := filepath.Join(s.Dir, "passwd")
	tmp := path + ".tmp"
	// 0644: the auth process runs as the dovecot user, not root.
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("add user %q: %w", name, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("add user %q: %w", name, err)
	}
	home := s.home(name)
	if err := os.MkdirAll(home, 0o700); err != nil {
		return fmt.Errorf("add user %q: %w", name, err)
	}
	if err := s.chown(home); err != nil {
		return fmt.Errorf("add user %q: %w", name, err)
	}
	s.users = users
	return nil
}

func (s *Server) home(user string) string { return filepath.Join(s.Dir, "home", user) }

func (s *Server) chown(path string) error {
	if !s.asRoot {
		return nil
	}
	return os.Lchown(path, s.mailUID, s.mailGID)
}

// doveadm runs "doveadm -c ConfigFile args..." and returns its stdout.
// Mail commands (-u user) need the server running: doveadm asks its auth
// process for the user.
func (s *Server) runDoveadm(args ...string) (string, error) {
	cmd := exec.Command(s.doveadm, append([]string{"-c", s.ConfigFile}, args...)...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("doveadm %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}
