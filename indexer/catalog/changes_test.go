package catalog

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// changesFixture makes a catalog with one mailbox epoch of uids, each
// with flags, one message per occurrence.
func changesFixture(t *testing.T, flags map[uint32][]string) (*Catalog, Mailbox) {
	t.Helper()
	ctx := context.Background()
	c, err := Open(filepath.Join(t.TempDir(), "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	mb, err := c.EnsureMailbox(ctx, "alice", "INBOX", SourceIMAP, 5)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for uid, fl := range flags {
		id, err := tx.InsertMessage(ctx, &Message{SHA256: [32]byte{byte(uid), byte(uid >> 8), 1}, Size: 1})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.InsertOccurrence(ctx, &Occurrence{MailboxID: mb.ID, UIDValidity: 5, UID: uid, MessageID: id, Size: 1, Flags: fl}); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return c, mb
}

// occState is "uid flags [gone]" per occurrence, in UID order.
func occState(t *testing.T, c *Catalog) string {
	t.Helper()
	occs, err := c.Occurrences(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, o := range occs {
		fmt.Fprintf(&b, "%d %s", o.UID, strings.Join(o.Flags, ","))
		if o.ExpungedAt != "" {
			b.WriteString(" gone")
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// rangesOf returns uids (sorted) as ranges, consecutive ones merged.
func rangesOf(uids []uint32) []UIDRange {
	var out []UIDRange
	for _, u := range uids {
		if n := len(out); n > 0 && out[n-1].Stop+1 == u {
			out[n-1].Stop = u
			continue
		}
		out = append(out, UIDRange{u, u})
	}
	return out
}

// TestChangesAgreesWithReconcile: differential. From the same catalog and
// the same random server change (flags changed, UIDs expunged), the full
// sweep (ReconcileFlags), Changes with the server's UID set (CHANGEDSINCE
// + UID SEARCH) and Changes with VANISHED ranges (QRESYNC, which may name
// UIDs the archive never had) end in the same occurrences, and Changes
// records the HIGHESTMODSEQ.
func TestChangesAgreesWithReconcile(t *testing.T) {
	ctx := context.Background()
	palette := []string{`\Seen`, `\Flagged`, `\Answered`, `$Label1`}
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 99))
		have := map[uint32][]string{}
		uid := uint32(0)
		for range 1 + rng.IntN(60) {
			uid += 1 + uint32(rng.IntN(3))
			var fl []string
			for _, f := range palette {
				if rng.IntN(3) == 0 {
					fl = append(fl, f)
				}
			}
			slices.Sort(fl)
			have[uid] = fl
		}
		server := map[uint32][]string{}
		changed := map[uint32][]string{}
		var gone []uint32
		for u, fl := range have {
			switch rng.IntN(5) {
			case 0:
				gone = append(gone, u)
			case 1:
				nf := []string{palette[rng.IntN(len(palette))]}
				server[u], changed[u] = nf, nf
			default:
				server[u] = fl
			}
		}
		slices.Sort(gone)
		var present []uint32
		for u := range server {
			present = append(present, u)
		}
		slices.Sort(present)
		vanished := rangesOf(gone)
		vanished = append(vanished, UIDRange{uid + 1, uid + 50}) // never archived

		a, mbA := changesFixture(t, have)
		if _, _, _, err := a.ReconcileFlags(ctx, mbA.ID, 5, server); err != nil {
			t.Fatal(err)
		}
		b, mbB := changesFixture(t, have)
		if _, _, _, err := b.Changes(ctx, mbB.ID, 5, EpochChanges{Flags: changed, Listed: true, Present: rangesOf(present), ModSeq: 42}); err != nil {
			t.Fatal(err)
		}
		c, mbC := changesFixture(t, have)
		if _, _, _, err := c.Changes(ctx, mbC.ID, 5, EpochChanges{Flags: changed, Vanished: vanished, ModSeq: 43, Source: FlagSourceQResync}); err != nil {
			t.Fatal(err)
		}
		want := occState(t, a)
		if got := occState(t, b); got != want {
			t.Errorf("seed %d: Changes (listed) =\n%s\nwant (ReconcileFlags)\n%s", seed, got, want)
		}
		if got := occState(t, c); got != want {
			t.Errorf("seed %d: Changes (vanished) =\n%s\nwant (ReconcileFlags)\n%s", seed, got, want)
		}
		for _, x := range []struct {
			c    *Catalog
			id   int64
			want uint64
		}{{b, mbB.ID, 42}, {c, mbC.ID, 43}} {
			ms, live, err := x.c.EpochModSeq(ctx, x.id, 5)
			if err != nil || ms != x.want || live != len(present) {
				t.Errorf("seed %d: EpochModSeq = %d, %d, %v; want %d, %d", seed, ms, live, err, x.want, len(present))
			}
		}
	}
}

// TestChangesRefusesBadInput: a bad range or source changes nothing.
func TestChangesRefusesBadInput(t *testing.T) {
	ctx := context.Background()
	c, mb := changesFixture(t, map[uint32][]string{1: nil, 2: nil})
	before := occState(t, c)
	for _, ch := range []EpochChanges{
		{Vanished: []UIDRange{{0, 5}}, ModSeq: 9},
		{Vanished: []UIDRange{{5, 2}}, ModSeq: 9},
		{Listed: true, Present: []UIDRange{{3, 1}}, ModSeq: 9},
		{Flags: map[uint32][]string{1: {`\Seen`}}, Source: "bogus", ModSeq: 9},
	} {
		if _, _, _, err := c.Changes(ctx, mb.ID, 5, ch); err == nil {
			t.Errorf("Changes(%+v) = nil error", ch)
		}
	}
	if got := occState(t, c); got != before {
		t.Errorf("after refused changes:\n%s\nwant\n%s", got, before)
	}
	if ms, _, _ := c.EpochModSeq(ctx, mb.ID, 5); ms != 0 {
		t.Errorf("modseq %d recorded by a refused change", ms)
	}
}
