package harvest_test

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestReviewESearchWithoutUID: a server with CONDSTORE and ESEARCH but no
// QRESYNC answers UID SEARCH RETURN (ALL) ALL with an ESEARCH that lacks
// the "UID" marker (RFC 4731 wants it). go-imap then gives the set as a
// SeqSet; resync's `set, _ := data.All.(imap.UIDSet)` makes that an empty
// UID set with Listed true, and the catalog marks every live occurrence
// expunged although the server named UIDs 1 and 3 as present. Only UID 2
// went; nothing else may be recorded expunged. (Found by a review; the
// harvester now sweeps when the answer is no UID set.)
func TestReviewESearchWithoutUID(t *testing.T) {
	var bumped atomic.Bool
	msgs := hsMessages(3)
	hook := func(s *hsSession, tag, cmd, args string) bool {
		uids, _, uv := s.srv.state()
		modseq, exists := 10, len(uids)
		if bumped.Load() {
			modseq, exists = 11, len(uids)-1
		}
		up := strings.ToUpper(args)
		switch {
		case cmd == "CAPABILITY":
			s.printf("* CAPABILITY IMAP4rev1 IDLE CONDSTORE ESEARCH\r\n%s OK done\r\n", tag)
		case cmd == "STATUS":
			s.printf("* STATUS INBOX (MESSAGES %d UIDNEXT %d UIDVALIDITY %d HIGHESTMODSEQ %d)\r\n%s OK done\r\n",
				exists, len(uids)+1, uv, modseq, tag)
		case cmd == "EXAMINE" || cmd == "SELECT":
			s.printf("* %d EXISTS\r\n* OK [UIDVALIDITY %d] ok\r\n* OK [UIDNEXT %d] ok\r\n* OK [HIGHESTMODSEQ %d] ok\r\n%s OK [READ-ONLY] done\r\n",
				exists, uv, len(uids)+1, modseq, tag)
		case cmd == "UID FETCH" && strings.Contains(up, "CHANGEDSINCE"):
			s.printf("%s OK done\r\n", tag)
		case cmd == "UID SEARCH" && bumped.Load():
			s.printf("* ESEARCH (TAG \"%s\") ALL 1,3\r\n%s OK done\r\n", tag, tag)
		default:
			return false
		}
		return true
	}
	srv := hsStart(t, msgs, hook)
	r := hsHarvest(t, srv, hsOptions())
	r.waitFor(10*time.Second, "archived", func() bool { return len(r.archived()) == 3 })
	r.waitFor(10*time.Second, "the first sweep recorded", func() bool { return r.h.Status().Counters.Sweeps > 0 })
	sweeps := r.h.Status().Counters.Sweeps
	bumped.Store(true)
	// The answer is no UID set: the harvester sweeps instead of trusting it.
	r.waitFor(10*time.Second, "a sweep instead of the untrusted answer", func() bool { return r.h.Status().Counters.Sweeps > sweeps })
	time.Sleep(500 * time.Millisecond)
	for _, o := range hsOccurrences(t, r) {
		if o.UID != 2 && o.Expunged != "" {
			t.Errorf("UID %d marked expunged; the server listed it present", o.UID)
		}
	}
}
