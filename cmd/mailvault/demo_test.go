package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/mail"
	"net/textproto"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"mailvault/indexer"
)

// TestDemo runs `mailvault demo` as a newcomer would (in process): it
// prints a URL and a login, the UI answers with the seeded mail, and mail
// delivered meanwhile becomes searchable. It refuses to wipe a directory
// that is not a demo's.
func TestDemo(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "demo")
	ctx, cancel := context.WithCancel(context.Background())
	var out, errs syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, &env{stdout: &out, stderr: &errs}, []string{"demo", "--data", data, "--listen", "127.0.0.1:0", "--every", "300ms", "--messages", "60"})
	}()
	defer func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("demo exit %d: %s", code, errs.String())
			}
		case <-time.After(15 * time.Second):
			t.Error("demo did not stop on cancel")
		}
	}()
	var base string
	re := regexp.MustCompile(`mailvault demo: (http://[0-9.:]+/)`)
	for deadline := time.Now().Add(30 * time.Second); base == ""; time.Sleep(50 * time.Millisecond) {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			base = m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no URL printed; stdout %q, stderr %q", out.String(), errs.String())
		}
	}
	if !strings.Contains(out.String(), "demo / demo-password") {
		t.Errorf("no login printed: %q", out.String())
	}
	archived := func() int {
		st, err := indexer.Status(context.Background(), data)
		if err != nil {
			return 0
		}
		n := 0
		for _, s := range st {
			n += s.Indexed
		}
		return n
	}
	for deadline := time.Now().Add(20 * time.Second); archived() < 62; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("demo: %d messages indexed, want the 60 seeded and some delivered; stderr %s", archived(), errs.String())
		}
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, err := c.PostForm(base+"login", url.Values{"name": {"demo"}, "password": {"demo-password"}, "next": {"/?q=subject:invoice"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "Invoice #") || !regexp.MustCompile(`imap://(alice|bob|carol)@127.0.0.1:[0-9]+/[A-Za-z]+;UIDVALIDITY=[0-9]+/;UID=[0-9]+`).Match(body) {
		t.Errorf("demo search page: %d\n%s", resp.StatusCode, body)
	}

	// The archive over IMAP: alice sees her folders only, read-only.
	m := regexp.MustCompile(`the archive over IMAP, read-only: (127\.0\.0\.1:[0-9]+)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no IMAP view address printed: %q", out.String())
	}
	ic, err := imapclient.DialInsecure(m[1], nil)
	if err != nil {
		t.Fatalf("IMAP view: %v", err)
	}
	defer ic.Close()
	if err := ic.Login("alice", "demo-password").Wait(); err != nil {
		t.Fatalf("IMAP view login: %v", err)
	}
	boxes, err := ic.List("", "*", nil).Collect()
	if err != nil || len(boxes) < 2 {
		t.Fatalf("IMAP view LIST: %v, %d folders", err, len(boxes))
	}
	for _, b := range boxes {
		if b.Mailbox != "alice" && !strings.HasPrefix(b.Mailbox, "alice/") {
			t.Errorf("alice sees %s over IMAP", b.Mailbox)
		}
	}
	if sel, err := ic.Select("alice/INBOX", nil).Wait(); err != nil || sel.NumMessages == 0 {
		t.Errorf("IMAP view SELECT alice/INBOX: %v", err)
	}

	// A directory that is not the demo's is left alone.
	other := filepath.Join(dir, "precious")
	os.MkdirAll(other, 0o755)
	os.WriteFile(filepath.Join(other, "catalog.db"), []byte("x"), 0o644)
	var e2 bytes.Buffer
	if code := run(context.Background(), &env{stdout: io.Discard, stderr: &e2}, []string{"demo", "--data", other}); code != 2 || !strings.Contains(e2.String(), "is not a demo directory") {
		t.Errorf("demo on a non-demo directory: exit %d, %q", code, e2.String())
	}
	if _, err := os.Stat(filepath.Join(other, "catalog.db")); err != nil {
		t.Error("demo removed a directory that was not its own")
	}
}

// demoMessages writes the seeded mail as runDemo does (same seed, same
// calls to the generator's random source), parsed.
func demoMessages(t *testing.T, n int) []*mail.Message {
	t.Helper()
	gen := newDemoMail(1)
	names := []string{"alice", "bob", "carol"}
	var msgs []*mail.Message
	for i := range n {
		owner := names[i%len(names)]
		_ = gen.rng.IntN(4) // runDemo's choice of mailbox
		raw := gen.message(owner, gen.date(i, n))
		m, err := mail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("message %d does not parse: %v\n%s", i, err, raw)
		}
		msgs = append(msgs, m)
	}
	return msgs
}

// TestDemoMailDates: every seeded message is dated within the demo's
// window, in order, and the window is used (the old date code overflowed
// and put half the messages in 2023).
func TestDemoMailDates(t *testing.T) {
	end := demoStart.Add(demoSpan)
	for _, n := range []int{1, 60, 300, 5000} {
		msgs := demoMessages(t, n)
		var first, last, prev time.Time
		for i, m := range msgs {
			d, err := m.Header.Date()
			if err != nil {
				t.Fatalf("n=%d message %d: %v", n, i, err)
			}
			if d.Before(demoStart) || !d.Before(end) {
				t.Errorf("n=%d message %d dated %v, outside [%v, %v)", n, i, d, demoStart, end)
			}
			if d.Before(prev) {
				t.Errorf("n=%d message %d dated %v, before message %d (%v)", n, i, d, i-1, prev)
			}
			prev = d
			if i == 0 {
				first = d
			}
			last = d
		}
		if n >= 60 && last.Sub(first) < demoSpan*9/10 {
			t.Errorf("n=%d: dates from %v to %v use little of the %v window", n, first, last, demoSpan)
		}
	}
}

// demoPart is one leaf of a message's MIME tree.
type demoPart struct {
	contentType string
	body        string // decoded
}

// demoLeaves walks a MIME entity and returns its leaves, and every
// multipart type on the way.
func demoLeaves(t *testing.T, header textproto.MIMEHeader, body io.Reader) (leaves []demoPart, multiparts []string) {
	t.Helper()
	ct := header.Get("Content-Type")
	if ct == "" {
		ct = "text/plain"
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		t.Fatalf("Content-Type %q: %v", ct, err)
	}
	if strings.HasPrefix(mt, "multipart/") {
		multiparts = append(multiparts, mt)
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", mt, err)
			}
			l, m := demoLeaves(t, p.Header, p)
			leaves, multiparts = append(leaves, l...), append(multiparts, m...)
		}
		return leaves, multiparts
	}
	switch strings.ToLower(header.Get("Content-Transfer-Encoding")) {
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, body)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		t.Fatalf("%s body: %v", mt, err)
	}
	return []demoPart{{mt, string(b)}}, nil
}

// TestDemoMailParts: the seeded mail has plain-text, multipart/alternative
// (text and HTML) and HTML-only messages, and attachments.
func TestDemoMailParts(t *testing.T) {
	msgs := demoMessages(t, 300)
	var plain, alternative, htmlOnly, attachments int
	for i, m := range msgs {
		leaves, multiparts := demoLeaves(t, textproto.MIMEHeader(m.Header), m.Body)
		var text, html int
		for _, l := range leaves {
			switch l.contentType {
			case "text/plain":
				text++
				if !strings.Contains(l.body, "Hello ") {
					t.Errorf("message %d: text part %q", i, l.body)
				}
			case "text/html":
				html++
				if !strings.Contains(l.body, "<p>Hello ") || !strings.Contains(l.body, "</html>") {
					t.Errorf("message %d: HTML part %q", i, l.body)
				}
			case "text/csv":
				attachments++
				if !strings.HasPrefix(l.body, "item,amount") {
					t.Errorf("message %d: attachment %q", i, l.body)
				}
			default:
				t.Errorf("message %d: a %s part", i, l.contentType)
			}
		}
		switch {
		case text == 1 && html == 1 && slices.Contains(multiparts, "multipart/alternative"):
			alternative++
		case text == 0 && html == 1:
			htmlOnly++
		case text == 1 && html == 0:
			plain++
		default:
			t.Errorf("message %d: %d text and %d HTML parts in %v", i, text, html, multiparts)
		}
	}
	t.Logf("300 messages: %d plain, %d text+HTML, %d HTML only, %d attachments", plain, alternative, htmlOnly, attachments)
	if plain < 100 || alternative < 50 || htmlOnly < 10 || attachments < 30 {
		t.Errorf("300 messages: %d plain, %d text+HTML, %d HTML only, %d attachments; want a share of each", plain, alternative, htmlOnly, attachments)
	}
}

// TestDemoMailThreads: a reply's parent is a message of the demo (its
// Message-ID is in the set, written before it); the reply's subject is
// "Re: " and the parent's (without a second "Re: " when the parent is a
// reply itself), and its References are the parent's and the parent.
func TestDemoMailThreads(t *testing.T) {
	msgs := demoMessages(t, 300)
	type seen struct{ subject, references string }
	byID := map[string]seen{}
	replies, deep := 0, 0
	for i, m := range msgs {
		id := m.Header.Get("Message-ID")
		subject, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
		if err != nil {
			t.Fatal(err)
		}
		if _, dup := byID[id]; dup || id == "" {
			t.Errorf("message %d: Message-ID %q missing or not unique", i, id)
		}
		refs := m.Header.Get("References")
		if parentID := m.Header.Get("In-Reply-To"); parentID != "" {
			replies++
			parent, ok := byID[parentID]
			if !ok {
				t.Errorf("message %d replies to %s, which is not a demo message before it", i, parentID)
				continue
			}
			if want := "Re: " + strings.TrimPrefix(parent.subject, "Re: "); subject != want {
				t.Errorf("message %d: subject %q, replying to %q; want %q", i, subject, parent.subject, want)
			}
			if want := strings.TrimSpace(parent.references + " " + parentID); refs != want {
				t.Errorf("message %d: References %q, want %q", i, refs, want)
			}
			if parent.references != "" {
				deep++
			}
		} else if refs != "" || strings.HasPrefix(subject, "Re:") {
			t.Errorf("message %d is no reply but has References %q, subject %q", i, refs, subject)
		}
		byID[id] = seen{subject, refs}
	}
	if replies < 50 || deep == 0 {
		t.Errorf("%d replies (%d to replies) in 300 messages; want threads", replies, deep)
	}
}

// TestDemoMailDeterministic: the same seed writes the same mail.
func TestDemoMailDeterministic(t *testing.T) {
	write := func() []byte {
		g := newDemoMail(1)
		var all bytes.Buffer
		for i := range 50 {
			all.Write(g.message("bob", g.date(i, 50)))
		}
		return all.Bytes()
	}
	if a, b := write(), write(); !bytes.Equal(a, b) {
		t.Error("two generators with the same seed wrote different mail")
	}
}

// TestDemoPortTaken: a demo whose web port is taken stops with an error
// that says so, instead of running on without its UI.
func TestDemoPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var out, errs bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code := run(ctx, &env{stdout: &out, stderr: &errs}, []string{"demo", "--data", filepath.Join(t.TempDir(), "demo"),
		"--listen", ln.Addr().String(), "--every", "0", "--messages", "5"})
	if code == 0 || !strings.Contains(errs.String(), "address already in use") || !strings.Contains(errs.String(), "--listen") {
		t.Fatalf("demo on a taken port: exit %d, stderr %q", code, errs.String())
	}
	if strings.Contains(out.String(), "http://") {
		t.Errorf("demo printed a URL it does not serve: %s", out.String())
	}
}
