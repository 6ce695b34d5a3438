package web

import (
	"html/template"
	"strings"
	"unicode"
	"unicode/utf8"

	"mailvault/indexer/mime"
	"mailvault/query"
)

// snippetTerms collects the words a query looks for in text, lower-cased:
// the values of its positive text keys (words, phrases, prefixes,
// substrings), not those under a NOT.
func snippetTerms(n query.Node, neg bool, out *[]string) {
	switch n := n.(type) {
	case query.And:
		for _, c := range n.Nodes {
			snippetTerms(c, neg, out)
		}
	case query.Or:
		for _, c := range n.Nodes {
			snippetTerms(c, neg, out)
		}
	case query.Not:
		snippetTerms(n.Node, !neg, out)
	case query.Text:
		if neg {
			return
		}
		for _, w := range strings.Fields(strings.ToLower(n.Value)) {
			if w = strings.TrimRight(w, "*"); utf8.RuneCountInString(w) >= 2 {
				*out = append(*out, w)
			}
		}
	}
}

// snippet cuts about width runes of text around the first match of a term,
// and marks every match in it. The result is escaped HTML.
func snippet(text string, terms []string, width int) template.HTML {
	text = strings.Join(strings.Fields(text), " ")
	lower := strings.ToLower(text)
	if len(lower) != len(text) { // case mapping changed byte lengths: match without marking
		return template.HTML(template.HTMLEscapeString(clipRunes(text, width)))
	}
	first := -1
	for _, t := range terms {
		if i := strings.Index(lower, t); i >= 0 && (first < 0 || i < first) {
			first = i
		}
	}
	start := 0
	if first > width/3 {
		start = first - width/3
		for start < len(text) && !utf8.RuneStart(text[start]) {
			start++
		}
		// Begin at a word.
		if i := strings.IndexFunc(text[start:], unicode.IsSpace); i >= 0 && i < 20 {
			start += i + 1
		}
	}
	end := len(text)
	if n := 0; true {
		for i := range text[start:] {
			if n == width {
				end = start + i
				break
			}
			n++
		}
	}
	seg, segLower := text[start:end], lower[start:end]
	var b strings.Builder
	if start > 0 {
		b.WriteString("… ")
	}
	for pos := 0; pos < len(seg); {
		at, term := -1, ""
		for _, t := range terms {
			if i := strings.Index(segLower[pos:], t); i >= 0 && (at < 0 || i < at) {
				at, term = i, t
			}
		}
		if at < 0 {
			b.WriteString(template.HTMLEscapeString(seg[pos:]))
			break
		}
		b.WriteString(template.HTMLEscapeString(seg[pos : pos+at]))
		b.WriteString("<mark>" + template.HTMLEscapeString(seg[pos+at:pos+at+len(term)]) + "</mark>")
		pos += at + len(term)
	}
	if end < len(text) {
		b.WriteString(" …")
	}
	return template.HTML(b.String())
}

func clipRunes(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i] + " …"
		}
		n--
	}
	return s
}

// snippetOf returns the snippet of a message's text for terms.
func snippetOf(raw []byte, terms []string) template.HTML {
	// Only the start of the text is needed: bound what is decoded too.
	m := mime.Parse(raw, &mime.Limits{MaxTextBytes: 64 << 10, MaxDecodedBytes: 256 << 10})
	return snippet(m.Text, terms, 220)
}
