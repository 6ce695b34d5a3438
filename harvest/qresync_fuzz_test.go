package harvest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// qrParse reads every response of data as the QRESYNC connection would,
// stopping at the first error.
func qrParse(data []byte) (*qconn, error) {
	return parseResponses(&qconn{caps: map[string]bool{}, res: qresult{flags: map[uint32][]string{}}}, data)
}

// parseResponses reads every response of data into q, stopping at the
// first error.
func parseResponses(q *qconn, data []byte) (*qconn, error) {
	r := bufio.NewReader(bytes.NewReader(data))
	for {
		line, err := readResponse(r)
		if err == io.EOF {
			return q, nil
		}
		if err != nil {
			return q, err
		}
		if len(line) > maxLineBytes {
			return q, fmt.Errorf("readResponse returned %d bytes, over %d", len(line), maxLineBytes)
		}
		if line[0] != '*' {
			continue
		}
		if err := q.untagged(line); err != nil {
			return q, err
		}
	}
}

func TestQResyncParse(t *testing.T) {
	in := "* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN QRESYNC] ready\r\n" +
		"* ENABLED CONDSTORE QRESYNC\r\n" +
		"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded)\r\n" +
		"* OK [PERMANENTFLAGS ()] Read-only mailbox.\r\n" +
		"* 7 EXISTS\r\n* 0 RECENT\r\n" +
		"* OK [UIDVALIDITY 1796161525] UIDs valid\r\n" +
		"* OK [UIDNEXT 9] Predicted next UID\r\n" +
		"* OK [HIGHESTMODSEQ 20] Highest\r\n" +
		"* VANISHED (EARLIER) 2,5:6\r\n" +
		"* VANISHED 8\r\n" +
		"* 3 FETCH (UID 4 FLAGS (\\Seen $Label) MODSEQ (19))\r\n" +
		"* 1 FETCH (MODSEQ (18) UID 1 FLAGS ())\r\n" +
		"* 2 FETCH (UID 3 BODY[HEADER.FIELDS (SUBJECT)]<0> {12}\r\nSubject: x\r\n FLAGS (\\Flagged) X-GM-LABELS (\"a b\" NIL))\r\n"
	q, err := qrParse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	r := q.res
	if !r.enabled || r.uidValidity != 1796161525 || r.highestModSeq != 20 || r.exists != 7 {
		t.Errorf("parse = %+v", r)
	}
	if want := []UIDRange{{2, 2}, {5, 6}, {8, 8}}; !slices.Equal(r.vanished, want) {
		t.Errorf("vanished = %v, want %v", r.vanished, want)
	}
	want := map[uint32][]string{4: {"$Label", `\Seen`}, 1: nil, 3: {`\Flagged`}}
	if fmt.Sprint(r.flags) != fmt.Sprint(want) {
		t.Errorf("flags = %v, want %v", r.flags, want)
	}
	if !q.caps["SASL-IR"] || !q.caps["AUTH=PLAIN"] {
		t.Errorf("caps = %v", q.caps)
	}
}

// TestQResyncVanishedGenerated: random UID sets, written as servers write
// them, read back as the same ranges.
func TestQResyncVanishedGenerated(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		var want []UIDRange
		var parts []string
		uid := uint32(0)
		for range 1 + rng.IntN(50) {
			uid += 1 + uint32(rng.IntN(1000))
			stop := uid + uint32(rng.IntN(3)*rng.IntN(100))
			want = append(want, UIDRange{uid, stop})
			if stop == uid {
				parts = append(parts, fmt.Sprint(uid))
			} else if rng.IntN(2) == 0 {
				parts = append(parts, fmt.Sprintf("%d:%d", uid, stop))
			} else {
				parts = append(parts, fmt.Sprintf("%d:%d", stop, uid)) // either order is a range
			}
			uid = stop + 1
		}
		in := "* VANISHED (EARLIER) " + strings.Join(parts, ",") + "\r\n"
		q, err := qrParse([]byte(in))
		if err != nil || !slices.Equal(q.res.vanished, want) {
			t.Fatalf("parse(%q) = %v, %v; want %v", in, q.res.vanished, err, want)
		}
	}
}

// FuzzQResyncResponses: whatever a server sends, the reader and parser
// return (no panic), every error is ErrHostile or the end of the input,
// what they keep is within the limits, and every range is valid.
func FuzzQResyncResponses(f *testing.F) {
	for _, s := range []string{
		"* VANISHED (EARLIER) 1:3,5\r\n",
		"* 1 EXISTS\r\n* 1 FETCH (UID 1 FLAGS (\\Seen) MODSEQ (5))\r\n",
		"* OK [HIGHESTMODSEQ 9] x\r\n* OK [UIDVALIDITY 3] y\r\n",
		"* 1 EXISTS\r\n* 1 FETCH (UID 2 BODY[] {5}\r\nhello FLAGS ())\r\n",
		"* ENABLED QRESYNC\r\n",
		"* 1 EXISTS\r\n* 1 FETCH (UID 1 X ((((a)))) FLAGS (\\Seen))\r\n",
		"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] hi\r\n",
		"* BYE\r\n",
		"* BYE shutting down\r\n* 1 EXISTS\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		q, err := qrParse(data)
		if err != nil && !errors.Is(err, ErrHostile) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, errBye) {
			t.Fatalf("error %v is neither ErrHostile, BYE nor a short read", err)
		}
		r := q.res
		if len(r.vanished) > maxVanishedRanges || r.flagBytes > maxFlagBytes || r.fetches > r.exists+extraFetchResponses+1 {
			t.Fatalf("over the limits: %d ranges, %d flag bytes, %d fetches for %d messages", len(r.vanished), r.flagBytes, r.fetches, r.exists)
		}
		for _, v := range r.vanished {
			if v.Start == 0 || v.Start > v.Stop {
				t.Fatalf("bad range %v", v)
			}
		}
		for uid, fl := range r.flags {
			if uid == 0 || len(fl) > maxFlagsPerMsg || !slices.IsSorted(fl) {
				t.Fatalf("flags of UID %d: %q", uid, fl)
			}
		}
	})
}
