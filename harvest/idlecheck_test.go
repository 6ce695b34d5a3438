package harvest

import (
	"log/slog"
	"testing"
	"time"
)

// TestIdleProbe: the verdicts of idlecheck.go from sequences of IDLE ends.
func TestIdleProbe(t *testing.T) {
	type end struct {
		announced, newMail bool
		idled              time.Duration
	}
	long := 15 * time.Second
	tests := []struct {
		name string
		ends []end
		want idleVerdict
		wait time.Duration // limit(time.Minute) afterwards
	}{
		{"nothing yet", nil, idleUnknown, idleLearn},
		{"quiet ends decide nothing", []end{{false, false, long}, {true, false, long}}, idleUnknown, idleLearn},
		{"announced mail: live", []end{{true, true, time.Second}}, idleLive, time.Minute},
		{"one unannounced find: suspect", []end{{false, true, long}}, idleSuspect, idleCheck},
		{"two: polled", []end{{false, true, long}, {false, true, idleCheck}}, idlePolled, idleCheck},
		{"suspect, then announced: live", []end{{false, true, long}, {true, true, time.Second}}, idleLive, time.Minute},
		{"polled stays polled", []end{{false, true, long}, {false, true, long}, {true, true, long}}, idlePolled, idleCheck},
		{"too short an IDLE is not judged", []end{{false, true, 100 * time.Millisecond}}, idleUnknown, idleLearn},
	}
	log := slog.New(slog.DiscardHandler)
	for _, tt := range tests {
		var p idleProbe
		for _, e := range tt.ends {
			p.saw(log, "INBOX", e.announced, e.newMail, e.idled)
		}
		if p.verdict != tt.want || p.limit(time.Minute) != tt.wait {
			t.Errorf("%s: verdict %d, limit %v; want %d, %v", tt.name, p.verdict, p.limit(time.Minute), tt.want, tt.wait)
		}
	}
}
