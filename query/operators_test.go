package query

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/keyword"
	"github.com/blevesearch/bleve/v2/mapping"
)

// The operators Gmail users type (issue 13): in:, is:, newer_than:,
// older_than:, list:, filename:, has:attachment beside the older keys.

func TestParseHumanOperators(t *testing.T) {
	seen, flagged, answered := Flag{Name: `\Seen`}, Flag{Name: `\Flagged`}, Flag{Name: `\Answered`}
	tests := []struct {
		in        string
		want      Node
		canonical string // String() of the tree
	}{
		{"in:INBOX", Mailbox{Name: "INBOX"}, "mailbox:INBOX"},
		{"in:inbox", Mailbox{Name: "INBOX"}, "mailbox:INBOX"},
		{"IN:Sent", Mailbox{Name: "Sent"}, "mailbox:Sent"},
		{`in:"Sent Items"`, Mailbox{Name: "Sent Items"}, `mailbox:"Sent Items"`},
		{"is:read", seen, "is:read"},
		{"is:unread", Not{Node: seen}, "-is:read"},
		{"IS:Unread", Not{Node: seen}, "-is:read"},
		{"is:flagged", flagged, "is:flagged"},
		{"is:unflagged", Not{Node: flagged}, "-is:flagged"},
		{"is:answered", answered, "is:answered"},
		{"is:unanswered", Not{Node: answered}, "-is:answered"},
		{"-is:unread", Not{Node: Not{Node: seen}}, "--is:read"},
		{"newer_than:7d", Age{Newer: true, Count: 7, Unit: 'd'}, "newer_than:7d"},
		{"older_than:1y", Age{Count: 1, Unit: 'y'}, "older_than:1y"},
		{"newer_than:2W", Age{Newer: true, Count: 2, Unit: 'w'}, "newer_than:2w"},
		{"Older_Than:6m", Age{Count: 6, Unit: 'm'}, "older_than:6m"},
		{"newer_than:9999d", Age{Newer: true, Count: 9999, Unit: 'd'}, "newer_than:9999d"},
		{"list:spamassassin-talk.lists.sourceforge.net",
			Text{Field: FieldList, Value: "spamassassin-talk.lists.sourceforge.net", Match: MatchWords},
			"list:spamassassin-talk.lists.sourceforge.net"},
		{`list:"SpamAssassin Talk"`, Text{Field: FieldList, Value: "SpamAssassin Talk", Match: MatchPhrase}, `list:"SpamAssassin Talk"`},
		{"list:spam*", Text{Field: FieldList, Value: "spam", Match: MatchPrefix}, "list:spam*"},
		{"filename:invoice.pdf", Text{Field: FieldFilename, Value: "invoice.pdf", Match: MatchWords}, "filename:invoice.pdf"},
		{"has:attachment", HasAttachment{}, "has:attachment"},
		{"in:INBOX is:unread OR is:flagged -from:bob",
			And{Nodes: []Node{Mailbox{Name: "INBOX"}, Or{Nodes: []Node{Not{Node: seen}, flagged}},
				Not{Node: Text{Field: FieldFrom, Value: "bob", Match: MatchWords}}}},
			"mailbox:INBOX -is:read OR is:flagged -from:bob"},
		// A word with an underscore before its colon is a key now, but
		// one after a non-letter start is still a word.
		{"_x:y", Text{Field: FieldText, Value: "_x:y", Match: MatchWords}, "_x:y"},
	}
	for _, tt := range tests {
		got, err := ParseHuman(tt.in)
		if err != nil {
			t.Errorf("ParseHuman(%q): %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseHuman(%q) = %#v, want %#v", tt.in, got, tt.want)
		}
		if s := got.String(); s != tt.canonical {
			t.Errorf("ParseHuman(%q).String() = %q, want %q", tt.in, s, tt.canonical)
		}
		back, err := ParseHuman(got.String())
		if err != nil || !reflect.DeepEqual(back, got) {
			t.Errorf("round trip of %q: %q parses to %#v, %v", tt.in, got.String(), back, err)
		}
	}
}

