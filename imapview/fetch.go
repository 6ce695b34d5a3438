package imapview

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"

	"mailvault/service"
)

// resolve returns the indexes into sel.msgs that numSet names, ascending,
// each once. "*" is the highest number in use; numbers beyond it name
// nothing.
func (sel *selected) resolve(numSet imap.NumSet) []int {
	n := len(sel.msgs)
	if n == 0 || imap.IsSearchRes(numSet) {
		return nil // "$" (SEARCHRES) is not offered
	}
	var out []int
	switch set := numSet.(type) {
	case imap.SeqSet:
		for _, r := range set {
			lo, hi := orderRange(r.Start, r.Stop, uint32(n))
			for seq := lo; seq <= hi && seq <= uint32(n); seq++ {
				out = append(out, int(seq-1))
			}
		}
	case imap.UIDSet:
		top := sel.msgs[n-1].UID
		for _, r := range set {
			lo, hi := orderRange(uint32(r.Start), uint32(r.Stop), top)
			for i := sort.Search(n, func(i int) bool { return sel.msgs[i].UID >= lo }); i < n && sel.msgs[i].UID <= hi; i++ {
				out = append(out, i)
			}
		}
	}
	if len(out) > 1 {
		sort.Ints(out)
		out = compactInts(out)
	}
	return out
}

// orderRange turns a range whose ends may be 0 ("*") into lo <= hi.
func orderRange(a, b, top uint32) (lo, hi uint32) {
	if a == 0 {
		a = top
	}
	if b == 0 {
		b = top
	}
	if a > b {
		a, b = b, a
	}
	return a, b
}

func compactInts(s []int) []int {
	out := s[:1]
	for _, v := range s[1:] {
		if v != out[len(out)-1] {
			out = append(out, v)
		}
	}
	return out
}

// readsContent says whether a FETCH needs the message's bytes, and names
// what it reads for the audit trail.
func readsContent(o *imap.FetchOptions) (bool, string) {
	var what []string
	if o.Envelope {
		what = append(what, "ENVELOPE")
	}
	if o.BodyStructure != nil {
		what = append(what, "BODYSTRUCTURE")
	}
	for _, bs := range o.BodySection {
		what = append(what, "BODY["+sectionName(bs.Specifier, bs.Part, bs.HeaderFields, bs.HeaderFieldsNot)+"]")
	}
	for _, bs := range o.BinarySection {
		what = append(what, "BINARY["+sectionName("", bs.Part, nil, nil)+"]")
	}
	for _, bs := range o.BinarySectionSize {
		what = append(what, "BINARY.SIZE["+sectionName("", bs.Part, nil, nil)+"]")
	}
	return len(what) > 0, strings.Join(what, " ")
}

