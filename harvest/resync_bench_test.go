//go:build bench && unix

package harvest_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"mailvault/harvest"
	"mailvault/harvest/dovecottest"
	"mailvault/harvest/harvesttest"
	"mailvault/internal/benchtest"
	"mailvault/service"
)

// rbSink is the archive's Sink, telling when a resync's record is done.
type rbSink struct {
	*service.Sink
	mu   sync.Mutex
	last time.Time
}

func (s *rbSink) note() {
	s.mu.Lock()
	s.last = time.Now()
	s.mu.Unlock()
}

func (s *rbSink) lastDone() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

func (s *rbSink) Reconcile(ctx context.Context, account, mailbox string, uidvalidity uint32, flags map[uint32][]string) error {
	err := s.Sink.Reconcile(ctx, account, mailbox, uidvalidity, flags)
	s.note()
	return err
}

func (s *rbSink) Changes(ctx context.Context, account, mailbox string, uidvalidity uint32, ch harvest.Changes) error {
	err := s.Sink.Changes(ctx, account, mailbox, uidvalidity, ch)
	s.note()
	return err
}

// TestBenchResync: one flag change and one expunge in a mailbox of
// MAILVAULT_BENCH_RESYNC_N (100,000) messages on Dovecot, IDLE on it, by
// the three ways the harvester knows: the full UID+FLAGS sweep (CONDSTORE
// and QRESYNC hidden by the counting proxy), CHANGEDSINCE (QRESYNC
// hidden) and QRESYNC; the same archive and server, the ways alternating
// in each of MAILVAULT_BENCH_RUNS rounds. Bytes are all that crossed the
// proxy both ways from the change until the archive recorded it (the
// QRESYNC connection's login included); "resync" is the harvester's time
// in the resync (Counters.ResyncNanos, the archive's part included);
// "change → recorded" is from the server's answer to the change until the
// Sink returned (Dovecot's IDLE notification included).
func TestBenchResync(t *testing.T) {
	n := hbEnvInt("MAILVAULT_BENCH_RESYNC_N", 100_000)
	runs := hbEnvInt("MAILVAULT_BENCH_RUNS", 3)
	srv := dovecottest.Start(t, nil)
	begin := time.Now()
	srv.LoadMaildir(t, "alice", "Big", harvesttest.Maildir(t, harvesttest.Messages("rb", n)))
	srv.Index(t, "alice", "Big")
	t.Logf("loaded %d messages in %v", n, time.Since(begin))
	a := harvesttest.OpenArchive(t, t.TempDir())
	sink := &rbSink{Sink: service.NewSink(a.Archive)}
	modes := []struct {
		name string
		hide []string
	}{
		{"sweep", []string{"QRESYNC", "CONDSTORE"}},
		{"CHANGEDSINCE", []string{"QRESYNC"}},
		{"QRESYNC", nil},
	}
	proxies := make([]*wireProxy, len(modes))
	for i, m := range modes {
		proxies[i] = startWireProxy(t, srv.Addr, m.hide...)
	}
	start := func(i int) *dcHarvester {
		acct := proxies[i].account(t, srv, "alice", "alice")
		acct.Idle, acct.Mailboxes, acct.PollInterval = []string{"Big"}, []string{"Big"}, time.Hour
		h := dcStart(t, context.Background(), acct, sink, &harvest.Options{MinBackoff: 50 * time.Millisecond, MaxBackoff: time.Second})
		dcWaitFor(t, 30*time.Minute, "Big caught up and idle", func() (bool, string) {
			st := h.Status().Mailboxes["Big"]
			return st.State == harvest.StateIdle, fmt.Sprintf("%+v", st)
		})
		// What the first sync re-indexed (a sweep sees flags without the
		// \Recent the first session saw) must not queue ahead of the change.
		if err := a.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		return h
	}
	begin = time.Now()
	h := start(2)
	h.stop(t)
	t.Logf("cold harvest of %d messages: %v", n, time.Since(begin))

	type result struct {
		mode, change, load       string
		round, fetches, vanished int
		up, down                 int64
		resync, recorded         time.Duration
	}
	var results []result
	uid := uint32(100)
	for round := 1; round <= runs; round++ {
		for k := range modes {
			i := (k + round - 1) % len(modes) // who goes first alternates
			h := start(i)
			time.Sleep(500 * time.Millisecond)
			for _, change := range []string{"flag", "expunge"} {
				uid += 7
				p := proxies[i]
				m := p.mark()
				c0 := h.Status().Counters
				done0 := sink.lastDone()
				load := hbLoadAvg()
				if change == "flag" {
					srv.SetFlags(t, "alice", "Big", uid, `\Flagged`)
				} else {
					srv.Expunge(t, "alice", "Big", uid)
				}
				changed := time.Now()
				dcWaitFor(t, 5*time.Minute, modes[i].name+" "+change+" recorded", func() (bool, string) {
					c := h.Status().Counters
					return sink.lastDone().After(done0) && c.ResyncNanos != c0.ResyncNanos, fmt.Sprintf("%+v", c)
				})
				time.Sleep(300 * time.Millisecond) // let the proxy's count settle (LOGOUT of the QRESYNC connection)
				w := p.since(m)
				c := h.Status().Counters
				results = append(results, result{mode: modes[i].name, change: change, load: load, round: round,
					fetches: w.fetches, vanished: w.vanisheds, up: w.up, down: w.down,
					resync: time.Duration(c.ResyncNanos - c0.ResyncNanos), recorded: sink.lastDone().Sub(changed)})
			}
			h.stop(t)
		}
	}
	// Every change arrived.
	got := map[uint32]harvesttest.Occ{}
	for _, o := range harvesttest.Occurrences(t, a) {
		got[o.UID] = o
	}
	for u := uint32(107); u <= uid; u += 14 {
		if got[u].Flags != `\Flagged` || got[u+7].Expunged == "" {
			t.Errorf("UID %d flags %q, UID %d expunged %q", u, got[u].Flags, u+7, got[u+7].Expunged)
		}
	}

	benchtest.Mdf(t, "One change in a mailbox of %d messages on Dovecot %s, the harvester IDLE on it; %d rounds, the three ways alternating which goes first. Bytes: both directions through the counting proxy from the change until the archive recorded it. resync: the harvester's time in the resync, the archive's part included. change → recorded: from the server's answer to the change until the archive's Sink returned. Load: 1-minute load average at the change.", n, hbDovecotVersion(), runs)
	benchtest.Mdf(t, "")
	benchtest.Mdf(t, "| round | way | change | load | bytes to server | bytes from server | FETCH responses | VANISHED | resync ms | change → recorded ms |")
	benchtest.Mdf(t, "|---|---|---|---|---|---|---|---|---|---|")
	med := map[string][]float64{}
	medBytes := map[string][]float64{}
	for _, r := range results {
		benchtest.Mdf(t, "| %d | %s | %s | %s | %d | %d | %d | %d | %.1f | %.1f |", r.round, r.mode, r.change, r.load, r.up, r.down,
			r.fetches, r.vanished, float64(r.resync)/1e6, float64(r.recorded)/1e6)
		k := r.mode + " " + r.change
		med[k] = append(med[k], float64(r.resync)/1e6)
		medBytes[k] = append(medBytes[k], float64(r.up+r.down))
	}
	benchtest.Mdf(t, "")
	for _, m := range modes {
		for _, change := range []string{"flag", "expunge"} {
			k := m.name + " " + change
			benchtest.Mdf(t, "- %s: median resync %.1f ms, %.0f bytes on the wire", k, hbMedian(med[k]), hbMedian(medBytes[k]))
		}
	}
}
