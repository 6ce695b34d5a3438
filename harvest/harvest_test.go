package harvest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"mailvault/harvest/memtest"
)

// memSink is an in-memory Sink that counts duplicate deliveries.
type memSink struct {
	mu       sync.Mutex
	msgs     map[string]Message // account/mailbox/uidvalidity/uid
	expunged map[string]bool
	skipped  []string
	dupes    int
}

func newMemSink() *memSink { return &memSink{msgs: map[string]Message{}, expunged: map[string]bool{}} }

func key(acct, mb string, uv, uid uint32) string {
	return fmt.Sprintf("%s/%s/%d/%d", acct, mb, uv, uid)
}

func (s *memSink) Checkpoint(_ context.Context, acct, _ string, mb string, uv uint32) (uint32, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := uint32(1)
	for _, m := range s.msgs {
		if m.Account == acct && m.Mailbox == mb && m.UIDValidity == uv && m.UID >= next {
			next = m.UID + 1
		}
	}
	return next, nil
}

func (s *memSink) Store(_ context.Context, msgs []Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range msgs {
		k := key(m.Account, m.Mailbox, m.UIDValidity, m.UID)
		if _, ok := s.msgs[k]; ok {
			s.dupes++
		}
		s.msgs[k] = m
	}
	return nil
}

func (s *memSink) Reconcile(_ context.Context, acct, mb string, uv uint32, flags map[uint32][]string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, m := range s.msgs {
		if m.Account != acct || m.Mailbox != mb || m.UIDValidity != uv {
			continue
		}
		if f, ok := flags[m.UID]; !ok {
			s.expunged[k] = true
		} else {
			m.Flags = f
			s.msgs[k] = m
		}
	}
	return nil
}

func (s *memSink) Skip(_ context.Context, acct, mb string, uv, uid uint32, reason string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.skipped = append(s.skipped, key(acct, mb, uv, uid)+": "+reason)
	return nil
}

func (s *memSink) MailboxesGone(_ context.Context, acct string, onServer []string) (map[string]int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	gone := map[string]int{}
	for k, m := range s.msgs {
		if m.Account == acct && !slices.Contains(onServer, m.Mailbox) && !s.expunged[k] {
			s.expunged[k] = true
			gone[m.Mailbox]++
		}
	}
	return gone, nil
}

func (s *memSink) count() (int, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.msgs), s.dupes
}

func memServer(t *testing.T) string { return memtest.Start(t) }

func appendMsg(t *testing.T, addr, mailbox string, raw []byte) { memtest.Append(t, addr, mailbox, raw) }

func testAccount(addr string) Account {
	host, port, _ := net.SplitHostPort(addr)
	var p int
	fmt.Sscan(port, &p)
	return Account{Name: "alice", Host: host, Port: p, TLS: "none", Username: "alice", Password: "secret",
		Idle: []string{"INBOX", "Archive"}, PollInterval: 200 * time.Millisecond, MaxConnections: 2}
}

