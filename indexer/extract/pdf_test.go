package extract

import (
	"bytes"
	"compress/zlib"
	"fmt"
	"strings"
	"testing"
	"time"
)

// docPDF writes a PDF of the objects given (object i+1 is objs[i]) with a
// correct cross-reference table, so that each hostile variant is hostile
// in one way only. trailer is added to the trailer dictionary.
func docPDF(objs []string, trailer string) []byte {
	var b bytes.Buffer
	b.WriteString("%PDF-1.4\n")
	offs := make([]int, len(objs))
	for i, o := range objs {
		offs[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	x := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objs)+1)
	for _, o := range offs {
		fmt.Fprintf(&b, "%010d 00000 n \n", o)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R %s >>\nstartxref\n%d\n%%%%EOF\n", len(objs)+1, trailer, x)
	return b.Bytes()
}

func docStream(content string, deflate bool) string {
	if !deflate {
		return fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(content), content)
	}
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write([]byte(content))
	zw.Close()
	return fmt.Sprintf("<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream", z.Len(), z.Bytes())
}

// docPDFPage is a one-page PDF whose page shows content (Helvetica, F1).
func docPDFPage(content string, deflate bool) []string {
	return []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
		docStream(content, deflate),
		"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
	}
}

func TestPDFLayout(t *testing.T) {
	for _, tc := range []struct {
		name, content, want string
	}{
		{"plain", "BT /F1 12 Tf 72 700 Td (Hello world) Tj ET", "Hello world\n"},
		{"lines", "BT /F1 12 Tf 72 700 Td (first line) Tj 0 -14 Td (second line) Tj ET", "first line\nsecond line\n"},
		// pdfTeX: words apart by glyph positions, not spaces.
		{"TJ gaps", "BT /F1 10 Tf 72 700 Td [(word)-333(gap)-20(kern)] TJ ET", "word gapkern\n"},
		// groff through Ghostscript: the gaps are character spacing.
		{"Tc gaps", "BT /F1 10 Tf 72 700 Td 2.5 Tc [(sa)250(si)250(ft)] TJ ET", "s as if t\n"},
		{"T* and TL", "BT /F1 10 Tf 12 TL 72 700 Td (one) Tj T* (two) Tj (three) ' ET", "one\ntwo\nthree\n"},
		{"ActualText", "BT /F1 10 Tf 72 700 Td /Span << /ActualText (fi) >> BDC (X) Tj EMC (nal) Tj ET", "final\n"},
		{"q Q cm", "q 1 0 0 1 0 -100 cm BT /F1 10 Tf 72 700 Td (low) Tj ET Q BT /F1 10 Tf 72 700 Td (high) Tj ET", "low\nhigh\n"},
		{"deflated", "BT /F1 12 Tf 72 700 Td (compressed stream) Tj ET", "compressed stream\n"},
	} {
		data := docPDF(docPDFPage(tc.content, tc.name == "deflated"), "")
		r := docExtract(t, "t.pdf", data, nil)
		if r.Status != OK || r.Text != tc.want {
			t.Errorf("%s: %s %s %q, want %q", tc.name, r.Status, r.Detail, r.Text, tc.want)
		}
	}
}

