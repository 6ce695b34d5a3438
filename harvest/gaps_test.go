package harvest

import (
	"math/rand/v2"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// TestUIDSetOps checks the range operations of gap checks against maps of
// UIDs, on random sets.
func TestUIDSetOps(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	gen := func() (uidSet, map[uint32]bool) {
		m := map[uint32]bool{}
		var b uidSetBuilder
		for range r.IntN(40) {
			lo := uint32(1 + r.IntN(200))
			hi := lo + uint32(r.IntN(10))
			for u := lo; u <= hi; u++ {
				m[u] = true
			}
			if err := b.add(imap.UID(lo), imap.UID(hi)); err != nil {
				t.Fatal(err)
			}
		}
		return b.set(), m
	}
	for i := range 2000 {
		s, ms := gen()
		u, mu := gen()
		in, sub := s.intersect(u), s.subtract(u)
		for x := uint32(1); x < 220; x++ {
			if got, want := in.contains(imap.UID(x)), ms[x] && mu[x]; got != want {
				t.Fatalf("case %d: %v intersect %v contains %d = %v, want %v", i, s, u, x, got, want)
			}
			if got, want := sub.contains(imap.UID(x)), ms[x] && !mu[x]; got != want {
				t.Fatalf("case %d: %v subtract %v contains %d = %v, want %v", i, s, u, x, got, want)
			}
		}
		if s.count() != len(ms) {
			t.Fatalf("case %d: count(%v) = %d, want %d", i, s, s.count(), len(ms))
		}
		for j := 1; j < len(s); j++ {
			if s[j].Start <= s[j-1].Stop+1 {
				t.Fatalf("case %d: %v not merged", i, s)
			}
		}
	}
}
