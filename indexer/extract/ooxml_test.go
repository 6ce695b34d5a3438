package extract

import (
	"strings"
	"testing"
	"time"
)

const docContentTypes = `<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>`

// docDOCX is a minimal DOCX whose word/document.xml is body.
func docDOCX(t testing.TB, body string) []byte {
	return docZip(t, "[Content_Types].xml", docContentTypes,
		"_rels/.rels", `<Relationships><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>`,
		"word/document.xml", body)
}

func TestOOXMLParts(t *testing.T) {
	// DOCX: tabs and breaks, table cells on a row, mc:Fallback not doubled,
	// deleted text and field codes left out.
	doc := `<w:document xmlns:w="w" xmlns:mc="mc"><w:body>
<w:p><w:r><w:t>one</w:t><w:tab/><w:t>two</w:t><w:br/><w:t xml:space="preserve">three </w:t></w:r></w:p>
<w:tbl><w:tr><w:tc><w:p><w:r><w:t>a1</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>b1</w:t></w:r></w:p></w:tc></w:tr></w:tbl>
<w:p><mc:AlternateContent><mc:Choice><w:t>choice</w:t></mc:Choice><mc:Fallback><w:t>fallback</w:t></mc:Fallback></mc:AlternateContent></w:p>
<w:p><w:del><w:r><w:delText>deleted</w:delText></w:r></w:del><w:r><w:instrText>HYPERLINK x</w:instrText></w:r><w:r><w:t>&amp;kept&lt;</w:t></w:r></w:p>
</w:body></w:document>`
	r := docExtract(t, "x.docx", docDOCX(t, doc), nil)
	if want := "one two three\na1\tb1\nchoice\n&kept<\n"; r.Status != OK || r.Text != want {
		t.Errorf("docx: %s %s %q, want %q", r.Status, r.Detail, r.Text, want)
	}
	// XLSX: shared strings (rich runs joined, phonetic left out), inline
	// strings, numbers, booleans; formulas' text not shown, their values are.
	xlsx := docZip(t, "[Content_Types].xml", docContentTypes,
		"_rels/.rels", `<Relationships><Relationship Id="r" Type="x/officeDocument" Target="xl/workbook.xml"/></Relationships>`,
		"xl/workbook.xml", `<workbook xmlns:r="r"><sheets><sheet name="Second" sheetId="2" r:id="s2"/><sheet name="First" sheetId="1" r:id="s1"/></sheets></workbook>`,
		"xl/_rels/workbook.xml.rels", `<Relationships><Relationship Id="s1" Type="x/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="s2" Type="x/worksheet" Target="/xl/worksheets/sheet2.xml"/><Relationship Id="ss" Type="x/sharedStrings" Target="sharedStrings.xml"/></Relationships>`,
		"xl/sharedStrings.xml", `<sst><si><t>plain</t></si><si><r><t>ri</t></r><r><t>ch</t></r><rPh><t>PHONETIC</t></rPh></si></sst>`,
		"xl/worksheets/sheet1.xml", `<worksheet><sheetData><row><c t="s"><v>0</v></c><c t="s"><v>1</v></c><c><v>3.5</v></c></row><row><c t="inlineStr"><is><t>inline</t></is></c><c t="b"><v>1</v></c><c><f>SUM(A1:A2)</f><v>42</v></c><c t="s"><v>99</v></c></row></sheetData></worksheet>`,
		"xl/worksheets/sheet2.xml", `<worksheet><sheetData><row><c t="str"><v>second sheet</v></c></row></sheetData></worksheet>`)
	r = docExtract(t, "x.xlsx", xlsx, nil)
	if want := "Second\nsecond sheet\nFirst\nplain\trich\t3.5\ninline\t1\t42\n"; r.Status != OK || r.Text != want {
		t.Errorf("xlsx: %s %s %q, want %q", r.Status, r.Detail, r.Text, want)
	}
	// PPTX: slides in presentation order (not member order), notes after
	// each slide.
	pptx := docZip(t, "[Content_Types].xml", docContentTypes,
		"_rels/.rels", `<Relationships><Relationship Id="r" Type="x/officeDocument" Target="ppt/presentation.xml"/></Relationships>`,
		"ppt/presentation.xml", `<p:presentation xmlns:p="p" xmlns:r="r"><p:sldIdLst><p:sldId id="257" r:id="b"/><p:sldId id="256" r:id="a"/></p:sldIdLst></p:presentation>`,
		"ppt/_rels/presentation.xml.rels", `<Relationships><Relationship Id="a" Type="x/slide" Target="slides/slide1.xml"/><Relationship Id="b" Type="x/slide" Target="slides/slide2.xml"/></Relationships>`,
		"ppt/slides/slide1.xml", `<p:sld xmlns:p="p" xmlns:a="a"><a:p><a:r><a:t>slide one</a:t></a:r></a:p></p:sld>`,
		"ppt/slides/slide2.xml", `<p:sld xmlns:p="p" xmlns:a="a"><a:p><a:r><a:t>slide</a:t></a:r><a:br/><a:r><a:t>two</a:t></a:r></a:p></p:sld>`,
		"ppt/slides/_rels/slide2.xml.rels", `<Relationships><Relationship Id="n" Type="x/notesSlide" Target="../notesSlides/notesSlide9.xml"/></Relationships>`,
		"ppt/notesSlides/notesSlide9.xml", `<p:notes xmlns:p="p" xmlns:a="a"><a:p><a:r><a:t>notes of two</a:t></a:r></a:p></p:notes>`)
	r = docExtract(t, "x.pptx", pptx, nil)
	if want := "slide two\nnotes of two\nslide one\n"; r.Status != OK || r.Text != want {
		t.Errorf("pptx: %s %s %q, want %q", r.Status, r.Detail, r.Text, want)
	}
}

