package extract

import (
	"encoding/xml"
	"fmt"
	"sort"
	"strconv"
)

// Office Open XML (ECMA-376): DOCX, XLSX and PPTX are ZIP packages of XML
// parts tied together by relationship parts (_rels/*.rels). Written here
// with archive/zip and encoding/xml's token stream rather than a library:
// the text is a few elements (w:t, a:t, shared strings and cell values),
// and reading tokens keeps memory to one token and one line whatever the
// part's size, with every member read through the job's expansion budget.
//
// What is read: DOCX the main document, then its headers, footers,
// footnotes, endnotes and comments (w:t; paragraphs become lines, table
// cells tab-separated; mc:Fallback skipped, as it repeats mc:Choice);
// XLSX each sheet in workbook order, its name and then its rows (shared
// strings, inline strings, values; cells tab-separated); PPTX the slides
// in presentation order (a:t), each followed by its notes.
func init() {
	register("docx", extractDOCX)
	register("xlsx", extractXLSX)
	register("pptx", extractPPTX)
}

// ooxmlMain is the package's main part (the officeDocument relationship of
// _rels/.rels), or def when the package does not say.
func ooxmlMain(p *docPackage, def string) (string, error) {
	rels, err := docRels(p, "")
	if err != nil {
		return "", err
	}
	for _, r := range rels {
		if r.typ == "officeDocument" && p.has(r.member) {
			return r.member, nil
		}
	}
	if !p.has(def) {
		return "", fmt.Errorf("no main part (%s): %w", def, errNoMember)
	}
	return def, nil
}

func extractDOCX(j *Job, data []byte) error {
	p, err := docOpenZip(j, data)
	if err != nil {
		return err
	}
	main, err := ooxmlMain(p, "word/document.xml")
	if err != nil {
		return err
	}
	parts := []string{main}
	rels, err := docRels(p, main)
	if err != nil {
		return err
	}
	order := map[string]int{"header": 1, "footer": 2, "footnotes": 3, "endnotes": 4, "comments": 5}
	var extra []docRel
	for _, r := range rels {
		if order[r.typ] > 0 && p.has(r.member) {
			extra = append(extra, r)
		}
	}
	sort.Slice(extra, func(a, b int) bool {
		if order[extra[a].typ] != order[extra[b].typ] {
			return order[extra[a].typ] < order[extra[b].typ]
		}
		return extra[a].member < extra[b].member
	})
	seen := map[string]bool{main: true}
	for _, r := range extra {
		if !seen[r.member] {
			seen[r.member] = true
			parts = append(parts, r.member)
		}
	}
	for _, part := range parts {
		if err := ooxmlWord(p, part); err != nil {
			return err
		}
	}
	return nil
}

// ooxmlWord writes a WordprocessingML part's text: w:t runs,
// w:tab and w:br as blanks, a line per paragraph.
func ooxmlWord(p *docPackage, part string) error {
	lw := &docLineWriter{j: p.j}
	inT := false
	cells := 0 // inside a table cell: its paragraphs stay on the row's line
	var werr error
	line := func() {
		if err := lw.flush(); err != nil && werr == nil {
			werr = err
		}
	}
	err := docXML{
		start: func(e xml.StartElement) bool {
			switch e.Name.Local {
			case "t":
				inT = true
			case "tab", "br", "cr":
				lw.addString(" ")
			case "tc":
				cells++
			case "Fallback":
				return true
			}
			return false
		},
		end: func(name string) {
			switch name {
			case "t":
				inT = false
			case "tc":
				cells = max(0, cells-1)
				lw.cell()
			case "tr":
				line()
			case "p":
				if cells == 0 {
					line()
				} else {
					lw.addString(" ")
				}
			}
		},
		text: func(s []byte) error {
			if werr != nil {
				return werr
			}
			if inT {
				lw.add(s)
				return lw.grow()
			}
			return nil
		},
	}.walk(p, part)
	return lw.finish(err, werr)
}

func extractXLSX(j *Job, data []byte) error {
	p, err := docOpenZip(j, data)
	if err != nil {
		return err
	}
	book, err := ooxmlMain(p, "xl/workbook.xml")
	if err != nil {
		return err
	}
	rels, err := docRels(p, book)
	if err != nil {
		return err
	}
	var sst []string
	for _, r := range rels {
		if r.typ == "sharedStrings" && p.has(r.member) {
			if sst, err = ooxmlSharedStrings(p, r.member); err != nil {
				return err
			}
			break
		}
	}
	type sheet struct{ name, member string }
	var sheets []sheet
	err = docXML{start: func(e xml.StartElement) bool {
		if e.Name.Local == "sheet" {
			if r, ok := rels[docRelID(e)]; ok && p.has(r.member) {
				sheets = append(sheets, sheet{docAttr(e, "name"), r.member})
			}
		}
		return false
	}}.walk(p, book)
	if err != nil {
		return err
	}
	for _, s := range sheets {
		if err := j.Text(s.name + "\n"); err != nil {
			return err
		}
		if err := ooxmlSheet(p, s.member, sst); err != nil {
			return err
		}
	}
	return nil
}

