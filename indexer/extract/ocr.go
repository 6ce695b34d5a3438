package extract

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	"unicode"
)

// OCR: the optional extra of issue 15. Images (PNG, JPEG, TIFF, GIF, BMP,
// WebP) and PDFs with no text layer (scans) are read by Debian's tesseract
// (packages tesseract-ocr and tesseract-ocr-eng), PDF pages rasterized for
// it by poppler's pdftoppm (poppler-utils). Off by default (Limits.OCR):
// with it off the image formats are Unsupported (Format set) and a PDF's
// result is the PDF extractor's alone.
//
// Decision: a child process, unlike every other extractor here. OCR is
// not a parser this package could write or check from inside: tesseract
// is C++ and leptonica behind it decodes the image formats, so it cannot
// run in the process (no cgo, one binary) and nothing in it checks a Job's
// budget. As a child it is bounded from outside, and its cost (a fork and
// exec, ~100 ms to load the English model) is small against its work
// (hundreds of milliseconds a page):
//   - time: exec.CommandContext on the job's deadline (less a fifth of
//     Timeout, at most 1 s, so that a long scan cut by it keeps the text of
//     the pages read: Truncated "timeout"), in a process group
//     of its own killed as a whole (SIGKILL) when the deadline passes, and
//     Pdeathsig so that it dies with mailvault;
//   - CPU: OMP_THREAD_LIMIT=1 (tesseract's OpenMP would take every core),
//     and at most ocrConcurrency children at a time across the process;
//   - memory: tesseract's grows with the pixels it is given, so the pixel
//     dimensions are read from the image's own header here (imageSize, no
//     decoding) and an image over ocrMaxPixels is refused "too-large"
//     before tesseract sees it (a 100k x 100k PNG is 80 bytes of header
//     and 10 G pixels); a PDF page is rasterized at a resolution that keeps
//     it under the same bound; the input is bounded by MaxInput as for
//     every format;
//   - output: stdout read through a buffer bounded by what is left of
//     MaxText (the rest discarded and the result Truncated "text-limit"),
//     stderr bounded to ocrMaxStderr (its first line is the Detail of a
//     failure);
//   - files: images go to tesseract on stdin; a PDF is written, 0600, in a
//     private 0700 temporary directory (pdfinfo and pdftoppm need a file),
//     removed when the job ends.
//
// No tesseract in PATH (or no English model) is Failed "ocr-unavailable",
// never a silent empty result; so is a missing pdftoppm for a scan.

func init() {
	// Registered so that Detect's formats are known to Extract and to
	// Formats (the caller queues images only when OCR is on); the work is
	// done in ocrFallback, after runFormat, which can give every Status
	// (Unsupported when OCR is off) and wraps the PDF extractor's result.
	for _, f := range imageFormats {
		register(f, func(*Job, []byte) error { return nil })
	}
}

var imageFormats = []string{"png", "jpeg", "tiff", "gif", "bmp", "webp"}

func isImage(format string) bool {
	for _, f := range imageFormats {
		if f == format {
			return true
		}
	}
	return false
}

const (
	// ocrMaxPixels bounds one image (every frame of a GIF together, each
	// page of a TIFF, each rasterized PDF page): 40 M pixels is a 12 MP
	// phone photo three times over, an A4 page at 600 dpi; tesseract's RSS
	// for it stays in the hundreds of MB (docs/benchmarks.md, "OCR").
	ocrMaxPixels = 40_000_000
	// ocrMaxPages bounds the pages OCRed of a PDF (the first ones; the
	// result is then Truncated "ocr-page-limit") and the pages of a TIFF
	// (more are refused "too-large": tesseract reads a TIFF from stdin
	// whole). At ~0.5 s a page on one core, 20 pages fit the default 10 s
	// deadline.
	ocrMaxPages = 20
	// ocrDPI is the resolution a scanned PDF page is rasterized at:
	// tesseract reads 10 pt text reliably from 200 dpi up; a page whose
	// size would give more than ocrMaxPixels is rasterized lower, and one
	// that would need under ocrMinDPI is skipped (too-large).
	ocrDPI    = 200
	ocrMinDPI = 50
	// ocrMinLetters: a PDF with fewer letters than this per page has no
	// text layer worth the name (a scan, perhaps with a stamped page
	// number) and is OCRed when OCR is on.
	ocrMinLetters = 16
	ocrMaxStderr  = 4 << 10
	// ocrMaxRaster bounds a rasterized page's PNG from pdftoppm (one byte a
	// pixel, grey, before compression, plus headers).
	ocrMaxRaster = ocrMaxPixels + 1<<20
)

