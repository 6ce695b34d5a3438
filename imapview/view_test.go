package imapview

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"mailvault/indexer"
	"mailvault/service"
)

// fixture is an archive on disk with two accounts (alice: INBOX in two
// epochs and Archive/2024; bob: INBOX), users alice (role user, account
// alice) and root (admin), served by the view on a loopback port.
type fixture struct {
	a    *indexer.Archive
	svc  *service.Service
	u    *service.Users
	addr string
	raws map[string][]byte // "account/mailbox/uidvalidity/uid" → bytes
}

func msg(i int, subject, body string) []byte {
	return fmt.Appendf(nil, "From: Sender %d <s%d@example.org>\r\nTo: r@example.org\r\nSubject: %s\r\nDate: Mon, 2 Jan 2023 10:%02d:00 +0100\r\nMessage-ID: <m%d@example.org>\r\n\r\n%s\r\n", i, i, subject, i%60, i, body)
}

// openArchive opens a new archive in dir and its user store, both closed
// when the test ends.
func openArchive(t testing.TB, dir string) (*indexer.Archive, *service.Users) {
	t.Helper()
	a, err := indexer.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	u, err := service.OpenUsers(a.Dir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.Close() })
	return a, u
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	a, u := openArchive(t, t.TempDir())
	if err := u.Add(ctx, service.User{Name: "alice", Role: service.RoleUser, Accounts: []string{"alice"}}, "alice-password-1"); err != nil {
		t.Fatal(err)
	}
	if err := u.Add(ctx, service.User{Name: "root", Role: service.RoleAdmin}, "root-password-1"); err != nil {
		t.Fatal(err)
	}
	f := &fixture{a: a, u: u, raws: map[string][]byte{}}
	var items []indexer.Item
	add := func(acct, mbox string, uv, uid uint32, flags []string, raw []byte) {
		if _, err := a.EnsureMailbox(ctx, acct, mbox, "imap", uv); err != nil {
			t.Fatal(err)
		}
		items = append(items, indexer.Item{Account: acct, Mailbox: mbox, UIDValidity: uv, UID: uid, Flags: flags,
			InternalDate: time.Date(2023, 1, 2, 11, 0, int(uid), 0, time.UTC), Raw: raw})
		f.raws[fmt.Sprintf("%s/%s/%d/%d", acct, mbox, uv, uid)] = raw
	}
	// The old epoch first, then the mailbox's current one.
	add("alice", "INBOX", 5, 1, []string{`\Seen`}, msg(1, "old epoch", "invoice from the old days"))
	add("alice", "INBOX", 5, 2, nil, msg(2, "old epoch two", "nothing here"))
	if _, err := a.Ingest(ctx, items); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.OpenEpoch(ctx, "alice", "", "INBOX", 7); err != nil {
		t.Fatal(err)
	}
	items = nil
	for uid := uint32(1); uid <= 5; uid++ {
		body := "plain words"
		if uid%2 == 1 {
			body = "an invoice is attached"
		}
		var flags []string
		if uid <= 2 {
			flags = []string{`\Seen`, "$Work"}
		}
		add("alice", "INBOX", 7, uid*10, flags, msg(int(100+uid), fmt.Sprintf("current %d", uid), body))
	}
	add("alice", "Archive/2024", 3, 1, nil, msg(200, "archived", "quarterly invoice"))
	add("bob", "INBOX", 9, 1, nil, msg(300, "bob's own", "secret invoice of bob"))
	if _, err := a.Ingest(ctx, items); err != nil {
		t.Fatal(err)
	}
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	f.svc = service.New(a, &service.Options{Users: u})
	// RecheckInterval -1: every command checks its user (the hostile
	// tests remove one and expect the very next command to end the
	// session); TestRecheckInterval tests the default.
	f.addr = serveView(t, Options{Archive: f.svc, InsecureAuth: true, PollInterval: 50 * time.Millisecond, RecheckInterval: -1})
	return f
}

func (f *fixture) login(t *testing.T, user, pass string) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(f.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(user, pass).Wait(); err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	return c
}

// audits returns the audit rows of action, as "user detail".
func (f *fixture) audits(t *testing.T, action string) []string {
	t.Helper()
	es, err := f.svc.AuditTrail(context.Background(), service.Caller{Name: "t", Role: service.RoleOperator}, service.AuditFilter{Action: action, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.User+" "+e.Detail)
	}
	return out
}

