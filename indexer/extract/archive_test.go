package extract

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "containers", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func extract(t testing.TB, name string, data []byte, lim *Limits) Result {
	t.Helper()
	return Extract(context.Background(), name, "", data, lim)
}

func memberNames(r Result) []string {
	var out []string
	for _, m := range r.Members {
		out = append(out, m.Name)
	}
	return out
}

// The fixtures made by the real tools (testdata/containers/make.sh): names
// listed in order, and each member's text after its name.
func TestArchiveFixtures(t *testing.T) {
	for _, tc := range []struct {
		file    string
		format  string
		members string   // names, comma-separated
		words   []string // in the text
		absent  []string
	}{
		{"sample.zip", "zip", "report.xml,page.html,meeting.ics,card.vcf,letter.docx,archive/inner.zip",
			[]string{"report.xml", "Kestrel", "Zürich", "Costs & margins", "Pelican minutes", "Lighthouse photo",
				"Osprey review, phase two", "2024-03-01 10:00", "ada@example.com", "Charles Babbage", "Grace Hopper",
				"Inventor of the compiler — and nanoseconds", "letter.docx", "archive/inner.zip", "notes.xml", "Heron inner note"},
			[]string{"secretscript", "hiddenstyle"}},
		{"sample.tar", "tar", "report.xml,page.html,meeting.ics,card.vcf", []string{"Kestrel", "Pelican", "Osprey", "Hopper"}, nil},
		{"sample.tar.gz", "gzip", "", []string{"report.xml", "Kestrel", "card.vcf", "Grace Hopper"}, nil},
		{"report.xml.gz", "gzip", "report.xml", []string{"report.xml", "Quarterly Kestrel report"}, nil},
		{"stream.zip", "zip", "notes.xml", []string{"notes.xml", "Heron inner note"}, nil},
	} {
		t.Run(tc.file, func(t *testing.T) {
			r := extract(t, tc.file, fixture(t, tc.file), nil)
			if r.Format != tc.format || r.Status != OK {
				t.Fatalf("Extract(%s) = %s %s %s %s, want %s ok", tc.file, r.Format, r.Status, r.Reason, r.Detail, tc.format)
			}
			if got := strings.Join(memberNames(r), ","); got != tc.members {
				t.Errorf("members %q, want %q", got, tc.members)
			}
			for _, w := range tc.words {
				if !strings.Contains(r.Text, w) {
					t.Errorf("text lacks %q:\n%s", w, r.Text)
				}
			}
			for _, w := range tc.absent {
				if strings.Contains(r.Text, w) {
					t.Errorf("text has %q", w)
				}
			}
		})
	}
	// The Office file in the zip is read by its extractor, when there is
	// one (the document formats are another file's).
	if formats["docx"] != nil {
		r := extract(t, "sample.zip", fixture(t, "sample.zip"), nil)
		if m := r.Members[4]; m.Name != "letter.docx" || m.Result.Format != "docx" || m.Result.Status != OK || m.Result.Text == "" ||
			!strings.Contains(r.Text, "letter.docx "+m.Result.Text) {
			t.Errorf("letter.docx in the zip: %s %s %s %.60q", m.Result.Format, m.Result.Status, m.Result.Detail, m.Result.Text)
		}
	}
	// The text limit reached at a member's name: listed, flagged.
	r0 := extract(t, "sample.zip", fixture(t, "sample.zip"), &Limits{MaxText: 5})
	if r0.Status != Truncated || r0.Reason != ReasonText || len(r0.Members) != 1 || r0.Members[0].Result.Reason != ReasonText {
		t.Errorf("text limit at a name: %s %s %+v", r0.Status, r0.Reason, r0.Members)
	}
	// The .tar.gz: one member (no name in its header), whose Result is the
	// tar with its own members.
	r := extract(t, "sample.tar.gz", fixture(t, "sample.tar.gz"), nil)
	if len(r.Members) != 1 || r.Members[0].Result.Format != "tar" || len(r.Members[0].Result.Members) != 4 {
		t.Fatalf("tar.gz members: %+v", r.Members)
	}
	if m := r.Members[0].Result.Members[1]; m.Name != "page.html" || m.Size != 323 || m.Data != nil {
		t.Fatalf("tar member: %q %d data %v", m.Name, m.Size, m.Data != nil)
	}
}

