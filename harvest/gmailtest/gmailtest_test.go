package gmailtest

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
)

// What go-imap can parse is checked through go-imap's client; the X-GM
// items, which it cannot, over raw text with a parser of the test's own.

func dial(t *testing.T, s *Server, opts *imapclient.Options) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(s.Addr(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(User, Password).Wait(); err != nil {
		t.Fatalf("login: %v", err)
	}
	return c
}

func msg(i int, extra string) []byte {
	return fmt.Appendf(nil, "Message-ID: <m%d@test>\r\nSubject: message %d\r\n%s\r\nbody %d\r\n", i, i, extra, i)
}

func TestCapabilityAndLogin(t *testing.T) {
	s := Start(t)
	c, err := imapclient.DialInsecure(s.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	caps := c.Caps()
	for _, want := range []imap.Cap{imap.CapIMAP4rev1, imap.CapIdle, imap.CapID, imap.CapUnselect, imap.CapSpecialUse, imap.CapSASLIR, "X-GM-EXT-1", imap.AuthCap(sasl.Plain)} {
		if !caps.Has(want) {
			t.Errorf("capabilities before login lack %s: %v", want, caps)
		}
	}
	for _, not := range []imap.Cap{imap.CapCondStore, imap.CapQResync, imap.CapESearch, imap.CapUIDPlus, imap.CapMove, imap.CapIMAP4rev2} {
		if caps.Has(not) {
			t.Errorf("capabilities advertise %s, which is not implemented", not)
		}
	}
	if err := c.Login(User, "wrong").Wait(); err == nil {
		t.Fatal("login with a wrong password succeeded")
	}
	if err := c.Login(strings.ToUpper(User), Password).Wait(); err != nil {
		t.Fatalf("login: %v", err)
	}
	if caps := c.Caps(); caps.Has(imap.AuthCap(sasl.Plain)) || !caps.Has("X-GM-EXT-1") {
		t.Errorf("capabilities after login = %v, want X-GM-EXT-1 and no AUTH=", caps)
	}

	// AUTHENTICATE PLAIN, with SASL-IR (go-imap) and without (raw).
	c2, err := imapclient.DialInsecure(s.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := c2.Authenticate(sasl.NewPlainClient("", User, "wrong")); err == nil {
		t.Error("AUTHENTICATE PLAIN with a wrong password succeeded")
	}
	if err := c2.Authenticate(sasl.NewPlainClient("", User, Password)); err != nil {
		t.Fatalf("AUTHENTICATE PLAIN: %v", err)
	}
	r := rawDial(t, s)
	r.send("a1 AUTHENTICATE PLAIN")
	if line := r.line(); line != "+ " {
		t.Fatalf("AUTHENTICATE PLAIN without initial response: got %q, want \"+ \"", line)
	}
	r.send(base64.StdEncoding.EncodeToString([]byte("\x00" + User + "\x00" + Password)))
	if _, st := r.until("a1"); !strings.HasPrefix(st, "a1 OK") {
		t.Fatalf("AUTHENTICATE PLAIN: %s", st)
	}
}

func TestListSpecialUse(t *testing.T) {
	s := Start(t)
	// The RFC 3501 section 5.1.3 example, in UTF-8.
	const cjk = "~peter/mail/台北/日本語"
	s.Add(msg(1, ""), nil, "foo", "a/b", "Muy Importante", cjk)
	c := dial(t, s, nil)
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]imap.MailboxAttr{}
	var names []string
	for _, l := range list {
		if l.Delim != '/' {
			t.Errorf("LIST %q: delimiter %q, want /", l.Mailbox, l.Delim)
		}
		attrs := slices.Clone(l.Attrs)
		slices.Sort(attrs)
		got[l.Mailbox] = attrs
		names = append(names, l.Mailbox)
	}
	no, has := imap.MailboxAttrHasNoChildren, imap.MailboxAttrHasChildren
	want := map[string][]imap.MailboxAttr{
		"INBOX":             {no},
		"[Gmail]":           {has, imap.MailboxAttrNoSelect},
		"[Gmail]/All Mail":  {imap.MailboxAttrAll, no},
		"[Gmail]/Drafts":    {imap.MailboxAttrDrafts, no},
		"[Gmail]/Important": {no, imap.MailboxAttrImportant},
		"[Gmail]/Sent Mail": {no, imap.MailboxAttrSent},
		"[Gmail]/Spam":      {no, imap.MailboxAttrJunk},
		"[Gmail]/Starred":   {imap.MailboxAttrFlagged, no},
		"[Gmail]/Trash":     {no, imap.MailboxAttrTrash},
		"foo":               {no},
		"a":                 {has},
		"a/b":               {no},
		"Muy Importante":    {no},
		"~peter":            {has},
		"~peter/mail":       {has},
		"~peter/mail/台北":    {has},
		cjk:                 {no},
	}
	for name, w := range want {
		slices.Sort(w)
		if g, ok := got[name]; !ok || !slices.Equal(g, w) {
			t.Errorf("LIST %q: attributes %v, want %v", name, g, w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("LIST * = %v, want the %d of %v", names, len(want), want)
	}
	if names[0] != "INBOX" {
		t.Errorf("LIST * starts with %q, want INBOX", names[0])
	}
	if mb := s.Mailboxes(); !slices.Equal(mb, slices.DeleteFunc(slices.Clone(names), func(n string) bool { return n == "[Gmail]" })) {
		t.Errorf("Mailboxes() = %v, LIST = %v", mb, names)
	}

	for _, tc := range []struct {
		ref, pat string
		want     []string
	}{
		{"", "%", []string{"INBOX", "Muy Importante", "[Gmail]", "a", "foo", "~peter"}},
		{"", "[Gmail]/%", []string{"[Gmail]/All Mail", "[Gmail]/Drafts", "[Gmail]/Important", "[Gmail]/Sent Mail", "[Gmail]/Spam", "[Gmail]/Starred", "[Gmail]/Trash"}},
		{"~peter/", "%/%", []string{"~peter/mail/台北"}},
		{"", "inbox", []string{"INBOX"}},
		{"", "a*", []string{"a", "a/b"}},
		{"", "nothing", nil},
	} {
		l, err := c.List(tc.ref, tc.pat, nil).Collect()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, d := range l {
			got = append(got, d.Mailbox)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("LIST %q %q = %q, want %q", tc.ref, tc.pat, got, tc.want)
		}
	}

	// The wire form of a non-ASCII name is RFC 3501's example.
	r := rawDial(t, s)
	r.login()
	lines, _ := r.exec(`LIST "" "~peter/mail/*/*"`)
	if len(lines) != 1 || !strings.HasSuffix(lines[0], `"~peter/mail/&U,BTFw-/&ZeVnLIqe-"`) {
		t.Errorf("LIST of %q = %q, want the name as &U,BTFw-/&ZeVnLIqe-", cjk, lines)
	}
	lines, _ = r.exec(`LIST "" ""`)
	if len(lines) != 1 || lines[0] != `* LIST (\Noselect) "/" ""` {
		t.Errorf(`LIST "" "" = %q`, lines)
	}
}

// model is what the test expects, kept without the server's code: per
// folder, the messages (indexes into raws) in the order they entered.
type model struct {
	raws    [][]byte
	ids     []uint64
	flags   []map[string]bool
	labels  []map[string]bool // folder names
	folders map[string][]int
}

func (m *model) member(folder string, i int) bool {
	if folder == AllMail {
		return !m.labels[i][Spam] && !m.labels[i][Trash]
	}
	return m.labels[i][folder]
}

// place moves message i into and out of folders as its labels say.
func (m *model) place(i int) {
	for _, f := range append([]string{AllMail}, folderNames...) {
		at := slices.Index(m.folders[f], i)
		switch want := m.member(f, i); {
		case want && at < 0:
			m.folders[f] = append(m.folders[f], i)
		case !want && at >= 0:
			m.folders[f] = slices.Delete(m.folders[f], at, at+1)
		}
	}
}

// The labels the generated test uses, as Add spells them, and their
// folders.
var (
	labelNames  = []string{`\Inbox`, `\Sent`, `\Important`, `\Starred`, `\Spam`, `\Trash`, `\Draft`, "work", "work/2024", "Muy Importante", "Привет"}
	folderNames = []string{Inbox, SentMail, Important, Starred, Spam, Trash, Drafts, "work", "work/2024", "Muy Importante", "Привет"}
	// wireLabels is how X-GM-LABELS writes each (after the test's own
	// tokenizer has removed the quotes).
	wireLabels = []string{`\Inbox`, `\Sent`, `\Important`, `\Starred`, `\Spam`, `\Trash`, `\Draft`, "work", "work/2024", "Muy Importante", "&BB8EQAQ4BDIENQRC-"}
)

// TestGeneratedFolders adds messages with random labels and flags, moves
// some labels, and compares every folder with a model: over go-imap STATUS,
// EXAMINE, UID FETCH with bodies byte-equal; over raw text X-GM-MSGID and
// X-GM-LABELS in All Mail.
func TestGeneratedFolders(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { testGenerated(t, seed) })
	}
}

func testGenerated(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 17))
	s := Start(t)
	m := &model{folders: map[string][]int{}}
	for i := range 40 {
		body := make([]byte, rng.IntN(300))
		for j := range body {
			body[j] = byte(rng.IntN(256))
		}
		raw := append(msg(i, ""), body...)
		var labels []string
		lm := map[string]bool{}
		for k, l := range labelNames {
			if rng.IntN(4) == 0 {
				labels = append(labels, l)
				lm[folderNames[k]] = true
			}
		}
		var flags []string
		fm := map[string]bool{}
		for _, f := range []string{`\Seen`, `\Answered`, `\Flagged`, "$Label1"} {
			if rng.IntN(3) == 0 {
				flags = append(flags, f)
				fm[f] = true
			}
		}
		if lm[Starred] || fm[`\Flagged`] { // one thing in Gmail
			lm[Starred], fm[`\Flagged`] = true, true
		}
		id := s.Add(raw, flags, labels...)
		if len(m.ids) > 0 && id <= m.ids[len(m.ids)-1] {
			t.Fatalf("X-GM-MSGID %d after %d: want ascending", id, m.ids[len(m.ids)-1])
		}
		m.raws, m.ids, m.flags, m.labels = append(m.raws, raw), append(m.ids, id), append(m.flags, fm), append(m.labels, lm)
		m.place(i)
		// Now and then move a label of an earlier message.
		if i > 0 && rng.IntN(3) == 0 {
			j := rng.IntN(i)
			k := rng.IntN(len(labelNames))
			if k == 3 { // \Starred moves \Flagged too; keep the model simple
				k = 0
			}
			if m.labels[j][folderNames[k]] {
				s.SetLabels(m.ids[j], nil, []string{labelNames[k]})
				delete(m.labels[j], folderNames[k])
			} else {
				s.SetLabels(m.ids[j], []string{labelNames[k]}, nil)
				m.labels[j][folderNames[k]] = true
			}
			m.place(j)
		}
	}

	c := dial(t, s, nil)
	for _, f := range append([]string{AllMail}, folderNames...) {
		want := m.folders[f]
		st, err := c.Status(f, &imap.StatusOptions{NumMessages: true, UIDNext: true, UIDValidity: true, NumUnseen: true}).Wait()
		if err != nil {
			t.Fatalf("STATUS %q: %v", f, err)
		}
		unseen := 0
		for _, i := range want {
			if !m.flags[i][`\Seen`] {
				unseen++
			}
		}
		if *st.NumMessages != uint32(len(want)) || *st.NumUnseen != uint32(unseen) || st.UIDValidity != s.UIDValidity(f) {
			t.Errorf("STATUS %q = MESSAGES %d UNSEEN %d UIDVALIDITY %d, want %d %d %d", f, *st.NumMessages, *st.NumUnseen, st.UIDValidity, len(want), unseen, s.UIDValidity(f))
		}
		sel, err := c.Select(f, &imap.SelectOptions{ReadOnly: true}).Wait()
		if err != nil {
			t.Fatalf("EXAMINE %q: %v", f, err)
		}
		if sel.NumMessages != uint32(len(want)) || sel.UIDValidity != st.UIDValidity || sel.UIDNext != st.UIDNext {
			t.Errorf("EXAMINE %q = %d messages, UIDVALIDITY %d, UIDNEXT %d; STATUS said %d, %d, %d", f, sel.NumMessages, sel.UIDValidity, sel.UIDNext, len(want), st.UIDValidity, st.UIDNext)
		}
		if len(want) == 0 {
			continue
		}
		got, err := c.Fetch(imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}, &imap.FetchOptions{
			UID: true, Flags: true, RFC822Size: true, InternalDate: true,
			BodySection: []*imap.FetchItemBodySection{{Peek: true}},
		}).Collect()
		if err != nil {
			t.Fatalf("UID FETCH in %q: %v", f, err)
		}
		if len(got) != len(want) {
			t.Fatalf("UID FETCH 1:* in %q: %d messages, want %d", f, len(got), len(want))
		}
		var last imap.UID
		for k, g := range got {
			i := want[k]
			if g.UID <= last || g.UID >= st.UIDNext || uint32(g.UID) != s.UID(f, m.ids[i]) {
				t.Errorf("%q: message %d has UID %d after %d, UIDNEXT %d, Server.UID %d", f, i, g.UID, last, st.UIDNext, s.UID(f, m.ids[i]))
			}
			last = g.UID
			if body := g.FindBodySection(&imap.FetchItemBodySection{}); !bytes.Equal(body, m.raws[i]) {
				t.Errorf("%q UID %d: BODY[] differs from what was added (%d bytes, want %d)", f, g.UID, len(body), len(m.raws[i]))
			}
			if g.RFC822Size != int64(len(m.raws[i])) || g.InternalDate.IsZero() {
				t.Errorf("%q UID %d: RFC822.SIZE %d, INTERNALDATE %v; want %d and a date", f, g.UID, g.RFC822Size, g.InternalDate, len(m.raws[i]))
			}
			var gf []string
			for _, fl := range g.Flags {
				gf = append(gf, string(fl))
			}
			var wf []string
			for fl := range m.flags[i] {
				wf = append(wf, fl)
			}
			slices.Sort(gf)
			slices.Sort(wf)
			if !slices.Equal(gf, wf) {
				t.Errorf("%q UID %d: FLAGS %v, want %v", f, g.UID, gf, wf)
			}
		}
	}

	// X-GM-MSGID and X-GM-LABELS of every message, from All Mail.
	r := rawDial(t, s)
	r.login()
	r.ok(`EXAMINE "[Gmail]/All Mail"`)
	lines, _ := r.exec("UID FETCH 1:* (X-GM-MSGID X-GM-LABELS)")
	if len(lines) != len(m.folders[AllMail]) {
		t.Fatalf("UID FETCH in All Mail: %d answers, want %d", len(lines), len(m.folders[AllMail]))
	}
	for k, line := range lines {
		i := m.folders[AllMail][k]
		if id := fetchNumber(t, line, "X-GM-MSGID"); id != m.ids[i] {
			t.Errorf("All Mail #%d: X-GM-MSGID %d, want %d", k+1, id, m.ids[i])
		}
		var want []string
		for j, f := range folderNames {
			if m.labels[i][f] {
				want = append(want, wireLabels[j])
			}
		}
		got := gmLabels(t, line)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("All Mail #%d: X-GM-LABELS %q, want %q (%s)", k+1, got, want, line)
		}
	}
}

