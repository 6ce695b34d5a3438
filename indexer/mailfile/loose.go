package mailfile

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Loose message files: directories of .eml files (exports of most mail
// clients, readpst -e output) and Apple Mail's .emlx files.
//
// A directory holding .eml or .emlx files is one mailbox (KindLoose), named
// like a Maildir folder would be: by its path relative to the import root;
// the root directory itself is the override or "INBOX". An Apple Mail
// mailbox directory "X.mbox" (Mail V2 and later: X.mbox/<UUID>/Data/…/
// Messages/N.emlx, older X.mbox/Messages/N.emlx) is one mailbox "X" holding
// every message file below it except those of nested X.mbox directories,
// which are mailboxes of their own.
//
// Keys: a loose mailbox is walked in the natural order of the files' paths
// relative to the mailbox directory ("2.eml" before "10.eml"), as a Maildir
// is walked by unique name. The importer gives UIDs in walk order and
// decides what is already imported by content (see service/importer.go), so
// a re-run imports nothing twice and a new file gets the next UID, whatever
// its name sorts as.

// looseKind says whether a file name is a loose message file: "eml",
// "emlx", "partial" (.partial.emlx), or "".
func looseKind(name string) string {
	l := strings.ToLower(name)
	switch {
	case strings.HasPrefix(l, "."):
		return ""
	case strings.HasSuffix(l, ".partial.emlx"):
		return "partial"
	case strings.HasSuffix(l, ".emlx"):
		return "emlx"
	case strings.HasSuffix(l, ".eml"):
		return "eml"
	}
	return ""
}

// looseFile is one message file of a loose mailbox.
type looseFile struct {
	rel  string // path relative to the mailbox directory, "/"-separated
	path string
	kind string // looseKind
}

// listLoose lists the message files of a loose mailbox in walk order. deep:
// recurse into subdirectories (an Apple Mail X.mbox), except nested X.mbox
// directories.
func listLoose(dir string, deep bool) ([]looseFile, error) {
	var out []looseFile
	var walk func(d, rel string, depth int) error
	walk = func(d, rel string, depth int) error {
		entries, err := os.ReadDir(d)
		if err != nil {
			return fmt.Errorf("walk %q: %w", dir, err)
		}
		for _, e := range entries {
			n := e.Name()
			r := n
			if rel != "" {
				r = rel + "/" + n
			}
			p := filepath.Join(d, n)
			if k := looseKind(n); k != "" {
				if e.Type().IsDir() {
					continue
				}
				out = append(out, looseFile{rel: r, path: p, kind: k})
				continue
			}
			if !deep || strings.HasPrefix(n, ".") || depth >= maxTreeDepth {
				continue
			}
			fi, err := os.Stat(p)
			if err != nil || !fi.IsDir() || strings.HasSuffix(n, ".mbox") {
				continue
			}
			if err := walk(p, r, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(dir, "", 0); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b looseFile) int {
		if c := compareNatural(a.rel, b.rel); c != 0 {
			return c
		}
		return strings.Compare(a.rel, b.rel)
	})
	return out, nil
}

// looseSummary describes a loose mailbox for Mailbox.Note: how many files
// are .partial.emlx (one note per mailbox, not per file).
func looseSummary(files []looseFile) string {
	partial := 0
	for _, f := range files {
		if f.kind == "partial" {
			partial++
		}
	}
	if partial == 0 {
		return ""
	}
	return fmt.Sprintf("%d of %d messages are .partial.emlx: Apple Mail keeps their attachments apart "+
		"(in the mailbox's Attachments/ directory); they are imported without those attachments", partial, len(files))
}

// hasLooseFiles reports whether dir directly holds a loose message file.
func hasLooseFiles(entries []os.DirEntry) bool {
	for _, e := range entries {
		if looseKind(e.Name()) != "" && !e.IsDir() {
			return true
		}
	}
	return false
}

// appleMailbox reports whether dir is an Apple Mail V2+ mailbox directory
// (X.mbox without an mbox file, holding .emlx below it).
func appleMailbox(dir string) bool {
	if !strings.HasSuffix(filepath.Base(filepath.Clean(dir)), ".mbox") {
		return false
	}
	if fi, err := os.Stat(filepath.Join(dir, "mbox")); err == nil && fi.Mode().IsRegular() {
		return false
	}
	files, err := listLoose(dir, true)
	return err == nil && len(files) > 0
}

func (m Mailbox) walkLoose(fn func(Message) error, report func(error), stop func() bool) error {
	files, err := listLoose(m.Path, m.deep)
	if err != nil {
		return err
	}
	max := m.maxBytes()
	for _, f := range files {
		if stop() {
			return nil
		}
		msg, err := readLooseFile(f.path, f.kind, max)
		if err != nil {
			report(err)
			continue
		}
		if err := fn(msg); err != nil {
			return err
		}
	}
	return nil
}

// readLooseFile reads an .eml (as any message file) or an .emlx.
func readLooseFile(path, kind string, max int64) (Message, error) {
	if kind != "emlx" && kind != "partial" {
		return readMessageFile(path, max)
	}
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
	// The plist after the message is small; max+64 KiB is all we look at.
	limit := max + 64<<10
	if fi.Size() > limit {
		return Message{}, fmt.Errorf("read %q: %d bytes, over the %d-byte message limit; skipped", path, fi.Size(), max)
	}
	var buf bytes.Buffer
	buf.Grow(int(fi.Size()) + bytes.MinRead)
	if _, err := buf.ReadFrom(f); err != nil {
		return Message{}, fileErr(path, err)
	}
	e, err := ParseEMLX(buf.Bytes())
	if err != nil {
		return Message{}, fmt.Errorf("read %q: %w; skipped", path, err)
	}
	if int64(len(e.Raw)) > max {
		return Message{}, fmt.Errorf("read %q: over the %d-byte message limit; skipped", path, max)
	}
	if why := notMail(e.Raw); why != "" {
		return Message{}, fmt.Errorf("read %q: not a mail message: %s; skipped", path, why)
	}
	msg := Message{Raw: e.Raw, Source: path, Flags: e.Flags, InternalDate: fi.ModTime(), Note: e.Note}
	if !e.Received.IsZero() {
		msg.InternalDate = e.Received
	}
	return msg, nil
}

// ErrNotEMLX: a file named .emlx has neither a byte count line nor a header.
var ErrNotEMLX = errors.New("not an .emlx file: the first line is not a byte count")

// EMLX is one parsed .emlx file.
type EMLX struct {
	Raw      []byte    // the message: exactly the counted bytes (or what there is; see Note)
	Flags    []string  // from the plist's "flags" integer; nil when absent
	Received time.Time // the plist's "date-received"; zero when absent
	// Note is non-empty when the file did not follow the format and the
	// reader kept more (or less) than the byte count says.
	Note string
}

// ParseEMLX splits an Apple Mail .emlx file: a line holding the message's
// byte count (decimal, blanks around it allowed), exactly that many bytes of
// message, then an XML property list with Mail's flags. Bad input loses
// nothing: a count past the end of the file (a truncated file) keeps what
// there is; a count that does not end where a plist starts keeps everything
// up to the plist (or the end); a file with no count line but a header is
// taken whole as a message. Each of those sets Note. b is not retained:
// Raw is a fresh copy.
func ParseEMLX(b []byte) (EMLX, error) {
	nl := bytes.IndexByte(b, '\n')
	if nl < 0 || nl > 32 {
		if isHeaderField(b) {
			return EMLX{Raw: bytes.Clone(b), Note: "named .emlx but has no byte count line: imported whole"}, nil
		}
		return EMLX{}, ErrNotEMLX
	}
	count, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(string(b[:nl]), "\r")), 10, 64)
	if err != nil || count < 0 {
		if isHeaderField(b) {
			return EMLX{Raw: bytes.Clone(b), Note: "named .emlx but has no byte count line: imported whole"}, nil
		}
		return EMLX{}, fmt.Errorf("%w (%q)", ErrNotEMLX, clip(b[:nl], 32))
	}
	body := b[nl+1:]
	var e EMLX
	switch {
	case count > int64(len(body)):
		e.Raw = bytes.Clone(body)
		e.Note = fmt.Sprintf("truncated .emlx: the byte count is %d but only %d bytes follow (all kept)", count, len(body))
		return e, nil
	case isPlistStart(body[count:]):
		e.Raw = bytes.Clone(body[:count])
		e.Flags, e.Received = emlxPlist(body[count:])
		return e, nil
	}
	// The count does not end where the plist starts: keep everything up to
	// a plist that starts a line, else everything.
	end := len(body)
	if i := plistLine(body); i >= 0 {
		end = i
	}
	e.Raw = bytes.Clone(body[:end])
	e.Flags, e.Received = emlxPlist(body[end:])
	e.Note = fmt.Sprintf("bad .emlx byte count %d: %d bytes of message kept", count, end)
	return e, nil
}

