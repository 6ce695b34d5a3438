package extract

// ZIP, TAR and GZIP: the archives mail carries. Their members' names always
// go in the text (so attachment: finds "budget-2024.xlsx" inside a zip) and
// in the Result's Members; their text follows each name, extracted by
// Job.Nested within the same limits.
//
// What is bounded how (docs/design.md, "Attachment text" → "Containers"):
//   - Members: at most MaxMembers per archive (ErrMembers after that; the
//     names before it are kept). The ZIP directory is read by our own reader
//     (zipDirectory), which stops at MaxMembers entries whatever the
//     end-of-central-directory record claims, instead of archive/zip's
//     NewReader, which reads the whole directory into memory (a 64 MiB zip
//     of empty entries is 1.4 million *zip.File).
//   - Bytes: every member is read through j.Reader, stored ones too, so
//     the total decompressed by the attachment and everything in it is
//     bounded by MaxExpanded; a member is read into memory only up to
//     MaxInput+1 bytes (over that: listed, not extracted). Declared sizes
//     are used only to skip a member before reading it, never to size a
//     buffer.
//   - Bombs: a member that expands more than bombRatio times once past
//     bombFloor bytes is stopped there and flagged ReasonExpansion (a
//     decompression bomb ends in milliseconds and a few MiB, not at
//     MaxExpanded); so is one whose declared sizes say so. The cost: a
//     real file over 1 MiB that compresses better than 100:1 (a sheet of
//     empty cells) is listed, not extracted, and flagged so.
//   - Depth: each member is one level deeper (Job.Nested): a zip in a zip
//     ten deep ends at MaxDepth with ReasonDepth. A .tar.gz is a gzip whose
//     payload is detected as tar: two levels.
//
// A limit reached inside a member is the archive's too (propagate), so the
// top-level Result says Truncated and why; a member that is merely corrupt
// or encrypted is flagged on its own Member.Result and the archive goes on.
// Nothing is ever written to disk: member paths are names only.

import (
	"archive/tar"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"sync"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
)

func init() {
	register("zip", extractZip)
	register("tar", extractTar)
	register("gzip", extractGzip)
}

const (
	// bombRatio and bombFloor: a member that has produced more than
	// bombFloor bytes at more than bombRatio bytes out per byte in is a
	// decompression bomb. Text and office files compress 3–20×, a
	// repetitive log 50×; deflate's ceiling is ~1032× (runs of one byte).
	bombRatio = 100
	bombFloor = 1 << 20
)

// Buffers and decompressors are pooled: an archive of 10,000 tiny members
// would otherwise allocate a 32 KiB read buffer and a flate reader (its
// 32 KiB window and tables) for each, 700 MiB of garbage in all.
var (
	chunkPool  = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}
	flatePool  sync.Pool // io.ReadCloser that is also a flate.Resetter
	memberPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}
)

func getFlate(r io.Reader) io.ReadCloser {
	if f, ok := flatePool.Get().(io.ReadCloser); ok {
		f.(flate.Resetter).Reset(r, nil)
		return f
	}
	return flate.NewReader(r)
}

func putFlate(f io.ReadCloser) { flatePool.Put(f) }

// limitReasons are the Reasons of a limit (not of bad input): reached
// inside a member, they are the container's too.
func limitReason(reason string) bool {
	switch reason {
	case ReasonDepth, ReasonExpansion, ReasonText, ReasonMembers, ReasonTimeout, ReasonTooLarge:
		return true
	}
	return false
}

// propagate makes a limit a member reached the container's, and returns
// the error that must stop the container now (the shared budget of bytes
// or time is spent), else nil.
func (j *Job) propagate(r Result) error {
	if r.Status == OK || r.Status == Unsupported || !limitReason(r.Reason) {
		return nil
	}
	j.limit(r.Reason)
	switch {
	case j.Alive() != nil:
		return ErrTimeout
	case j.expanded > j.lim.MaxExpanded:
		return ErrExpansion
	case r.Reason == ReasonText:
		return ErrText
	}
	return nil
}

