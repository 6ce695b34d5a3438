package imapview

// A hostile review of the IMAP view (issue 18): what a user with a valid
// login to one account, or a client with none, could do that they should
// not. Each test names the attack it replays and asserts the bound or the
// refusal; each failed before the fix that comes with it.

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"

	"mailvault/indexer"
)

// allocated returns what f allocated in the whole process (the server
// runs in it) and how long it took.
func allocated(f func()) (bytes uint64, took time.Duration) {
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	t0 := time.Now()
	f()
	took = time.Since(t0)
	runtime.ReadMemStats(&m1)
	return m1.TotalAlloc - m0.TotalAlloc, took
}

func (s *rawSession) login(user, pass string) {
	s.t.Helper()
	if _, ok := s.cmd("LOGIN %s %s", user, pass); !strings.HasPrefix(ok, "OK") {
		s.t.Fatalf("login %s: %s", user, ok)
	}
}

// addFolder archives n messages into account's mailbox at UIDs 1, 3, 5 ...
// (odd UIDs, so that no two are consecutive and a UID set of them is as
// long as it can be).
func (f *fixture) addFolder(t *testing.T, account, mailbox string, uv uint32, n int, raw func(i int) []byte) []uint32 {
	t.Helper()
	ctx := context.Background()
	if _, err := f.a.EnsureMailbox(ctx, account, mailbox, "imap", uv); err != nil {
		t.Fatal(err)
	}
	var items []indexer.Item
	var uids []uint32
	for i := 0; i < n; i++ {
		uid := uint32(2*i + 1)
		items = append(items, indexer.Item{Account: account, Mailbox: mailbox, UIDValidity: uv, UID: uid,
			InternalDate: time.Date(2023, 3, 1, 0, 0, 0, 0, time.UTC), Raw: raw(i)})
		uids = append(uids, uid)
	}
	if _, err := f.a.Ingest(ctx, items); err != nil {
		t.Fatal(err)
	}
	if err := f.a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	return uids
}

// TestHostileListPattern: go-imap's LIST matcher backtracks, so
// LIST "" "******...z" took exponential time per folder name (14 "*":
// 24 s on one name; 30: for good). The view's matcher must answer at once
// and agree with go-imap's on every pattern go-imap can answer.
func TestHostileListPattern(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	word := func(alphabet string, n int) string {
		b := make([]byte, rng.IntN(n+1))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return string(b)
	}
	for i := 0; i < 20000; i++ {
		name, ref, pattern := word("ab/", 7), word("a/", 3), word("ab/*%", 6)
		if got, want := matchList(name, ref, pattern), imapserver.MatchList(name, '/', ref, pattern); got != want {
			t.Fatalf("matchList(%q, ref %q, %q) = %v, imapserver.MatchList: %v", name, ref, pattern, got, want)
		}
	}

	f := newFixture(t)
	s := dialRaw(t, f.addr)
	s.login("alice", "alice-password-1")
	var un []string
	var ans string
	_, took := allocated(func() { un, ans = s.cmd(`LIST "" "%s"`, strings.Repeat("*", 40)+"z") })
	if !strings.HasPrefix(ans, "OK") || len(un) != 0 || took > 2*time.Second {
		t.Errorf(`LIST "" "*...*z" (40 stars): %q %q after %v, want OK, nothing listed, at once`, un, ans, took)
	}
	if un, _ := s.cmd(`LIST "" "%s"`, strings.Repeat("*%", 20)+"2024"); len(un) != 1 || !strings.Contains(un[0], `"alice/Archive/2024"`) {
		t.Errorf(`LIST "" "*%%*%%...2024": %q, want alice/Archive/2024`, un)
	}
	if un, _ := s.cmd(`LIST alice/ %%`); len(un) != 3 {
		t.Errorf(`LIST alice/ %%: %q, want alice/Archive, alice/INBOX and its epoch`, un)
	}
}

// nestedRFC822 is a message that holds a message that holds a message ...
// depth levels deep: a hostile sender can mail it to any archived account.
func nestedRFC822(depth int) []byte {
	var b bytes.Buffer
	b.WriteString("From: a@example.org\r\nSubject: nest\r\n")
	for i := 0; i < depth; i++ {
		b.WriteString("Content-Type: message/rfc822\r\n\r\n")
	}
	b.WriteString("Content-Type: text/plain\r\n\r\nbottom\r\n")
	return b.Bytes()
}

// nestedMultipart is a multipart in a multipart ... depth levels deep.
func nestedMultipart(depth int) []byte {
	var b bytes.Buffer
	b.WriteString("From: a@example.org\r\nSubject: nest\r\n")
	for i := 0; i < depth; i++ {
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n", i, i)
	}
	b.WriteString("Content-Type: text/plain\r\n\r\nbottom\r\n")
	return b.Bytes()
}

