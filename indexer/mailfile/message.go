package mailfile

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
)

// headerPeek is how much of a message the not-mail check looks at.
const headerPeek = 64 << 10

// readMessageFile reads one message file (Maildir entry or .eml). Errors name
// the file and are meant for onErr; an error wrapping fs.ErrNotExist means
// the file went away.
func readMessageFile(path string, max int64) (Message, error) {
	f, err := os.Open(path)
	if err != nil {
		return Message{}, fileErr(path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Message{}, fileErr(path, err)
	}
	if !fi.Mode().IsRegular() {
		return Message{}, fmt.Errorf("read %q: not a regular file (%v)", path, fi.Mode().Type())
	}
	if fi.Size() > max {
		return Message{}, fmt.Errorf("read %q: %d bytes, over the %d-byte message limit; skipped", path, fi.Size(), max)
	}
	var buf bytes.Buffer
	buf.Grow(int(fi.Size()) + bytes.MinRead)
	// The file may grow while we read: never past max.
	if _, err := buf.ReadFrom(io.LimitReader(f, max+1)); err != nil {
		return Message{}, fileErr(path, err)
	}
	raw := buf.Bytes()
	var note string
	// Most files are plain: look at the magic bytes before paying for a
	// decompressor's buffers (64 KiB a file was a fifth of an import's
	// allocations).
	if compressed(raw) {
		r, format, err := decompressor(bytes.NewReader(raw))
		if err != nil {
			return Message{}, fmt.Errorf("read %q: %w", path, err)
		}
		if format != "" {
			var dbuf bytes.Buffer
			if _, err := dbuf.ReadFrom(io.LimitReader(r, max+1)); err != nil {
				return Message{}, fmt.Errorf("read %q: %s: %w", path, format, err)
			}
			raw = dbuf.Bytes()
			note = "decompressed from " + format
		}
	}
	if int64(len(raw)) > max {
		return Message{}, fmt.Errorf("read %q: over the %d-byte message limit; skipped", path, max)
	}
	if why := notMail(raw); why != "" {
		return Message{}, fmt.Errorf("read %q: not a mail message: %s; skipped", path, why)
	}
	if hasFromPrefix(raw) {
		note = joinNote(note, `starts with an mbox "From " line (kept)`)
	}
	return Message{Raw: raw, Source: path, InternalDate: fi.ModTime(), Note: note}, nil
}

// fileErr words an error about one file: `read "path": permission denied`.
func fileErr(path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
		if errors.Is(err, fs.ErrNotExist) {
			err = fmt.Errorf("%w (removed or renamed during the import?)", err)
		}
	}
	return fmt.Errorf("read %q: %w", path, err)
}

// notMail says why b (the start of a file) is not a mail message, or "".
func notMail(b []byte) string {
	if len(b) == 0 {
		return "empty file"
	}
	if len(b) > headerPeek {
		b = b[:headerPeek]
	}
	hdr := b
	if i := bytes.Index(b, []byte("\n\n")); i >= 0 {
		hdr = b[:i]
	}
	if i := bytes.Index(hdr, []byte("\n\r\n")); i >= 0 {
		hdr = hdr[:i]
	}
	if bytes.IndexByte(hdr, 0) >= 0 {
		return "binary content (NUL byte) in the header"
	}
	line := b
	if hasFromPrefix(line) {
		i := bytes.IndexByte(line, '\n')
		if i < 0 {
			return `only an mbox "From " line`
		}
		line = line[i+1:]
	}
	if !isHeaderField(line) {
		return "first line is not a header field"
	}
	return ""
}

// isHeaderField reports whether b starts with "Name:" (RFC 5322 field name,
// obsolete white space before the colon allowed).
func isHeaderField(b []byte) bool {
	i := 0
	for i < len(b) && b[i] >= 0x21 && b[i] <= 0x7e && b[i] != ':' {
		i++
	}
	if i == 0 {
		return false
	}
	for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	return i < len(b) && b[i] == ':'
}

func hasFromPrefix(b []byte) bool { return bytes.HasPrefix(b, []byte("From ")) }

func joinNote(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; " + b
}

// decompressor returns r unchanged when it is not compressed (format ""), a
// decompressing reader for gzip and bzip2, and an error for compression
// formats the standard library cannot read.
// compressed reports whether b starts with the magic bytes of a compression
// format decompressor knows (or refuses).
func compressed(b []byte) bool {
	for _, m := range [][]byte{{0x1f, 0x8b}, []byte("BZh"), {0x28, 0xb5, 0x2f, 0xfd}, {0xfd, '7', 'z', 'X', 'Z', 0}, {0x04, 0x22, 0x4d, 0x18}} {
		if bytes.HasPrefix(b, m) {
			return true
		}
	}
	return false
}

func decompressor(r io.Reader) (io.Reader, string, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, _ := br.Peek(10)
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, "gzip", fmt.Errorf("gzip: %w", err)
		}
		return zr, "gzip", nil
	case len(magic) == 10 && bytes.HasPrefix(magic, []byte("BZh")) && magic[3] >= '1' && magic[3] <= '9' &&
		(bytes.Equal(magic[4:], []byte{0x31, 0x41, 0x59, 0x26, 0x53, 0x59}) ||
			bytes.Equal(magic[4:], []byte{0x17, 0x72, 0x45, 0x38, 0x50, 0x90})):
		return bzip2.NewReader(br), "bzip2", nil
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return nil, "zstd", errors.New("compressed with zstd: not supported (decompress it first)")
	case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return nil, "xz", errors.New("compressed with xz: not supported (decompress it first)")
	case bytes.HasPrefix(magic, []byte{0x04, 0x22, 0x4d, 0x18}):
		return nil, "lz4", errors.New("compressed with lz4: not supported (decompress it first)")
	}
	return br, "", nil
}

// IMAP flags in the order Message.Flags lists them.
var flagOrder = []string{`\Seen`, `\Answered`, `\Flagged`, `\Deleted`, `\Draft`, "$Forwarded"}

// sortFlags orders system flags first (flagOrder), keywords after in
// byte order, without duplicates; nil when empty.
func sortFlags(fl []string) []string {
	if len(fl) == 0 {
		return nil
	}
	rank := func(f string) int {
		if i := slices.Index(flagOrder, f); i >= 0 {
			return i
		}
		return len(flagOrder)
	}
	slices.SortFunc(fl, func(a, b string) int {
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra - rb
		}
		switch {
		case a < b:
			return -1
		case a > b:
			return 1
		}
		return 0
	})
	return slices.Compact(fl)
}