// addMember writes a member's name and text and records it; the caller has
// checked the member count. data nil with res set: not extracted (res says
// why). keep: the Member carries its bytes (TNEF attachments).
func (j *Job) addMember(name, contentType string, size int64, data []byte, res *Result, keep bool) error {
	if err := j.Text(name); err != nil {
		// Listed (its name is what fitted), not looked into.
		j.members = append(j.members, Member{Name: name, Size: size,
			Result: Result{Format: Detect(name, contentType, data), Status: Failed, Reason: ReasonText, Detail: "not extracted: the text limit was reached"}})
		return err
	}
	var r Result
	if res != nil {
		r = *res
	} else {
		r = j.Nested(name, contentType, data)
	}
	m := Member{Name: name, Size: size, Result: r}
	if keep {
		m.Data = data
	}
	j.members = append(j.members, m)
	if err := j.Text(r.Text); err != nil {
		return err
	}
	return j.propagate(r)
}

// memberCount returns ErrMembers when one more member would be over
// MaxMembers.
func (j *Job) memberCount() error {
	if len(j.members) >= j.lim.MaxMembers {
		j.limit(ReasonMembers)
		return fmt.Errorf("%w: more than %d members", ErrMembers, j.lim.MaxMembers)
	}
	return nil
}

// notExtracted is the Result of a member left unread.
func notExtracted(name string, reason, detail string) *Result {
	return &Result{Format: Detect(name, "", nil), Status: Failed, Reason: reason, Detail: detail}
}

// readMember reads a member's decompressed bytes from r, accounted by
// j.Reader, at most MaxInput+1 of them. in counts the compressed bytes r
// has consumed (nil when r is not a decompressor). It returns the bytes, or
// a Result saying why the member is not extracted (too large, a bomb,
// corrupt), or an error that stops the whole container (the expansion
// budget or the deadline).
func (j *Job) readMember(name string, r io.Reader, in *countIn) ([]byte, *Result, error) {
	buf := memberPool.Get().(*bytes.Buffer)
	buf.Reset()
	// A member left unread gives its buffer back: the thousands of bomb
	// members of a 42.zip share a few. One that is extracted keeps it (a
	// TNEF member's Data may point into it).
	discard := func() {
		if buf.Cap() <= 2*bombFloor {
			memberPool.Put(buf)
		}
	}
	src := j.Reader(r)
	cp := chunkPool.Get().(*[]byte)
	defer chunkPool.Put(cp)
	chunk := *cp
	for {
		n, err := src.Read(chunk)
		total := int64(buf.Len() + n)
		if errors.Is(err, ErrExpansion) || errors.Is(err, ErrTimeout) {
			discard()
			return nil, nil, err
		}
		// The checks come before the bytes are kept: a bomb's buffer
		// never grows past bombFloor.
		if in != nil && total > bombFloor && total > bombRatio*max(in.n, 1) {
			discard()
			j.limit(ReasonExpansion)
			return nil, notExtracted(name, ReasonExpansion, fmt.Sprintf("decompression bomb: over %d bytes from %d (over %d:1), not extracted", total, in.n, bombRatio)), nil
		}
		if total > j.lim.MaxInput {
			discard()
			return nil, notExtracted(name, ReasonTooLarge, fmt.Sprintf("over %d bytes decompressed, not extracted", j.lim.MaxInput)), nil
		}
		buf.Write(chunk[:n])
		if err == io.EOF {
			return buf.Bytes(), nil, nil
		}
		if err != nil {
			discard()
			return nil, notExtracted(name, ReasonCorrupt, err.Error()), nil
		}
	}
}

// countIn counts the bytes a decompressor takes from its input. It keeps
// io.ByteReader so that flate reads no further than the stream's end (the
// local-header walk needs that).
type countIn struct {
	r *bytes.Reader
	n int64
}

func (c *countIn) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countIn) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		c.n++
	}
	return b, err
}

// --- ZIP ---