func listNames(t *testing.T, c *imapclient.Client) map[string][]imap.MailboxAttr {
	t.Helper()
	ls, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]imap.MailboxAttr{}
	for _, l := range ls {
		out[l.Mailbox] = l.Attrs
	}
	return out
}

func TestListScopedAndEpochs(t *testing.T) {
	f := newFixture(t)
	got := listNames(t, f.login(t, "alice", "alice-password-1"))
	want := []string{"alice", "alice/Archive", "alice/Archive/2024", "alice/INBOX", "alice/INBOX;UIDVALIDITY=5"}
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range got {
			if !yield(n) {
				return
			}
		}
	})
	if !slices.Equal(names, want) {
		t.Fatalf("alice lists %v, want %v", names, want)
	}
	for _, parent := range []string{"alice", "alice/Archive"} {
		if !slices.Contains(got[parent], imap.MailboxAttrNoSelect) {
			t.Errorf("%s: attrs %v, want \\Noselect", parent, got[parent])
		}
	}
	if slices.Contains(got["alice/INBOX"], imap.MailboxAttrNoSelect) {
		t.Errorf("alice/INBOX is \\Noselect")
	}
	root := listNames(t, f.login(t, "root", "root-password-1"))
	if _, ok := root["bob/INBOX"]; !ok {
		t.Errorf("the admin does not see bob/INBOX: %v", root)
	}
}

func TestSelectFetchByteExact(t *testing.T) {
	f := newFixture(t)
	c := f.login(t, "alice", "alice-password-1")
	for _, tc := range []struct {
		folder, mailbox string
		uv              uint32
		uids            []uint32
	}{
		{"alice/INBOX", "INBOX", 7, []uint32{10, 20, 30, 40, 50}},
		{"alice/INBOX;UIDVALIDITY=5", "INBOX", 5, []uint32{1, 2}},
		{"alice/Archive/2024", "Archive/2024", 3, []uint32{1}},
	} {
		sel, err := c.Select(tc.folder, nil).Wait()
		if err != nil {
			t.Fatalf("select %s: %v", tc.folder, err)
		}
		if sel.UIDValidity != tc.uv || sel.NumMessages != uint32(len(tc.uids)) || sel.UIDNext != imap.UID(tc.uids[len(tc.uids)-1]+1) {
			t.Errorf("select %s: uidvalidity %d, %d messages, uidnext %d", tc.folder, sel.UIDValidity, sel.NumMessages, sel.UIDNext)
		}
		if len(sel.PermanentFlags) != 0 {
			t.Errorf("select %s: permanent flags %v, want none", tc.folder, sel.PermanentFlags)
		}
		bs := &imap.FetchItemBodySection{Peek: true}
		msgs, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, RFC822Size: true, BodySection: []*imap.FetchItemBodySection{bs}, Envelope: true}).Collect()
		if err != nil {
			t.Fatalf("fetch %s: %v", tc.folder, err)
		}
		if len(msgs) != len(tc.uids) {
			t.Fatalf("fetch %s: %d messages, want %d", tc.folder, len(msgs), len(tc.uids))
		}
		for i, m := range msgs {
			if uint32(m.UID) != tc.uids[i] {
				t.Errorf("fetch %s #%d: UID %d, want %d", tc.folder, i+1, m.UID, tc.uids[i])
			}
			want := f.raws[fmt.Sprintf("alice/%s/%d/%d", tc.mailbox, tc.uv, m.UID)]
			if got := m.FindBodySection(bs); string(got) != string(want) {
				t.Errorf("fetch %s UID %d: body differs from the stored bytes:\n%q\n%q", tc.folder, m.UID, got, want)
			}
			if m.RFC822Size != int64(len(want)) {
				t.Errorf("fetch %s UID %d: RFC822.SIZE %d, want %d", tc.folder, m.UID, m.RFC822Size, len(want))
			}
			if m.Envelope == nil || !strings.HasPrefix(m.Envelope.Subject, "current") && !strings.HasPrefix(m.Envelope.Subject, "old") && m.Envelope.Subject != "archived" {
				t.Errorf("fetch %s UID %d: envelope %+v", tc.folder, m.UID, m.Envelope)
			}
		}
	}
	fetches := f.audits(t, "imap-fetch")
	if len(fetches) != 3 || !strings.Contains(strings.Join(fetches, "\n"), "alice/INBOX;UIDVALIDITY=7 UID 10:50") &&
		!strings.Contains(strings.Join(fetches, "\n"), "alice/INBOX;UIDVALIDITY=7 UID 10,20,30,40,50") {
		t.Errorf("fetch audit rows: %q", fetches)
	}
	if sel := f.audits(t, "imap-select"); len(sel) != 3 {
		t.Errorf("select audit rows: %q", sel)
	}
}

