package journal_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"mailvault/indexer"
	"mailvault/journal"
	"mailvault/service"
)

// rig is a journal listener over a real archive (SQLite catalog, Bleve on
// disk, the filesystem store) and a service to search it.
type rig struct {
	a          *indexer.Archive
	svc        *service.Service
	smtp, lmtp string
	stop       func()
}

func openRig(t *testing.T, dir string, o journal.Options) *rig {
	t.Helper()
	a, err := indexer.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The audit trail lives apart from the archive here, so that the
	// disk-full test fills only the archive's filesystem.
	users, err := service.OpenUsers(t.TempDir())
	if err != nil {
		a.Close()
		t.Fatal(err)
	}
	l1, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o.SMTP, o.LMTP = l1, l2
	o.ShutdownGrace = 2 * time.Second
	srv := journal.New(service.NewJournalSink(a), &o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	r := &rig{a: a, svc: service.New(a, &service.Options{Users: users}), smtp: l1.Addr().String(), lmtp: l2.Addr().String()}
	var once sync.Once
	r.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
			users.Close()
			if err := a.Close(); err != nil {
				t.Errorf("close archive: %v", err)
			}
		})
	}
	t.Cleanup(r.stop)
	return r
}

var admin = service.Caller{Name: "admin", Role: service.RoleAdmin, Remote: "test"}

func (r *rig) search(t *testing.T, c service.Caller, q string) *service.SearchResult {
	t.Helper()
	ctx := context.Background()
	if err := r.a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := r.svc.Search(ctx, c, service.SearchRequest{Query: q, Limit: 100})
	if err != nil {
		t.Fatalf("search %q: %v", q, err)
	}
	return res
}

func sendMail(addr, from string, to []string, msg string) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.SendMail(from, to, strings.NewReader(msg))
}

const memo = "From: Alice <alice@example.org>\r\nTo: bob@example.org\r\nCc: carol@example.org\r\n" +
	"Subject: the merger memo\r\nMessage-ID: <memo-1@example.org>\r\nDate: Mon, 1 Dec 2025 10:00:00 +0000\r\n\r\nconfidential\r\n"

