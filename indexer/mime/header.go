package mime

import (
	"bytes"
	"strings"
)

// field is one header field as read: the name trimmed, the value still
// folded and undecoded (it may hold raw 8-bit bytes).
type field struct {
	name  string
	value string
}

func fieldValue(fields []field, name string) (string, bool) {
	for _, f := range fields {
		if strings.EqualFold(f.name, name) {
			return f.value, true
		}
	}
	return "", false
}

// span locates one field in a header block.
type span struct{ ns, ne, vs, ve int }

// readHeader splits data into its header fields and its body. It never
// fails: lines that are not fields are skipped or taken as the start of the
// body, and a block over MaxHeaderBytes is cut.
func (p *parser) readHeader(data []byte, where string, top bool) ([]field, []byte) {
	start := 0
	if top && bytes.HasPrefix(data, []byte("From ")) && !isFieldLine(data) {
		// mbox separator line.
		if j := bytes.IndexByte(data, '\n'); j >= 0 {
			start = j + 1
		} else {
			start = len(data)
		}
	}
	var buf [32]span
	spans := buf[:0]
	n := len(data)
	end, body := n, n
	skipping := false // inside a skipped malformed line and its continuations
	for i := start; i < n; {
		lineEnd, next := n, n
		if j := bytes.IndexByte(data[i:], '\n'); j >= 0 {
			lineEnd, next = i+j, i+j+1
		}
		le := lineEnd
		if le > i && data[le-1] == '\r' {
			le--
		}
		if le == i {
			end, body = i, next
			break
		}
		if le-start > p.lim.MaxHeaderBytes {
			// The line would cross the limit: drop it and the rest.
			p.limit("header bytes > %d in %s", p.lim.MaxHeaderBytes, where)
			end, body = i, n
			if k := blankLine(data, i); k >= 0 {
				body = k
			}
			break
		}
		if c := data[i]; c == ' ' || c == '\t' {
			switch {
			case skipping:
			case len(spans) > 0:
				spans[len(spans)-1].ve = le
			default:
				p.problem("malformed line in %s", where)
				skipping = true
			}
			i = next
			continue
		}
		if ne, vs, ok := fieldStart(data[i:le]); ok {
			spans = append(spans, span{i, i + ne, i + vs, le})
			skipping = false
			i = next
			continue
		}
		if next < n && isFieldLine(data[next:]) {
			p.problem("malformed line in %s", where)
			skipping = true
			i = next
			continue
		}
		switch {
		case len(spans) > 0:
			p.problem("missing blank line after %s", where)
		case top:
			p.problem("no header fields found")
		default:
			p.problem("missing %s", where)
		}
		end, body = i, i
		break
	}
	if len(spans) == 0 {
		return nil, data[body:]
	}
	// One string for the whole block; names and values are substrings.
	block := string(data[start:end])
	fields := make([]field, len(spans))
	for k, s := range spans {
		fields[k] = field{
			name:  trimWSP(block[s.ns-start : s.ne-start]),
			value: block[s.vs-start : s.ve-start],
		}
	}
	return fields, data[body:]
}

// fieldStart reports whether line starts a header field, returning the end
// of the name and the start of the value.
func fieldStart(line []byte) (nameEnd, valueStart int, ok bool) {
	i := 0
	for i < len(line) && line[i] != ':' {
		c := line[i]
		if c <= ' ' || c > '~' {
			break
		}
		i++
	}
	nameEnd = i
	// Tolerate "Subject : x".
	for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
		i++
	}
	if nameEnd == 0 || i >= len(line) || line[i] != ':' {
		return 0, 0, false
	}
	return nameEnd, i + 1, true
}

func isFieldLine(b []byte) bool {
	if j := bytes.IndexByte(b, '\n'); j >= 0 {
		b = b[:j]
	}
	_, _, ok := fieldStart(b)
	return ok
}

// blankLine returns the offset just after the first empty line in data at
// or after from, or -1.
func blankLine(data []byte, from int) int {
	for i := from; i < len(data); {
		j := bytes.IndexByte(data[i:], '\n')
		if j < 0 {
			return -1
		}
		i += j + 1
		if i < len(data) && data[i] == '\n' {
			return i + 1
		}
		if i+1 < len(data) && data[i] == '\r' && data[i+1] == '\n' {
			return i + 2
		}
	}
	return -1
}

