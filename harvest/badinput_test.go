//go:build unix

package harvest_test

// Bad input for the harvester (issue 3, "Bad input"): an untrusted
// certificate, a server that speaks garbage, a connection that breaks or
// stalls in the middle of a message body, odd mailbox names, a 50 MB
// message and one over the size limit. Each must end in a clear error in
// the harvester's status and log, and nothing archived may be lost or
// duplicated.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mailvault/harvest"
	"mailvault/harvest/dovecottest"
	"mailvault/harvest/harvesttest"
	"mailvault/service"
)

// faultProxy forwards TCP connections to target, and breaks every
// connection on which the server sends marker: it passes the bytes up to
// and including the marker, then closes both sides ("cut") or stops
// forwarding and leaves the connection open ("stall").
type faultProxy struct {
	ln     net.Listener
	target string
	marker []byte
	stall  bool
	hits   atomic.Int32 // connections broken so far

	mu    sync.Mutex
	conns []net.Conn
	sent  bytes.Buffer // everything clients sent
}

// Write records what a client sent.
func (p *faultProxy) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sent.Write(b)
}

func (p *faultProxy) clientSent() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sent.String()
}

func startFaultProxy(t *testing.T, target, marker string, stall bool) *faultProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{ln: ln, target: target, marker: []byte(marker), stall: stall}
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range p.conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go func() { io.Copy(io.MultiWriter(s, p), c); s.Close() }()
			go p.serverToClient(s, c)
		}
	}()
	return p
}

func (p *faultProxy) serverToClient(s, c net.Conn) {
	buf := make([]byte, 32<<10)
	var tail []byte
	for {
		n, err := s.Read(buf)
		if n > 0 {
			win := append(tail, buf[:n]...)
			if i := bytes.Index(win, p.marker); i >= 0 {
				if upto := i + len(p.marker) - len(tail); upto > 0 {
					c.Write(buf[:upto])
				}
				p.hits.Add(1)
				s.Close()
				if !p.stall {
					c.Close()
				}
				return
			}
			c.Write(buf[:n])
			tail = append([]byte(nil), win[max(0, len(win)-len(p.marker)+1):]...)
		}
		if err != nil {
			c.Close()
			return
		}
	}
}

func (p *faultProxy) account(t *testing.T, srv *dovecottest.Server, name, user string) harvest.Account {
	acct := harvesttest.Account(t, srv, name, user)
	acct.Port = p.ln.Addr().(*net.TCPAddr).Port
	return acct
}

// poisonMessage is a message whose body starts with marker and goes on for
// 200 KB, so that a connection broken at the marker is broken in the middle
// of the BODY[] literal.
func poisonMessage(marker string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: mallory@example.org\nTo: alice@example.org\nSubject: the one that breaks\nMessage-ID: <poison@example.org>\n\n%s\n", marker)
	for i := 0; b.Len() < 200<<10; i++ {
		fmt.Fprintf(&b, "line %d of a long message that never arrives whole\n", i)
	}
	return b.Bytes()
}

// dcSkipped returns the catalog's skipped records: "mailbox/uid: reason".
func dcSkipped(t *testing.T, a *harvesttest.Archive) []string {
	t.Helper()
	skipped, err := a.Skipped(context.Background())
	if err != nil {
		t.Fatalf("list skipped: %v", err)
	}
	var out []string
	for _, s := range skipped {
		out = append(out, fmt.Sprintf("%s/%d: %s", s.Mailbox, s.UID, s.Reason))
	}
	return out
}

