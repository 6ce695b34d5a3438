// Package harvesttest is a test kit for tests that harvest from a real,
// private Dovecot (harvest/dovecottest) into a real indexer.Archive and then
// check the archive against what the server holds: small generated
// messages and Maildirs to load into the server, a harvest.Account for one
// of its users, an archive opened for one test, its status and occurrences,
// a search, and CheckAgainstServer, which compares one epoch of a mailbox
// with the BODY[] bytes the server serves (CRLF, even for LF-only Maildir
// files: see the dovecottest package doc), never with the files on disk.
//
// It is imported by tests only: the harvester's Dovecot suites (harvest),
// the IMAP SEARCH conformance suite (indexer) and the crash test of `mailvault
// serve` (cmd/mailvault).
package harvesttest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"mailvault/harvest"
	"mailvault/harvest/dovecottest"
	"mailvault/indexer"
	"mailvault/query"
)

// Server is what the kit needs of a test server: *dovecottest.Server and
// the Cyrus and Courier servers of harvest/chroottest have it.
type Server interface {
	// Address is the plain IMAP listener, "127.0.0.1:port".
	Address() string
	Password(user string) string
	// Fetch returns every message of a mailbox as UID → BODY[].
	Fetch(t testing.TB, user, mailbox string) map[uint32][]byte
}

var _ Server = (*dovecottest.Server)(nil)

// Account is a harvest.Account for user on srv's plain listener, IDLE on
// INBOX and polling the other mailboxes every second.
func Account(t testing.TB, srv Server, name, user string) harvest.Account {
	t.Helper()
	host, port, err := net.SplitHostPort(srv.Address())
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return harvest.Account{Name: name, Host: host, Port: p, TLS: "none", Username: user,
		Password: srv.Password(user), Idle: []string{"INBOX"}, PollInterval: time.Second}
}

// Archive is an archive opened for one test, closed by its cleanup unless
// the test closed it first (to reopen it, as a restarted process).
type Archive struct {
	*indexer.Archive
	closed bool
}

// OpenArchive opens (or creates) the archive in dir for the rest of the test.
func OpenArchive(t testing.TB, dir string) *Archive {
	t.Helper()
	a, err := indexer.Open(dir, nil)
	if err != nil {
		t.Fatalf("open archive: %v", err)
	}
	da := &Archive{Archive: a}
	t.Cleanup(func() { da.Close(t) })
	return da
}

// Close closes the archive now, failing t if that fails; later calls and the
// cleanup do nothing. (It hides indexer.Archive.Close, which returns the
// error.)
func (a *Archive) Close(t testing.TB) {
	if a.closed {
		return
	}
	a.closed = true
	if err := a.Archive.Close(); err != nil {
		t.Errorf("close archive: %v", err)
	}
}

// Status is `mailvault status`'s view of the archive, by "account/mailbox".
func Status(t testing.TB, a *Archive) map[string]indexer.MailboxStatus {
	t.Helper()
	st, err := indexer.Status(context.Background(), a.Dir())
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	out := map[string]indexer.MailboxStatus{}
	for _, s := range st {
		out[s.Account+"/"+s.Mailbox] = s
	}
	return out
}

// Occ is one occurrence row of the catalog with its content key.
type Occ struct {
	Account, Mailbox string
	UIDValidity, UID uint32
	SHA256           string
	Flags            string // space-separated
	Expunged         string // when it was marked expunged, "" if not
}

// Occurrences lists every occurrence of the archive.
func Occurrences(t testing.TB, a *Archive) []Occ {
	t.Helper()
	occs, err := a.Occurrences(context.Background())
	if err != nil {
		t.Fatalf("list occurrences: %v", err)
	}
	var out []Occ
	for _, o := range occs {
		out = append(out, Occ{Account: o.Account, Mailbox: o.Mailbox, UIDValidity: o.UIDValidity, UID: o.UID,
			SHA256: o.SHA256, Flags: strings.Join(o.Flags, " "), Expunged: o.Expunged})
	}
	return out
}

