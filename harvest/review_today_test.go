package harvest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"mailvault/harvest/memtest"
)

// Review of the day's harvest changes (Gmail side connection, throttling,
// BYE capture): each test here failed before its fix, or pins a bound a
// hostile server could otherwise break.

// byeFeed reads server through a guardConn in random pieces, after the
// client wrote client, and returns the BYE lines onBye was given and the
// guard's error.
func byeFeed(t *testing.T, rng *rand.Rand, client, server string) ([]string, error) {
	t.Helper()
	var got []string
	g := &guardConn{Conn: &scriptConn{in: strings.NewReader(server)}, onBye: func(l string) { got = append(got, l) }}
	if client != "" {
		if _, err := g.Write([]byte(client)); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 1+rng.IntN(64))
	for {
		n := 1 + rng.IntN(len(buf))
		_, err := g.Read(buf[:n])
		if err == io.EOF {
			return got, nil
		}
		if err != nil {
			return got, err
		}
	}
}

// scriptConn is a net.Conn that reads in and discards what is written.
type scriptConn struct {
	net.Conn
	in io.Reader
}

func (c *scriptConn) Read(p []byte) (int, error)  { return c.in.Read(p) }
func (c *scriptConn) Write(p []byte) (int, error) { return len(p), nil }
func (c *scriptConn) Close() error                { return nil }

// TestReviewGuardByeOnlyAtLineStart: guardConn hands onBye the BYE lines
// the server sent, however the bytes are cut, and never text inside a
// literal (a BODY[] or any other), nor anything of a line over the limit.
// After the client's own LOGOUT the BYE is the answer to it, not the
// server's reason for ending the session, and is not handed over.
func TestReviewGuardByeOnlyAtLineStart(t *testing.T) {
	bodyWithBye := "Subject: x\r\n\r\n* BYE [UNAVAILABLE] inside a body\r\n"
	nameWithBye := "a\r\n* BYE [UNAVAILABLE] inside a name"
	for _, tc := range []struct {
		name, client, server string
		want                 []string
		hostile              bool
	}{
		{name: "bye", server: "* OK hi\r\n* BYE [UNAVAILABLE] Server overloaded\r\n",
			want: []string{"* BYE [UNAVAILABLE] Server overloaded"}},
		{name: "in-body-literal", server: fmt.Sprintf("* 1 FETCH (UID 1 BODY[] {%d}\r\n%s)\r\nA1 OK done\r\n", len(bodyWithBye), bodyWithBye)},
		{name: "in-partial-body-literal", server: fmt.Sprintf("* 1 FETCH (UID 1 BODY[]<0> {%d}\r\n%s)\r\n", len(bodyWithBye), bodyWithBye)},
		{name: "in-other-literal", server: fmt.Sprintf("* LIST () \"/\" {%d}\r\n%s\r\n", len(nameWithBye), nameWithBye)},
		{name: "after-body-literal", server: fmt.Sprintf("* 1 FETCH (UID 1 BODY[] {%d}\r\n%s)\r\n* BYE [UNAVAILABLE] after\r\n", len(bodyWithBye), bodyWithBye),
			want: []string{"* BYE [UNAVAILABLE] after"}},
		{name: "not-at-start", server: "* OK * BYE [UNAVAILABLE] no\r\n"},
		{name: "ten-megabyte-bye", server: "* BYE [UNAVAILABLE] " + strings.Repeat("x", 10<<20) + "\r\n", hostile: true},
		{name: "after-own-logout", client: "T9 LOGOUT\r\n", server: "* BYE Logging out\r\nT9 OK done\r\n"},
		{name: "logout-in-lower-case", client: "t1 logout\r\n", server: "* BYE [UNAVAILABLE] Logging out\r\n"},
		{name: "logout-not-the-command", client: "T2 SELECT \"LOGOUT\"\r\n", server: "* BYE [UNAVAILABLE] Server overloaded\r\n",
			want: []string{"* BYE [UNAVAILABLE] Server overloaded"}},
	} {
		rng := rand.New(rand.NewPCG(uint64(len(tc.server)), 3))
		for range 20 {
			got, err := byeFeed(t, rng, tc.client, tc.server)
			if tc.hostile != errors.Is(err, ErrHostile) {
				t.Fatalf("%s: guard error %v, want ErrHostile %v", tc.name, err, tc.hostile)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("%s: onBye given %q, want %q", tc.name, got, tc.want)
			}
		}
	}
}