// rawSession is a line-level IMAP client for what imapclient hides
// (response codes of tagged answers).
type rawSession struct {
	t  *testing.T
	c  net.Conn
	r  *bufio.Reader
	no int
}

func dialRaw(t *testing.T, addr string) *rawSession {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s := &rawSession{t: t, c: c, r: bufio.NewReader(c)}
	s.line() // greeting
	return s
}

func (s *rawSession) line() string {
	s.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	l, err := s.r.ReadString('\n')
	if err != nil {
		s.t.Fatalf("read: %v", err)
	}
	return strings.TrimRight(l, "\r\n")
}

// readUntil reads lines up to and including the tagged answer of tag.
func (s *rawSession) readUntil(tag string) []string {
	var lines []string
	for {
		l := s.line()
		lines = append(lines, l)
		if strings.HasPrefix(l, tag+" ") {
			return lines
		}
	}
}

// cmd sends a command and returns its untagged lines and the tagged answer.
func (s *rawSession) cmd(format string, args ...any) (untagged []string, tagged string) {
	s.no++
	tag := fmt.Sprintf("t%d", s.no)
	fmt.Fprintf(s.c, tag+" "+format+"\r\n", args...)
	for {
		l := s.line()
		if strings.HasPrefix(l, tag+" ") {
			return untagged, strings.TrimPrefix(l, tag+" ")
		}
		untagged = append(untagged, l)
	}
}

func TestReadOnly(t *testing.T) {
	f := newFixture(t)
	s := dialRaw(t, f.addr)
	if _, ok := s.cmd(`LOGIN alice alice-password-1`); !strings.HasPrefix(ok, "OK") {
		t.Fatalf("login: %s", ok)
	}
	if _, ok := s.cmd(`SELECT alice/INBOX`); !strings.HasPrefix(ok, "OK [READ-ONLY]") {
		t.Fatalf("SELECT answered %q, want OK [READ-ONLY]", ok)
	}
	for _, c := range []string{
		`STORE 1 +FLAGS (\Deleted)`, `UID STORE 10 FLAGS (\Seen)`, `COPY 1 alice/Archive/2024`, `MOVE 1 alice/Archive/2024`,
		`EXPUNGE`, `UID EXPUNGE 10`, `CREATE alice/New`, `DELETE alice/INBOX`, `RENAME alice/INBOX alice/Other`,
		`APPEND alice/INBOX {5+}` + "\r\nhello",
	} {
		if _, ans := s.cmd("%s", c); !strings.HasPrefix(ans, "NO [NOPERM]") {
			t.Errorf("%s answered %q, want NO [NOPERM]", strings.SplitN(c, "\r\n", 2)[0], ans)
		}
	}
	if _, ans := s.cmd(`SUBSCRIBE alice/INBOX`); !strings.HasPrefix(ans, "NO [CANNOT]") {
		t.Errorf("SUBSCRIBE answered %q", ans)
	}
	// FETCH BODY[] (not PEEK) must not set \Seen: message 3 has no flags.
	s.cmd(`FETCH 3 BODY[]`)
	if un, _ := s.cmd(`FETCH 3 FLAGS`); len(un) != 1 || strings.Contains(un[0], `\Seen`) {
		t.Errorf("after FETCH BODY[]: %q", un)
	}
	// CLOSE removes nothing, and the folder still has its 5 messages.
	if _, ans := s.cmd(`CLOSE`); !strings.HasPrefix(ans, "OK") {
		t.Errorf("CLOSE answered %q", ans)
	}
	if un, _ := s.cmd(`STATUS alice/INBOX (MESSAGES)`); len(un) != 1 || !strings.Contains(un[0], "MESSAGES 5") {
		t.Errorf("STATUS after CLOSE: %q", un)
	}
	// Another account's folder is not there for alice.
	if _, ans := s.cmd(`SELECT bob/INBOX`); !strings.HasPrefix(ans, "NO [NONEXISTENT]") {
		t.Errorf("SELECT bob/INBOX answered %q", ans)
	}
	if _, ans := s.cmd(`STATUS bob/INBOX (MESSAGES)`); !strings.HasPrefix(ans, "NO [NONEXISTENT]") {
		t.Errorf("STATUS bob/INBOX answered %q", ans)
	}
}

