package imapview

// A hostile review of the IMAP view (issue 18): what a user with a valid
// login to one account, or a client with none, could do that they should
// not. Each test names the attack it replays and asserts the bound or the
// refusal; each failed before the fix that comes with it.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"

	"mailvault/indexer"
	"mailvault/service"
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

// TestHostileSearchExpansion: a sequence set and $Expunged were written
// into the criteria text UID by UID, so SEARCH 1:* repeated 1,000 times
// made 268 MB of text in a folder of 2,000 messages (13 GB for 100,000).
// The text must grow with the command, not with the folder, and the
// answer stay exact for the session's messages.
func TestHostileSearchExpansion(t *testing.T) {
	big := &selected{}
	for i := 0; i < 100_000; i++ {
		m := indexer.FolderMessage{UID: uint32(2*i + 1)}
		if i%2 == 0 {
			m.Expunged = "2024-01-01T00:00:00Z"
		}
		big.msgs = append(big.msgs, m)
	}
	all := imap.SeqSet{{Start: 1, Stop: 0}}
	var text string
	var err error
	n, took := allocated(func() {
		text, err = big.criteriaText(&imap.SearchCriteria{SeqNum: slices.Repeat([]imap.SeqSet{all}, 1000)})
	})
	if err != nil || len(text) > 20<<10 || n > 16<<20 {
		t.Errorf("SEARCH 1:* x1000 in 100,000 messages: %d bytes of text (%.40q...), %v; %d MB allocated in %v", len(text), text, err, n>>20, took)
	}
	for _, tc := range []struct {
		set  imap.SeqSet
		want string
	}{
		{imap.SeqSetNum(2, 3, 4), "UID 3:7"},
		{imap.SeqSet{{Start: 99_999, Stop: 0}, {Start: 1, Stop: 1}}, "UID 1,199997:199999"},
		{imap.SeqSet{{Start: 200_000, Stop: 300_000}}, "NOT ALL"},
		{imap.SeqSet{{Start: 200_000, Stop: 0}}, "UID 199999"}, // RFC 9051: 200000:* is *:200000
	} {
		if got, err := big.criteriaText(&imap.SearchCriteria{SeqNum: []imap.SeqSet{tc.set}}); got != tc.want || err != nil {
			t.Errorf("criteriaText(%v) = %q, %v, want %q", tc.set, got, err, tc.want)
		}
	}
	// $Expunged every other message: 50,000 UIDs that no range joins. Once
	// is fine; 2,500 times is refused, without writing it 2,500 times.
	if text, err := big.criteriaText(&imap.SearchCriteria{Flag: []imap.Flag{ExpungedKeyword}}); err != nil || !strings.HasPrefix(text, "UID 1,5,9,") {
		t.Errorf("KEYWORD $Expunged: %.40q..., %v", text, err)
	}
	n, took = allocated(func() {
		_, err = big.criteriaText(&imap.SearchCriteria{Flag: slices.Repeat([]imap.Flag{ExpungedKeyword}, 2500)})
	})
	if !errors.Is(err, errSearchTooLarge) || n > 16<<20 {
		t.Errorf("KEYWORD $Expunged x2500: %v, %d MB allocated in %v; want errSearchTooLarge, a few MB", err, n>>20, took)
	}

	// Over the wire, in alice/INBOX (UIDs 10 to 50): a message archived
	// after the SELECT below the highest UID (UID 25, a gap filled) is not
	// the session's, and no answer names it, by UID or by number.
	f := newFixture(t)
	s := dialRaw(t, f.addr)
	s.login("alice", "alice-password-1")
	s.cmd("SELECT alice/INBOX")
	if _, err := f.a.Ingest(context.Background(), []indexer.Item{{Account: "alice", Mailbox: "INBOX", UIDValidity: 7, UID: 25, Raw: msg(25, "gap", "filled later")}}); err != nil {
		t.Fatal(err)
	}
	if err := f.a.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ cmd, want string }{
		{"UID SEARCH 2:4", "* SEARCH 20 30 40"},
		{"SEARCH 2:4", "* SEARCH 2 3 4"},
		{"UID SEARCH NOT 2:4", "* SEARCH 10 50"},
		{"UID SEARCH ALL", "* SEARCH 10 20 30 40 50"},
		{"UID SEARCH " + strings.TrimSpace(strings.Repeat("1:* ", 5000)), "* SEARCH 10 20 30 40 50"},
	} {
		un, ans := s.cmd("%s", tc.cmd)
		if !strings.HasPrefix(ans, "OK") || len(un) == 0 || strings.TrimSpace(un[0]) != tc.want {
			t.Errorf("%.40s: %q %s, want %q", tc.cmd, un, ans, tc.want)
		}
	}
	// A search refused as too large says so.
	if _, ans := s.cmd("SEARCH %s", strings.TrimSpace(strings.Repeat("KEYWORD $Expunged ", 2500))); !strings.HasPrefix(ans, "OK") && !strings.HasPrefix(ans, "NO [LIMIT]") {
		t.Errorf("KEYWORD $Expunged x2500 answered %q", ans)
	}
}

