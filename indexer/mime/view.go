package mime

import (
	"bufio"
	"bytes"
	"io"
	"mime"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
	"github.com/emersion/go-message/textproto"
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

// Fold case-folds s as View does, the way Dovecot 2.3's i;unicode-casemap
// comparator does (uni_utf8_to_decomposed_titlecase in src/lib/unichar.c):
// each character's simple titlecase mapping, then, for the result, a
// Hangul syllable's jamo, or its decomposition from UnicodeData.txt
// (canonical or compatibility) taken one level deep. So "ＦＲＥＥ" matches
// "free" and "café" contains "cafe", but "ß" stays "ß" ("GRÜSSE" does not
// match "grüße"), and "Ế" (U+1EBE) becomes "Ê" + U+0301, not "E" + U+0302
// + U+0301 as NFKD has it: Dovecot does not find "KE" in "KẾ" (issue 13,
// found by the generated queries on Vietnamese spam). The tables are
// generated (casemap_gen.go) as Dovecot's unicodemap.pl builds its own:
// a character with a titlecase field has no decomposition, and one of
// several characters applies only up to U+FFFF. The result is for
// comparing, not for showing. Each byte of an invalid UTF-8 sequence
// becomes U+FFFD, one for a run (not after another U+FFFD), as Dovecot
// writes it.
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
	var b strings.Builder
	b.Grow(len(s) + len(s)/4)
	for i := 0; i < len(s); {
		c := s[i]
		if c < 0x80 {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			b.WriteByte(c)
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		i += n
		if r == utf8.RuneError && n == 1 {
			if !strings.HasSuffix(b.String(), "\uFFFD") {
				b.WriteRune(utf8.RuneError)
			}
			continue
		}
		if t, ok := dovecotTitle[r]; ok {
			r = t
		}
		switch d, ok := dovecotDecomp[r]; {
		case r >= hangulFirst && r <= hangulLast:
			writeJamo(&b, r)
		case ok:
			b.WriteString(d)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

const hangulFirst, hangulLast = 0xAC00, 0xD7A3

// writeJamo writes a Hangul syllable as its conjoining jamo (Unicode 3.12),
// as Dovecot's uni_ucs4_decompose_hangul_utf8 does.
func writeJamo(b *strings.Builder, r rune) {
	const lBase, vBase, tBase, vCount, tCount = 0x1100, 0x1161, 0x11A7, 21, 28
	s := r - hangulFirst
	b.WriteRune(lBase + s/(vCount*tCount))
	b.WriteRune(vBase + s%(vCount*tCount)/tCount)
	if t := tBase + s%tCount; t != tBase {
		b.WriteRune(t)
	}
}

//go:generate go run casemap_gen.go /usr/share/unicode/UnicodeData.txt

var viewWordDecoder = &mime.WordDecoder{CharsetReader: viewCharsetReader}

// NewView builds the View of raw. It never fails: what cannot be decoded
// is searched as it is.
func NewView(raw []byte) *View {
	return newView(raw, true, nil)
}

// NewHeaderView is NewView without the body: Headers, Addresses, Subjects
// and HeaderText as NewView has them, Body and PartHeaders empty (IMAP
// SEARCH's header columns read only those).
func NewHeaderView(raw []byte) *View {
	return newView(topHeader(raw), false, nil)
}

// NewHeaderFieldsView is NewHeaderView of the fields want accepts (by
// their name as written) alone: their Headers, Addresses and Subjects
// entries are NewHeaderView's, in its order, and nothing else is made
// (HeaderText stays empty). Each field's entries depend on that field
// alone, so a key that tests only accepted fields answers as over the
// whole view. A header column's fill (indexer/imapcolumns.go) reads one
// or two fields of every message of a mailbox; decoding every field of
// each was 70 % of its time.
func NewHeaderFieldsView(raw []byte, want func(key string) bool) *View {
	return newView(topHeader(raw), false, want)
}

// topHeader cuts raw after the top-level header's blank line (LF or CRLF
// ends), before newView normalises line ends over the whole body.
func topHeader(raw []byte) []byte {
	for i := bytes.IndexByte(raw, '\n'); i >= 0; {
		rest := raw[i+1:]
		if len(rest) > 0 && rest[0] == '\n' {
			return raw[:i+2]
		}
		if len(rest) > 1 && rest[0] == '\r' && rest[1] == '\n' {
			return raw[:i+3]
		}
		j := bytes.IndexByte(rest, '\n')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return raw
}

// newView makes the view of raw, with its body when body; want, when not
// nil, keeps the header fields it accepts alone and makes no HeaderText.
func newView(raw []byte, body bool, want func(key string) bool) *View {
	v := &View{}
	// Line ends as Dovecot has them on disk by default (mail_save_crlf=no):
	// LF. A server sends CRLF and the archive keeps those bytes; Dovecot
	// searches its LF file, so BODY "words\n" finds a line end there and
	// "words\r\n" finds none (issue 13, found by the generated queries).
	// CRLF inside base64 content is decoded later and stays as it is.
	if bytes.Contains(raw, []byte("\r\n")) {
		raw = bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n"))
	}
	var text, bodyText, partHeaders strings.Builder
	br := bufio.NewReader(bytes.NewReader(raw))
	hdr, err := textproto.ReadHeader(br)
	if err != nil && hdr.Len() == 0 {
		if body {
			v.Body = Fold(string(raw))
		}
		v.Size = len(v.Body)
		return v
	}
	fields := hdr.Fields()
	for fields.Next() {
		if want != nil && !want(fields.Key()) {
			continue
		}
		middle, rawVal := rawField(fields)
		val := foldHeader(viewDecode(rawVal))
		v.Headers = append(v.Headers, Header{Key: fields.Key(), Value: val})
		if want == nil {
			text.WriteString(Fold(fields.Key()))
			text.WriteString(middle)
			text.WriteString(val)
			text.WriteString("\r\n") // TEXT: Dovecot searches header lines joined by CRLF
		}
		switch strings.ToLower(fields.Key()) {
		case "from", "to", "cc", "bcc":
			v.Addresses = append(v.Addresses, Header{Key: fields.Key(), Value: foldHeader(writeAddresses(rawVal))})
		case "subject":
			v.Subjects = append(v.Subjects, foldHeader(viewDecode(compressLWSP(strings.TrimLeft(rawVal, " \t")))))
		}
	}
	if body {
		walkText(hdr, br, 0, &bodyText, &partHeaders)
	}
	v.Body = bodyText.String()
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
		out.WriteString(Fold(string(decodeSearchText(h, params, body))))
	}
}

// decodeText reads a text part's body, decoded from its transfer encoding
// (leniently) and its charset to UTF-8 when it can be, for showing.
func decodeText(h textproto.Header, params map[string]string, body io.Reader) []byte {
	raw := decodeTransfer(h, body)
	// Charset names as iconv knows them: its aliases (ks_c_5601-1987 is
	// EUC-KR/CP949, cp1252 windows-1252, ...), which golang.org/x/text
	// lacks; normCharset maps them.
	if cs := normCharset(params["charset"]); cs != "" && cs != "utf-8" && cs != "us-ascii" {
		if r, err := charset.Reader(cs, bytes.NewReader(raw)); err == nil {
			if conv, err := io.ReadAll(r); err == nil {
				raw = conv
			}
		}
	}
	return raw
}

// decodeSearchText reads a text part's body as Dovecot's search does:
// decoded from its transfer encoding (leniently), then converted from its
// charset only when iconv knows the name (viewConvert).
func decodeSearchText(h textproto.Header, params map[string]string, body io.Reader) []byte {
	return viewConvert(params["charset"], decodeTransfer(h, body))
}

// decodeTransfer reads a part's body decoded from its transfer encoding,
// leniently: a bad quoted-printable escape stays as it is, as Dovecot
// keeps it.
func decodeTransfer(h textproto.Header, body io.Reader) []byte {
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
	v = unfoldReplacer.Replace(v)
	return strings.ReplaceAll(v, "\r", "")
}

// unfoldReplacer is built once: building a Replacer costs more than using
// it on a header (it was 1.4 % of a million-message import's CPU).
var unfoldReplacer = strings.NewReplacer("\r\n\t", " ", "\n\t", " ", "\r\n", "", "\n", "")

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

// writeAddresses writes an address field the way Dovecot's IMAP SEARCH
// searches it: parsed and salvaged by Dovecot's parser, written back by
// its message_address_write (dovecotaddr.go), then the encoded words of
// that string decoded, as message_search decodes a header value. A
// charset Dovecot does not know is kept as its bytes (viewCharsetReader).
func writeAddresses(raw string) string {
	return viewDecode(dovecotWriteAddresses(dovecotParseAddresses(raw)))
}

// viewDecode decodes the encoded words of a header value for the view
// (viewCharsetReader), or returns it as it is when they do not decode. A
// run of 0xFF bytes (never UTF-8: U+FFFD to Fold too) is made U+FFFD
// first, so that foldHeader's protect marks cannot come from the mail.
func viewDecode(v string) string {
	if strings.IndexByte(v, 0xff) >= 0 {
		var b strings.Builder
		for i := 0; i < len(v); i++ {
			if v[i] != 0xff {
				b.WriteByte(v[i])
			} else if i == 0 || v[i-1] != 0xff {
				b.WriteString("\uFFFD")
			}
		}
		v = b.String()
	}
	if dec, err := viewWordDecoder.DecodeHeader(v); err == nil {
		return dec
	}
	return v
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
