package harvest

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// TestReviewQResyncCapabilitiesBounded: CAPABILITY responses without end,
// each of distinct names, within the line limit: what the QRESYNC client
// keeps of them stays small. It kept every name, for the connection's
// life (caps are not reset per command): 2 million names here cost over
// 100 MB, and a server has the 10-minute command timeout to send more.
func TestReviewQResyncCapabilitiesBounded(t *testing.T) {
	var b strings.Builder
	for line := range 40 {
		b.WriteString("* CAPABILITY")
		for i := range 50_000 {
			fmt.Fprintf(&b, " X%d-%d", line, i)
		}
		b.WriteString("\r\n")
	}
	b.WriteString("* CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN QRESYNC\r\n")
	data := []byte(b.String())
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	q, err := qrParse(data)
	runtime.GC()
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 16<<20 {
		t.Errorf("the heap grew by %d MB holding capabilities (%d kept)", grew>>20, len(q.caps))
	}
	if !q.caps["SASL-IR"] || !q.caps["AUTH=PLAIN"] {
		t.Errorf("the capabilities the client uses are lost: %v", q.caps)
	}
	runtime.KeepAlive(q)
}

// TestReviewQResyncFlagsCanonical: the QRESYNC reader gives a FETCH's
// flags as go-imap does on the main connection (CHANGEDSINCE, the sweep):
// system flags and go-imap's well-known keywords in their canonical case
// (go-imap v2 internal.canonicalFlag), a leading space in the list taken
// as go-imap takes it (emersion/go-imap#633). It kept the server's case,
// so a server that answers "\SEEN" or "$forwarded" had the archive's flags
// flip between the two spellings with each way of asking, each flip a
// change in the flag history and a re-index, and a search for \Seen or
// $Forwarded miss the messages last seen by QRESYNC.
func TestReviewQResyncFlagsCanonical(t *testing.T) {
	in := "* 3 EXISTS\r\n" +
		"* 1 FETCH (UID 1 FLAGS (\\SEEN \\flagged $forwarded $JUNK $notjunk $mdnsent $phishing $important \\Answered \\DRAFT \\deleted Custom) MODSEQ (4))\r\n" +
		"* 2 FETCH (UID 2 FLAGS ( \\Seen) MODSEQ (5))\r\n"
	q, err := qrParse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := map[uint32][]string{
		1: {"$Forwarded", "$Important", "$Junk", "$MDNSent", "$NotJunk", "$Phishing", "Custom",
			`\Answered`, `\Deleted`, `\Draft`, `\Flagged`, `\Seen`},
		2: {`\Seen`},
	}
	if fmt.Sprint(q.res.flags) != fmt.Sprint(want) {
		t.Errorf("flags = %v\nwant    %v", q.res.flags, want)
	}
}
