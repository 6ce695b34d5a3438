// Package imaptest is the client side that the test servers of
// harvest/dovecottest and harvest/chroottest (Cyrus, Courier) share: the
// helpers that change mail the way a user's other mail client would, over
// IMAP, each on a connection of its own (LOGIN, work, LOGOUT), so that they
// never disturb a harvester's session except through what the server
// announces.
//
// Only what is the same on every server lives here. What is not stays with
// its server: Dovecot's doveadm, Cyrus's and Courier's ways of renewing
// UIDVALIDITY, the bulk loads, and the CRLF that Cyrus needs in an APPEND
// (chroottest converts before it calls Append). Mailbox names are passed
// through as given: the caller uses the server's own names ("INBOX.a" on
// Cyrus and Courier; see chroottest's Server.Mailbox).
//
// Each server keeps its exported helpers, with their own doc comments, and
// has them call a Mail; so the servers' APIs are unchanged and this package
// is imported only by them.
package imaptest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// ErrNoSuchMessage is wrapped by the errors of SetFlags and Expunge when the
// mailbox has no message with that UID.
var ErrNoSuchMessage = errors.New("no such message")

// Mail logs in to one server. A server builds it when it needs it (a
// Dovecot retried on a taken port has a new Addr), so it holds values, not
// the server.
type Mail struct {
	// Name prefixes the messages of failed tests ("dovecottest").
	Name string
	// Addr is the plain IMAP listener; LOGIN works there without TLS.
	Addr string
	// Password returns user's password.
	Password func(user string) string
}