// dcCheckAllBut checks that the archive holds exactly the server's
// messages in mailbox, byte-exact, except the UIDs in skipped.
func dcCheckAllBut(t *testing.T, srv *dovecottest.Server, a *harvesttest.Archive, mailbox string, skipped ...uint32) {
	t.Helper()
	server := srv.Fetch(t, "alice", mailbox)
	got := map[uint32]string{}
	for _, o := range harvesttest.Occurrences(t, a) {
		if o.Mailbox == mailbox {
			if _, dup := got[o.UID]; dup {
				t.Errorf("%s UID %d archived twice", mailbox, o.UID)
			}
			got[o.UID] = o.SHA256
		}
	}
	for uid, body := range server {
		switch sha, ok := got[uid]; {
		case slices.Contains(skipped, uid):
			if ok {
				t.Errorf("%s UID %d archived, but it should have been skipped", mailbox, uid)
			}
		case !ok:
			t.Errorf("%s UID %d not archived", mailbox, uid)
		case sha != shaHex(body):
			t.Errorf("%s UID %d archived with sha256 %s, server's BODY[] is %s", mailbox, uid, sha, shaHex(body))
		}
	}
	if want := len(server) - len(skipped); len(got) != want {
		t.Errorf("%s: %d archived, want %d", mailbox, len(got), want)
	}
}

// testBrokenLiteral harvests a mailbox whose 12th message never arrives
// whole, through p: the harvester narrows the failure down to that message,
// records it as skipped and archives all the others, once each.
func testBrokenLiteral(t *testing.T, srv *dovecottest.Server, p *faultProxy, opts *harvest.Options, wantErr string) {
	const marker = "POISON-PILL-0123456789"
	msgs := harvesttest.Messages("brk", 30)
	msgs[11] = poisonMessage(marker)
	srv.LoadMaildir(t, "alice", "INBOX", harvesttest.Maildir(t, msgs))

	a := harvesttest.OpenArchive(t, t.TempDir())
	var logs dcLogBuffer
	opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	h := dcStart(t, context.Background(), p.account(t, srv, "alice", "alice"), service.NewSink(a.Archive), opts)
	var sawErr atomic.Value
	dcWaitFor(t, 30*time.Second, "29 messages archived and one skipped", func() (bool, string) {
		if st := h.Status(); st.Error != "" {
			sawErr.Store(st.Error)
		}
		s := harvesttest.Status(t, a)["alice/INBOX"]
		return s.Occurrences == 29 && s.Skipped == 1, fmt.Sprintf("%+v, proxy broke %d connections", s, p.hits.Load())
	})
	h.stop(t)
	dcCheckAllBut(t, srv, a, "INBOX", 12)
	if sk := dcSkipped(t, a); len(sk) != 1 || !strings.HasPrefix(sk[0], "INBOX/12: fetch failed 3 times") {
		t.Errorf("skipped records: %q, want INBOX/12: fetch failed 3 times", sk)
	}
	if n := p.hits.Load(); n < 3 {
		t.Errorf("the proxy broke %d connections; the message was given up after fewer than 3 tries", n)
	}
	logs.mu.Lock()
	log := logs.b.String()
	logs.mu.Unlock()
	for _, want := range []string{wantErr, "fetch UID 12 of \\\"INBOX\\\"", "recorded as skipped"} {
		if !strings.Contains(log, want) {
			t.Errorf("the harvester's log does not say %q:\n%s", want, log)
		}
	}
	if e, _ := sawErr.Load().(string); !strings.Contains(e, wantErr) {
		t.Errorf("status error while retrying = %q, want it to say %q", e, wantErr)
	}
	dcVerify(t, a, 29, false)
}

// TestDovecotConnectionCutMidLiteral: the connection is closed in the
// middle of one message's BODY[] literal, every time it is fetched.
func TestDovecotConnectionCutMidLiteral(t *testing.T) {
	srv := dovecottest.Start(t, nil)
	p := startFaultProxy(t, srv.Addr, "POISON-PILL-0123456789", false)
	testBrokenLiteral(t, srv, p, dcFastBackoff(nil), "connection lost in the middle of a")
}

// TestDovecotStallMidLiteral: the server stops sending in the middle of a
// literal and keeps the connection open; the read timeout ends the wait.
func TestDovecotStallMidLiteral(t *testing.T) {
	srv := dovecottest.Start(t, nil)
	p := startFaultProxy(t, srv.Addr, "POISON-PILL-0123456789", true)
	opts := dcFastBackoff(nil)
	opts.ReadTimeout = 400 * time.Millisecond
	testBrokenLiteral(t, srv, p, opts, "the server sent nothing for 400ms")
}

