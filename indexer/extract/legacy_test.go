package extract

import (
	"bytes"
	"strings"
	"testing"
)

// TestLegacyEncrypted marks the LibreOffice fixtures as password-protected
// the way Word and Excel do, in place (the OLE container stays valid):
// Excel's FILEPASS record in the workbook globals, Word's fEncrypted bit in
// the FIB, PowerPoint's CryptSession10Container record. LibreOffice 7.4 headless does not write encrypted files, and no
// encrypting tool is packaged.
func TestLegacyEncrypted(t *testing.T) {
	xls := bytes.Clone(docFixture(t, "sheet.xls"))
	bof := bytes.Index(xls, []byte{0x09, 0x08, 0x10, 0x00, 0x00, 0x06}) // BOF, 16 bytes, BIFF8
	if bof < 0 {
		t.Fatal("no BIFF8 BOF in sheet.xls")
	}
	next := bof + 4 + 16 // the record after BOF becomes FILEPASS
	xls[next], xls[next+1] = 0x2f, 0x00
	if r := docExtract(t, "secret.xls", xls, nil); r.Format != "xls" || r.Reason != ReasonEncrypted {
		t.Errorf("xls: %s %s %s (%s)", r.Format, r.Status, r.Reason, r.Detail)
	}
	doc := bytes.Clone(docFixture(t, "letter.doc"))
	fib := bytes.Index(doc, []byte{0xec, 0xa5})
	if fib < 0 {
		t.Fatal("no FIB in letter.doc")
	}
	doc[fib+0x0b] |= 0x01 // flags at 0x0a, fEncrypted 0x0100
	if r := docExtract(t, "secret.doc", doc, nil); r.Format != "doc" || r.Reason != ReasonEncrypted {
		t.Errorf("doc: %s %s %s (%s)", r.Format, r.Status, r.Reason, r.Detail)
	}
	// PowerPoint's CryptSession10Container: a container record of that type
	// in place of the first HeadersFooters container (0x0fd9).
	ppt := docFixture(t, "slides.ppt.gz")
	hf := bytes.Index(ppt, []byte{0xd9, 0x0f, 0x0c, 0x00, 0x00, 0x00}) // type 0x0fd9, 12 bytes
	if hf < 2 || ppt[hf-2]&0x0f != 0x0f {
		t.Fatal("no HeadersFooters container in slides.ppt")
	}
	ppt[hf], ppt[hf+1] = 0x14, 0x2f
	if r := docExtract(t, "secret.ppt", ppt, nil); r.Format != "ppt" || r.Reason != ReasonEncrypted {
		t.Errorf("ppt: %s %s %s (%s)", r.Format, r.Status, r.Reason, r.Detail)
	}
}

func TestLegacyHostile(t *testing.T) {
	// A FIB whose piece table points outside its stream, and garbage after
	// the OLE magic: corrupt, not a panic.
	doc := bytes.Clone(docFixture(t, "letter.doc"))
	fib := bytes.Index(doc, []byte{0xec, 0xa5})
	for i := 0; i < 8; i++ {
		doc[fib+154+8*33+i] = 0xff // fcClx, lcbClx
	}
	if r := docExtract(t, "bad.doc", doc, nil); r.Reason != ReasonCorrupt {
		t.Errorf("bad clx: %s %s", r.Status, r.Reason)
	}
	junk := append(bytes.Clone(oleMagic), bytes.Repeat([]byte{0xff}, 4096)...)
	for _, name := range []string{"junk.doc", "junk.xls"} {
		if r := docExtract(t, name, junk, nil); r.Reason != ReasonCorrupt {
			t.Errorf("%s: %s %s", name, r.Status, r.Reason)
		}
	}
	if r := docExtract(t, "junk.ppt", junk, nil); r.Format != "ppt" || r.Reason != ReasonCorrupt {
		t.Errorf("ppt: %s %s %s", r.Format, r.Status, r.Reason)
	}
	// No text in the masters: their prompts are not the presentation's.
	if r := docExtract(t, "slides.ppt.gz", docFixture(t, "slides.ppt.gz"), nil); strings.Contains(r.Text, "Click to edit") {
		t.Errorf("ppt: master prompts in the text:\n%s", r.Text)
	}
}

// TestXLSStringAcrossContinue: a shared string whose characters go on in
// a CONTINUE record, switching from one byte to two per character there.
func TestXLSStringAcrossContinue(t *testing.T) {
	c := &xlsCursor{segs: [][]byte{
		{5, 0, 0x00, 'a', 'b'},         // cch 5, compressed: "ab"
		{0x01, 0xe5, 0x65, 0x2c, 0x67}, // flags: UTF-16 from here: 日本
		{0x00, 'z'},                    // back to compressed: z
	}}
	s, err := c.str(-1, false)
	if err != nil || s != "ab日本z" {
		t.Fatalf("str = %q, %v", s, err)
	}
}

func FuzzLegacy(f *testing.F) {
	f.Add("doc", docFixture(f, "letter.doc"))
	f.Add("xls", docFixture(f, "sheet.xls"))
	f.Add("ppt", docFixture(f, "slides.ppt.gz"))
	f.Fuzz(func(t *testing.T, ext string, data []byte) {
		if ext != "xls" && ext != "ppt" {
			ext = "doc"
		}
		if !bytes.HasPrefix(data, oleMagic) {
			data = append(bytes.Clone(oleMagic), data...)
		}
		docFuzzCheck(t, "f."+ext, data)
	})
}