func TestOOXMLHostile(t *testing.T) {
	// A zip bomb: document.xml of 64 MiB of one run (64 KiB deflated).
	bomb := docDOCX(t, "<w:document><w:body><w:p><w:r><w:t>"+strings.Repeat("a", 64<<20)+"</w:t></w:r></w:p></w:body></w:document>")
	lim := &Limits{MaxExpanded: 8 << 20, Timeout: 10 * time.Second}
	if r := docExtract(t, "bomb.docx", bomb, lim); r.Reason != ReasonExpansion || r.Format != "docx" {
		t.Errorf("bomb: %s %s %s (%s)", r.Format, r.Status, r.Reason, r.Detail)
	}
	if len(bomb) > 1<<20 {
		t.Fatalf("the bomb is %d bytes: not a bomb", len(bomb))
	}
	// The same run under the default budget: one token longer than the
	// text limit is refused by the token guard, not buffered whole.
	if r := docExtract(t, "bomb.docx", bomb, &Limits{MaxText: 1 << 16, Timeout: 10 * time.Second}); r.Reason != ReasonText {
		t.Errorf("huge token: %s %s (%s)", r.Status, r.Reason, r.Detail)
	}
	// Billion laughs: entities are not expanded.
	laughs := `<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "hahahahaha"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>` +
		`<w:document><w:body><w:p><w:r><w:t>&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;</w:t></w:r></w:p></w:body></w:document>`
	if r := docExtract(t, "laughs.docx", docDOCX(t, laughs), nil); strings.Contains(r.Text, "haha") || len(r.Text) > 1000 {
		t.Errorf("laughs: %s %q", r.Status, r.Text)
	}
	// More members than MaxMembers: refused before any is read.
	var many []string
	for i := 0; i < 50; i++ {
		many = append(many, "word/media/x"+strings.Repeat("y", i), "")
	}
	many = append(many, "[Content_Types].xml", docContentTypes, "word/document.xml", "<w:document/>")
	if r := docExtract(t, "many.docx", docZip(t, many...), &Limits{MaxMembers: 20}); r.Reason != ReasonMembers {
		t.Errorf("members: %s %s (%s)", r.Status, r.Reason, r.Detail)
	}
	// A directory claiming millions of entries (a .docx by its name only,
	// as Detect gives such a file to archive/zip no more): refused before
	// archive/zip would hold them all.
	claimed := claimEntries(docDOCX(t, "<w:document/>"), 1_400_000)
	if r := docExtract(t, "claims.docx", claimed, nil); r.Format != "docx" || r.Reason != ReasonMembers {
		t.Errorf("claimed entries: %s %s %s (%s)", r.Format, r.Status, r.Reason, r.Detail)
	}
	// A package without its main part, and malformed XML.
	if r := docExtract(t, "x.docx", docZip(t, "[Content_Types].xml", docContentTypes, "word/other.xml", "x"), nil); r.Reason != ReasonCorrupt {
		t.Errorf("no document.xml: %s %s", r.Status, r.Reason)
	}
	if r := docExtract(t, "x.docx", docDOCX(t, "<w:document><w:p><w:t>kept</w:t></w:p><w:p"), nil); r.Reason != ReasonCorrupt || !strings.Contains(r.Text, "kept") {
		t.Errorf("malformed: %s %s %q", r.Status, r.Reason, r.Text)
	}
	// Password-protected OOXML is an OLE file with an EncryptedPackage
	// stream (synthetic here: LibreOffice 7.4 headless does not write one,
	// and no encrypting tool is packaged): encrypted, whichever the name.
	ole := append(append([]byte(nil), oleMagic...), make([]byte, 504)...)
	ole = append(ole, utf16le("EncryptionInfo")...)
	ole = append(ole, make([]byte, 50)...)
	ole = append(ole, utf16le("EncryptedPackage")...)
	for _, name := range []string{"secret.docx", "secret.xlsx", "secret.pptx"} {
		if r := docExtract(t, name, ole, nil); r.Reason != ReasonEncrypted || r.Format != name[7:] {
			t.Errorf("%s: %s %s %s (%s)", name, r.Format, r.Status, r.Reason, r.Detail)
		}
	}
	// An OLE file named .docx that is not encrypted: an old .doc renamed.
	if r := docExtract(t, "old.docx", append(append([]byte(nil), oleMagic...), make([]byte, 600)...), nil); r.Reason != ReasonCorrupt {
		t.Errorf("renamed doc: %s %s", r.Status, r.Reason)
	}
}

