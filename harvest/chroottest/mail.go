//go:build linux

package chroottest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"mailvault/harvest/imaptest"
)

// The helpers below change mail the way a user's other mail client would,
// over IMAP on a connection of their own, as dovecottest's do; where IMAP
// cannot do it (UIDVALIDITY, Courier's bulk load) they go behind the
// server's back. Mailbox names are the server's ("INBOX.a"; see Mailbox).

// Dial returns an IMAP client on Addr, logged in as user; t.Cleanup closes it.
func (s *Server) Dial(t testing.TB, user string) *imapclient.Client {
	t.Helper()
	return s.mail().Dial(t, user)
}

// mail is the client side shared with dovecottest.
func (s *Server) mail() imaptest.Mail {
	return imaptest.Mail{Name: "chroottest", Addr: s.Addr, Password: s.Password}
}

func (s *Server) login(user string) (*imapclient.Client, error) { return s.mail().Login(user) }

func (s *Server) with(user string, fn func(c *imapclient.Client) error) error {
	return s.mail().With(user, fn)
}

// CreateMailbox creates mailbox for user; an existing one is fine.
func (s *Server) CreateMailbox(t testing.TB, user, mailbox string) {
	t.Helper()
	s.mail().CreateMailbox(t, user, mailbox)
}

// Append stores raw in user's mailbox (created if missing) and returns the
// UID the server assigned (APPENDUID). Both servers store an LF-only
// message with CRLF line ends in BODY[] (see the package doc).
func (s *Server) Append(t testing.TB, user, mailbox string, raw []byte, flags ...string) uint32 {
	t.Helper()
	return s.mail().Append(t, user, mailbox, crlf(raw), flags)
}

// appendMessage is imaptest.AppendMessage of raw with CRLF line ends.
func appendMessage(c *imapclient.Client, mailbox string, raw []byte, flags []string, date time.Time) (uint32, error) {
	return imaptest.AppendMessage(c, mailbox, crlf(raw), flags, date)
}

// crlf turns every LF not preceded by CR into CRLF. Cyrus refuses an APPEND
// with a bare LF ("NO Message contains bare newlines"); Courier stores LF
// and serves CRLF anyway. So every helper appends CRLF, and BODY[] is the
// original with LF turned to CRLF on both servers (as on Dovecot).
func crlf(b []byte) []byte {
	var out []byte
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			if out == nil {
				out = append(make([]byte, 0, len(b)+len(b)/30), b[:i]...)
			}
			out = append(out, '\r', '\n')
			continue
		}
		if out != nil {
			out = append(out, c)
		}
	}
	if out == nil {
		return b
	}
	return out
}

// SetFlags replaces the flags of message uid (UID STORE FLAGS).
func (s *Server) SetFlags(t testing.TB, user, mailbox string, uid uint32, flags ...string) {
	t.Helper()
	s.mail().SetFlags(t, user, mailbox, uid, flags)
}

// Expunge removes message uid from user's mailbox: \Deleted, then UID
// EXPUNGE where the server has UIDPLUS (both do), of that UID only.
func (s *Server) Expunge(t testing.TB, user, mailbox string, uid uint32) {
	t.Helper()
	s.mail().Expunge(t, user, mailbox, uid)
}

// UIDValidity returns the UIDVALIDITY of user's mailbox (STATUS).
func (s *Server) UIDValidity(t testing.TB, user, mailbox string) uint32 {
	t.Helper()
	return s.mail().UIDValidity(t, user, mailbox)
}

