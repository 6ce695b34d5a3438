package extract

import (
	"archive/zip"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// Helpers shared by the zip+XML document formats (ooxml.go, odf.go): a
// bounded view of the package's members and a streaming walk over an XML
// part's tokens.

// docPackage is an OOXML or OpenDocument file opened as a ZIP.
type docPackage struct {
	j     *Job
	files map[string]*zip.File
}

// docOpenZip opens data as a ZIP package within j's limits: a directory of
// more than MaxMembers members is refused (ErrMembers) before any is read.
// A file that is an OLE compound document is an encrypted OOXML file
// (Office writes a password-protected .docx as OLE streams EncryptionInfo +
// EncryptedPackage): ErrEncrypted.
func docOpenZip(j *Job, data []byte) (*docPackage, error) {
	if bytes.HasPrefix(data, oleMagic) {
		if oleIsEncryptedPackage(data) {
			return nil, fmt.Errorf("password-protected office document: %w", ErrEncrypted)
		}
		return nil, errors.New("an OLE compound file, not an Office Open XML package")
	}
	// archive/zip's NewReader holds the whole central directory (a 64 MiB
	// file of empty entries is 1.4 million of them, ~300 MB): the count the
	// end record claims, or the directory holds, is checked first
	// (zipClaimedEntries, archive.go).
	if n, _ := zipClaimedEntries(data); n > uint64(j.lim.MaxMembers) {
		return nil, fmt.Errorf("package claims %d members: %w", n, ErrMembers)
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("open package: %w", err)
	}
	if len(zr.File) > j.lim.MaxMembers {
		return nil, fmt.Errorf("package of %d members: %w", len(zr.File), ErrMembers)
	}
	p := &docPackage{j: j, files: make(map[string]*zip.File, len(zr.File))}
	for _, f := range zr.File {
		p.files[strings.TrimPrefix(f.Name, "/")] = f
	}
	return p, nil
}

// has reports whether the package has the member name.
func (p *docPackage) has(name string) bool { return p.files[name] != nil }

// open returns a reader of member name whose every byte counts against
// MaxExpanded. A member that declares more than what is left is refused
// before it is inflated (the declaration may lie the other way: the
// counting reader catches that).
func (p *docPackage) open(name string) (io.ReadCloser, error) {
	f := p.files[name]
	if f == nil {
		return nil, fmt.Errorf("member %s: %w", name, errNoMember)
	}
	if err := p.j.Alive(); err != nil {
		return nil, err
	}
	if int64(f.UncompressedSize64) > p.j.lim.MaxExpanded-p.j.expanded || f.UncompressedSize64 > 1<<62 {
		p.j.limit(ReasonExpansion)
		return nil, fmt.Errorf("member %s declares %d bytes: %w", name, f.UncompressedSize64, ErrExpansion)
	}
	if f.Flags&0x1 != 0 {
		return nil, fmt.Errorf("member %s: %w", name, ErrEncrypted)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("member %s: %w", name, err)
	}
	return struct {
		io.Reader
		io.Closer
	}{p.j.Reader(rc), rc}, nil
}

var errNoMember = errors.New("not in the package")

// docXML walks the XML of one member, calling start and end for elements
// (by local name: prefixes vary between writers, and the formats' element
// names do not collide where it matters) and text for character data the
// current state wants. The decoder reads through a guard that fails a
// single token (a text run, a name, an attribute) longer than the text
// limit: encoding/xml buffers a whole token, so without it a 200 MB text
// node would be held in memory before Text could cut it. encoding/xml
// expands only the five predefined entities (a DTD's are not), so the
// billion-laughs attack yields an error, not a billion laughs.
type docXML struct {
	start func(e xml.StartElement) (skip bool) // skip: ignore the element's content
	end   func(name string)
	text  func(s []byte) error
}

func (w docXML) walk(p *docPackage, name string) error {
	rc, err := p.open(name)
	if err != nil {
		return err
	}
	defer rc.Close()
	return w.run(p.j, rc, name)
}

func (w docXML) run(j *Job, r io.Reader, name string) error {
	g := &docTokenGuard{r: r, max: max(j.lim.MaxText, 1<<20) + 4096}
	d := xml.NewDecoder(g)
	d.Strict = false // writers in the wild emit undeclared prefixes and stray '&'
	d.CharsetReader = docCharsetReader
	skip := 0
	for n := 0; ; n++ {
		if n%4096 == 0 {
			if err := j.Alive(); err != nil {
				return err
			}
		}
		tok, err := d.RawToken()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if g.err != nil {
				return g.err
			}
			if errors.Is(err, ErrExpansion) || errors.Is(err, ErrTimeout) {
				return err
			}
			return fmt.Errorf("%s: %w", name, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if skip > 0 {
				skip++
				continue
			}
			if w.start != nil && w.start(t) {
				skip = 1
			}
		case xml.EndElement:
			if skip > 0 {
				skip--
				continue
			}
			if w.end != nil {
				w.end(t.Name.Local)
			}
		case xml.CharData:
			if skip == 0 && w.text != nil {
				if err := w.text(t); err != nil {
					return err
				}
			}
		}
	}
}

// docTokenGuard fails a read once more than max bytes have passed without a
// '<' or '>' (one token that large is no text worth keeping).
type docTokenGuard struct {
	r   io.Reader
	max int
	run int
	err error
}

func (g *docTokenGuard) Read(b []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	n, err := g.r.Read(b)
	for _, c := range b[:n] {
		if c == '<' || c == '>' {
			g.run = 0
		} else if g.run++; g.run > g.max {
			g.err = fmt.Errorf("an XML token over %d bytes: %w", g.max, ErrText)
			return 0, g.err
		}
	}
	if err != nil && !errors.Is(err, io.EOF) {
		g.err = err
	}
	return n, err
}

// docCharsetReader accepts the encodings XML parts declare: UTF-8 (all the
// writers seen) and its aliases; anything else is read as UTF-8 too and
// made valid by Job.Text rather than failing the document.
func docCharsetReader(label string, r io.Reader) (io.Reader, error) { return r, nil }

// docLineWriter collects text by lines: text runs of a paragraph, cells
// separated by tabs, and writes each finished line to the job.
type docLineWriter struct {
	j   *Job
	buf []byte
}

func (w *docLineWriter) add(s []byte) { w.buf = append(w.buf, s...) }

func (w *docLineWriter) addString(s string) { w.buf = append(w.buf, s...) }

// cell ends a table cell: a tab, the blanks before it dropped.
func (w *docLineWriter) cell() {
	w.buf = append(bytes.TrimRight(w.buf, " "), '\t')
}

// flush writes the line so far (if it has more than blanks) and a newline.
// finish ends a part's walk: the walk's error, else the one its callbacks
// kept (werr), else the flush of the last line.
func (w *docLineWriter) finish(err, werr error) error {
	if err == nil {
		err = werr
	}
	if err == nil {
		err = w.flush()
	}
	return err
}

func (w *docLineWriter) flush() error {
	line := bytes.TrimSpace(w.buf)
	w.buf = w.buf[:0]
	if len(line) == 0 {
		return nil
	}
	return w.j.Text(string(line) + "\n")
}

// grow checks that the line buffer stays within the text limit (a
// paragraph with millions of runs never flushes on its own).
func (w *docLineWriter) grow() error {
	if len(w.buf) > w.j.lim.MaxText {
		return w.flush()
	}
	return nil
}

// docRels reads an OOXML relationships part: Id -> (target member, type).
func docRels(p *docPackage, source string) (map[string]docRel, error) {
	dir, file := path.Split(source)
	relsName := dir + "_rels/" + file + ".rels"
	out := map[string]docRel{}
	if !p.has(relsName) {
		return out, nil
	}
	err := docXML{start: func(e xml.StartElement) bool {
		if e.Name.Local != "Relationship" {
			return false
		}
		var id, target, typ, mode string
		for _, a := range e.Attr {
			switch a.Name.Local {
			case "Id":
				id = a.Value
			case "Target":
				target = a.Value
			case "Type":
				typ = a.Value
			case "TargetMode":
				mode = a.Value
			}
		}
		if id == "" || target == "" || mode == "External" {
			return false
		}
		var member string
		if strings.HasPrefix(target, "/") {
			member = path.Clean(target)[1:]
		} else {
			member = strings.TrimPrefix(path.Clean(path.Join("/", dir, target)), "/")
		}
		out[id] = docRel{member: member, typ: typ[strings.LastIndexByte(typ, '/')+1:]}
		return false
	}}.walk(p, relsName)
	return out, err
}

type docRel struct {
	member string // the member's name in the package
	typ    string // the last segment of the relationship type: "slide", "notesSlide", "worksheet", …
}

// docRelID is an element's relationship reference (r:id): the attribute
// named id in a namespace, beside which a plain id (a slide's number) may
// also stand.
func docRelID(e xml.StartElement) string {
	for _, a := range e.Attr {
		if a.Name.Local == "id" && a.Name.Space != "" {
			return a.Value
		}
	}
	return ""
}

// docAttr is the value of the attribute with local name local.
func docAttr(e xml.StartElement, local string) string {
	for _, a := range e.Attr {
		if a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}
