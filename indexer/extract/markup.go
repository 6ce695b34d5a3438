package extract

// Markup attachments: XML, HTML, iCalendar (.ics) and vCard (.vcf).
//
// Decisions (docs/design.md, "Attachment text" → "Containers"):
//   - XML: character data only, each run a separate piece of text (element
//     boundaries become spaces), whitespace collapsed. encoding/xml with
//     Strict off and RawToken: no namespace work, no matching of end tags
//     to start tags (a deeply nested document costs its size, not a stack
//     of names), and no DTD: an entity the document declares is never
//     expanded (encoding/xml does not read internal subsets), so a
//     billion-laughs file yields its few literal "&lol9;" references, not
//     3 GB. Only the five predefined entities and character references are
//     decoded. A declared non-UTF-8 encoding is honoured.
//   - HTML: golang.org/x/net/html's tokenizer (no tree is built, so
//     nesting costs nothing), text outside script/style/template, the
//     title, and img/area/input alt text. The charset comes from the
//     document's own meta or BOM, else UTF-8, else Windows-1252.
//   - ICS and VCF: the content lines RFC 5545 and RFC 6350 define,
//     unfolded, with the properties people search for; parameter values
//     (CN=) and mailto: addresses of organizers and attendees; dates
//     written as 2024-03-01 10:00 so that a search for the day finds them.
//     vCard 2.1's QUOTED-PRINTABLE and CHARSET parameters are decoded.

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"mime/quotedprintable"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
	"golang.org/x/net/html/charset"
)

func init() {
	register("xml", extractXML)
	register("html", extractHTML)
	register("ics", extractICS)
	register("vcf", extractVCF)
}

// aliveEvery is how many tokens or lines a markup extractor reads between
// checks of the deadline.
const aliveEvery = 1024

// collapse makes each run of ASCII white space one space and trims the
// ends, in one pass; s itself when it needs nothing (most character data:
// single spaces between words). strings.Fields+Join was a quarter of the
// XML extractor's time.
func collapse(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; asciiSpace(c) && (c != ' ' || i == 0 || i == len(s)-1 || s[i+1] == ' ') {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	b := make([]byte, 0, len(s))
	space := false
	for i := 0; i < len(s); i++ {
		if asciiSpace(s[i]) {
			space = len(b) > 0
			continue
		}
		if space {
			b = append(b, ' ')
			space = false
		}
		b = append(b, s[i])
	}
	return string(b)
}

func asciiSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

func extractXML(j *Job, data []byte) error {
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = false
	d.CharsetReader = charset.NewReaderLabel
	for n := 0; ; n++ {
		if n%aliveEvery == 0 {
			if err := j.Alive(); err != nil {
				return err
			}
		}
		t, err := d.RawToken()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("xml: %w", err)
		}
		if c, ok := t.(xml.CharData); ok {
			if err := j.Text(collapse(string(c))); err != nil {
				return err
			}
		}
	}
}

