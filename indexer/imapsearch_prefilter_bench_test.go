//go:build bench && unix

package indexer_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"mailvault/harvest"
	"mailvault/harvest/dovecottest"
	"mailvault/harvest/harvesttest"
	"mailvault/indexer"
	"mailvault/internal/benchtest"
	"mailvault/query"
	"mailvault/service"
)

// TestBenchIMAPSearchPrefilter (bench tag; scripts/bench-imapsearch.sh
// prefilter) times IMAP SEARCH content keys on one 10,000-message folder of
// the amplified corpus (scripts/amplify-corpus.sh 200000, folder01) on
// Dovecot's `UID SEARCH` (no FTS plugin) and on Archive.SearchIMAP with
// the prefilter and without it (NoPrefilter: the scan of every message, as
// before issue 14), in the same run, alternating query by query: for each
// query the first search (mailvault's decoded-message and occurrence caches
// dropped; Dovecot as left by the harvest and the queries before), then 5
// more rounds of the same query. Every answer is checked against
// Dovecot's. It reports the times, the RSS and heap growth and the
// signature file's size against the raw mail.
//
//	MAILVAULT_SCALE_MAILDIR  the Maildir++ tree (default ~/.cache/mailvault/scale-200000/maildir)
//	MAILVAULT_SCALE_FOLDER   the folder (default folder01)
func TestBenchIMAPSearchPrefilter(t *testing.T) {
	root := os.Getenv("MAILVAULT_SCALE_MAILDIR")
	if root == "" {
		home, _ := os.UserHomeDir()
		root = filepath.Join(home, ".cache", "mailvault", "scale-200000", "maildir")
	}
	folder := os.Getenv("MAILVAULT_SCALE_FOLDER")
	if folder == "" {
		folder = "folder01"
	}
	dir := filepath.Join(root, "."+folder)
	if _, err := os.Stat(filepath.Join(dir, "cur")); err != nil {
		t.Fatalf("no scale folder at %s (scripts/amplify-corpus.sh 200000): %v", dir, err)
	}
	srv := dovecottest.Start(t, nil)
	n := srv.LoadMaildir(t, "alice", folder, dir)
	rawBytes := int64(0)
	entries, _ := os.ReadDir(filepath.Join(dir, "cur"))
	for _, e := range entries {
		if fi, err := e.Info(); err == nil {
			rawBytes += fi.Size()
		}
	}
	data := filepath.Join(t.TempDir(), "data")
	a := harvesttest.OpenArchive(t, data)
	acct := harvesttest.Account(t, srv, "alice", "alice")
	acct.Idle = nil
	h := harvest.New(acct, service.NewSink(a.Archive), &harvest.Options{MinBackoff: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	begin := time.Now()
	go func() { h.Run(ctx); close(done) }()
	for {
		st, err := indexer.Status(context.Background(), a.Dir())
		if err == nil && slices.ContainsFunc(st, func(s indexer.MailboxStatus) bool { return s.Mailbox == folder && s.Occurrences == n }) {
			break
		}
		if time.Since(begin) > 15*time.Minute {
			t.Fatalf("harvest of %s did not finish: %+v", folder, h.Status())
		}
		time.Sleep(200 * time.Millisecond)
	}
	cancel()
	<-done
	if err := a.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	harvestTook := time.Since(begin)
	sigBytes := a.SearchSignatureBytes()
	raw := dialRawIMAP(t, srv, "alice")
	if _, err := raw.cmd("EXAMINE " + folder); err != nil {
		t.Fatal(err)
	}
	qs := []string{`BODY "invoice"`, `TEXT "deadline"`, `SUBJECT "meeting"`, `FROM "jm@"`, `OR BODY "contract" BODY "schedule"`,
		`NOT BODY "invoice"`, `HEADER Message-ID "amplify"`, `BODY "unsubscribe" NOT FROM "lists"`, `BODY "xy"`}
	parsed := make([]query.Node, len(qs))
	for i, q := range qs {
		var err error
		if parsed[i], err = query.ParseIMAP(q); err != nil {
			t.Fatal(err)
		}
	}
	type row struct {
		dovecot, with, without [6]time.Duration
		hits                   int
		verified               [2]int
	}
	rows := make([]row, len(qs))
	rss := func() float64 {
		b, _ := os.ReadFile("/proc/self/status")
		for l := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
				kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
				return float64(kb) / 1024
			}
		}
		return 0
	}
	heap := func() float64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return float64(ms.HeapAlloc) / 1e6
	}
	search := func(i int, opts *indexer.IMAPSearchOptions) (time.Duration, *indexer.IMAPResult) {
		t0 := time.Now()
		// Dovecot has no deadline; a loaded machine must not fail the run.
		o := indexer.IMAPSearchOptions{Timeout: 5 * time.Minute}
		if opts != nil {
			o.NoPrefilter = opts.NoPrefilter
		}
		res, err := a.SearchIMAP(context.Background(), "alice", folder, parsed[i], &o)
		d := time.Since(t0)
		if err != nil {
			t.Fatalf("%s: %v", qs[i], err)
		}
		return d, res
	}
	// Phase 1: per query, the caches dropped, then 6 rounds of the
	// prefilter and Dovecot alternating (the first round is mailvault's
	// first search with that string; Dovecot keeps no search results, its
	// page cache is as warm as mailvault's). Phase 2: the same for the scan
	// (no prefilter), after: it evicts the decoded-message cache.
	rssBase, heapBase := rss(), heap()
	var rssFirst, rssWith, heapWith float64
	for i := range qs {
		a.DropViewCache()
		for round := range 6 {
			d, res := search(i, nil)
			if round == 0 {
				t.Logf("%s: %d hits, %d decoded, %v", qs[i], len(res.UIDs), res.Plan.Verified, d)
				if i == 0 {
					rssFirst = rss()
				}
			}
			rows[i].with[round] = d
			rows[i].verified[0] = res.Plan.Verified
			rows[i].hits = len(res.UIDs)
			t0 := time.Now()
			want, err := raw.uidSearch(qs[i])
			rows[i].dovecot[round] = time.Since(t0)
			if err != nil {
				t.Fatalf("Dovecot %s: %v", qs[i], err)
			}
			if !slices.Equal(res.UIDs, want) {
				t.Errorf("%s: mailvault %d UIDs, Dovecot %d", qs[i], len(res.UIDs), len(want))
			}
		}
	}
	rssWith, heapWith = rss(), heap()
	for i := range qs {
		a.DropViewCache()
		for round := range 6 {
			d, res := search(i, &indexer.IMAPSearchOptions{NoPrefilter: true})
			rows[i].without[round] = d
			rows[i].verified[1] = res.Plan.Verified
		}
	}
	rssWithout, heapWithout := rss(), heap()
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d.Microseconds())/1000) }
	med := func(ds [6]time.Duration) time.Duration {
		s := slices.Clone(ds[1:])
		slices.Sort(s)
		return s[len(s)/2]
	}
	benchtest.Mdf(t, "")
	benchtest.Mdf(t, "#### %s: %d messages, %.1f MB raw; harvested in %.1f s; signatures %.2f MB on disk (%.1f %% of the raw mail)",
		folder, n, float64(rawBytes)/1e6, harvestTook.Seconds(), float64(sigBytes)/1e6, 100*float64(sigBytes)/float64(rawBytes))
	benchtest.Mdf(t, "")
	benchtest.Mdf(t, "| query | hits | Dovecot first ms | mailvault first ms | scan first ms | Dovecot later ms | mailvault later ms | scan later ms | decoded (prefilter / scan) |")
	benchtest.Mdf(t, "|---|---|---|---|---|---|---|---|---|")
	for i, r := range rows {
		benchtest.Mdf(t, "| `%s` | %d | %s | %s | %s | %s | %s | %s | %d / %d |", qs[i], r.hits, ms(r.dovecot[0]), ms(r.with[0]), ms(r.without[0]),
			ms(med(r.dovecot)), ms(med(r.with)), ms(med(r.without)), r.verified[0], r.verified[1])
	}
	benchtest.Mdf(t, "")
	benchtest.Mdf(t, "Later = median of rounds 2-6 of the same query. Process (RSS, Go heap after GC) against before the first search: after the first `BODY \"invoice\"` RSS %+.0f MB; after every prefiltered query RSS %+.0f MB, heap %+.0f MB; after the scans RSS %+.0f MB, heap %+.0f MB (decoded-message cache capped at %d MB).",
		rssFirst-rssBase, rssWith-rssBase, heapWith-heapBase, rssWithout-rssBase, heapWithout-heapBase, 64)
}
