package indexer

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestSortKeysOrder: the keyword sort keys compare as their values do
// (times from before 1970 to far ahead, sizes from 0 up), have one width,
// and clamp outside what they hold instead of wrapping.
func TestSortKeysOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	times := []time.Time{time.Unix(0, 0), time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC), time.Unix(-1, 0), time.Unix(1, 0)}
	for range 2000 {
		times = append(times, time.Unix(rng.Int64N(1<<38)-1<<37, 0))
	}
	for i := range times {
		for j := range times {
			a, b := sortTimeKey(times[i]), sortTimeKey(times[j])
			if len(a) != 11 || (a < b) != times[i].Before(times[j]) || (a == b) != times[i].Equal(times[j]) {
				t.Fatalf("time keys %s (%v) and %s (%v) do not order as the times", a, times[i], b, times[j])
			}
		}
	}
	sizes := []int64{0, 1, 15, 16, 255, 256, 1 << 40}
	for range 2000 {
		sizes = append(sizes, rng.Int64N(1<<43))
	}
	for i := range sizes {
		for j := range sizes {
			a, b := sortSizeKey(sizes[i]), sortSizeKey(sizes[j])
			if len(a) != 11 || (a < b) != (sizes[i] < sizes[j]) {
				t.Fatalf("size keys %s (%d) and %s (%d) do not order as the sizes", a, sizes[i], b, sizes[j])
			}
		}
	}
	if sortSizeKey(-5) != sortSizeKey(0) || sortSizeKey(1<<60) != "fffffffffff" {
		t.Errorf("size keys do not clamp: %s %s", sortSizeKey(-5), sortSizeKey(1<<60))
	}
	if k := sortTimeKey(time.Unix(1<<50, 0)); k != "fffffffffff" {
		t.Errorf("a time past the keys' range: %s", k)
	}
	if k := dayKey(time.Date(2024, 3, 5, 23, 0, 0, 0, time.FixedZone("", -5*3600))); k != "20240305" {
		t.Errorf("day key %s, want the day in the message's own zone", k)
	}
}