func TestPDFHostile(t *testing.T) {
	page := docPDFPage("BT /F1 12 Tf 72 700 Td (text) Tj ET", false)
	replace := func(i int, o string) []string {
		objs := append([]string(nil), page...)
		objs[i] = o
		return objs
	}
	// A flate stream that inflates to 64 MiB of spaces (64 KiB compressed).
	bomb := docStream(strings.Repeat(" ", 64<<20), true)
	// An array of 3 million zeros as the page's /Kids (6 MB: ~70 MB of Go
	// values in the library), and the same inside an object stream.
	zeros := strings.Repeat("0 ", 3_000_000)
	objStm := func(obj string) string {
		var z bytes.Buffer
		zw := zlib.NewWriter(&z)
		fmt.Fprintf(zw, "6 0 %s", obj)
		zw.Close()
		return fmt.Sprintf("<< /Type /ObjStm /N 1 /First 4 /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream", z.Len(), z.Bytes())
	}
	for _, tc := range []struct {
		name   string
		data   []byte
		lim    Limits
		reason string
	}{
		{"huge array", docPDF(replace(1, "<< /Type /Pages /Kids ["+zeros+"] /Count 1 >>"), ""), Limits{}, ReasonExpansion},
		{"huge dict", docPDF(replace(4, "<< /Type /Font "+strings.Repeat("/K 1 ", 1_000_000)+">>"), ""), Limits{}, ReasonExpansion},
		{"unclosed huge array", docPDF(replace(1, "<< /Type /Pages /Kids ["+zeros), ""), Limits{}, ReasonExpansion},
		{"huge array in an object stream", docPDF(append(append([]string(nil), page...), objStm("["+zeros+"]")), ""), Limits{}, ReasonExpansion},
		// Brackets inside strings and comments are not structure: four
		// unclosed ones before a 5 MiB stream body would be a span over
		// the limit if they were.
		{"brackets in strings", docPDF(append([]string{"<< /Type /Catalog /Pages 2 0 R /Title (a [ b \\) [[[ c) /Hex <5b5b> >>\n% [ a comment ["},
			replace(3, docStream("BT /F1 12 Tf 72 700 Td (text) Tj ET "+strings.Repeat("%", 5<<20), false))[1:]...), ""), Limits{}, "ok"},
		{"kids cycle", docPDF(replace(1, "<< /Type /Pages /Kids [2 0 R 2 0 R] /Count 1 >>"), ""), Limits{}, ReasonCorrupt},
		{"kids self", docPDF(replace(1, "<< /Type /Pages /Kids [2 0 R] /Count 1 >>"), ""), Limits{}, ReasonCorrupt},
		{"parent cycle", docPDF(replace(2, "<< /Type /Page /Parent 3 0 R /Contents 4 0 R >>"), ""), Limits{}, ReasonCorrupt},
		{"huge Size", bytes.Replace(docPDF(page, ""), []byte("/Size 6"), []byte("/Size 99999999999"), 1), Limits{}, ReasonExpansion},
		{"huge subsection", bytes.Replace(docPDF(page, ""), []byte("xref\n0 6"), []byte("xref\n2147483000 6"), 1), Limits{}, ReasonExpansion},
		// A Length past the end of the file: read to the end, nothing more.
		{"huge Length", docPDF(replace(3, "<< /Length 99999999999 >>\nstream\nBT ET\nendstream"), ""), Limits{}, ""},
		{"flate bomb", docPDF(replace(3, bomb), ""), Limits{MaxExpanded: 16 << 20}, ReasonExpansion},
		{"prev cycle", bytes.Replace(docPDF(page, "/Prev 999999"), []byte("/Prev 999999"), []byte(fmt.Sprintf("/Prev %d", bytes.Index(docPDF(page, "/Prev 999999"), []byte("xref\n")))), 1), Limits{}, ReasonCorrupt},
		{"no pages", docPDF([]string{"<< /Type /Catalog >>"}, ""), Limits{}, ReasonCorrupt},
		{"not a pdf body", []byte("%PDF-1.4\ngarbage"), Limits{}, ReasonCorrupt},
		{"bad content", docPDF(replace(3, docStream("BT /F1 12 Tf ] ] ) Tj Q Q Q", false)), ""), Limits{}, ""},
		{"encrypted AES-256 user password", docFixture(t, "letter-aes256-user.pdf"), Limits{}, ReasonEncrypted},
		{"encrypted AES-128 user password", docFixture(t, "letter-aes128-user.pdf"), Limits{}, ReasonEncrypted},
		// No user password, but AES-256 (V5), which the library does not
		// decrypt: encrypted, not corrupt (a known limit).
		{"encrypted AES-256 owner password only", docFixture(t, "letter-aes256-nouser.pdf"), Limits{}, ReasonEncrypted},
	} {
		tc.lim.Timeout = 5 * time.Second
		r := docExtract(t, "h.pdf", tc.data, &tc.lim)
		if tc.reason == "" {
			if r.Status == Unsupported {
				t.Errorf("%s: unsupported", tc.name)
			}
			continue
		}
		if tc.reason == "ok" {
			if r.Status != OK || r.Text != "text\n" {
				t.Errorf("%s: %s %s (%s) %.40q", tc.name, r.Status, r.Reason, r.Detail, r.Text)
			}
			continue
		}
		if r.Reason != tc.reason {
			t.Errorf("%s: %s %s (%s), want reason %s", tc.name, r.Status, r.Reason, r.Detail, tc.reason)
		}
	}
}

func TestPDFVersion2(t *testing.T) {
	data := docPDF(docPDFPage("BT /F1 12 Tf 72 700 Td (version two) Tj ET", false), "")
	data = append([]byte("%PDF-2.0"), data[8:]...)
	if r := docExtract(t, "v2.pdf", data, nil); r.Status != OK || r.Text != "version two\n" {
		t.Fatalf("%s %s %q", r.Status, r.Detail, r.Text)
	}
}

func FuzzPDF(f *testing.F) {
	f.Add(docFixture(f, "letter.pdf"))
	f.Add(docFixture(f, "slides.pdf"))
	f.Add(docPDF(docPDFPage("BT /F1 12 Tf 72 700 Td [(a)-300(b)] TJ ET", true), ""))
	f.Fuzz(func(t *testing.T, data []byte) {
		if !bytes.HasPrefix(data, []byte("%PDF-")) {
			data = append([]byte("%PDF-1.4\n"), data...)
		}
		docFuzzCheck(t, "f.pdf", data)
	})
}

// TestPDFStopsItself: a page of two million operators with a 100 ms
// deadline ends as a timeout soon after it, stopped by the interpreter's
// own check (not abandoned by Extract: Abandoned is back to zero at once);
// and a long text stops at the text limit, truncated.
func TestPDFStopsItself(t *testing.T) {
	ops := "BT /F1 12 Tf 72 700 Td " + strings.Repeat("(x) Tj ", 2_000_000) + "ET"
	data := docPDF(docPDFPage(ops, true), "")
	begin := time.Now()
	r := Extract(t.Context(), "long.pdf", "", data, &Limits{Timeout: 100 * time.Millisecond})
	if r.Reason != ReasonTimeout {
		t.Fatalf("%s %s (%s)", r.Status, r.Reason, r.Detail)
	}
	for time.Since(begin) < 2*time.Second && Abandoned() != 0 {
		time.Sleep(10 * time.Millisecond)
	}
	if n := Abandoned(); n != 0 {
		t.Fatalf("%d extractions still running 2 s after the deadline: the PDF extractor did not stop", n)
	}
	r = docExtract(t, "long.pdf", data, &Limits{MaxText: 10000, Timeout: 30 * time.Second})
	if r.Status != Truncated || r.Reason != ReasonText || len(r.Text) > 10000 || len(r.Text) < 5000 {
		t.Fatalf("text limit: %s %s, %d bytes", r.Status, r.Reason, len(r.Text))
	}
}
