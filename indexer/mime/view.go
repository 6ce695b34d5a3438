package mime

import (
	"bufio"
	"bytes"
	"io"
	"mime"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
	"github.com/emersion/go-message/textproto"
	"golang.org/x/text/unicode/norm"
)

// View is a message as IMAP SEARCH sees it, with every string case-folded
// (Unicode full case folding, like the i;unicode-casemap comparator), so
// that a case-insensitive substring test is strings.Contains of the folded
// needle. It follows what Dovecot without an FTS plugin searches:
//
//   - Headers: the top-level header fields, unfolded and RFC 2047-decoded.
//   - Body: every text/* part (and a message without Content-Type),
//     decoded from its transfer encoding and charset to UTF-8, HTML as it
//     is (tags and all), in order; other parts are not searched.
//   - HeaderText ("Key: value" lines of the top-level header) and
//     PartHeaders (those of nested MIME parts): with Body, what TEXT
//     searches, each on its own (a match does not span two of them).
type View struct {
	Headers []Header // Key as written, Value folded
	// Addresses are the From, To, Cc and Bcc fields as Dovecot searches
	// them: parsed and written back as `name <local@domain>, ...` (names
	// quoted when they are not atoms), then decoded.
	Addresses []Header
	// Subjects are the Subject fields with runs of blanks made one space
	// before decoding, as Dovecot searches them.
	Subjects    []string
	HeaderText  string
	Body        string
	PartHeaders string
	Size        int // bytes held, for caches
}

// TextContains reports whether the folded needle is in the header block,
// the body or the nested parts' headers (IMAP TEXT).
func (v *View) TextContains(needle string) bool {
	return strings.Contains(v.HeaderText, needle) || strings.Contains(v.Body, needle) || strings.Contains(v.PartHeaders, needle)
}

// Fold case-folds s as View does, the way Dovecot's i;unicode-casemap
// comparator does: each character's simple titlecase mapping, then
// compatibility decomposition (NFKD). So "ＦＲＥＥ" matches "free" and "café"
// contains "cafe", but "ß" stays "ß" ("GRÜSSE" does not match "grüße"). The
// result is for comparing, not for showing. Invalid UTF-8 sequences become
// U+FFFD.
func Fold(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		return strings.ToUpper(s)
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return norm.NFKD.String(strings.Map(unicode.ToTitle, s))
}

var viewWordDecoder = &mime.WordDecoder{CharsetReader: charset.Reader}

// NewView builds the View of raw. It never fails: what cannot be decoded
// is searched as it is.
func NewView(raw []byte) *View {
	v := &View{}
	// Line ends as Dovecot has them on disk by default (mail_save_crlf=no):
	// LF. A server sends CRLF and the archive keeps those bytes; Dovecot
	// searches its LF file, so BODY "words\n" finds a line end there and
	// "words\r\n" finds none (issue 13, found by the generated queries).
	// CRLF inside base64 content is decoded later and stays as it is.
	if bytes.Contains(raw, []byte("\r\n")) {
		raw = bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n"))
	}
	var text, body, partHeaders strings.Builder
	br := bufio.NewReader(bytes.NewReader(raw))
	hdr, err := textproto.ReadHeader(br)
	if err != nil && hdr.Len() == 0 {
		v.Body = Fold(string(raw))
		v.Size = len(v.Body)
		return v
	}
	fields := hdr.Fields()
	for fields.Next() {
		middle, rawVal := rawField(fields)
		val := rawVal
		if dec, derr := viewWordDecoder.DecodeHeader(val); derr == nil {
			val = dec
		}
		val = Fold(val)
		v.Headers = append(v.Headers, Header{Key: fields.Key(), Value: val})
		text.WriteString(Fold(fields.Key()))
		text.WriteString(middle)
		text.WriteString(val)
		text.WriteString("\r\n") // TEXT: Dovecot searches header lines joined by CRLF
		switch strings.ToLower(fields.Key()) {
		case "from", "to", "cc", "bcc":
			v.Addresses = append(v.Addresses, Header{Key: fields.Key(), Value: Fold(writeAddresses(rawVal))})
		case "subject":
			val := compressLWSP(strings.TrimLeft(rawVal, " \t"))
			if dec, derr := viewWordDecoder.DecodeHeader(val); derr == nil {
				val = dec
			}
			v.Subjects = append(v.Subjects, Fold(val))
		}
	}
	walkText(hdr, br, 0, &body, &partHeaders)
	v.Body = body.String()
	v.HeaderText = text.String()
	v.PartHeaders = partHeaders.String()
	v.Size = len(v.HeaderText) + len(v.Body) + len(v.PartHeaders) + 64*len(v.Headers)
	for _, h := range v.Headers {
		v.Size += len(h.Key) + len(h.Value)
	}
	return v
}

