package mime

import (
	"bytes"
	"strconv"
	"strings"
	"unicode/utf8"
)

// walk processes an entity whose header has been read. In a quiet walk no
// body text is kept (an alternative that was not chosen); attachments are.
func (p *parser) walk(e *entity, quiet bool) {
	switch {
	case strings.HasPrefix(e.mediaType, "multipart/"):
		p.multipart(e, quiet)
	case e.mediaType == "message/rfc822" || e.mediaType == "message/global":
		p.message(e, quiet)
	default:
		p.leaf(e, quiet)
	}
}

func (p *parser) multipart(e *entity, quiet bool) {
	boundary := paramValue(e.params, "boundary")
	if boundary == "" {
		p.problem("multipart without boundary in %s", e.where())
		e.mediaType = "text/plain"
		p.leaf(e, quiet)
		return
	}
	if e.depth >= p.lim.MaxDepth {
		p.limit("depth > %d in %s", p.lim.MaxDepth, e.where())
		return
	}
	kids, found := p.split(e, boundary)
	if !found {
		p.problem("boundary not found in %s", e.where())
		e.mediaType = "text/plain"
		p.leaf(e, quiet)
		return
	}
	chosen, html := -1, -1
	alternative := e.mediaType == "multipart/alternative"
	if alternative {
		plain := -1
		for i, k := range kids {
			if k.disp == "attachment" {
				continue
			}
			switch k.mediaType {
			case "text/plain":
				if plain < 0 {
					plain = i
				}
			case "text/html":
				if html < 0 {
					html = i
				}
			}
		}
		switch {
		case plain >= 0:
			chosen = plain
		case html >= 0:
			chosen, html = html, -1
		default:
			chosen = len(kids) - 1
		}
	}
	for i, k := range kids {
		before := p.text.Len()
		p.walk(k, quiet || alternative && i != chosen)
		if alternative && i == chosen && !quiet && p.text.Len() == before && html >= 0 {
			// The plain alternative was blank: fall back to the HTML one,
			// which is walked quietly in its turn.
			p.bodyText(kids[html])
		}
	}
}

// split reads the parts of a multipart entity. found is false when the
// boundary never occurs.
func (p *parser) split(e *entity, boundary string) (kids []*entity, found bool) {
	body := e.body
	delim := make([]byte, 0, 2+len(boundary))
	delim = append(append(delim, "--"...), boundary...)
	_, cur, closing, ok := findDelim(body, 0, delim)
	if !ok {
		return nil, false
	}
	if closing {
		return nil, true
	}
	defType := "text/plain"
	if e.mediaType == "multipart/digest" {
		defType = "message/rfc822"
	}
	for n := 1; ; n++ {
		start, next, closing, ok := findDelim(body, cur, delim)
		end := len(body)
		if ok {
			end = start
			if end > cur && body[end-1] == '\n' {
				end--
				if end > cur && body[end-1] == '\r' {
					end--
				}
			}
		} else {
			p.problem("missing closing boundary in %s", e.where())
		}
		k := p.readEntity(body[cur:end], childPath(e.path, n), e.depth+1, defType, entityPart)
		if k == nil {
			return kids, true
		}
		kids = append(kids, k)
		if !ok || closing {
			return kids, true
		}
		cur = next
	}
}

func childPath(parent string, n int) string {
	if parent == "" {
		return strconv.Itoa(n)
	}
	return parent + "." + strconv.Itoa(n)
}

// findDelim finds the next boundary delimiter line at or after from. start
// is where the line starts, next where the line after it starts.
func findDelim(body []byte, from int, delim []byte) (start, next int, closing, ok bool) {
	for from < len(body) {
		k := bytes.Index(body[from:], delim)
		if k < 0 {
			return 0, 0, false, false
		}
		s := from + k
		from = s + 1
		if s > 0 && body[s-1] != '\n' {
			continue
		}
		rest := s + len(delim)
		closing = bytes.HasPrefix(body[rest:], []byte("--"))
		if closing {
			rest += 2
		}
		lineEnd, next := len(body), len(body)
		if j := bytes.IndexByte(body[rest:], '\n'); j >= 0 {
			lineEnd, next = rest+j, rest+j+1
		}
		// A longer boundary that merely starts with this one is not a
		// delimiter; junk after a closing delimiter is tolerated.
		if !closing && !isBlankBytes(body[rest:lineEnd]) {
			continue
		}
		return s, next, closing, true
	}
	return 0, 0, false, false
}

