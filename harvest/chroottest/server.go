//go:build linux

package chroottest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"mailvault/harvest/imaptest"
)

// Timeouts, generous for a loaded 2-core runner.
const (
	startTimeout = 30 * time.Second
	stopGrace    = 500 * time.Millisecond
	stopTimeout  = 10 * time.Second
)

// Options configure a Server. A nil *Options is equivalent to a zero Options.
type Options struct {
	// Users are the accounts that exist from the start, all with Password.
	// Default: ["alice"].
	Users []string
	// Password is every user's password. Default: "secret".
	Password string
}

// Server is one private Cyrus or Courier instance in its root. The exported
// fields are fixed by Start and stay valid across Stop and Restart.
//
// Helpers are safe for concurrent use (each opens its own IMAP connection);
// Stop and Restart must not race with each other or with helpers.
type Server struct {
	// Kind is "cyrus" or "courier".
	Kind string
	// Addr is the plain IMAP listener, "127.0.0.1:port"; LOGIN works
	// without TLS.
	Addr string
	// Root is the server's root file system (scripts/server-roots.sh).
	Root string
	// Dir is the instance's directory as seen from the host; inside the
	// root it is /srv/mv. Mail, configuration and the log live there.
	Dir string
	// LogFile collects what the server logs (Cyrus: syslog lines; Courier:
	// its stderr).
	LogFile string

	k        kind
	password string
	lock     *os.File
	started  bool
	closers  []func() // run by the cleanup, after Stop

	mu    sync.Mutex // guards users and run
	users []string
	run   *run
}

// kind is what differs between Cyrus and Courier.
type kind interface {
	name() string
	// setup writes the configuration for s (called once, under the lock).
	setup(s *Server) error
	// addUser creates an account; the server may be running (then the
	// mailbox is created over IMAP by Cyrus's admin).
	addUser(s *Server, user string) error
	// command is the process tree to start: its leader stays in the
	// foreground and leads a process group.
	command(s *Server) *exec.Cmd
	// ready is called once the port answers, for work that needs the
	// server up (Cyrus: create the users' mailboxes).
	ready(s *Server) error
}

// inside is path as seen from inside the root: Dir is /srv/mv there.
const inside = "/srv/mv"

func start(t testing.TB, k kind, opts *Options) *Server {
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
	root := need(t, k.name())
	s := &Server{Kind: k.name(), Root: root, Dir: filepath.Join(root, "srv", "mv"), k: k, password: o.Password}
	s.LogFile = filepath.Join(s.Dir, "server.log")
	lockStart := time.Now()
	lock, err := lockRoot(root)
	if err != nil {
		t.Fatalf("chroottest: %v", err)
	}
	s.lock = lock
	if waited := time.Since(lockStart); waited > time.Second {
		t.Logf("chroottest: waited %v for the %s root (another server of this kind was running)", waited.Round(time.Millisecond), k.name())
	}
	t.Cleanup(func() {
		if t.Failed() && s.started {
			t.Logf("chroottest: %s", s.logTail(40))
		}
		if err := s.Stop(); err != nil {
			t.Errorf("chroottest: %v", err)
		}
		for _, f := range s.closers {
			f()
		}
		os.RemoveAll(s.Dir)
		s.lock.Close() // releases the flock
	})
	if n := killInRoot(root); n > 0 {
		t.Logf("chroottest: killed %d processes left in %s by an earlier test", n, root)
	}
	if err := os.RemoveAll(s.Dir); err != nil {
		t.Fatalf("chroottest: %v", err)
	}
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		t.Fatalf("chroottest: %v", err)
	}
	if err := s.pickPort(); err != nil {
		t.Fatalf("chroottest: %v", err)
	}
	if err := k.setup(s); err != nil {
		t.Fatalf("chroottest: setup %s: %v", k.name(), err)
	}
	for _, u := range o.Users {
		if err := s.addUser(u); err != nil {
			t.Fatalf("chroottest: %v", err)
		}
	}
	begin := time.Now()
	if err := s.start(); err != nil {
		t.Fatalf("chroottest: %v\n%s", err, s.logTail(30))
	}
	s.started = true
	t.Logf("chroottest: %s up on %s in %v, root %s", k.name(), s.Addr, time.Since(begin).Round(time.Millisecond), root)
	return s
}

// Address returns Addr (for interfaces shared with dovecottest).
func (s *Server) Address() string { return s.Addr }