func TestSearchMatchesTranslator(t *testing.T) {
	f := newFixture(t)
	c := f.login(t, "alice", "alice-password-1")
	if _, err := c.Select("alice/INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	for _, q := range []struct {
		criteria *imap.SearchCriteria
		text     string // the same for `search --imap`
	}{
		{&imap.SearchCriteria{Body: []string{"invoice"}}, `BODY invoice`},
		{&imap.SearchCriteria{Flag: []imap.Flag{imap.FlagSeen}}, `SEEN`},
		{&imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}, Body: []string{"invoice"}}, `UNSEEN BODY invoice`},
		{&imap.SearchCriteria{Flag: []imap.Flag{"$Work"}}, `KEYWORD $Work`},
		{&imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "current 3"}}}, `SUBJECT "current 3"`},
		{&imap.SearchCriteria{Or: [][2]imap.SearchCriteria{{{Body: []string{"plain"}}, {Header: []imap.SearchCriteriaHeaderField{{Key: "From", Value: "s101"}}}}}}, `OR BODY plain FROM s101`},
		{&imap.SearchCriteria{Not: []imap.SearchCriteria{{Body: []string{"invoice"}}}}, `NOT BODY invoice`},
		{&imap.SearchCriteria{UID: []imap.UIDSet{{{Start: 15, Stop: 45}}}}, `UID 15:45`},
	} {
		data, err := c.UIDSearch(q.criteria, nil).Wait()
		if err != nil {
			t.Fatalf("UID SEARCH %s: %v", q.text, err)
		}
		res, err := f.svc.Search(context.Background(), service.Caller{Name: "alice", Role: service.RoleUser, Accounts: []string{"alice"}},
			service.SearchRequest{Query: q.text, Syntax: service.SyntaxIMAP, Accounts: []string{"alice"}, Mailboxes: []string{"INBOX"}, Limit: 100})
		if err != nil {
			t.Fatalf("search --imap %s: %v", q.text, err)
		}
		var want []imap.UID
		for _, mb := range res.Mailboxes {
			for _, u := range mb.UIDs {
				want = append(want, imap.UID(u))
			}
		}
		if got := data.AllUIDs(); !slices.Equal(got, want) {
			t.Errorf("UID SEARCH %s: %v, search --imap: %v", q.text, got, want)
		}
		if q.text == "BODY invoice" && !slices.Equal(want, []imap.UID{10, 30, 50}) {
			t.Errorf("BODY invoice: %v, want 10 30 50 (the fixture's)", want)
		}
	}
	// Sequence numbers are the session's: message 2 is UID 20.
	data, err := c.Search(&imap.SearchCriteria{SeqNum: []imap.SeqSet{imap.SeqSetNum(2, 4)}}, nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if got := data.AllSeqNums(); !slices.Equal(got, []uint32{2, 4}) {
		t.Errorf("SEARCH 2,4: %v", got)
	}
	var viewRows int
	for _, r := range f.audits(t, "search") {
		if strings.HasPrefix(r, "alice imap alice/INBOX;UIDVALIDITY=7: ") {
			viewRows++
		}
	}
	if rows := strings.Join(f.audits(t, "search"), "\n"); !strings.Contains(rows, `alice imap alice/INBOX;UIDVALIDITY=7: SUBJECT "current 3"`) {
		t.Errorf("the audit rows do not show the criteria readably:\n%s", rows)
	}
	if viewRows != 9 {
		t.Errorf("%d search audit rows of the view, want 9", viewRows)
	}
}