func TestMsgIDAcrossFolders(t *testing.T) {
	s := Start(t)
	s.Add(msg(0, ""), nil, "foo") // so that the UIDs differ between folders
	first := s.Add(msg(1, ""), nil, `\Inbox`, "foo")
	reply := s.Add(msg(2, "In-Reply-To: <m1@test>\r\n"), nil, `\Inbox`)
	other := s.Add(msg(3, "References: <nobody@test>\r\n"), nil, `\Inbox`)
	r := rawDial(t, s)
	r.login()
	type seen struct{ uid, msgid, thrid uint64 }
	look := func(folder string) map[uint64]seen {
		r.ok("EXAMINE " + quote(folder))
		lines, _ := r.exec("FETCH 1:* (UID X-GM-MSGID X-GM-THRID)")
		out := map[uint64]seen{}
		for _, l := range lines {
			v := seen{fetchNumber(t, l, "UID"), fetchNumber(t, l, "X-GM-MSGID"), fetchNumber(t, l, "X-GM-THRID")}
			out[v.msgid] = v
		}
		return out
	}
	inbox, all, foo := look(Inbox), look(AllMail), look("foo")
	if inbox[first].msgid != first || all[first].msgid != first || foo[first].msgid != first {
		t.Fatalf("X-GM-MSGID %d not in INBOX %v, All Mail %v and foo %v", first, inbox, all, foo)
	}
	if inbox[first].uid == all[first].uid {
		t.Errorf("message %d has UID %d in INBOX and in All Mail: the folders should number apart", first, inbox[first].uid)
	}
	if got := all[reply].thrid; got != first {
		t.Errorf("X-GM-THRID of a reply = %d, want the first message's X-GM-MSGID %d", got, first)
	}
	if got := all[other].thrid; got != other {
		t.Errorf("X-GM-THRID of a new thread = %d, want its own X-GM-MSGID %d", got, other)
	}
	for folder, uids := range map[string]map[uint64]seen{Inbox: inbox, AllMail: all} {
		r.ok("EXAMINE " + quote(folder))
		lines, _ := r.exec(fmt.Sprintf("UID SEARCH X-GM-MSGID %d", first))
		if want := fmt.Sprintf("* SEARCH %d", uids[first].uid); len(lines) != 1 || lines[0] != want {
			t.Errorf("%s: UID SEARCH X-GM-MSGID %d = %q, want %q", folder, first, lines, want)
		}
		lines, _ = r.exec(fmt.Sprintf("UID SEARCH X-GM-THRID %d", first))
		if want := fmt.Sprintf("* SEARCH %d %d", uids[first].uid, uids[reply].uid); len(lines) != 1 || lines[0] != want {
			t.Errorf("%s: UID SEARCH X-GM-THRID %d = %q, want %q", folder, first, lines, want)
		}
	}
}

