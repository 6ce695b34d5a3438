package journal

import (
	"mailvault/internal/testcert"

	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"golang.org/x/crypto/bcrypt"
)

// memSink is a Sink in memory that can be told to fail or to block.
type memSink struct {
	mu      sync.Mutex
	stored  []Delivery
	batches []int
	fail    error         // returned by StoreJournal while set
	gate    chan struct{} // when set, StoreJournal waits for it
	uidnext uint32
}

func (m *memSink) OpenJournal(ctx context.Context, account, mailbox string) (uint32, uint32, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.uidnext == 0 {
		m.uidnext = 1
	}
	return 42, m.uidnext, nil
}

func (m *memSink) StoreJournal(ctx context.Context, ds []Delivery) error {
	m.mu.Lock()
	gate := m.gate
	m.mu.Unlock()
	if gate != nil {
		<-gate
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	for _, d := range ds {
		if d.UID != m.uidnext {
			return fmt.Errorf("uid %d out of order, want %d", d.UID, m.uidnext)
		}
		m.uidnext++
	}
	m.stored = append(m.stored, ds...)
	m.batches = append(m.batches, len(ds))
	return nil
}

func (m *memSink) deliveries() []Delivery {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Delivery(nil), m.stored...)
}

// start runs a Server with both listeners on loopback and returns their
// addresses and a stop function that waits for Run.
func start(t *testing.T, sink Sink, o Options) (smtpAddr, lmtpAddr string, stop func()) {
	t.Helper()
	l1, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o.SMTP, o.LMTP = l1, l2
	if o.ShutdownGrace == 0 {
		o.ShutdownGrace = 2 * time.Second
	}
	srv := New(sink, &o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return l1.Addr().String(), l2.Addr().String(), stop
}

const sample = "From: a@example.org\r\nTo: b@example.org\r\nSubject: hi\r\nMessage-ID: <1@example.org>\r\n\r\nbody\r\n"

// send sends one message over SMTP and returns the error of the first
// command that failed.
func send(addr, from string, to []string, msg string) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.SendMail(from, to, strings.NewReader(msg))
}