// TestGarbageServer: "servers" that answer with something other than IMAP.
// The harvester says what it got from where, keeps retrying, and stops
// promptly when told to.
func TestGarbageServer(t *testing.T) {
	for _, tc := range []struct {
		name, send string
		want       string
	}{
		{"http", "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1"},
		{"binary", "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", "connect 127.0.0.1:"},
		{"bad-capability", "* OK ready\r\n* CAPABILITY IMAP4rev1 ((((\r\n", "bad response from the server: in response-data: in capability-data"},
		{"closes", "", "connect 127.0.0.1:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			var accepted atomic.Int32
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					accepted.Add(1)
					go func() {
						c.Write([]byte(tc.send))
						c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
						io.Copy(io.Discard, c)
						c.Write([]byte("garbage ((( \x00\xff\r\n"))
						c.Close()
					}()
				}
			}()
			port := ln.Addr().(*net.TCPAddr).Port
			acct := harvest.Account{Name: "junk", Host: "127.0.0.1", Port: port, TLS: "none", Username: "alice", Password: "x"}
			opts := dcFastBackoff(nil)
			opts.ReadTimeout = time.Second
			h := dcStart(t, context.Background(), acct, &countingSink{}, opts)
			var st harvest.Status
			dcWaitFor(t, 10*time.Second, "a second attempt and an error in status", func() (bool, string) {
				st = h.Status()
				return accepted.Load() >= 2 && st.Error != "", fmt.Sprintf("%+v after %d connections", st, accepted.Load())
			})
			t.Logf("status: %s: %s", st.State, st.Error)
			if st.State != "backing off" || !strings.Contains(st.Error, `account "junk"`) || !strings.Contains(st.Error, tc.want) ||
				!strings.Contains(st.Error, strconv.Itoa(port)) {
				t.Errorf("status %q: %q; want backing off, naming the account, the address and %q", st.State, st.Error, tc.want)
			}
			begin := time.Now()
			h.stop(t)
			if d := time.Since(begin); d > 5*time.Second {
				t.Errorf("stopping took %v", d)
			}
		})
	}
}

// countingSink is a Sink that must never be asked to store anything.
type countingSink struct{ stored atomic.Int32 }

func (s *countingSink) Checkpoint(ctx context.Context, account, accountURL, mailbox string, uidvalidity uint32) (uint32, error) {
	return 1, nil
}
func (s *countingSink) Store(ctx context.Context, msgs []harvest.Message) error {
	s.stored.Add(int32(len(msgs)))
	return nil
}
func (s *countingSink) Reconcile(ctx context.Context, account, mailbox string, uidvalidity uint32, flags map[uint32][]string) error {
	return nil
}
func (s *countingSink) MailboxesGone(ctx context.Context, account string, onServer []string) (map[string]int, error) {
	return nil, nil
}
func (s *countingSink) Skip(ctx context.Context, account, mailbox string, uidvalidity, uid uint32, reason string) error {
	return nil
}

