package extract

import (
	"encoding/xml"
	"fmt"
	"strconv"
)

// OpenDocument (ODF 1.2/1.3): ODT, ODS and ODP are ZIP packages whose text
// is in content.xml, and for a text document its page headers and footers
// in styles.xml (office:master-styles). Read as a token stream like OOXML:
// text:p and text:h become lines, text:s / text:tab / text:line-break
// blanks, table cells tab-separated and rows lines, presentation pages in
// order with their notes (presentation:notes is inside draw:page).
// Tracked deletions (text:tracked-changes) are left out: they are not the
// document's text. A cell's table:number-columns-repeated is not expanded
// (a repeated value said once is found by search all the same).
func init() {
	register("odt", extractODF)
	register("ods", extractODF)
	register("odp", extractODF)
}

func extractODF(j *Job, data []byte) error {
	p, err := docOpenZip(j, data)
	if err != nil {
		return err
	}
	if enc, err := odfEncrypted(p); err != nil {
		return err
	} else if enc {
		return fmt.Errorf("password-protected OpenDocument: %w", ErrEncrypted)
	}
	if !p.has("content.xml") {
		return fmt.Errorf("content.xml: %w", errNoMember)
	}
	// Page headers and footers are text in a text document; in sheets and
	// slides the master pages hold only placeholders (<number>, ???).
	if p.has("styles.xml") && odfMimetype(p) == "odt" {
		if err := odfText(p, "styles.xml", true); err != nil {
			return err
		}
	}
	return odfText(p, "content.xml", false)
}

// odfEncrypted reads META-INF/manifest.xml: an encrypted member has a
// manifest:encryption-data element.
func odfEncrypted(p *docPackage) (bool, error) {
	if !p.has("META-INF/manifest.xml") {
		return false, nil
	}
	enc := false
	err := docXML{start: func(e xml.StartElement) bool {
		if e.Name.Local == "encryption-data" {
			enc = true
		}
		return false
	}}.walk(p, "META-INF/manifest.xml")
	return enc, err
}

// odfText writes a part's text. In styles.xml (masterOnly) only what is in
// office:master-styles is text: the rest is style definitions.
func odfText(p *docPackage, part string, masterOnly bool) error {
	lw := &docLineWriter{j: p.j}
	depth := 0 // inside office:master-styles, when masterOnly
	cells := 0 // inside a table cell: its paragraphs stay on the row's line
	var werr error
	line := func() {
		if err := lw.flush(); err != nil && werr == nil {
			werr = err
		}
	}
	err := docXML{
		start: func(e xml.StartElement) bool {
			if masterOnly {
				if e.Name.Local == "master-styles" {
					depth++
				}
				if depth == 0 {
					return false
				}
			}
			switch e.Name.Local {
			case "tracked-changes", "note-citation":
				return true
			case "s":
				n, _ := strconv.Atoi(docAttr(e, "c"))
				lw.addString(" ")
				for i := 1; i < min(n, 64); i++ {
					lw.addString(" ")
				}
			case "tab", "line-break":
				lw.addString(" ")
			case "table-cell", "covered-table-cell":
				cells++
			case "p", "h":
				// A paragraph inside a paragraph (a note's body): apart
				// from the words before it.
				if n := len(lw.buf); n > 0 && lw.buf[n-1] != ' ' && lw.buf[n-1] != '\t' {
					lw.addString(" ")
				}
			}
			return false
		},
		end: func(name string) {
			if masterOnly {
				if name == "master-styles" {
					depth--
				}
				if depth == 0 {
					return
				}
			}
			switch name {
			case "p", "h":
				if cells == 0 {
					line()
				} else {
					lw.addString(" ")
				}
			case "table-cell", "covered-table-cell":
				cells = max(0, cells-1)
				lw.cell()
			case "table-row", "page", "notes":
				line()
			}
		},
		text: func(s []byte) error {
			if werr != nil {
				return werr
			}
			if masterOnly && depth == 0 {
				return nil
			}
			lw.add(s)
			return lw.grow()
		},
	}.walk(p, part)
	return lw.finish(err, werr)
}

// odfMimetype is the package's kind by its mimetype member ("odt", "ods",
// "odp"; "" when it has none).
func odfMimetype(p *docPackage) string {
	if f := p.files["mimetype"]; f != nil {
		return odfKind(f)
	}
	return ""
}
