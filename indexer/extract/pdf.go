package extract

import (
	"bytes"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/ledongthuc/pdf"
)

// PDF text, by github.com/ledongthuc/pdf (pure Go, a maintained fork of
// rsc.io/pdf), laid out here from its positioned glyphs.
//
// Decision: ledongthuc/pdf, not PDFium compiled to WebAssembly
// (github.com/klippa-app/go-pdfium on wazero). Measured on 14 PDFs (Debian
// documentation packages' manuals from pdfTeX, Ghostscript and Apache FOP,
// and LibreOffice's) against pdftotext, alternating in the same run
// (docs/benchmarks.md, "Attachment text (issue 15)"): word recall ours
// 99.2 %, PDFium 98.5 %, the library's own GetPlainText 49.7 % (it drops
// the word gaps pdfTeX and Ghostscript encode as glyph positions:
// "ThismanualisforGNU…"); ms/page ours 2.1, PDFium 4.2; and PDFium costs
// 2.5 s or more to start (wazero compiles the 5.8 MB module), 330-400 MB
// RSS for one instance (over the 300 MB the whole process may use) and
// 13 MB of binary. So the library parses (objects, streams, fonts and
// their ToUnicode maps) and pdfPageText interprets the content and lays
// the glyphs out.
//
// A third-party parser is the one place here whose loops this package does
// not write, so the input is checked before the library sees it, for what
// would make it allocate or loop without end (pdfPrecheck): cross-reference
// sizes and subsections beyond what the file could hold (the library
// allocates the table from them), a cyclic /Prev chain (it follows it
// forever), streams whose inflated size, summed, is over MaxExpanded (it
// inflates without a limit), and arrays or dictionaries of more than
// pdfMaxObject bytes (it parses an object whole into Go values): those are
// refused before parsing, at 2.6 % of the extraction's time.
// Pages are walked here, not by the library (its Page(i) walks the tree
// from the root for every page, and follows Kids and Parent cycles), with
// a bound on nodes and depth, and j.Alive between pages. A panic inside
// the library is recovered per page (the page's failure is reported, the
// other pages' text kept), and the content interpreter checks the deadline
// and the text limit every 4,096 operators. What is left, a loop inside
// the library on one object (an /Extends cycle of object streams), is what
// Extract's deadline abandons and counts.
func init() { register("pdf", extractPDF) }

const (
	pdfMaxTreeNodes = 1 << 17 // page-tree nodes visited: more is a cycle or a bomb
	pdfMaxTreeDepth = 64
	pdfMaxPrevChain = 1024
)

func extractPDF(j *Job, data []byte) error {
	if err := pdfPrecheck(j, data); err != nil {
		return err
	}
	// The library accepts only %PDF-1.0 to 1.7; a 2.0 file's syntax is the
	// same for what is read here.
	if len(data) > 8 && bytes.HasPrefix(data, []byte("%PDF-2.")) {
		data = append([]byte("%PDF-1.7"), data[8:]...)
	}
	r, err := pdf.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		if errors.Is(err, pdf.ErrInvalidPassword) || strings.Contains(err.Error(), "encrypt") {
			return fmt.Errorf("pdf: %v: %w", err, ErrEncrypted)
		}
		return fmt.Errorf("pdf: %w", err)
	}
	pages, err := pdfPages(j, r)
	if err != nil {
		return err
	}
	var firstErr error
	for i, p := range pages {
		if err := j.Alive(); err != nil {
			return err
		}
		// A page that fails keeps the text before the failure: the
		// interpreter's stops (deadline, text limit) end the document, a
		// malformed page only itself.
		text, err := pdfPageText(j, p)
		if terr := j.Text(text); terr != nil {
			return terr
		}
		if errors.Is(err, ErrTimeout) || errors.Is(err, ErrText) {
			return err
		}
		if err != nil && firstErr == nil {
			firstErr = fmt.Errorf("pdf page %d: %w", i+1, err)
		}
	}
	return firstErr
}