func isBlankBytes(b []byte) bool {
	for _, c := range b {
		if !isWSP(c) {
			return false
		}
	}
	return true
}

// message descends into a message/rfc822 part, which is also listed as an
// attachment.
func (p *parser) message(e *entity, quiet bool) {
	data := e.body
	switch e.cte {
	case "base64", "quoted-printable":
		// Non-conformant but seen. Decode into fresh memory: the inner
		// parts' bodies point into it while the scratch buffers are reused.
		data, _ = p.transfer(e, true)
	}
	if len(p.m.Attachments) == p.wantAtt {
		p.attData = bytes.Clone(data)
	}
	a := Attachment{
		Filename:    p.filename(e),
		ContentType: e.mediaType,
		Size:        int64(len(data)),
	}
	a.Data = p.keepData(e, a)
	p.m.Attachments = append(p.m.Attachments, a)
	if e.depth >= p.lim.MaxDepth {
		p.limit("depth > %d in %s", p.lim.MaxDepth, e.where())
		return
	}
	inner := p.readEntity(data, e.path, e.depth+1, "text/plain", entityMessage)
	if !quiet {
		p.summary(inner)
	}
	p.walk(inner, quiet)
}

// summary appends the main header lines of a forwarded message to the text.
func (p *parser) summary(e *entity) {
	var b []byte
	for _, name := range [...]string{"From", "To", "Cc", "Date", "Subject"} {
		if v, ok := fieldValue(e.fields, name); ok {
			if v = p.decodeValue(field{name: name, value: v}); v != "" {
				b = append(b, name...)
				b = append(b, ": "...)
				b = append(b, v...)
				b = append(b, '\n')
			}
		}
	}
	p.appendText(b)
}

func (p *parser) leaf(e *entity, quiet bool) {
	name := p.filename(e)
	if name == "" && e.disp != "attachment" && isBodyText(e.mediaType) {
		if !quiet {
			p.bodyText(e)
		}
		return
	}
	a := Attachment{Filename: name, ContentType: e.mediaType}
	if len(p.m.Attachments) == p.wantAtt {
		data, _ := p.transfer(e, true)
		p.attData = bytes.Clone(data)
	}
	if p.textLeft > 0 && isTextLike(e.mediaType, name) {
		data, cut := p.transfer(e, false)
		a.Size = int64(len(data))
		if cut {
			a.Size = p.size(e)
		}
		a.Text = p.keepText(p.extract(e, name, data))
	} else {
		a.Size = p.size(e)
	}
	a.Data = p.keepData(e, a)
	p.m.Attachments = append(p.m.Attachments, a)
}

// bodyText appends the text of a body part to Message.Text.
func (p *parser) bodyText(e *entity) {
	if p.textLeft <= 0 {
		p.limit("text bytes > %d", p.lim.MaxTextBytes)
		return
	}
	data, _ := p.transfer(e, false)
	p.appendText(p.extract(e, "", data))
}

func isBodyText(mt string) bool {
	return strings.HasPrefix(mt, "text/") ||
		mt == "message/delivery-status" || mt == "message/disposition-notification" ||
		mt == "message/global-delivery-status"
}

