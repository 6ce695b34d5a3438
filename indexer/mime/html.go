package mime

import (
	"bytes"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// appendHTMLText appends the text of the UTF-8 HTML src to dst: entities
// decoded, script, style, title and template content dropped, whitespace
// collapsed as a browser would (except in <pre>), and block elements turned
// into line breaks.
func appendHTMLText(dst, src []byte) []byte {
	w := textWriter{dst: dst, base: len(dst)}
	w.html(src, false)
	return w.dst
}

// html writes the text of src. The tokenizer returns the content of
// <noscript> and <noframes> as raw text; it is parsed as HTML in turn, but
// only one level deep (nested), which keeps the work linear.
func (w *textWriter) html(src []byte, nested bool) {
	z := html.NewTokenizer(bytes.NewReader(src))
	skip, pre := 0, 0
	reparse := false
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			return
		case html.TextToken:
			switch {
			case skip > 0:
			case reparse:
				w.html(z.Text(), true)
			default:
				w.text(z.Text(), pre > 0)
			}
		case html.StartTagToken, html.EndTagToken, html.SelfClosingTagToken:
			name, _ := z.TagName()
			a := atom.Lookup(name)
			switch a {
			case atom.Noscript, atom.Noframes:
				if nested {
					a = atom.Script // skip: do not recurse again
				} else {
					reparse = tt == html.StartTagToken
					w.breakLine(1)
					continue
				}
			}
			switch a {
			case atom.Script, atom.Style, atom.Title, atom.Template, atom.Iframe, atom.Noembed:
				w.space = w.space || a == atom.Iframe
				if tt == html.StartTagToken {
					skip++
				} else if tt == html.EndTagToken && skip > 0 {
					skip--
				}
			case atom.Pre, atom.Textarea, atom.Listing, atom.Xmp:
				if tt == html.StartTagToken {
					pre++
				} else if tt == html.EndTagToken && pre > 0 {
					pre--
				}
				w.breakLine(1)
			case atom.Br:
				w.lineBreak()
			case atom.P, atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6,
				atom.Table, atom.Blockquote, atom.Ul, atom.Ol, atom.Dl, atom.Hr:
				w.breakLine(2)
			case atom.Div, atom.Tr, atom.Li, atom.Dt, atom.Dd, atom.Section, atom.Article,
				atom.Header, atom.Footer, atom.Nav, atom.Aside, atom.Main, atom.Form,
				atom.Address, atom.Center, atom.Caption, atom.Figure, atom.Figcaption,
				atom.Fieldset, atom.Legend, atom.Details, atom.Summary, atom.Option,
				atom.Body, atom.Html, atom.Frame:
				w.breakLine(1)
			case atom.Td, atom.Th, atom.Img, atom.Input, atom.Button, atom.Select:
				w.space = true
			}
		}
	}
}

// textWriter collapses whitespace lazily: blanks and line breaks are only
// written before the next visible character.
type textWriter struct {
	dst   []byte
	base  int  // len(dst) when the writer started
	nl    int  // pending line breaks
	space bool // pending blank
}

func (w *textWriter) breakLine(n int) {
	if w.nl < n {
		w.nl = n
	}
}

// lineBreak adds a <br>: consecutive ones stack up to one blank line.
func (w *textWriter) lineBreak() {
	if w.nl < 2 {
		w.nl++
	}
}

func (w *textWriter) flush() {
	if len(w.dst) == w.base {
		w.nl, w.space = 0, false
		return
	}
	switch {
	case w.nl > 0:
		for ; w.nl > 0; w.nl-- {
			w.dst = append(w.dst, '\n')
		}
	case w.space:
		w.dst = append(w.dst, ' ')
	}
	w.nl, w.space = 0, false
}

func (w *textWriter) text(t []byte, pre bool) {
	for i := 0; i < len(t); {
		c := t[i]
		if c < utf8.RuneSelf {
			switch c {
			case '\n':
				if pre {
					w.lineBreak()
				} else {
					w.space = true
				}
			case ' ', '\t', '\r', '\f', '\v':
				if pre && c != '\r' {
					w.flush()
					w.dst = append(w.dst, c)
				} else {
					w.space = true
				}
			default:
				w.flush()
				w.dst = append(w.dst, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(t[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			w.flush()
			w.dst = append(w.dst, "\uFFFD"...)
		case r == '\u00A0' || r == '\u200B' || r == '\uFEFF' || unicode.IsSpace(r):
			w.space = true
		default:
			w.flush()
			w.dst = append(w.dst, t[i:i+n]...)
		}
		i += n
	}
}
