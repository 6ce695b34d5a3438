//go:build unix

package dovecottest

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"mailvault/harvest/imaptest"
)

// The helpers below change mail the way a user's other mail client would:
// over IMAP, each on a connection of its own (LOGIN, work, LOGOUT), so they
// never disturb a harvester's session except through what the server
// announces. Where IMAP cannot do it (UIDVALIDITY, bulk loads) they go
// behind Dovecot's back with doveadm or the file system.

// Dial returns an IMAP client on the plain listener, logged in as user.
// t.Cleanup closes it.
func (s *Server) Dial(t testing.TB, user string) *imapclient.Client {
	t.Helper()
	return s.mail().Dial(t, user)
}

// mail is the client side shared with chroottest, on the current Addr.
func (s *Server) mail() imaptest.Mail {
	return imaptest.Mail{Name: "dovecottest", Addr: s.Addr, Password: s.Password}
}

// with runs fn on a fresh session of user, then logs out.
func (s *Server) with(user string, fn func(c *imapclient.Client) error) error {
	return s.mail().With(user, fn)
}

// AddUser adds an account with the common password; the server may be
// running. Adding an existing user is a no-op.
//
// Dovecot's passwd-file driver re-reads the file when its mtime or size
// changed, but checks at most once per second (per auth process clock
// second): a lookup in the same second as the change still sees the old
// file. AddUser therefore returns only once "doveadm auth lookup" finds
// the user, which takes up to a second.
func (s *Server) AddUser(t testing.TB, name string) {
	t.Helper()
	if err := s.addUser(name); err != nil {
		t.Fatalf("dovecottest: %v", err)
	}
	if !s.Running() {
		return // a starting auth process reads the file afresh
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := s.runDoveadm("auth", "lookup", name)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("dovecottest: add user %q: Dovecot does not see the new user: %v", name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// CreateMailbox creates mailbox (hierarchy separator "/") for user; an
// existing mailbox, INBOX included, is fine.
func (s *Server) CreateMailbox(t testing.TB, user, mailbox string) {
	t.Helper()
	s.mail().CreateMailbox(t, user, mailbox)
}

// Append stores raw in user's mailbox (created if missing) with APPEND and
// returns the UID Dovecot assigned (UIDPLUS APPENDUID). Flags are IMAP
// flags such as `\Seen` or keywords. The INTERNALDATE is the current time.
//
// Dovecot keeps the bytes as given, except that it stores lines with LF
// and serves them with CRLF: see the package doc.
func (s *Server) Append(t testing.TB, user, mailbox string, raw []byte, flags ...string) uint32 {
	t.Helper()
	return s.mail().Append(t, user, mailbox, raw, flags)
}

// SetFlags replaces the flags of message uid in user's mailbox (UID STORE
// FLAGS). \Recent cannot be set. It fails the test if there is no such UID.
func (s *Server) SetFlags(t testing.TB, user, mailbox string, uid uint32, flags ...string) {
	t.Helper()
	s.mail().SetFlags(t, user, mailbox, uid, flags)
}

// Expunge removes message uid from user's mailbox (\Deleted, then UID
// EXPUNGE of that UID only). It fails the test if there is no such UID.
func (s *Server) Expunge(t testing.TB, user, mailbox string, uid uint32) {
	t.Helper()
	s.mail().Expunge(t, user, mailbox, uid)
}

// UIDValidity returns the UIDVALIDITY of user's mailbox (STATUS).
func (s *Server) UIDValidity(t testing.TB, user, mailbox string) uint32 {
	t.Helper()
	return s.mail().UIDValidity(t, user, mailbox)
}

// ChangeUIDValidity sets the UIDVALIDITY of user's mailbox to v with
// "doveadm mailbox update --uid-validity", as a server migration or a
// restored backup would. The messages keep their UIDs and contents; only
// the validity changes, which is exactly what a client must not miss.
// Sessions that have the mailbox selected are disconnected by Dovecot
// ("* BYE Mailbox UIDVALIDITY changed") when they next notice it.
func (s *Server) ChangeUIDValidity(t testing.TB, user, mailbox string, v uint32) {
	t.Helper()
	if v == 0 {
		t.Fatalf("dovecottest: change UIDVALIDITY of %q: 0 is not a valid UIDVALIDITY", mailbox)
	}
	if _, err := s.runDoveadm("mailbox", "update", "-u", user, "--uid-validity", fmt.Sprint(v), mailbox); err != nil {
		t.Fatalf("dovecottest: %v", err)
	}
}

// Index has Dovecot bring the index and cache files of user's mailbox up to
// date ("doveadm index"): after a bulk load, the first client to open a big
// mailbox would otherwise pay for that.
func (s *Server) Index(t testing.TB, user, mailbox string) {
	t.Helper()
	if _, err := s.runDoveadm("index", "-u", user, mailbox); err != nil {
		t.Fatalf("dovecottest: %v", err)
	}
}

// Fetch returns every message in user's mailbox as UID → BODY[] bytes,
// read with EXAMINE and BODY.PEEK[] so no flag changes.
func (s *Server) Fetch(t testing.TB, user, mailbox string) map[uint32][]byte {
	t.Helper()
	return s.mail().Fetch(t, user, mailbox)
}

// LoadMaildir copies the messages of a Maildir folder into user's mailbox
// (created if missing) and returns how many it copied. dir is either a
// folder (with cur/ and new/) or a directory holding the message files
// themselves, such as $MAILVAULT_CORPUS/maildir/.easy-ham-1/cur.
//
// The files are copied, not APPENDed: into the mailbox's cur/ directory,
// keeping their names (so their ":2,S" flags), bytes and mtimes (which
// Dovecot serves as INTERNALDATE), owned by the mail user. Dovecot assigns
// UIDs when it next syncs the folder, in file-name order; LoadMaildir
// triggers that sync with STATUS before returning, so the UIDs are fixed
// (1..n in an empty mailbox, in the order of the names). This is about
// 10x faster than APPEND (see the package doc) and keeps the files
// byte-exact on disk, LF line endings included.
func (s *Server) LoadMaildir(t testing.TB, user, mailbox, dir string) int {
	t.Helper()
	n, err := s.loadMaildir(user, mailbox, dir)
	if err != nil {
		t.Fatalf("dovecottest: load %s into %q: %v", dir, mailbox, err)
	}
	return n
}

func (s *Server) loadMaildir(user, mailbox, dir string) (int, error) {
	var srcs []string
	if fi, err := os.Stat(filepath.Join(dir, "cur")); err == nil && fi.IsDir() {
		srcs = []string{filepath.Join(dir, "cur"), filepath.Join(dir, "new")}
	} else {
		srcs = []string{dir}
	}
	var files []string
	for _, src := range srcs {
		entries, err := os.ReadDir(src)
		if errors.Is(err, os.ErrNotExist) && src != dir {
			continue
		}
		if err != nil {
			return 0, err
		}
		for _, e := range entries {
			if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") {
				files = append(files, filepath.Join(src, e.Name()))
			}
		}
	}
	return s.loadFiles(user, mailbox, files, false)
}

// LinkFiles puts the message files (paths of Maildir message files, their
// names distinct) into user's mailbox (created if missing) as LoadMaildir
// does, but hard-links each one into the mailbox's cur/ directory instead of
// copying it, so that loading a 100,000-message scale set costs a few
// seconds and no disk. It returns how many it put there.
//
// A link shares the source's inode, so LinkFiles does not chown it (that
// would change the owner of the source too): a file the mail user could not
// read (as root: not world-readable), or one on another file system, is
// copied the LoadMaildir way instead. Dovecot never rewrites a Maildir
// file (a flag change renames the link in the mailbox, an expunge removes
// the link), so the sources keep their bytes; their mtime is the
// INTERNALDATE either way.
func (s *Server) LinkFiles(t testing.TB, user, mailbox string, files []string) int {
	t.Helper()
	n, err := s.loadFiles(user, mailbox, files, true)
	if err != nil {
		t.Fatalf("dovecottest: link %d files into %q: %v", len(files), mailbox, err)
	}
	return n
}

func (s *Server) loadFiles(user, mailbox string, files []string, link bool) (int, error) {
	var before uint32
	err := s.with(user, func(c *imapclient.Client) error {
		if err := imaptest.EnsureMailbox(c, mailbox); err != nil {
			return err
		}
		data, err := c.Status(mailbox, &imap.StatusOptions{NumMessages: true}).Wait()
		if err != nil {
			return fmt.Errorf("status %q: %w", mailbox, err)
		}
		before = *data.NumMessages
		return nil
	})
	if err != nil {
		return 0, err
	}
	out, err := s.runDoveadm("mailbox", "path", "-u", user, mailbox)
	if err != nil {
		return 0, err
	}
	folder := strings.TrimSpace(out)
	for _, sub := range []string{"cur", "tmp"} {
		if fi, err := os.Stat(filepath.Join(folder, sub)); err != nil || !fi.IsDir() {
			return 0, fmt.Errorf("mailbox directory %s: no %s/ (%v)", folder, sub, err)
		}
	}

	// A few copiers in parallel: the cost is system calls, not bytes.
	const workers = 4
	jobs := make(chan string)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var first error
			for f := range jobs {
				if first != nil {
					continue
				}
				if !link || !s.linkMessage(f, folder) {
					first = s.copyMessage(f, folder)
				}
			}
			errs <- first
		}()
	}
	for _, f := range files {
		jobs <- f
	}
	close(jobs)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return 0, err
		}
	}

	// STATUS syncs the maildir: Dovecot finds the new files and gives them UIDs.
	err = s.with(user, func(c *imapclient.Client) error {
		data, err := c.Status(mailbox, &imap.StatusOptions{NumMessages: true}).Wait()
		if err != nil {
			return fmt.Errorf("status %q: %w", mailbox, err)
		}
		if got, want := *data.NumMessages, before+uint32(len(files)); got != want {
			return fmt.Errorf("status %q: %d messages after putting %d files, want %d", mailbox, got, len(files), want)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return len(files), nil
}

// linkMessage hard-links src into the folder's cur/ under its own name and
// reports whether it did; false means "copy it instead" (see LinkFiles).
func (s *Server) linkMessage(src, folder string) bool {
	if s.asRoot {
		fi, err := os.Stat(src)
		if err != nil || fi.Mode().Perm()&0o004 == 0 {
			return false
		}
	}
	return os.Link(src, filepath.Join(folder, "cur", filepath.Base(src))) == nil
}

// copyMessage delivers one message file into the Maildir folder the way
// Maildir wants it: written to tmp/, then renamed into cur/, so a session
// syncing meanwhile never sees half a file.
func (s *Server) copyMessage(src, folder string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	base := filepath.Base(src)
	tmp := filepath.Join(folder, "tmp", base)
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	if err := s.chown(tmp); err != nil {
		return err
	}
	if err := os.Chtimes(tmp, fi.ModTime(), fi.ModTime()); err != nil {
		return err
	}
	cur := filepath.Join(folder, "cur", base)
	if _, err := os.Lstat(cur); err == nil {
		os.Remove(tmp)
		return fmt.Errorf("%s already exists", cur)
	}
	return os.Rename(tmp, cur)
}

// RenameMailbox renames user's mailbox from to to (RENAME).
func (s *Server) RenameMailbox(t testing.TB, user, from, to string) {
	t.Helper()
	if err := s.with(user, func(c *imapclient.Client) error { return c.Rename(from, to, nil).Wait() }); err != nil {
		t.Fatalf("dovecottest: rename %q to %q: %v", from, to, err)
	}
}

// DeleteMailbox deletes user's mailbox and the mail in it (DELETE).
func (s *Server) DeleteMailbox(t testing.TB, user, mailbox string) {
	t.Helper()
	if err := s.with(user, func(c *imapclient.Client) error { return c.Delete(mailbox).Wait() }); err != nil {
		t.Fatalf("dovecottest: delete %q: %v", mailbox, err)
	}
}
