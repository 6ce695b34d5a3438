package extract

import (
	"archive/zip"
	"bytes"
	"compress/zlib"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/draw"
	"image/gif"
	_ "image/jpeg"
	"image/png"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode"
)

// The OCR extra against Debian's tesseract and poppler, on images and a
// scanned PDF made from known text (scripts/make-ocr-fixtures.sh). Tests
// that need the tools skip without them, except under CI=true, where
// .ci/run installs them and their absence fails.

func needOCRTools(t testing.TB) {
	t.Helper()
	for _, tool := range []string{"tesseract", "pdftoppm", "pdfinfo"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s not installed (apt-get install tesseract-ocr tesseract-ocr-eng poppler-utils; .ci/run does)", tool)
			}
			t.Skipf("%s not installed (apt-get install tesseract-ocr tesseract-ocr-eng poppler-utils)", tool)
		}
	}
}

func ocrFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "ocr", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ocrWords counts the words of s, lowercased (letters and digits).
func ocrWords(s string) map[string]int {
	m := map[string]int{}
	for _, w := range strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		m[w]++
	}
	return m
}

// ocrRecall is the share of ref's words (with their counts) found in got.
func ocrRecall(ref, got string) (float64, []string) {
	r, g := ocrWords(ref), ocrWords(got)
	total, hit := 0, 0
	var missing []string
	for w, n := range r {
		total += n
		hit += min(n, g[w])
		if g[w] < n {
			missing = append(missing, w)
		}
	}
	return float64(hit) / float64(max(1, total)), missing
}

var ocrOn = Limits{OCR: true, Timeout: 30 * time.Second}

