package imapview

import (
	"bufio"
	"bytes"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// FuzzStoredMessage: whatever bytes a sender mailed, what FETCH computes
// from the stored message neither panics out of the view nor changes the
// whole-message bytes: BODY[] is the stored bytes, a partial is a slice of
// them, ENVELOPE and BODYSTRUCTURE always answer, and a header read stops
// at its block's end within maxHeaderBytes.
func FuzzStoredMessage(f *testing.F) {
	for _, s := range []string{
		"Subject: hi\r\n\r\nbody\r\n",
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\ny\r\n--b--\r\n",
		"no header at all",
		"",
		"X: " + string(bytes.Repeat([]byte("a"), 5000)) + "\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if b := bodySection(raw, &imap.FetchItemBodySection{}); !bytes.Equal(b, raw) {
			t.Fatalf("BODY[] is not the stored bytes")
		}
		p := bodySection(raw, &imap.FetchItemBodySection{Partial: &imap.SectionPartial{Offset: 3, Size: 7}})
		if len(raw) > 3 && !bytes.HasPrefix(raw[3:], p) || len(p) > 7 {
			t.Fatalf("BODY[]<3.7> = %q of %q", p, raw)
		}
		if envelope(raw) == nil || bodyStructure(raw) == nil {
			t.Fatal("ENVELOPE or BODYSTRUCTURE answered nil")
		}
		for _, part := range [][]int{{1}, {2, 1}, {1, 1, 1}} {
			bodySection(raw, &imap.FetchItemBodySection{Part: part})
			bodySection(raw, &imap.FetchItemBodySection{Part: part, Specifier: imap.PartSpecifierHeader})
			binarySection(raw, &imap.FetchItemBinarySection{Part: part})
			binarySectionSize(raw, &imap.FetchItemBinarySectionSize{Part: part})
		}
		br := bufio.NewReader(bytes.NewReader(raw))
		if _, err := readHeader(br); err != nil {
			return
		}
	})
}