func extractHTML(j *Job, data []byte) error {
	r := io.Reader(bytes.NewReader(data))
	if e, name, _ := charset.DetermineEncoding(data[:min(len(data), 1024)], "text/html"); name != "utf-8" {
		r = e.NewDecoder().Reader(r)
	}
	z := html.NewTokenizer(r)
	skip := 0 // inside script, style or template: how deep
	for n := 0; ; n++ {
		if n%aliveEvery == 0 {
			if err := j.Alive(); err != nil {
				return err
			}
		}
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			if err := z.Err(); err != io.EOF {
				return fmt.Errorf("html: %w", err)
			}
			return nil
		case html.TextToken:
			if skip == 0 {
				if err := j.Text(collapse(string(z.Text()))); err != nil {
					return err
				}
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			a := atom.Lookup(name)
			switch a {
			case atom.Script, atom.Style, atom.Template:
				// The tokenizer reads a script's or style's body as
				// raw text up to its end tag, "/>" or not (as browsers
				// do); a self-closing template has no body.
				if tt == html.StartTagToken || a != atom.Template {
					skip++
				}
			case atom.Img, atom.Area, atom.Input:
				for hasAttr {
					var k, v []byte
					k, v, hasAttr = z.TagAttr()
					if string(k) == "alt" && skip == 0 {
						if err := j.Text(collapse(string(v))); err != nil {
							return err
						}
					}
				}
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			switch atom.Lookup(name) {
			case atom.Script, atom.Style, atom.Template:
				if skip > 0 {
					skip--
				}
			}
		}
	}
}

// contentLine is one unfolded line of an iCalendar or vCard file:
// NAME;PARAM=VALUE;…:VALUE, the name uppercased without its group.
type contentLine struct {
	name   string
	params map[string][]string // uppercased names; values unquoted
	value  string
}

// contentLines unfolds data (a line that begins with a space or a tab
// continues the one before) and splits it into content lines, calling fn
// for each; vCard 2.1's quoted-printable soft line breaks ("=" at the end)
// join the next line too.
func contentLines(j *Job, data []byte, fn func(contentLine) error) error {
	// Line by line, not strings.Split: a file of newlines would be a
	// slice of millions of strings.
	rest := strings.ToValidUTF8(string(data), "\uFFFD")
	var cur strings.Builder
	flush := func() error {
		s := cur.String()
		cur.Reset()
		if s == "" {
			return nil
		}
		if l, ok := parseContentLine(s); ok {
			return fn(l)
		}
		return nil
	}
	for i := 0; rest != ""; i++ {
		line := rest
		if nl := strings.IndexByte(rest, '\n'); nl >= 0 {
			line, rest = rest[:nl], rest[nl+1:]
		} else {
			rest = ""
		}
		if i%aliveEvery == 0 {
			if err := j.Alive(); err != nil {
				return err
			}
		}
		line = strings.TrimSuffix(line, "\r")
		switch {
		case line != "" && (line[0] == ' ' || line[0] == '\t') && cur.Len() > 0:
			cur.WriteString(line[1:])
			continue
		case cur.Len() > 0 && strings.HasSuffix(cur.String(), "=") && qpLine(cur.String()):
			cur.WriteString("\r\n") // quotedprintable reads "=\r\n" as a soft break
			cur.WriteString(line)
			continue
		}
		if err := flush(); err != nil {
			return err
		}
		cur.WriteString(line)
	}
	return flush()
}

// qpLine reports whether s is a content line whose value is quoted-
// printable (vCard 2.1: ENCODING=QUOTED-PRINTABLE, or the bare parameter).
func qpLine(s string) bool {
	colon := strings.IndexByte(s, ':')
	if colon < 0 {
		return false
	}
	return strings.Contains(strings.ToUpper(s[:colon]), "QUOTED-PRINTABLE")
}

func parseContentLine(s string) (contentLine, bool) {
	var l contentLine
	// The name and parameters end at the first colon outside quotes.
	inq, end := false, -1
	for i := 0; i < len(s) && end < 0; i++ {
		switch s[i] {
		case '"':
			inq = !inq
		case ':':
			if !inq {
				end = i
			}
		}
	}
	if end <= 0 {
		return l, false
	}
	l.value = s[end+1:]
	parts := splitOutsideQuotes(s[:end], ';')
	l.name = strings.ToUpper(parts[0])
	if dot := strings.LastIndexByte(l.name, '.'); dot >= 0 {
		l.name = l.name[dot+1:] // item1.EMAIL
	}
	l.params = map[string][]string{}
	for _, p := range parts[1:] {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			l.params[strings.ToUpper(k)] = nil // vCard 2.1: a bare QUOTED-PRINTABLE, or a TYPE
			continue
		}
		k = strings.ToUpper(k)
		for _, x := range splitOutsideQuotes(v, ',') {
			l.params[k] = append(l.params[k], strings.Trim(x, `"`))
		}
	}
	if _, bare := l.params["QUOTED-PRINTABLE"]; bare || strings.EqualFold(first(l.params["ENCODING"]), "QUOTED-PRINTABLE") {
		if b, err := io.ReadAll(quotedprintable.NewReader(strings.NewReader(l.value))); err == nil || len(b) > 0 {
			l.value = string(b)
		}
	}
	if cs := first(l.params["CHARSET"]); cs != "" && !strings.EqualFold(cs, "utf-8") {
		if e, _ := charset.Lookup(cs); e != nil {
			if b, err := e.NewDecoder().String(l.value); err == nil {
				l.value = b
			}
		}
	}
	return l, true
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

func splitOutsideQuotes(s string, sep byte) []string {
	var out []string
	inq, start := false, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			inq = !inq
		case sep:
			if !inq {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

// unescapeText undoes RFC 5545/6350 TEXT escaping: \n, \, \; \\.
func unescapeText(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
			switch s[i] {
			case 'n', 'N':
				b.WriteByte('\n')
			default:
				b.WriteByte(s[i])
			}
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// icsDate writes 20240301T100000Z as "2024-03-01 10:00" and 20240301 as
// "2024-03-01"; anything else as it is.
func icsDate(v string) string {
	digits := func(s string) bool {
		for i := 0; i < len(s); i++ {
			if s[i] < '0' || s[i] > '9' {
				return false
			}
		}
		return true
	}
	if len(v) < 8 || !digits(v[:8]) {
		return v
	}
	d := v[:4] + "-" + v[4:6] + "-" + v[6:8]
	if len(v) >= 13 && v[8] == 'T' && digits(v[9:13]) {
		d += " " + v[9:11] + ":" + v[11:13]
	}
	return d
}

// person writes an organizer's or attendee's CN and address.
func person(j *Job, l contentLine) error {
	if err := j.Text(collapse(first(l.params["CN"]))); err != nil {
		return err
	}
	v := l.value
	if len(v) >= 7 && strings.EqualFold(v[:7], "mailto:") {
		v = v[7:]
	}
	return j.Text(collapse(v))
}

func extractICS(j *Job, data []byte) error {
	seen := false
	err := contentLines(j, data, func(l contentLine) error {
		switch l.name {
		case "BEGIN":
			seen = true
		case "SUMMARY", "DESCRIPTION", "LOCATION", "COMMENT", "CATEGORIES", "CONTACT", "RESOURCES":
			return j.Text(collapse(unescapeText(l.value)))
		case "ORGANIZER", "ATTENDEE":
			return person(j, l)
		case "DTSTART", "DTEND", "DUE", "RECURRENCE-ID":
			return j.Text(icsDate(l.value))
		}
		return nil
	})
	if err == nil && !seen {
		return errors.New("ics: no BEGIN line: not an iCalendar file")
	}
	return err
}

func extractVCF(j *Job, data []byte) error {
	seen := false
	err := contentLines(j, data, func(l contentLine) error {
		switch l.name {
		case "BEGIN":
			seen = true
		case "FN", "TITLE", "EMAIL", "TEL", "NOTE", "NICKNAME", "ROLE":
			return j.Text(collapse(unescapeText(l.value)))
		case "N", "ORG", "ADR":
			// Structured: components separated by ';'.
			return j.Text(collapse(unescapeText(strings.ReplaceAll(l.value, ";", " "))))
		}
		return nil
	})
	if err == nil && !seen {
		return errors.New("vcf: no BEGIN line: not a vCard file")
	}
	return err
}
