package mailfile

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// mboxBufSize is the bufio buffer of the mbox scanner; lines longer than this
// arrive in several chunks. It must exceed the longest prefix we look at
// (">>>…From ", a From_ line's date).
const mboxBufSize = 64 << 10

// keepScratch: after a message larger than this, the scratch buffer is let go
// instead of being kept for the next message.
const keepScratch = 16 << 20

func (m Mailbox) walkMbox(fn func(Message) error, report func(error), stop func() bool) error {
	f, err := os.Open(m.Path)
	if err != nil {
		return fmt.Errorf("walk %q: %w", m.Path, err)
	}
	defer f.Close()
	r, _, err := decompressor(f)
	if err != nil {
		return fmt.Errorf("walk %q: %w", m.Path, err)
	}
	s := mboxScanner{path: m.Path, max: m.maxBytes(), fn: fn, report: report, stop: stop}
	if err := s.scan(r); err != nil {
		if s.fnErr {
			return err
		}
		return fmt.Errorf("walk %q: %w", m.Path, err)
	}
	return nil
}

// scanMbox counts the messages of an mbox, calling fn for each when fn is not
// nil (report and stop may be nil only then).
func scanMbox(r io.Reader, path string, max int64, fn func(Message) error, report func(error)) (int, error) {
	s := mboxScanner{path: path, max: max, fn: fn, report: report, stop: func() bool { return false }}
	err := s.scan(r)
	return s.count, err
}

// mboxScanner splits an mbox stream into messages. It is used by one
// goroutine.
type mboxScanner struct {
	path   string
	max    int64
	fn     func(Message) error // nil: count only, nothing is buffered
	report func(error)
	stop   func() bool
	fnErr  bool // scan's error came from fn
	count  int

	// The message being read.
	active  bool
	start   int64  // offset of its From_ line (or first line)
	from    []byte // its From_ line (at most 1 KiB), nil for text before the first one
	buf     []byte // content so far, unquoted; scratch reused across messages
	size    int64  // content length, also when over the limit and not buffered
	over    bool   // larger than max: not buffered, will be reported
	lastLen int    // length of the last chunk added (the blank line, when stripping)
}

func (s *mboxScanner) scan(r io.Reader) error {
	br := bufio.NewReaderSize(r, mboxBufSize)
	var (
		off       int64
		atStart   = true  // next chunk starts a line
		prevBlank = false // the last complete line was blank
		seenAny   = false // past the blank lines that may open the file
		inFrom    = false // in the rest of a From_ line longer than the buffer
	)
	for {
		chunk, err := br.ReadSlice('\n')
		if len(chunk) > 0 {
			complete := chunk[len(chunk)-1] == '\n'
			lineStart := atStart
			switch {
			case inFrom:
				s.addFrom(chunk)
				inFrom = !complete
			case lineStart && hasFromPrefix(chunk) && (prevBlank || !seenAny):
				if err := s.finish(prevBlank, false); err != nil {
					return err
				}
				if s.stop() {
					return nil
				}
				s.begin(off, chunk, true)
				seenAny = true
				inFrom = !complete
			case !s.active && !seenAny && lineStart && complete && isBlankLine(chunk):
				// blank lines before the first From_ line
			default:
				if !s.active {
					s.begin(off, nil, false)
					seenAny = true
				}
				s.add(chunk, lineStart)
			}
			prevBlank = lineStart && complete && isBlankLine(chunk)
			off += int64(len(chunk))
			atStart = complete
		}
		switch {
		case err == nil || errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if err := s.finish(prevBlank, !atStart); err != nil {
				return err
			}
			return nil
		default:
			return err
		}
	}
}

func isBlankLine(b []byte) bool {
	return len(b) == 1 && b[0] == '\n' || len(b) == 2 && b[0] == '\r' && b[1] == '\n'
}

func (s *mboxScanner) begin(off int64, fromLine []byte, isFrom bool) {
	s.active = true
	s.start = off
	s.from = nil
	if isFrom {
		s.from = []byte{}
		s.addFrom(fromLine)
	}
	s.buf = s.buf[:0]
	s.size = 0
	s.over = false
	s.lastLen = 0
}

func (s *mboxScanner) addFrom(chunk []byte) {
	if s.fn == nil {
		return
	}
	if room := 1024 - len(s.from); room > 0 {
		s.from = append(s.from, chunk[:min(room, len(chunk))]...)
	}
}

// add appends a chunk of the message, removing one level of mboxrd quoting
// (^>+From ) at the start of a line.
func (s *mboxScanner) add(chunk []byte, lineStart bool) {
	if lineStart && len(chunk) > 0 && chunk[0] == '>' {
		j := 1
		for j < len(chunk) && chunk[j] == '>' {
			j++
		}
		if hasFromPrefix(chunk[j:]) {
			chunk = chunk[1:]
		}
	}
	s.size += int64(len(chunk))
	s.lastLen = len(chunk)
	if s.fn == nil || s.over {
		return
	}
	// +2: the blank separator line that finish may strip is still counted.
	if s.size > s.max+2 {
		s.over = true
		s.buf = nil
		return
	}
	s.buf = append(s.buf, chunk...)
}

