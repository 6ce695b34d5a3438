package extract

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"
)

// Hostile inputs, generated, across every registered format (the document
// formats included when their extractors are there): each must return
// within the deadline plus slack, with the Go heap's growth under a stated
// bound, and say what happened (Truncated or Failed with the expected
// Reason: never OK for what it could not read, never silent).
//
// The bounds: hostileTimeout is the Limits.Timeout given; hostileSlack is
// what a loaded machine may add (the deadline abandons a stuck extractor,
// so Extract itself returns at hostileTimeout). Heap: the peak HeapInuse
// above the baseline, sampled every millisecond, stays under
// hostileHeapBound, and TotalAlloc under hostileAllocBound — a quarter and
// a half of MaxExpanded's default: a bomb that expanded in memory to its
// limit would fail them.
const (
	hostileTimeout    = 5 * time.Second
	hostileSlack      = 3 * time.Second
	hostileHeapBound  = 64 << 20
	hostileAllocBound = 128 << 20
)

type hostileCase struct {
	name, ct string
	data     func(t testing.TB) []byte
	lim      Limits
	status   []Status // any of these
	reason   string   // "" = any (with a reason when not OK)
	check    func(t *testing.T, r Result)
}

// gzipOf wraps a raw deflate stream of n bytes with CRC crc in a gzip
// header and trailer.
func gzipOf(deflate []byte, crc uint32, n int64) []byte {
	b := []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}
	b = append(b, deflate...)
	b = binary.LittleEndian.AppendUint32(b, crc)
	return binary.LittleEndian.AppendUint32(b, uint32(n))
}

// nestedZips wraps inner in depth zips, one member each.
func nestedZips(t testing.TB, inner []byte, depth int) []byte {
	z := inner
	for i := depth - 1; i >= 0; i-- {
		z = makeZip(t, fmt.Sprintf("level%d.zip", i), string(z))
	}
	return z
}

// fortyTwo is 42.zip's shape: levels of 16 copies of the level below, the
// bottom 16 members each a deflated GiB of zeros whose declared size lies
// (1000 bytes), so only reading stops them.
func fortyTwo(t testing.TB, levels int) []byte {
	comp := zeroDeflate(1 << 30).Bytes()
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	for i := range 16 {
		f, err := w.CreateRaw(&zip.FileHeader{Name: fmt.Sprintf("%d.bin", i), Method: zip.Deflate, CRC32: zeroCRC(1 << 30),
			UncompressedSize64: 1000, CompressedSize64: uint64(len(comp))})
		if err != nil {
			t.Fatal(err)
		}
		f.Write(comp)
	}
	w.Close()
	z := b.Bytes()
	for l := range levels {
		var files []string
		for i := range 16 {
			files = append(files, fmt.Sprintf("lib%d_%d.zip", l, i), string(z))
		}
		z = makeZip(t, files...)
	}
	return z
}

