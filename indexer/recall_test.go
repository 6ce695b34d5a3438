package indexer

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"mailvault/indexer/mailfile"
	"mailvault/indexer/mailfile/corpustest"
	"mailvault/indexer/mime"
	"mailvault/query"
)

// TestRecallAgainstMu is the recall benchmark against mu (docs/benchmarks.md,
// "Recall against mu"): the SpamAssassin corpus imported into a real archive,
// and for every query of testdata/recall.tsv mailvault must find at least the
// messages mu 1.8.13 found on the same Maildir (recorded there, so that CI
// needs no mu; scripts/bench-recall.sh measures mu again). The corpus holds
// no duplicate files, so mu's count of files and mailvault's of unique
// messages count the same thing.
//
// Phrases must stay exact: every hit of a body: or subject: phrase holds the
// phrase's words adjacent and in order in that field's text (split into
// words and folded as the analyser does), checked against the message
// itself, not the index.
func TestRecallAgainstMu(t *testing.T) {
	dir := corpustest.Maildir(t)
	cases := readRecall(t, "testdata/recall.tsv")
	a := openTest(t, t.TempDir())
	defer a.Close()
	ctx := context.Background()
	boxes, err := mailfile.Discover(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	raws := map[string][]byte{}
	for _, mb := range boxes {
		mustMailbox(t, a, "sa", mb.Name)
		var items []Item
		uid := uint32(0)
		flush := func() {
			ingest(t, a, items...)
			items = items[:0]
		}
		err := mb.Walk(func(m mailfile.Message) error {
			sum := sha256.Sum256(m.Raw)
			raws[hex.EncodeToString(sum[:])] = m.Raw
			uid++
			items = append(items, Item{Account: "sa", Mailbox: mb.Name, UIDValidity: 7, UID: uid, Raw: m.Raw})
			if len(items) == 256 {
				flush()
			}
			return nil
		}, func(err error) { t.Errorf("walk %s: %v", mb.Name, err) })
		if err != nil {
			t.Fatal(err)
		}
		flush()
	}
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d messages", len(raws))
	for _, c := range cases {
		n, err := query.ParseHuman(c.q)
		if err != nil {
			t.Fatalf("ParseHuman(%q): %v", c.q, err)
		}
		res, err := a.Search(ctx, n, &SearchOptions{Limit: len(raws) + 1})
		if err != nil {
			t.Fatalf("Search(%q): %v", c.q, err)
		}
		t.Logf("%-24s mu %5d  mailvault %5d", c.q, c.mu, res.Total)
		if res.Total < uint64(c.mu) {
			t.Errorf("Search(%q) = %d hits, mu finds %d", c.q, res.Total, c.mu)
		}
		field, phrase, ok := phraseOf(c.q)
		if !ok {
			continue
		}
		for _, h := range res.Hits {
			m := mime.Parse(raws[h.SHA256], nil)
			text := m.Text
			if field == query.IndexSubject {
				text = m.Subject
			}
			if !strings.Contains(" "+words(text)+" ", " "+words(phrase)+" ") {
				t.Errorf("Search(%q) hit %s (%q) does not hold the phrase", c.q, h.SHA256[:12], h.Subject)
			}
		}
	}
}

type recallCase struct {
	q  string
	mu int
}

func readRecall(t *testing.T, path string) []recallCase {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []recallCase
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		s := sc.Text()
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		q, count, ok := strings.Cut(s, "\t")
		n, err := strconv.Atoi(count)
		if !ok || err != nil {
			t.Fatalf("%s:%d: want query<TAB>count, have %q", path, line, s)
		}
		out = append(out, recallCase{q, n})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatalf("%s: no queries", path)
	}
	return out
}

// phraseOf returns the field and phrase of a query body:"..." or
// subject:"...".
func phraseOf(q string) (field, phrase string, ok bool) {
	field, v, ok := strings.Cut(q, ":")
	if !ok || (field != query.IndexBody && field != query.IndexSubject) || len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return "", "", false
	}
	return field, v[1 : len(v)-1], true
}

// words returns s as the analyser sees its words: split at everything but
// letters, digits and marks, lower case, diacritics folded, a possessive s
// dropped, joined by single spaces.
func words(s string) string {
	s = possessive.ReplaceAllString(s, "")
	var out []string
	for w := range strings.FieldsFuncSeq(s, func(r rune) bool { return !isWordRune(r) }) {
		out = append(out, string(foldTerm([]byte(strings.ToLower(w)))))
	}
	return strings.Join(out, " ")
}

// possessive is a possessive "'s" ending a word (here's), which the analyser
// drops.
var possessive = regexp.MustCompile(`(?i)['’ʼ]s\b`)