// TestReviewLogoutByeDoesNotMaskThrottle: the server ends the main
// connection with "BYE [UNAVAILABLE]" while a second connection IDLEs on
// another mailbox. The session's end logs that one out, and the server's
// "* BYE Logging out" answering it must not stand for why the session
// ended: the account is throttled (ThrottleBackoff), not retried at once.
func TestReviewLogoutByeDoesNotMaskThrottle(t *testing.T) {
	addr := memtest.Start(t)
	memtest.Append(t, addr, "INBOX", mail(1))
	memtest.Append(t, addr, "Archive", mail(2))
	p := startThrottleProxy(t, addr)
	var mu sync.Mutex
	armed, byes := false, 0
	p.script(nil, func(tag, name, line string) (string, bool) {
		mu.Lock()
		defer mu.Unlock()
		if armed && byes == 0 && name == "UID FETCH" && strings.Contains(strings.ToUpper(line), "BODY.PEEK[") {
			byes++
			return "* BYE [UNAVAILABLE] Server overloaded\r\n", true
		}
		return "", false
	})
	acct := testAccount(p.addr()) // IDLE on INBOX and Archive: two connections
	sink := newMemSink()
	h := New(acct, sink, &Options{MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, ThrottleBackoff: time.Hour})
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { done <- h.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "both mailboxes archived", func() bool { n, _ := sink.count(); return n == 2 })
	waitFor(t, "both connections watching", func() bool { return p.openConns() == 2 && h.Status().State == StateHarvesting })
	if f := h.Status().Counters.Failures; f != 0 {
		t.Fatalf("%d failures before the server's BYE; status %+v", f, h.Status())
	}
	mu.Lock()
	armed = true
	mu.Unlock()
	memtest.Append(t, addr, "INBOX", mail(3))
	waitFor(t, "the session to end", func() bool { return h.Status().Counters.Failures >= 1 })
	st := h.Status()
	if st.State != StateThrottled || st.Counters.Throttled != 1 || !strings.Contains(st.Error, "Server overloaded") {
		t.Fatalf("after the server's BYE [UNAVAILABLE]: state %s, throttled %d, error %q; want throttled, 1, with the server's words",
			st.State, st.Counters.Throttled, st.Error)
	}
}

// TestReviewGmailMetaBoundedByAsked: the side connection asks for a
// chunk's UIDs (at most FetchChunk). A server that announces a huge
// EXISTS and answers with FETCH responses for other UIDs without end is
// cut off at the UIDs asked plus extraFetchResponses, not at its own
// EXISTS (which it chose): every response held is a map entry.
func TestReviewGmailMetaBoundedByAsked(t *testing.T) {
	asked := []imap.UID{3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	for _, tc := range []struct {
		name    string
		extra   int  // FETCH responses for UIDs not asked for
		exists  int  // an EXISTS sent with the answer, 0: none
		hostile bool // the answer must be refused
	}{
		{"asked-only", 0, 0, false},
		{"some-unsolicited", 50, 0, false},
		{"unsolicited-up-to-the-limit", extraFetchResponses, 0, false},
		{"flood-under-a-huge-exists", 20 * extraFetchResponses, 1<<32 - 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ans strings.Builder
			if tc.exists > 0 {
				fmt.Fprintf(&ans, "* %d EXISTS\r\n", tc.exists)
			}
			for i, u := range asked {
				fmt.Fprintf(&ans, "* %d FETCH (UID %d X-GM-MSGID %d X-GM-THRID 1 X-GM-LABELS () FLAGS ())\r\n", i+1, u, 1000+u)
			}
			for i := range tc.extra {
				fmt.Fprintf(&ans, "* %d FETCH (UID %d FLAGS ())\r\n", 100+i, 100+i)
			}
			g, stop := pipeGmailConn(t, 20, ans.String())
			defer stop()
			info, err := g.meta(asked)
			if tc.hostile {
				if !errors.Is(err, ErrHostile) {
					t.Fatalf("meta: %d entries, err %v; want ErrHostile", len(info), err)
				}
				return
			}
			if err != nil {
				t.Fatalf("meta: %v", err)
			}
			for _, u := range asked {
				if in := info[uint32(u)]; in == nil || in.MsgID != 1000+uint64(u) {
					t.Errorf("UID %d: %+v, want X-GM-MSGID %d", u, in, 1000+u)
				}
			}
		})
	}
}