// TestDovecotUntrustedCertificate: an account whose server certificate is
// not signed by a trusted CA is parked with an error saying so and what to
// set; an account on the same server with tls_ca_file harvests normally.
func TestDovecotUntrustedCertificate(t *testing.T) {
	srv := dovecottest.Start(t, &dovecottest.Options{TLS: true, Users: []string{"alice", "bob"}})
	srv.Append(t, "alice", "INBOX", harvesttest.Message("tlsalice", 1))
	srv.Append(t, "bob", "INBOX", harvesttest.Message("tlsbob", 1))
	log := dcLogger(t)
	host, port, _ := net.SplitHostPort(srv.TLSAddr)
	p, _ := strconv.Atoi(port)
	a := harvesttest.OpenArchive(t, t.TempDir())
	sink := service.NewSink(a.Archive)
	opts := dcFastBackoff(log)
	opts.AuthBackoff = time.Hour
	untrusted := harvest.Account{Name: "alice", Host: host, Port: p, TLS: "implicit", Username: "alice", Password: srv.Password("alice"), Idle: []string{"INBOX"}}
	trusted := untrusted
	trusted.Name, trusted.Username, trusted.Password, trusted.TLSCAFile = "bob", "bob", srv.Password("bob"), srv.CAFile
	// TLS spoken to the plain IMAP port.
	plainHost, plainPort, _ := net.SplitHostPort(srv.Addr)
	wrongPort := trusted
	wrongPort.Name, wrongPort.Host = "carol", plainHost
	wrongPort.Port, _ = strconv.Atoi(plainPort)
	ha := dcStart(t, context.Background(), untrusted, sink, opts)
	hb := dcStart(t, context.Background(), trusted, sink, opts)
	hc := dcStart(t, context.Background(), wrongPort, sink, opts)
	dcWaitFor(t, 10*time.Second, "bob archived, alice parked", func() (bool, string) {
		st := ha.Status()
		ok, desc := dcArchived(t, a, map[string]int{"bob/INBOX": 1})
		return ok && st.State == "error", fmt.Sprintf("%s; alice: %+v", desc, st)
	})
	st := ha.Status()
	t.Logf("alice: %s", st.Error)
	for _, want := range []string{`account "alice"`, srv.TLSAddr, "server certificate not trusted", "unknown authority", "tls_ca_file"} {
		if !strings.Contains(st.Error, want) {
			t.Errorf("alice's error %q does not say %q", st.Error, want)
		}
	}
	if hb.Status().State == "error" {
		t.Errorf("bob: %+v", hb.Status())
	}
	dcWaitFor(t, 5*time.Second, "carol's error", func() (bool, string) {
		st := hc.Status()
		return strings.Contains(st.Error, "does not speak TLS on this port"), fmt.Sprintf("%+v", st)
	})
	// Parked: no second handshake within the test's backoff bounds.
	time.Sleep(700 * time.Millisecond)
	if got := ha.Status(); got.State != "error" {
		t.Errorf("alice after a while: %+v, want still parked", got)
	}
}

// TestDovecotOddMailboxNames harvests mailboxes whose names need modified
// UTF-7 or quoting on the wire: they are archived under their decoded
// names, searchable by them, and their URLs are percent-encoded UTF-8
// (RFC 5092).
func TestDovecotOddMailboxNames(t *testing.T) {
	srv := dovecottest.Start(t, nil)
	log := dcLogger(t)
	names := []string{"Entwürfe", "日本語/受信", `Say "hi"`, `back\slash`, "100% & more", "  spaced  out", "Ärger &AMk- literal"}
	want := map[string]int{"alice/INBOX": 0}
	for i, mb := range names {
		srv.Append(t, "alice", mb, harvesttest.Message(fmt.Sprintf("odd%d", i), 1))
		want["alice/"+mb] = 1
	}
	a := harvesttest.OpenArchive(t, t.TempDir())
	h := dcStart(t, context.Background(), harvesttest.Account(t, srv, "alice", "alice"), service.NewSink(a.Archive), dcFastBackoff(log))
	dcWaitFor(t, 10*time.Second, "every odd mailbox archived", func() (bool, string) {
		ok, desc := dcArchived(t, a, want)
		return ok, fmt.Sprintf("%s; harvester sees %q", desc, slices.Sorted(maps.Keys(h.Status().Mailboxes)))
	})
	h.stop(t)
	if err := a.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i, mb := range names {
		hits := harvesttest.Search(t, a, fmt.Sprintf("mailbox:%q %s", mb, harvesttest.Marker(fmt.Sprintf("odd%d", i), 1)))
		if len(hits) != 1 || len(hits[0].Occurrences) != 1 || hits[0].Occurrences[0].Mailbox != mb {
			t.Errorf("search in mailbox %q: %+v", mb, hits)
			continue
		}
		if u := hits[0].Occurrences[0].URL; strings.ContainsAny(u, " \"\\") || !strings.Contains(u, ";UIDVALIDITY=") {
			t.Errorf("URL of a message in %q: %s, want it percent-encoded", mb, u)
		}
	}
	dcCheckAllBut(t, srv, a, "Entwürfe")
}

