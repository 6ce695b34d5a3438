package extract

import (
	"bytes"
	"testing"
)

// TestLegacyEncrypted marks the LibreOffice fixtures as password-protected
// the way Word and Excel do, in place (the OLE container stays valid):
// Excel's FILEPASS record in the workbook globals, Word's fEncrypted bit in
// the FIB. LibreOffice 7.4 headless does not write encrypted files, and no
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
	// PowerPoint 97-2003 is named and unsupported.
	if r := docExtract(t, "old.ppt", junk, nil); r.Format != "ppt" || r.Status != Unsupported {
		t.Errorf("ppt: %s %s", r.Format, r.Status)
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
	f.Fuzz(func(t *testing.T, ext string, data []byte) {
		if ext != "xls" {
			ext = "doc"
		}
		if !bytes.HasPrefix(data, oleMagic) {
			data = append(bytes.Clone(oleMagic), data...)
		}
		docFuzzCheck(t, "f."+ext, data)
	})
}