func TestLoginAuditedAndLocked(t *testing.T) {
	f := newFixture(t)
	for i := 0; i < 5; i++ {
		c, err := imapclient.DialInsecure(f.addr, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Login("alice", "wrong").Wait(); err == nil {
			t.Fatal("a wrong password logged in")
		}
		c.Close()
	}
	// Locked now, even with the right password, from this address.
	s := dialRaw(t, f.addr)
	if _, ans := s.cmd(`LOGIN alice alice-password-1`); !strings.HasPrefix(ans, "NO [UNAVAILABLE]") {
		t.Errorf("login after 5 failures answered %q, want NO [UNAVAILABLE]", ans)
	}
	if n := len(f.audits(t, "login-failed")); n != 5 {
		t.Errorf("%d login-failed rows, want 5", n)
	}
	if n := len(f.audits(t, "login-refused")); n != 1 {
		t.Errorf("%d login-refused rows, want 1", n)
	}
	// An API token works as the password of its own user only.
	tok, _, err := f.u.NewToken(context.Background(), "root", 0)
	if err != nil {
		t.Fatal(err)
	}
	f.login(t, "root", tok)
	c, err := imapclient.DialInsecure(f.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("bob", tok).Wait(); err == nil {
		t.Error("root's token logged in as bob")
	}
}

func TestIdleAnnouncesNewMail(t *testing.T) {
	f := newFixture(t)
	exists := make(chan uint32, 8)
	c, err := imapclient.DialInsecure(f.addr, &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				exists <- *d.NumMessages
			}
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("alice", "alice-password-1").Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("alice/INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}
	raw := msg(999, "new while idle", "fresh")
	if _, err := f.a.Ingest(context.Background(), []indexer.Item{{Account: "alice", Mailbox: "INBOX", UIDValidity: 7, UID: 60, Raw: raw}}); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-exists:
		if n != 6 {
			t.Errorf("EXISTS %d, want 6", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no EXISTS within 5 s of the new message")
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Fetch(imap.UIDSetNum(60), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil || len(msgs) != 1 || string(msgs[0].FindBodySection(&imap.FetchItemBodySection{Peek: true})) != string(raw) {
		t.Fatalf("fetch of the new message: %v, %d", err, len(msgs))
	}
}

// TestRecheckInterval: with the default RecheckInterval (1 s) a session
// whose user is removed is ended by its first command that reads after at
// most about a second.
func TestRecheckInterval(t *testing.T) {
	f := newFixture(t)
	s := dialRaw(t, serveView(t, Options{Archive: f.svc, InsecureAuth: true}))
	if _, ok := s.cmd(`LOGIN alice alice-password-1`); !strings.HasPrefix(ok, "OK") {
		t.Fatalf("login: %s", ok)
	}
	s.cmd(`SELECT alice/INBOX`)
	if err := f.u.Remove(context.Background(), "alice"); err != nil {
		t.Fatal(err)
	}
	removed := time.Now()
	for i := 0; ; i++ {
		// Sent by hand: after the BYE the server closes the connection.
		fmt.Fprintf(s.c, "r%d FETCH 1 BODY.PEEK[]\r\n", i)
		ended := false
		for {
			s.c.SetReadDeadline(time.Now().Add(5 * time.Second))
			l, err := s.r.ReadString('\n')
			if err != nil || strings.HasPrefix(l, "* BYE") {
				ended = true
				break
			}
			if strings.HasPrefix(l, fmt.Sprintf("r%d ", i)) {
				ended = !strings.HasPrefix(l, fmt.Sprintf("r%d OK", i))
				break
			}
		}
		if ended {
			break
		}
		if time.Since(removed) > 3*time.Second {
			t.Fatal("a removed user still reads 3 s after the removal")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if d := time.Since(removed); d > 2*time.Second {
		t.Errorf("the session ended %v after the removal, want within about a second", d)
	}
}

// TestInvalidModifiedUTF7Names: a mailbox argument that is not valid
// modified UTF-7 (RFC 3501 section 5.1.3) names no folder. go-imap answered
// such a name NO [SERVERBUG] (imaptest's "atoms" test); a LIST pattern now
// matches nothing, as in Dovecot, and SELECT, EXAMINE and STATUS answer NO
// [NONEXISTENT]. A valid name with "&-" still works.
func TestInvalidModifiedUTF7Names(t *testing.T) {
	f := newFixture(t)
	s := dialRaw(t, f.addr)
	if _, tagged := s.cmd("LOGIN alice alice-password-1"); !strings.HasPrefix(tagged, "OK") {
		t.Fatalf("login: %s", tagged)
	}
	for _, pattern := range []string{`&`, `"a&Jjo"`, `"&'"`, `"alice/&*"`, `"&Jjo!"`} {
		untagged, tagged := s.cmd("LIST \"\" %s", pattern)
		if !strings.HasPrefix(tagged, "OK") || len(untagged) != 0 {
			t.Errorf("LIST \"\" %s: %q %q, want OK and no folder", pattern, untagged, tagged)
		}
	}
	for _, cmd := range []string{`SELECT "&'"`, `EXAMINE &`, `STATUS "&" (MESSAGES)`, `SELECT "alice/&Jjo"`} {
		if _, tagged := s.cmd("%s", cmd); !strings.HasPrefix(tagged, "NO [NONEXISTENT]") {
			t.Errorf("%s: %q, want NO [NONEXISTENT]", cmd, tagged)
		}
	}
	if _, tagged := s.cmd(`CREATE "&'"`); !strings.HasPrefix(tagged, "NO [CANNOT]") {
		t.Errorf("CREATE: %q, want NO [CANNOT]", tagged)
	}
	// Valid modified UTF-7 with "&": "&-" is "&". No folder has it, and
	// the answers are the ordinary ones.
	if untagged, tagged := s.cmd(`LIST "" "alice/*"`); !strings.HasPrefix(tagged, "OK") || len(untagged) == 0 {
		t.Errorf(`LIST "" "alice/*": %q %q`, untagged, tagged)
	}
	if _, tagged := s.cmd(`SELECT "alice/AT&-T"`); !strings.HasPrefix(tagged, "NO [NONEXISTENT] no such folder") {
		t.Errorf(`SELECT "alice/AT&-T": %q`, tagged)
	}
	// Bytes that are not UTF-8 are not modified UTF-7 either.
	for _, cmd := range []string{"SELECT \"\xff\"", "STATUS \"a\xc9\" (MESSAGES)"} {
		if _, tagged := s.cmd("%s", cmd); !strings.HasPrefix(tagged, "NO [NONEXISTENT]") {
			t.Errorf("%q: %q, want NO [NONEXISTENT]", cmd, tagged)
		}
	}
	// A reference that does not decode matches nothing either, as Dovecot
	// answers it, for LIST and LSUB alike.
	for _, cmd := range []string{`LIST "&" "*"`, `LSUB "&" "*"`, "LIST \"\xff\" *", `LIST "alice/&Jjo" "%"`} {
		if untagged, tagged := s.cmd("%s", cmd); !strings.HasPrefix(tagged, "OK") || len(untagged) != 0 {
			t.Errorf("%q: %q %q, want OK and no folder", cmd, untagged, tagged)
		}
	}
	// The same names sent as literals; the command after each must be
	// answered (the literal's CRLF once made the refusal eat the session).
	for _, name := range []string{"&", "\xff", "&Jjo"} {
		for _, lit := range []string{fmt.Sprintf("{%d+}\r\n%s", len(name), name), fmt.Sprintf("{%d}\r\n", len(name))} {
			fmt.Fprintf(s.c, "L1 SELECT %s", lit)
			if !strings.Contains(lit, "+") {
				if l := s.line(); !strings.HasPrefix(l, "+") {
					t.Fatalf("SELECT %q: %q, want a continuation", lit, l)
				}
				s.c.Write([]byte(name))
			}
			fmt.Fprintf(s.c, "\r\nL2 NOOP\r\n")
			got := s.readUntil("L2")
			if len(got) != 2 || !strings.HasPrefix(got[0], "L1 NO [NONEXISTENT]") || !strings.HasPrefix(got[1], "L2 OK") {
				t.Errorf("SELECT %q then NOOP: %q", lit, got)
			}
		}
	}
	// A command refused before its non-synchronizing literal: the literal
	// and the rest of the command are skipped, not run as commands.
	fmt.Fprintf(s.c, "A1 APPEND \"&\" {9+}\r\nX1 NOOP\r\n\r\nA2 NOOP\r\n")
	if got := s.readUntil("A2"); len(got) != 2 || !strings.HasPrefix(got[0], "A1 NO") || !strings.HasPrefix(got[1], "A2 OK") {
		t.Errorf("APPEND with a refused name and a LITERAL+ literal holding a command: %q", got)
	}
	// The session is still usable.
	if _, tagged := s.cmd("SELECT alice/INBOX"); !strings.HasPrefix(tagged, "OK") {
		t.Errorf("SELECT alice/INBOX: %q", tagged)
	}
}
