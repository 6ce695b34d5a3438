//go:build bench

package indexer

import (
	"context"
	"crypto/sha256"
	"os"
	"runtime"
	"testing"
	"time"

	"mailvault/indexer/catalog"
	"mailvault/indexer/mailfile/corpustest"
	"mailvault/indexer/mime"
)

// TestBenchFingerprint measures what the fingerprint adds to ingest, against
// the MIME parse ingest does anyway (the peer), alternating in one run over
// the SpamAssassin corpus; and the coverage report over the corpus archived
// twice (a mailbox copy with delivery headers, a journal copy with an
// envelope), against Status (another whole-catalog report), alternating.
//
//	go test -tags bench -run TestBenchFingerprint -v ./indexer/
func TestBenchFingerprint(t *testing.T) {
	c := corpustest.Scan(t, corpustest.Maildir(t))
	var raws [][]byte
	for _, f := range c.Folders {
		for _, p := range f.Files {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			raws = append(raws, b)
		}
	}
	msgs := make([]*mime.Message, len(raws))
	for round := range 5 {
		start := time.Now()
		for i, r := range raws {
			msgs[i] = mime.Parse(r, nil)
		}
		parse := time.Since(start)
		start = time.Now()
		for _, m := range msgs {
			Fingerprint(m)
		}
		fp := time.Since(start)
		// The body text's part, version 1 (collapse to a string, then
		// hash it in the field) against version 2 (collapsedSum).
		start = time.Now()
		for _, m := range msgs {
			sha256.Sum256([]byte(collapse(m.Text)))
		}
		v1 := time.Since(start)
		start = time.Now()
		for _, m := range msgs {
			collapsedSum(m.Text)
		}
		v2 := time.Since(start)
		us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 / float64(len(raws)) }
		t.Logf("round %d: %d messages: parse %.1f µs/msg, fingerprint %.1f µs/msg (%.0f%% of the parse); body text: v1 collapse+hash %.1f µs/msg, v2 collapsedSum %.1f µs/msg",
			round, len(raws), us(parse), us(fp), 100*float64(fp)/float64(parse), us(v1), us(v2))
	}

	ctx := context.Background()
	dir := t.TempDir()
	a, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for _, mb := range []struct{ acct, name, src string }{{"journal", "Journal", catalog.SourceJournal}, {"alice", "INBOX", catalog.SourceIMAP}} {
		if _, err := a.EnsureMailbox(ctx, mb.acct, mb.name, mb.src, 1); err != nil {
			t.Fatal(err)
		}
	}
	env := &Envelope{MailFrom: "x@example.org", RcptTo: []string{"alice@example.org"}, Recipients: []string{"alice@example.org"},
		Listener: "lmtp", ReceivedAt: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)}
	var items []Item
	for i, r := range raws {
		items = append(items,
			Item{Account: "journal", Mailbox: "Journal", UIDValidity: 1, UID: uint32(i + 1), Raw: r, Envelope: env},
			Item{Account: "alice", Mailbox: "INBOX", UIDValidity: 1, UID: uint32(i + 1),
				Raw: append([]byte("Delivered-To: alice@example.org\r\nReturn-Path: <x@example.org>\r\n"), r...)})
		if len(items) >= 512 {
			if _, err := a.Ingest(ctx, items); err != nil {
				t.Fatal(err)
			}
			items = items[:0]
		}
	}
	if _, err := a.Ingest(ctx, items); err != nil {
		t.Fatal(err)
	}
	in := catalog.CoverageInput{Addresses: map[string][]string{"alice@example.org": {"alice"}}}
	for round := range 5 {
		runtime.GC()
		start := time.Now()
		cov, err := a.JournalCoverage(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		covT := time.Since(start)
		start = time.Now()
		if _, err := a.Status(ctx); err != nil {
			t.Fatal(err)
		}
		stT := time.Since(start)
		t.Logf("round %d: coverage %v (%+v), status %v", round, covT.Round(time.Millisecond), cov.Accounts, stT.Round(time.Millisecond))
	}
}