func trimWSP(s string) string {
	i, j := 0, len(s)
	for i < j && isWSP(s[i]) {
		i++
	}
	for j > i && isWSP(s[j-1]) {
		j--
	}
	return s[i:j]
}

func isWSP(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n'
}

// unfold removes the line breaks of a folded value and trims it.
func unfold(v string) string {
	if strings.IndexByte(v, '\n') < 0 && strings.IndexByte(v, '\r') < 0 {
		return trimWSP(v)
	}
	b := make([]byte, 0, len(v))
	for i := 0; i < len(v); i++ {
		if c := v[i]; c != '\r' && c != '\n' {
			b = append(b, c)
		}
	}
	return trimWSP(string(b))
}

// hdrText makes an unfolded header value valid UTF-8, decoding raw 8-bit
// bytes with the message's charset or windows-1252.
func (p *parser) hdrText(v string) string {
	if isASCII(v) {
		return v
	}
	if validUTF8(v) {
		return v
	}
	cs := p.headerCharset()
	if !p.warned8bit {
		p.warned8bit = true
		name := cs
		if name == "" {
			name = "windows-1252"
		}
		p.problem("raw 8-bit header bytes decoded as %s", name)
	}
	return string(p.toUTF8(nil, cs, []byte(v), "message header"))
}

// decodeValue unfolds and decodes an unstructured header value.
func (p *parser) decodeValue(f field) string {
	return p.decodeHeader(p.hdrText(unfold(f.value)), f.name)
}

// decodeHeader decodes the encoded words of the UTF-8 value of field name.
func (p *parser) decodeHeader(v, name string) string {
	if !strings.Contains(v, "=?") {
		return v
	}
	return p.decodeWords(v, "header "+name)
}

// entityKind says what an entity is to its parent.
type entityKind int

const (
	entityTop     entityKind = iota // the message itself
	entityPart                      // a part of a multipart
	entityMessage                   // the message inside a message/rfc822 part
)

// entity is a MIME entity whose header has been read.
type entity struct {
	path      string // IMAP part number; "" for the message itself
	depth     int
	fields    []field
	body      []byte // raw, still transfer-encoded
	mediaType string // lowercased
	params    []param
	cte       string // lowercased transfer encoding
	disp      string // lowercased disposition type
	dparams   []param
}

func (e *entity) where() string {
	if e.path == "" {
		return "message body"
	}
	return "part " + e.path
}

// readEntity reads the header of an entity. It returns nil when the parts
// limit stops the walk.
func (p *parser) readEntity(data []byte, path string, depth int, defType string, kind entityKind) *entity {
	if kind != entityMessage {
		if p.m.Parts >= p.lim.MaxParts {
			p.limit("parts > %d", p.lim.MaxParts)
			return nil
		}
		p.m.Parts++
	}
	e := &entity{path: path, depth: depth, mediaType: defType}
	var haveType bool
	where := "message header"
	if path != "" {
		where = "header of part " + path
	}
	e.fields, e.body = p.readHeader(data, where, kind == entityTop)
	for _, f := range e.fields {
		switch {
		case !haveType && strings.EqualFold(f.name, "Content-Type"):
			haveType = true
			mt, params := p.parseValue(unfold(f.value), e.where())
			if i := strings.IndexByte(mt, '/'); i > 0 && i < len(mt)-1 {
				e.mediaType = mt
			} else if mt != "" {
				p.problem("invalid content type %s in %s", quote(mt), e.where())
			}
			e.params = params
		case e.cte == "" && strings.EqualFold(f.name, "Content-Transfer-Encoding"):
			e.cte = transferEncoding(f.value)
		case e.disp == "" && strings.EqualFold(f.name, "Content-Disposition"):
			e.disp, e.dparams = p.parseValue(unfold(f.value), e.where())
		}
	}
	return e
}

