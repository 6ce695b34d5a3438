package service

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"mailvault/indexer"
	"mailvault/indexer/catalog"
)

// The operators of issue 13 (in:, is:, filename:, newer_than:/older_than:,
// list:, has:attachment) and the sorts, through the service on a real
// archive on disk (SQLite catalog, Bleve index).

// opsMessage is one message of the operator tests, with where its copies are.
type opsMessage struct {
	name   string // the Subject, which names it in the test
	from   string
	date   time.Time // zero: no Date: header
	extra  string    // more header lines
	body   string
	attach string // file name of an attachment, "" for none
	pad    int    // bytes of padding, to set the size
	copies []opsCopy
}

type opsCopy struct {
	account, mailbox string
	flags            []string
}

func (m opsMessage) raw() []byte {
	var b strings.Builder
	if m.from != "" {
		fmt.Fprintf(&b, "From: %s\r\n", m.from)
	}
	fmt.Fprintf(&b, "To: team@example.org\r\nSubject: %s\r\n", m.name)
	if !m.date.IsZero() {
		fmt.Fprintf(&b, "Date: %s\r\n", m.date.Format(time.RFC1123Z))
	}
	b.WriteString(m.extra)
	body := m.body + "\r\n" + strings.Repeat("x", m.pad) + "\r\n"
	if m.attach == "" {
		b.WriteString("\r\n" + body)
		return []byte(b.String())
	}
	fmt.Fprintf(&b, "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n%s"+
		"--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=%s\r\n\r\n%%PDF-1.4\r\n--b--\r\n", body, m.attach)
	return []byte(b.String())
}

