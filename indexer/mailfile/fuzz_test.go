package mailfile

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
)

// writeMboxrd writes messages as an mboxrd file: a From_ line, the message
// with ^>*From lines quoted one level more, a final newline when missing, and
// a blank line.
func writeMboxrd(msgs [][]byte) []byte {
	var b bytes.Buffer
	for _, m := range msgs {
		b.WriteString("From fuzz@example.org Thu Jan  1 00:00:00 1970\n")
		for line := range bytes.Lines(m) {
			if i := bytes.IndexFunc(line, func(r rune) bool { return r != '>' }); i >= 0 && hasFromPrefix(line[i:]) {
				b.WriteByte('>')
			}
			b.Write(line)
		}
		if !bytes.HasSuffix(m, []byte("\n")) {
			b.WriteByte('\n')
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func withNL(m []byte) []byte {
	if bytes.HasSuffix(m, []byte("\n")) {
		return m
	}
	return append(bytes.Clone(m), '\n')
}

// parseMbox runs the scanner over data; it fails the test on a scan error.
func parseMbox(t *testing.T, data []byte, max int64) ([]Message, []error) {
	t.Helper()
	var msgs []Message
	var errs []error
	_, err := scanMbox(bytes.NewReader(data), "fuzz", max, func(m Message) error {
		msgs = append(msgs, m)
		return nil
	}, func(err error) { errs = append(errs, err) })
	if err != nil {
		t.Fatalf("scanMbox(%q) = %v", data, err)
	}
	return msgs, errs
}

func FuzzMbox(f *testing.F) {
	for _, s := range []string{
		"",
		"From a Thu Aug 22 12:36:23 2002\nSubject: one\n\nbody\n\nFrom b\nSubject: two\n\n>From x\n",
		"From a\r\nSubject: one\r\n\r\n>>From x\r\n\r\nFrom b\r\nX: y\r\n",
		"Subject: stray\n\nFrom a\n\nFrom b\nSubj",
		"\n\nFrom a\n\n\n\nFrom \n",
		"a\x00From b\x00\n\x00>From c\n\n",
		strings.Repeat(">", 100) + "From x\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const max = 1 << 20

		// 1. Any input: no panic, Count agrees, offsets increase, messages
		// are non-empty and not larger than the input.
		msgs, errs := parseMbox(t, data, max)
		n, err := scanMbox(bytes.NewReader(data), "fuzz", max, nil, nil)
		if err != nil || n != len(msgs)+len(errs) {
			t.Fatalf("count = %d, %v; walk gave %d messages and %d errors", n, err, len(msgs), len(errs))
		}
		last := int64(-1)
		total := 0
		for _, m := range msgs {
			off, err := strconv.ParseInt(strings.TrimPrefix(m.Source, "fuzz:offset "), 10, 64)
			if err != nil || off <= last || off >= int64(len(data)) {
				t.Fatalf("Source %q after offset %d in %d bytes", m.Source, last, len(data))
			}
			last = off
			if len(m.Raw) == 0 {
				t.Fatalf("empty Raw at %s", m.Source)
			}
			total += len(m.Raw)
		}
		if total > len(data) {
			t.Fatalf("messages hold %d bytes, input %d", total, len(data))
		}

		// 2. Round trip: what was read, written as mboxrd and read again, is
		// the same (with a final newline added where it was missing).
		raws := make([][]byte, len(msgs))
		for i, m := range msgs {
			raws[i] = m.Raw
		}
		checkRoundTrip(t, raws)

		// 3. Arbitrary messages (the input cut at NUL bytes) survive
		// mboxrd, and two mbox files concatenated read as both in turn.
		var pieces [][]byte
		for p := range bytes.SplitSeq(data, []byte{0}) {
			if len(p) > 0 {
				pieces = append(pieces, p)
			}
		}
		checkRoundTrip(t, pieces)
		half := len(pieces) / 2
		a, _ := parseMbox(t, writeMboxrd(pieces[:half]), max)
		b, _ := parseMbox(t, writeMboxrd(pieces[half:]), max)
		ab, _ := parseMbox(t, append(writeMboxrd(pieces[:half]), writeMboxrd(pieces[half:])...), max)
		if len(ab) != len(a)+len(b) {
			t.Fatalf("concatenation: %d messages, want %d + %d", len(ab), len(a), len(b))
		}
		for i, m := range append(a, b...) {
			if !bytes.Equal(m.Raw, ab[i].Raw) {
				t.Fatalf("concatenation: message %d = %q, want %q", i, ab[i].Raw, m.Raw)
			}
		}
	})
}

func checkRoundTrip(t *testing.T, raws [][]byte) {
	t.Helper()
	enc := writeMboxrd(raws)
	got, errs := parseMbox(t, enc, 1<<30)
	if len(errs) != 0 || len(got) != len(raws) {
		t.Fatalf("round trip of %d messages: got %d, errors %v\nmbox %q", len(raws), len(got), errs, enc)
	}
	for i, r := range raws {
		if want := withNL(r); !bytes.Equal(got[i].Raw, want) {
			t.Fatalf("round trip message %d = %q, want %q\nmbox %q", i, got[i].Raw, want, enc)
		}
		if strings.Contains(got[i].Note, "final newline") || strings.Contains(got[i].Note, "before the first") {
			t.Fatalf("round trip message %d: Note %q", i, got[i].Note)
		}
	}
}