func hostileCases() []hostileCase {
	anyBad := []Status{Truncated, Failed}
	return []hostileCase{
		{name: "bomb.zip", data: func(t testing.TB) []byte { return bombZip(t, 1<<30, false) },
			status: []Status{Truncated}, reason: ReasonExpansion},
		{name: "bomb-lying.zip", data: func(t testing.TB) []byte { return bombZip(t, 1<<30, true) },
			status: []Status{Truncated}, reason: ReasonExpansion},
		{name: "42.zip", data: func(t testing.TB) []byte { return fortyTwo(t, 2) },
			status: []Status{Truncated}, reason: ReasonExpansion},
		{name: "nested10.zip", data: func(t testing.TB) []byte { return nestedZips(t, []byte("<a>bottom</a>"), 10) },
			status: []Status{Truncated}, reason: ReasonDepth, check: func(t *testing.T, r Result) {
				// The top is depth 0: level5.zip is listed at depth 5, not opened.
				if !strings.Contains(r.Text, "level5.zip") || strings.Contains(r.Text, "level6.zip") {
					t.Errorf("names to MaxDepth: %q", r.Text)
				}
			}},
		{name: "claims10M.zip", data: func(t testing.TB) []byte { return claimEntries(makeZip(t, "a.xml", "<a>alpha</a>"), 10_000_000) },
			status: []Status{Failed}, reason: ReasonCorrupt},
		{name: "members.zip", data: func(t testing.TB) []byte {
			var files []string
			for i := range 20000 {
				files = append(files, fmt.Sprint(i), "")
			}
			return makeZip(t, files...)
		}, status: []Status{Truncated}, reason: ReasonMembers, check: func(t *testing.T, r Result) {
			if len(r.Members) != defaultMaxMembers {
				t.Errorf("%d members kept", len(r.Members))
			}
		}},
		{name: "huge.tar", data: func(t testing.TB) []byte {
			var b bytes.Buffer
			tw := tar.NewWriter(&b)
			tw.WriteHeader(&tar.Header{Name: "huge.iso", Size: 100 << 30, Mode: 0o644, Typeflag: tar.TypeReg})
			tw.Write(make([]byte, 1<<16))
			return b.Bytes()
		}, status: []Status{Failed}, reason: ReasonCorrupt, check: func(t *testing.T, r Result) {
			if len(r.Members) != 1 || r.Members[0].Result.Reason != ReasonTooLarge {
				t.Errorf("members %+v", r.Members)
			}
		}},
		{name: "bomb.gz", data: func(t testing.TB) []byte { return gzipOf(zeroDeflate(1<<30).Bytes(), zeroCRC(1<<30), 1<<30) },
			status: []Status{Truncated}, reason: ReasonExpansion},
		{name: "bomb.tar.gz", data: func(t testing.TB) []byte {
			// A tar of one member of 1 GiB of zeros (256 MiB present), gzipped: the tar header
			// then zeros, so the gzip payload itself is the bomb.
			var h bytes.Buffer
			tw := tar.NewWriter(&h)
			tw.WriteHeader(&tar.Header{Name: "zeros", Size: 1 << 30, Mode: 0o644, Typeflag: tar.TypeReg})
			hdr := h.Bytes()[:512]
			var comp bytes.Buffer
			fw, _ := gzip.NewWriterLevel(&comp, gzip.BestCompression)
			fw.Write(hdr)
			zero := make([]byte, 1<<20)
			for range 1 << 8 { // 256 MiB: a bomb all the same
				fw.Write(zero)
			}
			fw.Close()
			return comp.Bytes()
		}, status: []Status{Truncated}, reason: ReasonExpansion},
		{name: "winmail.dat", data: func(t testing.TB) []byte {
			w := newTNEFWriter()
			w.b.WriteByte(2)
			binary.Write(&w.b, binary.LittleEndian, uint32(0x0006800F))
			binary.Write(&w.b, binary.LittleEndian, uint32(0xffffffff)) // 4 GiB
			w.b.Write(make([]byte, 1000))
			return w.b.Bytes()
		}, status: []Status{Failed}, reason: ReasonCorrupt},
		{name: "nested.dat", ct: "application/ms-tnef", data: func(t testing.TB) []byte {
			inner := []byte("<a>bottom</a>")
			for i := range 10 {
				w := newTNEFWriter()
				w.attachment(tnefFile{title: fmt.Sprintf("level%d.dat", i), data: inner})
				inner = w.b.Bytes()
			}
			return inner
		}, status: []Status{Truncated}, reason: ReasonDepth},
		// Not bombs for these readers, and said so: a million levels cost
		// the document's size (no stack of names), and declared entities
		// are never expanded. Both read to the end: OK.
		{name: "deep.xml", data: func(t testing.TB) []byte {
			return []byte(strings.Repeat("<a>", 1e6) + "deep" + strings.Repeat("</a>", 1e6))
		}, status: []Status{OK}},
		{name: "lol.xml", data: func(t testing.TB) []byte { return []byte(billionLaughs) }, status: []Status{OK},
			check: func(t *testing.T, r Result) {
				if len(r.Text) > 100 {
					t.Errorf("entities expanded: %d bytes", len(r.Text))
				}
			}},
		{name: "deep.html", data: func(t testing.TB) []byte { return []byte(strings.Repeat("<div><span>", 5e5) + "deep") }, status: []Status{OK}},
		// MaxExpanded, by members that are not bombs: 20 MiB of random
		// bytes in 1 MiB members, against 8 MiB.
		{name: "big.zip", lim: Limits{MaxExpanded: 8 << 20}, data: func(t testing.TB) []byte {
			rng := rand.New(rand.NewPCG(1, 2))
			var files []string
			for i := range 20 {
				b := make([]byte, 1<<20)
				for k := range b {
					b[k] = byte(rng.Uint32())
				}
				files = append(files, fmt.Sprintf("r%d.bin", i), string(b))
			}
			return makeZip(t, files...)
		}, status: []Status{Truncated}, reason: ReasonExpansion, check: func(t *testing.T, r Result) {
			if len(r.Members) < 7 || len(r.Members) > 9 {
				t.Errorf("%d members before the limit", len(r.Members))
			}
		}},
		// The text limit, through nesting: a zip of XML members.
		{name: "text.zip", lim: Limits{MaxText: 1000}, data: func(t testing.TB) []byte {
			var files []string
			for i := range 50 {
				files = append(files, fmt.Sprintf("m%d.xml", i), "<a>"+strings.Repeat("word ", 50)+"</a>")
			}
			return makeZip(t, files...)
		}, status: anyBad, reason: ReasonText, check: func(t *testing.T, r Result) {
			if len(r.Text) > 1000 {
				t.Errorf("text %d bytes", len(r.Text))
			}
		}},
	}
}

