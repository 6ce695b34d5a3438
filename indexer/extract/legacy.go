package extract

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/richardlehane/mscfb"
	"golang.org/x/text/encoding/charmap"
)

// Legacy Office: Word 97-2003 (.doc) and Excel 97-2003 (.xls) are OLE
// compound files (MS-CFB), read here with github.com/richardlehane/mscfb
// (maintained, pure Go, bounds its allocations and detects sector-chain
// cycles), and their streams parsed by code of our own, bounded by the
// stream's length:
//
//   - DOC (MS-DOC): the FIB gives the piece table (Clx in the 0Table or
//     1Table stream); each piece is CP1252 ("compressed") or UTF-16 text
//     at an offset of the WordDocument stream. All stories are read in
//     order (main text, footnotes, headers and footers, comments, text
//     boxes); field codes (between 0x13 and 0x14) are left out, their
//     results kept. Word 6/95 files (nFib < 101) are not read.
//
//   - XLS (MS-XLS, BIFF8): the shared string table (SST, across CONTINUE
//     records), then each sheet's cells in record order: LABELSST, LABEL,
//     NUMBER, RK, MULRK, BOOLERR, FORMULA's cached value (and its STRING).
//     BIFF5 and older (Excel 95) are not read.
//
//   - PPT (MS-PPT): the records of the "PowerPoint Document" stream, in
//     stream order: TextCharsAtom (UTF-16) and TextBytesAtom (Latin-1) of
//     slides, notes and the slide list, outside the masters and the
//     handout (their text is placeholder prompts: "Click to edit the
//     title text format"); a text the slide list already gave is not
//     repeated from a slide's drawing. The persist directory is not
//     followed: edits saved incrementally ("fast save") may show both an
//     old and a new text, which search does not mind.
//
// A FILEPASS record (XLS), the FIB's fEncrypted bit (DOC), an
// EncryptedSummary stream or a CryptSession10Container record (PPT) is
// ErrEncrypted.
//
// OLE also matters to the OOXML readers: Office saves a password-protected
// .docx/.xlsx/.pptx as an OLE file with EncryptionInfo and
// EncryptedPackage streams (MS-OFFCRYPTO 2.3.4): reported encrypted.
func init() {
	register("doc", extractDOC)
	register("xls", extractXLS)
	register("ppt", extractPPT)
}

// oleMagic starts every OLE compound file.
var oleMagic = []byte{0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1}

var oleEncryptedPackage = utf16le("EncryptedPackage")

// oleIsEncryptedPackage reports whether an OLE file holds an
// EncryptedPackage stream: by its directory when mscfb reads it, else by
// the name in UTF-16LE anywhere in the file (directory entries hold names
// in the clear; a false positive costs only a wrong reason on a file that
// is not OOXML anyway).
func oleIsEncryptedPackage(data []byte) bool {
	if !bytes.HasPrefix(data, oleMagic) {
		return false
	}
	if streams, err := oleStreams(data); err == nil {
		_, ok := streams["EncryptedPackage"]
		return ok
	}
	return bytes.Contains(data, oleEncryptedPackage)
}

func utf16le(s string) []byte {
	var b []byte
	for _, u := range utf16.Encode([]rune(s)) {
		b = append(b, byte(u), byte(u>>8))
	}
	return b
}

// oleStreams lists an OLE file's top-level streams by name (without reading
// them).
func oleStreams(data []byte) (streams map[string]*mscfb.File, err error) {
	defer func() {
		if p := recover(); p != nil {
			streams, err = nil, fmt.Errorf("ole: %v", p)
		}
	}()
	r, err := mscfb.New(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("ole: %w", err)
	}
	streams = map[string]*mscfb.File{}
	for n := 0; ; n++ {
		f, err := r.Next()
		if err == io.EOF {
			return streams, nil
		}
		if err != nil {
			return nil, fmt.Errorf("ole: %w", err)
		}
		if n > 1<<16 {
			return nil, errors.New("ole: more than 65,536 directory entries")
		}
		if len(f.Path) == 0 && f.Size > 0 {
			if _, dup := streams[f.Name]; !dup {
				streams[f.Name] = f
			}
		}
	}
}

