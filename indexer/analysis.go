package indexer

import (
	"unicode"
	"unicode/utf8"

	"github.com/blevesearch/bleve/v2/analysis"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/custom"
	"github.com/blevesearch/bleve/v2/analysis/char/asciifolding"
	"github.com/blevesearch/bleve/v2/analysis/lang/cjk"
	"github.com/blevesearch/bleve/v2/analysis/token/lowercase"
	unicodetok "github.com/blevesearch/bleve/v2/analysis/tokenizer/unicode"
	"github.com/blevesearch/bleve/v2/mapping"
	"github.com/blevesearch/bleve/v2/registry"
	"golang.org/x/text/unicode/norm"

	"mailvault/query"
)

// The analysis chain of the text and address fields (docs/design.md, "Index
// schema"): Unicode word segmentation (UAX #29), CJK width folding, lower
// case, then mv_parts, which
//
//   - splits a token at every character that is neither a letter, a digit nor
//     a combining mark (the segmenter keeps '.', ':', '_', ',' and apostrophes
//     inside words: lists.sourceforge.net, mailto:bob, 10,000, o'brien) and
//     emits the parts at consecutive positions; a word query with
//     punctuation is a phrase of the parts, so lists.sourceforge.net and
//     https://lists.sourceforge.net/lists find exactly that sequence of
//     words, and sourceforge alone finds it too. The whole token is not
//     indexed beside its parts: that cost 8.6 % of the index on the corpus
//     (30.7 against 32.9 MB) and took store + catalog + index over 1.5× the
//     raw mail, and the phrase of the parts finds the same mail (a prefix
//     with punctuation, lists.sourcef*, is translated as the phrase of its
//     leading parts and a prefix of the last, query/bleve.go);
//   - drops a possessive "'s" part (spamassassin's: spamassassin);
//   - puts the NFC form of every term in place and adds its diacritic-free
//     form (asciifolding, then any combining mark dropped: Lefèvre →
//     lefevre, Müller → muller, straße → strasse) at the same position when
//     it differs.
//
// The query side (query.QueryAnalyzer) runs the same chain without the
// folded forms: a query word is its exact parts, so a
// word typed without diacritics matches both spellings (the folded form is
// in the index) while a word or phrase typed with them matches only that
// spelling, and phrases keep their order and adjacency. One rule for both
// sides keeps positions in step: the parts of a token are at the same
// positions in the document and in the query.
//
// Ideographs come out of the segmenter one per token (hiragana too);
// katakana and Hangul runs, which it keeps whole, mv_parts cuts into their
// characters (splitSyllabic), so a CJK word query in any of the scripts is
// a phrase of characters, which finds what a bigram index finds without its
// second set of terms, and finds a word inside a sentence written without
// spaces.
const (
	partsFilter       = "mv_parts"
	queryPartsFilter  = "mv_query_parts"
	queryTextAnalyzer = query.QueryAnalyzer
)

func init() {
	if err := registry.RegisterTokenFilter(partsFilter, func(map[string]any, *registry.Cache) (analysis.TokenFilter, error) {
		return &partsTokenFilter{fold: true}, nil
	}); err != nil {
		panic(err)
	}
	if err := registry.RegisterTokenFilter(queryPartsFilter, func(map[string]any, *registry.Cache) (analysis.TokenFilter, error) {
		return &partsTokenFilter{}, nil
	}); err != nil {
		panic(err)
	}
}

// addAnalyzers registers the index and the query analysers with m.
func addAnalyzers(m *mapping.IndexMappingImpl) error {
	for name, filter := range map[string]string{textAnalyzer: partsFilter, queryTextAnalyzer: queryPartsFilter} {
		if err := m.AddCustomAnalyzer(name, map[string]any{
			"type":          custom.Name,
			"tokenizer":     unicodetok.Name,
			"token_filters": []string{cjk.WidthName, lowercase.Name, filter},
		}); err != nil {
			return err
		}
	}
	return nil
}

// partsTokenFilter is mv_parts (fold set) or mv_query_parts.
type partsTokenFilter struct {
	fold bool // emit the diacritic-free form beside a term
}

var folder = asciifolding.New()

