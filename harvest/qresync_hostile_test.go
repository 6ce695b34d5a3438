package harvest_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// qrHostile is a hostile server with CONDSTORE and QRESYNC: HIGHESTMODSEQ
// is 10 until bump, then 11, and the QRESYNC EXAMINE is answered with
// bad (until good is set) or, once good, with UID 2 vanished.
type qrHostile struct {
	bumped, good atomic.Bool
	bad          string // the untagged responses of a bad QRESYNC EXAMINE
	qresyncs     atomic.Int32
	changedSince atomic.Int32
}

func (q *qrHostile) hook(s *hsSession, tag, cmd, args string) bool {
	uids, _, uv := s.srv.state()
	modseq, exists := 10, len(uids)
	if q.bumped.Load() {
		modseq, exists = 11, len(uids)-1 // UID 2 went: the harvester asks QRESYNC
	}
	up := strings.ToUpper(args)
	switch {
	case cmd == "CAPABILITY":
		s.printf("* CAPABILITY IMAP4rev1 IDLE CONDSTORE QRESYNC ESEARCH\r\n%s OK done\r\n", tag)
	case cmd == "ENABLE":
		s.printf("* ENABLED QRESYNC\r\n%s OK enabled\r\n", tag)
	case cmd == "STATUS":
		s.printf("* STATUS INBOX (MESSAGES %d UIDNEXT %d UIDVALIDITY %d HIGHESTMODSEQ %d)\r\n%s OK done\r\n",
			exists, len(uids)+1, uv, modseq, tag)
	case (cmd == "EXAMINE" || cmd == "SELECT") && strings.Contains(up, "QRESYNC"):
		q.qresyncs.Add(1)
		s.printf("* %d EXISTS\r\n* OK [UIDVALIDITY %d] ok\r\n* OK [UIDNEXT %d] ok\r\n* OK [HIGHESTMODSEQ %d] ok\r\n",
			exists, uv, len(uids)+1, modseq)
		if q.good.Load() {
			s.printf("* VANISHED (EARLIER) 2\r\n")
		} else {
			s.printf("%s", q.bad)
		}
		s.printf("%s OK [READ-ONLY] done\r\n", tag)
	case cmd == "EXAMINE" || cmd == "SELECT":
		s.printf("* %d EXISTS\r\n* OK [UIDVALIDITY %d] ok\r\n* OK [UIDNEXT %d] ok\r\n* OK [HIGHESTMODSEQ %d] ok\r\n%s OK [READ-ONLY] done\r\n",
			exists, uv, len(uids)+1, modseq, tag)
	case cmd == "UID FETCH" && strings.Contains(up, "CHANGEDSINCE"):
		q.changedSince.Add(1)
		s.printf("%s OK done\r\n", tag)
	default:
		return false
	}
	return true
}

// TestHostileQResync: a server whose QRESYNC answer breaks the protocol
// (bad VANISHED or MODSEQ data, a FETCH without UID, EXPUNGE after
// ENABLE QRESYNC, VANISHED without end) gets a clear error on the
// account, and nothing of that answer is recorded: no occurrence is
// marked expunged. Once the server answers well, its VANISHED is taken.
func TestHostileQResync(t *testing.T) {
	many := func(lines, per int) string {
		var b strings.Builder
		for range lines {
			b.WriteString("* VANISHED (EARLIER) ")
			for i := range per {
				if i > 0 {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, "%d", 2*i+1)
			}
			b.WriteString("\r\n")
		}
		return b.String()
	}
	for _, tc := range []struct {
		name, bad, want string
	}{
		{"vanished-star", "* VANISHED (EARLIER) 2:*\r\n", "want a number"},
		{"vanished-zero", "* VANISHED (EARLIER) 0:3\r\n", "want a number above 0"},
		{"vanished-junk", "* VANISHED (EARLIER) 2 junk\r\n", "want the end of the response"},
		{"vanished-overflow", "* VANISHED 4294967296\r\n", "want a number up to"},
		{"modseq-negative", "* 1 FETCH (UID 1 FLAGS (\\Seen) MODSEQ (-5))\r\n", "want a number"},
		{"modseq-huge", "* 1 FETCH (UID 1 FLAGS (\\Seen) MODSEQ (9223372036854775808))\r\n", "want a number up to"},
		{"fetch-no-uid", "* 1 FETCH (FLAGS (\\Deleted) MODSEQ (11))\r\n", "FETCH without UID"},
		{"expunge", "* 2 EXPUNGE\r\n", "EXPUNGE after ENABLE QRESYNC"},
		{"vanished-endless", many(8, 140_000), "VANISHED ranges"},
		{"line-endless", "* VANISHED (EARLIER) 1" + strings.Repeat(",1", 600_000) + "\r\n", "longer than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := &qrHostile{bad: tc.bad}
			msgs := hsMessages(3)
			srv := hsStart(t, msgs, q.hook)
			r := hsHarvest(t, srv, hsOptions())
			r.waitFor(10*time.Second, "archived", func() bool { return len(r.archived()) == 3 })
			r.waitFor(10*time.Second, "the first sweep recorded", func() bool { return r.h.Status().Counters.Sweeps > 0 })
			q.bumped.Store(true)
			r.sawError(10*time.Second, tc.want)
			if !strings.Contains(r.log.String(), "server broke the protocol") {
				t.Errorf("the error is not ErrHostile:\n%s", r.log.String())
			}
			for _, o := range hsOccurrences(t, r) {
				if o.Expunged != "" {
					t.Errorf("UID %d marked expunged by a bad answer", o.UID)
				}
			}
			if n := q.changedSince.Load(); n != 0 {
				t.Errorf("%d CHANGEDSINCE fetches: a hostile QRESYNC answer must not fall back", n)
			}
			q.good.Store(true)
			r.waitFor(10*time.Second, "UID 2 expunged once the server answers well", func() bool {
				for _, o := range hsOccurrences(t, r) {
					if o.UID == 2 {
						return o.Expunged != ""
					}
				}
				return false
			})
			for _, o := range hsOccurrences(t, r) {
				if (o.Expunged != "") != (o.UID == 2) {
					t.Errorf("UID %d: expunged_at %q", o.UID, o.Expunged)
				}
			}
			r.check(epoch7(msgs), nil, 64<<20)
		})
	}
}

// hsOccurrences lists the run's archived occurrences.
func hsOccurrences(t *testing.T, r *hsRun) []harvestOcc {
	t.Helper()
	occs, err := r.a.Occurrences(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := make([]harvestOcc, len(occs))
	for i, o := range occs {
		out[i] = harvestOcc{UID: o.UID, Expunged: o.Expunged}
	}
	return out
}

type harvestOcc struct {
	UID      uint32
	Expunged string
}