// TestHostileDeepMIME: BODYSTRUCTURE of a message nested 2,000 levels
// deep allocated 155 MB (message/rfc822, quadratic: a 1 MB one would need
// tens of GB) or took 1 s (multipart, 114 KB) with go-imap's extractor.
// The view's must stay small, describe the part at the depth limit as one
// opaque part, answer every well-formed message exactly as go-imap does,
// and refuse a section path deeper than the limit.
func TestHostileDeepMIME(t *testing.T) {
	for name, raw := range map[string][]byte{"rfc822": nestedRFC822(2000), "multipart": nestedMultipart(2000)} {
		var bs imap.BodyStructure
		n, took := allocated(func() { bs = bodyStructure(raw) })
		if n > 2<<20 || took > 5*time.Second {
			t.Errorf("%s nested 2000 deep (%d bytes): BODYSTRUCTURE allocated %d KB in %v, want at most 2 MB", name, len(raw), n>>10, took)
		}
		depth := 0
		for {
			if mp, ok := bs.(*imap.BodyStructureMultiPart); ok {
				bs = mp.Children[0]
			} else if sp := bs.(*imap.BodyStructureSinglePart); sp.MessageRFC822 != nil {
				bs = sp.MessageRFC822.BodyStructure
			} else {
				if sp.Type != "application" || sp.Subtype != "octet-stream" {
					t.Errorf("%s: the part at depth %d is %s/%s, want application/octet-stream", name, depth, sp.Type, sp.Subtype)
				}
				break
			}
			depth++
		}
		if depth != maxMIMEDepth {
			t.Errorf("%s: described %d levels deep, want %d", name, depth, maxMIMEDepth)
		}
		part := make([]int, 2000)
		for i := range part {
			part[i] = 1
		}
		if n, took := allocated(func() { bodySection(raw, &imap.FetchItemBodySection{Part: part}) }); n > 2<<20 || took > 5*time.Second {
			t.Errorf("%s: BODY[1.1...1] (2000 levels) allocated %d KB in %v, want at most 2 MB", name, n>>10, took)
		}
	}

	// Within the bounds, the answer is go-imap's.
	attached := "From: x@example.org\r\nSubject: inner\r\nContent-Type: multipart/alternative; boundary=in\r\n\r\n--in\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n\r\nplain\r\nlines\r\n--in\r\nContent-Type: text/html\r\nContent-Language: en, de\r\n\r\n<p>html</p>\r\n--in--\r\n"
	for i, raw := range [][]byte{
		msg(1, "plain", "body"),
		[]byte("Subject: no type\r\n\r\nx\r\ny\r\n"),
		[]byte("garbage without a header"),
		nestedRFC822(5),
		nestedMultipart(5),
		[]byte("From: a@example.org\r\nContent-Type: multipart/mixed; boundary=zz\r\n\r\npreamble\r\n--zz\r\nContent-Type: text/plain\r\n\r\nhello\r\n" +
			"--zz\r\nContent-Type: application/pdf; name=a.pdf\r\nContent-Disposition: attachment; filename=a.pdf\r\nContent-Transfer-Encoding: base64\r\nContent-Id: <c1>\r\n\r\nQUJD\r\n" +
			"--zz\r\nContent-Type: message/rfc822\r\n\r\n" + attached + "--zz--\r\nepilogue\r\n"),
		[]byte("Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: digest part\r\n\r\nbody\r\n--d--\r\n"),
	} {
		if got, want := bodyStructure(raw), imapserver.ExtractBodyStructure(bytes.NewReader(raw)); !reflect.DeepEqual(got, want) {
			t.Errorf("message %d: BODYSTRUCTURE\n%#v\ngo-imap's:\n%#v", i, got, want)
		}
	}

	// Over the wire: the server answers, and a client can read the answer.
	f := newFixture(t)
	deep := [][]byte{nestedRFC822(3000), nestedMultipart(3000)}
	f.addFolder(t, "alice", "Deep", 1, len(deep), func(i int) []byte { return deep[i] })
	c := f.login(t, "alice", "alice-password-1")
	if _, err := c.Select("alice/Deep", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	sec := &imap.FetchItemBodySection{Part: part30(), Peek: true}
	var msgs []*imapclient.FetchMessageBuffer
	_, took := allocated(func() {
		var err error
		msgs, err = c.Fetch(imap.SeqSetNum(1, 2), &imap.FetchOptions{BodyStructure: &imap.FetchItemBodyStructure{Extended: true},
			BodySection: []*imap.FetchItemBodySection{sec}}).Collect()
		if err != nil {
			t.Errorf("FETCH BODYSTRUCTURE of the deep messages: %v", err)
		}
	})
	if len(msgs) != 2 || took > 10*time.Second {
		t.Fatalf("FETCH of the deep messages: %d answers in %v", len(msgs), took)
	}
	for _, m := range msgs {
		if m.BodyStructure == nil {
			t.Errorf("message %d: no BODYSTRUCTURE", m.SeqNum)
		}
		if b := m.FindBodySection(sec); len(b) != 0 {
			t.Errorf("message %d: BODY[1.1...] 30 levels deep: %q, want empty (deeper than %d)", m.SeqNum, b, maxMIMEDepth)
		}
	}
}

func part30() []int {
	p := make([]int, 30)
	for i := range p {
		p[i] = 1
	}
	return p
}
