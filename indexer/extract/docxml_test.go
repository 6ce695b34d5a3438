package extract

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// The document extractors against real documents LibreOffice produced from
// known text (scripts/make-extract-fixtures.sh; testdata/docs holds each
// file beside the text it was made from), and against hostile variants.

// docFixture reads a fixture; one named *.gz (a file too big to check in
// as it is: LibreOffice's .ppt of three slides is 450 KB) is gunzipped.
func docFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "docs", name))
	if err != nil {
		t.Fatalf("fixture %s: %v (scripts/make-extract-fixtures.sh makes it)", name, err)
	}
	if strings.HasSuffix(name, ".gz") {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("fixture %s: %v", name, err)
		}
		if b, err = io.ReadAll(zr); err != nil {
			t.Fatalf("fixture %s: %v", name, err)
		}
	}
	return b
}

var docWordRE = regexp.MustCompile(`\d+(?:\.\d+)*|\w+`)

// docWords are the words of s, lowercased, as a multiset. Numbers compare
// by value (a spreadsheet stores 15600.50 as 15600.5), and one-letter ASCII
// words are left out (pdftotext and the extractors disagree on stray
// bullets and initials more than on text).
func docWords(s string) map[string]int {
	out := map[string]int{}
	for _, w := range docWordRE.FindAllString(strings.ToLower(s), -1) {
		if len(w) == 1 {
			continue
		}
		if w[0] >= '0' && w[0] <= '9' {
			if f, err := strconv.ParseFloat(w, 64); err == nil {
				w = strconv.FormatFloat(f, 'g', -1, 64)
			}
		}
		out[w]++
	}
	return out
}

// docRecall is the share of ref's words (counted with repeats) that got
// has, and the words missing.
func docRecall(ref, got string) (float64, []string) {
	r, g := docWords(ref), docWords(got)
	total, hit := 0, 0
	var missing []string
	for w, n := range r {
		total += n
		hit += min(n, g[w])
		if g[w] < n {
			missing = append(missing, w)
		}
	}
	if total == 0 {
		return 1, nil
	}
	return float64(hit) / float64(total), missing
}

func docExtract(t testing.TB, name string, data []byte, lim *Limits) Result {
	t.Helper()
	if lim == nil {
		lim = &Limits{Timeout: 20 * time.Second}
	}
	begin := time.Now()
	r := Extract(context.Background(), strings.TrimSuffix(name, ".gz"), "", data, lim)
	if el := time.Since(begin); el > lim.Timeout+2*time.Second {
		t.Fatalf("%s: returned after %s", name, el)
	}
	if !utf8.ValidString(r.Text) {
		t.Fatalf("%s: text is not UTF-8", name)
	}
	if r.Reason == ReasonPanic {
		t.Fatalf("%s: extractor panicked: %s", name, r.Detail)
	}
	return r
}

// TestDocumentRecall: every format LibreOffice wrote finds >= 95 % of the
// words of the text it was made from (the target), in full.
func TestDocumentRecall(t *testing.T) {
	for _, tc := range []struct {
		file, source, format string
	}{
		{"letter.docx", "letter.txt", "docx"},
		{"letter.odt", "letter.txt", "odt"},
		{"letter.doc", "letter.txt", "doc"},
		{"letter.rtf", "letter.txt", "rtf"},
		{"letter.pdf", "letter.txt", "pdf"},
		{"sheet.xlsx", "sheet.txt", "xlsx"},
		{"sheet.ods", "sheet.txt", "ods"},
		{"sheet.xls", "sheet.txt", "xls"},
		{"slides.pptx", "slides.txt", "pptx"},
		{"slides.odp", "slides.txt", "odp"},
		{"slides.ppt.gz", "slides.txt", "ppt"},
		// LibreOffice's PDF of slides leaves the notes out: compared with
		// pdftotext's text of the same file instead.
		{"slides.pdf", "slides.pdftotext", "pdf"},
		{"letter.pdf", "letter.pdftotext", "pdf"},
		// An owner password only (RC4): anyone may read it.
		{"letter-rc4-nouser.pdf", "letter.txt", "pdf"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			r := docExtract(t, tc.file, docFixture(t, tc.file), nil)
			if r.Format != tc.format || r.Status != OK {
				t.Fatalf("format %q status %s %s %s", r.Format, r.Status, r.Reason, r.Detail)
			}
			rec, missing := docRecall(string(docFixture(t, tc.source)), r.Text)
			t.Logf("recall %.1f%% against %s", 100*rec, tc.source)
			if rec < 0.95 {
				t.Fatalf("recall %.1f%% < 95%%; missing %q\ntext:\n%s", 100*rec, missing, r.Text)
			}
		})
	}
}

