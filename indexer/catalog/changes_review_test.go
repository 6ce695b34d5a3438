package catalog

import (
	"context"
	"testing"
	"time"
)

// TestReviewChangesOverlappingVanished: a hostile QRESYNC answer of the
// harvester's largest size (2^20 VANISHED ranges), every one of them
// 1:4294967295, marks each live occurrence expunged once, and costs what
// one range costs, not a query and a copy of every live id per range
// (which, on 2,000 occurrences, was 2^20 queries and 2 billion ids held).
func TestReviewChangesOverlappingVanished(t *testing.T) {
	flags := map[uint32][]string{}
	for uid := uint32(1); uid <= 2000; uid++ {
		flags[uid] = []string{`\Seen`}
	}
	c, mb := changesFixture(t, flags)
	vanished := make([]UIDRange, 1<<20)
	for i := range vanished {
		vanished[i] = UIDRange{1, 1<<32 - 1}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	begin := time.Now()
	expunged, _, _, err := c.Changes(ctx, mb.ID, 5, EpochChanges{Vanished: vanished, ModSeq: 9, Source: FlagSourceQResync})
	if err != nil {
		t.Fatalf("after %v: %v", time.Since(begin), err)
	}
	if expunged != 2000 {
		t.Errorf("expunged %d, want 2000", expunged)
	}
	if d := time.Since(begin); d > 10*time.Second {
		t.Errorf("took %v", d)
	}
	// Disjoint ranges, many more than live occurrences: each live
	// occurrence inside one is marked, the others stay.
	c2, mb2 := changesFixture(t, flags)
	var odd []UIDRange
	for u := uint32(1); u < 1<<21; u += 2 {
		odd = append(odd, UIDRange{u, u})
	}
	expunged, _, _, err = c2.Changes(context.Background(), mb2.ID, 5, EpochChanges{Vanished: odd, ModSeq: 9, Source: FlagSourceQResync})
	if err != nil {
		t.Fatal(err)
	}
	if expunged != 1000 {
		t.Errorf("odd UIDs: expunged %d, want 1000", expunged)
	}
	occs, err := c2.Occurrences(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range occs {
		if (o.ExpungedAt != "") != (o.UID%2 == 1) {
			t.Errorf("UID %d: expunged_at %q", o.UID, o.ExpungedAt)
		}
	}
}
