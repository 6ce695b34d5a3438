package export

import (
	"archive/zip"
	"bufio"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Names of the files an export always has at its root.
const (
	ManifestName = "manifest.json"
	CustodyName  = "custody.txt"
	SumsName     = "SHA256SUMS"
	tmpDir       = ".incomplete" // working files; removed before the manifest is written
)

// Write runs one export of src into opts.Dir and returns its manifest
// (without the file list, which goes to manifest.json). It refuses a target
// that exists and is not empty. On error the partial directory is left as
// it is, without a manifest, which Verify reports as incomplete.
func Write(ctx context.Context, src Source, opts Options) (*Manifest, error) {
	o, err := opts.WithDefaults()
	if err != nil {
		return nil, err
	}
	if o.Dir == "" {
		return nil, errors.New("export: no target directory")
	}
	if o.Zip {
		return writeZip(ctx, src, o)
	}
	if err := prepareDir(o.Dir); err != nil {
		return nil, err
	}
	w := newWriter(o)
	if err := w.run(ctx, src); err != nil {
		w.abort()
		return nil, err
	}
	return w.man, nil
}

func newWriter(o Options) *writer {
	return &writer{opts: o, next: o.Start, man: &Manifest{
		ManifestVersion: 1, Tool: o.Tool, By: o.By, Started: time.Now().UTC(), Scope: o.Scope,
		Format: o.Format, Dedup: o.Dedup, Encoding: o.Encoding, Prefix: o.Prefix, Start: o.Start, Width: o.Width,
		Errors: []string{}, Exclusions: []Exclusion{},
	}}
}

// WithDefaults returns o with the defaults filled in (production, no
// dedup, UTF-8, MV, 1, 8), or an error naming what is not valid: the one
// check of an export's options, for callers that want to refuse a request
// before they start it.
func (o Options) WithDefaults() (Options, error) {
	switch o.Format {
	case "":
		o.Format = FormatProduction
	case FormatProduction, FormatMbox, FormatEML:
	default:
		return o, fmt.Errorf("export: unknown format %q (want production, mbox or eml)", o.Format)
	}
	switch o.Dedup {
	case "":
		o.Dedup = DedupNone
	case DedupNone, DedupGlobal, DedupCustodian:
	default:
		return o, fmt.Errorf("export: unknown dedup %q (want none, global or custodian)", o.Dedup)
	}
	switch o.Encoding {
	case "":
		o.Encoding = EncodingUTF8BOM
	case EncodingUTF8BOM, EncodingCP1252:
	default:
		return o, fmt.Errorf("export: unknown encoding %q (want utf-8 or windows-1252)", o.Encoding)
	}
	if o.Prefix == "" {
		o.Prefix = "MV"
	}
	if o.Start == 0 {
		o.Start = 1
	}
	if o.Width == 0 {
		o.Width = 8
	}
	if o.Start < 0 || o.Width < 1 || o.Width > 18 {
		return o, fmt.Errorf("export: bad control numbering (start %d, width %d)", o.Start, o.Width)
	}
	for _, r := range o.Prefix {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return o, fmt.Errorf("export: prefix %q: only letters, digits, _ and - (it names files)", o.Prefix)
		}
	}
	return o, nil
}

func prepareDir(dir string) error {
	ents, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("export: create %s: %w", dir, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("export: target %s: %w", dir, err)
	case len(ents) > 0:
		return fmt.Errorf("export: %s: %w (choose a new directory)", dir, ErrNotEmpty)
	}
	return nil
}

// writer is one export in progress. It is not safe for concurrent use.
type writer struct {
	opts  Options
	man   *Manifest
	next  int
	files *os.File      // tmpDir/files.jsonl: one File per line
	fbuf  *bufio.Writer // over files
	sums  *bufio.Writer // lines of SHA256SUMS, kept in tmpDir until the end
	sumsF *os.File
	lf    *loadFiles // production only
	mbox  *hashedFile
	pool  *filePool // production and EML: writes natives and texts
	// zw is the zip the pool writes into (Options.Zip), nil for a
	// directory export.
	zw *zip.Writer
	// folder is the NATIVES and TEXT subfolder made last (docPaths).
	folder string
}

func (w *writer) path(rel string) string { return filepath.Join(w.opts.Dir, filepath.FromSlash(rel)) }