// TestDocumentLayout pins what the recall test cannot see: order, lines,
// cells, headers and footers, non-ASCII.
func TestDocumentLayout(t *testing.T) {
	for _, tc := range []struct {
		file string
		want []string // substrings, in this order
	}{
		{"letter.docx", []string{"Dear Ms. Øvergaard", "Herr Straße", "日本語 版 を 送ります", "teacups\t240\t3.75\n", "Quarterly Report Header", "Confidential Footer"}},
		{"letter.odt", []string{"Quarterly Report Header", "Confidential Footer", "Dear Ms. Øvergaard", "日本語", "teacups\t240\t3.75\n"}},
		{"letter.doc", []string{"Dear Ms. Øvergaard", "Herr Straße", "日本語 版 を 送ります", "teacups\t240\t3.75\n", "Quarterly Report Header", "Confidential Footer"}},
		{"sheet.xls", []string{"sheet\n", "Region\tProduct\tUnits\tRevenue\tManager\n", "West\tFlanges\t77\t1001\t山田 太郎\n"}},
		{"letter.rtf", []string{"Quarterly Report Header", "Dear Ms. Øvergaard", "café partner in Besançon", "日本語 版 を 送ります", "teacups 240 3.75\n"}},
		{"letter.pdf", []string{"Quarterly Report Header", "Dear Ms. Øvergaard", "日本語 版 を 送ります", "teacups", "Confidential Footer"}},
		{"sheet.xlsx", []string{"Region\tProduct\tUnits\tRevenue\tManager\n", "West\tFlanges\t77\t1001\t山田 太郎\n"}},
		{"sheet.ods", []string{"Region\tProduct\tUnits\tRevenue\tManager\n", "Central\tGaskets\t3125\t46875\tSøren Kierkegaard\n"}},
		{"slides.pptx", []string{"Launch Plan Overview\n", "Notes: mention the Oslo", "Budget and Timeline\n", "Notes: the timeline", "Risks and Mitigation\n", "über Euro", "日本"}},
		{"slides.odp", []string{"Launch Plan Overview\n", "Notes: mention the Oslo", "Budget and Timeline\n", "Risks and Mitigation\n", "日本"}},
		// .ppt: the slides in order, then the notes pages (stream order);
		// no master prompts ("Click to edit").
		{"slides.ppt.gz", []string{"Launch Plan Overview\n", "Budget and Timeline\n", "Risks and Mitigation\n", "über Euro\n", "Notes: mention the Oslo", "Notes: hedge with forward contracts 日本\n"}},
	} {
		r := docExtract(t, tc.file, docFixture(t, tc.file), nil)
		rest := r.Text
		for _, w := range tc.want {
			i := strings.Index(rest, w)
			if i < 0 {
				t.Errorf("%s: %q missing (or out of order) in\n%s", tc.file, w, r.Text)
				break
			}
			rest = rest[i+len(w):]
		}
	}
}