// TestHostileFetchAuditComplete: the audit row of a FETCH is cut at the
// trail's row size, so FETCH 1:* of 600 messages whose UIDs are not
// consecutive left a row that named neither all the UIDs read nor what
// was read. Every UID read and the items must be in the trail, readable.
func TestHostileFetchAuditComplete(t *testing.T) {
	f := newFixture(t)
	uids := f.addFolder(t, "alice", "Sparse", 1, 600, func(i int) []byte { return msg(2000+i, "sparse", "x") })
	s := dialRaw(t, f.addr)
	s.login("alice", "alice-password-1")
	s.cmd("SELECT alice/Sparse")
	if un, ans := s.cmd("FETCH 1:* (BODY.PEEK[HEADER.FIELDS (Subject)])"); !strings.HasPrefix(ans, "OK") || len(un) < 600 {
		t.Fatalf("FETCH 1:*: %d lines, %s", len(un), ans)
	}
	read := map[uint32]bool{}
	for _, r := range f.audits(t, "imap-fetch") {
		if !strings.HasPrefix(r, "alice alice/Sparse;UIDVALIDITY=1 UID ") {
			continue
		}
		if strings.Contains(r, "…[") || !strings.HasSuffix(r, " BODY[HEADER.FIELDS (Subject)]") {
			t.Errorf("audit row cut or without the items: ...%s", r[max(0, len(r)-120):])
		}
		for _, rg := range strings.Split(strings.Fields(r)[3], ",") {
			var lo, hi uint32
			if n, _ := fmt.Sscanf(rg, "%d:%d", &lo, &hi); n == 1 {
				hi = lo
			} else if n != 2 {
				t.Fatalf("audit row %.80q...: range %q", r, rg)
			}
			for u := lo; u <= hi; u++ {
				read[u] = true
			}
		}
	}
	for _, u := range uids {
		if !read[u] {
			t.Fatalf("UID %d was read, and no audit row names it (%d of %d named)", u, len(read), len(uids))
		}
	}

	// A field name is the client's bytes: it cannot pass for the row's
	// own words.
	s.cmd("FETCH 1 (BODY.PEEK[HEADER.FIELDS (\"X)] UID 1:* BODY[\")])")
	rows := f.audits(t, "imap-fetch")
	if r := rows[0]; !strings.HasSuffix(r, `UID 1 BODY[HEADER.FIELDS ("X)] UID 1:* BODY[")]`) {
		t.Errorf("audit row of a FETCH of a strange field name: %q", r)
	}
}

// until sends a command and returns every line up to its tagged answer,
// or up to the end of the connection (ended false then).
func (s *rawSession) until(cmd string) (lines []string, ended bool) {
	s.no++
	tag := fmt.Sprintf("t%d", s.no)
	fmt.Fprintf(s.c, "%s %s\r\n", tag, cmd)
	for {
		s.c.SetReadDeadline(time.Now().Add(10 * time.Second))
		l, err := s.r.ReadString('\n')
		if err != nil {
			return lines, false
		}
		l = strings.TrimRight(l, "\r\n")
		lines = append(lines, l)
		if strings.HasPrefix(l, tag+" ") {
			return lines, true
		}
	}
}