// zip -P: both members listed by name, flagged encrypted; the archive is
// read (the names are its text).
func TestZipEncryptedMembers(t *testing.T) {
	r := extract(t, "encrypted.zip", fixture(t, "encrypted.zip"), nil)
	if r.Status != OK || r.Text != "report.xml page.html" {
		t.Fatalf("status %s text %q", r.Status, r.Text)
	}
	for _, m := range r.Members {
		if m.Result.Status != Failed || m.Result.Reason != ReasonEncrypted {
			t.Errorf("member %s: %s %s", m.Name, m.Result.Status, m.Result.Reason)
		}
	}
}

// makeZip writes a zip with archive/zip: name → content, deflated.
func makeZip(t testing.TB, files ...string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	for i := 0; i+1 < len(files); i += 2 {
		f, err := w.Create(files[i])
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte(files[i+1]))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestZipMemberLimitKeepsTheNamesBefore(t *testing.T) {
	var files []string
	for i := range 20 {
		files = append(files, fmt.Sprintf("f%02d.bin", i), "x")
	}
	r := extract(t, "a.zip", makeZip(t, files...), &Limits{MaxMembers: 5})
	if r.Status != Truncated || r.Reason != ReasonMembers {
		t.Fatalf("got %s %s", r.Status, r.Reason)
	}
	if r.Text != "f00.bin f01.bin f02.bin f03.bin f04.bin" || len(r.Members) != 5 {
		t.Fatalf("text %q members %d", r.Text, len(r.Members))
	}
}

// Nested zips: the text goes as deep as MaxDepth allows, then depth-limit.
func TestZipNestingStopsAtDepth(t *testing.T) {
	z := makeZip(t, "core.xml", "<a>bottom</a>")
	for i := 9; i >= 0; i-- {
		z = makeZip(t, fmt.Sprintf("level%d.zip", i), string(z))
	}
	r := extract(t, "top.zip", z, &Limits{MaxDepth: 3})
	if r.Status != Truncated || r.Reason != ReasonDepth {
		t.Fatalf("got %s %s %q", r.Status, r.Reason, r.Text)
	}
	if want := "level0.zip level1.zip level2.zip level3.zip"; r.Text != want {
		t.Fatalf("text %q, want %q", r.Text, want)
	}
}

// A CP437 name (no UTF-8 flag) is decoded, not replaced by U+FFFD; a path
// with .. stays a name.
func TestZipNames(t *testing.T) {
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	for _, h := range []*zip.FileHeader{
		{Name: "Bericht f\x81r M\x84rz.txt", NonUTF8: true, Method: zip.Deflate},
		{Name: "../../etc/passwd", Method: zip.Store},
	} {
		f, err := w.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte("x"))
	}
	w.Close()
	r := extract(t, "n.zip", b.Bytes(), nil)
	if got := strings.Join(memberNames(r), "|"); got != "Bericht für März.txt|../../etc/passwd" {
		t.Fatalf("names %q", got)
	}
}

// A zip cut short loses its central directory: the members before the
// cut are found from their local headers, flagged corrupt.
func TestZipTruncatedFindsLocalHeaders(t *testing.T) {
	data := fixture(t, "sample.zip")
	cut := bytes.Index(data, []byte("archive/inner.zip")) // the last local header's name
	r := extract(t, "sample.zip", data[:cut], nil)
	if r.Status != Failed || r.Reason != ReasonCorrupt || !strings.Contains(r.Detail, "no central directory") {
		t.Fatalf("got %s %s %s", r.Status, r.Reason, r.Detail)
	}
	if got := strings.Join(memberNames(r), ","); got != "report.xml,page.html,meeting.ics,card.vcf,letter.docx" {
		t.Fatalf("members %q", got)
	}
	if !strings.Contains(r.Text, "Kestrel") {
		t.Fatalf("text %q", r.Text)
	}
	// The same for a stream zip (data descriptors): the deflate stream says
	// where each member ends.
	data = fixture(t, "stream.zip")
	r = extract(t, "stream.zip", data[:bytes.LastIndex(data, []byte("PK\x01\x02"))], nil)
	if strings.Join(memberNames(r), ",") != "notes.xml" || !strings.Contains(r.Text, "Heron") {
		t.Fatalf("stream members %v text %q", memberNames(r), r.Text)
	}
}

