//go:build linux

package chroottest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// StartCourier starts a private Courier-IMAP 5 (with courier-authlib's
// userdb) in its root and registers a t.Cleanup that stops it. See the
// package doc for its configuration.
func StartCourier(t testing.TB, opts *Options) *Server {
	t.Helper()
	return start(t, &courier{}, opts)
}

// courierMailUID owns the Maildirs: nobody in the root.
const courierMailUID, courierMailGID = 65534, 65534

type courier struct{}

func (*courier) name() string { return "courier" }

func (*courier) setup(s *Server) error {
	// authdaemond reads its module list from the file, not the environment.
	rc := filepath.Join(s.Root, "etc", "courier", "authdaemonrc")
	b, err := os.ReadFile(rc)
	if err != nil {
		return err
	}
	b = regexp.MustCompile(`(?m)^authmodulelist=.*$`).ReplaceAll(b, []byte(`authmodulelist="authuserdb"`))
	if err := os.WriteFile(rc, b, 0o660); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(s.Root, "run", "courier", "authdaemon"), 0o750); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(s.Root, "etc", "courier", "userdb"), nil, 0o600); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(s.Dir, "home"), 0o755); err != nil {
		return err
	}
	// authdaemond runs in the background of the shell, so both share the
	// process group Stop signals; couriertcpd stays in the foreground.
	// MAXPERIP 200: the default 20 (per IP) is below what parallel
	// harvesters and helpers open from 127.0.0.1.
	script := fmt.Sprintf(`#!/bin/sh
set -a
. /etc/courier/authdaemonrc
/usr/lib/courier/courier-authlib/authdaemond &
. /etc/courier/imapd
exec /usr/sbin/couriertcpd -address=127.0.0.1 -maxprocs=400 -maxperip=200 -nodnslookup -noidentlookup %s /usr/lib/courier/courier/imaplogin /usr/bin/imapd Maildir
`, s.port())
	return os.WriteFile(filepath.Join(s.Dir, "run.sh"), []byte(script), 0o755)
}

func (*courier) addUser(s *Server, user string) error {
	home := inside + "/home/" + user
	if _, err := runIn(s.Root, "", "/usr/bin/maildirmake", home+"/Maildir"); err != nil {
		if err := os.MkdirAll(filepath.Join(s.Dir, "home", user), 0o755); err != nil {
			return err
		}
		if _, err := runIn(s.Root, "", "/usr/bin/maildirmake", home+"/Maildir"); err != nil {
			return err
		}
	}
	if err := chownTree(filepath.Join(s.Dir, "home", user), courierMailUID, courierMailGID); err != nil {
		return err
	}
	pw, err := runIn(s.Root, s.password+"\n", "/usr/sbin/userdbpw", "-md5")
	if err != nil {
		return err
	}
	line := fmt.Sprintf("%s\tuid=%d|gid=%d|home=%s|mail=%s/Maildir|imappw=%s\n", user, courierMailUID, courierMailGID, home, home, strings.TrimSpace(pw))
	f, err := os.OpenFile(filepath.Join(s.Root, "etc", "courier", "userdb"), os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	// authuserdb reads userdb.dat, which makeuserdb rebuilds atomically.
	_, err = runIn(s.Root, "", "/usr/sbin/makeuserdb")
	return err
}

func (*courier) command(s *Server) *exec.Cmd {
	return command(s.Root, nil, "/bin/sh", inside+"/run.sh")
}

// ready waits for authdaemond to answer on its socket: couriertcpd greets
// before the daemon it runs in the background is up, and a LOGIN in that
// gap fails ("authdaemon: s_connect() failed"), which made tests on a
// loaded machine flaky. A socket left by the last run refuses the
// connection until the new daemon listens on it.
func (*courier) ready(s *Server) error {
	sock := filepath.Join(s.Root, "run", "courier", "authdaemon", "socket")
	deadline := time.Now().Add(startTimeout)
	for {
		c, err := net.DialTimeout("unix", sock, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("courier: authdaemond not answering on %s after %v: %w", sock, startTimeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// maildirFolder is the host path of a Courier Maildir++ folder.
func (s *Server) maildirFolder(user, mailbox string) string {
	d := filepath.Join(s.Dir, "home", user, "Maildir")
	if strings.EqualFold(mailbox, "INBOX") {
		return d
	}
	return filepath.Join(d, "."+strings.TrimPrefix(mailbox, "INBOX."))
}

// rewriteUIDValidity replaces the UIDVALIDITY in a Courier folder's
// courierimapuiddb (first line "1 UIDVALIDITY NEXTUID", then "UID
// filename" lines), keeping every UID: what a restore of the Maildir
// from a backup made by another tool, or a careless migration, does.
func (s *Server) rewriteUIDValidity(user, mailbox string, v uint32) error {
	path := filepath.Join(s.maildirFolder(user, mailbox), "courierimapuiddb")
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	f.Close()
	if err := sc.Err(); err != nil {
		return err
	}
	if len(lines) == 0 {
		return fmt.Errorf("%s: empty", path)
	}
	head := strings.Fields(lines[0])
	if len(head) != 3 || head[0] != "1" {
		return fmt.Errorf("%s: unexpected first line %q", path, lines[0])
	}
	lines[0] = fmt.Sprintf("1 %d %s", v, head[2])
	tmp := path + ".mailvault"
	if err := os.WriteFile(tmp, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	if err := os.Lchown(tmp, courierMailUID, courierMailGID); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