// zipEntry is one central-directory (or local) header, the fields we use.
type zipEntry struct {
	name         string
	flags        uint16
	method       uint16
	crc          uint32
	csize, usize uint64
	offset       uint64 // of the local header, from the start of data
}

const (
	zipLocalSig   = "PK\x03\x04"
	zipCentralSig = "PK\x01\x02"
	zipEndSig     = "PK\x05\x06"
	zip64EndSig   = "PK\x06\x06"
	zip64LocSig   = "PK\x06\x07"
	zipCentralLen = 46
	zipLocalLen   = 30
	zipEndLen     = 22
)

var errNoDirectory = errors.New("no end of central directory record")

// zipEnd finds the end-of-central-directory record and returns the number
// of entries it claims and where the directory starts in data.
func zipEnd(data []byte) (entries, dirOffset uint64, err error) {
	lo := max(0, len(data)-zipEndLen-0xffff)
	at := -1
	for i := len(data) - zipEndLen; i >= lo; i-- {
		if string(data[i:i+4]) == zipEndSig {
			at = i
			break
		}
	}
	if at < 0 {
		return 0, 0, errNoDirectory
	}
	e := data[at:]
	entries = uint64(binary.LittleEndian.Uint16(e[10:]))
	dirSize := uint64(binary.LittleEndian.Uint32(e[12:]))
	dirOffset = uint64(binary.LittleEndian.Uint32(e[16:]))
	if (entries == 0xffff || dirSize == 0xffffffff || dirOffset == 0xffffffff) && at >= 20 && string(data[at-20:at-16]) == zip64LocSig {
		off := binary.LittleEndian.Uint64(data[at-12:])
		if len(data) >= 56 && off <= uint64(len(data)-56) && string(data[off:off+4]) == zip64EndSig {
			z := data[off:]
			entries = binary.LittleEndian.Uint64(z[32:])
			dirSize = binary.LittleEndian.Uint64(z[40:])
			dirOffset = binary.LittleEndian.Uint64(z[48:])
			at = int(off)
		}
	}
	// Data prepended to the archive (a self-extractor) shifts every
	// offset: the directory ends where the end record starts.
	if dirOffset+dirSize != uint64(at) && dirSize <= uint64(at) {
		if d := uint64(at) - dirSize; d+4 <= uint64(len(data)) && string(data[d:d+4]) == zipCentralSig {
			dirOffset = d
		}
	}
	if dirOffset > uint64(len(data)) {
		return entries, 0, fmt.Errorf("central directory at %d, past the end (%d bytes)", dirOffset, len(data))
	}
	return entries, dirOffset, nil
}

// zipDirectory reads at most limit entries of data's central directory;
// more reports that there are more (the record claims more, or more
// follow). Offsets are made relative to data's start.
func zipDirectory(data []byte, limit int) (entries []zipEntry, more bool, err error) {
	claimed, p, err := zipEnd(data)
	if err != nil {
		return nil, false, err
	}
	base := int64(-1)
	for uint64(len(entries)) < claimed || (p+4 <= uint64(len(data)) && string(data[p:p+4]) == zipCentralSig) {
		if len(entries) >= limit {
			return entries, true, nil
		}
		if p+zipCentralLen > uint64(len(data)) || string(data[p:p+4]) != zipCentralSig {
			return entries, false, fmt.Errorf("central directory entry %d at %d: bad signature or truncated", len(entries), p)
		}
		h := data[p:]
		n, x, c := uint64(binary.LittleEndian.Uint16(h[28:])), uint64(binary.LittleEndian.Uint16(h[30:])), uint64(binary.LittleEndian.Uint16(h[32:]))
		if p+zipCentralLen+n+x+c > uint64(len(data)) {
			return entries, false, fmt.Errorf("central directory entry %d at %d: truncated", len(entries), p)
		}
		e := zipEntry{
			flags:  binary.LittleEndian.Uint16(h[8:]),
			method: binary.LittleEndian.Uint16(h[10:]),
			crc:    binary.LittleEndian.Uint32(h[16:]),
			csize:  uint64(binary.LittleEndian.Uint32(h[20:])),
			usize:  uint64(binary.LittleEndian.Uint32(h[24:])),
			offset: uint64(binary.LittleEndian.Uint32(h[42:])),
		}
		e.name = zipName(h[zipCentralLen:zipCentralLen+n], e.flags)
		zip64Extra(&e, h[zipCentralLen+n:zipCentralLen+n+x])
		if base < 0 {
			// The first entry's local header tells how far a
			// self-extractor's stub shifted the offsets.
			base = 0
			if off := e.offset; off+4 > uint64(len(data)) || string(data[off:off+4]) != zipLocalSig {
				if d := bytes.Index(data, []byte(zipLocalSig)); d > 0 && uint64(d) > off {
					base = int64(uint64(d) - off)
				}
			}
		}
		e.offset += uint64(base)
		entries = append(entries, e)
		p += zipCentralLen + n + x + c
	}
	return entries, false, nil
}