// openOpsArchive ingests msgs and returns the service and the archive.
func openOpsArchive(t *testing.T, msgs []opsMessage) (*Service, *indexer.Archive) {
	t.Helper()
	a, users := newArchive(t)
	ctx := context.Background()
	uids := map[string]uint32{}
	var items []indexer.Item
	for _, m := range msgs {
		for _, c := range m.copies {
			if _, err := a.EnsureMailbox(ctx, c.account, c.mailbox, catalog.SourceImport, 9); err != nil {
				t.Fatal(err)
			}
			k := c.account + "/" + c.mailbox
			uids[k]++
			items = append(items, indexer.Item{Account: c.account, Mailbox: c.mailbox, UIDValidity: 9, UID: uids[k],
				Flags: c.flags, Raw: m.raw()})
		}
	}
	if _, err := a.Ingest(ctx, items); err != nil {
		t.Fatal(err)
	}
	// The attachments' text too: the extractor re-indexes what it reads,
	// and the tests count what is indexed.
	if err := a.WaitExtracts(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	return New(a, &Options{Users: users}), a
}

var (
	opsAdmin = Caller{Name: "root", Role: RoleAdmin, Remote: "test"}
	opsAlice = Caller{Name: "alice", Role: RoleUser, Accounts: []string{"alice"}, Remote: "test"}
	opsBob   = Caller{Name: "bob", Role: RoleUser, Accounts: []string{"bob"}, Remote: "test"}
)

// subjects returns the subjects of every hit of q, sorted.
func subjects(t *testing.T, s *Service, c Caller, req SearchRequest) []string {
	t.Helper()
	req.Limit = MaxLimit
	res, err := s.Search(context.Background(), c, req)
	if err != nil {
		t.Fatalf("%s searching %q: %v", c.Name, req.Query, err)
	}
	out := []string{}
	for _, h := range res.Hits {
		out = append(out, h.Subject)
	}
	if uint64(len(out)) != res.Total {
		t.Errorf("%s searching %q: total %d, %d hits", c.Name, req.Query, res.Total, len(out))
	}
	slices.Sort(out)
	return out
}

func opsCorpus(now time.Time) []opsMessage {
	seen, flagged, answered := `\Seen`, `\Flagged`, `\Answered`
	return []opsMessage{
		// read by alice, unread in bob's copy
		{name: "m-readalice", from: "Zed <zed@example.org>", date: now.Add(-48 * time.Hour), body: "budget",
			extra:  "List-Id: SpamAssassin Talk <spamassassin-talk.lists.sourceforge.net>\r\n",
			copies: []opsCopy{{"alice", "INBOX", []string{seen}}, {"bob", "INBOX", nil}}},
		// flagged and answered by alice, with an attachment
		{name: "m-flagged", from: "yan@example.com", date: now.AddDate(0, 0, -20), body: "budget report", attach: "report-q3.pdf",
			copies: []opsCopy{{"alice", "INBOX", []string{flagged, answered}}}},
		// alice read it in Archive, not in her INBOX
		{name: "m-twocopies", from: "xia@example.net", date: now.AddDate(-2, 0, 0), body: "budget",
			extra:  "List-Id: <razor-users.lists.sourceforge.net>\r\n",
			copies: []opsCopy{{"alice", "Archive", []string{seen}}, {"alice", "INBOX", nil}}},
		// bob's only, read
		{name: "m-bob", from: "wu@example.org", date: now.AddDate(0, -3, 0), body: "budget",
			copies: []opsCopy{{"bob", "INBOX", []string{seen}}}},
		// no Date: header, unread, keyword only
		{name: "m-nodate", from: "vic@example.org", body: "budget",
			copies: []opsCopy{{"alice", "INBOX", []string{"$Work"}}}},
	}
}

func TestOperatorsThroughService(t *testing.T) {
	s, _ := openOpsArchive(t, opsCorpus(time.Now()))
	tests := []struct {
		c    Caller
		q    string
		want string // subjects, sorted, space-separated
	}{
		// in: is mailbox:
		{opsAdmin, "in:Archive", "m-twocopies"},
		{opsAdmin, "in:inbox budget", "m-bob m-flagged m-nodate m-readalice m-twocopies"},
		{opsBob, "in:Archive", ""},
		// is: over every copy in scope: the admin sees both copies of
		// m-readalice, and one of them was read.
		{opsAdmin, "is:read", "m-bob m-readalice m-twocopies"},
		{opsAdmin, "is:unread", "m-flagged m-nodate"},
		{opsAlice, "is:read", "m-readalice m-twocopies"},
		{opsAlice, "is:unread", "m-flagged m-nodate"},
		// bob's copy of m-readalice is unread: for bob it is unread.
		{opsBob, "is:unread", "m-readalice"},
		{opsBob, "is:read", "m-bob"},
		// account: and in: narrow the copies asked about.
		{opsAdmin, "account:bob is:unread", "m-readalice"},
		{opsAdmin, "account:alice is:read", "m-readalice m-twocopies"},
		{opsAlice, "in:INBOX is:unread", "m-flagged m-nodate m-twocopies"},
		{opsAlice, "in:Archive is:read", "m-twocopies"},
		{opsAlice, "in:Archive is:unread", ""},
		{opsAdmin, "in:INBOX account:bob is:read", "m-bob"},
		{opsAdmin, "is:flagged", "m-flagged"},
		{opsAdmin, "is:answered", "m-flagged"},
		{opsAdmin, "is:unflagged is:unanswered budget", "m-bob m-nodate m-readalice m-twocopies"},
		{opsBob, "is:flagged", ""},
		{opsAdmin, "is:read OR is:flagged", "m-bob m-flagged m-readalice m-twocopies"},
		{opsAdmin, "-is:unread", "m-bob m-readalice m-twocopies"},
		// filename: and has:attachment
		{opsAdmin, "filename:report-q3.pdf", "m-flagged"},
		{opsAdmin, "filename:report*", "m-flagged"},
		{opsAdmin, "filename:budget", ""},
		{opsAdmin, "has:attachment", "m-flagged"},
		{opsAdmin, "-has:attachment budget", "m-bob m-nodate m-readalice m-twocopies"},
		// newer_than: and older_than: (no Date: matches neither)
		{opsAdmin, "newer_than:7d", "m-readalice"},
		{opsAdmin, "newer_than:1m", "m-flagged m-readalice"},
		{opsAdmin, "newer_than:1y", "m-bob m-flagged m-readalice"},
		{opsAdmin, "older_than:1w", "m-bob m-flagged m-twocopies"},
		{opsAdmin, "older_than:1y", "m-twocopies"},
		{opsAdmin, "newer_than:1y -newer_than:1m", "m-bob"},
		{opsAlice, "newer_than:1y", "m-flagged m-readalice"},
		// list: (List-Id); free words do not search it
		{opsAdmin, "list:spamassassin-talk.lists.sourceforge.net", "m-readalice"},
		{opsAdmin, `list:"SpamAssassin Talk"`, "m-readalice"},
		{opsAdmin, "list:razor*", "m-twocopies"},
		{opsAdmin, "list:razor-users.lists.sourceforge.net OR list:spamassassin", "m-readalice m-twocopies"},
		{opsAdmin, "list:sourceforge", "m-readalice m-twocopies"}, // a part of the dotted name (analysis chain)
		{opsAdmin, "list:lists.sourceforge.net -list:razor", "m-readalice"},
		{opsAdmin, "razor", ""},
		{opsBob, "list:razor*", ""},
		// - and OR as before, with the new keys
		{opsAdmin, "budget -in:INBOX", ""},
		{opsAdmin, "in:Archive OR is:flagged", "m-flagged m-twocopies"},
	}
	for _, tt := range tests {
		got := strings.Join(subjects(t, s, tt.c, SearchRequest{Query: tt.q}), " ")
		if got != tt.want {
			t.Errorf("%s: %q = [%s], want [%s]", tt.c.Name, tt.q, got, tt.want)
		}
	}
}

// TestFlagsFollowTheServer: a sync that changes flags (Reconcile) re-indexes
// the message, so is: answers from the flags the server has now.
func TestFlagsFollowTheServer(t *testing.T) {
	s, a := openOpsArchive(t, opsCorpus(time.Now()))
	ctx := context.Background()
	if got := subjects(t, s, opsAlice, SearchRequest{Query: "is:unread in:INBOX"}); !slices.Equal(got, []string{"m-flagged", "m-nodate", "m-twocopies"}) {
		t.Fatalf("before: %v", got)
	}
	// alice's INBOX has UIDs 1 (m-readalice), 2 (m-flagged), 3 (m-twocopies),
	// 4 (m-nodate). She reads m-flagged, unflags it, and un-reads m-readalice.
	_, reflagged, err := a.Reconcile(ctx, "alice", "INBOX", 9, map[uint32][]string{
		1: nil, 2: {`\Seen`, `\Answered`}, 3: nil, 4: {"$Work"}})
	if err != nil || reflagged != 2 {
		t.Fatalf("Reconcile: %d reflagged, %v", reflagged, err)
	}
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ q, want string }{
		{"is:unread in:INBOX", "m-nodate m-readalice m-twocopies"},
		{"is:read", "m-flagged m-twocopies"},
		{"is:flagged", ""},
		{"is:answered", "m-flagged"},
	} {
		if got := strings.Join(subjects(t, s, opsAlice, SearchRequest{Query: tt.q}), " "); got != tt.want {
			t.Errorf("after the sync, %q = [%s], want [%s]", tt.q, got, tt.want)
		}
	}
	// bob's copy did not change.
	if got := subjects(t, s, opsBob, SearchRequest{Query: "is:unread"}); !slices.Equal(got, []string{"m-readalice"}) {
		t.Errorf("bob: is:unread = %v", got)
	}
	// The catalog and the index agree again.
	if n, err := a.CountUnindexed(ctx); err != nil || n != 0 {
		t.Errorf("unindexed after the flush: %d, %v", n, err)
	}
}

