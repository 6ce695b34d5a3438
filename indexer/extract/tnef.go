package extract

// TNEF (winmail.dat, application/ms-tnef): Outlook's wrapper of a message's
// body and attachments, read from the specification ([MS-OXTNEF]; no
// maintained Go reader is served by the module proxy). Its text is the
// subject and body (plain, else the compressed RTF — [MS-OXRTFCP], LZFu,
// decompressed here and handed to the RTF extractor as body.rtf — else the
// HTML body), then each attachment's name and text. Each attachment is a
// Member with its Data (the ingest makes them attachments of the message,
// exported as natives) and its own Result, extracted by Job.Nested: a PDF
// in winmail.dat is read, a winmail.dat in winmail.dat (an embedded
// message) is recursed into, within MaxDepth.
//
// Bounds: every length field (an attribute's, a MAPI property's, a count
// of values) is checked against the bytes left before anything is sliced
// or allocated, and nothing is allocated from a length (values are
// subslices of the input: a Member's Data aliases the attachment's bytes);
// attachments count against MaxMembers; the LZFu output is accounted with
// Expand (at most 8.5 bytes per input byte by the format's construction).
// Checksums are not enforced (writers get them wrong and the data is
// still what the sender sent); a truncated stream keeps the attachments
// before the cut and ends Failed "corrupt".

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
)

func init() { register("tnef", extractTNEF) }

const tnefSignature = 0x223E9F78

// TNEF attribute IDs (the low 16 bits; the high 16 are the type).
const (
	attSubject        = 0x8004
	attBody           = 0x800C
	attAttachData     = 0x800F
	attAttachTitle    = 0x8010
	attAttachRenddata = 0x9002
	attMsgProps       = 0x9003
	attAttachment     = 0x9005
)

// MAPI property IDs and types used.
const (
	prSubject          = 0x0037
	prBody             = 0x1000
	prRTFCompressed    = 0x1009
	prBodyHTML         = 0x1013
	prAttachDataBin    = 0x3701 // also PR_ATTACH_DATA_OBJ, type object
	prAttachFilename   = 0x3704
	prAttachLongName   = 0x3707
	prAttachMIMETag    = 0x370E
	prDisplayName      = 0x3001
	ptString8          = 0x001E
	ptUnicode          = 0x001F
	ptBinary           = 0x0102
	ptObject           = 0x000D
	mvFlag             = 0x1000
	namedPropertyStart = 0x8000
)

type tnefAttachment struct {
	title, longName, mime string
	data                  []byte
	hasData               bool
}

func (a *tnefAttachment) name(i int) string {
	switch {
	case a.longName != "":
		return a.longName
	case a.title != "":
		return a.title
	}
	return fmt.Sprintf("attachment-%d", i+1)
}

// tnefMessage is what one TNEF stream holds.
type tnefMessage struct {
	subject         string
	body, html, rtf []byte
	attachments     []*tnefAttachment
}

var errTNEFTruncated = errors.New("truncated")

// parseTNEF reads the stream's attributes. It returns what it read before
// an error too; maxAttach bounds the attachments (ErrMembers after).
func parseTNEF(data []byte, maxAttach int) (*tnefMessage, error) {
	m := &tnefMessage{}
	if len(data) < 6 || binary.LittleEndian.Uint32(data) != tnefSignature {
		return m, errors.New("tnef: no TNEF signature")
	}
	var cur *tnefAttachment
	for p := 6; p < len(data); {
		if len(data)-p < 9 {
			return m, fmt.Errorf("tnef: attribute at %d: %w", p, errTNEFTruncated)
		}
		level, id, n := data[p], binary.LittleEndian.Uint32(data[p+1:]), uint64(binary.LittleEndian.Uint32(data[p+5:]))
		p += 9
		if n+2 > uint64(len(data)-p) {
			return m, fmt.Errorf("tnef: attribute %#08x at %d: length %d past the end (%d bytes left): %w", id, p-9, n, len(data)-p, errTNEFTruncated)
		}
		v := data[p : p+int(n)]
		p += int(n) + 2 // and the checksum, not enforced
		switch id & 0xffff {
		case attAttachRenddata:
			if len(m.attachments) >= maxAttach {
				return m, fmt.Errorf("%w: more than %d attachments", ErrMembers, maxAttach)
			}
			cur = &tnefAttachment{}
			m.attachments = append(m.attachments, cur)
			continue
		case attSubject:
			m.subject = cstring8(v)
		case attBody:
			m.body = v
		case attMsgProps:
			if err := mapiProps(v, func(typ, id uint16, val []byte) {
				switch id {
				case prSubject:
					if m.subject == "" {
						m.subject = mapiString(typ, val)
					}
				case prBody:
					if m.body == nil {
						m.body = []byte(mapiString(typ, val))
					}
				case prRTFCompressed:
					m.rtf = val
				case prBodyHTML:
					m.html = val
				}
			}); err != nil {
				return m, fmt.Errorf("tnef: message properties: %w", err)
			}
		}
		if level != 2 {
			continue
		}
		if cur == nil { // an attachment attribute before any attAttachRenddata
			if len(m.attachments) >= maxAttach {
				return m, fmt.Errorf("%w: more than %d attachments", ErrMembers, maxAttach)
			}
			cur = &tnefAttachment{}
			m.attachments = append(m.attachments, cur)
		}
		switch id & 0xffff {
		case attAttachTitle:
			cur.title = cstring8(v)
		case attAttachData:
			cur.data, cur.hasData = v, true
		case attAttachment:
			if err := mapiProps(v, func(typ, id uint16, val []byte) {
				switch id {
				case prAttachLongName:
					cur.longName = mapiString(typ, val)
				case prAttachFilename, prDisplayName:
					if cur.title == "" {
						cur.title = mapiString(typ, val)
					}
				case prAttachMIMETag:
					cur.mime = mapiString(typ, val)
				case prAttachDataBin:
					if !cur.hasData {
						if typ == ptObject && len(val) >= 16 {
							val = val[16:] // the interface's GUID; an embedded message is a TNEF stream
						}
						cur.data, cur.hasData = val, true
					}
				}
			}); err != nil {
				return m, fmt.Errorf("tnef: attachment %d properties: %w", len(m.attachments), err)
			}
		}
	}
	return m, nil
}

