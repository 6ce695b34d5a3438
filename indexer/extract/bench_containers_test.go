package extract

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkExtractContainers/<format>: the container and markup
// extractors on generated inputs of about a megabyte (MB/s is of the
// input as attached; docs/s is b.N per second), and on the small
// fixtures. (BenchmarkExtract, the document formats', is in
// docxml_test.go; `-bench Extract` runs both.) scripts/bench-containers.sh
// runs them against Debian's tnef, unzip and Python's parsers in the same
// run; figures in docs/benchmarks.md.

var benchWords = strings.Fields("the archive of mail holds contracts invoices budgets minutes reports " +
	"harbour kestrel osprey pelican quarterly revenue margins Zürich café naïve résumé figures attached " +
	"meeting agenda decided board review draft annex signed phase two approved")

func benchText(rng *rand.Rand, words int) string {
	var b strings.Builder
	for i := range words {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(benchWords[rng.IntN(len(benchWords))])
	}
	return b.String()
}

// benchInputs are the generated inputs: name → bytes.
func benchInputs(t testing.TB) map[string][]byte {
	rng := rand.New(rand.NewPCG(15, 2))
	var x strings.Builder
	x.WriteString(`<?xml version="1.0" encoding="UTF-8"?><report>`)
	for x.Len() < 1<<20 {
		fmt.Fprintf(&x, "<section id=\"s%d\"><title>%s</title><p>%s</p></section>\n", x.Len(), benchText(rng, 5), benchText(rng, 60))
	}
	x.WriteString("</report>")
	var h strings.Builder
	h.WriteString("<!DOCTYPE html><html><head><title>Minutes</title><style>p{margin:0}</style></head><body>")
	for h.Len() < 1<<20 {
		fmt.Fprintf(&h, "<div class=\"c\"><h2>%s</h2><p>%s <b>%s</b> %s</p><script>var x=%d;</script></div>\n",
			benchText(rng, 4), benchText(rng, 40), benchText(rng, 2), benchText(rng, 30), h.Len())
	}
	h.WriteString("</body></html>")
	var files []string
	for i := range 40 {
		if i%2 == 0 {
			files = append(files, fmt.Sprintf("docs/report-%02d.xml", i), "<r><p>"+benchText(rng, 4000)+"</p></r>")
		} else {
			files = append(files, fmt.Sprintf("docs/page-%02d.html", i), "<html><body><p>"+benchText(rng, 4000)+"</p></body></html>")
		}
	}
	w := newTNEFWriter()
	w.attr(1, 0x00018004, []byte("Quarterly figures\x00"))
	w.attr(1, 0x00069003, mapiBlock(mapiProp{ptBinary, prRTFCompressed, compressRTF([]byte("{\\rtf1\\ansi " + benchText(rng, 3000) + "}"))}))
	for i := range 4 {
		w.attachment(tnefFile{title: fmt.Sprintf("REPORT~%d.XML", i), long: fmt.Sprintf("report %d.xml", i), mime: "application/xml",
			data: []byte("<r><p>" + benchText(rng, 30000) + "</p></r>")})
	}
	return map[string][]byte{
		"report.xml":   []byte(x.String()),
		"minutes.html": []byte(h.String()),
		"archive.zip":  makeZip(t, files...),
		"winmail.dat":  w.b.Bytes(),
	}
}

func BenchmarkExtractContainers(b *testing.B) {
	in := benchInputs(b)
	// The peers in scripts/bench-containers.sh read the same inputs.
	if dir := os.Getenv("MAILVAULT_BENCH_INPUTS"); dir != "" {
		for name, data := range in {
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	for _, c := range []struct{ sub, name string }{
		{"zip", "archive.zip"}, {"tnef", "winmail.dat"}, {"xml", "report.xml"}, {"html", "minutes.html"},
	} {
		b.Run(c.sub, func(b *testing.B) { benchOne(b, c.name, in[c.name]) })
	}
	for _, f := range []string{"sample.zip", "sample.tar.gz", "winmail.dat"} {
		data := fixture(b, f)
		b.Run("fixture/"+f, func(b *testing.B) { benchOne(b, f, data) })
	}
}

func benchOne(b *testing.B, name string, data []byte) {
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var text int
	for b.Loop() {
		r := Extract(context.Background(), name, "", data, nil)
		if r.Status != OK {
			b.Fatalf("%s: %s %s %s", name, r.Status, r.Reason, r.Detail)
		}
		text = len(r.Text)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "docs/s")
	b.ReportMetric(float64(text), "text-bytes")
}