func TestLabelsList(t *testing.T) {
	for _, omit := range []bool{false, true} {
		t.Run(fmt.Sprintf("OmitSelectedLabel=%v", omit), func(t *testing.T) {
			s := StartWith(t, &Options{OmitSelectedLabel: omit})
			// Google's example: two system labels, a user label named
			// Important, one with a space.
			s.Add(msg(1, ""), nil, `\Inbox`, `\Sent`, "Important", "Muy Importante")
			s.Add(msg(2, ""), nil)
			r := rawDial(t, s)
			r.login()
			for _, tc := range []struct {
				folder string
				want   []string // by the test's tokenizer: quotes gone
			}{
				{Inbox, []string{`\Inbox`, `\Sent`, "Important", "Muy Importante"}},
				{"Muy Importante", []string{`\Inbox`, `\Sent`, "Important", "Muy Importante"}},
				{AllMail, []string{`\Inbox`, `\Sent`, "Important", "Muy Importante"}},
			} {
				want := tc.want
				if omit && tc.folder != AllMail {
					label := tc.folder
					if label == Inbox {
						label = `\Inbox`
					}
					want = slices.DeleteFunc(slices.Clone(want), func(l string) bool { return l == label })
				}
				r.ok("EXAMINE " + quote(tc.folder))
				lines, _ := r.exec("FETCH 1 (X-GM-LABELS)")
				if len(lines) != 1 {
					t.Fatalf("%s: FETCH 1 = %q", tc.folder, lines)
				}
				if got := gmLabels(t, lines[0]); !slices.Equal(got, want) {
					t.Errorf("%s: X-GM-LABELS = %q, want %q", tc.folder, got, want)
				}
				if !strings.Contains(lines[0], ` "Muy Importante"`) == (!omit || tc.folder != "Muy Importante") {
					t.Errorf("%s: %q: want the label with a space quoted", tc.folder, lines[0])
				}
			}
			r.ok(`EXAMINE "[Gmail]/All Mail"`)
			lines, _ := r.exec("FETCH 2 (X-GM-LABELS)")
			if len(lines) != 1 || lines[0] != "* 2 FETCH (X-GM-LABELS ())" {
				t.Errorf("an archived message: %q, want * 2 FETCH (X-GM-LABELS ())", lines)
			}
		})
	}
}