func sectionName(spec imap.PartSpecifier, part []int, fields, notFields []string) string {
	var parts []string
	for _, p := range part {
		parts = append(parts, fmt.Sprint(p))
	}
	if spec != imap.PartSpecifierNone {
		s := string(spec)
		if len(fields) > 0 {
			s += ".FIELDS (" + fieldList(fields) + ")"
		} else if len(notFields) > 0 {
			s += ".FIELDS.NOT (" + fieldList(notFields) + ")"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ".")
}

// fieldList is a HEADER.FIELDS list for the audit trail. A field name is
// the client's (a quoted string or a literal: any bytes), so one that is
// not a plain field name is written quoted: `X) UID 1:*` must not read as
// part of the row's own words.
func fieldList(fields []string) string {
	out := make([]string, len(fields))
	for i, f := range fields {
		plain := f != ""
		for _, c := range []byte(f) {
			if c <= ' ' || c >= 0x7f || strings.IndexByte(`()[]{}"\:`, c) >= 0 {
				plain = false
				break
			}
		}
		if plain {
			out[i] = f
		} else {
			out[i] = strconv.Quote(f)
		}
	}
	return strings.Join(out, " ")
}

// maxFetchSections bounds the BODY[...], BINARY[...] and BINARY.SIZE[...]
// items of one FETCH. Each is extracted from the message on its own, one
// pass over it (BINARY: decoding its part) whatever it sends back: 50 KiB
// of command holds 3,000 BINARY.SIZE[2], 17 s of CPU for each 1 MB
// message it names, for a few bytes of answer. A client asks for a
// handful (mbsync and Thunderbird's message list one; a client that shows
// parts, a MIME header and a body for each), so 64 leaves room and bounds
// the work to 64 passes over each message.
const maxFetchSections = 64

// Fetch answers FETCH from the catalog (UID, FLAGS, INTERNALDATE,
// RFC822.SIZE) and, for content items, from the stored bytes, after the
// command's audit row (rows, for a long UID set: Archive.ViewFetch).
func (ss *session) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, options *imap.FetchOptions) error {
	if n := len(options.BodySection) + len(options.BinarySection) + len(options.BinarySectionSize); n > maxFetchSections {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeLimit,
			Text: fmt.Sprintf("at most %d sections in one FETCH (this one asks for %d): split it", maxFetchSections, n)}
	}
	sel := ss.sel
	idx := sel.resolve(numSet)
	content, what := readsContent(options)
	ctx, cancel := ss.ctx()
	defer cancel()
	if err := ss.recheck(ctx); err != nil {
		return err
	}
	if content && len(idx) > 0 {
		var uids imap.UIDSet
		for _, i := range idx {
			uids.AddNum(imap.UID(sel.msgs[i].UID))
		}
		if err := ss.s.opts.Archive.ViewFetch(ctx, *ss.caller, sel.f, uids.String(), what); err != nil {
			return ss.serviceError("fetch", err)
		}
	}
	for _, i := range idx {
		m := sel.msgs[i]
		var raw []byte
		if content {
			var err error
			raw, err = ss.s.opts.Archive.ViewRaw(ctx, *ss.caller, sel.f, m.SHA256)
			if errors.Is(err, service.ErrNotFound) {
				// Removed from the archive since the last poll (retention):
				// the next poll expunges it; nothing is sent for it now.
				continue
			}
			if err != nil {
				return ss.serviceError("fetch", err)
			}
			ss.s.metrics.fetched.Inc()
			ss.s.metrics.bytes.Add(float64(len(raw)))
		}
		rw := w.CreateMessage(uint32(i + 1))
		if options.UID {
			rw.WriteUID(imap.UID(m.UID))
		}
		if options.Flags {
			rw.WriteFlags(flagsOf(m))
		}
		if options.InternalDate {
			rw.WriteInternalDate(internalDate(m.InternalDate))
		}
		if options.RFC822Size {
			rw.WriteRFC822Size(m.Size)
		}
		if options.Envelope {
			rw.WriteEnvelope(envelope(raw))
		}
		if options.BodyStructure != nil {
			rw.WriteBodyStructure(bodyStructure(raw))
		}
		for _, bs := range options.BodySection {
			b := bodySection(raw, bs)
			if err := writeAll(rw.WriteBodySection(bs, int64(len(b))), b); err != nil {
				rw.Close() // it holds the connection's writer lock
				return err
			}
		}
		for _, bs := range options.BinarySection {
			b := binarySection(raw, bs)
			if err := writeAll(rw.WriteBinarySection(bs, int64(len(b))), b); err != nil {
				rw.Close()
				return err
			}
		}
		for _, bs := range options.BinarySectionSize {
			rw.WriteBinarySectionSize(bs, binarySectionSize(raw, bs))
		}
		if err := rw.Close(); err != nil {
			return err
		}
	}
	return nil
}

func writeAll(wc io.WriteCloser, b []byte) error {
	if _, err := wc.Write(b); err != nil {
		wc.Close()
		return err
	}
	return wc.Close()
}

// bodySection is BODY[section]<partial> of raw. The whole message
// (BODY[], RFC822) is the stored bytes themselves, never a re-rendering;
// other sections come from go-imap's extractor. A section a malformed
// message does not have is empty.
func bodySection(raw []byte, bs *imap.FetchItemBodySection) (b []byte) {
	if bs.Specifier == imap.PartSpecifierNone && len(bs.Part) == 0 {
		return partial(raw, bs.Partial)
	}
	if len(bs.Part) > maxMIMEDepth {
		return nil // deeper than BODYSTRUCTURE describes (and each level costs a pass over the rest)
	}
	defer func() {
		if recover() != nil {
			b = nil
		}
	}()
	return imapserver.ExtractBodySection(bytes.NewReader(raw), bs)
}

func binarySection(raw []byte, bs *imap.FetchItemBinarySection) (b []byte) {
	if len(bs.Part) > maxMIMEDepth {
		return nil
	}
	defer func() {
		if recover() != nil {
			b = nil
		}
	}()
	return imapserver.ExtractBinarySection(bytes.NewReader(raw), bs)
}

