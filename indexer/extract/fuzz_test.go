package extract

import (
	"context"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Native fuzzers: FuzzExtract over any bytes with any name and media type
// (so every registered extractor, the document formats' too, is reached
// through Detect as an attachment reaches it), and FuzzZip and FuzzTNEF on
// the readers written here. Each checks what every Result must be
// (checkResult: valid UTF-8 within MaxText, one of the four statuses, a
// Reason when Truncated or Failed, no panic, members within MaxMembers)
// and that Extract returned by its deadline. CI runs them briefly
// (scripts/test.sh); longer runs are in docs/benchmarks.md.

var fuzzNames = []string{
	"a.pdf", "a.docx", "a.xlsx", "a.pptx", "a.odt", "a.ods", "a.odp", "a.rtf", "a.doc", "a.xls", "a.ppt",
	"a.zip", "a.tar", "a.gz", "a.tgz", "winmail.dat", "a.xml", "a.html", "a.ics", "a.vcf", "a.txt", "a.csv",
	"a.bin", "", "noext", "../../a.zip",
}

var fuzzTypes = []string{
	"", "application/octet-stream", "application/pdf", "application/zip", "application/x-tar", "application/gzip",
	"application/ms-tnef", "text/xml", "text/html", "text/calendar", "text/vcard", "text/plain", "application/rtf",
	"application/msword", "application/vnd.ms-excel", "image/svg+xml",
}

// fuzzLimits are small, so that an execution stays short; the deadline is
// a bound checked, not one expected to be reached.
var fuzzLimits = Limits{Timeout: 5 * time.Second, MaxInput: 4 << 20, MaxText: 256 << 10, MaxExpanded: 16 << 20}

const fuzzSlack = 5 * time.Second

func fuzzSeeds(f *testing.F, match func(path string, data []byte) bool) {
	for p, data := range testdataFiles(f) {
		if match(p, data) {
			f.Add(data)
		}
	}
}

func fuzzCheck(t *testing.T, name, ct string, data []byte) Result {
	begin := time.Now()
	r := Extract(context.Background(), name, ct, data, &fuzzLimits)
	if el := time.Since(begin); el > fuzzLimits.Timeout+fuzzSlack {
		t.Fatalf("Extract(%q, %q, %d bytes) returned after %s", name, ct, len(data), el)
	}
	if r.Reason == ReasonTimeout || Abandoned() > 0 {
		// Which extractor, and where: an abandoned one is still running.
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Fatalf("Extract(%q, %q, %d bytes) = %s %s, %d abandoned: an extractor too slow for its input or deaf to its deadline\n%s",
			name, ct, len(data), r.Status, r.Reason, Abandoned(), buf)
	}
	checkResult(t, name, r, fuzzLimits.WithDefaults())
	return r
}

func FuzzExtract(f *testing.F) {
	for p, data := range testdataFiles(f) {
		for i, n := range fuzzNames {
			if filepath.Ext(n) == filepath.Ext(p) {
				f.Add(data, uint8(i), uint8(0))
			}
		}
		f.Add(data, uint8(len(fuzzNames)-3), uint8(1)) // a.bin, octet-stream: by content alone
	}
	f.Add(sampleTNEF(), uint8(15), uint8(6))
	f.Fuzz(func(t *testing.T, data []byte, name, ct uint8) {
		fuzzCheck(t, fuzzNames[int(name)%len(fuzzNames)], fuzzTypes[int(ct)%len(fuzzTypes)], data)
	})
}

func FuzzZip(f *testing.F) {
	fuzzSeeds(f, func(p string, data []byte) bool { return strings.HasPrefix(string(data), "PK") })
	f.Add(makeZip(f, "a.xml", "<a>alpha</a>", "dir/", "", "b.zip", string(makeZip(f, "c.html", "<p>c</p>"))))
	f.Add(claimEntries(makeZip(f, "a.xml", "<a>x</a>"), 1<<40))
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzCheck(t, "a.zip", "application/zip", data)
		// The directory reader alone: never more than asked for.
		if es, _, _ := zipDirectory(data, 100); len(es) > 100 {
			t.Fatalf("zipDirectory: %d entries", len(es))
		}
		if es, _, _ := zipLocalEntries(testJob(fuzzLimits), data, 100); len(es) > 100 {
			t.Fatalf("zipLocalEntries: %d entries", len(es))
		}
	})
}

func FuzzTNEF(f *testing.F) {
	fuzzSeeds(f, func(p string, data []byte) bool { return filepath.Base(p) == "winmail.dat" })
	f.Add(sampleTNEF())
	w := newTNEFWriter()
	w.attr(1, 0x00069003, mapiBlock(mapiProp{ptUnicode, prSubject, "s"}, mapiProp{ptBinary, prRTFCompressed, compressRTF([]byte("{\\rtf1 abcabcabc}"))}))
	f.Add(w.b.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzCheck(t, "winmail.dat", "application/ms-tnef", data)
		// LZFu on its own: at most 17 bytes out per 2 in (8 per byte
		// with the control bytes), whatever the input.
		out, _ := decompressRTF(testJob(Limits{}), data)
		if len(out) > 8*len(data)+17 {
			t.Fatalf("decompressRTF: %d bytes from %d", len(out), len(data))
		}
	})
}
