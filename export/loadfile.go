package export

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/xml"
	"fmt"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
)

// Concordance DAT delimiters (as characters; Windows-1252 bytes 0x14, 0xFE,
// 0xAE; UTF-8 sequences of U+0014, U+00FE, U+00AE).
const (
	datSep     = '\x14'   // field separator DC4
	datQuote   = '\u00fe' // text qualifier þ
	datNewline = '\u00ae' // newline inside a value ®
)

// Load file names under DATA/.
const (
	DATName  = "DATA/loadfile.dat"
	CSVName  = "DATA/loadfile.csv"
	XMLName  = "DATA/loadfile.xml"
	OPTName  = "DATA/loadfile.opt"
	relsName = tmpDir + "/relationships.xml"
)

// loadFiles are the production's load files, written a family at a time.
type loadFiles struct {
	dat, csv, xml, opt *hashedFile
	rels               *os.File
	relsW              *bufio.Writer
	buf                bytes.Buffer
}

func (w *writer) openLoadFiles() (*loadFiles, error) {
	lf := &loadFiles{}
	var err error
	for _, p := range []struct {
		f    **hashedFile
		name string
	}{{&lf.dat, DATName}, {&lf.csv, CSVName}, {&lf.xml, XMLName}, {&lf.opt, OPTName}} {
		if *p.f, err = w.create(p.name); err != nil {
			lf.abort() // the writer has no loadFiles to abort: stop the ones made
			return nil, err
		}
	}
	if lf.rels, err = os.Create(w.path(relsName)); err != nil {
		lf.abort()
		return nil, fmt.Errorf("export: %w", err)
	}
	lf.relsW = bufio.NewWriter(lf.rels)
	if w.opts.Encoding == EncodingUTF8BOM {
		lf.dat.WriteString("\uFEFF")
		lf.csv.WriteString("\uFEFF")
	}
	head := fieldNames[:]
	lf.writeDAT(w, head)
	lf.writeCSV(w, head)
	fmt.Fprintf(lf.xml, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<Root MajorVersion=\"1\" MinorVersion=\"2\" DataInterchangeType=\"Update\">\r\n<Batch>\r\n<Documents>\r\n")
	return lf, nil
}

// row writes one document's row to every load file.
func (lf *loadFiles) row(w *writer, r *record, fam *family, i int) error {
	vals := make([]string, nFields)
	for k := range r {
		vals[k] = clean(r[k])
	}
	lf.writeDAT(w, vals)
	lf.writeCSV(w, vals)
	lf.writeXML(vals, fam.text[i])
	if vals[fParentID] != "" {
		fmt.Fprintf(lf.relsW, "<Relationship Type=\"Attachment\" ParentDocID=\"%s\" ChildDocID=\"%s\"/>\r\n", xesc(vals[fParentID]), xesc(vals[fBegDoc]))
	}
	return nil
}