// TestDovecotLargeMessages: a 50 MB message is archived byte-exact and is
// searchable; a message over max_message_bytes is recorded as skipped
// without being downloaded, and the messages around both are archived.
func TestDovecotLargeMessages(t *testing.T) {
	srv := dovecottest.Start(t, nil)
	log := dcLogger(t)
	big := largeMessage("bigone", 50<<20)
	huge := largeMessage("hugeone", 70<<20)
	srv.Append(t, "alice", "INBOX", harvesttest.Message("large", 1))
	bigUID := srv.Append(t, "alice", "INBOX", big)
	hugeUID := srv.Append(t, "alice", "INBOX", huge)
	srv.Append(t, "alice", "INBOX", harvesttest.Message("large", 2))

	a := harvesttest.OpenArchive(t, t.TempDir())
	opts := dcFastBackoff(log)
	opts.MaxMessageBytes = 60 << 20
	h := dcStart(t, context.Background(), harvesttest.Account(t, srv, "alice", "alice"), service.NewSink(a.Archive), opts)
	dcWaitFor(t, 60*time.Second, "3 archived and 1 skipped", func() (bool, string) {
		s := harvesttest.Status(t, a)["alice/INBOX"]
		return s.Occurrences == 3 && s.Skipped == 1, fmt.Sprintf("%+v", s)
	})
	h.stop(t)
	dcCheckAllBut(t, srv, a, "INBOX", hugeUID)
	if err := a.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	sk := dcSkipped(t, a)
	if len(sk) != 1 || !strings.HasPrefix(sk[0], fmt.Sprintf("INBOX/%d: message is ", hugeUID)) || !strings.Contains(sk[0], "max_message_bytes") {
		t.Errorf("skipped: %q, want UID %d over max_message_bytes", sk, hugeUID)
	}
	hits := harvesttest.Search(t, a, "subject:bigone")
	if len(hits) != 1 || len(hits[0].Occurrences) != 1 || hits[0].Occurrences[0].UID != bigUID {
		t.Errorf("search for the 50 MB message: %+v", hits)
	}
	if hits := harvesttest.Search(t, a, "has:attachment bigone.bin"); len(hits) != 1 {
		t.Errorf("search for the 50 MB message's attachment name: %d hits", len(hits))
	}
	dcVerify(t, a, 3, false)
}

// largeMessage is a message of about size bytes: a short text part and a
// base64 attachment named <tag>.bin.
func largeMessage(tag string, size int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: big@example.org\r\nTo: alice@example.org\r\nSubject: %s\r\nMIME-Version: 1.0\r\n"+
		"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nThe %s attachment.\r\n"+
		"--b1\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"%s.bin\"\r\n"+
		"Content-Transfer-Encoding: base64\r\n\r\n", tag, tag, tag)
	line := []byte(strings.Repeat("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0", 3)[:76])
	for i := 0; b.Len() < size; i++ {
		copy(line[:8], fmt.Sprintf("%08d", i%100000000))
		b.Write(line)
		b.WriteString("\r\n")
	}
	b.WriteString("--b1--\r\n")
	return b.Bytes()
}