// oleRead reads a stream whole. A stream is stored, not compressed, so it
// is no longer than the file (a directory that says otherwise is corrupt).
func oleRead(data []byte, f *mscfb.File) ([]byte, error) {
	if f.Size > int64(len(data)) {
		return nil, fmt.Errorf("ole: stream %s of %d bytes in a file of %d", f.Name, f.Size, len(data))
	}
	b, err := io.ReadAll(io.LimitReader(f, f.Size))
	if err != nil {
		return nil, fmt.Errorf("ole: stream %s: %w", f.Name, err)
	}
	return b, nil
}

func oleOpen(data []byte, need ...string) (map[string][]byte, error) {
	streams, err := oleStreams(data)
	if err != nil {
		return nil, err
	}
	if _, ok := streams["EncryptedPackage"]; ok {
		return nil, fmt.Errorf("password-protected office document: %w", ErrEncrypted)
	}
	out := map[string][]byte{}
	for _, name := range need {
		f := streams[name]
		if f == nil {
			continue
		}
		if out[name], err = oleRead(data, f); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// DOC

func extractDOC(j *Job, data []byte) error {
	s, err := oleOpen(data, "WordDocument", "0Table", "1Table")
	if err != nil {
		return err
	}
	wd := s["WordDocument"]
	if len(wd) < 154 || binary.LittleEndian.Uint16(wd) != 0xa5ec {
		return errors.New("doc: no Word 97-2003 WordDocument stream")
	}
	nFib := binary.LittleEndian.Uint16(wd[2:])
	flags := binary.LittleEndian.Uint16(wd[0x0a:])
	if flags&0x0100 != 0 {
		return fmt.Errorf("doc: password-protected: %w", ErrEncrypted)
	}
	if nFib < 101 {
		return fmt.Errorf("doc: Word 6/95 file (nFib %d) not read", nFib)
	}
	table := s["0Table"]
	if flags&0x0200 != 0 {
		table = s["1Table"]
	}
	// FibBase (32 bytes), csw + rgW, cslw + rgLw, cbRgFcLcb + rgFcLcb.
	off := 32
	csw := int(binary.LittleEndian.Uint16(wd[off:]))
	off += 2 + 2*csw
	if off+2 > len(wd) {
		return errors.New("doc: FIB truncated")
	}
	cslw := int(binary.LittleEndian.Uint16(wd[off:]))
	off += 2 + 4*cslw
	if off+2 > len(wd) {
		return errors.New("doc: FIB truncated")
	}
	cb := int(binary.LittleEndian.Uint16(wd[off:]))
	off += 2
	const iClx = 33 // fcClx/lcbClx in FibRgFcLcb97
	if cb <= iClx || off+8*(iClx+1) > len(wd) {
		return errors.New("doc: FIB has no piece table location")
	}
	fcClx := int64(binary.LittleEndian.Uint32(wd[off+8*iClx:]))
	lcbClx := int64(binary.LittleEndian.Uint32(wd[off+8*iClx+4:]))
	if fcClx+lcbClx > int64(len(table)) || lcbClx == 0 {
		return fmt.Errorf("doc: piece table at %d+%d outside the %d-byte table stream", fcClx, lcbClx, len(table))
	}
	clx := table[fcClx : fcClx+lcbClx]
	// Skip Prc entries (0x01) to the Pcdt (0x02).
	for len(clx) > 0 && clx[0] == 0x01 {
		if len(clx) < 3 {
			return errors.New("doc: Clx truncated")
		}
		n := int(binary.LittleEndian.Uint16(clx[1:]))
		if 3+n > len(clx) {
			return errors.New("doc: Clx truncated")
		}
		clx = clx[3+n:]
	}
	if len(clx) < 5 || clx[0] != 0x02 {
		return errors.New("doc: no piece table in Clx")
	}
	lcb := int(binary.LittleEndian.Uint32(clx[1:]))
	plc := clx[5:]
	if lcb > len(plc) || lcb < 4 || (lcb-4)%12 != 0 {
		return fmt.Errorf("doc: piece table of %d bytes", lcb)
	}
	n := (lcb - 4) / 12
	w := &docWordText{j: j}
	for i := 0; i < n; i++ {
		if i%256 == 0 {
			if err := j.Alive(); err != nil {
				return err
			}
		}
		cp0 := binary.LittleEndian.Uint32(plc[4*i:])
		cp1 := binary.LittleEndian.Uint32(plc[4*i+4:])
		pcd := plc[4*(n+1)+8*i:]
		fc := binary.LittleEndian.Uint32(pcd[2:])
		if cp1 < cp0 {
			return fmt.Errorf("doc: piece %d runs backwards", i)
		}
		chars := int64(cp1 - cp0)
		var text string
		if fc&0x40000000 != 0 {
			at := int64(fc&0x3fffffff) / 2
			if at+chars > int64(len(wd)) {
				return fmt.Errorf("doc: piece %d outside the WordDocument stream", i)
			}
			b, _ := charmap.Windows1252.NewDecoder().Bytes(wd[at : at+chars])
			text = string(b)
		} else {
			at := int64(fc)
			if at+2*chars > int64(len(wd)) {
				return fmt.Errorf("doc: piece %d outside the WordDocument stream", i)
			}
			u := make([]uint16, chars)
			for k := range u {
				u[k] = binary.LittleEndian.Uint16(wd[at+2*int64(k):])
			}
			text = string(utf16.Decode(u))
		}
		if err := w.write(text); err != nil {
			return err
		}
	}
	return w.flush()
}

// docWordText turns Word's text (its special characters) into lines.
type docWordText struct {
	j     *Job
	line  strings.Builder
	field []bool // open fields: true once past the separator (the result)
}

func (w *docWordText) write(s string) error {
	for _, r := range s {
		switch r {
		case 0x13: // field begin: the code follows
			if len(w.field) < 64 {
				w.field = append(w.field, false)
			}
			continue
		case 0x14: // field separator: the result follows
			if n := len(w.field); n > 0 {
				w.field[n-1] = true
			}
			continue
		case 0x15: // field end
			if n := len(w.field); n > 0 {
				w.field = w.field[:n-1]
			}
			continue
		}
		if n := len(w.field); n > 0 && !w.field[n-1] {
			continue // inside a field code
		}
		switch r {
		case '\r', 0x0b, 0x0c: // paragraph, line break, page or section break
			if err := w.flush(); err != nil {
				return err
			}
		case 0x07: // end of a cell; a second one in a row ends the row
			if b := w.line.String(); strings.HasSuffix(b, "\t") {
				if err := w.flush(); err != nil {
					return err
				}
				continue
			}
			w.line.WriteByte('\t')
		case 0x1e:
			w.line.WriteByte('-')
		case 0xa0, '\t':
			w.line.WriteByte(' ')
		case 0x01, 0x02, 0x03, 0x04, 0x05, 0x08, 0x1f:
			// pictures, note references, separators, optional hyphens
		default:
			if r >= 0x20 {
				w.line.WriteRune(r)
			}
		}
		if w.line.Len() > w.j.lim.MaxText {
			if err := w.flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (w *docWordText) flush() error {
	s := strings.TrimSpace(w.line.String())
	w.line.Reset()
	if s == "" {
		return nil
	}
	return w.j.Text(s + "\n")
}

// XLS

const (
	xlsBOF        = 0x0809
	xlsEOF        = 0x000a
	xlsFilePass   = 0x002f
	xlsBoundSheet = 0x0085
	xlsSST        = 0x00fc
	xlsContinue   = 0x003c
	xlsLabelSST   = 0x00fd
	xlsLabel      = 0x0204
	xlsNumber     = 0x0203
	xlsRK         = 0x027e
	xlsMulRK      = 0x00bd
	xlsFormula    = 0x0006
	xlsString     = 0x0207
	xlsBoolErr    = 0x0205
)

// xlsRecord is one BIFF record; cont holds the CONTINUE records after it.
type xlsRecord struct {
	typ  uint16
	data []byte
	cont [][]byte
	pos  int // offset of the record in the stream
}

func xlsRecords(b []byte) ([]xlsRecord, error) {
	var out []xlsRecord
	for off := 0; off < len(b); {
		if off+4 > len(b) {
			return out, errors.New("xls: record header truncated")
		}
		typ := binary.LittleEndian.Uint16(b[off:])
		n := int(binary.LittleEndian.Uint16(b[off+2:]))
		if off+4+n > len(b) {
			return out, fmt.Errorf("xls: record %#x at %d truncated", typ, off)
		}
		data := b[off+4 : off+4+n]
		if typ == xlsContinue && len(out) > 0 {
			last := &out[len(out)-1]
			last.cont = append(last.cont, data)
		} else {
			out = append(out, xlsRecord{typ: typ, data: data, pos: off})
		}
		off += 4 + n
	}
	return out, nil
}

func extractXLS(j *Job, data []byte) error {
	s, err := oleOpen(data, "Workbook")
	if err != nil {
		return err
	}
	wb := s["Workbook"]
	if wb == nil {
		return errors.New("xls: no Workbook stream (Excel 95 and older are not read)")
	}
	recs, err := xlsRecords(wb)
	if len(recs) == 0 || recs[0].typ != xlsBOF || len(recs[0].data) < 2 || binary.LittleEndian.Uint16(recs[0].data) != 0x0600 {
		if err == nil {
			err = errors.New("xls: not a BIFF8 workbook")
		}
		return err
	}
	var sst []string
	names := map[int]string{} // sheet BOF offset -> name
	for i, r := range recs {
		if i%4096 == 0 {
			if e := j.Alive(); e != nil {
				return e
			}
		}
		switch r.typ {
		case xlsFilePass:
			return fmt.Errorf("xls: password-protected: %w", ErrEncrypted)
		case xlsBoundSheet:
			if len(r.data) >= 8 {
				c := &xlsCursor{segs: [][]byte{r.data[6:]}}
				name, _ := c.str(int(r.data[6]), true)
				names[int(binary.LittleEndian.Uint32(r.data))] = name
			}
		case xlsSST:
			if sst, err = xlsSharedStrings(j, r); err != nil {
				return err
			}
		}
		if r.typ == xlsEOF {
			break // the globals end: the sheets follow
		}
	}
	line := &docLineWriter{j: j}
	row := -1
	pendingRow := -1 // a FORMULA whose string value is in the next STRING record
	cell := func(rw int, v string) error {
		if rw != row {
			if err := line.flush(); err != nil {
				return err
			}
			row = rw
		}
		if v != "" {
			line.addString(v)
			line.cell()
		}
		return line.grow()
	}
	for i, r := range recs {
		if i%4096 == 0 {
			if e := j.Alive(); e != nil {
				return e
			}
		}
		d := r.data
		var err error
		switch r.typ {
		case xlsBOF:
			if name, ok := names[r.pos]; ok {
				if err = line.flush(); err == nil {
					err = j.Text(name + "\n")
				}
				row = -1
			}
		case xlsLabelSST:
			if len(d) >= 10 {
				k := int(binary.LittleEndian.Uint32(d[6:]))
				if k < len(sst) {
					err = cell(int(binary.LittleEndian.Uint16(d)), sst[k])
				}
			}
		case xlsLabel:
			if len(d) >= 9 {
				c := &xlsCursor{segs: [][]byte{d[6:]}}
				v, _ := c.str(-1, false)
				err = cell(int(binary.LittleEndian.Uint16(d)), v)
			}
		case xlsNumber:
			if len(d) >= 14 {
				err = cell(int(binary.LittleEndian.Uint16(d)), xlsNum(math.Float64frombits(binary.LittleEndian.Uint64(d[6:]))))
			}
		case xlsRK:
			if len(d) >= 10 {
				err = cell(int(binary.LittleEndian.Uint16(d)), xlsNum(xlsRKValue(binary.LittleEndian.Uint32(d[6:]))))
			}
		case xlsMulRK:
			rw := int(binary.LittleEndian.Uint16(d))
			for k := 4; k+6 <= len(d)-2 && err == nil; k += 6 {
				err = cell(rw, xlsNum(xlsRKValue(binary.LittleEndian.Uint32(d[k+2:]))))
			}
		case xlsBoolErr:
			if len(d) >= 8 && d[7] == 0 {
				err = cell(int(binary.LittleEndian.Uint16(d)), xlsBool(d[6]))
			}
		case xlsFormula:
			if len(d) >= 14 {
				rw := int(binary.LittleEndian.Uint16(d))
				res := d[6:14]
				if res[6] == 0xff && res[7] == 0xff {
					switch res[0] {
					case 0:
						pendingRow = rw
					case 1:
						err = cell(rw, xlsBool(res[2]))
					}
				} else {
					err = cell(rw, xlsNum(math.Float64frombits(binary.LittleEndian.Uint64(res))))
				}
			}
		case xlsString:
			if pendingRow >= 0 {
				c := &xlsCursor{segs: append([][]byte{d}, r.cont...)}
				v, _ := c.str(-1, false)
				err = cell(pendingRow, v)
				pendingRow = -1
			}
		}
		if err != nil {
			return err
		}
	}
	return line.flush()
}

func xlsBool(b byte) string {
	if b != 0 {
		return "TRUE"
	}
	return "FALSE"
}

func xlsRKValue(rk uint32) float64 {
	var v float64
	if rk&0x02 != 0 {
		v = float64(int32(rk) >> 2)
	} else {
		v = math.Float64frombits(uint64(rk&0xfffffffc) << 32)
	}
	if rk&0x01 != 0 {
		v /= 100
	}
	return v
}

func xlsNum(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return ""
	}
	if math.Abs(v) < 1e15 {
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// xlsSharedStrings reads the SST record and its CONTINUE records. The
// strings held are bounded by docMaxTable, their count by what the data can
// hold, not by the count the record claims.
func xlsSharedStrings(j *Job, r xlsRecord) ([]string, error) {
	if len(r.data) < 8 {
		return nil, errors.New("xls: SST truncated")
	}
	unique := int(binary.LittleEndian.Uint32(r.data[4:]))
	c := &xlsCursor{segs: append([][]byte{r.data[8:]}, r.cont...)}
	out := make([]string, 0, min(unique, len(r.data)/3+1024))
	held, bound := 0, docMaxTable(j)
	for i := 0; i < unique; i++ {
		if i%4096 == 0 {
			if err := j.Alive(); err != nil {
				return nil, err
			}
		}
		s, err := c.str(-1, false)
		if err != nil {
			return out, nil // a short table: the strings read so far
		}
		if held += len(s); held > bound {
			j.limit(ReasonText) // see ooxmlSharedStrings
			return out, nil
		}
		out = append(out, s)
	}
	return out, nil
}

// xlsCursor reads BIFF8 strings across CONTINUE boundaries: a string's
// characters may continue in the next record, which then starts with a
// new flags byte (compressed or UTF-16 for the rest).
type xlsCursor struct {
	segs [][]byte
}

var errXLSShort = errors.New("xls: string runs past its record")

func (c *xlsCursor) byte1() (byte, error) {
	for len(c.segs) > 0 && len(c.segs[0]) == 0 {
		c.segs = c.segs[1:]
	}
	if len(c.segs) == 0 {
		return 0, errXLSShort
	}
	b := c.segs[0][0]
	c.segs[0] = c.segs[0][1:]
	return b, nil
}

func (c *xlsCursor) u16() (uint16, error) {
	lo, err := c.byte1()
	if err != nil {
		return 0, err
	}
	hi, err := c.byte1()
	return uint16(lo) | uint16(hi)<<8, err
}

func (c *xlsCursor) skip(n int) error {
	for ; n > 0; n-- {
		if _, err := c.byte1(); err != nil {
			return err
		}
	}
	return nil
}

// str reads an XLUnicodeString (cch given, or -1 for a 16-bit count
// first); short is the ShortXLUnicodeString form (8-bit count already
// read by the caller, no rich or phonetic parts).
func (c *xlsCursor) str(cch int, short bool) (string, error) {
	var err error
	if short {
		if _, err = c.byte1(); err != nil { // the count byte, given as cch
			return "", err
		}
	} else if cch < 0 {
		var n uint16
		if n, err = c.u16(); err != nil {
			return "", err
		}
		cch = int(n)
	}
	flags, err := c.byte1()
	if err != nil {
		return "", err
	}
	runs, ext := 0, 0
	if !short {
		if flags&0x08 != 0 {
			n, err := c.u16()
			if err != nil {
				return "", err
			}
			runs = int(n)
		}
		if flags&0x04 != 0 {
			lo, err1 := c.u16()
			hi, err2 := c.u16()
			if err1 != nil || err2 != nil {
				return "", errXLSShort
			}
			ext = int(uint32(lo) | uint32(hi)<<16)
		}
	}
	wide := flags&0x01 != 0
	u := make([]uint16, 0, min(cch, 1<<16))
	for k := 0; k < cch; k++ {
		if len(c.segs) > 0 && len(c.segs[0]) == 0 && len(c.segs) > 1 {
			// The characters continue in a CONTINUE record: its first byte
			// says how they are stored from here on.
			c.segs = c.segs[1:]
			f, err := c.byte1()
			if err != nil {
				return "", err
			}
			wide = f&0x01 != 0
		}
		if wide {
			v, err := c.u16()
			if err != nil {
				return string(utf16.Decode(u)), err
			}
			u = append(u, v)
		} else {
			b, err := c.byte1()
			if err != nil {
				return string(utf16.Decode(u)), err
			}
			u = append(u, uint16(b)) // "compressed": the high byte is zero (Latin-1)
		}
	}
	if err := c.skip(4*runs + max(0, ext)); err != nil {
		return string(utf16.Decode(u)), err
	}
	return string(utf16.Decode(u)), nil
}

// PPT

const (
	pptDocument      = 0x03e8
	pptMainMaster    = 0x03f8
	pptHandout       = 0x0fc9
	pptSlideList     = 0x0ff0 // SlideListWithText
	pptTextChars     = 0x0fa0
	pptTextBytes     = 0x0fa8
	pptCryptSession  = 0x2f14
	pptMaxDepth      = 32
	pptMasterListIns = 1 // SlideListWithText instance of the masters
)

func extractPPT(j *Job, data []byte) error {
	streams, err := oleStreams(data)
	if err != nil {
		return err
	}
	if _, ok := streams["EncryptedSummary"]; ok {
		return fmt.Errorf("ppt: password-protected: %w", ErrEncrypted)
	}
	f := streams["PowerPoint Document"]
	if f == nil {
		return errors.New("ppt: no PowerPoint Document stream (PowerPoint 95 and older are not read)")
	}
	b, err := oleRead(data, f)
	if err != nil {
		return err
	}
	p := &pptText{j: j, listed: map[string]bool{}}
	return p.walk(b, 0, false)
}

type pptText struct {
	j      *Job
	listed map[string]bool // texts given by a slide list
	n      int
}

// walk reads the records of b (a container's content); inList: inside a
// SlideListWithText.
func (p *pptText) walk(b []byte, depth int, inList bool) error {
	if depth > pptMaxDepth {
		return fmt.Errorf("ppt: records nested deeper than %d", pptMaxDepth)
	}
	for len(b) > 0 {
		if p.n++; p.n%4096 == 0 {
			if err := p.j.Alive(); err != nil {
				return err
			}
		}
		if len(b) < 8 {
			return errors.New("ppt: record header truncated")
		}
		verInst := binary.LittleEndian.Uint16(b)
		typ := binary.LittleEndian.Uint16(b[2:])
		n := int64(binary.LittleEndian.Uint32(b[4:]))
		if n > int64(len(b)-8) {
			return fmt.Errorf("ppt: record %#x of %d bytes past its container", typ, n)
		}
		body := b[8 : 8+n]
		b = b[8+n:]
		switch {
		case typ == pptCryptSession:
			return fmt.Errorf("ppt: password-protected: %w", ErrEncrypted)
		case typ == pptMainMaster || typ == pptHandout:
			continue // placeholder prompts, not the presentation's text
		case typ == pptSlideList && verInst>>4 == pptMasterListIns:
			continue
		case verInst&0x0f == 0x0f: // a container
			if err := p.walk(body, depth+1, inList || typ == pptSlideList); err != nil {
				return err
			}
		case typ == pptTextChars || typ == pptTextBytes:
			var text string
			if typ == pptTextChars {
				u := make([]uint16, len(body)/2)
				for i := range u {
					u[i] = binary.LittleEndian.Uint16(body[2*i:])
				}
				text = string(utf16.Decode(u))
			} else {
				r := make([]rune, len(body))
				for i, c := range body {
					r[i] = rune(c) // Latin-1: the high byte is zero
				}
				text = string(r)
			}
			text = strings.TrimSpace(strings.NewReplacer("\r", "\n", "\v", "\n").Replace(text))
			if text == "" || text == "*" { // "*": a field's place (the slide number)
				continue
			}
			if inList {
				p.listed[text] = true
			} else if p.listed[text] {
				continue
			}
			if err := p.j.Text(text + "\n"); err != nil {
				return err
			}
		}
	}
	return nil
}