func TestArchiveEnvelopeSearchScope(t *testing.T) {
	r := openRig(t, t.TempDir(), journal.Options{EncodedPrefix: "journal"})
	rcpts := []string{"journal+bob=example.org@archive.invalid", "journal+carol=example.org@archive.invalid",
		"journal+dave=example.net@archive.invalid"} // dave is the Bcc: no header names him
	if err := sendMail(r.smtp, "alice@example.org", rcpts, memo); err != nil {
		t.Fatalf("send: %v", err)
	}
	for _, tc := range []struct {
		q    string
		want uint64
	}{
		{"bcc:dave@example.net", 1},
		{"bcc:bob@example.org", 0}, // bob is in To:, not a blind copy
		{"rcpt:dave@example.net", 1},
		{"rcpt:bob@example.org", 1},
		{"rcpt:carol@example.org", 1},
		{"rcpt:nobody@example.org", 0},
		{"to:dave@example.net", 0},
		{"account:journal mailbox:Journal merger", 1},
	} {
		if got := r.search(t, admin, tc.q).Total; got != tc.want {
			t.Errorf("admin search %q: %d hits, want %d", tc.q, got, tc.want)
		}
	}
	res := r.search(t, admin, "bcc:dave@example.net")
	if len(res.Hits) != 1 || len(res.Hits[0].Occurrences) != 1 {
		t.Fatalf("hits %+v", res.Hits)
	}
	o := res.Hits[0].Occurrences[0]
	e := o.Envelope
	if o.Account != "journal" || o.Mailbox != journal.Mailbox || e == nil || e.MailFrom != "alice@example.org" ||
		strings.Join(e.Recipients, ",") != "bob@example.org,carol@example.org,dave@example.net" ||
		strings.Join(e.RcptTo, ",") != strings.Join(rcpts, ",") || e.Listener != "smtp" {
		t.Fatalf("occurrence %+v envelope %+v", o, e)
	}
	// Someone else's scope sees none of it: no hit, and the message is
	// not found.
	alice := service.Caller{Name: "alice", Role: service.RoleUser, Accounts: []string{"alice"}, Remote: "test"}
	if got := r.search(t, alice, "bcc:dave@example.net").Total; got != 0 {
		t.Errorf("alice's search bcc:dave: %d hits, want 0", got)
	}
	if _, err := r.svc.Message(context.Background(), alice, res.Hits[0].SHA256); !errors.Is(err, service.ErrNotFound) {
		t.Errorf("alice reads the journal message: %v, want not found", err)
	}
	// Alice's own mailbox holds the same bytes (an import of the journal
	// copy, say): she finds her copy by its headers, never by the
	// journal's envelope; a user who sees the journal account does.
	if _, err := r.a.EnsureMailbox(context.Background(), "alice", "INBOX", "import", 7); err != nil {
		t.Fatal(err)
	}
	if _, err := r.a.Ingest(context.Background(), []indexer.Item{{Account: "alice", Mailbox: "INBOX", UIDValidity: 7, UID: 1, Raw: []byte(memo)}}); err != nil {
		t.Fatal(err)
	}
	auditor := service.Caller{Name: "jo", Role: service.RoleUser, Accounts: []string{"journal"}, Remote: "test"}
	for _, tc := range []struct {
		c    service.Caller
		q    string
		want uint64
	}{
		{alice, "bcc:dave@example.net", 0},
		{alice, "rcpt:dave@example.net", 0},
		{alice, "rcpt:bob@example.org", 1}, // the To: header
		{alice, "merger", 1},
		{auditor, "bcc:dave@example.net", 1},
		{auditor, "rcpt:DAVE@example.net", 1},
		{auditor, "bcc:bob@example.org", 0},
		{admin, "bcc:dave@example.net", 1},
		{admin, "bcc:dave", 1}, // word match for who sees every account
	} {
		if got := r.search(t, tc.c, tc.q).Total; got != tc.want {
			t.Errorf("%s's search %q with alice's copy: %d hits, want %d", tc.c.Name, tc.q, got, tc.want)
		}
	}
	h, err := r.svc.Message(context.Background(), admin, res.Hits[0].SHA256)
	if err != nil || len(h.Occurrences) != 2 {
		t.Fatalf("admin reads the message: %v %+v", err, h)
	}
	for _, o := range h.Occurrences {
		if (o.Account == "journal") != (o.Envelope != nil) {
			t.Errorf("occurrence %s/%s envelope %+v", o.Account, o.Mailbox, o.Envelope)
		}
	}
}