// zip64Extra reads the ZIP64 extended information extra field (0x0001):
// the 64-bit values of the fields that are 0xffffffff, in order.
func zip64Extra(e *zipEntry, extra []byte) {
	for len(extra) >= 4 {
		id, n := binary.LittleEndian.Uint16(extra), int(binary.LittleEndian.Uint16(extra[2:]))
		extra = extra[4:]
		if n > len(extra) {
			return
		}
		f := extra[:n]
		extra = extra[n:]
		if id != 0x0001 {
			continue
		}
		for _, v := range []*uint64{&e.usize, &e.csize, &e.offset} {
			if *v == 0xffffffff && len(f) >= 8 {
				*v = binary.LittleEndian.Uint64(f)
				f = f[8:]
			}
		}
	}
}

// zipName decodes a member name: UTF-8 when the entry says so (flag bit
// 11) or it is valid UTF-8, else CP437, the ZIP specification's default
// and what Windows' own zip writes.
func zipName(b []byte, flags uint16) string {
	if flags&0x800 != 0 || utf8.Valid(b) {
		return strings.ToValidUTF8(string(b), "\uFFFD")
	}
	s, err := charmap.CodePage437.NewDecoder().Bytes(b)
	if err != nil {
		return strings.ToValidUTF8(string(b), "\uFFFD")
	}
	return string(s)
}

// zipLocalEntries walks the local headers from the start, for a zip whose
// central directory is missing (a truncated attachment): what it finds
// before the cut.
// Finding the end of a data-descriptor member inflates it: through
// j.Reader, so that it counts against MaxExpanded like any other read.
func zipLocalEntries(j *Job, data []byte, limit int) (entries []zipEntry, more bool, err error) {
	p := 0
	for p+zipLocalLen <= len(data) && string(data[p:p+4]) == zipLocalSig {
		if len(entries) >= limit {
			return entries, true, nil
		}
		h := data[p:]
		n, x := int(binary.LittleEndian.Uint16(h[26:])), int(binary.LittleEndian.Uint16(h[28:]))
		if p+zipLocalLen+n+x > len(data) {
			break
		}
		e := zipEntry{
			flags:  binary.LittleEndian.Uint16(h[6:]),
			method: binary.LittleEndian.Uint16(h[8:]),
			crc:    binary.LittleEndian.Uint32(h[14:]),
			csize:  uint64(binary.LittleEndian.Uint32(h[18:])),
			usize:  uint64(binary.LittleEndian.Uint32(h[22:])),
			offset: uint64(p),
		}
		e.name = zipName(h[zipLocalLen:zipLocalLen+n], e.flags)
		zip64Extra(&e, h[zipLocalLen+n:zipLocalLen+n+x])
		start := p + zipLocalLen + n + x
		if e.flags&0x8 != 0 {
			// Sizes follow the data (a data descriptor): only a
			// deflate stream says where it ends.
			if e.method != 8 {
				entries = append(entries, e)
				return entries, false, fmt.Errorf("member %q: stored with a data descriptor, its end unknown", e.name)
			}
			in := &countIn{r: bytes.NewReader(data[start:])}
			f := getFlate(in)
			usize, err := io.Copy(io.Discard, j.Reader(f))
			putFlate(f)
			if errors.Is(err, ErrExpansion) || errors.Is(err, ErrTimeout) {
				return entries, false, err
			}
			if err != nil {
				entries = append(entries, e)
				return entries, false, fmt.Errorf("member %q: %v", e.name, err)
			}
			e.csize, e.usize, e.crc = uint64(in.n), uint64(usize), 0
			e.flags |= 0x4000 // ours: no CRC to check
			next := start + int(in.n)
			if next+16 <= len(data) && string(data[next:next+4]) == "PK\x07\x08" {
				e.crc = binary.LittleEndian.Uint32(data[next+4:])
				e.flags &^= 0x4000
				next += 16
			} else if next+12 <= len(data) {
				next += 12 // a descriptor without its optional signature
			}
			entries = append(entries, e)
			p = next
			continue
		}
		entries = append(entries, e)
		if uint64(start)+e.csize > uint64(len(data)) {
			break
		}
		p = start + int(e.csize)
	}
	return entries, false, fmt.Errorf("no central directory (truncated?): %d members found from their local headers", len(entries))
}