// walkText appends the folded text/* parts of the entity (h, body) to out
// and the headers of nested parts to headers. Transfer encodings are
// decoded leniently (a bad quoted-printable escape stays as it is, as
// Dovecot keeps it), then the charset; what cannot be converted is kept.
func walkText(h textproto.Header, body io.Reader, depth int, out, headers *strings.Builder) {
	if depth > defaultMaxDepth {
		return
	}
	if depth > 0 {
		fields := h.Fields()
		for fields.Next() {
			middle, val := rawField(fields)
			headers.WriteString(Fold(fields.Key() + middle + val))
			headers.WriteString("\r\n")
		}
	}
	mt, params, ok := viewContentType(h)
	if !ok {
		// Present but not "type/subtype" followed by the end or ";"
		// ("text/plain charset=x", "multipart/alternative boundary=b",
		// "text", empty): Dovecot searches such a part as no text at all,
		// and so does the view (issue 13, found by the generated queries).
		return
	}
	switch {
	case strings.HasPrefix(mt, "multipart/") && params["boundary"] != "":
		mr := textproto.NewMultipartReader(body, params["boundary"])
		for {
			p, err := mr.NextPart()
			if err != nil {
				return
			}
			walkText(p.Header, p, depth+1, out, headers)
		}
	case mt == "message/rfc822":
		br := bufio.NewReader(body)
		inner, err := textproto.ReadHeader(br)
		if err != nil {
			return
		}
		walkText(inner, br, depth+1, out, headers)
	case strings.HasPrefix(mt, "text/") || strings.HasPrefix(mt, "message/"):
		// message/* other than rfc822 (delivery-status,
		// disposition-notification) is text to Dovecot's search too
		// (issue 13: "Reporting-MTA" in a bounce).
		out.WriteString(Fold(string(decodeText(h, params, body))))
	}
}

// decodeText reads a text part's body, decoded from its transfer encoding
// (leniently) and its charset to UTF-8 when it can be.
func decodeText(h textproto.Header, params map[string]string, body io.Reader) []byte {
	raw, _ := io.ReadAll(io.LimitReader(body, defaultMaxDecodedBytes))
	switch strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding"))) {
	case "quoted-printable":
		// Blanks at the end of a line are transport padding (RFC 2045
		// 6.7 rule 3): deleted, as Dovecot's decoder does, so BODY "etc. "
		// does not find "etc. " at a line end (issue 13).
		raw = appendQP(nil, trimLineEnds(raw), -1)
	case "base64":
		raw = appendBase64(nil, raw, -1)
	}
	// Charset names as iconv (Dovecot's converter) knows them: its aliases
	// (ks_c_5601-1987 is EUC-KR/CP949, cp1252 windows-1252, ...), which
	// golang.org/x/text lacks; normCharset maps them (issue 13: the
	// generated queries found Korean spam searched undecoded).
	if cs := normCharset(params["charset"]); cs != "" && cs != "utf-8" && cs != "us-ascii" {
		if r, err := charset.Reader(cs, bytes.NewReader(raw)); err == nil {
			if conv, err := io.ReadAll(r); err == nil {
				raw = conv
			}
		}
	}
	return raw
}

// trimLineEnds removes the spaces and tabs before every line end.
func trimLineEnds(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for len(b) > 0 {
		line, rest, found := bytes.Cut(b, []byte("\n"))
		line = bytes.TrimRight(line, " \t")
		out = append(out, line...)
		if found {
			out = append(out, '\n')
		}
		b = rest
	}
	return out
}

// rawField splits the current field as written into its middle (the colon
// and at most one blank after it, as written) and its value (the rest,
// unfolded by unfoldKeep). This is how Dovecot's header parser cuts a
// field, and what its search sees: HEADER searches the value, so
// "X-A:   v" has the value "  v"; TEXT searches name + middle + value, so
// "X-Empty:" holds "x-empty:" but not "x-empty: " (found by the generated
// queries, issue 13).
func rawField(f textproto.HeaderFields) (middle, value string) {
	raw, err := f.Raw()
	if err != nil {
		return ": ", unfoldKeep(f.Value())
	}
	v := string(raw)
	i := strings.IndexByte(v, ':')
	if i < 0 {
		return ": ", unfoldKeep(v)
	}
	v = unfoldKeep(v[i+1:])
	middle = ":"
	if v != "" && (v[0] == ' ' || v[0] == '\t') {
		middle, v = ":"+v[:1], v[1:]
	}
	return middle, v
}

// unfoldKeep removes the line breaks of a folded value, keeping the blanks
// (what IMAP servers search), except that a tab starting a continuation
// line becomes a space, as Dovecot's header parser unfolds:
// "a\n\t\tb" is "a \tb", "a\n  b" is "a  b".
func unfoldKeep(v string) string {
	if strings.IndexByte(v, '\n') < 0 && strings.IndexByte(v, '\r') < 0 {
		return v
	}
	v = strings.NewReplacer("\r\n\t", " ", "\n\t", " ", "\r\n", "", "\n", "").Replace(v)
	return strings.ReplaceAll(v, "\r", "")
}