// headerCharset returns the charset for raw 8-bit header bytes: the one of
// the message's Content-Type, else the first legacy charset named by an
// encoded word in the message header, else "" (windows-1252).
func (p *parser) headerCharset() string {
	if p.hdrCharsetDone || p.top == nil {
		return p.hdrCharset
	}
	p.hdrCharsetDone = true
	if cs := normCharset(paramValue(p.top.params, "charset")); !isUTF8Charset(cs) && knownCharset(cs) {
		p.hdrCharset = cs
		return cs
	}
	for _, f := range p.top.fields {
		i := strings.Index(f.value, "=?")
		if i < 0 {
			continue
		}
		cs, _, _, _, ok := encodedWord(f.value, i, len(f.value))
		if cs = normCharset(cs); ok && !isUTF8Charset(cs) && knownCharset(cs) {
			p.hdrCharset = cs
			break
		}
	}
	return p.hdrCharset
}

func transferEncoding(v string) string {
	v = unfold(v)
	if i := strings.IndexAny(v, " \t;("); i >= 0 {
		v = v[:i]
	}
	v = strings.Trim(v, `"'`)
	return strings.ToLower(v)
}

// envelope fills the Message fields that come from the top-level header.
func (p *parser) envelope(e *entity) {
	m := p.m
	m.Headers = make([]Header, 0, len(e.fields))
	var haveSubject, haveDate, haveID bool
	for _, f := range e.fields {
		if p.lim.Fields != nil && !p.lim.Fields(f.name) {
			continue
		}
		text := p.hdrText(unfold(f.value))
		v := p.decodeHeader(text, f.name)
		m.Headers = append(m.Headers, Header{Key: f.name, Value: v})
		name := f.name
		switch {
		case strings.EqualFold(name, "Subject"):
			if !haveSubject {
				m.Subject, haveSubject = v, true
			}
		case strings.EqualFold(name, "From"):
			m.From = append(m.From, p.addressField(text, name)...)
		case strings.EqualFold(name, "To"):
			m.To = append(m.To, p.addressField(text, name)...)
		case strings.EqualFold(name, "Cc"):
			m.Cc = append(m.Cc, p.addressField(text, name)...)
		case strings.EqualFold(name, "Bcc"):
			m.Bcc = append(m.Bcc, p.addressField(text, name)...)
		case strings.EqualFold(name, "Reply-To"):
			m.ReplyTo = append(m.ReplyTo, p.addressField(text, name)...)
		case strings.EqualFold(name, "Sender"):
			m.Sender = append(m.Sender, p.addressField(text, name)...)
		case strings.EqualFold(name, "Date"):
			if !haveDate && text != "" {
				haveDate = true
				if t, ok := parseDate(text); ok {
					m.Date = t
				} else {
					p.problem("unparseable date %s", quote(text))
				}
			}
		case strings.EqualFold(name, "Message-Id"):
			if !haveID {
				if ids := msgIDs(text, false); len(ids) > 0 {
					m.MessageID, haveID = ids[0], true
				}
			}
		case strings.EqualFold(name, "In-Reply-To"):
			m.InReplyTo = append(m.InReplyTo, msgIDs(text, true)...)
		case strings.EqualFold(name, "References"):
			m.References = append(m.References, msgIDs(text, true)...)
		}
	}
}

func (p *parser) addressField(text, name string) []Address {
	list, ok := p.parseAddressList(text, "header "+name)
	if !ok {
		p.problem("malformed address in %s: %s", name, quote(text))
	}
	return list
}

// msgIDs extracts message IDs: every <...>, or when there is none the
// whitespace-separated words (only those with an "@" when loose).
func msgIDs(s string, loose bool) []string {
	var ids []string
	rest := s
	for {
		i := strings.IndexByte(rest, '<')
		if i < 0 {
			break
		}
		j := strings.IndexByte(rest[i+1:], '>')
		if j < 0 {
			break
		}
		if id := trimWSP(rest[i+1 : i+1+j]); id != "" {
			ids = append(ids, id)
		}
		rest = rest[i+1+j+1:]
	}
	if ids != nil || strings.IndexByte(s, '<') >= 0 {
		return ids
	}
	for _, w := range strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '\t' || r == ',' }) {
		if !loose || strings.IndexByte(w, '@') > 0 {
			ids = append(ids, w)
		}
		if !loose {
			break
		}
	}
	return ids
}