// TestHostileLoginRevoked: a session kept its LOGIN's rights for as long
// as the client kept it open (NOOP, IDLE: for good), so a user removed,
// or whose token was revoked, read on. The next command that reads must
// end the session, before anything of the mail is sent.
func TestHostileLoginRevoked(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	noContent := func(what string, lines []string) {
		t.Helper()
		for _, l := range lines {
			if strings.Contains(l, "FETCH") && strings.HasPrefix(l, "* ") || strings.HasPrefix(l, "* LIST") || strings.HasPrefix(l, "* SEARCH") {
				t.Errorf("%s: %q was sent", what, l)
			}
		}
		if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, "* BYE") }) {
			t.Errorf("%s: %q, want BYE", what, lines)
		}
	}

	// Removed while a folder is open: FETCH, SEARCH and LIST get nothing.
	for _, cmd := range []string{"FETCH 1 BODY.PEEK[]", "UID SEARCH ALL", `LIST "" *`} {
		s := dialRaw(t, f.addr)
		s.login("alice", "alice-password-1")
		s.cmd("SELECT alice/INBOX")
		if err := f.u.Remove(ctx, "alice"); err != nil {
			t.Fatal(err)
		}
		lines, _ := s.until(cmd)
		noContent("after the user was removed: "+cmd, lines)
		if err := f.u.Add(ctx, service.User{Name: "alice", Role: service.RoleUser, Accounts: []string{"alice"}}, "alice-password-1"); err != nil {
			t.Fatal(err)
		}
	}

	// A token revoked.
	tok, info, err := f.u.NewToken(ctx, "alice", 0)
	if err != nil {
		t.Fatal(err)
	}
	s := dialRaw(t, f.addr)
	s.login("alice", tok)
	if _, err := f.u.RevokeToken(ctx, info.ID); err != nil {
		t.Fatal(err)
	}
	lines, _ := s.until(`LIST "" *`)
	noContent("after the token was revoked", lines)

	// The accounts changed: the open folder's account is withdrawn, and a
	// session with none open lists the new account's folders.
	open, idle := dialRaw(t, f.addr), dialRaw(t, f.addr)
	open.login("alice", "alice-password-1")
	open.cmd("SELECT alice/INBOX")
	idle.login("alice", "alice-password-1")
	if err := f.u.Remove(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := f.u.Add(ctx, service.User{Name: "alice", Role: service.RoleUser, Accounts: []string{"bob"}}, "alice-password-1"); err != nil {
		t.Fatal(err)
	}
	lines, _ = open.until("FETCH 1:* (FLAGS ENVELOPE)")
	noContent("after alice's account was withdrawn", lines)
	if un, _ := idle.cmd(`LIST "" *`); !slices.ContainsFunc(un, func(l string) bool { return strings.Contains(l, `"bob/INBOX"`) }) ||
		slices.ContainsFunc(un, func(l string) bool { return strings.Contains(l, `"alice/INBOX"`) }) {
		t.Errorf("LIST after alice's accounts became bob: %q", un)
	}

	// IDLE: the change that would be announced ends the session instead.
	if err := f.u.Add(ctx, service.User{Name: "carol", Role: service.RoleUser, Accounts: []string{"alice"}}, "carol-password-1"); err != nil {
		t.Fatal(err)
	}
	s = dialRaw(t, f.addr)
	s.login("carol", "carol-password-1")
	s.cmd("SELECT alice/INBOX")
	fmt.Fprintf(s.c, "i IDLE\r\n")
	if l := s.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("IDLE: %q", l)
	}
	if err := f.u.Remove(ctx, "carol"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.a.Ingest(ctx, []indexer.Item{{Account: "alice", Mailbox: "INBOX", UIDValidity: 7, UID: 70, Raw: msg(70, "new", "while idle")}}); err != nil {
		t.Fatal(err)
	}
	s.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if l, err := s.r.ReadString('\n'); err != nil || !strings.HasPrefix(l, "* BYE") {
		t.Errorf("IDLE of a removed user, new mail: %q %v, want BYE", l, err)
	}
}

