package indexer

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"mailvault/indexer/store"
	"mailvault/query"
)

// TestSelectionMatchesSearch: a Selection streams exactly the hits that
// paging through Search gives (same messages, same occurrences in scope),
// for generated messages copied into several accounts and mailboxes, over
// queries of each kind and each narrowing, across more than one Each batch.
func TestSelectionMatchesSearch(t *testing.T) {
	a := openTest(t, t.TempDir())
	defer a.Close()
	rng := rand.New(rand.NewPCG(11, 0))
	words := []string{"zeppelin", "invoice", "lefèvre", "quarterly", "sourceforge", "merger", "holiday"}
	places := []struct{ acct, mb string }{{"alice", "INBOX"}, {"alice", "Archive"}, {"bob", "INBOX"}, {"bob", "Sent"}, {"carol", "INBOX"}}
	for _, p := range places {
		mustMailbox(t, a, p.acct, p.mb)
	}
	uid := map[string]uint32{}
	var items []Item
	const n = 1300 // > 2 batches of scanBatch
	for i := range n {
		w1, w2 := words[rng.IntN(len(words))], words[rng.IntN(len(words))]
		raw := msg(fmt.Sprintf("S%d <s%d@example.org>", i%17, i%17), fmt.Sprintf("%s %d", w1, i),
			time.Date(2020+i%5, time.Month(1+i%12), 1+i%28, 10, 0, 0, 0, time.UTC).Format(time.RFC1123Z), w2+" body")
		for k := 0; k < 1+rng.IntN(3); k++ {
			p := places[rng.IntN(len(places))]
			uid[p.acct+p.mb]++
			items = append(items, Item{Account: p.acct, Mailbox: p.mb, UIDValidity: 7, UID: uid[p.acct+p.mb], Raw: raw})
		}
	}
	for start := 0; start < len(items); start += 200 {
		ingest(t, a, items[start:min(start+200, len(items))]...)
	}
	ctx := context.Background()
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	render := func(hs []Hit) []string {
		var out []string
		for _, h := range hs {
			var occ []string
			for _, o := range h.Occurrences {
				occ = append(occ, fmt.Sprintf("%s/%s/%d", o.Account, o.Mailbox, o.UID))
			}
			slices.Sort(occ)
			out = append(out, h.SHA256+" "+h.Date.UTC().Format(time.RFC3339)+" "+strings.Join(occ, ","))
		}
		slices.Sort(out)
		return out
	}
	queries := []string{"larger:0", "zeppelin", "subject:invoice OR body:merger", "-holiday", "account:bob", "mailbox:INBOX quarterly",
		"account:alice mailbox:Sent", "lefevre", "from:s3@example.org", "nomatchatall"}
	opts := []SearchOptions{{}, {Accounts: []string{"alice"}}, {Mailboxes: []string{"INBOX"}}, {Accounts: []string{"bob", "carol"}, Mailboxes: []string{"inbox"}}}
	nonEmpty := 0
	for _, q := range queries {
		node, err := query.ParseHuman(q)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range opts {
			var paged []Hit
			so := o
			so.Limit, so.Sort = 1000, SortNewest
			for {
				res, err := a.Search(ctx, node, &so)
				if err != nil {
					t.Fatal(err)
				}
				paged = append(paged, res.Hits...)
				if len(res.Hits) == 0 || len(res.After) == 0 {
					break
				}
				so.After = res.After
			}
			sel, err := a.Select(ctx, node, &o)
			if err != nil {
				t.Fatal(err)
			}
			var streamed []Hit
			batches := 0
			if err := sel.Each(ctx, func(b []Hit) error { batches++; streamed = append(streamed, b...); return nil }); err != nil {
				t.Fatal(err)
			}
			want, got := render(paged), render(streamed)
			if !slices.Equal(want, got) {
				t.Fatalf("%q %+v: Selection gave %d hits, paged Search %d", q, o, len(got), len(want))
			}
			if len(got) > 0 {
				nonEmpty++
			}
			// Hits of the streamed keys, asked again, are the same hits.
			var keys [][32]byte
			for _, h := range streamed {
				k, _ := store.ParseKey(h.SHA256)
				keys = append(keys, k)
			}
			again, err := sel.Hits(ctx, keys)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(render(again), got) {
				t.Fatalf("%q %+v: Hits of the streamed keys differ", q, o)
			}
			if q == "larger:0" && len(o.Accounts) == 0 && len(o.Mailboxes) == 0 {
				if len(got) != n || batches < 3 {
					t.Fatalf("larger:0: %d hits in %d batches, want %d in at least 3", len(got), batches, n)
				}
				// fn's error ends Each at once, with the lookups ahead of it
				// (scanLookahead) waited for, and fn is not called again.
				stop := errors.New("stop")
				calls := 0
				if err := sel.Each(ctx, func([]Hit) error { calls++; return stop }); !errors.Is(err, stop) || calls != 1 {
					t.Fatalf("Each with fn failing: %v after %d calls, want stop after 1", err, calls)
				}
				// A cancelled context ends it too.
				cctx, cancel := context.WithCancel(ctx)
				calls = 0
				err := sel.Each(cctx, func([]Hit) error { calls++; cancel(); return nil })
				if !errors.Is(err, context.Canceled) || calls > scanLookahead {
					t.Fatalf("Each with the context cancelled in fn: %v after %d calls", err, calls)
				}
			}
		}
	}
	if nonEmpty < len(queries)*len(opts)/2 {
		t.Fatalf("only %d of %d cases had hits: the test proves little", nonEmpty, len(queries)*len(opts))
	}
}
