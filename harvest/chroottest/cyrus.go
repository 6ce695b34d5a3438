//go:build linux

package chroottest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2/imapclient"

	"mailvault/harvest/imaptest"
)

// StartCyrus starts a private Cyrus IMAP 3.6 in its root and registers a
// t.Cleanup that stops it. See the package doc for its configuration.
func StartCyrus(t testing.TB, opts *Options) *Server {
	t.Helper()
	return start(t, &cyrus{}, opts)
}

// cyrusAdmin is the account named in "admins:": it creates user.NAME.
const cyrusAdmin = "cyrus"

type cyrus struct {
	uid, gid int
	syslog   *net.UnixConn
}

func (*cyrus) name() string { return "cyrus" }

func (c *cyrus) setup(s *Server) error {
	var err error
	if c.uid, c.gid, err = lookupIDs(s.Root, "cyrus"); err != nil {
		return err
	}
	for _, d := range []string{"lib/db", "lib/socket", "lib/log", "lib/msg", "lib/proc", "lib/quota", "lib/user", "lib/lock", "lib/sieve", "spool", "run/proc", "run/lock", "run/socket"} {
		if err := os.MkdirAll(filepath.Join(s.Dir, d), 0o750); err != nil {
			return err
		}
	}
	conf := strings.Join([]string{
		"configdirectory: " + inside + "/lib",
		"proc_path: " + inside + "/run/proc",
		"mboxname_lockpath: " + inside + "/run/lock",
		"defaultpartition: default",
		"partition-default: " + inside + "/spool",
		"altnamespace: no",
		"unixhierarchysep: no",
		"hashimapspool: false",
		"virtdomains: off",
		"allowplaintext: yes",
		"sasl_pwcheck_method: auxprop",
		"sasl_auxprop_plugin: sasldb",
		"sasl_sasldb_path: " + inside + "/sasldb2",
		"sasl_mech_list: PLAIN LOGIN",
		"admins: " + cyrusAdmin,
		// idled pushes mailbox changes to idling imapd processes; without
		// it Cyrus answers IDLE but only looks every imapidlepoll (60 s).
		"idlesocket: " + inside + "/run/socket/idle",
		"lmtpsocket: " + inside + "/run/socket/lmtp",
		"notifysocket: " + inside + "/run/socket/notify",
		"syslog_prefix: cyrus",
		"",
	}, "\n")
	if err := os.WriteFile(filepath.Join(s.Root, "etc", "imapd.conf"), []byte(conf), 0o644); err != nil {
		return err
	}
	master := fmt.Sprintf(`START {
  recover cmd="/usr/sbin/cyrus ctl_cyrusdb -r"
  idled cmd="idled"
}
SERVICES {
  imap cmd="imapd -U 30" listen="127.0.0.1:%s" prefork=1 maxchild=200
}
EVENTS {
  checkpoint cmd="/usr/sbin/cyrus ctl_cyrusdb -c" period=30
}
`, s.port())
	if err := os.WriteFile(filepath.Join(s.Root, "etc", "cyrus.conf"), []byte(master), 0o644); err != nil {
		return err
	}
	if err := c.listenSyslog(s); err != nil {
		return err
	}
	if err := c.saslUser(s, cyrusAdmin); err != nil {
		return err
	}
	return chownTree(s.Dir, c.uid, c.gid)
}

// listenSyslog catches what Cyrus logs: its processes write to /dev/log,
// which in a bare root nothing reads; the lines go to Server.LogFile.
func (c *cyrus) listenSyslog(s *Server) error {
	path := filepath.Join(s.Root, "dev", "log")
	os.Remove(path)
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("syslog socket: %w", err)
	}
	os.Chmod(path, 0o666)
	c.syslog = conn
	f, err := os.OpenFile(s.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		conn.Close()
		return err
	}
	go func() {
		defer f.Close()
		buf := make([]byte, 8192)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			line := strings.TrimRight(string(buf[:n]), "\n")
			fmt.Fprintln(f, line)
		}
	}()
	s.closers = append(s.closers, func() { conn.Close(); os.Remove(path) })
	return nil
}

func (c *cyrus) saslUser(s *Server, user string) error {
	_, err := runIn(s.Root, s.password+"\n", "/usr/sbin/saslpasswd2", "-p", "-c", "-f", inside+"/sasldb2", "-u", "", user)
	if err != nil {
		return err
	}
	return os.Lchown(filepath.Join(s.Dir, "sasldb2"), c.uid, c.gid)
}

func (c *cyrus) addUser(s *Server, user string) error {
	if err := c.saslUser(s, user); err != nil {
		return err
	}
	if s.run == nil {
		return nil // ready creates the mailbox
	}
	return c.createMailbox(s, user)
}

// createMailbox has the admin create user.NAME, the user's INBOX.
func (c *cyrus) createMailbox(s *Server, user string) error {
	cl, err := s.loginAs(cyrusAdmin)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := imaptest.EnsureMailbox(cl, "user."+user); err != nil {
		return err
	}
	return cl.Logout().Wait()
}

func (c *cyrus) command(s *Server) *exec.Cmd {
	// master stays in the foreground without -d; idled daemonises out of
	// its process group, which is why Stop also kills by root.
	return command(s.Root, nil, "/usr/sbin/cyrus", "master", "-p", inside+"/run/master.pid")
}

func (c *cyrus) ready(s *Server) error {
	for _, u := range s.users {
		if err := c.createMailbox(s, u); err != nil {
			return err
		}
	}
	return nil
}

// loginAs logs in as any account of the server, the admin included.
func (s *Server) loginAs(user string) (*imapclient.Client, error) {
	return s.login(user)
}
