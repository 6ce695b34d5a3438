package query

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/custom"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/keyword"
	regexpchar "github.com/blevesearch/bleve/v2/analysis/char/regexp"
	"github.com/blevesearch/bleve/v2/analysis/token/lowercase"
	"github.com/blevesearch/bleve/v2/analysis/tokenizer/unicode"
	"github.com/blevesearch/bleve/v2/mapping"
)

// testMapping mirrors the schema of schema.go the way the indexer is meant
// to map it.
func testMapping(t *testing.T) mapping.IndexMapping {
	t.Helper()
	im := bleve.NewIndexMapping()
	// The indexer's chain (indexer/analysis.go) is tested there; here both
	// names stand for its core: punctuation inside words (example.org)
	// splits them, then segmentation and lower case.
	err := im.AddCustomCharFilter("punct", map[string]any{
		"type":    regexpchar.Name,
		"regexp":  `[^\p{L}\p{N}\p{M}\s]`,
		"replace": " ",
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{TextAnalyzer, QueryAnalyzer} {
		err := im.AddCustomAnalyzer(name, map[string]any{
			"type":          custom.Name,
			"char_filters":  []string{"punct"},
			"tokenizer":     unicode.Name,
			"token_filters": []string{lowercase.Name},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	dm := bleve.NewDocumentStaticMapping()
	for _, f := range TextFields() {
		fm := bleve.NewTextFieldMapping()
		fm.Analyzer = TextAnalyzer
		fm.IncludeTermVectors = true
		fm.Store = false
		fm.IncludeInAll = false
		dm.AddFieldMappingsAt(f, fm)
	}
	for _, f := range []string{IndexDay, IndexSize} {
		fm := bleve.NewNumericFieldMapping()
		fm.Store = false
		dm.AddFieldMappingsAt(f, fm)
	}
	bm := bleve.NewBooleanFieldMapping()
	bm.Store = false
	dm.AddFieldMappingsAt(IndexHasAttachment, bm)
	for _, f := range []string{IndexAccount, IndexMailbox} {
		fm := bleve.NewKeywordFieldMapping()
		fm.Analyzer = keyword.Name
		fm.Store = false
		dm.AddFieldMappingsAt(f, fm)
	}
	im.DefaultMapping = dm
	return im
}

var testDocs = map[string]map[string]any{
	"d1": {
		IndexFrom: []string{"Alice Example <alice@example.org>"}, IndexTo: []string{"Bob <bob@example.com>"},
		IndexSubject: "Quarterly report", IndexBody: "Please find the quarterly report attached. Invoice 42.",
		IndexAttachment: []string{"report-q3.pdf"}, IndexAttachmentText: "revenue grew",
		IndexDay: 20240301, IndexSize: 1000, IndexHasAttachment: true,
		IndexAccount: []string{"alice"}, IndexMailbox: []string{"INBOX"},
	},
	"d2": {
		IndexFrom: []string{"Bob <bob@example.com>"}, IndexTo: []string{"Alice <alice@example.org>"},
		IndexSubject: "Re: Quarterly report", IndexBody: "To be or not to be, that is the question.",
		IndexDay: 20240229, IndexSize: 1024, IndexHasAttachment: false,
		IndexAccount: []string{"alice", "bob"}, IndexMailbox: []string{"INBOX", "Sent"},
	},
	"d3": {
		IndexFrom: []string{"Carol <carol@example.net>"},
		// "alice" ends one address and "example.org" starts the next:
		// not adjacent for a phrase.
		IndexTo:      []string{"Foo <foo@alice>", "example.org team <team@x.org>"},
		IndexSubject: "Out of office", IndexBody: "Not to be confused: or to be sure.",
		IndexDay: 20240302, IndexSize: 1025, IndexHasAttachment: false,
		IndexAccount: []string{"bob"}, IndexMailbox: []string{"Archive/2024"},
	},
	"d4": {
		IndexFrom: []string{"Dave <dave@example.org>"}, IndexSubject: "invoice", IndexBody: "invoices attached",
		IndexAttachment: []string{"invoice.pdf"}, IndexAttachmentText: "total due",
		IndexDay: 20231231, IndexSize: 5000000, IndexHasAttachment: true,
		IndexAccount: []string{"carol"}, IndexMailbox: []string{"Sent Items"},
	},
	"d5": {
		IndexFrom: []string{"alice@example.org"}, IndexSubject: "Lunch?", IndexBody: "e-mail me at noon",
		IndexDay: 20240401, IndexSize: 10, IndexHasAttachment: false,
		IndexAccount: []string{"alice"}, IndexMailbox: []string{"Archive/2024.Q1"},
	},
	"d6": {
		IndexFrom: []string{"Eve <eve@evil.example>"}, IndexSubject: "東京タワー", IndexBody: "mail e something",
		IndexDay: 20240315, IndexSize: 2048, IndexHasAttachment: false,
		IndexAccount: []string{"eve"}, IndexMailbox: []string{"INBOX"},
	},
}

func testIndex(t *testing.T) bleve.Index {
	t.Helper()
	idx, err := bleve.NewMemOnly(testMapping(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idx.Close() })
	b := idx.NewBatch()
	for id, doc := range testDocs {
		if err := b.Index(id, doc); err != nil {
			t.Fatal(err)
		}
	}
	if err := idx.Batch(b); err != nil {
		t.Fatal(err)
	}
	return idx
}

func TestBleve(t *testing.T) {
	idx := testIndex(t)
	tests := []struct {
		q    string
		want string // space-separated doc IDs, sorted
	}{
		{`"to be or not to be"`, "d2"},
		{`to be or not`, "d2 d3"},
		{`body:"to be or not to be"`, "d2"},
		{`subject:"to be or not to be"`, ""},
		{`from:alice@example.org`, "d1 d5"},
		{`FROM:Alice@Example.ORG`, "d1 d5"},
		{`to:alice@example.org`, "d2"},
		{`alice@example.org`, "d1 d2 d5"},
		{`from:alice`, "d1 d5"},
		// alice@example.org is the words alice, example, org (the parts of
		// an address are words of the field): adjacent, as the phrase asks.
		{`from:"Alice Example"`, "d1 d5"},
		{`alice lunch`, "d5"},
		{`REPORT`, "d1 d2"},
		{`invoice`, "d1 d4"},
		{`invoice*`, "d1 d4"},
		{`Invoi*`, "d1 d4"},
		{`subject:invoice`, "d4"},
		{`body:invoice`, "d1"},
		{`example.or*`, "d1 d2 d3 d4 d5"},
		{`from:example.or*`, "d1 d4 d5"},
		{`e-mail`, "d5"},
		{`東京`, "d6"},
		{`"out of office"`, "d3"},
		{`-"out of office"`, "d1 d2 d4 d5 d6"},
		{`attachment:revenue`, "d1"},
		{`filename:revenue`, ""},
		{`attachment:invoice.pdf`, "d4"},
		{`filename:invoice*`, "d4"},
		{`attachment:q3.pdf`, "d1"},
		{`before:2024-03-01`, "d2 d4"},
		{`after:2024-03-01`, "d1 d3 d5 d6"},
		{`on:2024-03-01`, "d1"},
		{`on:2024-02-29`, "d2"},
		{`after:2024-03-01 before:2024-04-01`, "d1 d3 d6"},
		{`before:2023-12-31`, ""},
		{`after:2024-04-02`, ""},
		{`larger:1024`, "d3 d4 d6"},
		{`larger:1k`, "d3 d4 d6"},
		{`larger:1023`, "d2 d3 d4 d6"},
		{`smaller:1024`, "d1 d5"},
		{`smaller:1025`, "d1 d2 d5"},
		{`larger:4M`, "d4"},
		{`larger:5000000`, ""},
		{`has:attachment`, "d1 d4"},
		{`-has:attachment`, "d2 d3 d5 d6"},
		{`account:alice`, "d1 d2 d5"},
		{`account:Alice`, ""},
		{`account:bob`, "d2 d3"},
		{`mailbox:INBOX`, "d1 d2 d6"},
		{`mailbox:inbox`, "d1 d2 d6"},
		{`mailbox:Sent`, "d2"},
		{`mailbox:"Sent Items"`, "d4"},
		{`mailbox:Archive/2024`, "d3"},
		{`mailbox:Archive/2024.Q1`, "d5"},
		{`-from:bob`, "d1 d3 d4 d5 d6"},
		{`-from:alice -from:bob`, "d3 d4 d6"},
		{`NOT from:alice`, "d2 d3 d4 d6"},
		{`report -subject:re`, "d1"},
		{`from:alice OR from:bob`, "d1 d2 d5"},
		{`from:alice OR from:bob account:alice -has:attachment`, "d2 d5"},
		{`(from:alice OR from:bob) -subject:re`, "d1 d5"},
		{`-(from:alice OR from:bob)`, "d3 d4 d6"},
		{`(quarterly invoice) OR lunch`, "d1 d5"},
		{`-(quarterly invoice)`, "d2 d3 d4 d5 d6"},
		{`--has:attachment`, "d1 d4"},
		{`a OR (b OR noon)`, "d5"},
	}
	for _, tt := range tests {
		n, err := ParseHuman(tt.q)
		if err != nil {
			t.Errorf("ParseHuman(%q): %v", tt.q, err)
			continue
		}
		q, err := Bleve(n)
		if err != nil {
			t.Errorf("Bleve(%s): %v", n, err)
			continue
		}
		res, err := idx.Search(bleve.NewSearchRequestOptions(q, 100, 0, false))
		if err != nil {
			t.Errorf("search %s: %v", n, err)
			continue
		}
		var ids []string
		for _, h := range res.Hits {
			ids = append(ids, h.ID)
		}
		slices.Sort(ids)
		if got := strings.Join(ids, " "); got != tt.want {
			t.Errorf("search %q = [%s], want [%s]", tt.q, got, tt.want)
		}
	}
}

func TestBleveErrors(t *testing.T) {
	tests := []struct {
		n    Node
		want string
	}{
		{Text{Field: FieldBody, Value: "nsubscri", Match: MatchSubstring}, "body: substring matching not supported yet"},
		{Not{Node: Text{Field: FieldText, Value: "x", Match: MatchSubstring}}, "text: substring matching not supported yet"},
		{Text{Field: FieldText, Value: "a", Match: MatchPrefix}, `prefix "a*" is too short, give at least 2 characters before *`},
		{Text{Field: FieldFrom, Value: " ", Match: MatchWords}, "from: empty value"},
		{Date{Op: DateBefore, Year: 2024, Month: 1, Day: 1, Internal: true}, "internal dates (BEFORE, ON, SINCE) are occurrence keys, not in the index"},
		{Date{Op: DateOn, Year: 2024, Month: 2, Day: 30}, "bad date on:2024-02-30"},
		{Account{}, "account: empty name"},
		{And{Nodes: []Node{Text{Value: "x"}, nil}}, "translate: nil node"},
	}
	for _, tt := range tests {
		q, err := Bleve(tt.n)
		if err == nil || err.Error() != tt.want {
			t.Errorf("Bleve(%s) = %v, %v, want error %s", tt.n, q, err, tt.want)
		}
	}
	_, err := Bleve(Text{Field: FieldBody, Value: "x", Match: MatchSubstring})
	if !errors.Is(err, ErrSubstring) {
		t.Errorf("Bleve(substring) = %v, want ErrSubstring", err)
	}
}

// TestBleveMultiWord covers MatchWords values with several words, which
// the human parser does not produce but other parsers may.
func TestBleveMultiWord(t *testing.T) {
	idx := testIndex(t)
	tests := []struct {
		n    Node
		want string
	}{
		{Text{Field: FieldText, Value: "quarterly  invoice", Match: MatchWords}, "d1"},
		{Text{Field: FieldBody, Value: "be question", Match: MatchWords}, "d2"},
		{And{}, "d1 d2 d3 d4 d5 d6"},
		{Or{}, ""},
		{All{}, "d1 d2 d3 d4 d5 d6"},
		{And{Nodes: []Node{All{}, Not{Node: HasAttachment{}}}}, "d2 d3 d5 d6"},
	}
	for _, tt := range tests {
		q, err := Bleve(tt.n)
		if err != nil {
			t.Errorf("Bleve(%s): %v", tt.n, err)
			continue
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
		if got := strings.Join(ids, " "); got != tt.want {
			t.Errorf("search %s = [%s], want [%s]", tt.n, got, tt.want)
		}
	}
}