// RenewUIDValidity gives user's mailbox a new UIDVALIDITY the only way the
// server allows, and returns it:
//
//   - Courier: the first line of the folder's courierimapuiddb is rewritten
//     with the old value + 1000; UIDs and files stay (a restored backup).
//   - Cyrus keeps UIDVALIDITY in its index and has no tool to set it, so the
//     mailbox is DELETEd and CREATEd again and its messages APPENDed back
//     in UID order, with their flags and INTERNALDATE: same content, new
//     epoch, UIDs from 1 (a user's "rebuild the folder", or a migration).
//     INBOX cannot be renewed this way (deleting user.NAME deletes the
//     account).
func (s *Server) RenewUIDValidity(t testing.TB, user, mailbox string) uint32 {
	t.Helper()
	old := s.UIDValidity(t, user, mailbox)
	switch s.Kind {
	case "courier":
		if err := s.rewriteUIDValidity(user, mailbox, old+1000); err != nil {
			t.Fatalf("chroottest: renew UIDVALIDITY of %q: %v", mailbox, err)
		}
	case "cyrus":
		if strings.EqualFold(mailbox, "INBOX") {
			t.Fatalf("chroottest: Cyrus cannot renew the UIDVALIDITY of INBOX")
		}
		if err := s.recreate(user, mailbox); err != nil {
			t.Fatalf("chroottest: renew UIDVALIDITY of %q: %v", mailbox, err)
		}
	}
	v := s.UIDValidity(t, user, mailbox)
	if v == old {
		t.Fatalf("chroottest: %s: UIDVALIDITY of %q still %d after renewing it", s.Kind, mailbox, v)
	}
	return v
}

type saved struct {
	uid   imap.UID
	flags []string
	date  time.Time
	body  []byte
}

func (s *Server) recreate(user, mailbox string) error {
	return s.with(user, func(c *imapclient.Client) error {
		if _, err := c.Select(mailbox, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
			return fmt.Errorf("examine %q: %w", mailbox, err)
		}
		msgs, err := c.Fetch(imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}, &imap.FetchOptions{
			UID: true, Flags: true, InternalDate: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}},
		}).Collect()
		if err != nil {
			return fmt.Errorf("fetch %q: %w", mailbox, err)
		}
		var all []saved
		for _, m := range msgs {
			sv := saved{uid: m.UID, date: m.InternalDate}
			for _, f := range m.Flags {
				if !strings.EqualFold(string(f), `\Recent`) {
					sv.flags = append(sv.flags, string(f))
				}
			}
			for _, b := range m.BodySection {
				sv.body = b.Bytes
			}
			all = append(all, sv)
		}
		slices.SortFunc(all, func(a, b saved) int { return int(a.uid) - int(b.uid) })
		if err := c.Unselect().Wait(); err != nil {
			return fmt.Errorf("unselect: %w", err)
		}
		if err := c.Delete(mailbox).Wait(); err != nil {
			return fmt.Errorf("delete %q: %w", mailbox, err)
		}
		if err := c.Create(mailbox, nil).Wait(); err != nil {
			return fmt.Errorf("create %q: %w", mailbox, err)
		}
		for _, m := range all {
			if _, err := appendMessage(c, mailbox, m.body, m.flags, m.date); err != nil {
				return err
			}
		}
		return nil
	})
}

// Fetch returns every message in user's mailbox as UID → BODY[] bytes,
// read with EXAMINE and BODY.PEEK[].
func (s *Server) Fetch(t testing.TB, user, mailbox string) map[uint32][]byte {
	t.Helper()
	return s.mail().Fetch(t, user, mailbox)
}

// LoadMaildir puts the messages of a Maildir folder (or a directory of
// message files, such as $MAILVAULT_CORPUS/maildir/.easy-ham-1/cur) into
// user's mailbox (created if missing) and returns how many. A ":2,S" in a
// file name becomes \Seen, the file's mtime the INTERNALDATE.
//
//   - Courier: the files are copied into the folder's cur/ (tmp/, then
//     rename), as for Dovecot; Courier gives them UIDs when the folder is
//     next opened, which LoadMaildir does (EXAMINE).
//   - Cyrus keeps its own spool and index: the files are APPENDed, four
//     connections at once, so UIDs follow the order the appends finish in,
//     not file names.
func (s *Server) LoadMaildir(t testing.TB, user, mailbox, dir string) int {
	t.Helper()
	files, err := messageFiles(dir)
	if err != nil {
		t.Fatalf("chroottest: load %s: %v", dir, err)
	}
	if s.Kind == "courier" {
		err = s.copyFiles(user, mailbox, files)
	} else {
		err = s.appendFiles(user, mailbox, files)
	}
	if err != nil {
		t.Fatalf("chroottest: load %s into %q: %v", dir, mailbox, err)
	}
	return len(files)
}

