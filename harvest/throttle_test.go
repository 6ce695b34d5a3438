package harvest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"mailvault/harvest/memtest"
)

func TestThrottleClassifier(t *testing.T) {
	no := func(code imap.ResponseCode, text string) *imap.Error {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: code, Text: text}
	}
	for _, tc := range []struct {
		err       error
		throttled bool
		suggested time.Duration
	}{
		// The providers' texts (throttle.go says where each comes from).
		{no(imap.ResponseCodeAlert, "Too many simultaneous connections. (Failure)"), true, 0},
		{no("", "Too many simultaneous connections. (Failure)"), true, 0},
		{no(imap.ResponseCodeOverQuota, "Account exceeded command or bandwidth limits. (Failure)"), true, 0},
		{no(imap.ResponseCodeUnavailable, "Maximum number of connections from user+IP exceeded (mail_max_userip_connections=10)"), true, 0},
		{no("", "Maximum number of connections from user+IP exceeded (mail_max_userip_connections=10)"), true, 0},
		{&imap.Error{Type: imap.StatusResponseTypeBad, Text: "Request is throttled. Suggested Backoff Time: 92415 milliseconds"}, true, 92415 * time.Millisecond},
		{&imap.Error{Type: imap.StatusResponseTypeBad, Text: "request is THROTTLED. suggested backoff time:600 Milliseconds"}, true, 600 * time.Millisecond},
		// A suggestion is capped; other units are not read as one.
		{&imap.Error{Type: imap.StatusResponseTypeBad, Text: "Request is throttled. Suggested Backoff Time: 999999999999 milliseconds"}, true, time.Hour},
		{no("", "Request is throttled. Suggested Backoff Time: 5 seconds"), true, 0},
		// The codes, whatever the text, in any case.
		{no("THROTTLED", "Slow down"), true, 0},
		{no("throttled", ""), true, 0},
		{no(imap.ResponseCodeLimit, "Connection limit reached"), true, 0},
		{no(imap.ResponseCodeInUse, "Mailbox is locked by another session"), true, 0},
		{no("", "System busy, try again later"), true, 0},
		{no("", "Command throttled"), true, 0},
		// BYE: as the greeting (how dial returns it) and as the answer.
		{fmt.Errorf(`account "a": connect h:143: %w`, &imap.Error{Type: imap.StatusResponseTypeBye, Code: imap.ResponseCodeUnavailable, Text: "Server overloaded"}), true, 0},
		{&imap.Error{Type: imap.StatusResponseTypeBye, Text: "Too many simultaneous connections"}, true, 0},
		// Wrapped, by the action that failed, and the sentinel itself.
		{fmt.Errorf(`fetch UID 1:20 of "INBOX": %w`, no(imap.ResponseCodeOverQuota, "x")), true, 0},
		{fmt.Errorf("x: %w", ErrThrottled), true, 0},
		// Not throttling.
		{no("", "Invalid credentials"), false, 0},
		{no(imap.ResponseCodeAuthenticationFailed, "Invalid credentials (Failure)"), false, 0},
		{no(imap.ResponseCodeAuthenticationFailed, "Authentication failed, try again later"), false, 0},
		{no(imap.ResponseCodeTryCreate, "Mailbox does not exist"), false, 0},
		{no(imap.ResponseCodeTryCreate, "Mailbox does not exist, try again later"), false, 0},
		{no(imap.ResponseCodeNonExistent, "Unknown mailbox"), false, 0},
		{no(imap.ResponseCodeAlert, "Please log in via your web browser"), false, 0},
		{&imap.Error{Type: imap.StatusResponseTypeBad, Code: imap.ResponseCodeParse, Text: "Error in IMAP command"}, false, 0},
		{&imap.Error{Type: imap.StatusResponseTypeOK, Code: imap.ResponseCodeOverQuota, Text: "throttled"}, false, 0},
		{io.ErrUnexpectedEOF, false, 0},
		{fmt.Errorf("the server sent nothing for 2m0s: %w", errors.New("i/o timeout")), false, 0},
	} {
		suggested, ok := throttle(tc.err)
		if ok != tc.throttled || suggested != tc.suggested {
			t.Errorf("throttle(%v) = %v, %v; want %v, %v", tc.err, suggested, ok, tc.suggested, tc.throttled)
		}
	}
}