// isTextLike reports whether an attachment's text is worth extracting.
func isTextLike(mt, name string) bool {
	if isBodyText(mt) || strings.HasSuffix(mt, "+xml") || strings.HasSuffix(mt, "+json") {
		return true
	}
	switch mt {
	case "application/json", "application/xml", "application/csv", "application/x-csv",
		"application/javascript", "application/x-javascript", "application/ecmascript",
		"application/x-sh", "application/x-shellscript", "application/yaml", "application/x-yaml",
		"application/sql", "application/x-tex", "application/x-latex", "application/mbox",
		"application/ics":
		return true
	case "application/octet-stream", "application/unknown", "application/x-unknown":
		switch ext(name) {
		case ".txt", ".text", ".csv", ".tsv", ".log", ".md", ".json", ".xml", ".yaml", ".yml",
			".ics", ".vcf", ".htm", ".html", ".eml":
			return true
		}
	}
	return false
}

func isHTML(mt, name string) bool {
	if mt == "text/html" || mt == "application/xhtml+xml" {
		return true
	}
	if mt == "application/octet-stream" {
		x := ext(name)
		return x == ".htm" || x == ".html"
	}
	return false
}

func ext(name string) string {
	i := strings.LastIndexByte(name, '.')
	if i < 0 {
		return ""
	}
	return strings.ToLower(name[i:])
}

// filename returns the decoded file name of a part.
func (p *parser) filename(e *entity) string {
	for _, q := range [...]struct {
		ps  []param
		key string
	}{{e.dparams, "filename"}, {e.params, "name"}} {
		for _, pr := range q.ps {
			if pr.key != q.key || pr.val == "" {
				continue
			}
			if pr.ext {
				return trimWSP(pr.val)
			}
			return trimWSP(p.decodeWords(p.hdrText(pr.val), "file name of "+e.where()))
		}
	}
	return ""
}

// transfer decodes the body of e from its transfer encoding, within the
// decode budget; cut reports that the budget cut it short. An identity
// encoding returns e.body itself; otherwise the result is in p.dec, valid
// until the next call, or in fresh memory when fresh is set.
func (p *parser) transfer(e *entity, fresh bool) (data []byte, cut bool) {
	left := p.decodedLeft
	if left <= 0 {
		p.limit("decoded bytes > %d", p.lim.MaxDecodedBytes)
		return nil, true
	}
	lim := -1
	if left < int64(len(e.body)) {
		lim = int(left)
	}
	var dst []byte
	if !fresh {
		dst = p.dec[:0]
	}
	switch e.cte {
	case "", "7bit", "8bit", "binary", "7-bit", "8-bit":
		data = e.body
	case "quoted-printable":
		data = appendQP(dst, e.body, lim)
	case "base64":
		data = appendBase64(dst, e.body, lim)
	default:
		p.problem("unknown transfer encoding %s in %s", quote(e.cte), e.where())
		data = e.body
	}
	if lim >= 0 && len(data) >= lim {
		data, cut = data[:lim], true
		p.limit("decoded bytes > %d", p.lim.MaxDecodedBytes)
	}
	if !fresh && len(data) > 0 && (len(e.body) == 0 || &data[0] != &e.body[0]) {
		p.dec = data[:0]
	}
	p.decodedLeft -= int64(len(data))
	return data, cut
}

// keepData is an attachment's whole decoded content for Limits.KeepData
// (nil without it): decoded apart from the text extraction and not
// counted against MaxDecodedBytes, as AttachmentData decodes it.
func (p *parser) keepData(e *entity, a Attachment) []byte {
	if !p.lim.KeepData || p.lim.KeepDataIf != nil && !p.lim.KeepDataIf(a) {
		return nil
	}
	left := p.decodedLeft
	p.decodedLeft = 1 << 62
	data, _ := p.transfer(e, true)
	p.decodedLeft = left
	return bytes.Clone(data)
}

// size returns the decoded size of a part without decoding it.
func (p *parser) size(e *entity) int64 {
	switch e.cte {
	case "base64":
		return base64Size(e.body)
	case "quoted-printable":
		return qpSize(e.body)
	}
	return int64(len(e.body))
}

