package indexer

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"mailvault/indexer/mailfile"
)

// BenchmarkIngest measures Ingest end to end (hash, parse, compress, blob
// fsync, catalog commit, Bleve indexing) in batches of 256 over the
// SpamAssassin corpus when $MAILVAULT_CORPUS holds it (scripts/fetch-corpus.sh),
// else over generated mail. Reports messages per second. The comparison with
// mu is scripts/bench-import.sh.
func BenchmarkIngest(b *testing.B) {
	raws := benchMessages(b)
	b.SetBytes(0)
	for range b.N {
		b.StopTimer()
		a, err := Open(b.TempDir(), nil)
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		if _, err := a.EnsureMailbox(ctx, "bench", "INBOX", "import", 1); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for start := 0; start < len(raws); start += 256 {
			var items []Item
			for i, raw := range raws[start:min(start+256, len(raws))] {
				items = append(items, Item{Account: "bench", Mailbox: "INBOX", UIDValidity: 1, UID: uint32(start + i + 1), Raw: raw})
			}
			if _, err := a.Ingest(ctx, items); err != nil {
				b.Fatal(err)
			}
		}
		if err := a.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		a.Close()
	}
	b.ReportMetric(float64(len(raws)*b.N)/b.Elapsed().Seconds(), "msg/s")
}

func benchMessages(b *testing.B) [][]byte {
	var raws [][]byte
	if dir := os.Getenv("MAILVAULT_CORPUS"); dir != "" {
		boxes, err := mailfile.Discover(filepath.Join(dir, "maildir"), "")
		if err == nil {
			for _, mb := range boxes {
				mb.Walk(func(m mailfile.Message) error { raws = append(raws, m.Raw); return nil }, func(error) {})
			}
		}
	}
	if len(raws) == 0 {
		for i := range 2000 {
			raws = append(raws, msg(fmt.Sprintf("user%d@example.org", i%50), fmt.Sprintf("subject %d about things", i),
				"Mon, 4 Mar 2024 10:00:00 +0100", fmt.Sprintf("body %d with some words to index and a phrase to be or not to be", i)))
		}
	}
	return raws
}