// ooxmlSharedStrings reads xl/sharedStrings.xml: one string per si, its runs
// concatenated, phonetic guides (rPh) left out. The strings kept are
// bounded by docMaxTable: the table is held while the sheets are read, and
// no more of it can reach the text than MaxText; past the bound, strings
// are dropped (cells that refer to them are empty) and the result says
// text-limit.
func ooxmlSharedStrings(p *docPackage, member string) ([]string, error) {
	var out []string
	var cur []byte
	inT := false
	held, bound := 0, docMaxTable(p.j)
	err := docXML{
		start: func(e xml.StartElement) bool {
			switch e.Name.Local {
			case "si":
				cur = cur[:0]
			case "t":
				inT = true
			case "rPh":
				return true
			}
			return false
		},
		end: func(name string) {
			switch name {
			case "t":
				inT = false
			case "si":
				if held += len(cur); held > bound {
					p.j.limit(ReasonText)
					return
				}
				out = append(out, string(cur))
			}
		},
		text: func(s []byte) error {
			if inT && len(cur) <= bound {
				cur = append(cur, s...)
			}
			return nil
		},
	}.walk(p, member)
	return out, err
}

// docMaxTable bounds a string table held in memory (XLSX, XLS shared
// strings): four times the text limit, at least 1 MiB.
func docMaxTable(j *Job) int { return max(4*j.lim.MaxText, 1<<20) }

// ooxmlSheet writes a worksheet's rows: each cell's value (a shared string
// looked up, an inline string, or the stored value) tab-separated.
func ooxmlSheet(p *docPackage, member string, sst []string) error {
	lw := &docLineWriter{j: p.j}
	var typ string
	var val []byte
	inV, inT := false, false
	var werr error
	err := docXML{
		start: func(e xml.StartElement) bool {
			switch e.Name.Local {
			case "c":
				typ, val = docAttr(e, "t"), val[:0]
			case "v":
				inV = true
			case "t":
				inT = true
			case "rPh", "f": // phonetic guide; a formula's text is not its value
				return true
			}
			return false
		},
		end: func(name string) {
			switch name {
			case "v":
				inV = false
			case "t":
				inT = false
			case "c":
				v := string(val)
				if typ == "s" {
					if i, err := strconv.Atoi(v); err == nil && i >= 0 && i < len(sst) {
						v = sst[i]
					} else {
						v = ""
					}
				}
				if v != "" {
					lw.addString(v)
					lw.cell()
				}
			case "row":
				if err := lw.flush(); err != nil && werr == nil {
					werr = err
				}
			}
		},
		text: func(s []byte) error {
			if werr != nil {
				return werr
			}
			if inV || inT {
				val = append(val, s...)
				if len(val) > p.j.lim.MaxText {
					val = val[:p.j.lim.MaxText]
				}
			}
			return lw.grow()
		},
	}.walk(p, member)
	return lw.finish(err, werr)
}

func extractPPTX(j *Job, data []byte) error {
	p, err := docOpenZip(j, data)
	if err != nil {
		return err
	}
	pres, err := ooxmlMain(p, "ppt/presentation.xml")
	if err != nil {
		return err
	}
	rels, err := docRels(p, pres)
	if err != nil {
		return err
	}
	var slides []string
	err = docXML{start: func(e xml.StartElement) bool {
		if e.Name.Local == "sldId" {
			if r, ok := rels[docRelID(e)]; ok && p.has(r.member) {
				slides = append(slides, r.member)
			}
		}
		return false
	}}.walk(p, pres)
	if err != nil {
		return err
	}
	for _, s := range slides {
		if err := ooxmlDrawing(p, s); err != nil {
			return err
		}
		srels, err := docRels(p, s)
		if err != nil {
			return err
		}
		for _, r := range srels {
			if r.typ == "notesSlide" && p.has(r.member) {
				if err := ooxmlDrawing(p, r.member); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// ooxmlDrawing writes a DrawingML part's text (a slide, a notes page): a:t
// runs, a line per a:p.
func ooxmlDrawing(p *docPackage, part string) error {
	lw := &docLineWriter{j: p.j}
	inT := false
	var werr error
	err := docXML{
		start: func(e xml.StartElement) bool {
			switch e.Name.Local {
			case "t":
				inT = true
			case "br":
				lw.addString(" ")
			case "Fallback":
				return true
			}
			return false
		},
		end: func(name string) {
			switch name {
			case "t":
				inT = false
			case "tc":
				lw.cell()
			case "p":
				if err := lw.flush(); err != nil && werr == nil {
					werr = err
				}
			}
		},
		text: func(s []byte) error {
			if werr != nil {
				return werr
			}
			if inT {
				lw.add(s)
				return lw.grow()
			}
			return nil
		},
	}.walk(p, part)
	return lw.finish(err, werr)
}