// zipClaimedEntries bounds the entries archive/zip's NewReader would hold
// for data: the larger of what the end-of-central-directory record claims
// (ok false when there is none) and the number of central directory
// signatures anywhere in data. Detect and openPackage check it before
// NewReader.
//
// The claim alone is not a bound (the hostile review of issue 15):
// NewReader reads every directory header there is, one after the other,
// and compares their number with the claim modulo 65,536 only (uint16), so
// 400,000 empty entries claiming 400,000 mod 65,536 = 6,784 passed the
// check and cost 114 MiB of heap for 19 MB of input (about 300 MB for 64
// MiB; TestHostileWrappedEntryCount). Each header NewReader reads starts
// with the signature, so their count bounds it whatever the record says
// and wherever NewReader starts. Counting costs one pass of bytes.Count
// over the attachment (milliseconds for 64 MiB); a real package has few
// signatures besides its entries' (a stored member that is itself a ZIP
// adds its own, and 4 random bytes match once in 4 billion).
func zipClaimedEntries(data []byte) (n uint64, ok bool) {
	claimed, _, err := zipEnd(data)
	sigs := uint64(bytes.Count(data, []byte(zipCentralSig)))
	if err != nil {
		return sigs, false
	}
	return max(claimed, sigs), true
}

func extractZip(j *Job, data []byte) error {
	entries, more, dirErr := zipDirectory(data, j.lim.MaxMembers)
	if errors.Is(dirErr, errNoDirectory) {
		entries, more, dirErr = zipLocalEntries(j, data, j.lim.MaxMembers)
		if errors.Is(dirErr, ErrExpansion) || errors.Is(dirErr, ErrTimeout) {
			return dirErr
		}
	}
	for _, e := range entries {
		if err := j.Alive(); err != nil {
			return err
		}
		if strings.HasSuffix(e.name, "/") && e.usize == 0 {
			continue // a directory
		}
		if err := j.memberCount(); err != nil {
			return err
		}
		d, res, err := j.zipMember(data, e)
		if err != nil {
			return err
		}
		if err := j.addMember(e.name, "", int64(min(e.usize, 1<<62)), d, res, false); err != nil {
			return err
		}
	}
	if more {
		j.limit(ReasonMembers)
		return fmt.Errorf("%w: more than %d members", ErrMembers, j.lim.MaxMembers)
	}
	if dirErr != nil {
		return fmt.Errorf("zip: %w", dirErr)
	}
	return nil
}

