package indexer

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/blevesearch/bleve/v2/analysis"
)

// analysisMail is the mail of TestAnalysisChain: the subject is the name a
// test case expects among its hits.
var analysisMail = []struct{ from, subject, body string }{
	{"", "url", "See https://lists.sourceforge.net/lists/listinfo/spamassassin-talk for the list."},
	{"", "host", "Visit www.redhat.com today, or ftp.redhat.com."},
	{"", "possessive", "Spamassassin's rules; O’Brien’s dog"},
	{"Émile Lefèvre <emile@example.fr>", "accent", "Müller und die Straße, un café"},
	{"Emile Lefevre <lefevre@example.com>", "plain", "Muller, a cafe"},
	{"", "cjk", "東京都に住んでいます。テストです。"},
	{"", "han", "我们明天在北京开会讨论预算。"},
	{"", "japanese", "日本語の勉強をしています。コンピュータシステム"},
	{"", "hangul", "한국어를공부하고있습니다. 서울에서만나요"},
	{"", "hyphen", "send an e-mail to the co-op"},
	{"Alice Smith <alice@example.org>", "address", "hello"},
	{"", "phrase", "to be or not to be"},
	{"", "numbers", "costs 10,000 dollars at 192.168.1.20"},
}

// TestAnalysisChain holds each example of docs/design.md ("Index schema")
// against a real archive on disk: documents indexed by the mv_text chain,
// queries parsed and translated as a user's are.
func TestAnalysisChain(t *testing.T) {
	a := openTest(t, t.TempDir())
	defer a.Close()
	mustMailbox(t, a, "alice", "INBOX")
	var items []Item
	for i, m := range analysisMail {
		from := m.from
		if from == "" {
			from = "Sender <sender@post.test>"
		}
		items = append(items, Item{Account: "alice", Mailbox: "INBOX", UIDValidity: 7, UID: uint32(i + 1),
			Raw: msg(from, m.subject, "Mon, 4 Mar 2024 10:00:00 +0100", m.body)})
	}
	ingest(t, a, items...)
	if err := a.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	all := make([]string, len(analysisMail))
	for i, m := range analysisMail {
		all[i] = m.subject
	}
	slices.Sort(all)
	tests := []struct {
		q    string
		want []string
	}{
		// A dotted name or URL by the whole and by each part; the whole is a
		// phrase of the parts: order and adjacency count.
		{"body:sourceforge", []string{"url"}},
		{"body:lists.sourceforge.net", []string{"url"}},
		{"body:https://lists.sourceforge.net/lists", []string{"url"}},
		{`body:"https://lists.sourceforge.net/lists/listinfo"`, []string{"url"}},
		{"sourceforge.net", []string{"url"}},
		{`"net lists"`, []string{"url"}},
		{`"sourceforge lists"`, nil},
		{"spamassassin-talk", []string{"url"}},
		{"talk", []string{"url"}},
		{"redhat", []string{"host"}},
		{"www.redhat.com", []string{"host"}},
		{"redhat.com", []string{"host"}},
		{"www.redhat.org", nil},
		{"sourcefor*", []string{"url"}},
		{"lists.sourcef*", []string{"url"}},
		// Possessives and apostrophes.
		{"subject:possessive spamassassin", []string{"possessive"}},
		{"spamassassin", []string{"possessive", "url"}},
		{"spamassassin's", []string{"possessive", "url"}}, // the possessive folds on both sides
		{"spamassassin’s", []string{"possessive", "url"}},
		{"brien", []string{"possessive"}},
		{"o'brien", []string{"possessive"}},
		{"o’brien's", []string{"possessive"}},
		// Diacritics: a word without them finds both spellings, a word or
		// phrase with them only that spelling.
		{"Lefevre", []string{"accent", "plain"}},
		{"from:lefevre", []string{"accent", "plain"}},
		{"Lefèvre", []string{"accent"}},
		{"from:LEFÈVRE", []string{"accent"}},
		{"emile", []string{"accent", "plain"}},
		{"Muller", []string{"accent", "plain"}},
		{"Müller", []string{"accent"}},
		{"strasse", []string{"accent"}},
		{"Straße", []string{"accent"}},
		{"cafe", []string{"accent", "plain"}},
		{"café", []string{"accent"}},
		{`"un cafe"`, []string{"accent"}},
		{`"un café"`, []string{"accent"}},
		{`"a café"`, nil},
		// CJK: ideographs and kana as a phrase of their characters.
		{"東京", []string{"cjk"}},
		{"東京都", []string{"cjk"}},
		{"京都", []string{"cjk"}},
		{"テスト", []string{"cjk"}},
		{"大阪", nil},
		// Chinese (Han) with no spaces: a word inside the sentence is found,
		// two characters that are not adjacent there are not.
		{"北京", []string{"han"}},
		{"开会", []string{"han"}},
		{"讨论预算", []string{"han"}},
		{"北开", nil},
		{"上海", nil},
		// Japanese, kanji and hiragana mixed, no spaces.
		{"勉強", []string{"japanese"}},
		{"日本語", []string{"japanese"}},
		{"しています", []string{"japanese"}},
		{"強を", []string{"japanese"}},
		{"語勉", nil},
		{"システム", []string{"japanese"}}, // a katakana word inside a compound
		{"コンピュータ", []string{"japanese"}},
		{"ムシ", nil},
		// Korean Hangul with no spaces between words.
		{"공부", []string{"hangul"}},
		{"한국어", []string{"hangul"}},
		{"서울", []string{"hangul"}},
		{"부공", nil},
		{"부산", nil},
		// Hyphenated words by the whole and each part.
		{"e-mail", []string{"hyphen"}},
		{"mail", []string{"hyphen"}},
		{"co-op", []string{"hyphen"}},
		{`"mail to the co"`, []string{"hyphen"}},
		// Addresses by the whole, the domain and the parts.
		{"from:alice", []string{"address"}},
		{"from:example.org", []string{"address"}},
		{"from:alice@example.org", []string{"address"}},
		{"from:smith", []string{"address"}},
		{"from:example", []string{"accent", "address", "plain"}},
		{"from:bob@example.org", nil},
		{"to:archive@example.org", all},
		// Numbers and stop words.
		{"10,000", []string{"numbers"}},
		{"168", []string{"numbers"}},
		{"192.168.1.20", []string{"numbers"}},
		{"192.168.1.21", nil},
		{`"to be or not to be"`, []string{"phrase"}},
		{`"be or to"`, nil},
	}
	for _, tc := range tests {
		got := subjects(find(t, a, tc.q, &SearchOptions{Limit: 100}))
		if !slices.Equal(got, tc.want) {
			t.Errorf("Search(%q) = %v, want %v", tc.q, got, tc.want)
		}
	}
}

