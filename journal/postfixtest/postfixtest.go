// Package postfixtest starts a private Postfix (Debian's postfix package)
// for journaling tests: its own config, queue and data directories in a
// test's temporary directory, one smtpd on a free loopback port, no
// chroot, logs to a file, and retry times of a second or two so that a
// test sees Postfix retry a delivery the archive did not acknowledge.
//
// Mail for the journal domain (JournalDomain) goes to mailvault's LMTP or
// SMTP listener; every other recipient is discarded (Postfix's discard
// transport), or delivered to a Maildir (Config.Maildir, the benchmark's
// baseline). Journaling is Postfix's own: always_bcc names one journal
// address (the envelope then holds only that address: Postfix does not
// tell the journal who the other recipients were), recipient_bcc_maps with
// a regexp journals every recipient as journal+local=domain@JournalDomain
// in one transaction (the envelope then names every recipient, the Bcc
// ones included).
//
// Postfix must run as root (CI does). Start fails the test when Postfix is
// missing under CI=true and skips it otherwise.
package postfixtest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// JournalDomain is the domain of the journal addresses.
const JournalDomain = "archive.test"

// JournalAddress is the always_bcc address.
const JournalAddress = "journal@" + JournalDomain

// Config says where journal mail goes.
type Config struct {
	// LMTP or SMTP is mailvault's listener (host:port); one of them.
	LMTP, SMTP string
	// PerRecipient journals every recipient with recipient_bcc_maps
	// (journal+local=domain@JournalDomain) instead of always_bcc.
	PerRecipient bool
	// Maildir, when set, delivers the other recipients' mail to Maildirs
	// under this directory (Postfix's virtual transport, domain
	// local.test) instead of discarding it; MaildirUsers are the local
	// parts it knows (virtual(8) refuses regexp maps with substitutions,
	// so each is listed).
	Maildir      string
	MaildirUsers []string
	// NoJournal turns journaling off (the baseline: local delivery only).
	NoJournal bool
}

// Postfix is a running instance.
type Postfix struct {
	Dir  string // its config directory (main.cf, master.cf, maillog)
	Addr string // its smtpd, 127.0.0.1:port
}

// Available reports whether Postfix can be started here.
func Available() error {
	if _, err := os.Stat("/usr/sbin/postfix"); err != nil {
		return fmt.Errorf("postfix is not installed (apt-get install postfix): %w", err)
	}
	if os.Getuid() != 0 {
		return fmt.Errorf("postfix needs root to start")
	}
	if _, err := user.Lookup("postfix"); err != nil {
		return fmt.Errorf("no postfix user: %w", err)
	}
	return nil
}