func TestStoreLabels(t *testing.T) {
	s := Start(t)
	id := s.Add(msg(1, ""), nil, `\Inbox`)
	s.Add(msg(2, ""), nil, `\Inbox`)
	r := rawDial(t, s)
	r.login()
	r.ok("SELECT INBOX")
	lines := r.ok(`UID STORE 1 +X-GM-LABELS (new "Muy Importante")`)
	if len(lines) != 1 || gmLabelsString(t, lines[0]) != `Muy Importante \Inbox new` || fetchNumber(t, lines[0], "UID") != 1 {
		t.Errorf("UID STORE +X-GM-LABELS answered %q", lines)
	}
	lines = r.ok(`LIST "" "new"`)
	if len(lines) != 1 || !strings.HasSuffix(lines[0], `"/" "new"`) {
		t.Errorf(`LIST "" "new" = %q, want the new label's folder`, lines)
	}
	lines = r.ok(`STATUS "Muy Importante" (MESSAGES UIDNEXT)`)
	if len(lines) != 1 || lines[0] != `* STATUS "Muy Importante" (MESSAGES 1 UIDNEXT 2)` {
		t.Errorf("STATUS of the quoted label = %q", lines)
	}
	if got := s.UID("new", id); got != 1 {
		t.Errorf("UID in new = %d, want 1", got)
	}

	// Off and on again: a new UID.
	r.ok("UID STORE 1 -X-GM-LABELS.SILENT (new)")
	r.ok("UID STORE 1 +X-GM-LABELS.SILENT (new)")
	r.ok(`EXAMINE "new"`)
	lines = r.ok("FETCH 1:* (UID X-GM-MSGID)")
	if len(lines) != 1 || fetchNumber(t, lines[0], "UID") != 2 || fetchNumber(t, lines[0], "X-GM-MSGID") != id {
		t.Errorf("new after the label went and came back: %q, want UID 2 X-GM-MSGID %d", lines, id)
	}

	// Taking the selected folder's label: EXPUNGE at once after a UID
	// command, only at NOOP after a plain STORE.
	r.ok("SELECT INBOX")
	lines = r.ok(`UID STORE 1 -X-GM-LABELS (\Inbox)`)
	if !slices.Contains(lines, "* 1 EXPUNGE") {
		t.Errorf("UID STORE -X-GM-LABELS (\\Inbox) in INBOX: %q, want * 1 EXPUNGE", lines)
	}
	lines = r.ok(`STORE 1 -X-GM-LABELS.SILENT (\Inbox)`)
	if len(lines) != 0 {
		t.Errorf("STORE -X-GM-LABELS.SILENT: %q, want nothing (no EXPUNGE during STORE)", lines)
	}
	lines = r.ok("NOOP")
	if !slices.Equal(lines, []string{"* 1 EXPUNGE"}) {
		t.Errorf("NOOP after the label went: %q, want * 1 EXPUNGE", lines)
	}

	// \Starred is \Flagged.
	s.Add(msg(3, ""), nil, `\Inbox`)
	r.ok("NOOP")
	lines = r.ok(`STORE 1 +X-GM-LABELS (\Starred)`)
	lines2 := r.ok("FETCH 1 FLAGS")
	if len(lines) == 0 || !strings.Contains(strings.Join(append(lines, lines2...), "\n"), `FLAGS (\Flagged)`) {
		t.Errorf("+X-GM-LABELS (\\Starred): %q then %q, want \\Flagged", lines, lines2)
	}

	// Refusals.
	for cmd, want := range map[string]string{
		`STORE 1 +X-GM-LABELS (\Nonsense)`:        "NO",
		`STORE 1 +X-GM-LABELS ("[Gmail]/Mine")`:   "NO",
		`STORE 1 +X-GM-LABELS (a//b)`:             "NO",
		`STORE 1 +X-GM-LABELS.LOUD (a)`:           "BAD",
		`STORE 9 +X-GM-LABELS (a)`:                "BAD",
		`STORE 1 +FLAGS (\Recent)`:                "BAD",
		`UID STORE 1 +X-GM-LABELS ("&Jjo-" "&-")`: "OK",
	} {
		if _, st := r.exec(cmd); !strings.HasPrefix(st[strings.IndexByte(st, ' ')+1:], want) {
			t.Errorf("%s: %s, want %s", cmd, st, want)
		}
	}
	r.ok("EXAMINE INBOX")
	if _, st := r.exec("STORE 1 +FLAGS (\\Seen)"); !strings.Contains(st, " NO ") {
		t.Errorf("STORE in EXAMINE: %s, want NO", st)
	}
}

