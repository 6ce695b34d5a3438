package harvest_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"mailvault/harvest"
	"mailvault/harvest/harvesttest"
	"mailvault/service"
)

// TestHostileGapCheckUIDsAboveUIDNext: a server without ESEARCH answering
// the gap check's FETCH 1:* (UID) with a UID at or above its UIDNEXT gets
// a clear ErrHostile, and nothing is archived from it.
func TestHostileGapCheckUIDsAboveUIDNext(t *testing.T) {
	msgs := hsMessages(3)
	srv := hsStart(t, msgs, func(s *hsSession, tag, cmd, args string) bool {
		if cmd != "FETCH" || !strings.Contains(args, "UID") {
			return false
		}
		s.printf("* 1 FETCH (UID 1)\r\n* 2 FETCH (UID 4000000000)\r\n%s OK done\r\n", tag)
		return true
	})
	a := harvesttest.OpenArchive(t, t.TempDir())
	acct := harvest.Account{Name: "mallory", Host: "127.0.0.1", Port: srv.port(), TLS: "none", Username: "u", Password: "p"}
	h := harvest.New(acct, service.NewSink(a.Archive), hsOptions())
	_, err := h.CheckGaps(context.Background())
	if !errors.Is(err, harvest.ErrHostile) || !strings.Contains(err.Error(), "UIDNEXT") {
		t.Fatalf("CheckGaps = %v; want ErrHostile naming UIDNEXT", err)
	}
	if st := harvesttest.Status(t, a); st["mallory/INBOX"].Occurrences != 0 {
		t.Errorf("archived %d messages from a hostile answer", st["mallory/INBOX"].Occurrences)
	}
}
