package extract

import (
	"strings"
	"testing"
)

const docODFNS = `xmlns:office="o" xmlns:text="t" xmlns:table="tb" xmlns:draw="d" xmlns:presentation="p" xmlns:style="s"`

func docODF(t testing.TB, mimetype, content string, more ...string) []byte {
	files := append([]string{"mimetype", mimetype, "content.xml", content}, more...)
	return docZip(t, files...)
}

func TestODFParts(t *testing.T) {
	// Text: headings, spans, text:s with a count, tabs, line breaks, notes
	// inline, tracked deletions left out; headers and footers from
	// styles.xml's master pages only (not the style names).
	content := `<office:document-content ` + docODFNS + `><office:body><office:text>
<text:tracked-changes><text:changed-region><text:deletion><text:p>deleted words</text:p></text:deletion></text:changed-region></text:tracked-changes>
<text:h>Title</text:h><text:p>a<text:s text:c="3"/>b<text:tab/>c<text:line-break/>d <text:span>span</text:span><text:note><text:note-citation>1</text:note-citation><text:note-body><text:p>note</text:p></text:note-body></text:note></text:p>
<table:table><table:table-row><table:table-cell><text:p>x1</text:p></table:table-cell><table:table-cell><text:p>y1</text:p><text:p>y2</text:p></table:table-cell></table:table-row></table:table>
</office:text></office:body></office:document-content>`
	styles := `<office:document-styles ` + docODFNS + `><office:styles><style:style style:name="NotText"/></office:styles><office:master-styles><style:master-page><style:header><text:p>Head</text:p></style:header></style:master-page></office:master-styles></office:document-styles>`
	r := docExtract(t, "x.odt", docODF(t, "application/vnd.oasis.opendocument.text", content, "styles.xml", styles), nil)
	if want := "Head\nTitle\na   b c d span note\nx1\ty1 y2\n"; r.Status != OK || r.Text != want {
		t.Errorf("odt: %s %s %q, want %q", r.Status, r.Detail, r.Text, want)
	}
	// Presentation: pages in order, each with its notes; a sheet's master
	// page placeholders are not text.
	pres := `<office:document-content ` + docODFNS + `><office:body><office:presentation>
<draw:page><draw:frame><draw:text-box><text:p>page one</text:p></draw:text-box></draw:frame><presentation:notes><draw:frame><draw:text-box><text:p>notes one</text:p></draw:text-box></draw:frame></presentation:notes></draw:page>
<draw:page><draw:frame><draw:text-box><text:p>page two</text:p></draw:text-box></draw:frame></draw:page>
</office:presentation></office:body></office:document-content>`
	r = docExtract(t, "x.odp", docODF(t, "application/vnd.oasis.opendocument.presentation", pres, "styles.xml", styles), nil)
	if want := "page one\nnotes one\npage two\n"; r.Status != OK || r.Text != want {
		t.Errorf("odp: %s %s %q, want %q", r.Status, r.Detail, r.Text, want)
	}
}

func TestODFHostile(t *testing.T) {
	manifest := `<manifest:manifest xmlns:manifest="m"><manifest:file-entry manifest:full-path="content.xml"><manifest:encryption-data manifest:checksum="x"/></manifest:file-entry></manifest:manifest>`
	enc := docODF(t, "application/vnd.oasis.opendocument.text", "\x8f\x02garbage", "META-INF/manifest.xml", manifest)
	if r := docExtract(t, "secret.odt", enc, nil); r.Reason != ReasonEncrypted || r.Format != "odt" {
		t.Errorf("encrypted: %s %s %s (%s)", r.Format, r.Status, r.Reason, r.Detail)
	}
	bomb := docODF(t, "application/vnd.oasis.opendocument.spreadsheet", "<office:document-content><text:p>"+strings.Repeat("b", 32<<20)+"</text:p></office:document-content>")
	if r := docExtract(t, "bomb.ods", bomb, &Limits{MaxExpanded: 4 << 20}); r.Reason != ReasonExpansion {
		t.Errorf("bomb: %s %s (%s)", r.Status, r.Reason, r.Detail)
	}
	if r := docExtract(t, "x.odt", docZip(t, "mimetype", "application/vnd.oasis.opendocument.text"), nil); r.Reason != ReasonCorrupt {
		t.Errorf("no content.xml: %s %s", r.Status, r.Reason)
	}
}

func FuzzODF(f *testing.F) {
	for _, name := range []string{"letter.odt", "sheet.ods", "slides.odp"} {
		f.Add(name[len(name)-3:], docFixture(f, name))
	}
	f.Fuzz(func(t *testing.T, ext string, data []byte) {
		switch ext {
		case "odt", "ods", "odp":
		default:
			ext = "odt"
		}
		docFuzzCheck(t, "f."+ext, data)
	})
}

// FuzzODFPart mutates content.xml and styles.xml inside a valid package.
func FuzzODFPart(f *testing.F) {
	f.Add(`<office:document-content `+docODFNS+`><office:body><office:text><text:h>T</text:h><text:p>a<text:s text:c="3"/>b<text:note><text:note-body><text:p>n</text:p></text:note-body></text:note></text:p><table:table><table:table-row><table:table-cell><text:p>x</text:p></table:table-cell></table:table-row></table:table></office:text></office:body></office:document-content>`,
		`<office:document-styles `+docODFNS+`><office:master-styles><style:master-page><style:header><text:p>H</text:p></style:header></style:master-page></office:master-styles></office:document-styles>`)
	f.Fuzz(func(t *testing.T, content, styles string) {
		docFuzzCheck(t, "f.odt", docODF(t, "application/vnd.oasis.opendocument.text", content, "styles.xml", styles))
	})
}