func runHostile(t *testing.T, c hostileCase) {
	t.Helper()
	data := c.data(t)
	lim := c.lim
	lim.Timeout = hostileTimeout
	var r Result
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var m runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
		}
	}()
	begin := time.Now()
	r = Extract(context.Background(), c.name, c.ct, data, &lim)
	el := time.Since(begin)
	close(stop)
	<-sampled
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	growth := int64(peak.Load()) - int64(before.HeapInuse)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("%s: %d bytes in, %s %s in %s, heap +%d MiB peak, %d MiB allocated", c.name, len(data), r.Status, r.Reason, el.Round(time.Millisecond), growth>>20, alloc>>20)
	if el > hostileTimeout+hostileSlack {
		t.Errorf("%s: returned after %s", c.name, el)
	}
	if growth > hostileHeapBound || alloc > hostileAllocBound {
		t.Errorf("%s: heap grew %d MiB, %d MiB allocated: over %d / %d MiB", c.name, growth>>20, alloc>>20, hostileHeapBound>>20, hostileAllocBound>>20)
	}
	checkResult(t, c.name, r, lim.WithDefaults())
	if !slices.Contains(c.status, r.Status) || (c.reason != "" && r.Reason != c.reason) {
		t.Errorf("Extract(%s) = %s %q (%s), want %v %q", c.name, r.Status, r.Reason, r.Detail, c.status, c.reason)
	}
	if c.check != nil {
		c.check(t, r)
	}
}

// checkResult: what every Result must be, whatever the input.
func checkResult(t testing.TB, name string, r Result, lim Limits) {
	t.Helper()
	if !utf8.ValidString(r.Text) || len(r.Text) > lim.MaxText {
		t.Errorf("%s: text not valid UTF-8 or %d bytes over %d", name, len(r.Text), lim.MaxText)
	}
	switch r.Status {
	case OK, Unsupported:
	case Truncated, Failed:
		if r.Reason == "" {
			t.Errorf("%s: %s without a reason", name, r.Status)
		}
	default:
		t.Errorf("%s: status %q", name, r.Status)
	}
	if r.Reason == ReasonPanic {
		t.Errorf("%s: an extractor panicked: %s", name, r.Detail)
	}
	if len(r.Members) > lim.MaxMembers {
		t.Errorf("%s: %d members", name, len(r.Members))
	}
	for _, m := range r.Members {
		if !utf8.ValidString(m.Name) {
			t.Errorf("%s: member name %q not UTF-8", name, m.Name)
		}
		checkResult(t, name+"/"+m.Name, m.Result, lim)
	}
}