func TestLoginVerdict(t *testing.T) {
	no := func(code imap.ResponseCode, text string) error {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: code, Text: text}
	}
	for _, tc := range []struct {
		err  error
		want error
	}{
		{no(imap.ResponseCodeAlert, "Too many simultaneous connections. (Failure)"), ErrThrottled},
		{no("", "Too many simultaneous connections. (Failure)"), ErrThrottled},
		{no(imap.ResponseCodeUnavailable, "Maximum number of connections from user+IP exceeded (mail_max_userip_connections=10)"), ErrThrottled},
		{no(imap.ResponseCodeOverQuota, "Account exceeded command or bandwidth limits. (Failure)"), ErrThrottled},
		{no(imap.ResponseCodeLimit, "Login limit"), ErrThrottled},
		{no(imap.ResponseCodeUnavailable, "Temporary authentication failure."), ErrThrottled},
		{no("", "Invalid credentials"), ErrAuth}, // a bare NO is a wrong password
		{no("", ""), ErrAuth},
		{no(imap.ResponseCodeAuthenticationFailed, "Invalid credentials (Failure)"), ErrAuth},
		{no("authenticationfailed", "Authentication failed."), ErrAuth},
		{no(imap.ResponseCodeAuthenticationFailed, "Authentication failed, try again later"), ErrAuth},
		{no(imap.ResponseCodeAuthorizationFailed, "Not allowed"), ErrAuth},
		{no(imap.ResponseCodeExpired, "Password expired"), ErrAuth},
		{fmt.Errorf("%w: the server refused the token", ErrAuth), ErrAuth},
		{no(imap.ResponseCodeTryCreate, "No such mailbox"), nil},
		{no(imap.ResponseCodeAlert, "Please log in via your web browser"), nil},
		{&imap.Error{Type: imap.StatusResponseTypeBad, Text: "Command unknown"}, nil},
		{io.ErrUnexpectedEOF, nil},
	} {
		if got := loginVerdict(tc.err); got != tc.want {
			t.Errorf("loginVerdict(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// throttleProxy is a line proxy in front of memtest's server. It passes
// the server's bytes through unchanged and the client's lines on, but for
// those its script answers itself, as a throttling provider would.
type throttleProxy struct {
	ln      net.Listener
	backend string
	// greet, if it returns a line, is sent instead of the server's greeting
	// to connection n (from 1), and the connection closed.
	greet func(n int) string
	// answer, if it returns a line, answers the command (tag, name such as
	// "LOGIN" or "UID FETCH", the whole line) instead of the server; with
	// end the connection is then closed.
	answer func(tag, name, line string) (reply string, end bool)

	mu       sync.Mutex
	accepted []time.Time // when each connection came
	answered []proxyAnswer
	open     int // connections open now
}

// openConns is how many connections are open now.
func (p *throttleProxy) openConns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.open
}

// proxyAnswer is one answer the proxy gave itself.
type proxyAnswer struct {
	at   time.Time
	conn int // the connection's number, from 1
	line string
}

func startThrottleProxy(t *testing.T, backend string) *throttleProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &throttleProxy{ln: ln, backend: backend,
		greet:  func(int) string { return "" },
		answer: func(string, string, string) (string, bool) { return "", false }}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			p.accepted = append(p.accepted, time.Now())
			n := len(p.accepted)
			p.mu.Unlock()
			go p.serve(c, n)
		}
	}()
	return p
}

func (p *throttleProxy) addr() string { return p.ln.Addr().String() }

func (p *throttleProxy) note(n int, line string) {
	p.mu.Lock()
	p.answered = append(p.answered, proxyAnswer{at: time.Now(), conn: n, line: strings.TrimSpace(line)})
	p.mu.Unlock()
}

// literalRe finds a literal announced at the end of a client line.
var literalRe = regexp.MustCompile(`\{([0-9]+)\+?\}\r\n$`)

// script sets what the proxy answers itself (nil: leave as is); the
// connections read it under mu (the race detector sees no order between
// a test's writes and a connection the harvester makes later).
func (p *throttleProxy) script(greet func(int) string, answer func(tag, name, line string) (string, bool)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if greet != nil {
		p.greet = greet
	}
	if answer != nil {
		p.answer = answer
	}
}