func code(err error) int {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

func TestAcceptedWithEnvelope(t *testing.T) {
	sink := &memSink{}
	addr, _, _ := start(t, sink, Options{EncodedPrefix: "journal"})
	rcpts := []string{"b@example.org", "journal+secret=Example.ORG@archive.invalid"}
	if err := send(addr, "a@example.org", rcpts, sample); err != nil {
		t.Fatalf("send: %v", err)
	}
	ds := sink.deliveries()
	if len(ds) != 1 {
		t.Fatalf("stored %d deliveries, want 1", len(ds))
	}
	d := ds[0]
	if string(d.Raw) != sample {
		t.Errorf("raw = %q, want the bytes sent %q", d.Raw, sample)
	}
	e := d.Envelope
	if e.MailFrom != "a@example.org" || strings.Join(e.RcptTo, ",") != strings.Join(rcpts, ",") ||
		strings.Join(e.Recipients, ",") != "b@example.org,secret@example.org" || e.Listener != "smtp" ||
		!strings.HasPrefix(e.Client, "127.0.0.1:") || e.ReceivedAt.IsZero() {
		t.Errorf("envelope = %+v", e)
	}
	if d.Account != "journal" || d.Mailbox != Mailbox || d.UIDValidity != 42 || d.UID != 1 {
		t.Errorf("delivery place = %s/%s %d/%d, want journal/Journal 42/1", d.Account, d.Mailbox, d.UIDValidity, d.UID)
	}
}

// A message with no header at all (and bare LF) is stored byte-exact and
// acknowledged: the archive stores what it is given (invariant 8).
func TestUnparsableStored(t *testing.T) {
	sink := &memSink{}
	addr, _, _ := start(t, sink, Options{})
	junk := "\x00\x01 this is not a message\r\n: no header\r\n"
	if err := send(addr, "", []string{"x@example.org"}, junk); err != nil {
		t.Fatalf("send: %v", err)
	}
	ds := sink.deliveries()
	if len(ds) != 1 || string(ds[0].Raw) != junk || ds[0].Envelope.MailFrom != "" {
		t.Fatalf("stored %+v, want the junk byte-exact with the null sender", ds)
	}
}

func TestRefusals(t *testing.T) {
	_, private, _ := net.ParseCIDR("10.0.0.0/8")
	cases := []struct {
		name     string
		opts     Options
		sinkFail error
		rcpts    int
		msg      string
		want     int    // SMTP code of the failure
		log      string // what the log line says (review: every refusal is logged)
	}{
		{name: "network", opts: Options{Allow: []*net.IPNet{private}}, rcpts: 1, msg: sample, want: 554, log: "reason=network"},
		{name: "size", opts: Options{MaxMessageBytes: 100}, rcpts: 1, msg: sample + strings.Repeat("x", 200) + "\r\n", want: 552, log: "over max_message_bytes"},
		{name: "recipients", opts: Options{MaxRecipients: 2}, rcpts: 3, msg: sample, want: 452, log: "over max_recipients"},
		{name: "disk full", sinkFail: fmt.Errorf("ingest: write blob: %w", syscall.ENOSPC), rcpts: 1, msg: sample, want: 452, log: "reply=452"},
		{name: "catalog error", sinkFail: errors.New("ingest: database is locked"), rcpts: 1, msg: sample, want: 451, log: "reply=451"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sink := &memSink{fail: tc.sinkFail}
			var logs syncBuffer
			tc.opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			addr, _, stop := start(t, sink, tc.opts)
			var to []string
			for i := range tc.rcpts {
				to = append(to, fmt.Sprintf("r%d@example.org", i))
			}
			err := send(addr, "a@example.org", to, tc.msg)
			if got := code(err); got != tc.want {
				t.Fatalf("send: %v (code %d), want code %d", err, got, tc.want)
			}
			if n := len(sink.deliveries()); n != 0 {
				t.Errorf("stored %d deliveries after a refusal, want 0", n)
			}
			stop()
			if !strings.Contains(logs.String(), tc.log) {
				t.Errorf("the log does not say %q:\n%s", tc.log, logs.String())
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for a logger's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// The allow-list answers before the greeting: the first line a refused
// client reads is the 554.
func TestAllowListAtConnect(t *testing.T) {
	_, private, _ := net.ParseCIDR("10.0.0.0/8")
	addr, _, _ := start(t, &memSink{}, Options{Allow: []*net.IPNet{private}})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "554 5.7.1 ") {
		t.Fatalf("first line %q (%v), want a 554 5.7.1", line, err)
	}
}

// A failed store reuses no UID that holds a message and the next message
// is stored; after a failure the committer re-reads the checkpoint.
func TestFailureThenRecovery(t *testing.T) {
	sink := &memSink{fail: errors.New("catalog busy")}
	addr, _, _ := start(t, sink, Options{})
	if err := send(addr, "a@example.org", []string{"b@example.org"}, sample); code(err) != 451 {
		t.Fatalf("send during failure: %v, want 451", err)
	}
	sink.mu.Lock()
	sink.fail = nil
	sink.mu.Unlock()
	for range 3 {
		if err := send(addr, "a@example.org", []string{"b@example.org"}, sample); err != nil {
			t.Fatalf("send after recovery: %v", err)
		}
	}
	ds := sink.deliveries()
	if len(ds) != 3 || ds[0].UID != 1 || ds[2].UID != 3 {
		t.Fatalf("stored %d, UIDs %v", len(ds), uids(ds))
	}
}

func uids(ds []Delivery) []uint32 {
	var out []uint32
	for _, d := range ds {
		out = append(out, d.UID)
	}
	return out
}

// Concurrent sessions' messages are grouped: while one Store runs, the
// others wait and go in the next batch together.
func TestGroupCommit(t *testing.T) {
	gate := make(chan struct{})
	sink := &memSink{gate: gate}
	addr, _, _ := start(t, sink, Options{})
	const n = 20
	errs := make(chan error, n)
	for range n {
		go func() { errs <- send(addr, "a@example.org", []string{"b@example.org"}, sample) }()
	}
	// The first batch blocks in Store; let the others queue behind it.
	time.Sleep(500 * time.Millisecond)
	sink.mu.Lock()
	sink.gate = nil
	sink.mu.Unlock()
	close(gate)
	for range n {
		if err := <-errs; err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	sink.mu.Lock()
	batches := append([]int(nil), sink.batches...)
	sink.mu.Unlock()
	if len(batches) > 3 {
		t.Errorf("%d messages in %d batches %v: want them grouped (at most 3 batches)", n, len(batches), batches)
	}
	seen := map[uint32]bool{}
	for _, d := range sink.deliveries() {
		if seen[d.UID] {
			t.Errorf("UID %d twice", d.UID)
		}
		seen[d.UID] = true
	}
	if len(seen) != n {
		t.Errorf("%d distinct UIDs, want %d", len(seen), n)
	}
}

// LMTP: one reply per recipient, each given after the store.
func TestLMTP(t *testing.T) {
	sink := &memSink{}
	_, addr, _ := start(t, sink, Options{})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := smtp.NewClientLMTP(conn)
	defer c.Close()
	if err := c.Hello("mta.example.org"); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("a@example.org", nil); err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"x@example.org", "y@example.org"} {
		if err := c.Rcpt(r, nil); err != nil {
			t.Fatal(err)
		}
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(sample))
	resp, err := w.CloseWithLMTPResponse()
	if err != nil || len(resp) != 2 {
		t.Fatalf("LMTP replies %v, %v: want 2 successes", resp, err)
	}
	ds := sink.deliveries()
	if len(ds) != 1 || ds[0].Envelope.Listener != "lmtp" || ds[0].Envelope.Helo != "mta.example.org" ||
		len(ds[0].Envelope.RcptTo) != 2 {
		t.Fatalf("stored %+v, want one delivery over lmtp with two recipients", ds)
	}
}

func TestAuth(t *testing.T) {
	hash, _ := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	users := &Users{hashes: map[string][]byte{"mta": hash}}
	sink := &memSink{}
	addr, _, _ := start(t, sink, Options{Users: users})
	// Without AUTH: refused at MAIL, permanently.
	if err := send(addr, "a@example.org", []string{"b@example.org"}, sample); code(err) != 530 {
		t.Fatalf("send without auth: %v, want 530", err)
	}
	for _, tc := range []struct {
		pass string
		ok   bool
	}{{"wrong", false}, {"s3cret", true}} {
		c, err := smtp.Dial(addr)
		if err != nil {
			t.Fatal(err)
		}
		err = c.Auth(sasl.NewPlainClient("", "mta", tc.pass))
		if (err == nil) != tc.ok {
			t.Fatalf("auth with %q: %v, want ok=%v", tc.pass, err, tc.ok)
		}
		if tc.ok {
			if err := c.SendMail("a@example.org", []string{"b@example.org"}, strings.NewReader(sample)); err != nil {
				t.Fatalf("send after auth: %v", err)
			}
		}
		c.Close()
	}
	ds := sink.deliveries()
	if len(ds) != 1 || ds[0].Envelope.AuthUser != "mta" {
		t.Fatalf("stored %+v, want one delivery by mta", ds)
	}
}

// Review (issue 16): AUTH failures were unlimited and immediate, so a
// client on an allowed network could try passwords at the speed of bcrypt
// over every session. Each failure now waits authFailDelay, and the
// maxAuthFailures-th closes the session with 421 (logged, counted); a new
// session with the right password still works (no lockout of the MTA).
func TestAuthFailuresLimited(t *testing.T) {
	hash, _ := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	users := &Users{hashes: map[string][]byte{"mta": hash}}
	addr, _, _ := start(t, &memSink{}, Options{Users: users})
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	begin := time.Now()
	for i := 1; i <= maxAuthFailures; i++ {
		err := c.Auth(sasl.NewPlainClient("", "mta", fmt.Sprintf("guess%d", i)))
		want := 535
		if i == maxAuthFailures {
			want = 421
		}
		if code(err) != want {
			t.Fatalf("failure %d: %v, want %d", i, err, want)
		}
	}
	if el := time.Since(begin); el < time.Duration(maxAuthFailures)*authFailDelay {
		t.Errorf("%d failures answered in %v, want each after %v", maxAuthFailures, el, authFailDelay)
	}
	if err := c.Noop(); err == nil {
		t.Errorf("the session is still open after %d authentication failures", maxAuthFailures)
	}
	c2, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := c2.Auth(sasl.NewPlainClient("", "mta", "s3cret")); err != nil {
		t.Fatalf("a new session with the right password: %v", err)
	}
}

// Review (issue 16): the bytes all sessions hold are bounded. One session
// holds 80 KiB in DATA; a second message that would pass the 100 KiB
// budget gets 452 4.3.1 (retry later), nothing stored; when the first is
// done its budget is given back and the same message is stored.
func TestInflightBudget(t *testing.T) {
	sink := &memSink{}
	addr, _, _ := start(t, sink, Options{MaxMessageBytes: 100 << 10, MaxInflightBytes: 100 << 10})
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Mail("a@example.org", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("b@example.org", nil); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	big := sample + strings.Repeat("x", 79) + "\r\n"
	for len(big) < 80<<10 {
		big += strings.Repeat("y", 78) + "\r\n"
	}
	if _, err := io.WriteString(w, big); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)                                                                       // the server reads what was sent
	second := strings.Replace(sample, "<1@", "<2@", 1) + strings.Repeat(strings.Repeat("z", 78)+"\r\n", 500) // 40 KiB
	if err := send(addr, "a@example.org", []string{"b@example.org"}, second); code(err) != 452 {
		t.Fatalf("second message while 80 KiB are in flight: %v, want 452", err)
	}
	if n := len(sink.deliveries()); n != 0 {
		t.Fatalf("%d stored before the first message ended, want 0", n)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("the first message: %v", err)
	}
	for i := 0; i < 3; i++ { // the budget is given back every time
		if err := send(addr, "a@example.org", []string{"b@example.org"}, second); err != nil {
			t.Fatalf("the second message after the first, try %d: %v", i, err)
		}
	}
	if ds := sink.deliveries(); len(ds) != 4 || ds[0].Raw == nil || len(ds[0].Raw) != len(big) {
		t.Fatalf("stored %d, want 4 (the first %d bytes)", len(ds), len(big))
	}
}

// Shutdown: a message in DATA is stored and acknowledged; after that, a
// new transaction gets 421.
func TestShutdownFinishesData(t *testing.T) {
	gate := make(chan struct{})
	sink := &memSink{gate: gate}
	addr, _, stop := start(t, sink, Options{})
	idle, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	if err := idle.Hello("idle.example.org"); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- send(addr, "a@example.org", []string{"b@example.org"}, sample) }()
	time.Sleep(300 * time.Millisecond) // the message is in Store, blocked
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	time.Sleep(200 * time.Millisecond)
	if err := idle.Mail("a@example.org", nil); code(err) != 421 {
		t.Errorf("MAIL during shutdown: %v, want 421", err)
	}
	close(gate)
	if err := <-errc; err != nil {
		t.Fatalf("message in flight at shutdown: %v, want it acknowledged", err)
	}
	<-stopped
	if n := len(sink.deliveries()); n != 1 {
		t.Fatalf("stored %d, want 1", n)
	}
}

func TestSessionLimit(t *testing.T) {
	addr, _, _ := start(t, &memSink{}, Options{MaxSessions: 1})
	first, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, _ := bufio.NewReader(c).ReadString('\n')
	if !strings.HasPrefix(line, "421 ") {
		t.Fatalf("second session got %q, want 421", line)
	}
}

func TestDecodeRecipient(t *testing.T) {
	for _, tc := range []struct{ in, prefix, want string }{
		{"journal+bob=example.org@archive", "journal", "bob@example.org"},
		{"Journal+Bob=EXAMPLE.org@archive", "journal", "Bob@example.org"},
		{"journal+a=b=example.org@archive", "journal", "a=b@example.org"},
		{"journal@archive", "journal", "journal@archive"},
		{"journal+@archive", "journal", "journal+@archive"},
		{"journal+bob@archive", "journal", "journal+bob@archive"},
		{"journal+bob=@archive", "journal", "journal+bob=@archive"},
		{"journalx+bob=example.org@archive", "journal", "journalx+bob=example.org@archive"},
		{"bob@example.org", "", "bob@example.org"},
		{"journal+bob=example.org@archive", "", "journal+bob=example.org@archive"},
	} {
		if got := decodeRecipient(tc.in, tc.prefix); got != tc.want {
			t.Errorf("decodeRecipient(%q, %q) = %q, want %q", tc.in, tc.prefix, got, tc.want)
		}
	}
}

// STARTTLS with the configured certificate; the message goes over TLS.
func TestStartTLS(t *testing.T) {
	cert, _ := testcert.New(t, "journal.test")
	sink := &memSink{}
	addr, _, _ := start(t, sink, Options{TLS: &tls.Config{Certificates: []tls.Certificate{cert}}})
	c, err := smtp.DialStartTLS(addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("STARTTLS: %v", err)
	}
	defer c.Close()
	if _, ok := c.TLSConnectionState(); !ok {
		t.Fatal("no TLS after STARTTLS")
	}
	if err := c.SendMail("a@example.org", []string{"b@example.org"}, strings.NewReader(sample)); err != nil {
		t.Fatalf("send over TLS: %v", err)
	}
	if n := len(sink.deliveries()); n != 1 {
		t.Fatalf("stored %d, want 1", n)
	}
	// Without a TLS config, STARTTLS is not offered.
	addr2, _, _ := start(t, &memSink{}, Options{})
	c2, err := smtp.Dial(addr2)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := c2.Hello("x"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c2.Extension("STARTTLS"); ok {
		t.Error("STARTTLS offered without a certificate")
	}
}