// Password returns user's password.
func (s *Server) Password(user string) string { return s.password }

// Mailbox returns the server's name of a personal folder: both Cyrus and
// Courier put them under INBOX with separator ".", so folder "a" is
// "INBOX.a". "INBOX" stays "INBOX".
func (s *Server) Mailbox(folder string) string {
	if strings.EqualFold(folder, "INBOX") {
		return "INBOX"
	}
	return "INBOX." + strings.ReplaceAll(folder, "/", ".")
}

func (s *Server) pickPort() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("pick port: %w", err)
	}
	defer l.Close()
	s.Addr = l.Addr().String()
	return nil
}

func (s *Server) port() string {
	_, p, _ := net.SplitHostPort(s.Addr)
	return p
}

func (s *Server) addUser(name string) error {
	if name == "" || strings.ContainsAny(name, ":/.\n\r\t |") {
		return fmt.Errorf("add user %q: invalid name", name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if slices.Contains(s.users, name) {
		return nil
	}
	if err := s.k.addUser(s, name); err != nil {
		return fmt.Errorf("add user %q: %w", name, err)
	}
	s.users = append(s.users, name)
	return nil
}

// AddUser adds an account with the common password; the server may be
// running. Adding an existing user is a no-op.
func (s *Server) AddUser(t testing.TB, name string) {
	t.Helper()
	if err := s.addUser(name); err != nil {
		t.Fatalf("chroottest: %v", err)
	}
}

// run is one life of the server's process tree.
type run struct {
	cmd    *exec.Cmd
	exited chan struct{}
	err    error
}

func (s *Server) start() error {
	s.mu.Lock()
	if s.run != nil {
		s.mu.Unlock()
		return nil
	}
	log, err := os.OpenFile(s.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.mu.Unlock()
		return fmt.Errorf("start %s: %w", s.Kind, err)
	}
	defer log.Close()
	cmd := s.k.command(s)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		return fmt.Errorf("start %s: %w", s.Kind, err)
	}
	r := &run{cmd: cmd, exited: make(chan struct{})}
	s.run = r
	s.mu.Unlock()
	go func() {
		r.err = cmd.Wait()
		close(r.exited)
	}()
	if err := s.waitReady(r); err != nil {
		s.Stop()
		return fmt.Errorf("start %s on %s: %w", s.Kind, s.Addr, err)
	}
	return s.k.ready(s)
}

// waitReady waits for a greeting carrying "* OK".
func (s *Server) waitReady(r *run) error {
	deadline := time.Now().Add(startTimeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-r.exited:
			return fmt.Errorf("exited during start: %v", r.err)
		default:
		}
		last = greeting(s.Addr, deadline)
		if last == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("not ready after %v: %w", startTimeout, last)
}

func greeting(addr string, deadline time.Time) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(deadline)
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return fmt.Errorf("read greeting: %w", err)
	}
	if !strings.HasPrefix(line, "* OK") {
		return fmt.Errorf("unexpected greeting %q", line)
	}
	fmt.Fprintf(conn, "z LOGOUT\r\n")
	return nil
}

// Stop stops the server and returns when every process of it is gone,
// including daemons that left its process group (Cyrus's idled): whatever
// still runs chrooted into the root is killed. The mail stays.
func (s *Server) Stop() error {
	s.mu.Lock()
	r := s.run
	s.mu.Unlock()
	if r == nil {
		return nil
	}
	pgid := r.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-r.exited:
	case <-time.After(stopGrace):
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	killInRoot(s.Root)
	select {
	case <-r.exited:
	case <-time.After(stopTimeout):
		return fmt.Errorf("stop %s %s: process %d still alive %v after SIGKILL", s.Kind, s.Addr, pgid, stopTimeout)
	}
	if left := pidsInRoot(s.Root); len(left) > 0 {
		return fmt.Errorf("stop %s %s: processes %v still alive in %s", s.Kind, s.Addr, left, s.Root)
	}
	s.mu.Lock()
	s.run = nil
	s.mu.Unlock()
	return nil
}

// Restart stops the server if it runs and starts it again on the same
// port, with the same users and mail.
func (s *Server) Restart() error {
	if err := s.Stop(); err != nil {
		return err
	}
	return s.start()
}

// Running reports whether the server's process tree is up.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.run != nil
}

func (s *Server) logTail(n int) string { return imaptest.LogTail(s.LogFile, n) }