func TestSpamAndTrashNotInAllMail(t *testing.T) {
	s := Start(t)
	spam := s.Add(msg(1, ""), nil, `\Spam`)
	trash := s.Add(msg(2, ""), nil, `\Trash`, "foo")
	c := dial(t, s, nil)
	count := func(f string) uint32 {
		st, err := c.Status(f, &imap.StatusOptions{NumMessages: true}).Wait()
		if err != nil {
			t.Fatalf("STATUS %q: %v", f, err)
		}
		return *st.NumMessages
	}
	if a, sp, tr, foo := count(AllMail), count(Spam), count(Trash), count("foo"); a != 0 || sp != 1 || tr != 1 || foo != 1 {
		t.Errorf("All Mail %d, Spam %d, Trash %d, foo %d; want 0 1 1 1", a, sp, tr, foo)
	}
	r := rawDial(t, s)
	r.login()
	r.ok(`EXAMINE "[Gmail]/All Mail"`)
	if lines := r.ok(fmt.Sprintf("UID SEARCH X-GM-MSGID %d", spam)); !slices.Equal(lines, []string{"* SEARCH"}) {
		t.Errorf("All Mail: UID SEARCH for the spam message = %q, want none", lines)
	}
	s.SetLabels(spam, nil, []string{`\Spam`})
	s.SetLabels(trash, []string{`\Inbox`}, []string{`\Trash`})
	if a, sp, tr := count(AllMail), count(Spam), count(Trash); a != 2 || sp != 0 || tr != 0 {
		t.Errorf("after leaving Spam and Trash: All Mail %d, Spam %d, Trash %d; want 2 0 0", a, sp, tr)
	}
}

func TestExpungeAsGmail(t *testing.T) {
	s := Start(t)
	a := s.Add(msg(1, ""), []string{`\Deleted`}, `\Inbox`, "foo")
	b := s.Add(msg(2, ""), nil, `\Inbox`)
	r := rawDial(t, s)
	r.login()
	r.ok("SELECT INBOX")
	if lines := r.ok("EXPUNGE"); !slices.Equal(lines, []string{"* 1 EXPUNGE"}) {
		t.Errorf("EXPUNGE in INBOX: %q", lines)
	}
	if s.UID(Inbox, a) != 0 || s.UID("foo", a) == 0 || s.UID(AllMail, a) == 0 {
		t.Errorf("expunged from INBOX: want the message out of INBOX only")
	}
	r.ok(`SELECT "[Gmail]/All Mail"`)
	r.ok(fmt.Sprintf("UID STORE %d +FLAGS.SILENT (\\Deleted)", s.UID(AllMail, b)))
	r.ok("CLOSE")
	if s.UID(AllMail, b) != 0 || s.UID(Trash, b) == 0 || s.UID(Inbox, b) != 0 {
		t.Errorf("expunged from All Mail: want the message in Trash only")
	}
	r.ok(`SELECT "[Gmail]/Trash"`)
	r.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
	r.ok("EXPUNGE")
	if s.UID(Trash, b) != 0 || s.UID(AllMail, b) != 0 {
		t.Errorf("expunged from Trash: want the message gone")
	}
}