// Start starts a Postfix instance and stops it when the test ends.
func Start(t testing.TB, c Config) *Postfix {
	t.Helper()
	if err := Available(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("postfix: %v", err)
		}
		t.Skipf("postfix: %v", err)
	}
	dir, err := os.MkdirTemp("", "postfixtest-")
	if err != nil {
		t.Fatal(err)
	}
	// Postfix's daemons run as the postfix user: the directory must be
	// reachable, and the queue is created by postfix itself.
	os.Chmod(dir, 0o755)
	port := freePort(t)
	p := &Postfix{Dir: dir, Addr: fmt.Sprintf("127.0.0.1:%d", port)}

	next := ""
	switch {
	case c.LMTP != "":
		next = "lmtp:inet:" + c.LMTP
	case c.SMTP != "":
		next = "smtp:[" + strings.Replace(c.SMTP, ":", "]:", 1)
	case !c.NoJournal:
		t.Fatal("postfixtest: Config needs LMTP or SMTP")
	}
	transport := ""
	if next != "" {
		transport = JournalDomain + " " + next + "\n"
	}
	other := "discard:"
	main := fmt.Sprintf(`compatibility_level = 3.6
queue_directory = %[1]s/queue
data_directory = %[1]s/data
mail_owner = postfix
setgid_group = postdrop
maillog_file = %[1]s/maillog
maillog_file_prefixes = %[1]s
myhostname = mta.test
mydomain = mta.test
myorigin = mta.test
mydestination =
relayhost =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_peername_lookup = no
smtp_host_lookup = native
lmtp_host_lookup = native
alias_maps =
alias_database =
local_recipient_maps =
biff = no
transport_maps = texthash:%[1]s/transport
# Retry soon: the tests kill the archive and wait for the retry.
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
lmtp_connect_timeout = 5s
smtp_connect_timeout = 5s
default_destination_concurrency_limit = 20
smtp_destination_recipient_limit = 1000
lmtp_destination_recipient_limit = 1000
default_process_limit = 100
`, dir)
	switch {
	case c.NoJournal:
	case c.PerRecipient:
		os.WriteFile(filepath.Join(dir, "bcc"), []byte(`/^journal\+/ DUNNO
/^([^@]+)@(.+)$/ journal+${1}=${2}@`+JournalDomain+"\n"), 0o644)
		main += "recipient_bcc_maps = regexp:" + dir + "/bcc\n"
	default:
		main += "always_bcc = " + JournalAddress + "\n"
	}
	if c.Maildir != "" {
		os.MkdirAll(c.Maildir, 0o755)
		uid := os.Getuid()
		pu, err := user.Lookup("postfix")
		if err == nil {
			fmt.Sscan(pu.Uid, &uid)
		}
		os.Chown(c.Maildir, uid, -1)
		main += fmt.Sprintf(`virtual_mailbox_domains = local.test
virtual_mailbox_base = %s
virtual_mailbox_maps = texthash:%s/vmailbox
virtual_uid_maps = static:%d
virtual_gid_maps = static:%d
virtual_destination_concurrency_limit = 20
`, c.Maildir, dir, uid, uid)
		var vm strings.Builder
		for _, u := range c.MaildirUsers {
			fmt.Fprintf(&vm, "%s@local.test %s/\n", u, u)
		}
		os.WriteFile(filepath.Join(dir, "vmailbox"), []byte(vm.String()), 0o644)
		other = "virtual:"
	}
	transport += "* " + other + "\n"
	if err := os.WriteFile(filepath.Join(dir, "transport"), []byte(transport), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.cf"), []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	master := fmt.Sprintf(`127.0.0.1:%d inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`, port)
	if err := os.WriteFile(filepath.Join(dir, "master.cf"), []byte(master), 0o644); err != nil {
		t.Fatal(err)
	}
	// The queue directory is root's (Postfix creates its subdirectories,
	// owned by the postfix user, at start); the data directory postfix's.
	if err := os.Mkdir(filepath.Join(dir, "queue"), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("/usr/sbin/postfix", "-c", dir, "start").CombinedOutput(); err != nil {
		t.Fatalf("postfix start: %v\n%s\n%s", err, out, p.Log())
	}
	t.Cleanup(func() {
		exec.Command("/usr/sbin/postfix", "-c", dir, "stop").Run()
		if t.Failed() {
			t.Logf("postfix log (%s/maillog), last lines:\n%s", dir, tail(p.Log(), 60))
		}
		os.RemoveAll(dir)
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", p.Addr, time.Second)
		if err == nil {
			r := bufio.NewReader(c)
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			line, _ := r.ReadString('\n')
			c.Close()
			if strings.HasPrefix(line, "220") {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("postfix smtpd on %s does not answer: %v\n%s", p.Addr, err, tail(p.Log(), 40))
		}
		time.Sleep(100 * time.Millisecond)
	}
	return p
}

// Log returns Postfix's log so far.
func (p *Postfix) Log() string {
	b, _ := os.ReadFile(filepath.Join(p.Dir, "maillog"))
	return string(b)
}

// Queued returns how many messages Postfix's queue holds (not yet
// delivered to every recipient, deferred ones included), counting the
// queue files, which root reads without postqueue's set-gid checks.
func (p *Postfix) Queued() (int, error) {
	n := 0
	for _, q := range []string{"maildrop", "incoming", "active", "deferred", "hold"} {
		err := filepath.WalkDir(filepath.Join(p.Dir, "queue", q), func(path string, d os.DirEntry, err error) error {
			if err != nil {
				if os.IsNotExist(err) {
					return nil
				}
				return err
			}
			if !d.IsDir() {
				n++
			}
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("postfix queue %s: %w", q, err)
		}
	}
	return n, nil
}

// Flush asks Postfix to retry deferred mail now.
func (p *Postfix) Flush() error {
	return exec.Command("/usr/sbin/postfix", "-c", p.Dir, "flush").Run()
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// FreeAddr returns a loopback address with a port free now (for a listener
// that a test starts and restarts on the same address).
func FreeAddr(t testing.TB) string {
	return fmt.Sprintf("127.0.0.1:%d", freePort(t))
}