// pdfPages lists the page objects in order, walking the page tree with a
// bound on the nodes it visits and on its depth (a Kids cycle ends there).
func pdfPages(j *Job, r *pdf.Reader) (pages []pdf.Page, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("pdf page tree: %v", p)
		}
	}()
	nodes := 0
	var walk func(v pdf.Value, depth int) error
	walk = func(v pdf.Value, depth int) error {
		if nodes++; nodes > pdfMaxTreeNodes {
			return fmt.Errorf("pdf: page tree of more than %d nodes (a cycle?)", pdfMaxTreeNodes)
		}
		if depth > pdfMaxTreeDepth {
			return fmt.Errorf("pdf: page tree deeper than %d (a cycle?)", pdfMaxTreeDepth)
		}
		if nodes%1024 == 0 {
			if err := j.Alive(); err != nil {
				return err
			}
		}
		switch v.Key("Type").Name() {
		case "Page":
			pages = append(pages, pdf.Page{V: v})
			return nil
		case "Pages", "":
			kids := v.Key("Kids")
			for i := 0; i < kids.Len(); i++ {
				if err := walk(kids.Index(i), depth+1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	root := r.Trailer().Key("Root").Key("Pages")
	if root.IsNull() {
		return nil, errors.New("pdf: no page tree")
	}
	return pages, walk(root, 0)
}

// pdfPageText interprets one page's content stream for its text: the text
// and graphics state that place each string (Tm, Td, TD, T*, TL, Tc, Tw,
// Tz, Ts, TJ offsets, cm, q/Q) and the fonts that decode and measure it,
// each parsed once per page (the library's Content re-parses a font and its
// ToUnicode map at every Tf, which made pdfTeX manuals take seconds a
// page). Layout: a new line where the baseline moves by more than half the
// font size; a space where a string starts further right than the last
// one ended by more than pdfWordGap of the font size (pdfTeX and
// Ghostscript write word gaps as positions, not spaces), or back to the
// left (a column, a table cell). Ligature glyphs become their letters, as
// pdftotext writes them.
func pdfPageText(j *Job, p pdf.Page) (text string, err error) {
	var l *pdfLayout
	defer func() {
		if x := recover(); x != nil {
			if l != nil {
				text = l.b.String()
			}
			if e, ok := x.(pdfStop); ok {
				err = e.err
				return
			}
			err = fmt.Errorf("%v", x)
		}
	}()
	// A Parent cycle without Resources would make the library's inherited
	// lookup loop forever.
	v := p.V
	for d := 0; !v.IsNull() && v.Key("Resources").IsNull(); d++ {
		if d > pdfMaxTreeDepth {
			return "", errors.New("page's Parent chain does not end")
		}
		v = v.Key("Parent")
	}
	if p.V.Key("Contents").IsNull() {
		return "", nil
	}
	l = &pdfLayout{fonts: map[string]*pdfFont{}, page: p, th: 1, tm: pdfIdent, tlm: pdfIdent, ctm: pdfIdent}
	ops := 0
	var args []pdf.Value
	pdf.Interpret(p.V.Key("Contents"), func(stk *pdf.Stack, op string) {
		if ops++; ops%4096 == 0 {
			if err := j.Alive(); err != nil {
				panic(pdfStop{err})
			}
			if l.b.Len() > j.lim.MaxText {
				panic(pdfStop{ErrText})
			}
		}
		args = args[:0]
		for n := stk.Len(); n > 0; n-- {
			args = append(args, pdf.Value{})
		}
		for i := len(args) - 1; i >= 0; i-- {
			args[i] = stk.Pop()
		}
		l.op(op, args)
	})
	if l.b.Len() > 0 {
		l.b.WriteByte('\n')
	}
	return l.b.String(), nil
}

type pdfStop struct{ err error }

// pdfWordGap is the gap between two strings, as a fraction of the font
// size, from which they are two words. TeX's interword space is about a
// third of an em and shrinks to about a quarter in a tight line; kerning
// stays under a tenth.
const pdfWordGap = 0.15

type pdfMatrix [6]float64 // a b c d e f, as PDF writes them

var pdfIdent = pdfMatrix{1, 0, 0, 1, 0, 0}

func (m pdfMatrix) mul(n pdfMatrix) pdfMatrix {
	return pdfMatrix{
		m[0]*n[0] + m[1]*n[2], m[0]*n[1] + m[1]*n[3],
		m[2]*n[0] + m[3]*n[2], m[2]*n[1] + m[3]*n[3],
		m[4]*n[0] + m[5]*n[2] + n[4], m[4]*n[1] + m[5]*n[3] + n[5],
	}
}

type pdfFont struct {
	enc       pdf.TextEncoding
	composite bool // Type0: two-byte codes, widths estimated
	first     int
	widths    []float64
}

func (f *pdfFont) width(code int) float64 {
	if i := code - f.first; i >= 0 && i < len(f.widths) && f.widths[i] > 0 {
		return f.widths[i]
	}
	return 500
}

type pdfLayout struct {
	page    pdf.Page
	fonts   map[string]*pdfFont
	font    *pdfFont
	b       strings.Builder
	tm, tlm pdfMatrix
	ctm     pdfMatrix
	stack   []pdfMatrix
	tfs     float64
	th      float64
	tc, tw  float64
	tl      float64
	rise    float64
	started bool
	// Marked content: within a span with /ActualText (what a glyph
	// stands for, when the glyph itself is not text: a fallback glyph,
	// a ligature, a drawn symbol) the text is the ActualText, once.
	mcDepth     int
	actualDepth int // the mcDepth of the ActualText span; 0 when none
	actual      string
	lastSpace   bool // the text written last ends in a space
	lastX       float64
	lastY       float64
	lastSz      float64
}

func (l *pdfLayout) getFont(name string) *pdfFont {
	if f, ok := l.fonts[name]; ok {
		return f
	}
	if len(l.fonts) > 4096 {
		panic("more than 4096 fonts on a page")
	}
	pf := l.page.Font(name)
	f := &pdfFont{enc: pf.Encoder(), composite: pf.V.Key("Subtype").Name() == "Type0", first: pf.FirstChar()}
	if !f.composite {
		w := pf.V.Key("Widths")
		for i := 0; i < w.Len() && i < 65536; i++ {
			f.widths = append(f.widths, w.Index(i).Float64())
		}
	}
	l.fonts[name] = f
	return f
}

func (l *pdfLayout) op(op string, args []pdf.Value) {
	num := func(i int) float64 {
		if i < len(args) {
			return args[i].Float64()
		}
		return 0
	}
	switch op {
	case "q":
		if len(l.stack) < 1024 {
			l.stack = append(l.stack, l.ctm)
		}
	case "Q":
		if n := len(l.stack); n > 0 {
			l.ctm, l.stack = l.stack[n-1], l.stack[:n-1]
		}
	case "cm":
		if len(args) == 6 {
			l.ctm = pdfMatrix{num(0), num(1), num(2), num(3), num(4), num(5)}.mul(l.ctm)
		}
	case "BT":
		l.tm, l.tlm = pdfIdent, pdfIdent
	case "BMC":
		l.mcDepth++
	case "BDC":
		l.mcDepth++
		if len(args) == 2 && l.actualDepth == 0 {
			if at := args[1].Key("ActualText"); at.Kind() == pdf.String {
				l.actualDepth, l.actual = l.mcDepth, at.Text()
			}
		}
	case "EMC":
		if l.mcDepth == l.actualDepth {
			l.actualDepth, l.actual = 0, ""
		}
		l.mcDepth = max(0, l.mcDepth-1)
	case "Tf":
		if len(args) == 2 {
			l.font = l.getFont(args[0].Name())
			l.tfs = num(1)
		}
	case "Tc":
		l.tc = num(0)
	case "Tw":
		l.tw = num(0)
	case "Tz":
		l.th = num(0) / 100
	case "TL":
		l.tl = num(0)
	case "Ts":
		l.rise = num(0)
	case "TD":
		l.tl = -num(1)
		l.moveLine(num(0), num(1))
	case "Td":
		l.moveLine(num(0), num(1))
	case "Tm":
		if len(args) == 6 {
			l.tm = pdfMatrix{num(0), num(1), num(2), num(3), num(4), num(5)}
			l.tlm = l.tm
		}
	case "T*":
		l.moveLine(0, -l.tl)
	case "'":
		l.moveLine(0, -l.tl)
		if len(args) == 1 {
			l.show(args[0].RawString())
		}
	case "\"":
		if len(args) == 3 {
			l.tw, l.tc = num(0), num(1)
			l.moveLine(0, -l.tl)
			l.show(args[2].RawString())
		}
	case "Tj":
		if len(args) == 1 {
			l.show(args[0].RawString())
		}
	case "TJ":
		if len(args) == 1 {
			a := args[0]
			for i := 0; i < a.Len(); i++ {
				x := a.Index(i)
				if x.Kind() == pdf.String {
					l.show(x.RawString())
				} else {
					l.advance(-x.Float64() / 1000 * l.tfs * l.th)
				}
			}
		}
	}
}

func (l *pdfLayout) moveLine(tx, ty float64) {
	l.tlm = pdfMatrix{1, 0, 0, 1, tx, ty}.mul(l.tlm)
	l.tm = l.tlm
}

func (l *pdfLayout) advance(tx float64) {
	l.tm = pdfMatrix{1, 0, 0, 1, tx, 0}.mul(l.tm)
}

// show writes a string's text where it falls and moves past it. A simple
// font's string is placed glyph by glyph: groff (through Ghostscript)
// writes "as if the" as one string whose gaps are character spacing (Tc),
// so a word gap can be inside a string. A composite font's string is
// placed whole, its width estimated (its W array is not read).
func (l *pdfLayout) show(raw string) {
	f := l.font
	if f == nil || raw == "" {
		return
	}
	if l.actualDepth > 0 {
		text := l.actual
		l.actual = ""
		l.place(text, float64(len(raw))*500/1000*l.tfs*l.th, 0)
		return
	}
	if f.composite {
		text := f.enc.Decode(raw)
		var w, extra float64
		for _, r := range text {
			gw := 500.0
			if r >= 0x2e80 {
				gw = 1000
			}
			w += gw / 1000 * l.tfs
			extra += l.tc
		}
		l.place(text, w*l.th, extra*l.th)
		return
	}
	for i := 0; i < len(raw); i++ {
		extra := l.tc
		if raw[i] == ' ' {
			extra += l.tw
		}
		l.place(f.enc.Decode(raw[i:i+1]), f.width(int(raw[i]))/1000*l.tfs*l.th, extra*l.th)
	}
}

// place writes text at the current text position, after a line break or
// a space if its position says so, and advances by its width w and then
// by the spacing after it (Tc, Tw: a gap the next glyph's position shows).
func (l *pdfLayout) place(text string, w, extra float64) {
	trm := pdfMatrix{l.tfs * l.th, 0, 0, l.tfs, 0, l.rise}.mul(l.tm).mul(l.ctm)
	x, y := trm[4], trm[5]
	size := math.Hypot(trm[2], trm[3])
	if size == 0 || math.IsNaN(size) || math.IsInf(size, 0) {
		size = 1
	}
	if l.started && text != "" {
		switch {
		case math.Abs(y-l.lastY) > 0.5*max(size, l.lastSz):
			l.b.WriteByte('\n')
		case l.lastSpace:
		case x-l.lastX > pdfWordGap*size || x < l.lastX-size:
			l.b.WriteByte(' ')
		}
	}
	for _, r := range text {
		if r == '\n' || r == '\r' {
			r = ' '
		}
		l.b.WriteString(pdfLigature(string(r)))
	}
	l.advance(w)
	if text != "" {
		l.started = true
		end := pdfMatrix{l.tfs * l.th, 0, 0, l.tfs, 0, l.rise}.mul(l.tm).mul(l.ctm)
		l.lastX, l.lastY, l.lastSz = end[4], end[5], size
		l.lastSpace = text[len(text)-1] == ' '
	}
	l.advance(extra)
}

func pdfLigature(s string) string {
	if len(s) < 3 || s[0] != 0xef || s[1] != 0xac { // U+FB00..FB3F
		return s
	}
	switch s {
	case "\ufb00":
		return "ff"
	case "\ufb01":
		return "fi"
	case "\ufb02":
		return "fl"
	case "\ufb03":
		return "ffi"
	case "\ufb04":
		return "ffl"
	case "\ufb05", "\ufb06":
		return "st"
	}
	return s
}

// pdfPrecheck refuses, before the library parses anything, what would make
// it allocate beyond the limits or loop: see the package comment above.
func pdfPrecheck(j *Job, data []byte) error {
	// The most objects a file could define: a cross-reference entry takes
	// 20 bytes, an object in an object stream at least a few inflated bytes
	// (bounded by MaxExpanded).
	maxObjects := int64(len(data))/8 + j.lim.MaxExpanded/4 + 1024
	maxObjects = min(maxObjects, 1<<24)
	for rest, off := data, 0; ; {
		i := bytes.Index(rest, []byte("/Size"))
		if i < 0 {
			break
		}
		n, ok := pdfIntAfter(rest[i+5:])
		if ok && (n < 0 || n > maxObjects) {
			return fmt.Errorf("pdf: /Size %d at offset %d: more objects than the file can hold: %w", n, off+i, ErrExpansion)
		}
		rest, off = rest[i+5:], off+i+5
	}
	// Cross-reference table subsections: "xref" then "start count" lines.
	for rest, off := data, 0; ; {
		i := bytes.Index(rest, []byte("xref"))
		if i < 0 {
			break
		}
		if i < 5 || !bytes.HasSuffix(rest[:i], []byte("start")) {
			if err := pdfCheckXrefTable(rest[i+4:], maxObjects, off+i); err != nil {
				return err
			}
		}
		rest, off = rest[i+4:], off+i+4
	}
	if err := pdfCheckPrevChain(data); err != nil {
		return err
	}
	if err := pdfCheckObjects(data); err != nil {
		return err
	}
	return pdfCheckStreams(j, data)
}

// pdfMaxObject is the most bytes one array or dictionary may span. The
// library parses an object whole into Go values, ~24 bytes an element: an
// array of 32 million zeros in a 64 MiB attachment would take ~800 MB, a
// fatal out-of-memory rather than a recoverable panic. Real objects are
// small (a 100,000-page /Kids array is ~1 MB).
const pdfMaxObject = 4 << 20

// pdfSpans finds arrays and dictionaries spanning more than pdfMaxObject
// bytes, in PDF syntax fed in chunks: strings, hex strings and comments
// are skipped so that their brackets do not count. It is run over the file
// outside stream bodies and over each object stream's inflated content
// (what the library parses as objects); content streams are not checked
// (inline images make their brackets meaningless): an array of millions of
// elements in one is the residual risk, bounded by MaxExpanded.
type pdfSpans struct {
	stack      []int64
	pos        int64
	str        int  // depth of ( ) nesting, 0 outside a string
	esc        bool // after a backslash in a string
	hex        bool // inside < >
	comment    bool
	lt, gt     bool // a '<' or '>' seen, waiting for the next byte
	err        error
	skipStream func(i int) int // raw scan: the index after a stream body starting at i, or -1
}

func (s *pdfSpans) open() { s.stack = append(s.stack, s.pos) }

func (s *pdfSpans) close() {
	if n := len(s.stack); n > 0 {
		if s.pos-s.stack[n-1] > pdfMaxObject && s.err == nil {
			s.err = fmt.Errorf("pdf: an object of more than %d bytes at offset %d: %w", pdfMaxObject, s.stack[n-1], ErrExpansion)
		}
		s.stack = s.stack[:n-1]
	}
}

func (s *pdfSpans) feed(b []byte) error {
	for i := 0; i < len(b) && s.err == nil; i++ {
		c := b[i]
		s.pos++
		switch {
		case s.comment:
			s.comment = c != '\r' && c != '\n'
		case s.str > 0:
			switch {
			case s.esc:
				s.esc = false
			case c == '\\':
				s.esc = true
			case c == '(':
				s.str++
			case c == ')':
				s.str--
			}
		case s.hex:
			s.hex = c != '>'
		case s.lt:
			s.lt = false
			if c == '<' {
				s.open()
			} else {
				s.hex = c != '>'
			}
		case s.gt:
			s.gt = false
			if c == '>' {
				s.close()
			}
		default:
			switch c {
			case '%':
				s.comment = true
			case '(':
				s.str = 1
			case '<':
				s.lt = true
			case '>':
				s.gt = true
			case '[':
				s.open()
			case ']':
				s.close()
			case 'm': // the end of "stream": skip its body in the raw scan
				if s.skipStream != nil {
					if k := s.skipStream(i); k > i {
						s.pos += int64(k - i - 1)
						i = k - 1
					}
				}
			}
		}
		if len(s.stack) > 0 && s.pos-s.stack[0] > pdfMaxObject && s.err == nil {
			s.err = fmt.Errorf("pdf: an object of more than %d bytes at offset %d: %w", pdfMaxObject, s.stack[0], ErrExpansion)
		}
	}
	return s.err
}

// pdfCheckObjects runs pdfSpans over the file outside stream bodies.
func pdfCheckObjects(data []byte) error {
	s := &pdfSpans{}
	s.skipStream = func(i int) int {
		// data[i] is 'm': is it the end of the keyword "stream" (not
		// "endstream")?
		if i < 5 || string(data[i-5:i+1]) != "stream" || (i >= 8 && string(data[i-8:i-5]) == "end") {
			return -1
		}
		e := bytes.Index(data[i:], []byte("endstream"))
		if e < 0 {
			return len(data)
		}
		return i + e + len("endstream")
	}
	return s.feed(data)
}

// pdfCheckXrefTable reads the subsection headers of a table (b starts
// after "xref") and refuses one that reaches beyond maxObjects.
func pdfCheckXrefTable(b []byte, maxObjects int64, at int) error {
	for sub := 0; sub < 1<<16; sub++ {
		b = bytes.TrimLeft(b, " \t\r\n")
		start, ok1 := pdfIntAfter(b)
		if !ok1 {
			return nil // "trailer", or not a table at all
		}
		b = bytes.TrimLeft(b, "0123456789")
		count, ok2 := pdfIntAfter(b)
		if !ok2 {
			return nil
		}
		if start < 0 || count < 0 || start+count > maxObjects {
			return fmt.Errorf("pdf: cross-reference subsection %d+%d at offset %d: more objects than the file can hold: %w", start, count, at, ErrExpansion)
		}
		b = bytes.TrimLeft(b, " \t")
		b = bytes.TrimLeft(b, "0123456789")
		// Skip count entry lines.
		for k := int64(0); k < count; k++ {
			nl := bytes.IndexAny(b, "\r\n")
			if nl < 0 {
				return nil
			}
			b = bytes.TrimLeft(b[nl:], "\r\n")
			if len(b) == 0 {
				return nil
			}
		}
	}
	return nil
}

// pdfCheckPrevChain follows startxref and the /Prev offsets from it the way
// the library will, and refuses a chain that comes back on itself.
func pdfCheckPrevChain(data []byte) error {
	i := bytes.LastIndex(data, []byte("startxref"))
	if i < 0 {
		return nil // the library says what is missing
	}
	off, ok := pdfIntAfter(data[i+9:])
	seen := map[int64]bool{}
	for n := 0; ok; n++ {
		if off < 0 || off >= int64(len(data)) {
			return nil
		}
		if seen[off] || n > pdfMaxPrevChain {
			return fmt.Errorf("pdf: cross-reference /Prev chain loops (offset %d)", off)
		}
		seen[off] = true
		// This section's trailer (or xref stream dictionary) ends at the
		// next startxref; its /Prev, if any, is before that.
		sec := data[off:]
		if e := bytes.Index(sec, []byte("startxref")); e >= 0 {
			sec = sec[:e]
		}
		p := bytes.Index(sec, []byte("/Prev"))
		if p < 0 {
			return nil
		}
		off, ok = pdfIntAfter(sec[p+5:])
	}
	return nil
}

// pdfCheckStreams inflates every Flate stream once, counting what comes out
// against MaxExpanded: a bomb is refused before the library inflates it
// (without a limit). Streams that are not zlib (images, fonts in other
// filters) do not expand beyond their own size.
func pdfCheckStreams(j *Job, data []byte) error {
	kw := []byte("stream")
	var zr io.ReadCloser
	buf := make([]byte, 32<<10)
	for rest, n := data, 0; ; n++ {
		i := bytes.Index(rest, kw)
		if i < 0 {
			return nil
		}
		isEnd := i >= 3 && string(rest[i-3:i]) == "end"
		rest = rest[i+len(kw):]
		if isEnd {
			continue
		}
		body := rest
		if len(body) > 0 && body[0] == '\r' {
			body = body[1:]
		}
		if len(body) == 0 || body[0] != '\n' {
			continue
		}
		body = body[1:]
		if len(body) < 2 || body[0]&0x0f != 8 || (uint16(body[0])<<8|uint16(body[1]))%31 != 0 {
			continue // not a zlib header
		}
		var err error
		if zr == nil {
			zr, err = zlib.NewReader(bytes.NewReader(body))
		} else {
			err = zr.(zlib.Resetter).Reset(bytes.NewReader(body), nil)
		}
		if err != nil {
			continue
		}
		// An object stream (the library needs its /Type /ObjStm to use it)
		// holds objects: checked like the file's own.
		var spans *pdfSpans
		if d := data[max(0, len(data)-len(rest)-len(kw)-4096) : len(data)-len(rest)]; bytes.Contains(d[max(0, bytes.LastIndex(d, []byte(" obj"))):], []byte("/ObjStm")) {
			spans = &pdfSpans{}
		}
		for {
			k, err := zr.Read(buf)
			if k > 0 && spans != nil {
				if e := spans.feed(buf[:k]); e != nil {
					return e
				}
			}
			if k > 0 {
				if e := j.Expand(int64(k)); e != nil {
					if errors.Is(e, ErrExpansion) {
						return fmt.Errorf("pdf: streams inflate to more than %d bytes: %w", j.lim.MaxExpanded, e)
					}
					return e
				}
			}
			if err != nil {
				break // end of this stream, or a corrupt one: the library says
			}
		}
	}
}

// pdfIntAfter parses the integer that follows optional blanks in b.
func pdfIntAfter(b []byte) (int64, bool) {
	b = bytes.TrimLeft(b, " \t\r\n")
	k := 0
	if k < len(b) && (b[k] == '-' || b[k] == '+') {
		k++
	}
	for k < len(b) && k < 20 && b[k] >= '0' && b[k] <= '9' {
		k++
	}
	n, err := strconv.ParseInt(string(b[:k]), 10, 64)
	return n, err == nil
}
