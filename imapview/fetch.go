package imapview

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
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
			s += ".FIELDS (" + strings.Join(fields, " ") + ")"
		} else if len(notFields) > 0 {
			s += ".FIELDS.NOT (" + strings.Join(notFields, " ") + ")"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ".")
}

// Fetch answers FETCH from the catalog (UID, FLAGS, INTERNALDATE,
// RFC822.SIZE) and, for content items, from the stored bytes, after one
// audit row for the command.
func (ss *session) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, options *imap.FetchOptions) error {
	sel := ss.sel
	idx := sel.resolve(numSet)
	content, what := readsContent(options)
	ctx, cancel := ss.ctx()
	defer cancel()
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
				return err
			}
		}
		for _, bs := range options.BinarySection {
			b := binarySection(raw, bs)
			if err := writeAll(rw.WriteBinarySection(bs, int64(len(b))), b); err != nil {
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
	defer func() {
		if recover() != nil {
			b = nil
		}
	}()
	return imapserver.ExtractBodySection(bytes.NewReader(raw), bs)
}

func binarySection(raw []byte, bs *imap.FetchItemBinarySection) (b []byte) {
	defer func() {
		if recover() != nil {
			b = nil
		}
	}()
	return imapserver.ExtractBinarySection(bytes.NewReader(raw), bs)
}

func binarySectionSize(raw []byte, bs *imap.FetchItemBinarySectionSize) (n uint32) {
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
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		return &imap.Envelope{}
	}
	return imapserver.ExtractEnvelope(h)
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
	return imapserver.ExtractBodyStructure(bytes.NewReader(raw))
}

func plainStructure(raw []byte) imap.BodyStructure {
	return &imap.BodyStructureSinglePart{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii"},
		Encoding: "7bit", Size: uint32(len(raw)), Text: &imap.BodyStructureText{NumLines: int64(bytes.Count(raw, []byte("\n")))}}
}