// pipeGmailConn is a side connection (after its EXAMINE: exists messages)
// over a pipe to a server that answers the next command with answer and
// a tagged OK.
func pipeGmailConn(t *testing.T, exists int, answer string) (*gmailConn, func()) {
	t.Helper()
	cl, sv := net.Pipe()
	q := &qconn{c: cl, r: bufio.NewReaderSize(cl, 32<<10), caps: map[string]bool{}, tag: 1, gmail: true,
		res: qresult{flags: map[uint32][]string{}, exists: exists, existsSeen: true}}
	go func() {
		defer sv.Close()
		line, err := bufio.NewReader(sv).ReadString('\n')
		if err != nil {
			return
		}
		tag, _, _ := strings.Cut(line, " ")
		w := bufio.NewWriter(sv)
		w.WriteString(answer)
		w.WriteString(tag + " OK done\r\n")
		w.Flush()
	}()
	return &gmailConn{q: q, mb: "Work", own: "Work"}, func() { cl.Close() }
}

// blockingSink is a memSink whose Store, once armed, tells stored and
// waits for proceed.
type blockingSink struct {
	*memSink
	armed   atomic.Bool
	stored  chan struct{}
	proceed chan struct{}
}

func (s *blockingSink) Store(ctx context.Context, msgs []Message) error {
	if s.armed.CompareAndSwap(true, false) {
		s.stored <- struct{}{}
		<-s.proceed
	}
	return s.memSink.Store(ctx, msgs)
}