// mapiProps walks an attMsgProps or attAttachment value: a count, then per
// property its type and ID (a named property's GUID and name or number
// after), then its value or values. fn gets each single value (the first
// of a multi-valued one).
func mapiProps(b []byte, fn func(typ, id uint16, val []byte)) error {
	r := &leReader{b: b}
	count := r.u32()
	for i := uint32(0); i < count && r.err == nil; i++ {
		typ, id := r.u16(), r.u16()
		if id >= namedPropertyStart {
			r.skip(16) // GUID
			if kind := r.u32(); kind == 0 {
				r.skip(4)
			} else {
				r.skip(pad4(r.u32()))
			}
		}
		base := typ &^ mvFlag
		var vals uint32 = 1
		variable := base == ptString8 || base == ptUnicode || base == ptBinary || base == ptObject
		if typ&mvFlag != 0 || variable {
			vals = r.u32()
			// Each value takes at least 4 bytes: a count beyond that is a lie.
			if uint64(vals)*4 > uint64(r.left()) {
				return fmt.Errorf("property %#04x: %d values in %d bytes", id, vals, r.left())
			}
		}
		for k := uint32(0); k < vals && r.err == nil; k++ {
			var val []byte
			if variable {
				n := r.u32()
				val = r.bytes(n)
				r.skip(pad4(n) - n)
			} else {
				size, ok := fixedSize(base)
				if !ok {
					return fmt.Errorf("property %#04x: unknown type %#04x", id, typ)
				}
				val = r.bytes(size)
			}
			if k == 0 && r.err == nil {
				fn(base, id, val)
			}
		}
	}
	return r.err
}

func fixedSize(typ uint16) (uint32, bool) {
	switch typ {
	case 0x0001, 0x0002, 0x0003, 0x0004, 0x000A, 0x000B: // null, i2, i4, r4, error, boolean: padded to 4
		return 4, true
	case 0x0005, 0x0006, 0x0007, 0x0014, 0x0040: // r8, currency, apptime, i8, systime
		return 8, true
	case 0x0048: // clsid
		return 16, true
	}
	return 0, false
}

func pad4(n uint32) uint32 { return (n + 3) &^ 3 }

// leReader reads little-endian fields, bounded: past the end it returns
// zeros and remembers errTNEFTruncated.
type leReader struct {
	b   []byte
	p   int
	err error
}

func (r *leReader) left() int { return len(r.b) - r.p }

func (r *leReader) bytes(n uint32) []byte {
	if r.err != nil || uint64(n) > uint64(r.left()) {
		if r.err == nil {
			r.err = fmt.Errorf("value of %d bytes at %d, %d left: %w", n, r.p, r.left(), errTNEFTruncated)
		}
		return nil
	}
	v := r.b[r.p : r.p+int(n)]
	r.p += int(n)
	return v
}

func (r *leReader) skip(n uint32) { r.bytes(n) }

func (r *leReader) u16() uint16 {
	if b := r.bytes(2); b != nil {
		return binary.LittleEndian.Uint16(b)
	}
	return 0
}