// ocrConcurrency children at most run at a time, in the whole process: each
// takes a core, and ingest keeps the others. Package state, like
// abandoned: it bounds the machine, not one caller.
var (
	ocrConcurrency = max(1, runtime.NumCPU()/2)
	ocrSlots       = make(chan struct{}, ocrConcurrency)
	ocrRunning     atomic.Int64 // children started and not yet reaped (tests)
	ocrStarted     atomic.Int64 // children started (tests)
	ocrPeakRSS     atomic.Int64 // the largest child's peak RSS, KiB (benchmarks)
)

var errOCRUnavailable = errors.New("ocr unavailable")
var errTooLarge = errors.New("too large")

// ocrFallback runs after a format's extractor (Job.run) with its result r:
// it OCRs images when Limits.OCR is on (Unsupported when off), and a PDF
// whose extractor found (almost) no text. Every other result is returned
// as it is.
func ocrFallback(j *Job, format string, data []byte, r Result) Result {
	switch {
	case isImage(format) && !j.lim.OCR:
		return Result{Format: format, Status: Unsupported}
	case isImage(format):
		if r.Status != OK { // over MaxInput
			return r
		}
		return j.ocr(format, func() error { return ocrImage(j, data) })
	case format == "pdf" && j.lim.OCR && pdfMayBeScan(r):
		var pages int
		cut := j.cut
		res := j.ocr(format, func() (err error) {
			pages, err = ocrPDF(j, data, letters(r.Text))
			return err
		})
		if pages == 0 { // it has text for its pages: the extractor's result stands
			j.text.Reset()
			j.text.WriteString(r.Text)
			j.cut = cut
			return r
		}
		if res.Status == Failed && r.Text != "" {
			res.Text = r.Text // what the extractor found is kept beside the failure
		}
		return res
	}
	return r
}

// pdfMayBeScan: the PDF extractor ended with little text and no reason to
// think rasterizing would fare better (encrypted, over a limit, timed out).
func pdfMayBeScan(r Result) bool {
	if r.Status != OK && !(r.Status == Failed && (r.Reason == ReasonCorrupt || r.Reason == ReasonPanic)) {
		return false
	}
	return letters(r.Text) < ocrMinLetters*ocrMaxPagesConsidered
}

// ocrMaxPagesConsidered: a PDF with this many letters or more is never a
// scan by the per-page rule, whatever its page count (pdfinfo is not run).
const ocrMaxPagesConsidered = 1024

// ocr runs f (which writes text with j.Text) on a fresh text buffer and
// makes the Result, recovering a panic as runFormat does.
func (j *Job) ocr(format string, f func() error) (r Result) {
	j.text.Reset()
	j.cut = ""
	var err error
	func() {
		defer func() {
			if p := recover(); p != nil {
				err = &panicError{p, debug.Stack()}
			}
		}()
		err = f()
	}()
	r = Result{Format: format, Text: j.text.String(), Status: OK}
	switch {
	case err == nil && j.cut != "":
		r.Status, r.Reason = Truncated, j.cut
		if j.cut == ReasonOCRPages {
			r.Detail = fmt.Sprintf("OCR read the first %d pages", ocrMaxPages)
		}
	case err != nil:
		r.Status, r.Reason, r.Detail = Failed, ocrReason(err), err.Error()
		if r.Text != "" && (r.Reason == ReasonText || r.Reason == ReasonTimeout || r.Reason == ReasonTooLarge) {
			r.Status = Truncated
		}
	}
	return r
}