// extract converts decoded part data to UTF-8 text, from HTML if need be.
func (p *parser) extract(e *entity, name string, data []byte) []byte {
	if len(data) == 0 {
		return nil
	}
	cs := paramValue(e.params, "charset")
	ncs := normCharset(cs)
	wide := strings.HasPrefix(ncs, "utf-16") || strings.HasPrefix(ncs, "utf-32") || ncs == "ucs-2" ||
		bytes.HasPrefix(data, []byte("\xff\xfe")) || bytes.HasPrefix(data, []byte("\xfe\xff"))
	if !wide && bytes.IndexByte(data[:min(len(data), 1024)], 0) >= 0 {
		p.problem("binary data in %s", e.where())
		return nil
	}
	html := isHTML(e.mediaType, name)
	switch {
	case bytes.HasPrefix(data, []byte("\xff\xfe")) || bytes.HasPrefix(data, []byte("\xfe\xff")):
		cs = "utf-16" // a byte order mark beats the label
	case bytes.HasPrefix(data, []byte("\xef\xbb\xbf")):
		cs, data = "utf-8", data[3:]
	case html && ncs == "" && !utf8.Valid(data):
		cs = sniffCharset(data)
	}
	if len(data) == 0 {
		return nil
	}
	text := p.toUTF8(p.conv, cs, data, e.where())
	if len(text) > 0 && &text[0] != &data[0] {
		p.conv = text[:0] // keep the grown scratch buffer
	}
	if html {
		p.html = appendHTMLText(p.html[:0], text)
		return p.html
	}
	return text
}

// sniffCharset looks for a <meta> charset near the start of an HTML body.
func sniffCharset(data []byte) string {
	head := data[:min(len(data), 2048)]
	for i := 0; i+8 <= len(head); i++ {
		if head[i]|0x20 != 'c' || !bytes.EqualFold(head[i:i+8], []byte("charset=")) {
			continue
		}
		v := head[i+8:]
		v = bytes.TrimLeft(v, `"' `)
		j := 0
		for j < len(v) && j < 40 && (v[j] == '-' || v[j] == '_' || v[j] == '.' || v[j] == ':' ||
			'0' <= v[j] && v[j] <= '9' || 'a' <= v[j]|0x20 && v[j]|0x20 <= 'z') {
			j++
		}
		return string(v[:j])
	}
	return ""
}

// appendText appends a chunk of body text to Message.Text, separated from
// the previous one by a blank line, with CRLF made LF, within the budget.
func (p *parser) appendText(b []byte) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return
	}
	if p.text.Len() > 0 {
		if p.textLeft <= 2 {
			p.textLeft = 0
			p.limit("text bytes > %d", p.lim.MaxTextBytes)
			return
		}
		p.text.WriteString("\n\n")
		p.textLeft -= 2
	}
	b = p.cut(b)
	p.textLeft -= writeLF(&p.text, b)
}

// keepText returns b as attachment text, within the shared budget.
func (p *parser) keepText(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || p.textLeft <= 0 {
		return ""
	}
	var sb strings.Builder
	sb.Grow(len(b))
	p.textLeft -= writeLF(&sb, p.cut(b))
	return sb.String()
}

// cut shortens b to the text budget at a rune boundary.
func (p *parser) cut(b []byte) []byte {
	if len(b) <= p.textLeft {
		return b
	}
	p.limit("text bytes > %d", p.lim.MaxTextBytes)
	i := p.textLeft
	for i > 0 && !utf8.RuneStart(b[i]) {
		i--
	}
	return b[:i]
}

// writeLF writes b with "\r\n" turned into "\n" and returns the bytes
// written.
func writeLF(sb *strings.Builder, b []byte) int {
	n := 0
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\r')
		if i < 0 {
			sb.Write(b)
			return n + len(b)
		}
		sb.Write(b[:i])
		n += i
		if i+1 < len(b) && b[i+1] == '\n' {
			b = b[i+1:]
			continue
		}
		sb.WriteByte('\n')
		n++
		b = b[i+1:]
	}
	return n
}