// TestHostileFetchManySections: every section of a FETCH is a pass over
// the message, so 3,000 BINARY.SIZE[2] (what 50 KiB holds) cost 17 s of
// CPU per 1 MB message for a few bytes of answer. Past maxFetchSections a
// FETCH is refused; within it, it is answered.
func TestHostileFetchManySections(t *testing.T) {
	f := newFixture(t)
	att := bytes.Repeat([]byte("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODkwYWJjZGVmZ2hpamtsbW5vcHFy\r\n"), 4000) // 276 KB
	raw := []byte("From: a@example.org\r\nSubject: big\r\nContent-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\nContent-Type: text/plain\r\n\r\nhi\r\n" +
		"--zz\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n" + string(att) + "--zz--\r\n")
	f.addFolder(t, "alice", "Att", 1, 1, func(int) []byte { return raw })
	s := dialRaw(t, f.addr)
	s.login("alice", "alice-password-1")
	s.cmd("SELECT alice/Att")
	var ans string
	n, took := allocated(func() { _, ans = s.cmd("FETCH 1 (%s)", strings.TrimSpace(strings.Repeat("BINARY.SIZE[2] ", 3000))) })
	if !strings.HasPrefix(ans, "NO [LIMIT]") || n > 64<<20 {
		t.Errorf("FETCH 1 (BINARY.SIZE[2] x3000): %q, %d MB allocated in %v; want NO [LIMIT] at once", ans, n>>20, took)
	}
	un, ans := s.cmd("FETCH 1 (%s)", strings.TrimSpace(strings.Repeat("BINARY.SIZE[2] ", maxFetchSections)))
	if want := fmt.Sprintf("BINARY.SIZE[2] %d", 4000*51); !strings.HasPrefix(ans, "OK") || len(un) != 1 || !strings.Contains(un[0], want) {
		t.Errorf("FETCH 1 (BINARY.SIZE[2] x%d): %.100q %s, want OK with %s", maxFetchSections, un, ans, want)
	}
}

// TestHostileStoredFlags: a stored flag is whatever its source had, and
// go-imap, given one it cannot write ("a]b", or "Ärger", whose second
// byte is 0x84), stopped the FLAGS line of SELECT half-way and put the NO
// on the same line: the folder could not be opened and the client lost
// the thread. Such flags are not shown; the others are.
func TestHostileStoredFlags(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.a.EnsureMailbox(ctx, "alice", "Odd", "imap", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := f.a.Ingest(ctx, []indexer.Item{{Account: "alice", Mailbox: "Odd", UIDValidity: 1, UID: 1,
		Flags: []string{"a]b", "Ärger", "(x", `\Seen`, "$Fine", "Wichtig-é"}, InternalDate: time.Now(), Raw: msg(1, "odd", "flags")}}); err != nil {
		t.Fatal(err)
	}
	if err := f.a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	s := dialRaw(t, f.addr)
	s.login("alice", "alice-password-1")
	un, ans := s.cmd("SELECT alice/Odd")
	if !strings.HasPrefix(ans, "OK") || !slices.Contains(un, `* FLAGS (\Seen \Answered \Flagged \Deleted \Draft $Expunged $Fine Wichtig-é)`) {
		t.Errorf("SELECT of a folder with unwritable flags: %q %s", un, ans)
	}
	if un, ans := s.cmd("FETCH 1 FLAGS"); !strings.HasPrefix(ans, "OK") || len(un) != 1 || un[0] != `* 1 FETCH (FLAGS (\Seen $Fine Wichtig-é))` {
		t.Errorf("FETCH FLAGS: %q %s", un, ans)
	}
}

// TestReadHeaderBounded: ENVELOPE's header parse keeps at most
// maxHeaderBytes of a huge header, reads past the whole block (the body
// starts where it should), and is not fooled by a long line whose rest is
// a bare CRLF.
func TestReadHeaderBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("Subject: first\r\nX-Long: " + strings.Repeat("a", 5000) + "\r\n")
	for i := 0; b.Len() < 6<<20; i++ {
		fmt.Fprintf(&b, "X-Filler-%d: %s\r\n", i, strings.Repeat("f", 60))
	}
	b.WriteString("From: late@example.org\r\n\r\nthe body\r\n")
	br := bufio.NewReader(strings.NewReader(b.String()))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	h, err := readHeader(br)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if h.Get("Subject") != "first" || h.Get("From") != "" {
		t.Errorf("Subject %q, From %q: want the first field kept, the one past 256 KiB left out", h.Get("Subject"), h.Get("From"))
	}
	if rest, _ := io.ReadAll(br); string(rest) != "the body\r\n" {
		t.Errorf("after the header the reader is at %q", clip(string(rest), 40))
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 16<<20 {
		t.Errorf("a 6 MB header allocated %d MB to parse", got>>20)
	}
}
