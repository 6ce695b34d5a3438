//go:build bench

package journal

import (
	"os"
	"testing"
	"time"

	"mailvault/indexer/mailfile/corpustest"
	"mailvault/indexer/mime"
)

// TestBenchUnwrap measures what unwrapping costs the journal listener per
// message, against the MIME parse ingest runs on every message anyway (the
// peer), alternating in one run: over the SpamAssassin corpus (no reports:
// the cost every ordinary journal message pays) and over the corpus wrapped
// in journal reports.
//
//	go test -tags bench -run TestBenchUnwrap -v ./journal/
func TestBenchUnwrap(t *testing.T) {
	c := corpustest.Scan(t, corpustest.Maildir(t))
	var plain, reports [][]byte
	for _, f := range c.Folders {
		for _, p := range f.Files {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			plain = append(plain, b)
			reports = append(reports, buildReport(reportOpts{header: true, text: fixtureReportText, original: string(b)}))
		}
	}
	us := func(d time.Duration, n int) float64 { return float64(d.Nanoseconds()) / 1e3 / float64(n) }
	for round := range 5 {
		for _, set := range []struct {
			name string
			raws [][]byte
		}{{"plain", plain}, {"reports", reports}} {
			start := time.Now()
			unwrapped := 0
			for _, r := range set.raws {
				if _, ok, _ := Unwrap(r); ok {
					unwrapped++
				}
			}
			u := time.Since(start)
			start = time.Now()
			for _, r := range set.raws {
				mime.Parse(r, nil)
			}
			p := time.Since(start)
			t.Logf("round %d, %s (%d, %d unwrapped): Unwrap %.1f µs/msg, mime.Parse %.1f µs/msg", round, set.name, len(set.raws), unwrapped,
				us(u, len(set.raws)), us(p, len(set.raws)))
		}
	}
}