// TestPartsFilter checks the token stream of the index and the query chain:
// which terms at which positions.
func TestPartsFilter(t *testing.T) {
	m, err := newMapping()
	if err != nil {
		t.Fatal(err)
	}
	stream := func(analyzer, text string) string {
		an := m.AnalyzerNamed(analyzer)
		if an == nil {
			t.Fatalf("no analyzer %s", analyzer)
		}
		var b strings.Builder
		for _, tok := range an.Analyze([]byte(text)) {
			fmt.Fprintf(&b, "%d:%s ", tok.Position, tok.Term)
		}
		return strings.TrimSpace(b.String())
	}
	tests := []struct{ text, index, query string }{
		{"see lists.sourceforge.net now", "1:see 2:lists 3:sourceforge 4:net 5:now", "1:see 2:lists 3:sourceforge 4:net 5:now"},
		{"Spamassassin's", "1:spamassassin", "1:spamassassin"},
		{"O’Brien’s", "1:o 2:brien", "1:o 2:brien"},
		{"mailto:bob@x.org", "1:mailto 2:bob 3:x 4:org", "1:mailto 2:bob 3:x 4:org"},
		{"Lefèvre", "1:lefèvre 1:lefevre", "1:lefèvre"},
		{"Straße", "1:straße 1:strasse", "1:straße"},
		{"Lefe\u0300vre", "1:lefèvre 1:lefevre", "1:lefèvre"},
		{"café.fr x", "1:café 1:cafe 2:fr 3:x", "1:café 2:fr 3:x"},
		{"ＡＢＣ", "1:abc", "1:abc"},
		{"東京", "1:東 2:京", "1:東 2:京"},
		{"が", "1:が", "1:が"},
		{"공부하고", "1:공 2:부 3:하 4:고", "1:공 2:부 3:하 4:고"},
		{"データabc", "1:デ 2:ー 3:タ 4:abc", "1:デ 2:ー 3:タ 4:abc"},
		{"\u30AB\u3099", "1:\u30AC", "1:\u30AC"}, // カ + U+3099: the mark stays with its character, composed
		{"plain words", "1:plain 2:words", "1:plain 2:words"},
	}
	for _, tc := range tests {
		if got := stream(textAnalyzer, tc.text); got != tc.index {
			t.Errorf("index analysis of %q = %s, want %s", tc.text, got, tc.index)
		}
		if got := stream(queryTextAnalyzer, tc.text); got != tc.query {
			t.Errorf("query analysis of %q = %s, want %s", tc.text, got, tc.query)
		}
	}
	var _ analysis.TokenFilter = (*partsTokenFilter)(nil)
}