func (f *partsTokenFilter) Filter(in analysis.TokenStream) analysis.TokenStream {
	out := make(analysis.TokenStream, 0, len(in)+len(in)/8)
	pos := 0
	emit := func(t *analysis.Token, term []byte, at int) {
		nt := *t
		nt.Term, nt.Position = term, at
		if !isASCII(term) {
			term = norm.NFC.Bytes(term)
			nt.Term = term
		}
		out = append(out, &nt)
		if f.fold && !isASCII(term) {
			if folded := foldTerm(term); string(folded) != string(term) && len(folded) > 0 {
				ft := nt
				ft.Term = folded
				out = append(out, &ft)
			}
		}
	}
	for _, t := range in {
		pos++
		parts := splitTerm(t.Term)
		if hasSyllabic(t.Term) {
			if parts == nil {
				parts = [][]byte{t.Term}
			}
			parts = splitSyllabic(parts)
		}
		if parts == nil {
			if isASCII(t.Term) {
				// The common case: the token as it is, no copy.
				t.Position = pos
				out = append(out, t)
				continue
			}
			emit(t, t.Term, pos)
			continue
		}
		for i, p := range parts {
			emit(t, p, pos+i)
		}
		pos += len(parts) - 1
	}
	return out
}

// splitTerm returns the parts of term between characters that are not
// letters, digits or marks, without a final possessive "s", or nil when
// term is one part. A term of separators only (rare: the segmenter does not
// emit them) is returned as itself.
func splitTerm(term []byte) [][]byte {
	if isWordOnly(term) {
		return nil
	}
	var parts [][]byte
	start := -1
	apostropheBefore := false
	for i := 0; i < len(term); {
		r, n := utf8.DecodeRune(term[i:])
		if isWordRune(r) {
			if start < 0 {
				start = i
			}
		} else {
			if start >= 0 {
				parts = append(parts, term[start:i])
				start = -1
			}
			apostropheBefore = isApostrophe(r)
		}
		i += n
	}
	if start >= 0 {
		last := term[start:]
		if !(apostropheBefore && len(parts) > 0 && (string(last) == "s")) {
			parts = append(parts, last)
		}
	}
	if len(parts) == 0 {
		return [][]byte{term}
	}
	return parts
}

// hasSyllabic reports whether term holds Hangul or katakana, which the
// segmenter leaves as runs: a Korean sentence (한국어를공부하고) or a katakana
// compound (コンピュータシステム) would be one term, and a word inside it
// (공부, システム) not findable.
func hasSyllabic(term []byte) bool {
	if isASCII(term) {
		return false
	}
	for _, r := range string(term) {
		if isSyllabic(r) {
			return true
		}
	}
	return false
}

func isSyllabic(r rune) bool {
	return unicode.In(r, unicode.Hangul, unicode.Katakana) || r == 'ー'
}

// splitSyllabic cuts every Hangul or katakana character out of the parts
// as a part of its own (with the combining marks after it), as the
// segmenter does with ideographs and hiragana: a CJK word is then the
// phrase of its characters on both sides, in any script (issue 13).
func splitSyllabic(parts [][]byte) [][]byte {
	var out [][]byte
	for _, p := range parts {
		start := -1 // start of a run of other characters
		for i := 0; i < len(p); {
			r, n := utf8.DecodeRune(p[i:])
			if !isSyllabic(r) {
				if start < 0 {
					start = i
				}
				i += n
				continue
			}
			if start >= 0 {
				out = append(out, p[start:i])
				start = -1
			}
			j := i + n
			for j < len(p) {
				m, k := utf8.DecodeRune(p[j:])
				if !unicode.Is(unicode.Mn, m) {
					break
				}
				j += k
			}
			out = append(out, p[i:j])
			i = j
		}
		if start >= 0 {
			out = append(out, p[start:])
		}
	}
	return out
}

func isWordOnly(term []byte) bool {
	for i := 0; i < len(term); {
		c := term[i]
		if c < utf8.RuneSelf {
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || 'A' <= c && c <= 'Z') {
				return false
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(term[i:])
		if !isWordRune(r) {
			return false
		}
		i += n
	}
	return true
}

func isWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r)
}

func isApostrophe(r rune) bool { return r == '\'' || r == '’' || r == 'ʼ' }

// foldTerm returns term without diacritics: Lucene's ASCII folding (which
// also spells ß ss and æ ae), then without any combining mark left.
// Kana and hangul are left alone: their combining voicing marks (が = か +
// U+3099) change the word, they are not accents.
func foldTerm(term []byte) []byte {
	for _, r := range string(term) {
		if unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul) {
			return term
		}
	}
	folded := folder.Filter(norm.NFD.Bytes(term))
	out := folded[:0:0]
	for i := 0; i < len(folded); {
		r, n := utf8.DecodeRune(folded[i:])
		if !unicode.Is(unicode.Mn, r) {
			out = append(out, folded[i:i+n]...)
		}
		i += n
	}
	return norm.NFC.Bytes(out)
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