func TestParseHumanOperatorErrors(t *testing.T) {
	tests := []struct {
		in   string
		want string // the error names the operator and what it wants
	}{
		{"is:starred", `unknown is: value "starred" (known: read, unread, flagged, unflagged, answered, unanswered) (at offset 3)`},
		{"is:", `is: needs a value (at offset 3)`},
		{"newer_than:7", `newer_than: bad age "7", want a count from 1 to 9999 and a unit d, w, m or y (7d, 2w, 6m, 1y) (at offset 11)`},
		{"newer_than:0d", `newer_than: bad age "0d"`},
		{"older_than:1h", `older_than: bad age "1h"`},
		{"older_than:d", `older_than: bad age "d"`},
		{"older_than:-1d", `older_than: bad age "-1d"`},
		{"newer_than:10000d", `newer_than: bad age "10000d"`},
		{"newer_than:", `newer_than: needs a value`},
		{"in:", `in: needs a value`},
		{"in:Arch*", `in: takes one exact name, wildcards * and % are not supported`},
		{"list:", `list: needs a value`},
		{"list:--", `"--" has no letters or digits to search for`},
		{"has:pdf", `unknown has: value "pdf" (known: attachment)`},
		{"newer:7d", `unknown key "newer" (known: from, to, cc, bcc, rcpt, subject, body, attachment, filename, list, before, after, on, newer_than, older_than, larger, smaller, has, is, account, mailbox, in;`},
	}
	for _, tt := range tests {
		_, err := ParseHuman(tt.in)
		if err == nil {
			t.Errorf("ParseHuman(%q) succeeded, want error containing %q", tt.in, tt.want)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseHuman(%q) = %v\nwant it to contain %s", tt.in, err, tt.want)
		}
	}
}