// TestReviewBudgetHeldUntilStored: fetch stops reading in the middle of a
// chunk (a body far over what RFC822.SIZE announced); the message that
// came whole before it is stored (in the background, storer) while the
// catch-up ends. Their bytes stay taken
// from the Budget until that store is done, as on every other path: the
// Budget bounds what all harvesters hold, and these are held.
func TestReviewBudgetHeldUntilStored(t *testing.T) {
	addr := memtest.Start(t)
	for i := 1; i <= 3; i++ {
		memtest.Append(t, addr, "INBOX", mail(i))
	}
	p := startThrottleProxy(t, addr)
	var cut atomic.Bool
	p.script(nil, func(tag, name, line string) (string, bool) {
		if name == "UID FETCH" && strings.Contains(strings.ToUpper(line), "BODY.PEEK[") && cut.CompareAndSwap(false, true) {
			// Bodies far larger than their RFC822.SIZE: the second is not
			// read (fetch's allowance), the first is kept and stored.
			var b strings.Builder
			for i := 1; i <= 2; i++ {
				body := string(mail(i)) + strings.Repeat("x", 1500) + "\r\n"
				fmt.Fprintf(&b, "* %d FETCH (UID %d BODY[] {%d}\r\n%s)\r\n", i, i, len(body), body)
			}
			return b.String(), true
		}
		return "", false
	})
	acct := testAccount(p.addr())
	acct.Mailboxes, acct.Idle, acct.MaxConnections = []string{"INBOX"}, []string{"INBOX"}, 1
	sink := &blockingSink{memSink: newMemSink(), stored: make(chan struct{}), proceed: make(chan struct{})}
	sink.armed.Store(true)
	const size = 1 << 20
	budget := NewBudget(size)
	h := New(acct, sink, &Options{Budget: budget, FetchBytes: 1000, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	defer func() { cancel(); <-done }()
	select {
	case <-sink.stored:
	case <-time.After(10 * time.Second):
		t.Fatal("the messages before the break were never stored")
	}
	actx, acancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	release, err := budget.acquire(actx, size)
	acancel()
	if err == nil {
		release()
		t.Error("the whole Budget could be taken while a chunk's messages were still being stored")
	}
	close(sink.proceed)
	waitFor(t, "all 3 archived", func() bool { n, _ := sink.count(); return n == 3 })
	actx, acancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer acancel()
	if _, err := budget.acquire(actx, size); err != nil {
		t.Fatalf("the Budget not all given back once stored: %v", err)
	}
}

// TestReviewGmailLabelsCountedAsHeld: maxLabelBytes bounds the memory
// labels hold, not only their names' bytes: a server sending labels of
// one byte each ("a a a ...") costs a string header and an allocation per
// label, some 20 times the name. The parse of such an answer must count
// within a small factor of what it holds.
func TestReviewGmailLabelsCountedAsHeld(t *testing.T) {
	var b strings.Builder
	const msgs, perMsg = 300, maxFlagsPerMsg
	fmt.Fprintf(&b, "* %d EXISTS\r\n", msgs)
	labels := strings.TrimSpace(strings.Repeat("a ", perMsg))
	for i := 1; i <= msgs; i++ {
		fmt.Fprintf(&b, "* %d FETCH (UID %d X-GM-LABELS (%s))\r\n", i, i, labels)
	}
	in := []byte(b.String())
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	q, err := gmParse(in)
	runtime.GC()
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	held := int64(after.HeapInuse) - int64(before.HeapInuse)
	counted := int64(q.res.flagBytes)
	t.Logf("%d labels: %d bytes counted, %d held", msgs*perMsg, counted, held)
	if held > 2*counted {
		t.Fatalf("%d labels hold %d bytes but count %d against maxLabelBytes: the bound is %dx too loose",
			msgs*perMsg, held, counted, held/max(counted, 1))
	}
	runtime.KeepAlive(q)
}

// TestReviewByeKeepsTheSessionsError: a server that refuses the password
// and then says BYE (as some do after a failed login) still has the
// account parked: the BYE withBye adds to the session's error must not
// hide what that error is (ErrAuth here; ErrHostile, ErrCertificate).
func TestReviewByeKeepsTheSessionsError(t *testing.T) {
	addr := memtest.Start(t)
	p := startThrottleProxy(t, addr)
	p.script(nil, func(tag, name, _ string) (string, bool) {
		if name == "LOGIN" || name == "AUTHENTICATE" {
			return tag + " NO [AUTHENTICATIONFAILED] Invalid credentials\r\n* BYE Goodbye\r\n", true
		}
		return "", false
	})
	h := New(testAccount(p.addr()), newMemSink(), &Options{MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "the login's verdict", func() bool { return h.Status().Counters.Failures >= 1 })
	if st := h.Status(); st.State != StateError || !strings.Contains(st.Error, "Invalid credentials") {
		t.Fatalf("a refused password followed by BYE: state %s, error %q; want %s (parked) with the server's words", st.State, st.Error, StateError)
	}

	// The same, for each kind of session error, with a BYE that says
	// "slow down" and with one that does not.
	for _, bye := range []string{"* BYE Goodbye", "* BYE [UNAVAILABLE] Server overloaded"} {
		for _, kind := range []error{ErrAuth, ErrCertificate, ErrHostile} {
			h.noteBye(bye)
			err := h.withBye(fmt.Errorf("account %q: x: %w: %v", "a", kind, io.ErrUnexpectedEOF))
			if !errors.Is(err, kind) {
				t.Errorf("withBye after %q: %v; want it still %v", bye, err, kind)
			}
		}
	}
}