func ocrReason(err error) string {
	switch {
	case errors.Is(err, errOCRUnavailable):
		return ReasonOCRUnavailable
	case errors.Is(err, errTooLarge):
		return ReasonTooLarge
	}
	return reasonOf(err)
}

// ocrImage checks an image's header and gives it to tesseract.
func ocrImage(j *Job, data []byte) error {
	format := imageMagic(data)
	if format == "" {
		// Labelled an image but not one by its first bytes: its size
		// cannot be checked, so tesseract does not get it.
		return fmt.Errorf("image: not a PNG, JPEG, TIFF, GIF, BMP or WebP file by its signature")
	}
	sz, err := imageSize(format, data)
	if err != nil {
		return err
	}
	if err := sz.check(); err != nil {
		return err
	}
	return tesseract(j, data)
}

// check refuses an image tesseract should not be given.
func (s imageDims) check() error {
	if s.Pixels > ocrMaxPixels {
		return fmt.Errorf("image %dx%d (%d frames or pages), %d pixels, over the %d-pixel OCR limit: %w",
			s.Width, s.Height, s.Frames, s.Pixels, ocrMaxPixels, errTooLarge)
	}
	if s.Frames > ocrMaxPages {
		return fmt.Errorf("image of %d pages, over the %d-page OCR limit: %w", s.Frames, ocrMaxPages, errTooLarge)
	}
	return nil
}

// tesseract OCRs one image (on stdin) and writes its text to the job.
func tesseract(j *Job, img []byte) error {
	room := j.lim.MaxText - j.text.Len()
	out, over, err := runChild(j, "tesseract", "tesseract-ocr tesseract-ocr-eng", img, max(0, room)+1,
		"stdin", "stdout", "-l", "eng", "--psm", "3")
	if err != nil {
		return err
	}
	text := strings.TrimSpace(strings.ReplaceAll(string(out), "\f", "\n"))
	if err := j.Text(text); err != nil {
		return err
	}
	if over { // cut by the buffer: j.Text did not see it all
		j.limit(ReasonText)
		return ErrText
	}
	return nil
}

// ocrPDF rasterizes a PDF's pages (the first ocrMaxPages) and OCRs each,
// when the text the extractor found (found letters) is under ocrMinLetters
// a page. It returns the number of pages it OCRed, 0 when the PDF has
// enough text (nothing done).
func ocrPDF(j *Job, data []byte, found int) (int, error) {
	dir, err := os.MkdirTemp("", "mailvault-ocr-")
	if err != nil {
		return 1, fmt.Errorf("ocr: %v", err)
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "in.pdf")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		return 1, fmt.Errorf("ocr: %v", err)
	}
	info, _, err := runChild(j, "pdfinfo", "poppler-utils", nil, 1<<20, "-f", "1", "-l", strconv.Itoa(ocrMaxPages), file)
	switch {
	case errors.Is(err, errOCRUnavailable) && found >= ocrMinLetters:
		return 0, nil // it has some text, and without pdfinfo its pages are not known
	case errors.Is(err, errOCRUnavailable), errors.Is(err, ErrTimeout):
		return 1, err
	case err != nil:
		// Poppler cannot read it either: nothing to rasterize, and the
		// extractor's result (its own failure, or its little text) stands.
		return 0, nil
	}
	pages, sizes := parsePdfinfo(info)
	if pages == 0 {
		return 1, fmt.Errorf("pdfinfo: no page count in its output")
	}
	if found >= ocrMinLetters*pages {
		return 0, nil
	}
	if _, err := exec.LookPath("tesseract"); err != nil { // before rasterizing
		return 1, fmt.Errorf("tesseract not found in PATH (Debian: apt-get install tesseract-ocr tesseract-ocr-eng): %w", errOCRUnavailable)
	}
	n := min(pages, ocrMaxPages)
	var skipped error
	for p := 1; p <= n; p++ {
		if err := j.Alive(); err != nil {
			return n, err
		}
		dpi := ocrDPI
		if s, ok := sizes[p]; ok && s[0] > 0 && s[1] > 0 {
			// pixels = (w/72*dpi) * (h/72*dpi) <= ocrMaxPixels
			fit := int(72 * math.Sqrt(ocrMaxPixels/(s[0]*s[1])))
			dpi = min(dpi, fit)
		}
		if dpi < ocrMinDPI {
			if skipped == nil {
				skipped = fmt.Errorf("pdf page %d of %gx%g pt: over the %d-pixel OCR limit even at %d dpi: %w",
					p, sizes[p][0], sizes[p][1], ocrMaxPixels, ocrMinDPI, errTooLarge)
			}
			continue
		}
		png, over, err := runChild(j, "pdftoppm", "poppler-utils", nil, ocrMaxRaster,
			"-r", strconv.Itoa(dpi), "-gray", "-png", "-f", strconv.Itoa(p), "-l", strconv.Itoa(p), "-singlefile", file)
		if err != nil {
			return n, err
		}
		if over {
			return n, fmt.Errorf("pdf page %d: its raster is over %d bytes: %w", p, ocrMaxRaster, errTooLarge)
		}
		// Checked as any image is (the page size pdfinfo gave is the
		// MediaBox; the raster is what tesseract will hold).
		sz, err := imageSize("png", png)
		if err == nil {
			err = sz.check()
		}
		if err != nil {
			return n, fmt.Errorf("pdf page %d raster: %w", p, err)
		}
		if p > 1 {
			if err := j.Text("\n"); err != nil {
				return n, err
			}
		}
		if err := tesseract(j, png); err != nil {
			return n, err
		}
	}
	if skipped != nil {
		return n, skipped
	}
	if pages > n {
		j.limit(ReasonOCRPages)
	}
	return n, nil
}