func clip(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	return string(b)
}

func isPlistStart(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) == 0 || bytes.HasPrefix(b, []byte("<?xml")) || bytes.HasPrefix(b, []byte("<!DOCTYPE plist")) ||
		bytes.HasPrefix(b, []byte("<plist"))
}

// plistLine is the offset of the last line starting "<?xml" (the plist that
// closes an .emlx), or -1.
func plistLine(b []byte) int {
	i := bytes.LastIndex(b, []byte("\n<?xml"))
	if i < 0 {
		return -1
	}
	return i + 1
}

// emlx flag bits (Mail's "flags" integer, as documented by the emlx readers
// of mutt/notmuch users and jwz's notes): bit 0 read, 1 deleted, 2 answered,
// 4 flagged, 6 draft, 8 forwarded. Other bits (attachment count, priority,
// junk levels) are not IMAP flags and are left out.
var emlxFlagBits = []struct {
	bit  uint
	flag string
}{{0, `\Seen`}, {1, `\Deleted`}, {2, `\Answered`}, {4, `\Flagged`}, {6, `\Draft`}, {8, "$Forwarded"}}

// emlxPlist reads the "flags" and "date-received" integers of the plist. It
// is not a plist parser: it looks for <key>NAME</key> followed by
// <integer>N</integer> (or <real>); anything else, a plist in binary form or
// without those keys, gives no flags and a zero date, silently (the message
// is what matters).
func emlxPlist(b []byte) ([]string, time.Time) {
	var flags []string
	if v, ok := plistInt(b, "flags"); ok {
		for _, f := range emlxFlagBits {
			if uint64(v)>>f.bit&1 == 1 {
				flags = append(flags, f.flag)
			}
		}
	}
	var t time.Time
	if v, ok := plistInt(b, "date-received"); ok && v > 0 && v < 1<<40 {
		t = time.Unix(v, 0).UTC()
	}
	return sortFlags(flags), t
}

func plistInt(b []byte, key string) (int64, bool) {
	k := []byte("<key>" + key + "</key>")
	i := bytes.Index(b, k)
	if i < 0 {
		return 0, false
	}
	rest := bytes.TrimLeft(b[i+len(k):], " \t\r\n")
	for _, tag := range []string{"integer", "real"} {
		open, close := "<"+tag+">", "</"+tag+">"
		if !bytes.HasPrefix(rest, []byte(open)) {
			continue
		}
		v, _, ok := bytes.Cut(rest[len(open):], []byte(close))
		if !ok {
			return 0, false
		}
		s := strings.TrimSpace(string(v))
		if tag == "real" {
			s, _, _ = strings.Cut(s, ".")
		}
		n, err := strconv.ParseInt(s, 10, 64)
		return n, err == nil
	}
	return 0, false
}