func binarySectionSize(raw []byte, bs *imap.FetchItemBinarySectionSize) (n uint32) {
	if len(bs.Part) > maxMIMEDepth {
		return 0
	}
	defer func() {
		if recover() != nil {
			n = 0
		}
	}()
	return imapserver.ExtractBinarySectionSize(bytes.NewReader(raw), bs)
}

// partial is <offset.size> of b (RFC 3501 6.4.5): empty past the end.
func partial(b []byte, p *imap.SectionPartial) []byte {
	if p == nil {
		return b
	}
	if p.Offset >= int64(len(b)) {
		return nil
	}
	b = b[p.Offset:]
	if p.Size < int64(len(b)) {
		b = b[:p.Size]
	}
	return b
}

// internalDate is INTERNALDATE: as harvested; for a copy that has none (an
// import without one, a recovered blob), the Unix epoch, which no client
// mistakes for a real date.
func internalDate(t time.Time) time.Time {
	if t.IsZero() {
		return time.Unix(0, 0).UTC()
	}
	return t
}

// envelope parses the header of raw for ENVELOPE; a message whose header
// cannot be parsed gets an empty envelope.
func envelope(raw []byte) (env *imap.Envelope) {
	defer func() {
		if recover() != nil {
			env = &imap.Envelope{}
		}
	}()
	h, err := readHeader(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		return &imap.Envelope{}
	}
	return extractEnvelope(h)
}

// maxHeaderBytes is how much of a header block ENVELOPE and BODYSTRUCTURE
// parse, as indexing does (indexer/mime's MaxHeaderBytes): go-message's
// reader keeps every field, and a 5.8 MB header cost 494 MB of allocation.
const maxHeaderBytes = 256 << 10

// readHeader reads a header block from br up to its blank line, whole, and
// parses at most its first maxHeaderBytes (cut at a line end): the fields
// past that are left out, and the reader is past the block either way. The
// headers of a multipart's parts are read by go-message itself, without
// this bound.
func readHeader(br *bufio.Reader) (textproto.Header, error) {
	var kept []byte
	continued := false // the last read ended inside a line
	full := false      // a line did not fit: keep nothing after it
	for {
		line, err := br.ReadSlice('\n')
		if !full && len(kept)+len(line) <= maxHeaderBytes {
			kept = append(kept, line...)
		} else {
			full = true
		}
		if err == bufio.ErrBufferFull {
			// A line longer than the reader's buffer: read on past it.
			continued = true
			continue
		}
		blank := !continued && (string(line) == "\n" || string(line) == "\r\n")
		continued = false
		if err != nil || blank {
			break
		}
	}
	if !bytes.HasSuffix(kept, []byte("\n\n")) && !bytes.HasSuffix(kept, []byte("\n\r\n")) {
		kept = append(kept, "\r\n"...) // a cut or unterminated block still ends
	}
	return textproto.ReadHeader(bufio.NewReader(bytes.NewReader(kept)))
}

// bodyStructure is BODYSTRUCTURE from raw; a message go-message cannot
// walk is described as one text/plain part of its size, the answer RFC
// 3501 gives a message without MIME structure.
func bodyStructure(raw []byte) (bs imap.BodyStructure) {
	defer func() {
		if recover() != nil {
			bs = plainStructure(raw)
		}
	}()
	br := bufio.NewReader(bytes.NewReader(raw))
	h, _ := readHeader(br)
	parts := 0
	return structureOf(h, br, 0, &parts)
}

// The bounds of a BODYSTRUCTURE, the same as indexing's (indexer/mime's
// default Limits): a stored message is whatever a sender mailed, and
// go-imap's extractor (imapserver.ExtractBodyStructure) has none. It reads
// every single part whole into memory and keeps it while it describes
// what is inside, so a message/rfc822 nested in a message/rfc822 ... cost
// memory quadratic in the depth (155 MB for a 64 KB message 2,000 levels
// deep; a 1 MB one would need tens of GB), and each multipart level adds
// a reader every byte below it passes through (1 s of CPU for a 114 KB
// message 2,000 levels deep). Thunderbird asks every message's
// BODYSTRUCTURE, so one such mail would take the server down for everyone.
const (
	// maxMIMEDepth is the deepest nesting of multiparts and messages that
	// BODYSTRUCTURE and BODY[part] descend into. A part at that depth is
	// described as one application/octet-stream part of its size, not
	// looked into; its bytes are still in BODY[] and its parent's sections.
	maxMIMEDepth = 20
	// maxMIMEParts is the number of parts BODYSTRUCTURE describes: a
	// multipart's parts past it are left out, and a multipart or message
	// reached when it is spent is described as one part, as above.
	maxMIMEParts = 1000
)

