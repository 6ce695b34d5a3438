package harvest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"
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

// TestReviewQResyncBye: a server that will not take the second connection
// says so with BYE (RFC 9051 section 7.1.5: one of the three greetings;
// or at login, past a per-user limit). That is a refusal, not a broken
// protocol: qresync's error must not be ErrHostile, so that the resync
// falls back to CHANGEDSINCE on the main connection as the package says.
// It was ErrHostile, and the account's sync failed at every attempt for as
// long as the server refused.
func TestReviewQResyncBye(t *testing.T) {
	for _, tc := range []struct{ name, script string }{
		{"greeting", "* BYE Too many connections from your IP address\r\n"},
		{"login", "* OK [CAPABILITY IMAP4rev1 QRESYNC] hi\r\n\x00* BYE [UNAVAILABLE] too many sessions\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				r := bufio.NewReader(c)
				for i, part := range strings.Split(tc.script, "\x00") {
					if i > 0 {
						if _, err := r.ReadString('\n'); err != nil {
							return
						}
					}
					io.WriteString(c, part)
				}
				time.Sleep(200 * time.Millisecond)
			}()
			port := ln.Addr().(*net.TCPAddr).Port
			h := New(Account{Name: "a", Host: "127.0.0.1", Port: port, TLS: "none", Username: "u", Password: "p"}, nil, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err = h.qresync(ctx, "INBOX", 5, 10, 3)
			if err == nil {
				t.Fatal("qresync after BYE: no error")
			}
			if errors.Is(err, ErrHostile) {
				t.Errorf("BYE is ErrHostile, so the resync does not fall back: %v", err)
			}
		})
	}
}