// viewContentType reads a part's Content-Type as Dovecot's search does: a
// part without one is text/plain; one whose value is not "type/subtype"
// followed by the end, a comment or ";" is not valid (ok false).
// Parameters are read leniently (a bad one does not lose the others: a
// multipart keeps its boundary).
func viewContentType(h textproto.Header) (mt string, params map[string]string, ok bool) {
	if !h.Has("Content-Type") {
		return "text/plain", map[string]string{}, true
	}
	ct := h.Get("Content-Type")
	if !validMediaType(ct) {
		return "", nil, false
	}
	if mt, params, err := mime.ParseMediaType(ct); err == nil {
		return mt, params, true
	}
	p := &parser{m: &Message{}, lim: (*Limits)(nil).withDefaults()}
	token, ps := p.parseValue(ct, "search")
	params = map[string]string{}
	for _, x := range ps {
		if _, dup := params[x.key]; !dup {
			params[x.key] = x.val
		}
	}
	return token, params, true
}

// validMediaType reports whether s starts with token "/" token followed by
// blanks and then the end, "(" or ";".
func validMediaType(s string) bool {
	s = strings.TrimLeft(s, " \t")
	tok := func() bool {
		n := 0
		for n < len(s) && s[n] > ' ' && s[n] < 0x7f && !strings.ContainsRune("()<>@,;:\\\"/[]?=", rune(s[n])) {
			n++
		}
		s = s[n:]
		return n > 0
	}
	if !tok() || s == "" || s[0] != '/' {
		return false
	}
	s = s[1:]
	if !tok() {
		return false
	}
	s = strings.TrimLeft(s, " \t")
	return s == "" || s[0] == ';' || s[0] == '('
}

// compressLWSP makes every run of blanks one space.
func compressLWSP(s string) string {
	var b strings.Builder
	blank := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == ' ' || c == '\t' {
			if !blank {
				b.WriteByte(' ')
			}
			blank = true
			continue
		}
		blank = false
		b.WriteByte(c)
	}
	return b.String()
}

// writeAddresses parses an address field and writes it back the way
// Dovecot's message_address_write does, names decoded: every address as
// `name <local@domain>` (name quoted unless it is all atext or an encoded
// word), groups as `name: member, member;`, joined by ", ".
func writeAddresses(raw string) string {
	p := &parser{m: &Message{}, lim: (*Limits)(nil).withDefaults()}
	var b strings.Builder
	sep := func() {
		if b.Len() > 0 && !strings.HasSuffix(b.String(), ": ") {
			b.WriteString(", ")
		}
	}
	for _, el := range splitGroups(raw) {
		if el.group {
			sep()
			if el.text == "" {
				b.WriteString(`""`)
			} else if strings.Contains(el.text, "=?") {
				b.WriteString(p.decodeWords(el.text, "search"))
			} else {
				b.WriteString(maybeQuote(el.text, true))
			}
			b.WriteString(": ")
			continue
		}
		if el.end {
			str := strings.TrimSuffix(b.String(), " ")
			b.Reset()
			b.WriteString(strings.TrimSuffix(str, ","))
			b.WriteString(";")
			continue
		}
		list, _ := p.parseAddressList(el.text, "search")
		encoded := strings.Contains(el.text, "=?")
		if len(list) == 1 && list[0].Name == "" && list[0].Addr != "" {
			// `" " <x@y>`: a name of blanks, which the parser drops and
			// Dovecot writes (and quotes).
			if i := strings.IndexByte(el.text, '"'); i >= 0 && i < strings.IndexByte(el.text+"<", '<') {
				if q, _, closed := quotedString(el.text, i); closed && q != "" && strings.TrimSpace(q) == "" {
					list[0].Name = q
				}
			}
		}
		for _, a := range list {
			sep()
			if a.Name != "" {
				if encoded {
					b.WriteString(a.Name)
				} else {
					// A quoted name keeps its blanks ("IQ " <x@y>),
					// and so its quotes, as Dovecot writes it.
					b.WriteString(maybeQuote(quotedName(el.text, a.Name), true))
				}
			}
			if a.Addr == "" {
				continue
			}
			if a.Name != "" {
				b.WriteByte(' ')
			}
			b.WriteByte('<')
			local, domain, _ := strings.Cut(a.Addr, "@")
			switch {
			case local == "":
				b.WriteString(`""`)
			case len(local) >= 2 && local[0] == '"' && local[len(local)-1] == '"':
				// A quoted local part ("odd local"@host): the parser
				// drops its blanks; Dovecot writes it as it was.
				b.WriteString(maybeQuote(quotedLocal(el.text, local[1:len(local)-1]), false))
			case strings.Contains(local, "=?"):
				// An encoded word where none may be
				// (=?iso-2022-jp?B?...?=@host): Dovecot decodes the
				// written address, so the local part is searched decoded.
				b.WriteString(p.decodeWords(local, "search"))
			default:
				b.WriteString(maybeQuote(local, false))
			}
			if domain != "" {
				b.WriteByte('@')
				b.WriteString(domain)
			}
			b.WriteByte('>')
		}
	}
	return b.String()
}