// decodePNG reads a fixture as an image, to re-encode it in the formats
// with no checked-in fixture (GIF, BMP).
func decodePNG(t testing.TB, b []byte) image.Image {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func encodeGIF(t testing.TB, img image.Image) []byte {
	t.Helper()
	pal := make(color.Palette, 256)
	for i := range pal {
		pal[i] = color.Gray{uint8(i)}
	}
	p := image.NewPaletted(img.Bounds(), pal)
	draw.Draw(p, p.Bounds(), img, img.Bounds().Min, draw.Src)
	var buf bytes.Buffer
	if err := gif.Encode(&buf, p, nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// encodeBMP writes a 24-bit bottom-up BMP (BITMAPINFOHEADER), as Windows
// Paint does.
func encodeBMP(img image.Image) []byte {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	stride := (3*w + 3) &^ 3
	out := make([]byte, 54+stride*h)
	le := binary.LittleEndian
	copy(out, "BM")
	le.PutUint32(out[2:], uint32(len(out)))
	le.PutUint32(out[10:], 54)
	le.PutUint32(out[14:], 40)
	le.PutUint32(out[18:], uint32(w))
	le.PutUint32(out[22:], uint32(h))
	le.PutUint16(out[26:], 1)
	le.PutUint16(out[28:], 24)
	le.PutUint32(out[34:], uint32(stride*h))
	for y := 0; y < h; y++ {
		row := out[54+(h-1-y)*stride:]
		for x := 0; x < w; x++ {
			r, g, bl, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
			row[3*x], row[3*x+1], row[3*x+2] = byte(bl>>8), byte(g>>8), byte(r>>8)
		}
	}
	return out
}

func TestOCRImages(t *testing.T) {
	needOCRTools(t)
	want := string(ocrFixture(t, "notice.txt"))
	pngData := ocrFixture(t, "notice.png")
	img := decodePNG(t, pngData)
	for _, c := range []struct {
		name, ct, format string
		data             []byte
	}{
		{"notice.png", "image/png", "png", pngData},
		{"notice.jpeg", "image/jpeg", "jpeg", ocrFixture(t, "notice.jpeg")},
		{"notice.tiff", "image/tiff", "tiff", ocrFixture(t, "notice.tiff")},
		{"notice.gif", "image/gif", "gif", encodeGIF(t, img)},
		{"notice.bmp", "image/bmp", "bmp", encodeBMP(img)},
		{"notice.webp", "image/webp", "webp", ocrFixture(t, "notice.webp")},
		// Labelled wrongly, as senders do: the signature decides.
		{"scan0001.bin", "application/octet-stream", "png", pngData},
		{"photo.jpg", "image/jpeg", "tiff", ocrFixture(t, "notice.tiff")},
	} {
		begin := time.Now()
		r := Extract(context.Background(), c.name, c.ct, c.data, &ocrOn)
		el := time.Since(begin)
		rec, missing := ocrRecall(want, r.Text)
		t.Logf("%s: %s %s in %s, recall %.3f", c.name, r.Format, r.Status, el.Round(time.Millisecond), rec)
		if r.Format != c.format || r.Status != OK {
			t.Errorf("Extract(%q, %q) = %s %s %q (%s), want %s ok", c.name, c.ct, r.Format, r.Status, r.Reason, r.Detail, c.format)
		}
		if rec < 0.90 {
			t.Errorf("%s: word recall %.3f < 0.90, missing %v; text %q", c.name, rec, missing, r.Text)
		}
	}
}

// A scanned PDF: pages that are images, no text layer. The PDF extractor
// finds nothing; with OCR on the pages are rasterized and read, in order.
func TestOCRScannedPDF(t *testing.T) {
	needOCRTools(t)
	data := ocrFixture(t, "scan.pdf")
	want := string(ocrFixture(t, "scan.txt"))
	off := Extract(context.Background(), "scan.pdf", "application/pdf", data, &Limits{})
	if off.Format != "pdf" || off.Status != OK || letters(off.Text) > 0 {
		t.Fatalf("OCR off: %s %s %q: want pdf, ok, no text (the fixture has no text layer)", off.Format, off.Status, off.Text)
	}
	r := Extract(context.Background(), "scan.pdf", "application/pdf", data, &ocrOn)
	rec, missing := ocrRecall(want, r.Text)
	t.Logf("scan.pdf: %s %s, recall %.3f", r.Format, r.Status, rec)
	if r.Format != "pdf" || r.Status != OK || rec < 0.90 {
		t.Fatalf("OCR on: %s %s %q (%s), recall %.3f, missing %v; text %q", r.Format, r.Status, r.Reason, r.Detail, rec, missing, r.Text)
	}
	if a, b := strings.Index(r.Text, "Scanned contract"), strings.Index(r.Text, "Second page"); a < 0 || b < a {
		t.Errorf("pages out of order: %q", r.Text)
	}
	// Over the page limit: the first pages only, flagged.
	many := imagePagesPDF(t, noticeFirstLine(t), ocrMaxPages+1)
	if off := Extract(context.Background(), "many.pdf", "", many, nil); off.Status != OK || off.Text != "" {
		t.Fatalf("the %d-page scan without OCR: %s %s %q", ocrMaxPages+1, off.Status, off.Reason, off.Text)
	}
	r = Extract(context.Background(), "many.pdf", "", many, &Limits{OCR: true, Timeout: 60 * time.Second})
	if n := strings.Count(r.Text, "Northwind"); r.Status != Truncated || r.Reason != ReasonOCRPages || n != ocrMaxPages {
		t.Errorf("%d pages: %s %q (%s), %d pages read, want truncated %s after %d pages; text %q",
			ocrMaxPages+1, r.Status, r.Reason, r.Detail, n, ReasonOCRPages, ocrMaxPages, r.Text)
	}
}

// imagePagesPDF is a PDF of n pages, each showing img (grey, 200 dpi) and
// nothing else: one image XObject, Flate-compressed, that every page
// draws; no text layer.
func imagePagesPDF(t *testing.T, img image.Image, n int) []byte {
	t.Helper()
	b := img.Bounds()
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		row := make([]byte, b.Dx())
		for x := range row {
			row[x] = color.GrayModel.Convert(img.At(b.Min.X+x, y)).(color.Gray).Y
		}
		zw.Write(row)
	}
	zw.Close()
	wpt, hpt := float64(b.Dx())*72/200, float64(b.Dy())*72/200
	var objs []string
	kids := make([]string, n)
	for i := range kids {
		kids[i] = fmt.Sprintf("%d 0 R", 4+2*i)
	}
	objs = append(objs, "<< /Type /Catalog /Pages 2 0 R >>",
		fmt.Sprintf("<< /Type /Pages /Kids [%s] /Count %d >>", strings.Join(kids, " "), n),
		fmt.Sprintf("<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray /BitsPerComponent 8 /Filter /FlateDecode /Length %d >>\nstream\n%s\nendstream",
			b.Dx(), b.Dy(), z.Len(), z.String()))
	content := fmt.Sprintf("q %g 0 0 %g 0 0 cm /Im0 Do Q", wpt, hpt)
	for i := 0; i < n; i++ {
		objs = append(objs,
			fmt.Sprintf("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %g %g] /Resources << /XObject << /Im0 3 0 R >> >> /Contents %d 0 R >>", wpt, hpt, 5+2*i),
			fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(content), content))
	}
	var out bytes.Buffer
	out.WriteString("%PDF-1.4\n")
	offs := make([]int, len(objs))
	for i, o := range objs {
		offs[i] = out.Len()
		fmt.Fprintf(&out, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	x := out.Len()
	fmt.Fprintf(&out, "xref\n0 %d\n0000000000 65535 f \n", len(objs)+1)
	for _, o := range offs {
		fmt.Fprintf(&out, "%010d 00000 n \n", o)
	}
	fmt.Fprintf(&out, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objs)+1, x)
	return out.Bytes()
}

// firstLine of notice.png: its first line of text, 1200 x 80 pixels.
func noticeFirstLine(t *testing.T) image.Image {
	img := decodePNG(t, ocrFixture(t, "notice.png"))
	return img.(interface {
		SubImage(image.Rectangle) image.Image
	}).SubImage(image.Rect(0, 30, 1200, 110))
}

// A long scan cut by the deadline keeps the pages read before it:
// Truncated "timeout", returned before Extract stops waiting.
func TestOCRDeadlineKeepsPagesRead(t *testing.T) {
	needOCRTools(t)
	// 20 pages of four lines: ~0.3 s each on a quiet core, so 6 s in all.
	many := imagePagesPDF(t, decodePNG(t, ocrFixture(t, "notice.png")), ocrMaxPages)
	lim := Limits{OCR: true, Timeout: 4 * time.Second}
	r := Extract(context.Background(), "many.pdf", "", many, &lim)
	if n := strings.Count(r.Text, "Northwind"); r.Status != Truncated || r.Reason != ReasonTimeout || n < 1 || n >= ocrMaxPages {
		t.Errorf("%d pages in %s: %s %q (%s), %d pages read; want truncated timeout with the first pages", ocrMaxPages, lim.Timeout, r.Status, r.Reason, r.Detail, n)
	}
}

// A PDF with a text layer is not OCRed: the result is the extractor's,
// OCR on or off.
func TestOCRLeavesTextPDFs(t *testing.T) {
	needOCRTools(t)
	for _, name := range []string{"letter.pdf", "slides.pdf"} {
		data, err := os.ReadFile(filepath.Join("testdata", "docs", name))
		if err != nil {
			t.Fatal(err)
		}
		off := Extract(context.Background(), name, "", data, &Limits{})
		on := Extract(context.Background(), name, "", data, &ocrOn)
		if fmt.Sprint(off) != fmt.Sprint(on) {
			t.Errorf("%s: OCR on changed the result: %s %s %d bytes -> %s %s %d bytes", name, off.Status, off.Reason, len(off.Text), on.Status, on.Reason, len(on.Text))
		}
	}
	// Nor is one poppler cannot read either: the extractor's failure stands.
	for _, data := range [][]byte{[]byte("%PDF-1.4\nnot a pdf after all\n"), ocrFixture(t, "scan.pdf")[:2000]} {
		off := Extract(context.Background(), "bad.pdf", "", data, &Limits{})
		on := Extract(context.Background(), "bad.pdf", "", data, &ocrOn)
		if off.Status != Failed || fmt.Sprint(off) != fmt.Sprint(on) {
			t.Errorf("%d-byte broken PDF: OCR off %s %s %q, on %s %s %q", len(data), off.Status, off.Reason, off.Detail, on.Status, on.Reason, on.Detail)
		}
	}
}

// OCR off (the default): images are Unsupported with their format named,
// and no child process is started.
func TestOCROffIsUnsupported(t *testing.T) {
	img := decodePNG(t, ocrFixture(t, "notice.png"))
	started := ocrStarted.Load()
	for _, c := range []struct {
		name, format string
		data         []byte
	}{
		{"a.png", "png", ocrFixture(t, "notice.png")},
		{"a.jpeg", "jpeg", ocrFixture(t, "notice.jpeg")},
		{"a.tiff", "tiff", ocrFixture(t, "notice.tiff")},
		{"a.gif", "gif", encodeGIF(t, img)},
		{"a.bmp", "bmp", encodeBMP(img)},
		{"a.webp", "webp", ocrFixture(t, "notice.webp")},
		{"huge.png", "png", bombPNG(100000, 100000)},
	} {
		for _, lim := range []*Limits{nil, {}, {MaxInput: 10}} {
			r := Extract(context.Background(), c.name, "", c.data, lim)
			if r.Format != c.format || r.Status != Unsupported || r.Text != "" || r.Reason != "" {
				t.Errorf("Extract(%q, OCR off, %+v) = %s %s %q, want %s unsupported", c.name, lim, r.Format, r.Status, r.Reason, c.format)
			}
		}
	}
	if n := ocrStarted.Load() - started; n != 0 {
		t.Errorf("%d child processes started with OCR off", n)
	}
}

// pngChunk is one PNG chunk with its CRC.
func pngChunk(typ string, data []byte) []byte {
	out := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	out = append(out, typ...)
	out = append(out, data...)
	return binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(append([]byte(typ), data...)))
}

// bombPNG is a PNG header claiming w x h grey pixels (a few hundred bytes:
// what a decompression bomb looks like before it is inflated).
func bombPNG(w, h uint32) []byte {
	ihdr := binary.BigEndian.AppendUint32(nil, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, 8, 0, 0, 0, 0)
	out := append([]byte("\x89PNG\r\n\x1a\n"), pngChunk("IHDR", ihdr)...)
	out = append(out, pngChunk("IDAT", []byte{0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01})...)
	return append(out, pngChunk("IEND", nil)...)
}

func jpegSOF(w, h uint16) []byte {
	b := []byte{0xff, 0xd8, 0xff, 0xe0, 0, 16, 'J', 'F', 'I', 'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0}
	b = append(b, 0xff, 0xc0, 0, 11, 8)
	b = binary.BigEndian.AppendUint16(b, h)
	b = binary.BigEndian.AppendUint16(b, w)
	return append(b, 1, 1, 0x11, 0, 0xff, 0xd9)
}

// tiffIFDs is a little-endian TIFF whose IFDs have the given sizes (LONG).
func tiffIFDs(sizes ...[2]uint32) []byte {
	le := binary.LittleEndian
	b := []byte("II*\x00\x08\x00\x00\x00")
	for i, s := range sizes {
		b = le.AppendUint16(b, 2)
		for k, v := range []uint32{s[0], s[1]} {
			b = le.AppendUint16(b, uint16(256+k))
			b = le.AppendUint16(b, 4)
			b = le.AppendUint32(b, 1)
			b = le.AppendUint32(b, v)
		}
		next := uint32(0)
		if i < len(sizes)-1 {
			next = uint32(len(b) + 4)
		}
		b = le.AppendUint32(b, next)
	}
	return b
}

func gifFrames(sw, sh uint16, frames ...[2]uint16) []byte {
	le := binary.LittleEndian
	b := []byte("GIF89a")
	b = le.AppendUint16(b, sw)
	b = le.AppendUint16(b, sh)
	b = append(b, 0, 0, 0)
	for _, f := range frames {
		b = append(b, 0x2c, 0, 0, 0, 0)
		b = le.AppendUint16(b, f[0])
		b = le.AppendUint16(b, f[1])
		b = append(b, 0, 2, 2, 0x4c, 0x01, 0)
	}
	return append(b, 0x3b)
}

func bmpHeader(w, h int32) []byte {
	b := make([]byte, 54)
	le := binary.LittleEndian
	copy(b, "BM")
	le.PutUint32(b[14:], 40)
	le.PutUint32(b[18:], uint32(w))
	le.PutUint32(b[22:], uint32(h))
	return b
}

func webpVP8L(w, h uint32) []byte {
	le := binary.LittleEndian
	c := []byte("VP8L")
	c = le.AppendUint32(c, 5)
	c = append(c, 0x2f)
	c = le.AppendUint32(c, (w-1)|(h-1)<<14)
	c = append(c, make([]byte, 16)...)
	b := append([]byte("RIFF"), le.AppendUint32(nil, uint32(4+len(c)))...)
	return append(append(b, "WEBP"...), c...)
}

func webpVP8X(w, h uint32) []byte {
	le := binary.LittleEndian
	c := []byte("VP8X")
	c = le.AppendUint32(c, 10)
	c = append(c, 0, 0, 0, 0)
	c = append(c, byte(w-1), byte((w-1)>>8), byte((w-1)>>16), byte(h-1), byte((h-1)>>8), byte((h-1)>>16))
	c = append(c, make([]byte, 16)...)
	b := append([]byte("RIFF"), le.AppendUint32(nil, uint32(4+len(c)))...)
	return append(append(b, "WEBP"...), c...)
}

func webpVP8(w, h uint16) []byte {
	le := binary.LittleEndian
	c := []byte("VP8 ")
	c = le.AppendUint32(c, 10)
	c = append(c, 0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a)
	c = le.AppendUint16(c, w)
	c = le.AppendUint16(c, h)
	c = append(c, make([]byte, 16)...)
	b := append([]byte("RIFF"), le.AppendUint32(nil, uint32(4+len(c)))...)
	return append(append(b, "WEBP"...), c...)
}

// imageSize on headers of known sizes, the bombs among them; and against
// Go's own decoders (image.DecodeConfig) on real encoded images.
func TestImageSize(t *testing.T) {
	for _, c := range []struct {
		what   string
		data   []byte
		w, h   int64
		frames int
		pixels int64
		bad    bool // header refused (corrupt)
		big    bool // over ocrMaxPixels or ocrMaxPages: refused too-large
	}{
		{what: "png 100k x 100k", data: bombPNG(100000, 100000), w: 100000, h: 100000, frames: 1, pixels: 1e10, big: true},
		{what: "png 4G x 4G", data: bombPNG(1<<32-1, 1<<32-1), w: 1<<32 - 1, h: 1<<32 - 1, frames: 1, pixels: 1<<62 - 1, big: true},
		{what: "png 640x480", data: bombPNG(640, 480), w: 640, h: 480, frames: 1, pixels: 640 * 480},
		{what: "png 0x10", data: bombPNG(0, 10), bad: true},
		{what: "png no IHDR", data: []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIDAT"), bad: true},
		{what: "jpeg 65535^2", data: jpegSOF(65535, 65535), w: 65535, h: 65535, frames: 1, pixels: 65535 * 65535, big: true},
		{what: "jpeg 1200x800", data: jpegSOF(1200, 800), w: 1200, h: 800, frames: 1, pixels: 960000},
		{what: "jpeg DNL height", data: jpegSOF(1200, 0), bad: true},
		{what: "jpeg no SOF", data: []byte{0xff, 0xd8, 0xff, 0xda, 0, 2, 0xff, 0xd9}, bad: true},
		{what: "tiff 2 pages", data: tiffIFDs([2]uint32{1000, 2000}, [2]uint32{3000, 1000}), w: 3000, h: 1000, frames: 2, pixels: 5e6},
		{what: "tiff huge page", data: tiffIFDs([2]uint32{10, 10}, [2]uint32{1 << 31, 1 << 31}), w: 1 << 31, h: 1 << 31, frames: 2, pixels: 1<<62 - 1 + 100, big: true},
		{what: "tiff 30 pages", data: tiffIFDs(make([][2]uint32, 30)...), bad: true},
		{what: "tiff IFD loop", data: append([]byte("II*\x00\x08\x00\x00\x00"), 0, 0, 8, 0, 0, 0), bad: true},
		{what: "gif 2 frames", data: gifFrames(100, 100, [2]uint16{100, 100}, [2]uint16{50, 40}), w: 100, h: 100, frames: 2, pixels: 12000},
		{what: "gif frames summed", data: gifFrames(10, 10, [2]uint16{6000, 6000}, [2]uint16{6000, 6000}), w: 6000, h: 6000, frames: 2, pixels: 72e6, big: true},
		{what: "bmp 100k^2", data: bmpHeader(100000, 100000), w: 100000, h: 100000, frames: 1, pixels: 1e10, big: true},
		{what: "bmp top-down", data: bmpHeader(300, -200), w: 300, h: 200, frames: 1, pixels: 60000},
		{what: "bmp negative width", data: bmpHeader(-300, 200), bad: true},
		{what: "webp VP8L", data: webpVP8L(640, 480), w: 640, h: 480, frames: 1, pixels: 640 * 480},
		{what: "webp VP8X 16M^2", data: webpVP8X(1<<24, 1<<24), w: 1 << 24, h: 1 << 24, frames: 1, pixels: 1 << 48, big: true},
		{what: "webp VP8", data: webpVP8(1024, 768), w: 1024, h: 768, frames: 1, pixels: 1024 * 768},
	} {
		format := imageMagic(c.data)
		d, err := imageSize(format, c.data)
		if c.what == "tiff 30 pages" { // sizes 0: refused for them, before the page count
			if err == nil {
				t.Errorf("%s: accepted", c.what)
			}
			continue
		}
		if c.bad {
			if err == nil {
				t.Errorf("imageSize(%s) = %+v, want an error", c.what, d)
			}
			continue
		}
		if c.what == "tiff huge page" {
			c.pixels = d.Pixels // saturated: only its being over the limit matters
		}
		if err != nil || d.Width != c.w || d.Height != c.h || d.Frames != c.frames || d.Pixels != c.pixels {
			t.Errorf("imageSize(%s) = %+v %v, want %dx%d %d frames %d pixels", c.what, d, err, c.w, c.h, c.frames, c.pixels)
		}
		if err := d.check(); (err != nil) != c.big {
			t.Errorf("check(%s) = %v, want refused %v", c.what, err, c.big)
		}
	}
	// TIFF pages over ocrMaxPages, each small.
	pages := make([][2]uint32, ocrMaxPages+1)
	for i := range pages {
		pages[i] = [2]uint32{100, 100}
	}
	if d, err := imageSize("tiff", tiffIFDs(pages...)); err != nil || d.Frames != ocrMaxPages+1 || d.check() == nil {
		t.Errorf("tiff of %d pages: %+v %v, check %v", len(pages), d, err, d.check())
	}

	// Differential, against Go's decoders: random sizes, real encoders.
	rng := rand.New(rand.NewPCG(15, 3))
	for range 20 {
		w, h := 1+rng.IntN(1500), 1+rng.IntN(1500)
		img := image.NewGray(image.Rect(0, 0, w, h))
		var pb bytes.Buffer
		if err := png.Encode(&pb, img); err != nil {
			t.Fatal(err)
		}
		for _, data := range [][]byte{pb.Bytes(), encodeGIF(t, img), encodeBMP(img)} {
			format := imageMagic(data)
			d, err := imageSize(format, data)
			if err != nil || d.Width != int64(w) || d.Height != int64(h) {
				t.Errorf("imageSize(%s %dx%d) = %+v %v", format, w, h, d, err)
			}
			if format != "bmp" {
				cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
				if err != nil || cfg.Width != w || cfg.Height != h {
					t.Errorf("DecodeConfig(%s %dx%d) = %+v %v", format, w, h, cfg, err)
				}
			}
		}
	}
	for _, name := range []string{"notice.png", "notice.jpeg", "notice.tiff", "notice.webp"} {
		data := ocrFixture(t, name)
		d, err := imageSize(imageMagic(data), data)
		// pdftoppm at 200 dpi of a 432 x 180 pt page: 1200 x 500.
		if err != nil || d.Width != 1200 || d.Height != 500 || d.Frames != 1 {
			t.Errorf("imageSize(%s) = %+v %v, want 1200x500", name, d, err)
		}
	}
}

// With OCR on, an image over the pixel limit is refused "too-large" and a
// bad header "corrupt", before any child process; never given to
// tesseract. Needs no tesseract.
func TestOCRRefusesBombsBeforeTesseract(t *testing.T) {
	started := ocrStarted.Load()
	for _, c := range []struct {
		name   string
		data   []byte
		reason string
	}{
		{"bomb.png", bombPNG(100000, 100000), ReasonTooLarge},
		{"bomb.jpg", jpegSOF(65535, 65535), ReasonTooLarge},
		{"bomb.tif", tiffIFDs([2]uint32{100000, 100000}), ReasonTooLarge},
		{"bomb.gif", gifFrames(10, 10, [2]uint16{6000, 6000}, [2]uint16{6000, 6000}), ReasonTooLarge},
		{"bomb.bmp", bmpHeader(100000, 100000), ReasonTooLarge},
		{"bomb.webp", webpVP8X(1<<24, 1<<24), ReasonTooLarge},
		{"zero.png", bombPNG(0, 0), ReasonCorrupt},
		{"cut.jpg", []byte{0xff, 0xd8, 0xff, 0xe0, 0, 16, 'J'}, ReasonCorrupt},
		{"label.png", []byte("not a png at all, only labelled one"), ReasonCorrupt},
	} {
		begin := time.Now()
		r := Extract(context.Background(), c.name, "", c.data, &ocrOn)
		if r.Status != Failed || r.Reason != c.reason || r.Text != "" || r.Detail == "" {
			t.Errorf("Extract(%s, OCR on) = %s %s %q %q, want failed %s with a detail", c.name, r.Format, r.Status, r.Reason, r.Detail, c.reason)
		}
		if el := time.Since(begin); el > time.Second {
			t.Errorf("%s: %s", c.name, el)
		}
	}
	// Over MaxInput, as for every format.
	lim := ocrOn
	lim.MaxInput = 1000
	if r := Extract(context.Background(), "notice.png", "", ocrFixture(t, "notice.png"), &lim); r.Status != Failed || r.Reason != ReasonTooLarge {
		t.Errorf("over MaxInput: %s %s %q", r.Status, r.Reason, r.Detail)
	}
	if r := Extract(context.Background(), "scan.pdf", "", ocrFixture(t, "scan.pdf"), &lim); r.Status != Failed || r.Reason != ReasonTooLarge {
		t.Errorf("scan over MaxInput: %s %s %q", r.Status, r.Reason, r.Detail)
	}
	if n := ocrStarted.Load() - started; n != 0 {
		t.Errorf("%d child processes started for refused images", n)
	}
}

// OCR on without tesseract (a PATH without it): Failed "ocr-unavailable",
// for an image and a scan; a PDF with text keeps its text unflagged.
func TestOCRUnavailable(t *testing.T) {
	needOCRTools(t) // the poppler tools are linked into the test's PATH
	letter, err := os.ReadFile(filepath.Join("testdata", "docs", "letter.pdf"))
	if err != nil {
		t.Fatal(err)
	}
	withPoppler := t.TempDir()
	for _, tool := range []string{"pdfinfo", "pdftoppm"} {
		p, _ := exec.LookPath(tool)
		if err := os.Symlink(p, filepath.Join(withPoppler, tool)); err != nil {
			t.Fatal(err)
		}
	}
	wantLetter := Extract(context.Background(), "letter.pdf", "", letter, &Limits{})
	for _, path := range []string{t.TempDir(), withPoppler} {
		t.Setenv("PATH", path)
		for _, c := range []struct {
			name string
			data []byte
		}{
			{"notice.png", ocrFixture(t, "notice.png")},
			{"notice.jpeg", ocrFixture(t, "notice.jpeg")},
			{"scan.pdf", ocrFixture(t, "scan.pdf")},
		} {
			r := Extract(context.Background(), c.name, "", c.data, &ocrOn)
			if r.Status != Failed || r.Reason != ReasonOCRUnavailable || !strings.Contains(r.Detail, "not found in PATH") {
				t.Errorf("PATH=%s: Extract(%s) = %s %s %q %q, want failed %s", path, c.name, r.Format, r.Status, r.Reason, r.Detail, ReasonOCRUnavailable)
			}
		}
		if r := Extract(context.Background(), "letter.pdf", "", letter, &ocrOn); fmt.Sprint(r) != fmt.Sprint(wantLetter) {
			t.Errorf("PATH=%s: letter.pdf with OCR on and no tools: %s %s, want its text as without OCR", path, r.Status, r.Reason)
		}
	}
}

// ocrChildren lists the live processes whose parent is this one and whose
// command is name (from /proc).
func ocrChildren(t *testing.T, name string) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	me := strconv.Itoa(os.Getpid())
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 || !strings.Contains(s[:i], "("+name) {
			continue
		}
		if f := strings.Fields(s[i+1:]); len(f) > 1 && f[1] == me {
			out = append(out, pid)
		}
	}
	return out
}

// bigPage tiles notice.png into a page tesseract takes seconds over.
func bigPage(t testing.TB) []byte {
	src := decodePNG(t, ocrFixture(t, "notice.png"))
	b := src.Bounds()
	dst := image.NewGray(image.Rect(0, 0, 3*b.Dx(), 12*b.Dy()))
	for y := 0; y < 12; y++ {
		for x := 0; x < 3; x++ {
			draw.Draw(dst, b.Add(image.Pt(x*b.Dx(), y*b.Dy())), src, b.Min, draw.Src)
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, dst); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// The deadline kills tesseract (its process group): Failed "timeout" at
// the deadline, no tesseract left running, nothing abandoned.
func TestOCRDeadlineKillsTesseract(t *testing.T) {
	needOCRTools(t)
	page := bigPage(t)
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"big.png", page},
		{"scan.pdf", ocrFixture(t, "scan.pdf")},
	} {
		started := ocrStarted.Load()
		lim := Limits{OCR: true, Timeout: 300 * time.Millisecond}
		begin := time.Now()
		r := Extract(context.Background(), c.name, "", c.data, &lim)
		el := time.Since(begin)
		if r.Reason != ReasonTimeout || (r.Status != Failed && r.Status != Truncated) {
			t.Errorf("%s: %s %s %q after %s, want timeout", c.name, r.Status, r.Reason, r.Detail, el)
		}
		if el > lim.Timeout+time.Second {
			t.Errorf("%s: returned after %s, deadline %s", c.name, el, lim.Timeout)
		}
		if ocrStarted.Load() == started {
			t.Errorf("%s: no child started before the deadline: the test proves nothing", c.name)
		}
		deadline := time.Now().Add(3 * time.Second)
		for (ocrRunning.Load() != 0 || Abandoned() != 0 || len(ocrChildren(t, "tesseract"))+len(ocrChildren(t, "pdftoppm")) != 0) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if n, a, left := ocrRunning.Load(), Abandoned(), append(ocrChildren(t, "tesseract"), ocrChildren(t, "pdftoppm")...); n != 0 || a != 0 || len(left) != 0 {
			t.Errorf("%s: 3 s after the deadline: %d children running, %d abandoned, tesseract or pdftoppm pids %v", c.name, n, a, left)
		}
	}
}

// MaxText bounds what tesseract's output adds: Truncated "text-limit".
func TestOCRTextLimit(t *testing.T) {
	needOCRTools(t)
	lim := ocrOn
	lim.MaxText = 20
	r := Extract(context.Background(), "notice.png", "", ocrFixture(t, "notice.png"), &lim)
	if r.Status != Truncated || r.Reason != ReasonText || len(r.Text) > 20 || !strings.HasPrefix(r.Text, "Invoice") {
		t.Errorf("MaxText 20: %s %s %q", r.Status, r.Reason, r.Text)
	}
}

// An image inside a ZIP is OCRed as the archive's member, within the
// job's limits.
func TestOCRArchiveMember(t *testing.T) {
	needOCRTools(t)
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("scans/notice.png")
	w.Write(ocrFixture(t, "notice.png"))
	zw.Close()
	r := Extract(context.Background(), "scans.zip", "", buf.Bytes(), &ocrOn)
	if r.Status != OK || len(r.Members) != 1 || r.Members[0].Result.Format != "png" || r.Members[0].Result.Status != OK {
		t.Fatalf("zip of a png: %s %s %+v", r.Status, r.Reason, r.Members)
	}
	if rec, missing := ocrRecall(string(ocrFixture(t, "notice.txt")), r.Text); rec < 0.9 {
		t.Errorf("member text recall %.3f, missing %v: %q", rec, missing, r.Text)
	}
	off := Extract(context.Background(), "scans.zip", "", buf.Bytes(), nil)
	if off.Members[0].Result.Status != Unsupported || off.Members[0].Result.Format != "png" {
		t.Errorf("OCR off: member %+v", off.Members[0].Result)
	}
}

// FuzzImageSize: the header reader on any bytes never panics, returns
// positive sizes or an error, and agrees with Go's decoders (PNG, JPEG)
// when both read a header.
func FuzzImageSize(f *testing.F) {
	for _, name := range []string{"notice.png", "notice.jpeg", "notice.tiff", "notice.webp"} {
		b, err := os.ReadFile(filepath.Join("testdata", "ocr", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b[:min(len(b), 4096)])
	}
	for _, b := range [][]byte{bombPNG(100000, 100000), jpegSOF(1200, 800), tiffIFDs([2]uint32{10, 20}, [2]uint32{30, 40}),
		gifFrames(10, 10, [2]uint16{5, 5}), bmpHeader(30, -20), webpVP8L(64, 48), webpVP8X(640, 480), webpVP8(100, 100)} {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, format := range imageFormats {
			d, err := imageSize(format, data)
			if err != nil {
				continue
			}
			if d.Width <= 0 || d.Height <= 0 || d.Frames < 1 || d.Pixels < mulSat(d.Width, d.Height) || d.Pixels < 0 {
				t.Fatalf("imageSize(%s) = %+v", format, d)
			}
			if format == imageMagic(data) && (format == "png" || format == "jpeg") {
				cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
				if err == nil && (int64(cfg.Width) != d.Width || int64(cfg.Height) != d.Height) {
					t.Fatalf("imageSize(%s) = %dx%d, DecodeConfig %dx%d", format, d.Width, d.Height, cfg.Width, cfg.Height)
				}
			}
		}
	})
}

// BenchmarkOCR: milliseconds a page and the child's peak RSS, mailvault's
// OCR (Extract with OCR on) against the same tools run directly from the
// command line (tesseract FILE stdout; pdftoppm | tesseract for a PDF
// page), alternating in one run (-count repeats the pair). Results in
// docs/benchmarks.md, "OCR".
//
//	go test ./indexer/extract/ -run '^$' -bench BenchmarkOCR -count 5 -benchtime 3x
func BenchmarkOCR(b *testing.B) {
	needOCRTools(b)
	notice, _ := os.ReadFile(filepath.Join("testdata", "ocr", "notice.png"))
	scan, _ := os.ReadFile(filepath.Join("testdata", "ocr", "scan.pdf"))
	big := bigPage(b)
	dir := b.TempDir()
	for _, in := range []struct {
		name  string
		data  []byte
		pages int
	}{
		{"notice.png", notice, 1}, // 1200 x 500, four lines
		{"page.png", big, 1},      // 3600 x 6000 (21.6 Mpx), 48 lines
		{"scan.pdf", scan, 2},     // two pages, rasterized at 200 dpi
	} {
		file := filepath.Join(dir, in.name)
		if err := os.WriteFile(file, in.data, 0o600); err != nil {
			b.Fatal(err)
		}
		b.Run("mailvault/"+in.name, func(b *testing.B) {
			ocrPeakRSS.Store(0)
			lim := Limits{OCR: true, Timeout: time.Minute}
			for b.Loop() {
				if r := Extract(context.Background(), in.name, "", in.data, &lim); r.Status != OK {
					b.Fatalf("%s %s %s", r.Status, r.Reason, r.Detail)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N*in.pages), "ms/page")
			b.ReportMetric(float64(ocrPeakRSS.Load())/1024, "child-MB")
		})
		b.Run("cli/"+in.name, func(b *testing.B) {
			var peak int64
			for b.Loop() {
				var cmd *exec.Cmd
				if in.pages == 1 {
					cmd = exec.Command("tesseract", file, "stdout", "-l", "eng", "--psm", "3")
				} else {
					cmd = exec.Command("sh", "-c", `for p in $(seq 1 `+strconv.Itoa(in.pages)+`); do pdftoppm -r 200 -gray -png -f $p -l $p -singlefile "$1" | tesseract stdin stdout -l eng --psm 3; done`, "sh", file)
				}
				cmd.Env = ocrEnv()
				if out, err := cmd.Output(); err != nil || len(out) == 0 {
					b.Fatalf("%v %q", err, out)
				}
				if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
					peak = max(peak, ru.Maxrss)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N*in.pages), "ms/page")
			b.ReportMetric(float64(peak)/1024, "child-MB")
		})
	}
}