// parsePdfinfo reads "Pages:" and "Page    N size: W x H pts" lines.
func parsePdfinfo(out []byte) (pages int, sizes map[int][2]float64) {
	sizes = map[int][2]float64{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 2 && f[0] == "Pages:":
			pages, _ = strconv.Atoi(f[1])
		case len(f) >= 6 && f[0] == "Page" && f[2] == "size:" && f[4] == "x":
			n, err1 := strconv.Atoi(f[1])
			w, err2 := strconv.ParseFloat(f[3], 64)
			h, err3 := strconv.ParseFloat(f[5], 64)
			if err1 == nil && err2 == nil && err3 == nil {
				sizes[n] = [2]float64{w, h}
			}
		}
	}
	return pages, sizes
}

// runChild runs a Debian tool (name, from package pkg) with stdin and
// args, within the job's deadline and ocrConcurrency, and returns its
// stdout: at most maxOut bytes, over true when it wrote more (the rest is
// discarded). A tool that is not installed is errOCRUnavailable.
func runChild(j *Job, name, pkg string, stdin []byte, maxOut int, args ...string) (out []byte, over bool, err error) {
	bin, err := exec.LookPath(name)
	if err != nil {
		return nil, false, fmt.Errorf("%s not found in PATH (Debian: apt-get install %s): %w", name, pkg, errOCRUnavailable)
	}
	// The child's deadline is a little before the job's, so that a scan
	// cut by it returns its first pages' text (Truncated "timeout") before
	// Extract stops waiting and discards it.
	ctx := j.ctx
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-min(time.Second, j.lim.Timeout/5)))
		defer cancel()
	}
	select {
	case ocrSlots <- struct{}{}:
	case <-ctx.Done():
		return nil, false, ErrTimeout
	}
	defer func() { <-ocrSlots }()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = ocrEnv()
	cmd.Dir = os.TempDir()
	cmd.Stdin = bytes.NewReader(stdin)
	stdout := &capped{max: maxOut}
	stderr := &capped{max: ocrMaxStderr}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return nil, false, fmt.Errorf("%s: %v", name, err)
	}
	ocrStarted.Add(1)
	ocrRunning.Add(1)
	err = cmd.Wait()
	ocrRunning.Add(-1)
	if ctx.Err() != nil {
		return nil, false, ErrTimeout
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		for rss := ru.Maxrss; rss > ocrPeakRSS.Load(); {
			if ocrPeakRSS.CompareAndSwap(ocrPeakRSS.Load(), rss) {
				break
			}
		}
	}
	if err != nil {
		msg := firstLine(stderr.b.String())
		if name == "tesseract" && (strings.Contains(msg, "loading language") || strings.Contains(msg, "opening data file")) {
			return nil, false, fmt.Errorf("tesseract: %s (Debian: apt-get install tesseract-ocr-eng): %w", msg, errOCRUnavailable)
		}
		return nil, false, fmt.Errorf("%s: %v: %s", name, err, msg)
	}
	return stdout.b.Bytes(), stdout.over, nil
}