// A bad CRC marks the member corrupt and extracts nothing from it.
func TestZipCRCMismatch(t *testing.T) {
	data := makeZip(t, "a.xml", "<a>alpha</a>", "b.xml", "<b>beta</b>")
	// Flip a byte of the first member's CRC in the central directory.
	p := bytes.Index(data, []byte(zipCentralSig))
	data[p+16] ^= 0xff
	r := extract(t, "c.zip", data, nil)
	if m := r.Members[0].Result; m.Status != Failed || m.Reason != ReasonCorrupt || !strings.Contains(m.Detail, "CRC") {
		t.Fatalf("member 0: %+v", m)
	}
	if strings.Contains(r.Text, "alpha") || !strings.Contains(r.Text, "beta") {
		t.Fatalf("text %q", r.Text)
	}
}

// bombZip is a zip of one deflated member of n zero bytes, written by
// compressing a stream (never n bytes in memory); lie sets the declared
// uncompressed size to 1000 so that only the streaming check can stop it.
func bombZip(t testing.TB, n int64, lie bool) []byte {
	t.Helper()
	comp := zeroDeflate(n)
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	h := &zip.FileHeader{Name: "zeros.bin", Method: zip.Deflate, UncompressedSize64: uint64(n), CompressedSize64: uint64(comp.Len())}
	h.CRC32 = zeroCRC(n)
	if lie {
		h.UncompressedSize64 = 1000
	}
	f, err := w.CreateRaw(h)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(comp.Bytes())
	w.Close()
	return b.Bytes()
}

func TestZipBomb(t *testing.T) {
	for _, lie := range []bool{false, true} {
		r := extract(t, "bomb.zip", bombZip(t, 1<<30, lie), nil)
		if r.Status != Truncated || r.Reason != ReasonExpansion || r.Members[0].Result.Reason != ReasonExpansion {
			t.Fatalf("lie=%v: %s %s, member %+v", lie, r.Status, r.Reason, r.Members[0].Result)
		}
	}
}

func TestGzipAndTarLimits(t *testing.T) {
	// A tar declaring a 100 GiB member: listed, not read.
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	tw.WriteHeader(&tar.Header{Name: "huge.iso", Size: 100 << 30, Mode: 0o644, Typeflag: tar.TypeReg})
	tw.Write(make([]byte, 4096))
	r := extract(t, "h.tar", b.Bytes(), nil)
	// Skipping it runs into the end of the file: the tar is corrupt, the
	// member flagged too large.
	if r.Status != Failed || r.Reason != ReasonCorrupt || len(r.Members) != 1 || r.Members[0].Size != 100<<30 || r.Members[0].Result.Reason != ReasonTooLarge {
		t.Fatalf("tar: %s %s %+v", r.Status, r.Reason, r.Members)
	}
	// A gzip bomb.
	b.Reset()
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	zero := make([]byte, 1<<20)
	for range 1024 {
		zw.Write(zero)
	}
	zw.Close()
	r = extract(t, "z.gz", b.Bytes(), nil)
	if r.Status != Truncated || r.Reason != ReasonExpansion {
		t.Fatalf("gzip bomb: %s %s %s", r.Status, r.Reason, r.Detail)
	}
	// A gzip cut short: corrupt.
	gz := fixture(t, "report.xml.gz")
	r = extract(t, "report.xml.gz", gz[:len(gz)/2], nil)
	if r.Status == OK || r.Reason != ReasonCorrupt {
		t.Fatalf("truncated gzip: %s %s", r.Status, r.Reason)
	}
}