func (r *leReader) u32() uint32 {
	if b := r.bytes(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

// cstring8 is an 8-bit string up to its NUL: UTF-8 if it is, else
// Windows-1252 (the code page nearly every winmail.dat declares).
func cstring8(b []byte) string {
	if i := indexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	if utf8.Valid(b) {
		return string(b)
	}
	s, _ := charmap.Windows1252.NewDecoder().Bytes(b)
	return string(s)
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// mapiString decodes a string property: UTF-16LE for PT_UNICODE.
func mapiString(typ uint16, b []byte) string {
	if typ != ptUnicode {
		return cstring8(b)
	}
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		c := binary.LittleEndian.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}

func extractTNEF(j *Job, data []byte) error {
	m, perr := parseTNEF(data, j.lim.MaxMembers)
	if errors.Is(perr, ErrMembers) {
		j.limit(ReasonMembers)
	}
	if err := j.Text(strings.TrimSpace(m.subject)); err != nil {
		return err
	}
	switch {
	case len(m.body) > 0:
		if err := j.Text(cstring8(m.body)); err != nil {
			return err
		}
	case len(m.rtf) > 0:
		rtf, err := decompressRTF(j, m.rtf)
		if errors.Is(err, ErrExpansion) || errors.Is(err, ErrTimeout) {
			return err
		}
		if err == nil {
			r := j.Nested("body.rtf", "application/rtf", rtf)
			if err := j.Text(r.Text); err != nil {
				return err
			}
			if err := j.propagate(r); err != nil {
				return err
			}
		} else if perr == nil {
			perr = fmt.Errorf("tnef: body: %w", err)
		}
	case len(m.html) > 0:
		r := j.Nested("body.html", "text/html", m.html)
		if err := j.Text(r.Text); err != nil {
			return err
		}
		if err := j.propagate(r); err != nil {
			return err
		}
	}
	for i, a := range m.attachments {
		if err := j.Alive(); err != nil {
			return err
		}
		name := strings.ToValidUTF8(a.name(i), "\uFFFD")
		var res *Result
		if !a.hasData {
			res = &Result{Format: Detect(name, a.mime, nil), Status: Failed, Reason: ReasonCorrupt, Detail: "attachment without data"}
		}
		if err := j.addMember(name, a.mime, int64(len(a.data)), a.data, res, true); err != nil {
			return err
		}
	}
	return perr
}

// prebufRTF is the dictionary compressed RTF starts with ([MS-OXRTFCP]
// 2.1.2.1): 207 bytes.
const prebufRTF = "{\\rtf1\\ansi\\mac\\deff0\\deftab720{\\fonttbl;}{\\f0\\fnil \\froman \\fswiss \\fmodern \\fscript \\fdecor MS Sans SerifSymbolArialTimes New RomanCourier{\\colortbl\\red0\\green0\\blue0\r\n\\par \\pard\\plain\\f0\\fs20\\b\\i\\u\\tab\\tx"

const (
	rtfCompressed   = 0x75465A4C // "LZFu"
	rtfUncompressed = 0x414C454D // "MELA"
)

// decompressRTF decompresses PR_RTF_COMPRESSED: a 16-byte header (sizes,
// type, CRC, which is not checked), then LZFu: control bytes whose bits,
// low first, say literal byte or 2-byte reference (12-bit offset into a
// 4096-byte ring dictionary, 4-bit length - 2); a reference to the write
// position ends the stream. RAWSIZE is a hint, never an allocation.
func decompressRTF(j *Job, b []byte) ([]byte, error) {
	if len(b) < 16 {
		return nil, errors.New("compressed RTF: header truncated")
	}
	compSize := uint64(binary.LittleEndian.Uint32(b))
	in := b[16:min(uint64(len(b)), 4+max(compSize, 12))]
	switch binary.LittleEndian.Uint32(b[8:]) {
	case rtfUncompressed:
		if err := j.Expand(int64(len(in))); err != nil {
			return nil, err
		}
		return in, nil
	case rtfCompressed:
	default:
		return nil, fmt.Errorf("compressed RTF: unknown type %#08x", binary.LittleEndian.Uint32(b[8:]))
	}
	var dict [4096]byte
	copy(dict[:], prebufRTF)
	w := len(prebufRTF)
	out := make([]byte, 0, min(4*len(in), 1<<20))
	accounted := 0
	account := func() error {
		err := j.Expand(int64(len(out) - accounted))
		accounted = len(out)
		return err
	}
	for p := 0; p < len(in); {
		ctl := in[p]
		p++
		for bit := 0; bit < 8; bit++ {
			if p >= len(in) {
				return out, account() // no end marker: what there is
			}
			if ctl&(1<<bit) == 0 {
				out = append(out, in[p])
				dict[w] = in[p]
				w = (w + 1) & 4095
				p++
				continue
			}
			if p+1 >= len(in) {
				return out, account()
			}
			ref := int(in[p])<<8 | int(in[p+1])
			p += 2
			off, n := ref>>4, ref&15+2
			if off == w {
				return out, account()
			}
			for k := 0; k < n; k++ {
				c := dict[(off+k)&4095]
				out = append(out, c)
				dict[w] = c
				w = (w + 1) & 4095
			}
		}
		if len(out)-accounted >= 64<<10 {
			if err := account(); err != nil {
				return nil, err
			}
		}
	}
	return out, account()
}