// ocrEnv is the children's environment: PATH, the C locale (tesseract
// requires it), one OpenMP thread, and where tesseract's models are if the
// operator said so. Nothing else of mailvault's environment is passed.
func ocrEnv() []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "LC_ALL=C", "OMP_THREAD_LIMIT=1"}
	if v, ok := os.LookupEnv("TESSDATA_PREFIX"); ok {
		env = append(env, "TESSDATA_PREFIX="+v)
	}
	return env
}

// capped keeps the first max bytes written to it and notes that more came.
type capped struct {
	b    bytes.Buffer
	max  int
	over bool
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - c.b.Len(); len(p) > room {
		c.b.Write(p[:max(0, room)])
		c.over = true
		return len(p), nil
	}
	return c.b.Write(p)
}

// firstLine is the first non-empty line of s that is not one of
// tesseract's banners, for a Detail.
func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "Tesseract Open Source") && !strings.HasPrefix(l, "Estimating resolution") {
			return l
		}
	}
	return "no message"
}

func letters(s string) int {
	n := 0
	for _, r := range s {
		if unicode.IsLetter(r) {
			n++
		}
	}
	return n
}

// imageMagic names an image format by its signature, "" when data starts
// with none of them. Detect calls it first.
func imageMagic(data []byte) string {
	switch {
	case bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")):
		return "png"
	case bytes.HasPrefix(data, []byte{0xff, 0xd8, 0xff}):
		return "jpeg"
	case bytes.HasPrefix(data, []byte("II*\x00")), bytes.HasPrefix(data, []byte("MM\x00*")):
		return "tiff"
	case bytes.HasPrefix(data, []byte("GIF87a")), bytes.HasPrefix(data, []byte("GIF89a")):
		return "gif"
	case len(data) >= 12 && string(data[:4]) == "RIFF" && string(data[8:12]) == "WEBP":
		return "webp"
	case len(data) >= 18 && string(data[:2]) == "BM":
		// "BM" alone is two letters a text could start with: the DIB
		// header's size must be one of the headers Windows defines.
		switch binary.LittleEndian.Uint32(data[14:18]) {
		case 12, 16, 40, 52, 56, 64, 108, 124:
			return "bmp"
		}
	}
	return ""
}

// imageType names an image format by media type or extension, "" when
// neither is an image's.
func imageType(ct, x string) string {
	switch ct {
	case "image/png", "image/x-png", "image/apng":
		return "png"
	case "image/jpeg", "image/jpg", "image/pjpeg":
		return "jpeg"
	case "image/tiff", "image/tiff-fx":
		return "tiff"
	case "image/gif":
		return "gif"
	case "image/bmp", "image/x-bmp", "image/x-ms-bmp":
		return "bmp"
	case "image/webp":
		return "webp"
	}
	switch x {
	case ".png":
		return "png"
	case ".jpg", ".jpeg", ".jpe", ".jfif":
		return "jpeg"
	case ".tif", ".tiff":
		return "tiff"
	case ".gif":
		return "gif"
	case ".bmp", ".dib":
		return "bmp"
	case ".webp":
		return "webp"
	}
	return ""
}

// imageDims is what an image's header says of its size.
type imageDims struct {
	Width, Height int64 // the largest frame or page
	Frames        int   // frames (GIF), pages (TIFF), else 1
	Pixels        int64 // every frame's or page's pixels, summed (saturating)
}