func FuzzOOXML(f *testing.F) {
	for _, name := range []string{"letter.docx", "sheet.xlsx", "slides.pptx"} {
		f.Add(name[len(name)-4:], docFixture(f, name))
	}
	f.Fuzz(func(t *testing.T, ext string, data []byte) {
		switch ext {
		case "docx", "xlsx", "pptx":
		default:
			ext = "docx"
		}
		docFuzzCheck(t, "f."+ext, data)
	})
}

// FuzzOOXMLPart mutates the XML of a valid package's parts (a mutated zip
// mostly fails its CRC before any XML is read): the document of a DOCX, a
// sheet and the shared strings of an XLSX.
func FuzzOOXMLPart(f *testing.F) {
	f.Add(`<w:document xmlns:w="w"><w:body><w:p><w:r><w:t>one</w:t><w:tab/></w:r></w:p><w:tbl><w:tr><w:tc><w:p><w:t>c</w:t></w:p></w:tc></w:tr></w:tbl></w:body></w:document>`,
		`<sst><si><t>s0</t></si><si><r><t>a</t></r><rPh><t>p</t></rPh></si></sst>`,
		`<worksheet><sheetData><row><c t="s"><v>1</v></c><c t="inlineStr"><is><t>i</t></is></c><c><f>1+1</f><v>2</v></c></row></sheetData></worksheet>`)
	f.Fuzz(func(t *testing.T, doc, sst, sheet string) {
		docFuzzCheck(t, "f.docx", docDOCX(t, doc))
		xlsx := docZip(t, "[Content_Types].xml", docContentTypes,
			"_rels/.rels", `<Relationships><Relationship Id="r" Type="x/officeDocument" Target="xl/workbook.xml"/></Relationships>`,
			"xl/workbook.xml", `<workbook xmlns:r="r"><sheets><sheet name="S" sheetId="1" r:id="s1"/></sheets></workbook>`,
			"xl/_rels/workbook.xml.rels", `<Relationships><Relationship Id="s1" Type="x/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="ss" Type="x/sharedStrings" Target="sharedStrings.xml"/></Relationships>`,
			"xl/sharedStrings.xml", sst, "xl/worksheets/sheet1.xml", sheet)
		docFuzzCheck(t, "f.xlsx", xlsx)
	})
}

// TestXLSXSharedStringsBounded: a table of shared strings larger than four
// times the text limit is not held whole; the result says text-limit.
func TestXLSXSharedStringsBounded(t *testing.T) {
	var sst strings.Builder
	sst.WriteString("<sst>")
	for i := 0; i < 2000; i++ {
		sst.WriteString("<si><t>" + strings.Repeat("s", 1000) + "</t></si>")
	}
	sst.WriteString("</sst>")
	xlsx := docZip(t, "[Content_Types].xml", docContentTypes,
		"_rels/.rels", `<Relationships><Relationship Id="r" Type="x/officeDocument" Target="xl/workbook.xml"/></Relationships>`,
		"xl/workbook.xml", `<workbook xmlns:r="r"><sheets><sheet name="S" sheetId="1" r:id="s1"/></sheets></workbook>`,
		"xl/_rels/workbook.xml.rels", `<Relationships><Relationship Id="s1" Type="x/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="ss" Type="x/sharedStrings" Target="sharedStrings.xml"/></Relationships>`,
		"xl/sharedStrings.xml", sst.String(),
		"xl/worksheets/sheet1.xml", `<worksheet><sheetData><row><c t="s"><v>0</v></c><c t="s"><v>1999</v></c></row></sheetData></worksheet>`)
	r := docExtract(t, "big.xlsx", xlsx, &Limits{MaxText: 100 << 10}) // table bound: 1 MiB
	if r.Status != Truncated || r.Reason != ReasonText || !strings.Contains(r.Text, strings.Repeat("s", 1000)) {
		t.Fatalf("%s %s, %d bytes", r.Status, r.Reason, len(r.Text))
	}
}