// A central directory claiming ten million entries: neither Detect nor
// the extractor believes it; MaxMembers bounds what is read.
func TestZipClaimingMillionsOfEntries(t *testing.T) {
	data := makeZip(t, "a.xml", "<a>alpha</a>")
	data = claimEntries(data, 10_000_000)
	r := extract(t, "a.zip", data, nil)
	if r.Format != "zip" || r.Status == OK || !strings.Contains(r.Text, "alpha") {
		t.Fatalf("got %s %s %s %q", r.Format, r.Status, r.Reason, r.Text)
	}
}

// claimEntries rewrites a zip's end record to claim n entries, through a
// ZIP64 end record and locator.
func claimEntries(data []byte, n uint64) []byte {
	end := bytes.LastIndex(data, []byte(zipEndSig))
	dirSize := binary.LittleEndian.Uint32(data[end+12:])
	dirOff := binary.LittleEndian.Uint32(data[end+16:])
	out := append([]byte(nil), data[:end]...)
	z64 := uint64(len(out))
	var r [56]byte
	copy(r[:], zip64EndSig)
	binary.LittleEndian.PutUint64(r[4:], 44)
	binary.LittleEndian.PutUint64(r[24:], n)
	binary.LittleEndian.PutUint64(r[32:], n)
	binary.LittleEndian.PutUint64(r[40:], uint64(dirSize))
	binary.LittleEndian.PutUint64(r[48:], uint64(dirOff))
	out = append(out, r[:]...)
	var l [20]byte
	copy(l[:], zip64LocSig)
	binary.LittleEndian.PutUint64(l[8:], z64)
	binary.LittleEndian.PutUint32(l[16:], 1)
	out = append(out, l[:]...)
	e := append([]byte(nil), data[end:]...)
	binary.LittleEndian.PutUint16(e[8:], 0xffff)
	binary.LittleEndian.PutUint16(e[10:], 0xffff)
	return append(out, e...)
}

var zeroDeflates sync.Map // int64 → *bytes.Buffer: compressing 1 GiB takes seconds

// zeroDeflate is a raw deflate stream of n zero bytes.
func zeroDeflate(n int64) *bytes.Buffer {
	if b, ok := zeroDeflates.Load(n); ok {
		return b.(*bytes.Buffer)
	}
	var comp bytes.Buffer
	fw, _ := flate.NewWriter(&comp, flate.BestCompression)
	zero := make([]byte, 1<<20)
	for left := n; left > 0; left -= int64(len(zero)) {
		fw.Write(zero[:min(left, int64(len(zero)))])
	}
	fw.Close()
	zeroDeflates.Store(n, &comp)
	return &comp
}

func zeroCRC(n int64) uint32 {
	zero := make([]byte, 1<<20)
	var c uint32
	for left := n; left > 0; left -= int64(len(zero)) {
		c = crc32.Update(c, crc32.IEEETable, zero[:min(left, int64(len(zero)))])
	}
	return c
}

// A ZIP64 locator in a file shorter than a ZIP64 end record: Detect runs
// the end-record reader outside any recover, so it must not index past
// the end (it did: the bound wrapped below zero).
func TestZipEndShortZip64(t *testing.T) {
	var b []byte
	b = append(b, zip64LocSig...)
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.LittleEndian.AppendUint64(b, 1<<40) // the ZIP64 end record's offset
	b = binary.LittleEndian.AppendUint32(b, 1)
	e := make([]byte, zipEndLen)
	copy(e, zipEndSig)
	binary.LittleEndian.PutUint16(e[10:], 0xffff)
	b = append(b, e...)
	if f := Detect("x.zip", "", append([]byte("PK\x05\x06"), b...)); f != "zip" {
		t.Fatalf("Detect = %q", f)
	}
	zipEnd(b) // no panic
	r := extract(t, "x.zip", b, nil)
	if r.Status != Failed {
		t.Fatalf("got %s %s", r.Status, r.Reason)
	}
}