// A retried delivery (same bytes, same envelope: the sender never got the
// reply) is acknowledged and not archived twice; the same bytes with
// another envelope are another journaled copy.
func TestArchiveRetryNotDuplicated(t *testing.T) {
	r := openRig(t, t.TempDir(), journal.Options{})
	for range 3 {
		if err := sendMail(r.smtp, "alice@example.org", []string{"journal@archive.invalid"}, memo); err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	if err := sendMail(r.lmtp+"", "alice@example.org", nil, ""); err == nil {
		t.Fatal("a transaction without recipients was accepted")
	}
	if err := sendMail(r.smtp, "other@example.org", []string{"journal@archive.invalid"}, memo); err != nil {
		t.Fatalf("send: %v", err)
	}
	res := r.search(t, admin, "merger")
	if res.Total != 1 || len(res.Hits[0].Occurrences) != 2 {
		t.Fatalf("hits %+v, want one message with two journaled copies", res.Hits)
	}
	// UIDs ascend; a recognised retry leaves its UID unused (IMAP UIDs
	// may have gaps).
	if a, b := res.Hits[0].Occurrences[0], res.Hits[0].Occurrences[1]; a.UID != 1 || b.UID <= a.UID ||
		a.Envelope.MailFrom == b.Envelope.MailFrom {
		t.Fatalf("occurrences %+v %+v", a, b)
	}
}

// UIDs continue after a restart from the catalog's checkpoint, under the
// same UIDVALIDITY; a message with no header at all is stored and found.
func TestArchiveRestartAndJunk(t *testing.T) {
	dir := t.TempDir()
	r := openRig(t, dir, journal.Options{})
	for i := range 3 {
		msg := fmt.Sprintf("Subject: before restart %d\r\n\r\nbody\r\n", i)
		if err := sendMail(r.smtp, "a@example.org", []string{"j@archive.invalid"}, msg); err != nil {
			t.Fatal(err)
		}
	}
	r.stop()
	r = openRig(t, dir, journal.Options{})
	// CR LF throughout: the SMTP client turns a bare LF into CR LF on the
	// wire, and the archive keeps what the wire carried.
	junk := "this has no header at all, just \x00 bytes and\r\n no blank line\r\n"
	if err := sendMail(r.lmtp, "a@example.org", []string{"j@archive.invalid"}, junk); err == nil {
		t.Fatal("plain SMTP client to the LMTP port succeeded")
	}
	if err := sendMail(r.smtp, "a@example.org", []string{"j@archive.invalid"}, junk); err != nil {
		t.Fatalf("send junk: %v", err)
	}
	res := r.search(t, admin, "account:journal")
	if res.Total != 4 {
		t.Fatalf("%d messages, want 4", res.Total)
	}
	uv := res.Hits[0].Occurrences[0].UIDValidity
	seen := map[uint32]bool{}
	for _, h := range res.Hits {
		o := h.Occurrences[0]
		if o.UIDValidity != uv {
			t.Errorf("UIDVALIDITY %d and %d", o.UIDValidity, uv)
		}
		seen[o.UID] = true
	}
	for uid := uint32(1); uid <= 4; uid++ {
		if !seen[uid] {
			t.Errorf("UID %d missing; have %v", uid, seen)
		}
	}
	_, raw, err := r.svc.Raw(context.Background(), admin, findJunk(t, r), "download")
	if err != nil || string(raw) != junk {
		t.Fatalf("junk message: %q, %v", raw, err)
	}
}

func findJunk(t *testing.T, r *rig) string {
	t.Helper()
	for _, h := range r.search(t, admin, "account:journal").Hits {
		if h.ParseError != "" || h.Subject == "" {
			return h.SHA256
		}
	}
	t.Fatal("the headerless message is not in the archive")
	return ""
}

// Disk full during ingest: a tiny tmpfs holds the archive; a filler takes
// the rest. The sender gets a 4xx, nothing is half-stored, and once space
// is back the retry is stored once.
func TestArchiveDiskFull(t *testing.T) {
	if os.Getuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("the disk-full test mounts a tmpfs and needs root")
		}
		t.Skip("needs root to mount a tmpfs")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", mnt).CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("mount tmpfs: %v %s", err, out)
		}
		t.Skipf("mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })
	dir := filepath.Join(mnt, "data")
	r := openRig(t, dir, journal.Options{MaxMessageBytes: 8 << 20})
	if err := sendMail(r.smtp, "a@example.org", []string{"j@archive.invalid"}, memo); err != nil {
		t.Fatalf("send before the disk is full: %v", err)
	}
	if got := r.search(t, admin, "account:journal").Total; got != 1 { // and the index is committed
		t.Fatalf("%d messages, want 1", got)
	}
	filler := filepath.Join(mnt, "filler")
	fill(t, filler)
	big := "Subject: big\r\nMessage-ID: <big@example.org>\r\n\r\n" + strings.Repeat("incompressible? no, but large enough\r\n", 1) +
		randomText(4<<20) + "\r\n"
	err := sendMail(r.smtp, "a@example.org", []string{"j@archive.invalid"}, big)
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 452 {
		t.Fatalf("send on a full disk: %v, want 452 (insufficient storage, retry)", err)
	}
	if got := r.search(t, admin, "account:journal").Total; got != 1 {
		t.Fatalf("%d messages after the refused one, want 1", got)
	}
	os.Remove(filler)
	if err := sendMail(r.smtp, "a@example.org", []string{"j@archive.invalid"}, big); err != nil {
		t.Fatalf("retry with space: %v", err)
	}
	res := r.search(t, admin, "account:journal")
	if res.Total != 2 {
		t.Fatalf("%d messages after the retry, want 2", res.Total)
	}
	rep, err := r.a.Verify(context.Background(), nil)
	if err != nil || len(rep.Problems) != 0 || rep.Messages != 2 {
		t.Errorf("verify: %v %+v, want 2 messages and no problems", err, rep)
	}
}

// fill writes path until the filesystem is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			break
		}
	}
	f.Sync()
}

// randomText is n bytes of lines that compress poorly (the store
// compresses blobs).
func randomText(n int) string {
	var b strings.Builder
	x := uint64(88172645463325252)
	for b.Len() < n {
		for range 76 {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			b.WriteByte("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/"[x%64])
		}
		b.WriteString("\r\n")
	}
	return b.String()
}