// datValue makes a value fit between qualifiers: every line break (CR LF,
// CR or LF) becomes ®; a ®, þ or DC4 already in the value, which a reader
// would take for a delimiter, becomes U+FFFD. The CSV keeps the exact value.
func datValue(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '\r' || c == '\n' || c == datSep || c >= 0x80 {
			clean = false
			break
		}
	}
	if clean {
		return s // the usual case: nothing to change, nothing to copy
	}
	var b strings.Builder
	b.Grow(len(s))
	for i, r := range s {
		switch r {
		case datSep, datQuote, datNewline:
			b.WriteRune('\uFFFD')
		case '\r':
			if i+1 < len(s) && s[i+1] == '\n' {
				continue // CR LF is one line break: the LF writes it
			}
			b.WriteRune(datNewline)
		case '\n':
			b.WriteRune(datNewline)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func (lf *loadFiles) writeDAT(w *writer, vals []string) {
	var b strings.Builder
	for i, v := range vals {
		if i > 0 {
			b.WriteRune(datSep)
		}
		b.WriteRune(datQuote)
		b.WriteString(datValue(v))
		b.WriteRune(datQuote)
	}
	b.WriteString("\r\n")
	lf.dat.Write(w.encode(b.String()))
}

func (lf *loadFiles) writeCSV(w *writer, vals []string) {
	lf.buf.Reset()
	cw := csv.NewWriter(&lf.buf)
	cw.UseCRLF = true
	cw.Write(vals)
	cw.Flush()
	lf.csv.Write(w.encode(lf.buf.String()))
}

// encode turns a load file's text into its bytes: UTF-8 as it is, or
// Windows-1252 with "?" for each character it lacks (counted).
func (w *writer) encode(s string) []byte {
	if w.opts.Encoding != EncodingCP1252 {
		return []byte(s)
	}
	out := make([]byte, 0, len(s))
	for _, r := range s {
		b, ok := charmap.Windows1252.EncodeRune(r)
		if !ok || r == utf8.RuneError {
			b = '?'
			w.man.Counts.Unmappable++
		}
		out = append(out, b)
	}
	return out
}

// xesc escapes s for an XML attribute value or text.
func xesc(s string) string {
	plain := true
	for i := 0; i < len(s) && plain; i++ {
		c := s[i]
		plain = c >= 0x20 && c < 0x7f && c != '<' && c != '>' && c != '&' && c != '\'' && c != '"'
	}
	if plain {
		return s // printable ASCII with nothing to escape
	}
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

var tagTypes = map[int]string{fFileSize: "Integer", fDateReceived: "DateTime"}

func (lf *loadFiles) writeXML(vals []string, text File) {
	x := lf.xml
	doctype := "Message"
	if vals[fParentID] != "" {
		doctype = "File"
	}
	put := func(ss ...string) { // written piece by piece: no string is built
		for _, s := range ss {
			x.WriteString(s)
		}
	}
	put("<Document DocID=\"", xesc(vals[fBegDoc]), "\" DocType=\"", doctype, "\">\r\n<Tags>\r\n")
	for k, v := range vals {
		t := tagTypes[k]
		if t == "" {
			t = "Text"
		}
		if v == "" && t != "Text" {
			continue
		}
		put("<Tag TagName=\"", fieldNames[k], "\" TagDataType=\"", t, "\" TagValue=\"", xesc(v), "\"/>\r\n")
	}
	x.WriteString("</Tags>\r\n<Files>\r\n")
	file := func(typ, path, size, hash string) {
		dir, name := "", path
		if i := strings.LastIndexByte(path, '/'); i >= 0 {
			dir, name = path[:i], path[i+1:]
		}
		put("<File FileType=\"", typ, "\">\r\n<ExternalFile FilePath=\"", xesc(dir), "\" FileName=\"", xesc(name),
			"\" FileSize=\"", size, "\" Hash=\"", hash, "\"/>\r\n</File>\r\n")
	}
	file("Native", vals[fNativePath], vals[fFileSize], vals[fMD5])
	file("Text", text.Path, strconv.FormatInt(text.Size, 10), text.MD5)
	x.WriteString("</Files>\r\n</Document>\r\n")
}

func (lf *loadFiles) close(w *writer) error {
	lf.xml.WriteString("</Documents>\r\n<Relationships>\r\n")
	if err := lf.relsW.Flush(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if err := lf.rels.Close(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if err := copyInto(lf.xml, w.path(relsName)); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	os.Remove(w.path(relsName))
	lf.xml.WriteString("</Relationships>\r\n</Batch>\r\n</Root>\r\n")
	for _, f := range []*hashedFile{lf.dat, lf.csv, lf.xml, lf.opt} {
		if err := f.Close(); err != nil {
			return err
		}
	}
	return nil
}

func (lf *loadFiles) abort() {
	for _, f := range []*hashedFile{lf.dat, lf.csv, lf.xml, lf.opt} {
		if f != nil {
			f.abort()
		}
	}
	if lf.rels != nil {
		lf.rels.Close()
	}
}