func (p *throttleProxy) serve(c net.Conn, n int) {
	defer c.Close()
	p.mu.Lock()
	greet, answer := p.greet, p.answer
	p.open++
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.open--
		p.mu.Unlock()
	}()
	if bye := greet(n); bye != "" {
		p.note(n, bye)
		io.WriteString(c, bye)
		return
	}
	s, err := net.Dial("tcp", p.backend)
	if err != nil {
		return
	}
	defer s.Close()
	var wmu sync.Mutex // the server's bytes and the proxy's answers to the client
	go func() {
		defer c.Close()
		buf := make([]byte, 32<<10)
		for {
			k, err := s.Read(buf)
			if k > 0 {
				wmu.Lock()
				_, werr := c.Write(buf[:k])
				wmu.Unlock()
				if werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		f := strings.Fields(line)
		tag, name := "", ""
		if len(f) >= 2 {
			tag, name = f[0], strings.ToUpper(f[1])
			if name == "UID" && len(f) >= 3 {
				name += " " + strings.ToUpper(f[2])
			}
		}
		if reply, end := answer(tag, name, line); reply != "" {
			p.note(n, reply)
			wmu.Lock()
			io.WriteString(c, reply)
			wmu.Unlock()
			if end {
				return
			}
			continue
		}
		if _, err := io.WriteString(s, line); err != nil {
			return
		}
		if m := literalRe.FindStringSubmatch(line); m != nil {
			k, _ := strconv.ParseInt(m[1], 10, 64)
			if _, err := io.CopyN(s, r, k); err != nil {
				return
			}
		}
	}
}

// throttleMail is message i of a generated mailbox: distinct, of sizes
// from a few hundred bytes to some 30 KB, with 8-bit text in some.
func throttleMail(rng *rand.Rand, i int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: sender%d@example.org\r\nTo: alice@example.org\r\nSubject: throttle %d\r\nMessage-ID: <throttle-%d@example.org>\r\n", i%7, i, i)
	if i%5 == 0 {
		b.WriteString("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n")
	}
	b.WriteString("\r\n")
	words := []string{"quota", "bandwidth", "slow", "down", "archive", "Grüße", "naïve", "mail", "again", "later"}
	for range rng.IntN(500) + 5 {
		for range rng.IntN(12) + 1 {
			w := words[rng.IntN(len(words))]
			if i%5 != 0 && strings.ContainsFunc(w, func(r rune) bool { return r > 127 }) {
				w = "plain"
			}
			b.WriteString(w)
			b.WriteByte(' ')
		}
		b.WriteString("\r\n")
	}
	fmt.Fprintf(&b, "end of %d\r\n", i)
	return b.Bytes()
}

// throttleWatch records, until stop, every state the harvester was seen in
// and the errors seen with StateThrottled.
type throttleWatch struct {
	mu        sync.Mutex
	states    map[State]bool
	throttled []string // Errors seen while throttled
	noRetryAt bool     // a waiting state without RetryAt was seen
	stop      chan struct{}
	done      chan struct{}
}

func watchStates(h *Harvester) *throttleWatch {
	w := &throttleWatch{states: map[State]bool{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			st := h.Status()
			w.mu.Lock()
			w.states[st.State] = true
			switch st.State {
			case StateThrottled:
				if len(w.throttled) == 0 || w.throttled[len(w.throttled)-1] != st.Error {
					w.throttled = append(w.throttled, st.Error)
				}
				fallthrough
			case StateBackingOff, StateError:
				if st.RetryAt.IsZero() {
					w.noRetryAt = true
				}
			}
			w.mu.Unlock()
			select {
			case <-w.stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	return w
}

func (w *throttleWatch) end() {
	close(w.stop)
	<-w.done
}

// TestThrottledHarvestLosesNothing: a provider throttles the harvester in
// each way it can (BYE as the greeting, Exchange's BAD with a suggested
// wait to a body FETCH, NO to LOGIN twice, NO [OVERQUOTA] to a body FETCH,
// BYE in the middle of a catch-up). Every message still arrives once, byte-equal; the
// account is throttled, never parked; the waits are the throttle backoff
// (doubling) and at least what the server suggested.
func TestThrottledHarvestLosesNothing(t *testing.T) {
	addr := memtest.Start(t)
	const n = 300
	rng := rand.New(rand.NewPCG(17, 6))
	msgs := make([][]byte, n)
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(memtest.User, memtest.Password).Wait(); err != nil {
		t.Fatal(err)
	}
	for i := range msgs {
		msgs[i] = throttleMail(rng, i)
		cmd := c.Append("INBOX", int64(len(msgs[i])), nil)
		cmd.Write(msgs[i])
		cmd.Close()
		if _, err := cmd.Wait(); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	c.Logout().Wait()
	c.Close()

	const (
		greetBye = "* BYE [UNAVAILABLE] Server overloaded, come back later\r\n"
		tooMany  = "NO [ALERT] Too many simultaneous connections. (Failure)\r\n"
		overQ    = "NO [OVERQUOTA] Account exceeded command or bandwidth limits. (Failure)\r\n"
		suggest  = "BAD Request is throttled. Suggested Backoff Time: 600 milliseconds\r\n"
		midBye   = "* BYE [UNAVAILABLE] Server overloaded\r\n"
	)
	p := startThrottleProxy(t, addr)
	var mu sync.Mutex
	logins, bodies := 0, 0
	p.script(func(conn int) string {
		if conn == 1 {
			return greetBye
		}
		return ""
	}, nil)
	p.script(nil, func(tag, name, line string) (string, bool) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case name == "LOGIN" || name == "AUTHENTICATE":
			if logins++; logins == 2 || logins == 3 {
				return tag + " " + tooMany, false
			}
		case name == "UID FETCH" && strings.Contains(strings.ToUpper(line), "BODY.PEEK["):
			switch bodies++; bodies {
			case 3:
				return tag + " " + suggest, false
			case 6:
				return tag + " " + overQ, false
			case 9:
				return midBye, true
			}
		}
		return "", false
	})

	acct := testAccount(p.addr())
	acct.Mailboxes, acct.Idle, acct.MaxConnections = []string{"INBOX"}, []string{"INBOX"}, 1
	sink := newMemSink()
	const tb, maxB = 200 * time.Millisecond, time.Second
	h := New(acct, sink, &Options{FetchChunk: 20, MinBackoff: 10 * time.Millisecond, MaxBackoff: maxB, ThrottleBackoff: tb})
	w := watchStates(h)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	start := time.Now()
	deadline := start.Add(15 * time.Second)
	for {
		if got, _ := sink.count(); got == n {
			break
		}
		if time.Now().After(deadline) {
			got, _ := sink.count()
			t.Fatalf("after %v: %d of %d messages archived; status %+v", time.Since(start), got, n, h.Status())
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("all %d messages archived in %v", n, time.Since(start).Round(time.Millisecond))
	time.Sleep(100 * time.Millisecond) // a late duplicate would show now
	cancel()
	<-done
	w.end()

	// Nothing lost, nothing twice, byte-equal.
	sink.mu.Lock()
	if len(sink.msgs) != n || sink.dupes != 0 || len(sink.skipped) != 0 {
		t.Errorf("sink: %d messages, %d duplicate deliveries, skipped %q; want %d, 0, none", len(sink.msgs), sink.dupes, sink.skipped, n)
	}
	for _, m := range sink.msgs {
		if m.UID < 1 || m.UID > n || !bytes.Equal(m.Raw, msgs[m.UID-1]) {
			t.Errorf("UID %d: %d bytes, not the %d-th message appended", m.UID, len(m.Raw), m.UID)
		}
	}
	sink.mu.Unlock()

	// Throttled with the server's words, never parked.
	w.mu.Lock()
	if w.states[StateError] {
		t.Error("the account was parked (state error)")
	}
	if w.noRetryAt {
		t.Error("a waiting state without RetryAt")
	}
	seen := strings.Join(w.throttled, "\n")
	for _, words := range []string{"Server overloaded, come back later", "Too many simultaneous connections. (Failure)",
		"Account exceeded command or bandwidth limits. (Failure)", "Suggested Backoff Time: 600 milliseconds"} {
		if !strings.Contains(seen, words) {
			t.Errorf("never seen throttled with %q; throttled errors seen:\n%s", words, seen)
		}
	}
	if !strings.Contains(seen, ErrThrottled.Error()) {
		t.Errorf("throttled errors do not say %q:\n%s", ErrThrottled, seen)
	}
	w.mu.Unlock()

	// Each throttle counted, the BYE in the middle of a session too: go-imap
	// drops a BYE's text and code (the pending command gets
	// io.ErrUnexpectedEOF), guardConn keeps the line (withBye).
	if !strings.Contains(seen, "the server ended the connection") {
		t.Errorf("the BYE in the middle of a session was not seen as throttling:\n%s", seen)
	}
	cs := h.Status().Counters
	if cs.Throttled != 6 || cs.Failures != 6 {
		t.Errorf("counters: throttled %d, failures %d; want 6, 6", cs.Throttled, cs.Failures)
	}

	// The waits: the throttle backoff, doubling up to MaxBackoff, with full
	// jitter (at least half of it), and never less than what was suggested
	// (when suggested, the backoff was 2*tb: it alone would wait less).
	p.mu.Lock()
	defer p.mu.Unlock()
	want := []struct {
		line string
		min  time.Duration
	}{
		{greetBye, tb / 2},
		{suggest, 600 * time.Millisecond},
		{tooMany, 4 * tb / 2},
		{tooMany, maxB / 2},
		{overQ, maxB / 2},
		{midBye, maxB / 2},
	}
	if len(p.answered) != len(want) {
		t.Fatalf("the proxy answered %d times, want %d: %+v", len(p.answered), len(want), p.answered)
	}
	for i, a := range p.answered {
		if !strings.Contains(a.line, strings.TrimSpace(want[i].line)) {
			t.Errorf("answer %d was %q, want %q", i, a.line, want[i].line)
			continue
		}
		if a.conn >= len(p.accepted) {
			t.Errorf("no connection after %q", a.line)
			continue
		}
		gap := p.accepted[a.conn].Sub(a.at) // the next connection's arrival
		if gap < want[i].min {
			t.Errorf("after %q the harvester came back in %v, want at least %v", a.line, gap, want[i].min)
		}
		t.Logf("after %q: back in %v (at least %v)", a.line, gap.Round(time.Millisecond), want[i].min)
	}
}

// TestLoginRefusalsAtTheProxy: what connect makes of a LOGIN's NO, end to
// end: a wrong password parks the account, a "slow down" never does.
func TestLoginRefusalsAtTheProxy(t *testing.T) {
	addr := memtest.Start(t)
	for _, tc := range []struct {
		reply string
		want  State
	}{
		{"NO Invalid credentials", StateError},
		{"NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)", StateError},
		{"NO [UNAVAILABLE] Maximum number of connections from user+IP exceeded (mail_max_userip_connections=10)", StateThrottled},
		{"NO Too many simultaneous connections. (Failure)", StateThrottled},
	} {
		p := startThrottleProxy(t, addr)
		p.script(nil, func(tag, name, _ string) (string, bool) {
			if name == "LOGIN" || name == "AUTHENTICATE" {
				return tag + " " + tc.reply + "\r\n", false
			}
			return "", false
		})
		h := New(testAccount(p.addr()), newMemSink(), &Options{ThrottleBackoff: time.Hour})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- h.Run(ctx) }()
		waitFor(t, "the login's verdict", func() bool {
			s := h.Status().State
			return s == StateError || s == StateThrottled
		})
		cancel()
		<-done
		st := h.Status()
		text := strings.TrimPrefix(strings.TrimPrefix(tc.reply, "NO "), "[AUTHENTICATIONFAILED] ")
		if st.State != tc.want || !strings.Contains(st.Error, text) {
			t.Errorf("LOGIN answered %q: state %q, error %q; want %q with the server's words", tc.reply, st.State, st.Error, tc.want)
		}
		want := int64(0)
		if tc.want == StateThrottled {
			want = 1
		}
		if st.Counters.Throttled != want {
			t.Errorf("LOGIN answered %q: throttled counter %d, want %d", tc.reply, st.Counters.Throttled, want)
		}
		// AuthBackoff (15 minutes) or ThrottleBackoff (an hour), jittered.
		if wait := time.Until(st.RetryAt); wait < 5*time.Minute {
			t.Errorf("LOGIN answered %q: retry in %v, want the long wait of its kind", tc.reply, wait)
		}
	}
}

// TestThrottledChunkNotSkipped: a server that throttles the same chunk's
// FETCH again and again (more often than the strikes that split a chunk
// and skip a message) costs time, never a message.
func TestThrottledChunkNotSkipped(t *testing.T) {
	addr := memtest.Start(t)
	const n = 30
	rng := rand.New(rand.NewPCG(3, 9))
	var msgs [][]byte
	for i := range n {
		msgs = append(msgs, throttleMail(rng, i))
		memtest.Append(t, addr, "INBOX", msgs[i])
	}
	p := startThrottleProxy(t, addr)
	var mu sync.Mutex
	bodies := 0
	p.script(nil, func(tag, name, line string) (string, bool) {
		mu.Lock()
		defer mu.Unlock()
		if name == "UID FETCH" && strings.Contains(strings.ToUpper(line), "BODY.PEEK[") {
			switch bodies++; {
			case bodies <= 3*(strikesToSplit+strikesToSkip) && bodies%3 == 0:
				return "* BYE [UNAVAILABLE] Server overloaded\r\n", true
			case bodies <= 3*(strikesToSplit+strikesToSkip):
				return tag + " NO [OVERQUOTA] Account exceeded command or bandwidth limits. (Failure)\r\n", false
			}
		}
		return "", false
	})
	acct := testAccount(p.addr())
	acct.Mailboxes, acct.Idle, acct.MaxConnections = []string{"INBOX"}, []string{"INBOX"}, 1
	sink := newMemSink()
	h := New(acct, sink, &Options{FetchChunk: 10, MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, ThrottleBackoff: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if got, _ := sink.count(); got == n {
			break
		}
		if time.Now().After(deadline) {
			got, _ := sink.count()
			t.Fatalf("%d of %d messages archived; status %+v", got, n, h.Status())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if len(sink.skipped) != 0 || sink.dupes != 0 {
		t.Fatalf("skipped %q, %d duplicates: a throttled chunk counted as a failing one", sink.skipped, sink.dupes)
	}
	if got := h.Status().Counters.Throttled; got < int64(strikesToSplit+strikesToSkip) {
		t.Fatalf("throttled %d times, want at least %d (the test throttles more often than the strikes)", got, strikesToSplit+strikesToSkip)
	}
}

// TestThrottledIdleConnectionPolled: a server that allows one connection
// at a time (Gmail's and Dovecot's per-user limits, scripted) refuses the
// second mailbox's IDLE connection; that mailbox is polled on the main
// connection instead, and the session goes on: mail arriving there is
// archived, and the session never ends because of it.
func TestThrottledIdleConnectionPolled(t *testing.T) {
	addr := memtest.Start(t)
	memtest.Append(t, addr, "INBOX", mail(1))
	memtest.Append(t, addr, "Archive", mail(2))
	p := startThrottleProxy(t, addr)
	p.script(nil, func(tag, name, _ string) (string, bool) {
		if (name == "LOGIN" || name == "AUTHENTICATE") && p.openConns() > 1 {
			return tag + " NO [ALERT] Too many simultaneous connections. (Failure)\r\n", false
		}
		return "", false
	})
	acct := testAccount(p.addr()) // IDLE on INBOX and Archive, two connections
	sink := newMemSink()
	h := New(acct, sink, &Options{MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, ThrottleBackoff: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "both mailboxes archived", func() bool { n, _ := sink.count(); return n == 2 })
	memtest.Append(t, addr, "Archive", mail(3))
	waitFor(t, "the new message in the polled mailbox", func() bool { n, _ := sink.count(); return n == 3 })
	st := h.Status()
	if st.Counters.Failures != 0 || st.Counters.Throttled < 1 || st.State != StateHarvesting {
		t.Fatalf("state %s, %d failures, %d throttled: want the session kept, the refusal counted", st.State, st.Counters.Failures, st.Counters.Throttled)
	}
}