// TestFlagScopeIsTheArchiveOfOnlyTheirAccounts extends the scoping test to
// is:: a user gets what an admin gets from an archive of only her copies.
func TestFlagScopeIsTheArchiveOfOnlyTheirAccounts(t *testing.T) {
	now := time.Now()
	msgs := opsCorpus(now)
	full, _ := openOpsArchive(t, msgs)
	var alices []opsMessage
	for _, m := range msgs {
		var keep []opsCopy
		for _, c := range m.copies {
			if c.account == "alice" {
				keep = append(keep, c)
			}
		}
		if keep != nil {
			m.copies = keep
			alices = append(alices, m)
		}
	}
	only, _ := openOpsArchive(t, alices)
	for _, q := range []string{"is:read", "is:unread", "is:flagged", "-is:flagged", "in:INBOX is:read", "in:INBOX is:unread",
		"account:alice is:unread", "account:bob is:unread", "is:read OR is:answered", "-(is:read in:Archive)", "budget -is:read"} {
		got := subjects(t, full, opsAlice, SearchRequest{Query: q})
		want := subjects(t, only, opsAdmin, SearchRequest{Query: q})
		if !slices.Equal(got, want) {
			t.Errorf("%q: alice gets %v, an archive of only her copies %v", q, got, want)
		}
	}
}