func TestBodySeenAndCount(t *testing.T) {
	s := Start(t)
	raw := msg(1, "")
	s.Add(raw, nil, `\Inbox`)
	c := dial(t, s, nil)
	fetch := func(peek bool) []imap.Flag {
		t.Helper()
		got, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{Flags: true, BodySection: []*imap.FetchItemBodySection{{Peek: peek}}}).Collect()
		if err != nil || len(got) != 1 {
			t.Fatalf("FETCH: %v, %d answers", err, len(got))
		}
		if !bytes.Equal(got[0].FindBodySection(&imap.FetchItemBodySection{}), raw) {
			t.Errorf("BODY[] differs from what was added")
		}
		return got[0].Flags
	}
	if _, err := c.Select(Inbox, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		t.Fatal(err)
	}
	if f := fetch(false); len(f) != 0 {
		t.Errorf("BODY[] under EXAMINE set %v", f)
	}
	if _, err := c.Select(Inbox, nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if f := fetch(true); len(f) != 0 {
		t.Errorf("BODY.PEEK[] set %v", f)
	}
	if f := fetch(false); !slices.Equal(f, []imap.Flag{imap.FlagSeen}) {
		t.Errorf("BODY[] under SELECT: flags %v, want \\Seen", f)
	}
	if n := s.BodyFetches(); n != 3 {
		t.Errorf("BodyFetches() = %d, want 3", n)
	}
	if err := c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsDel, Silent: true, Flags: []imap.Flag{imap.FlagSeen}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if f := fetch(true); len(f) != 0 {
		t.Errorf("after STORE -FLAGS \\Seen: flags %v", f)
	}
}

func TestIdle(t *testing.T) {
	s := Start(t)
	exists := make(chan uint32, 16)
	expunged := make(chan uint32, 16)
	flags := make(chan []imap.Flag, 16)
	c := dial(t, s, &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				exists <- *d.NumMessages
			}
		},
		Expunge: func(seq uint32) { expunged <- seq },
		Fetch: func(m *imapclient.FetchMessageData) {
			if buf, err := m.Collect(); err == nil {
				flags <- buf.Flags
			}
		},
	}})
	if _, err := c.Select(Inbox, nil).Wait(); err != nil {
		t.Fatal(err)
	}
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}
	wait := func(what string, ch chan uint32) uint32 {
		t.Helper()
		select {
		case v := <-ch:
			return v
		case <-time.After(5 * time.Second):
			t.Fatalf("IDLE: no %s within 5 s", what)
		}
		return 0
	}
	s.Add(msg(1, ""), nil, "elsewhere") // not in INBOX: nothing to hear
	id := s.Add(msg(2, ""), nil, `\Inbox`)
	if n := wait("EXISTS", exists); n != 1 {
		t.Errorf("IDLE after Add: EXISTS %d, want 1", n)
	}
	s.SetFlags(id, []string{`\Seen`})
	select {
	case f := <-flags:
		if !slices.Equal(f, []imap.Flag{imap.FlagSeen}) {
			t.Errorf("IDLE after SetFlags: FLAGS %v", f)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("IDLE: no FETCH FLAGS within 5 s")
	}
	s.Delete(id)
	if n := wait("EXPUNGE", expunged); n != 1 {
		t.Errorf("IDLE after Delete: EXPUNGE %d, want 1", n)
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatalf("IDLE: %v", err)
	}
	select {
	case n := <-exists:
		t.Errorf("an EXISTS %d too many", n)
	default:
	}
	if err := c.Noop().Wait(); err != nil {
		t.Fatal(err)
	}
}

func TestUIDSearch(t *testing.T) {
	s := Start(t)
	for i := range 5 {
		s.Add(msg(i, ""), nil, `\Inbox`)
	}
	c := dial(t, s, nil)
	if _, err := c.Select(Inbox, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		crit *imap.SearchCriteria
		want []imap.UID
	}{
		{&imap.SearchCriteria{}, []imap.UID{1, 2, 3, 4, 5}},
		{&imap.SearchCriteria{UID: []imap.UIDSet{{imap.UIDRange{Start: 2, Stop: 3}}}}, []imap.UID{2, 3}},
		{&imap.SearchCriteria{UID: []imap.UIDSet{{imap.UIDRange{Start: 4, Stop: 0}}}}, []imap.UID{4, 5}},
		{&imap.SearchCriteria{SeqNum: []imap.SeqSet{{imap.SeqRange{Start: 5, Stop: 5}}}}, []imap.UID{5}},
	} {
		data, err := c.UIDSearch(tc.crit, nil).Wait()
		if err != nil {
			t.Fatalf("UID SEARCH %+v: %v", tc.crit, err)
		}
		if got := data.AllUIDs(); !slices.Equal(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
			t.Errorf("UID SEARCH %+v = %v, want %v", tc.crit, got, tc.want)
		}
	}
	if _, err := c.UIDSearch(&imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "From", Value: "x"}}}, nil).Wait(); err == nil {
		t.Error("UID SEARCH FROM x succeeded; want BAD (not implemented)")
	}
}