// zipMember reads one member's bytes (or says why not).
func (j *Job) zipMember(data []byte, e zipEntry) ([]byte, *Result, error) {
	switch {
	case e.flags&0x1 != 0:
		return nil, &Result{Format: Detect(e.name, "", nil), Status: Failed, Reason: ReasonEncrypted, Detail: "encrypted zip member"}, nil
	case e.method != 0 && e.method != 8:
		return nil, notExtracted(e.name, ReasonCorrupt, fmt.Sprintf("compression method %d not supported (only stored and deflate)", e.method)), nil
	case e.usize > uint64(j.lim.MaxInput):
		if e.usize/bombRatio > e.csize {
			j.limit(ReasonExpansion)
			return nil, notExtracted(e.name, ReasonExpansion, fmt.Sprintf("decompression bomb: declares %d bytes from %d, not extracted", e.usize, e.csize)), nil
		}
		return nil, notExtracted(e.name, ReasonTooLarge, fmt.Sprintf("%d bytes, over the %d-byte limit, not extracted", e.usize, j.lim.MaxInput)), nil
	}
	p := e.offset
	if p+zipLocalLen > uint64(len(data)) || string(data[p:p+4]) != zipLocalSig {
		return nil, notExtracted(e.name, ReasonCorrupt, fmt.Sprintf("no local header at %d", p)), nil
	}
	n, x := uint64(binary.LittleEndian.Uint16(data[p+26:])), uint64(binary.LittleEndian.Uint16(data[p+28:]))
	start := p + zipLocalLen + n + x
	if start > uint64(len(data)) {
		return nil, notExtracted(e.name, ReasonCorrupt, "truncated local header"), nil
	}
	// The compressed bytes: as the directory says, cut at the end of data
	// (a lying size reads no further than what is there).
	raw := data[start:min(uint64(len(data)), start+e.csize)]
	var r io.Reader
	var in *countIn
	if e.method == 0 {
		r = bytes.NewReader(raw)
	} else {
		in = &countIn{r: bytes.NewReader(raw)}
		f := getFlate(in)
		defer putFlate(f)
		r = f
	}
	d, res, err := j.readMember(e.name, r, in)
	if d != nil && e.flags&0x4000 == 0 && crc32.ChecksumIEEE(d) != e.crc {
		return nil, notExtracted(e.name, ReasonCorrupt, fmt.Sprintf("CRC mismatch (%d bytes read)", len(d))), nil
	}
	return d, res, err
}

// --- TAR ---

func extractTar(j *Job, data []byte) error {
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		if err := j.Alive(); err != nil {
			return err
		}
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("tar: %w", err)
		}
		// Regular files only: directories, links and devices carry no
		// text and nothing is written anywhere.
		if h.Typeflag != tar.TypeReg && h.Typeflag != '\x00' && h.Typeflag != tar.TypeGNUSparse {
			continue
		}
		if err := j.memberCount(); err != nil {
			return err
		}
		name := strings.ToValidUTF8(h.Name, "\uFFFD")
		var d []byte
		var res *Result
		if h.Size > j.lim.MaxInput {
			res = notExtracted(name, ReasonTooLarge, fmt.Sprintf("declares %d bytes, over the %d-byte limit, not extracted", h.Size, j.lim.MaxInput))
		} else if d, res, err = j.readMember(name, tr, nil); err != nil {
			return err
		}
		if err := j.addMember(name, "", h.Size, d, res, false); err != nil {
			return err
		}
	}
}

// --- GZIP ---

// A gzip file holds one payload (concatenated members read as one, as gzip
// -d does); its name is the header's FNAME when there is one. A .tar.gz is
// a gzip whose payload Detect sees as tar.
func extractGzip(j *Job, data []byte) error {
	in := &countIn{r: bytes.NewReader(data)}
	zr, err := gzip.NewReader(in)
	if err != nil {
		return fmt.Errorf("gzip: %w", err)
	}
	name := strings.ToValidUTF8(zr.Name, "\uFFFD")
	if err := j.memberCount(); err != nil {
		return err
	}
	d, res, err := j.readMember(name, zr, in)
	if err != nil {
		return err
	}
	size := int64(len(d))
	if d == nil {
		size = -1
	}
	if err := j.addMember(name, "", size, d, res, false); err != nil {
		return err
	}
	if res != nil && res.Reason == ReasonCorrupt {
		return fmt.Errorf("gzip: %s", res.Detail) // the wrapper is the attachment: it is corrupt
	}
	return nil
}
