package catalog

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// flagFixture is a catalog with one harvested occurrence (UID 1) of one
// message, first seen with flags.
func flagFixture(t *testing.T, flags []string) (*Catalog, Mailbox, [32]byte) {
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
	sha := [32]byte{7}
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	id, err := tx.InsertMessage(ctx, &Message{SHA256: sha, Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.InsertOccurrence(ctx, &Occurrence{MailboxID: mb.ID, UIDValidity: 5, UID: 1, MessageID: id, Size: 1, Flags: flags}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return c, mb, sha
}

func historyOf(t *testing.T, c *Catalog, sha [32]byte) []FlagSighting {
	t.Helper()
	h, err := c.FlagHistories(context.Background(), [][32]byte{sha})
	if err != nil {
		t.Fatal(err)
	}
	if len(h[sha]) != 1 {
		t.Fatalf("FlagHistories = %d occurrences, want 1", len(h[sha]))
	}
	return h[sha][0].Sightings
}

func historyRows(t *testing.T, c *Catalog) int {
	t.Helper()
	var n int
	if err := c.db.QueryRow(`SELECT count(*) FROM flag_history`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// The history records changes only: the same set again, in any order, is
// no sighting; each change is, with what it added and removed.
func TestFlagHistoryRecordsChangesOnly(t *testing.T) {
	ctx := context.Background()
	c, mb, sha := flagFixture(t, nil)
	if h := historyOf(t, c, sha); len(h) != 1 || h[0].Source != FlagSourceHarvest || len(h[0].Flags) != 0 {
		t.Fatalf("history of an unchanged occurrence = %+v, want its first sighting only", h)
	}
	if historyRows(t, c) != 0 {
		t.Fatal("ingest wrote a history row; the first sighting is the occurrence row")
	}
	steps := []struct {
		flags   []string
		changed bool
	}{
		{nil, false},
		{[]string{`\Seen`}, true},
		{[]string{`\Seen`}, false},
		{[]string{`\Answered`, `\Seen`}, true},
		{[]string{`\Seen`, `\Answered`}, false}, // another order, the same set
		{[]string{`\Answered`}, true},
	}
	for i, s := range steps {
		_, ref, err := c.Reconcile(ctx, mb.ID, 5, map[uint32][]string{1: s.flags})
		if err != nil || (ref == 1) != s.changed {
			t.Fatalf("step %d: Reconcile(%q) = %d reflagged, %v; want changed %v", i, s.flags, ref, err, s.changed)
		}
	}
	h := historyOf(t, c, sha)
	want := []struct{ flags, added, removed string }{
		{"", "", ""},
		{`\Seen`, `\Seen`, ""},
		{`\Answered \Seen`, `\Answered`, ""},
		{`\Answered`, "", `\Seen`},
	}
	if len(h) != len(want) {
		t.Fatalf("history = %+v, want %d sightings", h, len(want))
	}
	for i, w := range want {
		got := h[i]
		if strings.Join(got.Flags, " ") != w.flags || strings.Join(got.Added, " ") != w.added || strings.Join(got.Removed, " ") != w.removed {
			t.Errorf("sighting %d = %q +%q -%q, want %q +%q -%q", i, got.Flags, got.Added, got.Removed, w.flags, w.added, w.removed)
		}
		if i > 0 && (got.Source != FlagSourceReconcile || got.At.Before(h[i-1].At)) {
			t.Errorf("sighting %d: source %q at %v after %v; want reconcile, not earlier", i, got.Source, got.At, h[i-1].At)
		}
	}
	if historyRows(t, c) != 4 {
		t.Errorf("%d history rows, want 4 (the first sighting written out at the first change)", historyRows(t, c))
	}
}

// Generated: a random walk over flag sets, many changes, checked against
// a model. The table stays within FlagHistoryCap; the first sighting, the
// first appearance of each flag and the state now are kept; what was
// dropped is counted, so kept + dropped is every change.
func TestFlagHistoryBoundedUnderFlapping(t *testing.T) {
	ctx := context.Background()
	for seed := uint64(1); seed <= 4; seed++ {
		r := rand.New(rand.NewPCG(seed, 0))
		c, mb, sha := flagFixture(t, []string{`$First`})
		universe := []string{`\Seen`, `\Answered`, `\Flagged`, `\Deleted`, `$Label1`}
		cur := []string{`$First`}
		changes := 0
		firstAppear := map[string]bool{`$First`: true}
		for range 300 {
			next := []string{}
			for _, f := range universe {
				if r.IntN(3) == 0 {
					next = append(next, f)
				}
			}
			if !sameFlags(cur, next) {
				changes++
			}
			for _, f := range next {
				firstAppear[f] = true
			}
			if _, _, err := c.Reconcile(ctx, mb.ID, 5, map[uint32][]string{1: next}); err != nil {
				t.Fatal(err)
			}
			cur = next
		}
		h := historyOf(t, c, sha)
		if len(h) > FlagHistoryCap || historyRows(t, c) > FlagHistoryCap {
			t.Fatalf("seed %d: %d sightings, %d rows; want at most %d", seed, len(h), historyRows(t, c), FlagHistoryCap)
		}
		if strings.Join(h[0].Flags, " ") != `$First` || h[0].Source != FlagSourceHarvest {
			t.Errorf("seed %d: first sighting = %+v, want the harvest's $First", seed, h[0])
		}
		if !sameFlags(h[len(h)-1].Flags, cur) {
			t.Errorf("seed %d: last sighting %q, want the flags now %q", seed, h[len(h)-1].Flags, cur)
		}
		kept := len(h) - 1
		for _, s := range h {
			kept += s.Dropped
		}
		if kept != changes {
			t.Errorf("seed %d: %d sightings after the first + dropped, want %d changes", seed, kept, changes)
		}
		seen := map[string]bool{}
		for _, s := range h {
			for _, f := range s.Flags {
				seen[f] = true
			}
		}
		for f := range firstAppear {
			if !seen[f] {
				t.Errorf("seed %d: flag %s appears in no kept sighting", seed, f)
			}
		}
		for i := 1; i < len(h); i++ {
			if h[i].At.Before(h[i-1].At) {
				t.Errorf("seed %d: sighting %d at %v before %v", seed, i, h[i].At, h[i-1].At)
			}
		}
	}
}

// A server inventing a keyword on every change still cannot grow the
// history past the cap.
func TestFlagHistoryBoundedUnderNewKeywords(t *testing.T) {
	ctx := context.Background()
	c, mb, sha := flagFixture(t, nil)
	for i := range 3 * FlagHistoryCap {
		kw := []string{"$k" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + string(rune('a'+i/26))}
		if _, _, err := c.Reconcile(ctx, mb.ID, 5, map[uint32][]string{1: kw}); err != nil {
			t.Fatal(err)
		}
	}
	h := historyOf(t, c, sha)
	if len(h) != FlagHistoryCap || len(h[0].Flags) != 0 {
		t.Fatalf("%d sightings, first %q; want %d, the first sighting kept", len(h), h[0].Flags, FlagHistoryCap)
	}
}

// Disposal deletes the history with the flags; FlagFirstSeen dates each
// current flag from the run of sightings that still holds it.
func TestFlagHistoryDisposedAndFirstSeen(t *testing.T) {
	ctx := context.Background()
	c, mb, sha := flagFixture(t, nil)
	for _, f := range [][]string{{`\Seen`}, {}, {`\Seen`}, {`\Seen`, `\Answered`}} {
		if _, _, err := c.Reconcile(ctx, mb.ID, 5, map[uint32][]string{1: f}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	hs, err := c.FlagHistories(ctx, [][32]byte{sha})
	if err != nil {
		t.Fatal(err)
	}
	o := hs[sha][0]
	first := o.FlagFirstSeen()
	if !first[`\Seen`].Equal(o.Sightings[3].At) || !first[`\Answered`].Equal(o.Sightings[4].At) || len(first) != 2 {
		t.Errorf("FlagFirstSeen = %v; want \\Seen at sighting 3 (set again), \\Answered at 4", first)
	}
	ts, err := c.AddTombstone(ctx, sha, "retention", "r1", "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.FinishTombstone(ctx, ts.ID); err != nil {
		t.Fatal(err)
	}
	if n := historyRows(t, c); n != 0 {
		t.Fatalf("%d history rows after disposal, want 0", n)
	}
	if h := historyOf(t, c, sha); len(h) != 1 || len(h[0].Flags) != 0 {
		t.Fatalf("history after disposal = %+v, want one empty sighting", h)
	}
}

// BenchmarkReconcileFlagChange: a sweep that finds every one of 5,000
// occurrences re-flagged (a user marking a folder read), through setFlags
// (history), against the bare UPDATE the reconcile did before the
// history, in the same run.
func BenchmarkReconcileFlagChange(b *testing.B) {
	ctx := context.Background()
	const n = 5000
	setup := func(b *testing.B) (*Catalog, Mailbox) {
		c, err := Open(filepath.Join(b.TempDir(), "catalog.db"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		mb, _ := c.EnsureMailbox(ctx, "alice", "INBOX", SourceIMAP, 5)
		tx, _ := c.Begin(ctx)
		for uid := uint32(1); uid <= n; uid++ {
			id, err := tx.InsertMessage(ctx, &Message{SHA256: [32]byte{byte(uid), byte(uid >> 8)}, Size: 1})
			if err != nil {
				b.Fatal(err)
			}
			tx.InsertOccurrence(ctx, &Occurrence{MailboxID: mb.ID, UIDValidity: 5, UID: uid, MessageID: id, Size: 1})
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
		return c, mb
	}
	flagsAll := func(f string) map[uint32][]string {
		m := make(map[uint32][]string, n)
		for uid := uint32(1); uid <= n; uid++ {
			m[uid] = []string{f}
		}
		return m
	}
	sets := []map[uint32][]string{flagsAll(`\Seen`), flagsAll(`\Flagged`)}
	b.Run("history", func(b *testing.B) {
		c, mb := setup(b)
		for i := 0; b.Loop(); i++ {
			if _, ref, err := c.Reconcile(ctx, mb.ID, 5, sets[i%2]); err != nil || ref != n {
				b.Fatalf("Reconcile = %d, %v", ref, err)
			}
		}
	})
	b.Run("bare", func(b *testing.B) {
		c, mb := setup(b)
		for i := 0; b.Loop(); i++ {
			tx, _ := c.db.BeginTx(ctx, nil)
			rows, _ := tx.QueryContext(ctx, `SELECT id, message_id, uid, flags FROM occurrences WHERE mailbox_id = ? AND uidvalidity = ?`, mb.ID, 5)
			type ch struct {
				id, msg int64
				flags   string
			}
			var chs []ch
			for rows.Next() {
				var x ch
				var uid uint32
				var have string
				rows.Scan(&x.id, &x.msg, &uid, &have)
				x.flags = strings.Join(sets[i%2][uid], " ")
				chs = append(chs, x)
			}
			rows.Close()
			for _, x := range chs {
				tx.ExecContext(ctx, `UPDATE occurrences SET flags = ? WHERE id = ?`, x.flags, x.id)
				tx.ExecContext(ctx, `UPDATE messages SET gen = gen + 1 WHERE id = ?`, x.msg)
			}
			if err := tx.Commit(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