// Dial returns an IMAP client on Addr, logged in as user; t.Cleanup closes
// it.
func (m Mail) Dial(t testing.TB, user string) *imapclient.Client {
	t.Helper()
	c, err := m.Login(user)
	if err != nil {
		t.Fatalf("%s: %v", m.Name, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Login returns a client on Addr, logged in as user; the caller closes it.
func (m Mail) Login(user string) (*imapclient.Client, error) {
	c, err := imapclient.DialInsecure(m.Addr, &imapclient.Options{
		Dialer: &net.Dialer{Timeout: 5 * time.Second},
	})
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", m.Addr, err)
	}
	if err := c.Login(user, m.Password(user)).Wait(); err != nil {
		c.Close()
		return nil, fmt.Errorf("login %q at %s: %w", user, m.Addr, err)
	}
	return c, nil
}

// With runs fn on a fresh session of user, then logs out.
func (m Mail) With(user string, fn func(c *imapclient.Client) error) error {
	c, err := m.Login(user)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := fn(c); err != nil {
		return err
	}
	return c.Logout().Wait()
}

// EnsureMailbox creates mailbox; an existing one, INBOX included, is fine.
// Dovecot and Cyrus say so with [ALREADYEXISTS] or "exists" in the text;
// Courier answers a bare NO ("Cannot create this folder."), so after any
// other NO a STATUS that works means the mailbox is there.
func EnsureMailbox(c *imapclient.Client, mailbox string) error {
	if strings.EqualFold(mailbox, "INBOX") {
		return nil
	}
	err := c.Create(mailbox, nil).Wait()
	if err == nil {
		return nil
	}
	var imapErr *imap.Error
	if errors.As(err, &imapErr) && (imapErr.Code == imap.ResponseCodeAlreadyExists ||
		strings.Contains(strings.ToLower(imapErr.Text), "exists")) {
		return nil
	}
	if _, serr := c.Status(mailbox, &imap.StatusOptions{NumMessages: true}).Wait(); serr == nil {
		return nil
	}
	return fmt.Errorf("create %q: %w", mailbox, err)
}

// CreateMailbox creates mailbox for user (EnsureMailbox).
func (m Mail) CreateMailbox(t testing.TB, user, mailbox string) {
	t.Helper()
	if err := m.With(user, func(c *imapclient.Client) error { return EnsureMailbox(c, mailbox) }); err != nil {
		t.Fatalf("%s: %v", m.Name, err)
	}
}

// Append stores raw, as given, in user's mailbox (created if missing) with
// the current time as INTERNALDATE, and returns the UID the server
// assigned.
func (m Mail) Append(t testing.TB, user, mailbox string, raw []byte, flags []string) uint32 {
	t.Helper()
	var uid uint32
	err := m.With(user, func(c *imapclient.Client) error {
		if err := EnsureMailbox(c, mailbox); err != nil {
			return err
		}
		var err error
		uid, err = AppendMessage(c, mailbox, raw, flags, time.Time{})
		return err
	})
	if err != nil {
		t.Fatalf("%s: %v", m.Name, err)
	}
	return uid
}

// AppendMessage APPENDs raw to mailbox on c with flags and INTERNALDATE
// date (zero: the server's now) and returns the UID from APPENDUID. A
// server without UIDPLUS is an error: every helper and test relies on
// knowing the UID, and Dovecot, Cyrus and Courier all have it.
func AppendMessage(c *imapclient.Client, mailbox string, raw []byte, flags []string, date time.Time) (uint32, error) {
	opts := &imap.AppendOptions{Time: date}
	for _, f := range flags {
		opts.Flags = append(opts.Flags, imap.Flag(f))
	}
	cmd := c.Append(mailbox, int64(len(raw)), opts)
	if _, err := cmd.Write(raw); err != nil {
		cmd.Close()
		return 0, fmt.Errorf("append to %q: %w", mailbox, err)
	}
	if err := cmd.Close(); err != nil {
		return 0, fmt.Errorf("append to %q: %w", mailbox, err)
	}
	data, err := cmd.Wait()
	if err != nil {
		return 0, fmt.Errorf("append to %q: %w", mailbox, err)
	}
	if data.UID == 0 {
		return 0, fmt.Errorf("append to %q: no APPENDUID in the response (UIDPLUS)", mailbox)
	}
	return uint32(data.UID), nil
}

// SetFlags replaces the flags of message uid in user's mailbox (UID STORE
// FLAGS). It fails the test if there is no such UID.
func (m Mail) SetFlags(t testing.TB, user, mailbox string, uid uint32, flags []string) {
	t.Helper()
	err := m.With(user, func(c *imapclient.Client) error {
		if _, err := c.Select(mailbox, nil).Wait(); err != nil {
			return fmt.Errorf("select %q: %w", mailbox, err)
		}
		store := &imap.StoreFlags{Op: imap.StoreFlagsSet, Flags: []imap.Flag{}}
		for _, f := range flags {
			store.Flags = append(store.Flags, imap.Flag(f))
		}
		msgs, err := c.Store(imap.UIDSetNum(imap.UID(uid)), store, nil).Collect()
		if err != nil {
			return fmt.Errorf("store flags of UID %d in %q: %w", uid, mailbox, err)
		}
		if len(msgs) == 0 {
			return fmt.Errorf("store flags: UID %d in %q: %w", uid, mailbox, ErrNoSuchMessage)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%s: %v", m.Name, err)
	}
}

// Expunge removes message uid from user's mailbox: \Deleted, then UID
// EXPUNGE (UIDPLUS) of that UID only, so other \Deleted messages stay. It
// fails the test if there is no such UID.
func (m Mail) Expunge(t testing.TB, user, mailbox string, uid uint32) {
	t.Helper()
	err := m.With(user, func(c *imapclient.Client) error {
		if _, err := c.Select(mailbox, nil).Wait(); err != nil {
			return fmt.Errorf("select %q: %w", mailbox, err)
		}
		set := imap.UIDSetNum(imap.UID(uid))
		store := &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}
		if err := c.Store(set, store, nil).Close(); err != nil {
			return fmt.Errorf("expunge UID %d in %q: %w", uid, mailbox, err)
		}
		seqs, err := c.UIDExpunge(set).Collect()
		if err != nil {
			return fmt.Errorf("expunge UID %d in %q: %w", uid, mailbox, err)
		}
		if len(seqs) == 0 {
			return fmt.Errorf("expunge: UID %d in %q: %w", uid, mailbox, ErrNoSuchMessage)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%s: %v", m.Name, err)
	}
}

// UIDValidity returns the UIDVALIDITY of user's mailbox (STATUS).
func (m Mail) UIDValidity(t testing.TB, user, mailbox string) uint32 {
	t.Helper()
	var v uint32
	err := m.With(user, func(c *imapclient.Client) error {
		data, err := c.Status(mailbox, &imap.StatusOptions{UIDValidity: true}).Wait()
		if err != nil {
			return fmt.Errorf("status %q: %w", mailbox, err)
		}
		v = data.UIDValidity
		return nil
	})
	if err != nil {
		t.Fatalf("%s: %v", m.Name, err)
	}
	return v
}

// Fetch returns every message in user's mailbox as UID → BODY[] bytes,
// read with EXAMINE and BODY.PEEK[] so no flag changes. It fails the test
// if it got fewer or more messages than EXAMINE announced.
func (m Mail) Fetch(t testing.TB, user, mailbox string) map[uint32][]byte {
	t.Helper()
	out := map[uint32][]byte{}
	err := m.With(user, func(c *imapclient.Client) error {
		sel, err := c.Select(mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
		if err != nil {
			return fmt.Errorf("examine %q: %w", mailbox, err)
		}
		if sel.NumMessages == 0 {
			return nil
		}
		fc := c.Fetch(imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}, &imap.FetchOptions{ // 1:*
			UID:         true,
			BodySection: []*imap.FetchItemBodySection{{Peek: true}},
		})
		for msg := fc.Next(); msg != nil; msg = fc.Next() {
			var uid uint32
			var body []byte
			for item := msg.Next(); item != nil; item = msg.Next() {
				switch item := item.(type) {
				case imapclient.FetchItemDataUID:
					uid = uint32(item.UID)
				case imapclient.FetchItemDataBodySection:
					if body, err = io.ReadAll(item.Literal); err != nil {
						fc.Close()
						return fmt.Errorf("fetch %q: %w", mailbox, err)
					}
				}
			}
			if uid != 0 {
				out[uid] = body
			}
		}
		if err := fc.Close(); err != nil {
			return fmt.Errorf("fetch %q: %w", mailbox, err)
		}
		if len(out) != int(sel.NumMessages) {
			return fmt.Errorf("fetch %q: got %d messages, mailbox has %d", mailbox, len(out), sel.NumMessages)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%s: %v", m.Name, err)
	}
	return out
}

// LogTail returns the last n lines of the log file at path, headed by its
// name, for the output of a failed test.
func LogTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("no log: %v", err)
	}
	lines := strings.SplitAfter(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "last lines of " + path + ":\n" + strings.Join(lines, "")
}