func TestBadInput(t *testing.T) {
	s := Start(t)
	r := rawDial(t, s)
	for _, tc := range []struct{ cmd, want string }{
		{"a1 FROBNICATE", "a1 BAD"},
		{"a2 SELECT INBOX", "a2 BAD"}, // not logged in
		{"a3 LOGIN alice wrong", "a3 NO [AUTHENTICATIONFAILED]"},
		{`a4 LOGIN "unterminated`, "a4 BAD"},
		{"a5 CAPABILITY extra", "a5 BAD"},
		{"+ x", "* BAD"},
		{"a6 AUTHENTICATE CRAM-MD5 =", "a6 NO"},
	} {
		r.send(tc.cmd)
		if line := r.lastLine(); !strings.HasPrefix(line, tc.want) {
			t.Errorf("%s: %q, want %s", tc.cmd, line, tc.want)
		}
	}
	// Synchronising and non-synchronising literals in LOGIN.
	r.send(fmt.Sprintf("b1 LOGIN {%d}", len(User)))
	if line := r.line(); line != "+ go ahead" {
		t.Fatalf("after a literal's announcement: %q, want + go ahead", line)
	}
	r.send(fmt.Sprintf("%s {%d+}\r\n%s", User, len(Password), Password))
	if _, st := r.until("b1"); !strings.HasPrefix(st, "b1 OK") {
		t.Fatalf("LOGIN with literals: %s", st)
	}
	for _, tc := range []struct{ cmd, want string }{
		{"c1 FETCH 1 FLAGS", "c1 BAD"}, // nothing selected
		{"c2 SELECT INBOX (CONDSTORE)", "c2 BAD"},
		{"c3 SELECT nowhere", "c3 NO [NONEXISTENT]"},
		{`c4 SELECT "[Gmail]"`, "c4 NO"},
		{"c5 EXAMINE INBOX", "c5 OK [READ-ONLY]"},
		{"c6 FETCH 1 FLAGS", "c6 BAD"}, // empty folder
		{"c7 UID FETCH 1:* FLAGS", "c7 OK"},
		{"c8 UID FETCH 1 ENVELOPE", "c8 BAD"},
		{"c9 UID FETCH 1 BODY[]<0.10>", "c9 BAD"},
		{"d1 UID SEARCH RETURN (ALL) ALL", "d1 BAD"},
		{"d2 UID SEARCH X-GM-RAW foo", "d2 BAD"},
		{"d3 STATUS INBOX (HIGHESTMODSEQ)", "d3 BAD"},
		{`d4 LIST (SPECIAL-USE) "" "*"`, "d4 BAD"},
		{"d5 UID EXPUNGE 1", "d5 BAD"},
		{"d6 EXPUNGE", "d6 NO"},
		{"d7 ID NIL", "d7 OK"},
		{`d8 ID ("name" "test")`, "d8 OK"},
		{"d9 UNSELECT", "d9 OK"},
		{"e1 UNSELECT", "e1 BAD"},
		{"e2 IDLE", "+ idling"},
	} {
		r.send(tc.cmd)
		if line := r.lastLine(); !strings.HasPrefix(line, tc.want) {
			t.Errorf("%s: %q, want %s", tc.cmd, line, tc.want)
		}
	}
	r.send("NOT DONE")
	if line := r.lastLine(); !strings.HasPrefix(line, "e2 BAD") {
		t.Errorf("IDLE ended by something else than DONE: %q, want BAD", line)
	}

	// A line over 64 KiB: BAD, then the connection closes.
	r.send("f1 LOGIN " + strings.Repeat("x", maxLine))
	if line := r.lastLine(); !strings.HasPrefix(line, "f1 BAD") {
		t.Errorf("a line over 64 KiB: %q, want f1 BAD", line)
	}
	r.wantClosed()

	// A literal over the bound: BAD at once, without waiting for its bytes.
	r = rawDial(t, s)
	r.send("g1 LOGIN {1000000}")
	if line := r.lastLine(); !strings.HasPrefix(line, "g1 BAD") {
		t.Errorf("a literal of 1 MB: %q, want g1 BAD", line)
	}
	r.wantClosed()

	// LOGOUT.
	r = rawDial(t, s)
	r.send("h1 LOGOUT")
	if bye, ok := r.line(), r.line(); !strings.HasPrefix(bye, "* BYE") || !strings.HasPrefix(ok, "h1 OK") {
		t.Errorf("LOGOUT: %q %q", bye, ok)
	}
	r.wantClosed()
}

func TestUTF7(t *testing.T) {
	for _, tc := range []struct{ utf8, utf7 string }{
		{"INBOX", "INBOX"},
		{"a&b", "a&-b"},
		{"~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"},
		{"Привет", "&BB8EQAQ4BDIENQRC-"},
		{"😀", "&2D3eAA-"},
		{"\t", "&AAk-"},
	} {
		if got := utf7Encode(tc.utf8); got != tc.utf7 {
			t.Errorf("utf7Encode(%q) = %q, want %q", tc.utf8, got, tc.utf7)
		}
		if got, err := utf7Decode(tc.utf7); err != nil || got != tc.utf8 {
			t.Errorf("utf7Decode(%q) = %q, %v, want %q", tc.utf7, got, err, tc.utf8)
		}
	}
	for _, bad := range []string{"&", "&Jjo", "&AGE-", "&Jjo-&Jjo-", "é", "&2D0-", "&U,BTF2-"} {
		if got, err := utf7Decode(bad); err == nil {
			t.Errorf("utf7Decode(%q) = %q, want an error", bad, got)
		}
	}
}

// FuzzSession sends arbitrary bytes after a login and then closes its
// side: the server must neither panic nor keep the connection open.
func FuzzSession(f *testing.F) {
	for _, seed := range []string{
		"a SELECT INBOX\r\nb FETCH 1:* (UID FLAGS X-GM-LABELS BODY[])\r\n",
		"a EXAMINE \"[Gmail]/All Mail\"\r\nb UID SEARCH X-GM-MSGID 1\r\nc UID SEARCH 1:* UID 2,3\r\n",
		"a SELECT INBOX\r\nb STORE 1 +X-GM-LABELS (\\Inbox {3+}\r\nabc)\r\nc EXPUNGE\r\n",
		"a LIST \"\" {2}\r\n%*\r\n",
		"a SELECT INBOX\r\nb IDLE\r\nDONE\r\nc CLOSE\r\n",
		"a STATUS INBOX (MESSAGES UNSEEN\r\n",
		"a SELECT \"&Jjo\"\r\n",
		"a SELECT INBOX\r\nb UID STORE *:1 FLAGS.SILENT ($x \\Seen)\r\nc FETCH *:1 BODY.PEEK[]\r\n",
	} {
		f.Add([]byte(seed))
	}
	s := Start(f)
	s.Add(msg(1, ""), []string{`\Seen`}, `\Inbox`, "foo")
	s.Add(msg(2, ""), nil, `\Inbox`)
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(c, "z LOGIN %s %s\r\n", User, Password)
		c.Write(in)
		c.(*net.TCPConn).CloseWrite()
		if _, err := io.Copy(io.Discard, c); err != nil {
			t.Fatalf("the server kept the connection after EOF: %v", err)
		}
	})
}

