package harvest

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// gmParse reads data's responses as the Gmail side connection does.
func gmParse(data []byte) (*qconn, error) {
	return parseResponses(&qconn{caps: map[string]bool{}, gmail: true,
		res: qresult{flags: map[uint32][]string{}, gmail: map[uint32]*gmailInfo{}}}, data)
}

// TestGmailParse reads FETCH answers in the forms Google's documentation
// shows (system labels as \Inbox, quoted labels, an empty list) and the
// forms IMAP allows besides (a literal, modified UTF-7, items in any
// order, items the harvester does not ask for).
func TestGmailParse(t *testing.T) {
	in := "* 3 EXISTS\r\n" +
		"* 1 FETCH (X-GM-THRID 1266894439832287888 X-GM-MSGID 1278455344230334865 UID 4 " +
		"X-GM-LABELS (\\Inbox \\Sent Important \"Muy Importante\") FLAGS (\\Seen) INTERNALDATE \" 2-Jan-2006 15:04:05 -0700\" RFC822.SIZE 120)\r\n" +
		"* 2 FETCH (UID 5 X-GM-MSGID 18446744073709551615 X-GM-THRID 1 X-GM-LABELS () FLAGS () INTERNALDATE \"17-Jul-1996 02:44:25 +0000\")\r\n" +
		"* 3 FETCH (UID 6 X-GM-MSGID 7 X-GM-THRID 7 X-GM-LABELS ({5}\r\na\"b c &AOk-t&AOk- [Gmail]/Starred) FLAGS (\\Flagged $Work) MODSEQ (9) ENVELOPE NIL)\r\n"
	q, err := gmParse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	g := q.res.gmail
	want := map[uint32]gmailInfo{
		4: {Gmail: Gmail{MsgID: 1278455344230334865, ThrID: 1266894439832287888, Labels: []string{`\Inbox`, `\Sent`, "Important", "Muy Importante"}},
			flags: []string{`\Seen`}, internalDate: time.Date(2006, 1, 2, 15, 4, 5, 0, time.FixedZone("", -7*3600)), size: 120},
		5: {Gmail: Gmail{MsgID: 1<<64 - 1, ThrID: 1, Labels: nil}, flags: []string{}, internalDate: time.Date(1996, 7, 17, 2, 44, 25, 0, time.UTC)},
		6: {Gmail: Gmail{MsgID: 7, ThrID: 7, Labels: []string{`a"b c`, "été", "[Gmail]/Starred"}}, flags: []string{"$Work", `\Flagged`}},
	}
	if len(g) != len(want) {
		t.Fatalf("%d messages parsed, want %d", len(g), len(want))
	}
	for uid, w := range want {
		got := g[uid]
		if got == nil || got.MsgID != w.MsgID || got.ThrID != w.ThrID || !slices.Equal(got.Labels, w.Labels) ||
			!slices.Equal(got.flags, w.flags) && !(len(got.flags) == 0 && len(w.flags) == 0) || !got.internalDate.Equal(w.internalDate) || got.size != w.size {
			t.Errorf("UID %d = %+v, want %+v", uid, got, w)
		}
	}
}

// TestGmailParseRefuses: what is not an answer to the side connection's
// FETCH is refused as ErrHostile, not guessed at.
func TestGmailParseRefuses(t *testing.T) {
	for _, line := range []string{
		"* 1 FETCH (UID 1 X-GM-MSGID 18446744073709551616)", // over 64 bits
		"* 1 FETCH (UID 1 X-GM-MSGID -1)",
		"* 1 FETCH (UID 1 X-GM-LABELS (\\))",
		"* 1 FETCH (UID 1 X-GM-LABELS (a b)",
		"* 1 FETCH (UID 1 X-GM-LABELS \"a\")",
		"* 1 FETCH (UID 1 INTERNALDATE \"yesterday\")",
		"* 1 FETCH (X-GM-MSGID 5)", // no UID
	} {
		if _, err := gmParse([]byte("* 5 EXISTS\r\n" + line + "\r\n")); err == nil {
			t.Errorf("%q parsed", line)
		}
	}
}

// mutf7 encodes s in modified UTF-7 (RFC 3501 section 5.1.3), written
// from the RFC for this test, so that decodeMUTF7 is checked against an
// encoder of its own and not only against hand-written cases.
func mutf7(s string) string {
	var out strings.Builder
	var run []rune
	flush := func() {
		if len(run) == 0 {
			return
		}
		u := utf16.Encode(run)
		b := make([]byte, 2*len(u))
		for i, c := range u {
			binary.BigEndian.PutUint16(b[2*i:], c)
		}
		out.WriteString("&" + strings.ReplaceAll(base64.RawStdEncoding.EncodeToString(b), "/", ",") + "-")
		run = run[:0]
	}
	for _, r := range s {
		switch {
		case r == '&':
			flush()
			out.WriteString("&-")
		case r >= 0x20 && r <= 0x7e:
			flush()
			out.WriteRune(r)
		default:
			run = append(run, r)
		}
	}
	flush()
	return out.String()
}

// TestDecodeMUTF7Generated decodes generated label names (ASCII, "&",
// Latin, CJK, emoji beyond the BMP, in runs) encoded by mutf7.
func TestDecodeMUTF7Generated(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 1))
	alphabet := []rune("ab /&-éÜß漢字ж🙂𝄞[]\\\"")
	for range 5000 {
		n := rng.IntN(12)
		rs := make([]rune, n)
		for i := range rs {
			rs[i] = alphabet[rng.IntN(len(alphabet))]
		}
		s := string(rs)
		enc := mutf7(s)
		if got := decodeMUTF7(enc); got != s {
			t.Fatalf("decode(%q) = %q, want %q", enc, got, s)
		}
	}
	// Not modified UTF-7: kept as sent.
	for _, s := range []string{"&", "a&b", "&AOk", "&!!-", "&AGE-" /* "a" encoded */, "&2D0-" /* a lone surrogate */} {
		if got := decodeMUTF7(s); got != s {
			t.Errorf("decode(%q) = %q, want it unchanged", s, got)
		}
	}
}

// FuzzGmailFetch: any response the side connection may read parses or
// fails, within bounds, and every label it keeps is valid UTF-8 or what
// the server sent.
func FuzzGmailFetch(f *testing.F) {
	f.Add([]byte("* 1 EXISTS\r\n* 1 FETCH (UID 1 X-GM-MSGID 5 X-GM-THRID 6 X-GM-LABELS (\\Inbox \"a b\" &AOk-) FLAGS (\\Seen) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\")\r\n"))
	f.Add([]byte("* 1 EXISTS\r\n* 1 FETCH (UID 1 X-GM-LABELS ({3}\r\nabc))\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		q, _ := gmParse(data)
		// What the server sent, its quoted strings' escapes undone ("\\x"
		// is x): a label that is not modified UTF-7 is kept as sent.
		var sent []byte
		for i := 0; i < len(data); i++ {
			if data[i] == '\\' && i+1 < len(data) {
				i++
			}
			sent = append(sent, data[i])
		}
		n := 0
		for _, in := range q.res.gmail {
			for _, l := range in.Labels {
				n += len(l)
				if !utf8.ValidString(l) && !bytes.Contains(data, []byte(l)) && !bytes.Contains(sent, []byte(l)) {
					t.Fatalf("label %q neither decoded nor as sent", l)
				}
			}
		}
		if n > len(data)*4 {
			t.Fatalf("%d bytes of labels from %d bytes of input", n, len(data))
		}
	})
}