// quotedLocal finds in raw the quoted string whose content, blanks
// removed, is squeezed, and returns that content with its blanks
// (squeezed itself when there is none).
func quotedLocal(raw, squeezed string) string {
	for i := 0; i < len(raw); i++ {
		if raw[i] != '"' {
			continue
		}
		q, next, closed := quotedString(raw, i)
		if !closed {
			break
		}
		if strings.Join(strings.Fields(q), "") == squeezed {
			return q
		}
		i = next - 1
	}
	return squeezed
}

// quotedName returns the content of the quoted string in raw that is name
// with blanks around it, or name.
func quotedName(raw, name string) string {
	for i := 0; i < len(raw); i++ {
		if raw[i] != '"' {
			continue
		}
		q, next, closed := quotedString(raw, i)
		if !closed {
			break
		}
		if q != name && strings.TrimSpace(q) == strings.TrimSpace(name) {
			return q
		}
		i = next - 1
	}
	return name
}

// addrElement is a piece of an address field: addresses (text), the start
// of a group (group, its name in text) or its end.
type addrElement struct {
	text       string
	group, end bool
}

// splitGroups cuts an address field at group starts ("name:") and ends
// (";") outside quotes, comments and angle brackets.
func splitGroups(raw string) []addrElement {
	var out []addrElement
	start, depth := 0, 0
	inQuote, inAngle, inGroup := false, false, false
	flush := func(i int) {
		if t := strings.TrimSpace(raw[start:i]); t != "" {
			out = append(out, addrElement{text: t})
		}
	}
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case inQuote:
			if c == '\\' {
				i++
			} else if c == '"' {
				inQuote = false
			}
		case depth > 0:
			if c == '\\' {
				i++
			} else if c == '(' {
				depth++
			} else if c == ')' {
				depth--
			}
		case c == '"':
			inQuote = true
		case c == '(':
			depth++
		case c == '<':
			inAngle = true
		case c == '>':
			inAngle = false
		case inAngle:
		case c == ':' && !inGroup:
			name := strings.TrimSpace(raw[start:i])
			if k := strings.LastIndexByte(name, ','); k >= 0 {
				flush(start + k)
				name = strings.TrimSpace(name[k+1:])
			}
			out = append(out, addrElement{text: strings.Trim(name, `"`), group: true})
			inGroup, start = true, i+1
		case c == ';' && inGroup:
			flush(i)
			out = append(out, addrElement{end: true})
			inGroup, start = false, i+1
		}
	}
	flush(len(raw))
	if inGroup {
		out = append(out, addrElement{end: true})
	}
	return out
}

// maybeQuote quotes s when it is not all atext (dots allowed unless
// escapeDot), escaping \, " and '.
func maybeQuote(s string, escapeDot bool) string {
	plain := true
	for i := 0; i < len(s); i++ {
		if !isAtext(s[i]) && (escapeDot || s[i] != '.') {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' || c == '\'' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}

func isAtext(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80 ||
		strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// HTMLBody returns the first text/html part of raw, decoded from its
// transfer encoding and charset to UTF-8 (not sanitized: the caller must).
func HTMLBody(raw []byte) (string, bool) {
	br := bufio.NewReader(bytes.NewReader(raw))
	hdr, err := textproto.ReadHeader(br)
	if err != nil && hdr.Len() == 0 {
		return "", false
	}
	return findHTML(hdr, br, 0)
}

func findHTML(h textproto.Header, body io.Reader, depth int) (string, bool) {
	if depth > defaultMaxDepth {
		return "", false
	}
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		return "", false
	}
	switch {
	case strings.HasPrefix(mt, "multipart/") && params["boundary"] != "":
		mr := textproto.NewMultipartReader(body, params["boundary"])
		for {
			p, err := mr.NextPart()
			if err != nil {
				return "", false
			}
			if s, ok := findHTML(p.Header, p, depth+1); ok {
				return s, true
			}
		}
	case mt == "text/html":
		if disp, _, _ := mime.ParseMediaType(h.Get("Content-Disposition")); disp == "attachment" {
			return "", false
		}
		raw := decodeText(h, params, body)
		return strings.ToValidUTF8(string(raw), "\uFFFD"), true
	}
	return "", false
}
