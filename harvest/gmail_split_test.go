package harvest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

// knownSink is a Sink (memSink) that knows some X-GM-MSGIDs, with sizes.
type knownSink struct {
	*memSink
	known map[uint64]int64
}

func (s knownSink) GmailKnown(_ context.Context, _ string, ids []uint64) (map[uint64]int64, error) {
	out := map[uint64]int64{}
	for _, id := range ids {
		if n, ok := s.known[id]; ok {
			out[id] = n
		}
	}
	return out, nil
}

// TestGmailSplitChecksSize: a message is taken as known, and not
// downloaded, only when its X-GM-MSGID is known with the size the server
// gives it now; another size (a server giving a UID another message's
// ID), no RFC822.SIZE, no X-GM-MSGID or no answer at all for the UID all
// mean a download.
func TestGmailSplitChecksSize(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	go func() {
		defer server.Close()
		r := bufio.NewReader(server)
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		tag, _, _ := strings.Cut(line, " ")
		fmt.Fprint(server, "* 1 FETCH (UID 1 X-GM-MSGID 100 X-GM-THRID 1 X-GM-LABELS () FLAGS (\\Seen) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" RFC822.SIZE 50)\r\n"+
			"* 2 FETCH (UID 2 X-GM-MSGID 200 X-GM-THRID 1 X-GM-LABELS () FLAGS () INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" RFC822.SIZE 51)\r\n"+
			"* 3 FETCH (UID 3 X-GM-MSGID 300 X-GM-THRID 1 X-GM-LABELS () FLAGS () INTERNALDATE \"17-Jul-1996 02:44:25 -0700\")\r\n"+
			"* 4 FETCH (UID 4 X-GM-THRID 1 FLAGS () RFC822.SIZE 9)\r\n"+
			tag+" OK done\r\n")
	}()
	tc := &timeoutConn{Conn: client}
	q := &qconn{c: tc, tc: tc, r: bufio.NewReader(tc), caps: map[string]bool{}, gmail: true,
		res: qresult{flags: map[uint32][]string{}, exists: 5, existsSeen: true}, stop: func() bool { return true }}
	g := &gmailConn{q: q, mb: "[Gmail]/All Mail"}
	sink := knownSink{memSink: newMemSink(), known: map[uint64]int64{100: 50, 200: 50, 300: 40, 400: 9}}
	h := New(Account{Name: "alice"}, sink, &Options{ReadTimeout: 5 * time.Second})
	known, download, _ := h.gmailSplit(context.Background(), &g, "[Gmail]/All Mail", 7, []imap.UID{1, 2, 3, 4, 5})
	if g == nil {
		t.Fatal("the side connection was given up")
	}
	if len(known) != 1 || known[0].UID != 1 || known[0].Raw != nil || known[0].Gmail == nil || known[0].Gmail.MsgID != 100 {
		t.Fatalf("known = %+v; want UID 1 alone (X-GM-MSGID 100, same size)", known)
	}
	if fmt.Sprint(download) != "[2 3 4 5]" {
		t.Fatalf("download = %v; want 2 (another size), 3 (no size), 4 (no X-GM-MSGID), 5 (no answer)", download)
	}
}