func sortCorpus(now time.Time) []opsMessage {
	in := []opsCopy{{"alice", "INBOX", nil}}
	return []opsMessage{
		{name: "s1", from: "carol@example.org", date: now.AddDate(0, 0, -1), body: "budget", pad: 300, copies: in},
		{name: "s2", from: "Alice <ALICE@example.org>", date: now.AddDate(0, 0, -5), body: "budget", pad: 100, copies: in},
		{name: "s3", from: "bob@example.org", date: now.AddDate(0, 0, -3), body: "budget", pad: 500, copies: in},
		{name: "s4", from: "alice@example.org", date: now.AddDate(0, 0, -2), body: "budget", pad: 0, copies: in},
		{name: "s5", from: "dave@example.org", date: now.AddDate(0, 0, -4), body: "budget", pad: 200, copies: in},
		{name: "s6", from: "bob@example.org", body: "budget", pad: 400, copies: in}, // no Date:
	}
}

func TestSearchSorts(t *testing.T) {
	s, _ := openOpsArchive(t, sortCorpus(time.Now()))
	ctx := context.Background()
	tests := []struct {
		sort string
		want string
	}{
		{"", "s1 s4 s3 s5 s2 s6"},
		{"newest", "s1 s4 s3 s5 s2 s6"},
		{"date", "s1 s4 s3 s5 s2 s6"},
		{"oldest", "s2 s5 s3 s4 s1 s6"},
		{"largest", "s3 s6 s1 s5 s2 s4"},
		{"smallest", "s4 s2 s5 s1 s6 s3"},
		// by address in lower case, then newest; no date last within bob
		{"sender", "s4 s2 s3 s6 s1 s5"},
	}
	for _, tt := range tests {
		for _, syntax := range []Syntax{SyntaxHuman, SyntaxIMAP} {
			q := "budget"
			if syntax == SyntaxIMAP {
				q = "BODY budget"
				if tt.sort == "" {
					continue // the IMAP syntax keeps its UID order by default
				}
			}
			res, err := s.Search(ctx, opsAdmin, SearchRequest{Query: q, Syntax: syntax, Sort: tt.sort})
			if err != nil {
				t.Fatalf("sort %q %s: %v", tt.sort, syntax, err)
			}
			if got := hitSubjects(res.Hits); got != tt.want {
				t.Errorf("sort %q %s: [%s], want [%s]", tt.sort, syntax, got, tt.want)
			}
			// Paged two at a time by the cursor (human) or offset (IMAP),
			// the pages make up the same order.
			var pages []string
			req := SearchRequest{Query: q, Syntax: syntax, Sort: tt.sort, Limit: 2}
			for range 10 {
				r, err := s.Search(ctx, opsAdmin, req)
				if err != nil {
					t.Fatalf("sort %q %s page: %v", tt.sort, syntax, err)
				}
				if len(r.Hits) == 0 {
					break
				}
				pages = append(pages, hitSubjects(r.Hits))
				if syntax == SyntaxHuman {
					req.After = r.After
				} else {
					req.Offset += len(r.Hits)
				}
			}
			if got := strings.Join(pages, " "); got != tt.want {
				t.Errorf("sort %q %s by pages: [%s], want [%s]", tt.sort, syntax, got, tt.want)
			}
		}
	}
	// The IMAP syntax's default: UID order.
	res, err := s.Search(ctx, opsAdmin, SearchRequest{Query: "BODY budget", Syntax: SyntaxIMAP})
	if err != nil || hitSubjects(res.Hits) != "s1 s2 s3 s4 s5 s6" {
		t.Errorf("IMAP default order: %v %v", hitSubjects(res.Hits), err)
	}
	// A bad sort, and a cursor of another sort, are the caller's errors.
	if _, err := s.Search(ctx, opsAdmin, SearchRequest{Query: "budget", Sort: "size"}); !errors.Is(err, ErrBadRequest) ||
		!strings.Contains(err.Error(), `unknown sort "size" (known: newest, oldest, largest, smallest, sender, relevance)`) {
		t.Errorf("sort=size: %v", err)
	}
	r, err := s.Search(ctx, opsAdmin, SearchRequest{Query: "budget", Sort: "sender", Limit: 2})
	if err != nil || len(r.After) != 3 {
		t.Fatalf("sender page: %v, after %v", err, r.After)
	}
	if _, err := s.Search(ctx, opsAdmin, SearchRequest{Query: "budget", Sort: "newest", After: r.After}); !errors.Is(err, ErrBadRequest) {
		t.Errorf("a sender cursor with sort newest: %v", err)
	}
}