// CheckAgainstServer checks that the archive holds, for one epoch of a
// mailbox, exactly one occurrence per message the server has now, each
// keyed by the sha256 of the BODY[] the server returns for its UID, and
// (when blobs) that the stored blob is byte for byte that BODY[]. It
// returns the server's messages.
func CheckAgainstServer(t testing.TB, srv Server, a *Archive, occs []Occ, user, account, mailbox string, uidvalidity uint32, blobs bool) map[uint32][]byte {
	t.Helper()
	server := srv.Fetch(t, user, mailbox)
	got := map[uint32]string{}
	for _, o := range occs {
		if o.Account != account || o.Mailbox != mailbox || o.UIDValidity != uidvalidity {
			continue
		}
		if _, dup := got[o.UID]; dup {
			t.Errorf("%s/%s;UIDVALIDITY=%d: UID %d archived twice", account, mailbox, uidvalidity, o.UID)
		}
		got[o.UID] = o.SHA256
	}
	bad := 0
	report := func(format string, args ...any) {
		bad++
		if bad <= 10 {
			t.Errorf("%s/%s;UIDVALIDITY=%d: "+format, append([]any{account, mailbox, uidvalidity}, args...)...)
		}
	}
	for _, uid := range slices.Sorted(maps.Keys(server)) {
		body := server[uid]
		want := shaHex(body)
		g, ok := got[uid]
		switch {
		case !ok:
			report("server UID %d (sha256 %s) not archived", uid, want[:12])
			continue
		case g != want:
			report("UID %d archived as sha256 %s, server BODY[] hashes to %s", uid, g, want)
			continue
		}
		if blobs {
			raw, err := a.Raw(g)
			if err != nil {
				report("UID %d: blob %s: %v", uid, g[:12], err)
			} else if !bytes.Equal(raw, body) {
				report("UID %d: blob %s is not the server's BODY[] (%d vs %d bytes)", uid, g[:12], len(raw), len(body))
			}
		}
	}
	for uid := range got {
		if _, ok := server[uid]; !ok {
			report("UID %d archived but not on the server", uid)
		}
	}
	if bad > 10 {
		t.Errorf("%s/%s: %d problems in all", account, mailbox, bad)
	}
	return server
}

// Search runs a human-syntax query against the archive (at most 1,000 hits).
func Search(t testing.TB, a *Archive, q string) []indexer.Hit {
	t.Helper()
	n, err := query.ParseHuman(q)
	if err != nil {
		t.Fatalf("parse %q: %v", q, err)
	}
	res, err := a.Search(context.Background(), n, &indexer.SearchOptions{Limit: 1000})
	if err != nil {
		t.Fatalf("search %q: %v", q, err)
	}
	return res.Hits
}

// Message is a small LF-only message; its body holds the word
// Marker(tag, i), found by search. tag must be letters and digits.
func Message(tag string, i int) []byte {
	return []byte(fmt.Sprintf("From: Sender %[2]d <sender%[2]d@example.org>\n"+
		"To: alice@example.org\n"+
		"Subject: %[1]s number %[2]d\n"+
		"Date: Mon, 4 Mar 2024 10:%02[3]d:00 +0100\n"+
		"Message-ID: <%[1]s.%[2]d@example.org>\n"+
		"\n"+
		"This is message %[2]d of %[1]s.\n"+
		"Marker: %[4]s\n", tag, i, i%60, Marker(tag, i)))
}

// Marker is the word in the body of Message(tag, i).
func Marker(tag string, i int) string { return fmt.Sprintf("%sm%d", tag, i) }

// Messages returns Message(tag, 1) to Message(tag, n).
func Messages(tag string, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = Message(tag, i+1)
	}
	return out
}

// Maildir writes msgs as a Maildir folder (cur/, names in order, no flags)
// for dovecottest's LoadMaildir, which gives them UIDs 1..n.
func Maildir(t testing.TB, msgs [][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for i, m := range msgs {
		if err := os.WriteFile(filepath.Join(dir, "cur", fmt.Sprintf("%06d.dovecot-test:2,", i+1)), m, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func shaHex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// WaitFor polls cond until it holds and returns how long that took; on
// timeout it fails the test with what and cond's last description.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		ok, state := cond()
		if ok {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("timed out after %v waiting for %s; last state: %s", timeout, what, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