func TestHostile(t *testing.T) {
	for _, c := range hostileCases() {
		t.Run(c.name, func(t *testing.T) { runHostile(t, c) })
	}
}

// nameFor is a file name Detect takes for format, "" when none of the
// candidates is.
func nameFor(format string) string {
	for _, x := range []string{".pdf", ".docx", ".xlsx", ".pptx", ".odt", ".ods", ".odp", ".rtf", ".doc", ".xls", ".ppt", ".msg",
		".zip", ".tar", ".gz", ".xml", ".html", ".ics", ".vcf", ".txt", ".csv", ".json", ".eml", ".md"} {
		if Detect("f"+x, "", nil) == format {
			return "f" + x
		}
	}
	if Detect("winmail.dat", "", nil) == format {
		return "winmail.dat"
	}
	return ""
}

// testdataFiles is every file under testdata (the document engineer's
// fixtures included), for truncation here and as fuzz seeds.
func testdataFiles(t testing.TB) map[string][]byte {
	out := map[string][]byte{}
	filepath.WalkDir("testdata", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, ".sh") || strings.Contains(p, "/testdata/fuzz/") {
			return nil
		}
		if b, err := os.ReadFile(p); err == nil {
			out[p] = b
		}
		return nil
	})
	if len(out) == 0 {
		t.Fatal("no testdata files")
	}
	return out
}

// Every fixture cut at ten points, every format given garbage, an empty
// file and one over MaxInput: no panic, in time, a Result that holds.
func TestHostileEveryFormat(t *testing.T) {
	lim := Limits{Timeout: hostileTimeout}
	l := lim.WithDefaults()
	for p, data := range testdataFiles(t) {
		name := filepath.Base(p)
		format := Detect(name, "", data)
		for k := 1; k <= 10; k++ {
			cut := data[:len(data)*k/11]
			begin := time.Now()
			r := Extract(context.Background(), name, "", cut, &lim)
			if el := time.Since(begin); el > hostileTimeout+hostileSlack {
				t.Errorf("%s cut at %d: %s", p, len(cut), el)
			}
			checkResult(t, fmt.Sprintf("%s[:%d]", p, len(cut)), r, l)
			// A cut archive or wrapper is always noticed.
			if (format == "zip" || format == "gzip" || format == "tnef") && r.Status == OK && Detect(name, "", cut) == format {
				if format != "tnef" { // a TNEF stream cut between attributes is a shorter valid one
					t.Errorf("%s cut at %d: OK", p, len(cut))
				}
			}
		}
	}
	rng := rand.New(rand.NewPCG(15, 15))
	formatsSeen := 0
	for _, f := range Formats() {
		name := nameFor(f)
		if name == "" || formats[f] == nil { // nil: a test's stand-in removed
			continue
		}
		formatsSeen++
		garbage := make([]byte, 4096)
		for i := range garbage {
			garbage[i] = byte(rng.Uint32())
		}
		for _, in := range []struct {
			what string
			data []byte
			lim  Limits
		}{
			{"garbage", garbage, lim},
			{"empty", nil, lim},
			{"over MaxInput", garbage, Limits{Timeout: hostileTimeout, MaxInput: 1000}},
		} {
			r := Extract(context.Background(), name, "", in.data, &in.lim)
			checkResult(t, name+" "+in.what, r, in.lim.WithDefaults())
			if in.what == "over MaxInput" && r.Format == f && (r.Status != Failed || r.Reason != ReasonTooLarge) {
				t.Errorf("%s over MaxInput: %s %s", name, r.Status, r.Reason)
			}
		}
	}
	if formatsSeen < 7 {
		t.Errorf("only %d formats have a name Detect knows", formatsSeen)
	}
}