func hitSubjects(hs []Hit) string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.Subject
	}
	return strings.Join(out, " ")
}

// TestRelevanceGraded: with sort=relevance, messages that match the query
// better come first: both words in the subject and often in the body, then
// in the subject once, then once each in a long body.
func TestRelevanceGraded(t *testing.T) {
	in := []opsCopy{{"alice", "INBOX", nil}}
	filler := strings.Repeat("lorem ipsum dolor sit amet consectetur ", 60)
	date := time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)
	msgs := []opsMessage{
		// Inserted worst first and dated best-oldest, so that neither
		// arrival nor date order gives the graded order by chance.
		{name: "g4 weak", from: "d@example.org", date: date.AddDate(0, 0, 4), body: filler + " quarterly " + filler + " budget " + filler, copies: in},
		{name: "g3 plain", from: "c@example.org", date: date.AddDate(0, 0, 3), body: "notes on the quarterly numbers and the budget " + filler, copies: in},
		{name: "g2 quarterly budget", from: "b@example.org", date: date.AddDate(0, 0, 2), body: "see the attached numbers", copies: in},
		{name: "g1 quarterly budget", from: "a@example.org", date: date.AddDate(0, 0, 1), body: "quarterly budget: the quarterly budget is final", copies: in},
		{name: "g0 budget only", from: "e@example.org", date: date, body: "budget", copies: in},
	}
	s, _ := openOpsArchive(t, msgs)
	for _, req := range []SearchRequest{{Query: "quarterly budget", Sort: "relevance"}, {Query: "quarterly budget", ByRelevance: true}} {
		res, err := s.Search(context.Background(), opsAdmin, req)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := hitSubjects(res.Hits), "g1 quarterly budget g2 quarterly budget g3 plain g4 weak"; got != want {
			t.Errorf("relevance: [%s], want [%s]", got, want)
		}
	}
}

// TestHoldRefusesDriftingKeys: a hold's query may not use keys whose matches
// change while the mail does not (now, the server's flags): held mail could
// fall out of the hold and become deletable.
func TestHoldRefusesDriftingKeys(t *testing.T) {
	s, _ := openOpsArchive(t, opsCorpus(time.Now()))
	ctx := context.Background()
	for _, q := range []string{"newer_than:7d", "budget -older_than:1y", "is:unread", "from:zed OR (is:flagged budget)"} {
		_, err := s.CreateHold(ctx, opsAdmin, HoldRequest{Name: "h1", Custodians: []string{"alice"}, Query: q})
		if !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), "changes what it matches as time passes") {
			t.Errorf("hold query %q: %v", q, err)
		}
	}
	if _, err := s.CreateHold(ctx, opsAdmin, HoldRequest{Name: "h2", Custodians: []string{"alice"}, Query: "in:INBOX after:2020-01-01 list:razor*"}); err != nil {
		t.Errorf("a hold with fixed keys: %v", err)
	}
}