// TestDovecotXOAUTH2 logs in with AUTHENTICATE XOAUTH2 to a Dovecot whose
// oauth2 passdb asks a token-info endpoint served here. A token the
// endpoint refuses parks the account with the server's answer and a hint;
// once the token file holds a valid token, the next attempt (the file is
// read at every connection) logs in and harvests.
func TestDovecotXOAUTH2(t *testing.T) {
	var asked atomic.Int32
	valid := "ya29.valid-token"
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Query().Get("access_token") != valid {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":"invalid_token"}`)
			return
		}
		io.WriteString(w, `{"username":"alice","active":true}`)
	}))
	defer ts.Close()
	srv := dovecottest.Start(t, &dovecottest.Options{OAuth2TokenInfoURL: ts.URL + "/tokeninfo?access_token="})
	srv.Append(t, "alice", "INBOX", harvesttest.Message("oauth", 1))
	log := dcLogger(t)

	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("ya29.expired-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	acct := harvesttest.Account(t, srv, "alice", "alice")
	acct.Auth, acct.Password, acct.TokenFile = "xoauth2", "", tokenFile
	a := harvesttest.OpenArchive(t, t.TempDir())
	opts := dcFastBackoff(log)
	opts.AuthBackoff = 2 * time.Second
	h := dcStart(t, context.Background(), acct, service.NewSink(a.Archive), opts)
	var st harvest.Status
	dcWaitFor(t, 10*time.Second, "the refused token in status", func() (bool, string) {
		st = h.Status()
		return st.State == "error", fmt.Sprintf("%+v", st)
	})
	t.Logf("refused: %s", st.Error)
	for _, want := range []string{`login as "alice"`, "authentication failed", "check the access token"} {
		if !strings.Contains(st.Error, want) {
			t.Errorf("error %q does not say %q", st.Error, want)
		}
	}
	if asked.Load() == 0 {
		t.Error("Dovecot never asked the token endpoint: the login did not go through XOAUTH2")
	}
	if err := os.WriteFile(tokenFile, []byte(valid+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dcWaitFor(t, 10*time.Second, "the message archived after the token is replaced", func() (bool, string) {
		return dcArchived(t, a, map[string]int{"alice/INBOX": 1})
	})
	if n := dcAuthLogins(t, srv, "alice", "XOAUTH2"); n == 0 {
		t.Error("Dovecot logged no XOAUTH2 login for alice")
	}
}

// dcAuthLogins counts user's successful logins with mechanism in
// Dovecot's log ("imap-login: Login: user=<alice>, method=XOAUTH2, ...").
func dcAuthLogins(t *testing.T, srv *dovecottest.Server, user, mechanism string) int {
	t.Helper()
	b, err := os.ReadFile(srv.LogFile)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), fmt.Sprintf("Login: user=<%s>, method=%s,", user, mechanism))
}

// TestDovecotAuthModes: auth plain uses AUTHENTICATE PLAIN with SASL-IR,
// auth login the LOGIN command, as seen on the wire (Dovecot logs both as
// method=PLAIN).
func TestDovecotAuthModes(t *testing.T) {
	srv := dovecottest.Start(t, &dovecottest.Options{Users: []string{"alice", "bob"}})
	srv.Append(t, "alice", "INBOX", harvesttest.Message("modes", 1))
	srv.Append(t, "bob", "INBOX", harvesttest.Message("modes", 2))
	log := dcLogger(t)
	a := harvesttest.OpenArchive(t, t.TempDir())
	sink := service.NewSink(a.Archive)
	pp := startFaultProxy(t, srv.Addr, "\x00never sent\x00", false)
	pl := startFaultProxy(t, srv.Addr, "\x00never sent\x00", false)
	plain := pp.account(t, srv, "alice", "alice")
	plain.Auth = "plain"
	login := pl.account(t, srv, "bob", "bob")
	login.Auth = "login"
	dcStart(t, context.Background(), plain, sink, dcFastBackoff(log))
	dcStart(t, context.Background(), login, sink, dcFastBackoff(log))
	dcWaitFor(t, 10*time.Second, "both archived", func() (bool, string) {
		return dcArchived(t, a, map[string]int{"alice/INBOX": 1, "bob/INBOX": 1})
	})
	if sent := pp.clientSent(); !strings.Contains(sent, " AUTHENTICATE PLAIN ") || strings.Contains(sent, " LOGIN ") {
		t.Errorf("auth plain sent:\n%s", sent)
	}
	if sent := pl.clientSent(); !strings.Contains(sent, ` LOGIN "bob" `) && !strings.Contains(sent, " LOGIN bob ") || strings.Contains(sent, "AUTHENTICATE") {
		t.Errorf("auth login sent:\n%s", sent)
	}
}