// raw is a line-level client for what go-imap cannot read.
type raw struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
	n  int
}

func rawDial(t *testing.T, s *Server) *raw {
	t.Helper()
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r := &raw{t: t, c: c, br: bufio.NewReader(c)}
	if g := r.line(); !strings.HasPrefix(g, "* OK Gimap ready for requests from 127.0.0.1 ") {
		t.Fatalf("greeting %q", g)
	}
	return r
}

func (r *raw) send(s string) {
	r.t.Helper()
	r.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(r.c, s+"\r\n"); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// line reads one response line; a literal it announces is read and
// appended, with the rest of the response.
func (r *raw) line() string {
	r.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var out strings.Builder
	for {
		l, err := r.br.ReadString('\n')
		if err != nil {
			r.t.Fatalf("read: %v (after %q)", err, out.String()+l)
		}
		l = strings.TrimSuffix(l, "\r\n")
		out.WriteString(l)
		m := regexp.MustCompile(`\{(\d+)\}$`).FindStringSubmatch(l)
		if m == nil {
			return out.String()
		}
		n, _ := strconv.Atoi(m[1])
		b := make([]byte, n)
		if _, err := io.ReadFull(r.br, b); err != nil {
			r.t.Fatalf("read literal: %v", err)
		}
		out.Write(b)
	}
}

// lastLine reads up to a line that is not untagged data and returns it.
func (r *raw) lastLine() string {
	r.t.Helper()
	for {
		l := r.line()
		if !strings.HasPrefix(l, "* ") || strings.HasPrefix(l, "* BAD") {
			return l
		}
	}
}

// cmd sends a command with a new tag and returns the tag.
func (r *raw) cmd(c string) string {
	r.t.Helper()
	r.n++
	tag := fmt.Sprintf("t%d", r.n)
	r.send(tag + " " + c)
	return tag
}

// until reads the untagged lines up to the tagged one of tag.
func (r *raw) until(tag string) (lines []string, status string) {
	r.t.Helper()
	for {
		l := r.line()
		if strings.HasPrefix(l, tag+" ") {
			return lines, l
		}
		lines = append(lines, l)
	}
}

// exec sends a command with a new tag and reads its answer.
func (r *raw) exec(c string) (lines []string, status string) {
	r.t.Helper()
	return r.until(r.cmd(c))
}

// ok runs a command that must succeed and returns its untagged answer.
func (r *raw) ok(c string) []string {
	r.t.Helper()
	lines, st := r.exec(c)
	if !strings.HasPrefix(st[strings.IndexByte(st, ' ')+1:], "OK") {
		r.t.Fatalf("%s: %s", c, st)
	}
	return lines
}

func (r *raw) login() {
	r.t.Helper()
	r.ok(fmt.Sprintf("LOGIN %s %s", User, Password))
}

func (r *raw) wantClosed() {
	r.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	rest, err := io.ReadAll(r.br)
	if err != nil {
		r.t.Fatalf("connection not closed: %v (read %q)", err, rest)
	}
	if len(rest) > 0 && !strings.HasPrefix(string(rest), "* BYE") {
		r.t.Errorf("before the close: %q", rest)
	}
}

var numberRE = map[string]*regexp.Regexp{}

// fetchNumber reads "NAME n" from a FETCH line.
func fetchNumber(t *testing.T, line, name string) uint64 {
	t.Helper()
	re := numberRE[name]
	if re == nil {
		re = regexp.MustCompile(`[( ]` + regexp.QuoteMeta(name) + ` (\d+)[ )]`)
		numberRE[name] = re
	}
	m := re.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("no %s in %q", name, line)
	}
	n, err := strconv.ParseUint(m[1], 10, 64)
	if err != nil {
		t.Fatalf("%s in %q: %v", name, line, err)
	}
	return n
}

// gmLabels tokenizes the X-GM-LABELS list of a FETCH line: atoms and
// flag-like \Names as written, quoted strings unquoted.
func gmLabels(t *testing.T, line string) []string {
	t.Helper()
	i := strings.Index(line, "X-GM-LABELS (")
	if i < 0 {
		t.Fatalf("no X-GM-LABELS in %q", line)
	}
	s := line[i+len("X-GM-LABELS ("):]
	var out []string
	for {
		switch {
		case s == "":
			t.Fatalf("unterminated X-GM-LABELS in %q", line)
		case s[0] == ')':
			return out
		case s[0] == ' ':
			s = s[1:]
		case s[0] == '"':
			var b strings.Builder
			j := 1
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' {
					j++
				}
				b.WriteByte(s[j])
			}
			out = append(out, b.String())
			s = s[j+1:]
		default:
			j := strings.IndexAny(s, " )")
			if j < 0 {
				t.Fatalf("unterminated X-GM-LABELS in %q", line)
			}
			out = append(out, s[:j])
			s = s[j:]
		}
	}
}

// gmLabelsString is gmLabels sorted and joined by spaces.
func gmLabelsString(t *testing.T, line string) string {
	l := gmLabels(t, line)
	sort.Strings(l)
	return strings.Join(l, " ")
}