func (w *writer) run(ctx context.Context, src Source) error {
	if err := os.MkdirAll(w.path(tmpDir), 0o755); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	var err error
	if w.files, err = os.Create(w.path(tmpDir + "/files.jsonl")); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	w.fbuf = bufio.NewWriter(w.files)
	if w.sumsF, err = os.Create(w.path(tmpDir + "/sums")); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	w.sums = bufio.NewWriter(w.sumsF)

	switch w.opts.Format {
	case FormatProduction, FormatEML:
		if w.zw != nil {
			w.pool = newZipPool(w.zw)
		} else {
			w.pool = newFilePool(w.opts.Dir)
		}
	}
	switch w.opts.Format {
	case FormatProduction:
		for _, d := range []string{"NATIVES", "TEXT", "DATA"} {
			if err := os.MkdirAll(w.path(d), 0o755); err != nil {
				return fmt.Errorf("export: %w", err)
			}
		}
		if w.lf, err = w.openLoadFiles(); err != nil {
			return err
		}
		if w.opts.Proofs != nil {
			if err := os.MkdirAll(w.path("PROOF"), 0o755); err != nil {
				return fmt.Errorf("export: %w", err)
			}
			if _, err := w.writeFile("PROOF/checkpoint.txt", w.opts.Proofs.Checkpoint(), ""); err != nil {
				return err
			}
		}
	case FormatEML:
		if err := os.MkdirAll(w.path("EML"), 0o755); err != nil {
			return fmt.Errorf("export: %w", err)
		}
	case FormatMbox:
		if w.mbox, err = w.create("messages.mbox"); err != nil {
			return err
		}
	}

	total, err := src.Count(ctx)
	if err != nil {
		return fmt.Errorf("export: count: %w", err)
	}
	done := 0
	err = w.pipeline(ctx, src, func(p prepared) error {
		if err := w.message(p); err != nil {
			return err
		}
		done++
		if w.opts.Progress != nil {
			w.opts.Progress(done, total)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if w.lf != nil {
		if err := w.lf.close(w); err != nil {
			return err
		}
	}
	if w.mbox != nil {
		if err := w.mbox.Close(); err != nil {
			return err
		}
	}
	return w.finish()
}

// abort closes what is open; the partial export stays, without manifest.
func (w *writer) abort() {
	if w.pool != nil {
		w.pool.wait()
	}
	if w.lf != nil {
		w.lf.abort()
	}
	if w.mbox != nil {
		w.mbox.abort()
	}
	if w.files != nil {
		w.files.Close()
	}
	if w.sumsF != nil {
		w.sumsF.Close()
	}
}

// peek is the control number control will give next.
func (w *writer) peek() string {
	s := strconv.Itoa(w.next)
	return w.opts.Prefix + strings.Repeat("0", max(0, w.opts.Width-len(s))) + s
}

// control gives the next control number.
func (w *writer) control() (string, error) {
	n := w.next
	s := strconv.Itoa(n)
	if len(s) > w.opts.Width {
		return "", fmt.Errorf("control number %d does not fit in %d digits (raise Width)", n, w.opts.Width)
	}
	w.next++
	w.man.Counts.Documents++
	return w.opts.Prefix + strings.Repeat("0", w.opts.Width-len(s)) + s, nil
}

// checkHash refuses bytes that do not hash to the message's key.
func checkHash(m Message) error {
	sum := sha256.Sum256(m.Raw)
	if hex.EncodeToString(sum[:]) != strings.ToLower(m.SHA256) {
		return fmt.Errorf("message %s: %w (the bytes handed out hash to %x)", m.SHA256, ErrCorrupt, sum)
	}
	return nil
}

// message exports one unique message as one or more families, by dedup.
func (w *writer) message(p prepared) error {
	m := p.m
	if p.hashErr != nil {
		return p.hashErr
	}
	w.man.Counts.Messages++
	w.man.Counts.Occurrences += len(m.Occurrences)
	for _, occs := range groups(m.Occurrences, w.opts.Dedup) {
		var err error
		switch w.opts.Format {
		case FormatProduction:
			err = w.family(m, p.draft, occs)
		case FormatEML:
			err = w.eml(m, p.eml)
		case FormatMbox:
			err = w.mboxMessage(p.mbox, occs)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// groups splits the copies of a message into the documents dedup makes of
// them: one per copy, one in all, or one per custodian (in order of first
// appearance). A message without copies is still one document.
func groups(occs []Occurrence, d Dedup) [][]Occurrence {
	if len(occs) == 0 {
		return [][]Occurrence{nil}
	}
	switch d {
	case DedupGlobal:
		return [][]Occurrence{occs}
	case DedupCustodian:
		var out [][]Occurrence
		at := map[string]int{}
		for _, o := range occs {
			i, ok := at[o.Account]
			if !ok {
				i = len(out)
				at[o.Account] = i
				out = append(out, nil)
			}
			out[i] = append(out[i], o)
		}
		return out
	}
	out := make([][]Occurrence, len(occs))
	for i := range occs {
		out[i] = occs[i : i+1]
	}
	return out
}

// hashedFile is a file of the export being written as a stream (a load
// file, the mbox), hashed as it goes; Close records it in the file list and
// in SHA256SUMS. The hashing and the writing happen on a goroutine of the
// file's own, a chunk at a time, so that they do not hold up the writer's
// one goroutine, which every document passes through; at most
// hashedChunks chunks are in flight.
type hashedFile struct {
	w      *writer
	rel    string
	f      *os.File
	buf    []byte        // the chunk being filled
	chunks chan []byte   // full chunks, to hash and write
	free   chan []byte   // chunks hashed and written, for reuse
	done   chan struct{} // closed when the goroutine has written the last chunk
	err    error         // finish's result: the first write error, or Close's
	// failed is the goroutine's first write error as soon as it meets it,
	// for Write to return: a stream onto a full disk stops at its next
	// write instead of running through the rest of the export (an mbox has
	// no other file whose error would stop it).
	failed   atomic.Pointer[error]
	sha, md  hash.Hash
	n        int64
	doc, arc string
	closed   bool
}

const (
	hashedChunk  = 256 << 10
	hashedChunks = 4
)

func (w *writer) create(rel string) (*hashedFile, error) {
	f, err := os.OpenFile(w.path(rel), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	h := &hashedFile{w: w, rel: rel, f: f, sha: sha256.New(), md: md5.New(),
		chunks: make(chan []byte, hashedChunks), free: make(chan []byte, hashedChunks), done: make(chan struct{})}
	for range hashedChunks - 1 {
		h.free <- make([]byte, 0, hashedChunk)
	}
	h.buf = make([]byte, 0, hashedChunk)
	go func() {
		defer close(h.done)
		for c := range h.chunks {
			h.sha.Write(c)
			h.md.Write(c)
			if h.failed.Load() == nil {
				if _, err := h.f.Write(c); err != nil {
					h.failed.Store(&err)
				}
			}
			h.free <- c[:0]
		}
	}()
	return h, nil
}

func (h *hashedFile) Write(p []byte) (int, error) { return appendChunks(h, p) }

func (h *hashedFile) WriteString(s string) (int, error) { return appendChunks(h, s) }

// appendChunks is Write and WriteString: p into the chunks, handing each
// full one over.
func appendChunks[T string | []byte](h *hashedFile, p T) (int, error) {
	if e := h.failed.Load(); e != nil {
		return 0, *e // an *os.PathError: it names the file
	}
	n := len(p)
	for len(p) > 0 {
		k := min(len(p), hashedChunk-len(h.buf))
		h.buf = append(h.buf, p[:k]...)
		p = p[k:]
		h.flushFull()
	}
	h.n += int64(n)
	return n, nil
}

// flushFull hands a full chunk over and takes a free one.
func (h *hashedFile) flushFull() {
	if len(h.buf) == hashedChunk {
		h.chunks <- h.buf
		h.buf = <-h.free
	}
}

// finish writes what is left and waits for the goroutine.
func (h *hashedFile) finish() error {
	if h.closed {
		return h.err
	}
	h.closed = true
	if len(h.buf) > 0 {
		h.chunks <- h.buf
	}
	close(h.chunks)
	<-h.done
	cerr := h.f.Close()
	if e := h.failed.Load(); e != nil {
		h.err = *e
	} else {
		h.err = cerr
	}
	return h.err
}

func (h *hashedFile) Close() error {
	if err := h.finish(); err != nil {
		return fmt.Errorf("export: write %s: %w", h.rel, err)
	}
	return h.w.record(File{Path: h.rel, Size: h.n, SHA256: hex.EncodeToString(h.sha.Sum(nil)),
		MD5: hex.EncodeToString(h.md.Sum(nil)), DocID: h.doc, ArchiveSHA256: h.arc})
}

// abort stops the file without recording it.
func (h *hashedFile) abort() { h.finish() }

func (w *writer) record(f File) error {
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	w.fbuf.Write(b)
	w.fbuf.WriteByte('\n')
	fmt.Fprintf(w.sums, "%s  %s\n", f.SHA256, f.Path)
	w.man.Counts.Files++
	w.man.Counts.Bytes += f.Size
	return nil
}

// writeFile writes one whole file of the export: hashed and recorded here,
// in the export's order, and created by the pool.
func (w *writer) writeFile(rel string, data []byte, doc string) (File, error) {
	return w.writeData(rel, hashed(data, ""), doc, "")
}

// writeData is writeFile for data hashed already (by a prep worker).
// archive is the sha256 of the archived message whose bytes d holds, or ""
// for any other file.
func (w *writer) writeData(rel string, d fileData, doc, archive string) (File, error) {
	f := File{Path: rel, Size: int64(len(d.data)), SHA256: d.sha, MD5: d.md5}
	if err := w.pool.put(rel, d.data); err != nil {
		return File{}, err
	}
	rec := f
	rec.DocID, rec.ArchiveSHA256 = doc, archive
	if err := w.record(rec); err != nil {
		return File{}, err
	}
	return f, nil
}

// eml writes a message as EML/<CONTROL>.eml.
func (w *writer) eml(m Message, d fileData) error {
	c, err := w.control()
	if err != nil {
		return err
	}
	w.man.Counts.Emails++
	_, err = w.writeData("EML/"+c+".eml", d, c, strings.ToLower(m.SHA256))
	return err
}

func copyInto(dst io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(dst, f)
	return err
}