func mail(i int) []byte {
	return fmt.Appendf(nil, "From: x@example.org\r\nSubject: message %d\r\nMessage-ID: <%d@example.org>\r\n\r\nbody %d\r\n", i, i, i)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestHarvestCatchUpIdleAndPoll(t *testing.T) {
	addr := memServer(t)
	for i := range 5 {
		appendMsg(t, addr, "INBOX", mail(i))
	}
	appendMsg(t, addr, "Archive", mail(100))
	sink := newMemSink()
	h := New(testAccount(addr), sink, &Options{FetchChunk: 2})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()

	waitFor(t, "catch-up of 6 messages", func() bool { n, _ := sink.count(); return n == 6 })
	// New mail in the IDLE mailbox and in a polled one.
	appendMsg(t, addr, "INBOX", mail(5))
	appendMsg(t, addr, "Archive", mail(101))
	appendMsg(t, addr, "Later", mail(200)) // a mailbox new since the harvester listed them
	waitFor(t, "new mail, also in a new mailbox", func() bool { n, _ := sink.count(); return n == 9 })
	// Let a few polls and IDLE rounds pass: nothing may be fetched twice.
	time.Sleep(700 * time.Millisecond)
	n, dupes := sink.count()
	if n != 9 || dupes != 0 {
		t.Fatalf("sink has %d messages, %d duplicate deliveries; want 9, 0", n, dupes)
	}
	sink.mu.Lock()
	var found bool
	for _, m := range sink.msgs {
		if m.Mailbox == "INBOX" && bytes.Equal(m.Raw, mail(3)) {
			found = true
		}
	}
	sink.mu.Unlock()
	if !found {
		t.Fatal("message 3 not delivered byte-exact")
	}
	// Flag change and expunge on the server reach the sink.
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Login("alice", "secret").Wait()
	c.Select("Archive", nil).Wait()
	if err := c.Store(imap.UIDSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	c.Select("INBOX", nil).Wait()
	if err := c.Store(imap.UIDSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
	c.Logout().Wait()
	c.Close()
	flagged := func() bool {
		sink.mu.Lock()
		defer sink.mu.Unlock()
		for _, m := range sink.msgs {
			if m.Mailbox == "Archive" && m.UID == 1 {
				return slices.Contains(m.Flags, `\Flagged`)
			}
		}
		return false
	}
	expunged := func() bool {
		sink.mu.Lock()
		defer sink.mu.Unlock()
		for k, m := range sink.msgs {
			if m.Mailbox == "INBOX" && m.UID == 2 {
				return sink.expunged[k]
			}
		}
		return false
	}
	waitFor(t, "the flag change", flagged)
	waitFor(t, "the expunge", expunged)
	if n, _ := sink.count(); n != 9 {
		t.Fatalf("sink has %d messages after an expunge, want 9 (expunged mail is kept)", n)
	}
	// Both watched mailboxes settle back into IDLE, each on its connection
	// (between rounds a mailbox is briefly "polling" while it syncs).
	waitFor(t, "both mailboxes idle", func() bool {
		st := h.Status()
		return st.State == "harvesting" && st.Mailboxes["INBOX"].State == "idle" && st.Mailboxes["Archive"].State == "idle"
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after cancel = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestHarvestWrongPasswordParksAccount(t *testing.T) {
	addr := memServer(t)
	acct := testAccount(addr)
	acct.Password = "wrong"
	h := New(acct, newMemSink(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go h.Run(ctx)
	waitFor(t, "error state", func() bool { return h.Status().State == "error" })
	if st := h.Status(); !strings.Contains(st.Error, "authentication failed") || !strings.Contains(st.Error, "check the password") {
		t.Fatalf("error = %q, want an authentication failure that says what to check", st.Error)
	}
}

func TestHarvestUnreachableServerBacksOff(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	h := New(testAccount(addr), newMemSink(), &Options{MinBackoff: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go h.Run(ctx)
	waitFor(t, "backing off", func() bool { return h.Status().State == "backing off" })
	if st := h.Status(); !strings.Contains(st.Error, "connect "+addr) {
		t.Fatalf("error = %q, want it to name the address", st.Error)
	}
}

func TestAccountURL(t *testing.T) {
	for _, tc := range []struct {
		a    Account
		want string
	}{
		{Account{Host: "mail.example.org", Username: "alice"}, "imap://alice@mail.example.org"},
		{Account{Host: "127.0.0.1", Port: 10143, TLS: "none", Username: "a@b"}, "imap://a%40b@127.0.0.1:10143"},
	} {
		if got := tc.a.URL(); got != tc.want {
			t.Errorf("URL() = %q, want %q", got, tc.want)
		}
	}
}

func TestMatchWildcard(t *testing.T) {
	for _, tc := range []struct {
		p, name string
		want    bool
	}{
		{"*", "INBOX", true},
		{"*", "Archive/2019", true}, // "*" crosses the hierarchy
		{"%", "Archive/2019", false},
		{"%", "Archive", true},
		{"Lists/*", "Lists/go/dev", true},
		{"Lists/%", "Lists/go/dev", false},
		{"Trash", "Trash", true},
		{"Trash", "Trash2", false},
		{"*Spam*", "Junk/Spam/2020", true},
	} {
		if got := matchWildcard(tc.p, tc.name); got != tc.want {
			t.Errorf("matchWildcard(%q, %q) = %v, want %v", tc.p, tc.name, got, tc.want)
		}
	}
}

// TestBudget: acquisitions are clamped to the budget's size (a message
// larger than the budget still goes, alone), block while the budget is
// spent, and give up when their context ends.
func TestBudget(t *testing.T) {
	b := NewBudget(100)
	release, err := b.acquire(context.Background(), 1000) // clamped to 100
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := b.acquire(ctx, 1); err == nil {
		t.Fatal("acquired from a spent budget")
	}
	got := make(chan struct{})
	go func() {
		r, err := b.acquire(context.Background(), 60)
		if err == nil {
			r()
		}
		close(got)
	}()
	select {
	case <-got:
		t.Fatal("acquired before the release")
	case <-time.After(20 * time.Millisecond):
	}
	release()
	select {
	case <-got:
	case <-time.After(time.Second):
		t.Fatal("not acquired after the release")
	}
	var none *Budget // no budget: never blocks
	r, err := none.acquire(context.Background(), 1<<40)
	if err != nil {
		t.Fatal(err)
	}
	r()
}

// TestHarvestersShareATinyBudget: accounts harvesting at once with a
// budget smaller than any chunk take turns, and all their mail arrives.
func TestHarvestersShareATinyBudget(t *testing.T) {
	budget := NewBudget(10)
	sink := newMemSink()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for a := range 3 {
		addr := memServer(t)
		for i := range 30 {
			appendMsg(t, addr, "INBOX", mail(100*a+i))
		}
		acct := testAccount(addr)
		acct.Name = fmt.Sprintf("acct%d", a)
		h := New(acct, sink, &Options{Budget: budget, FetchChunk: 7})
		wg.Add(1)
		go func() { defer wg.Done(); h.Run(ctx) }()
	}
	waitFor(t, "90 messages", func() bool { n, _ := sink.count(); return n == 90 })
	if _, dupes := sink.count(); dupes != 0 {
		t.Errorf("%d duplicate deliveries", dupes)
	}
	cancel()
	wg.Wait()
}