// TestPDFAgainstPdftotext runs poppler's pdftotext on the fixture PDFs and
// compares: a differential test against the reference extractor. Under
// CI=true pdftotext must be there (.ci/run installs poppler-utils).
func TestPDFAgainstPdftotext(t *testing.T) {
	if _, err := exec.LookPath("pdftotext"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("pdftotext (poppler-utils) is not installed")
		}
		t.Skip("pdftotext (poppler-utils) is not installed")
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "docs", "*.pdf"))
	if dir := os.Getenv("MAILVAULT_EXTRACT_PDFS"); dir != "" {
		// Real PDFs from Debian documentation packages
		// (scripts/make-extract-fixtures.sh --debian), outside CI.
		more, _ := filepath.Glob(filepath.Join(dir, "*.pdf"))
		files = append(files, more...)
	}
	for _, f := range files {
		if strings.Contains(filepath.Base(f), "-aes") {
			continue // encrypted so that we cannot read it (TestPDFHostile)
		}
		out, err := exec.Command("pdftotext", "-enc", "UTF-8", f, "-").Output()
		if err != nil {
			t.Fatalf("pdftotext %s: %v", f, err)
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		r := docExtract(t, f, data, nil)
		rec, missing := docRecall(string(out), r.Text)
		t.Logf("%s: recall %.1f%% against pdftotext", filepath.Base(f), 100*rec)
		if r.Status != OK || rec < 0.95 {
			t.Errorf("%s: status %s %s, recall %.1f%% against pdftotext; missing %.200q", f, r.Status, r.Detail, 100*rec, missing)
		}
	}
}

// docZip builds a ZIP package of name/content pairs (deflated).
func docZip(t testing.TB, files ...string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for i := 0; i+1 < len(files); i += 2 {
		method := zip.Deflate
		if files[i] == "mimetype" {
			method = zip.Store
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: files[i], Method: method})
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(files[i+1]))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestTruncatedDocuments cuts every fixture at several points: each cut
// ends in bounded time, without a panic, as corrupt (or, for a cut that
// leaves a readable file, OK) and never with invalid text.
func TestTruncatedDocuments(t *testing.T) {
	for _, f := range []string{"letter.docx", "letter.odt", "letter.rtf", "letter.pdf", "letter.doc", "sheet.xlsx", "sheet.ods", "sheet.xls", "slides.pptx", "slides.odp", "slides.ppt.gz", "slides.pdf"} {
		data := docFixture(t, f)
		for _, frac := range []float64{0.02, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99} {
			n := int(float64(len(data)) * frac)
			r := docExtract(t, f, data[:n], &Limits{Timeout: 5 * time.Second})
			if r.Status == OK || r.Status == Unsupported {
				t.Errorf("%s cut at %d of %d: status %s (format %q), want failed", f, n, len(data), r.Status, r.Format)
				continue
			}
			if r.Reason != ReasonCorrupt {
				t.Errorf("%s cut at %d of %d: reason %s (%s), want corrupt", f, n, len(data), r.Reason, r.Detail)
			}
		}
	}
}

// BenchmarkExtract/<format> extracts each fixture whole (MB/s is of the
// input; docs/s is b.N per second).
func BenchmarkExtract(b *testing.B) {
	for _, f := range []string{"letter.docx", "sheet.xlsx", "slides.pptx", "letter.odt", "sheet.ods", "slides.odp", "letter.rtf", "letter.doc", "sheet.xls", "slides.ppt.gz", "letter.pdf", "slides.pdf"} {
		data := docFixture(b, f)
		f = strings.TrimSuffix(f, ".gz")
		b.Run(strings.TrimPrefix(filepath.Ext(f), ".")+"/"+strings.TrimSuffix(f, filepath.Ext(f)), func(b *testing.B) {
			docBench(b, f, data)
		})
	}
	// Real manuals (scripts/make-extract-fixtures.sh --debian), when given.
	if dir := os.Getenv("MAILVAULT_EXTRACT_PDFS"); dir != "" {
		files, _ := filepath.Glob(filepath.Join(dir, "*.pdf"))
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				b.Fatal(err)
			}
			b.Run("pdf/"+strings.TrimSuffix(filepath.Base(f), ".pdf"), func(b *testing.B) { docBench(b, f, data) })
		}
	}
}

func docBench(b *testing.B, name string, data []byte) {
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if r := Extract(context.Background(), name, "", data, nil); r.Status != OK {
			b.Fatalf("%s: %s %s", name, r.Status, r.Detail)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "docs/s")
}