func (d *imageDims) add(w, h int64) {
	d.Frames++
	p := mulSat(w, h)
	if p > mulSat(d.Width, d.Height) || d.Frames == 1 {
		d.Width, d.Height = w, h
	}
	d.Pixels = min(d.Pixels+p, math.MaxInt64/2)
}

// mulSat is w*h for sizes >= 0, saturating at MaxInt64/2 (two 32-bit sizes
// overflow int64).
func mulSat(w, h int64) int64 {
	if w > 0 && h > (math.MaxInt64/2)/w {
		return math.MaxInt64 / 2
	}
	return w * h
}

// imageMaxFrames bounds the frames or pages imageSize walks: more is
// refused (corrupt, or a bomb of many small frames).
const imageMaxFrames = 4096

var errImageHeader = errors.New("image header")

// imageSize reads an image's pixel dimensions from its header, for format
// (as imageMagic names it), without decoding it: PNG's IHDR, JPEG's SOF
// marker, every IFD of a TIFF, every image descriptor of a GIF (leptonica
// reads all the frames of one), BMP's DIB header, WebP's VP8/VP8L/VP8X
// chunk. A header it cannot read is an error (the image is not given to
// tesseract). Sizes are at most 2^32-1 each; their products saturate (mulSat).
func imageSize(format string, data []byte) (d imageDims, err error) {
	fail := func(why string, a ...any) (imageDims, error) {
		return imageDims{}, fmt.Errorf("%s: %s: %w", format, fmt.Sprintf(why, a...), errImageHeader)
	}
	be, le := binary.BigEndian, binary.LittleEndian
	switch format {
	case "png":
		// Signature, then the IHDR chunk: length 13, "IHDR", width, height.
		if len(data) < 24 || string(data[12:16]) != "IHDR" {
			return fail("no IHDR chunk")
		}
		d.add(int64(be.Uint32(data[16:20])), int64(be.Uint32(data[20:24])))
	case "jpeg":
		i := 2
		for {
			for i < len(data) && data[i] == 0xff && i+1 < len(data) && data[i+1] == 0xff {
				i++ // fill bytes
			}
			if i+4 > len(data) || data[i] != 0xff {
				return fail("no frame header (SOF) before offset %d", i)
			}
			m := data[i+1]
			if m == 0x01 || (m >= 0xd0 && m <= 0xd8) { // TEM, RSTn, SOI: no length
				i += 2
				continue
			}
			if m == 0xd9 || m == 0xda { // EOI, SOS before any SOF
				return fail("no frame header (SOF) before the scan")
			}
			n := int(be.Uint16(data[i+2 : i+4]))
			if n < 2 {
				return fail("segment length %d at offset %d", n, i)
			}
			if m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc {
				if i+9 > len(data) {
					return fail("truncated frame header")
				}
				h, w := int64(be.Uint16(data[i+5:i+7])), int64(be.Uint16(data[i+7:i+9]))
				if h == 0 {
					// Height given later by a DNL marker: not known
					// from the header.
					return fail("frame height 0 (DNL)")
				}
				d.add(w, h)
				break
			}
			i += 2 + n
		}
	case "tiff":
		if len(data) < 8 {
			return fail("truncated header")
		}
		var bo binary.ByteOrder = le
		if data[0] == 'M' {
			bo = be
		}
		off := int64(bo.Uint32(data[4:8]))
		seen := map[int64]bool{}
		for off != 0 {
			if seen[off] {
				return fail("IFD chain loops at offset %d", off)
			}
			seen[off] = true
			if d.Frames >= imageMaxFrames {
				return fail("more than %d IFDs", imageMaxFrames)
			}
			if off < 8 || off+2 > int64(len(data)) {
				return fail("IFD offset %d outside the file", off)
			}
			n := int64(bo.Uint16(data[off : off+2]))
			end := off + 2 + 12*n
			if end+4 > int64(len(data)) {
				return fail("IFD at %d of %d entries outside the file", off, n)
			}
			var w, h int64 = -1, -1
			for e := off + 2; e < end; e += 12 {
				tag, typ := bo.Uint16(data[e:e+2]), bo.Uint16(data[e+2:e+4])
				var v int64
				switch typ {
				case 3: // SHORT, left-justified in the value field
					v = int64(bo.Uint16(data[e+8 : e+10]))
				case 4: // LONG
					v = int64(bo.Uint32(data[e+8 : e+12]))
				default:
					continue
				}
				switch tag {
				case 256:
					w = v
				case 257:
					h = v
				}
			}
			if w < 0 || h < 0 {
				return fail("IFD at %d without ImageWidth and ImageLength", off)
			}
			d.add(w, h)
			off = int64(bo.Uint32(data[end : end+4]))
		}
	case "gif":
		if len(data) < 13 {
			return fail("truncated header")
		}
		i := 13
		if data[10]&0x80 != 0 { // global colour table
			i += 3 << (data[10]&7 + 1)
		}
		// skip walks data sub-blocks (a length byte, then that many
		// bytes; 0 ends them).
		skip := func() bool {
			for i < len(data) {
				n := int(data[i])
				i++
				if n == 0 {
					return true
				}
				i += n
			}
			return false
		}
	walk:
		for {
			if i >= len(data) {
				break // truncated after at least one frame: leptonica reads what is there
			}
			switch data[i] {
			case 0x3b: // trailer
				break walk
			case 0x21: // extension: label, then sub-blocks
				i += 2
				if !skip() {
					break walk
				}
			case 0x2c: // image descriptor
				if i+10 > len(data) {
					break walk
				}
				if d.Frames >= imageMaxFrames {
					return fail("more than %d frames", imageMaxFrames)
				}
				d.add(int64(le.Uint16(data[i+5:i+7])), int64(le.Uint16(data[i+7:i+9])))
				flags := data[i+9]
				i += 10
				if flags&0x80 != 0 { // local colour table
					i += 3 << (flags&7 + 1)
				}
				i++ // LZW minimum code size
				if !skip() {
					break walk
				}
			default:
				return fail("unknown block 0x%02x at offset %d", data[i], i)
			}
		}
		if d.Frames == 0 {
			return fail("no image")
		}
	case "bmp":
		if len(data) < 26 {
			return fail("truncated header")
		}
		if le.Uint32(data[14:18]) == 12 { // BITMAPCOREHEADER: 16-bit sizes
			d.add(int64(le.Uint16(data[18:20])), int64(le.Uint16(data[20:22])))
			break
		}
		w, h := int64(int32(le.Uint32(data[18:22]))), int64(int32(le.Uint32(data[22:26])))
		if w < 0 {
			return fail("negative width %d", w)
		}
		if h < 0 { // top-down rows
			h = -h
		}
		d.add(w, h)
	case "webp":
		if len(data) < 30 {
			return fail("truncated header")
		}
		c := data[12:]
		switch string(c[:4]) {
		case "VP8 ": // lossy: frame tag (3), start code 9d 01 2a, 14-bit sizes
			if c[11] != 0x9d || c[12] != 0x01 || c[13] != 0x2a {
				return fail("no VP8 start code")
			}
			d.add(int64(le.Uint16(c[14:16])&0x3fff), int64(le.Uint16(c[16:18])&0x3fff))
		case "VP8L": // lossless: signature 0x2f, then 14-bit width-1 and height-1
			if c[8] != 0x2f {
				return fail("no VP8L signature")
			}
			b := le.Uint32(c[9:13])
			d.add(int64(b&0x3fff)+1, int64(b>>14&0x3fff)+1)
		case "VP8X": // extended: flags (4), 24-bit canvas width-1 and height-1
			u24 := func(b []byte) int64 { return int64(b[0]) | int64(b[1])<<8 | int64(b[2])<<16 }
			d.add(u24(c[12:15])+1, u24(c[15:18])+1)
		default:
			return fail("unknown first chunk %q", c[:4])
		}
	default:
		return fail("not an image format")
	}
	if d.Width <= 0 || d.Height <= 0 {
		return fail("%dx%d pixels", d.Width, d.Height)
	}
	return d, nil
}