// structureOf is imapserver's extractBodyStructure with those bounds, and
// counting a part's size and lines as it streams past instead of reading
// it into memory. What it answers for a message within the bounds is the
// same (TestHostileDeepMIME compares them).
func structureOf(rawHeader textproto.Header, r io.Reader, depth int, parts *int) imap.BodyStructure {
	*parts++
	header := gomessage.Header{Header: rawHeader}
	mediaType, typeParams, _ := header.ContentType()
	primaryType, subType, _ := strings.Cut(mediaType, "/")
	nested := primaryType == "multipart" || mediaType == "message/rfc822" || mediaType == "message/global"
	if nested && (depth >= maxMIMEDepth || *parts >= maxMIMEParts) {
		primaryType, subType, typeParams, nested = "application", "octet-stream", nil, false
	}

	if primaryType == "multipart" {
		bs := &imap.BodyStructureMultiPart{Subtype: subType}
		mr := textproto.NewMultipartReader(r, typeParams["boundary"])
		for *parts < maxMIMEParts {
			part, _ := mr.NextPart()
			if part == nil {
				break
			}
			bs.Children = append(bs.Children, structureOf(part.Header, part, depth+1, parts))
		}
		bs.Extended = &imap.BodyStructureMultiPartExt{
			Params:      typeParams,
			Disposition: getContentDisposition(header),
			Language:    getContentLanguage(header),
			Location:    header.Get("Content-Location"),
		}
		return bs
	}

	body := &countingReader{r: r}
	bs := &imap.BodyStructureSinglePart{
		Type:        primaryType,
		Subtype:     subType,
		Params:      typeParams,
		ID:          header.Get("Content-Id"),
		Description: header.Get("Content-Description"),
		Encoding:    header.Get("Content-Transfer-Encoding"),
	}
	if nested { // message/rfc822 or message/global, within the depth
		br := bufio.NewReader(body)
		childHeader, _ := readHeader(br)
		bs.MessageRFC822 = &imap.BodyStructureMessageRFC822{
			Envelope:      extractEnvelope(childHeader),
			BodyStructure: structureOf(childHeader, br, depth+1, parts),
		}
	}
	io.Copy(io.Discard, body) // what the description did not read
	bs.Size = uint32(body.n)
	if bs.MessageRFC822 != nil {
		bs.MessageRFC822.NumLines = body.lines
	}
	if primaryType == "text" {
		bs.Text = &imap.BodyStructureText{NumLines: body.lines}
	}
	bs.Extended = &imap.BodyStructureSinglePartExt{
		Disposition: getContentDisposition(header),
		Language:    getContentLanguage(header),
		Location:    header.Get("Content-Location"),
	}
	return bs
}

// countingReader counts the bytes and lines read through it.
type countingReader struct {
	r        io.Reader
	n, lines int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	c.lines += int64(bytes.Count(p[:n], []byte("\n")))
	return n, err
}

// getContentDisposition and getContentLanguage are imapserver's.
func getContentDisposition(header gomessage.Header) *imap.BodyStructureDisposition {
	disp, dispParams, _ := header.ContentDisposition()
	if disp == "" {
		return nil
	}
	return &imap.BodyStructureDisposition{
		Value:  disp,
		Params: dispParams,
	}
}

func getContentLanguage(header gomessage.Header) []string {
	v := header.Get("Content-Language")
	if v == "" {
		return nil
	}
	// TODO: handle CFWS
	l := strings.Split(v, ",")
	for i, lang := range l {
		l[i] = strings.TrimSpace(lang)
	}
	return l
}

func plainStructure(raw []byte) imap.BodyStructure {
	return &imap.BodyStructureSinglePart{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii"},
		Encoding: "7bit", Size: uint32(len(raw)), Text: &imap.BodyStructureText{NumLines: int64(bytes.Count(raw, []byte("\n")))}}
}