func TestAgeCutoff(t *testing.T) {
	now := time.Date(2024, 3, 31, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		age  Age
		want time.Time
	}{
		{Age{Count: 7, Unit: 'd'}, time.Date(2024, 3, 24, 12, 0, 0, 0, time.UTC)},
		{Age{Count: 2, Unit: 'w'}, time.Date(2024, 3, 17, 12, 0, 0, 0, time.UTC)},
		// Calendar months and years, as time.AddDate normalises them:
		// 31 February is 2 March.
		{Age{Count: 1, Unit: 'm'}, time.Date(2024, 3, 2, 12, 0, 0, 0, time.UTC)},
		{Age{Count: 6, Unit: 'm'}, time.Date(2023, 10, 1, 12, 0, 0, 0, time.UTC)},
		{Age{Count: 1, Unit: 'y'}, time.Date(2023, 3, 31, 12, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		if got := tt.age.Cutoff(now); !got.Equal(tt.want) {
			t.Errorf("%s.Cutoff(%s) = %s, want %s", tt.age, now, got, tt.want)
		}
	}
}

// TestBleveOperators runs the new keys against an in-memory index with the
// fields the indexer fills for them (list, time, flag).
func TestBleveOperators(t *testing.T) {
	clock := time.Date(2024, 6, 15, 12, 0, 0, 0, time.UTC)
	now = func() time.Time { return clock }
	t.Cleanup(func() { now = time.Now })

	im := testMapping(t).(*mapping.IndexMappingImpl)
	doc := im.DefaultMapping
	lf := bleve.NewTextFieldMapping()
	lf.Analyzer, lf.IncludeTermVectors, lf.Store = TextAnalyzer, true, false
	doc.AddFieldMappingsAt(IndexList, lf)
	doc.AddFieldMappingsAt(IndexTime, bleve.NewNumericFieldMapping())
	kw := bleve.NewKeywordFieldMapping()
	kw.Analyzer = keyword.Name
	doc.AddFieldMappingsAt(IndexFlag, kw)
	idx, err := bleve.NewMemOnly(im)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idx.Close() })
	day := func(y int, m time.Month, d int) float64 {
		return float64(time.Date(y, m, d, 12, 0, 0, 0, time.UTC).Unix())
	}
	docs := map[string]map[string]any{
		// read in alice/INBOX, unread in bob/INBOX
		"m1": {IndexBody: "budget", IndexTime: day(2024, 6, 14),
			IndexList: "SpamAssassin Talk <spamassassin-talk.lists.sourceforge.net>",
			IndexFlag: []string{FlagKey(`\Seen`), FlagPlaceKey("alice", "INBOX", `\Seen`)}},
		// flagged and answered, a month old
		"m2": {IndexBody: "budget", IndexTime: day(2024, 5, 10),
			IndexFlag: []string{FlagKey(`\Flagged`), FlagKey(`\Answered`),
				FlagPlaceKey("bob", "INBOX", `\Flagged`), FlagPlaceKey("bob", "INBOX", `\Answered`)}},
		// no flags, two years old
		"m3": {IndexBody: "budget", IndexTime: day(2022, 6, 1), IndexList: "<razor-users.lists.sourceforge.net>"},
		// no date
		"m4": {IndexBody: "budget"},
	}
	b := idx.NewBatch()
	for id, d := range docs {
		if err := b.Index(id, d); err != nil {
			t.Fatal(err)
		}
	}
	if err := idx.Batch(b); err != nil {
		t.Fatal(err)
	}
	run := func(n Node) string {
		q, err := Bleve(n)
		if err != nil {
			t.Fatalf("Bleve(%s): %v", n, err)
		}
		res, err := idx.Search(bleve.NewSearchRequestOptions(q, 100, 0, false))
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, h := range res.Hits {
			ids = append(ids, h.ID)
		}
		slices.Sort(ids)
		return strings.Join(ids, " ")
	}
	parsed := []struct{ q, want string }{
		{"is:read", "m1"},
		{"is:unread", "m2 m3 m4"},
		{"is:flagged", "m2"},
		{"is:answered", "m2"},
		{"is:unanswered budget", "m1 m3 m4"},
		{"is:read OR is:flagged", "m1 m2"},
		{"newer_than:7d", "m1"},
		{"newer_than:2m", "m1 m2"},
		{"older_than:7d", "m2 m3"},
		{"older_than:1y", "m3"},
		{"-newer_than:7d", "m2 m3 m4"}, // no date: not newer, so the negation has it
		// (the parts of dotted names are the indexer's analyser's; this
		// test mapping only segments words)
		{"list:spamassassin", "m1"},
		{"list:razor", "m3"},
		{"list:spamassassin-talk.lists.sourceforge.net", "m1"},
		{`list:"SpamAssassin Talk"`, "m1"},
		{"list:razor*", "m3"},
		{"razor", ""}, // free words do not search the list field
	}
	for _, tt := range parsed {
		n, err := ParseHuman(tt.q)
		if err != nil {
			t.Fatalf("ParseHuman(%q): %v", tt.q, err)
		}
		if got := run(n); got != tt.want {
			t.Errorf("%s: got [%s], want [%s]", tt.q, got, tt.want)
		}
	}
	// The indexer writes flags in a narrower scope as FlagIn.
	scoped := []struct {
		n    Node
		want string
	}{
		{FlagIn{Flag: `\Seen`, Places: []Place{{"alice", "INBOX"}}}, "m1"},
		{FlagIn{Flag: `\seen`, Places: []Place{{"bob", "INBOX"}}}, ""},
		{Not{Node: FlagIn{Flag: `\Seen`, Places: []Place{{"bob", "INBOX"}}}}, "m1 m2 m3 m4"},
		{FlagIn{Flag: `\Flagged`, Places: []Place{{"alice", "INBOX"}, {"bob", "INBOX"}}}, "m2"},
		{FlagIn{Flag: `\Flagged`}, ""},
		{Not{Node: FlagIn{Flag: `\Flagged`}}, "m1 m2 m3 m4"},
	}
	for _, tt := range scoped {
		if got := run(tt.n); got != tt.want {
			t.Errorf("%s: got [%s], want [%s]", tt.n, got, tt.want)
		}
	}
}