func messageFiles(dir string) ([]string, error) {
	srcs := []string{dir}
	if fi, err := os.Stat(filepath.Join(dir, "cur")); err == nil && fi.IsDir() {
		srcs = []string{filepath.Join(dir, "cur"), filepath.Join(dir, "new")}
	}
	var files []string
	for _, src := range srcs {
		entries, err := os.ReadDir(src)
		if errors.Is(err, os.ErrNotExist) && src != dir {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") {
				files = append(files, filepath.Join(src, e.Name()))
			}
		}
	}
	slices.Sort(files)
	return files, nil
}

// maildirFlags are the IMAP flags of a Maildir file name's ":2," part.
func maildirFlags(name string) []string {
	i := strings.LastIndex(name, ":2,")
	if i < 0 {
		return nil
	}
	var out []string
	for _, c := range name[i+3:] {
		switch c {
		case 'S':
			out = append(out, `\Seen`)
		case 'R':
			out = append(out, `\Answered`)
		case 'F':
			out = append(out, `\Flagged`)
		case 'T':
			out = append(out, `\Deleted`)
		case 'D':
			out = append(out, `\Draft`)
		}
	}
	return out
}

func (s *Server) count(user, mailbox string) (uint32, error) {
	var n uint32
	err := s.with(user, func(c *imapclient.Client) error {
		if err := imaptest.EnsureMailbox(c, mailbox); err != nil {
			return err
		}
		sel, err := c.Select(mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
		if err != nil {
			return fmt.Errorf("examine %q: %w", mailbox, err)
		}
		n = sel.NumMessages
		return nil
	})
	return n, err
}

func (s *Server) appendFiles(user, mailbox string, files []string) error {
	before, err := s.count(user, mailbox)
	if err != nil {
		return err
	}
	const workers = 4
	jobs := make(chan string)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := s.login(user)
			if err != nil {
				errs <- err
				for range jobs {
				}
				return
			}
			defer c.Close()
			var first error
			for f := range jobs {
				if first != nil {
					continue
				}
				raw, err := os.ReadFile(f)
				if err != nil {
					first = err
					continue
				}
				fi, err := os.Stat(f)
				if err != nil {
					first = err
					continue
				}
				if _, err := appendMessage(c, mailbox, raw, maildirFlags(filepath.Base(f)), fi.ModTime()); err != nil {
					first = fmt.Errorf("%s: %w", filepath.Base(f), err)
				}
			}
			if first == nil {
				first = c.Logout().Wait()
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
			return err
		}
	}
	return s.checkCount(user, mailbox, before, len(files))
}

func (s *Server) checkCount(user, mailbox string, before uint32, added int) error {
	after, err := s.count(user, mailbox)
	if err != nil {
		return err
	}
	if after != before+uint32(added) {
		return fmt.Errorf("%q has %d messages after adding %d to %d", mailbox, after, added, before)
	}
	return nil
}

func (s *Server) copyFiles(user, mailbox string, files []string) error {
	before, err := s.count(user, mailbox) // creates the folder
	if err != nil {
		return err
	}
	folder := s.maildirFolder(user, mailbox)
	for _, src := range files {
		if err := copyMessage(src, folder); err != nil {
			return err
		}
	}
	return s.checkCount(user, mailbox, before, len(files))
}

func copyMessage(src, folder string) error {
	raw, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	base := filepath.Base(src)
	tmp := filepath.Join(folder, "tmp", base)
	if err := os.WriteFile(tmp, raw, 0o644); err != nil {
		return err
	}
	if err := os.Lchown(tmp, courierMailUID, courierMailGID); err != nil {
		return err
	}
	if err := os.Chtimes(tmp, fi.ModTime(), fi.ModTime()); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(folder, "cur", base))
}