// finish hands the current message to fn. stripBlank: its last line is the
// blank line that precedes a separator (or ends the file). noFinalNL: the
// file ended in the middle of a line.
func (s *mboxScanner) finish(stripBlank, noFinalNL bool) error {
	if !s.active {
		return nil
	}
	s.active = false
	s.count++
	if s.fn == nil {
		return nil
	}
	if stripBlank && !noFinalNL {
		s.size -= int64(s.lastLen)
		if !s.over {
			s.buf = s.buf[:len(s.buf)-s.lastLen]
		}
	}
	src := fmt.Sprintf("%s:offset %d", s.path, s.start)
	switch {
	case s.over || s.size > s.max:
		s.report(fmt.Errorf("read %s: message of %d bytes is over the %d-byte limit; skipped", src, s.size, s.max))
		return nil
	case s.size == 0:
		s.report(fmt.Errorf("read %s: empty message; skipped", src))
		return nil
	}
	raw := bytes.Clone(s.buf)
	if cap(s.buf) > keepScratch {
		s.buf = nil
	}
	var note string
	if s.from == nil {
		note = `text before the first "From " line (not an mbox?)`
	}
	if noFinalNL {
		note = joinNote(note, "file ends without a final newline (truncated?)")
	}
	if !hasHeaderEnd(raw) {
		note = joinNote(note, "no blank line ends the header (truncated?)")
	}
	msg := Message{
		Raw:          raw,
		Source:       src,
		Flags:        mboxFlags(raw),
		InternalDate: fromLineDate(s.from),
		Note:         note,
	}
	if err := s.fn(msg); err != nil {
		s.fnErr = true
		return err
	}
	return nil
}

// hasHeaderEnd reports whether a blank line ends the header of raw.
func hasHeaderEnd(raw []byte) bool {
	return bytes.HasPrefix(raw, []byte("\n")) || bytes.HasPrefix(raw, []byte("\r\n")) ||
		bytes.Contains(raw, []byte("\n\n")) || bytes.Contains(raw, []byte("\n\r\n"))
}

// fromLineLayouts are the dates found at the end of From_ lines: asctime as
// written by most MDAs, with a zone in a few places, and RFC 5322 style.
var fromLineLayouts = []struct {
	fields int
	layout string
}{
	{5, "Mon Jan 2 15:04:05 2006"},
	{6, "Mon Jan 2 15:04:05 2006 -0700"},
	{6, "Mon Jan 2 15:04:05 -0700 2006"},
	{6, "Mon Jan 2 15:04:05 MST 2006"},
	{5, "Mon Jan 2 15:04 2006"},
	{6, "Mon, 2 Jan 2006 15:04:05 -0700"},
}

// fromLineDate parses the date at the end of a From_ line ("From sender
// Thu Aug 22 12:36:23 2002"); zero when it does not parse. Without a zone the
// time is taken as UTC.
func fromLineDate(line []byte) time.Time {
	if line == nil {
		return time.Time{}
	}
	f := strings.Fields(strings.TrimRight(string(line), "\r\n"))
	if len(f) < 2 || f[0] != "From" {
		return time.Time{}
	}
	f = f[1:]
	for _, l := range fromLineLayouts {
		if len(f) < l.fields+1 { // a sender, then the date
			continue
		}
		if t, err := time.Parse(l.layout, strings.Join(f[len(f)-l.fields:], " ")); err == nil {
			return t
		}
	}
	return time.Time{}
}

// mboxFlags reads the Status, X-Status and X-Mozilla-Status headers that mbox
// clients (c-client, mutt, Thunderbird) keep flags in.
func mboxFlags(raw []byte) []string {
	var fl []string
	h := raw[:min(len(raw), headerPeek)]
	for len(h) > 0 {
		line := h
		if i := bytes.IndexByte(h, '\n'); i >= 0 {
			line, h = h[:i], h[i+1:]
		} else {
			h = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		v := strings.TrimSpace(string(value))
		switch strings.ToLower(string(name)) {
		case "status":
			if strings.ContainsRune(v, 'R') {
				fl = append(fl, `\Seen`)
			}
		case "x-status":
			for _, c := range v {
				switch c {
				case 'A':
					fl = append(fl, `\Answered`)
				case 'F':
					fl = append(fl, `\Flagged`)
				case 'D':
					fl = append(fl, `\Deleted`)
				case 'T':
					fl = append(fl, `\Draft`)
				}
			}
		case "x-mozilla-status":
			bits, err := strconv.ParseUint(v, 16, 32)
			if err != nil {
				continue
			}
			for _, b := range []struct {
				bit  uint64
				flag string
			}{{0x1, `\Seen`}, {0x2, `\Answered`}, {0x4, `\Flagged`}, {0x8, `\Deleted`}, {0x1000, "$Forwarded"}} {
				if bits&b.bit != 0 {
					fl = append(fl, b.flag)
				}
			}
		}
	}
	return sortFlags(fl)
}
