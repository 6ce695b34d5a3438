package indexer

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"mailvault/indexer/mime"
	"mailvault/indexer/store"
	"mailvault/query"
)

// TestReviewSortGenerated: every field order (newest, oldest, largest,
// smallest, sender) over generated messages, with sent dates from year 1
// to 9999, before 1970, ties, in several zones and without any, and sizes
// with ties, gives the order the hits' own dates, sizes and senders give
// (messages without a date last either way, ties by id), and paging it by
// cursor with pages of every size gives each hit once, in that order.
func TestReviewSortGenerated(t *testing.T) {
	a := openTest(t, t.TempDir())
	defer a.Close()
	ctx := context.Background()
	mustMailbox(t, a, "alice", "INBOX")
	rng := rand.New(rand.NewPCG(5, 8))
	fixed := []time.Time{
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(1, 1, 1, 0, 0, 1, 0, time.UTC),
		time.Date(1899, 12, 31, 23, 59, 59, 0, time.UTC), time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Unix(0, 0).UTC(), time.Unix(1, 0).UTC(), time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC), time.Date(2024, 3, 1, 11, 0, 0, 0, time.FixedZone("", 3600)), // the same instant
	}
	senders := []string{"a@x.org", "B@x.org", "c@x.org", "zed@y.org"}
	var items []Item
	for i := range 240 {
		var date string
		switch r := rng.IntN(10); {
		case r == 0:
			date = "" // no Date: header
		case r < 4:
			date = fixed[rng.IntN(len(fixed))].Format(time.RFC1123Z)
		default:
			d := time.Unix(rng.Int64N(1<<36)-1<<35, 0).In(time.FixedZone("", 3600*(rng.IntN(25)-12)))
			date = d.Format(time.RFC1123Z)
		}
		var b strings.Builder
		fmt.Fprintf(&b, "From: S <%s>\r\nTo: archive@example.org\r\nSubject: budget %d\r\n", senders[rng.IntN(len(senders))], i)
		if date != "" {
			fmt.Fprintf(&b, "Date: %s\r\n", date)
		}
		fmt.Fprintf(&b, "Message-ID: <r%d@example.org>\r\n\r\nbudget\r\n%s", i, strings.Repeat("x", rng.IntN(8)*100))
		items = append(items, Item{Account: "alice", Mailbox: "INBOX", UIDValidity: 7, UID: uint32(i + 1), Raw: []byte(b.String())})
	}
	ingest(t, a, items...)
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	n, _ := query.ParseHuman("budget")
	all, err := a.Search(ctx, n, &SearchOptions{Limit: 1000, Sort: SortRelevance})
	if err != nil || len(all.Hits) != len(items) {
		t.Fatalf("%d hits, %v", len(all.Hits), err)
	}
	undated, early := 0, 0
	for _, h := range all.Hits {
		if h.Date.IsZero() {
			undated++
		} else if h.Date.Year() < 1970 {
			early++
		}
	}
	if undated < 5 || early < 20 {
		t.Fatalf("generated data too narrow: %d undated, %d before 1970", undated, early)
	}
	sender := func(h Hit) string {
		_, addr, _ := strings.Cut(h.From, "<")
		return strings.ToLower(strings.TrimSuffix(addr, ">"))
	}
	// byDate orders dated hits newest (desc) or oldest first, undated last.
	byDate := func(x, y Hit, desc bool) int {
		switch xz, yz := x.Date.IsZero(), y.Date.IsZero(); {
		case xz && yz:
			return 0
		case xz:
			return 1
		case yz:
			return -1
		}
		if desc {
			return y.Date.Compare(x.Date)
		}
		return x.Date.Compare(y.Date)
	}
	for _, c := range []struct {
		sort Sort
		cmp  func(x, y Hit) int
	}{
		{SortNewest, func(x, y Hit) int { return byDate(x, y, true) }},
		{SortOldest, func(x, y Hit) int { return byDate(x, y, false) }},
		{SortLargest, func(x, y Hit) int { return cmp.Compare(y.Size, x.Size) }},
		{SortSmallest, func(x, y Hit) int { return cmp.Compare(x.Size, y.Size) }},
		{SortSender, func(x, y Hit) int { return cmp.Or(strings.Compare(sender(x), sender(y)), byDate(x, y, true)) }},
	} {
		t.Run(string(c.sort), func(t *testing.T) {
			want := slices.Clone(all.Hits)
			slices.SortStableFunc(want, func(x, y Hit) int { return cmp.Or(c.cmp(x, y), strings.Compare(x.SHA256, y.SHA256)) })
			ids := func(hs []Hit) []string {
				var out []string
				for _, h := range hs {
					out = append(out, h.SHA256)
				}
				return out
			}
			whole, err := a.Search(ctx, n, &SearchOptions{Limit: 1000, Sort: c.sort})
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(whole.Hits); !slices.Equal(got, ids(want)) {
				for i := range got {
					if got[i] != want[i].SHA256 {
						t.Fatalf("order differs at %d of %d: got %s, want %s (date %v size %d from %s)", i, len(got), got[i][:8], want[i].SHA256[:8], want[i].Date, want[i].Size, want[i].From)
					}
				}
			}
			for round := range 4 {
				var paged []string
				var after []string
				for range len(items) + 1 {
					limit := 1 + rng.IntN(40)
					if round == 0 {
						limit = 1
					}
					res, err := a.Search(ctx, n, &SearchOptions{Limit: limit, Sort: c.sort, After: after})
					if err != nil {
						t.Fatal(err)
					}
					paged = append(paged, ids(res.Hits)...)
					if len(res.Hits) < limit {
						break
					}
					after = res.After
				}
				if !slices.Equal(paged, ids(want)) {
					t.Fatalf("round %d: paging by cursor gave %d hits (want %d) or another order", round, len(paged), len(want))
				}
			}
		})
	}
}

// TestReviewHostileCursors: a cursor of any strings (empty, past every key,
// invalid UTF-8, an old mapping's numeric terms, very long) is answered
// (a page, maybe empty) or refused as a bad cursor, never a panic, in
// every field order.
func TestReviewHostileCursors(t *testing.T) {
	a := openTest(t, t.TempDir())
	defer a.Close()
	ctx := context.Background()
	mustMailbox(t, a, "alice", "INBOX")
	var items []Item
	for i := range 30 {
		items = append(items, Item{Account: "alice", Mailbox: "INBOX", UIDValidity: 7, UID: uint32(i + 1),
			Raw: msg("C <c@example.org>", fmt.Sprintf("budget %d", i), fmt.Sprintf("Mon, %d Mar 2024 10:00:00 +0100", 1+i%9), "budget")})
	}
	ingest(t, a, items...)
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	n, _ := query.ParseHuman("budget")
	vals := []string{"", "0", "fffffffffff", "\xff\xfe", " \x08\x00\x00\x00\x00\x00\x00", strings.Repeat("z", 100000), "-1", "zzzz"}
	for _, s := range []Sort{SortNewest, SortOldest, SortLargest, SortSmallest, SortSender} {
		keys, _ := sortKeys(s)
		for _, v := range vals {
			for k := 0; k <= len(keys)+1; k++ {
				after := make([]string, k)
				for i := range after {
					after[i] = v
				}
				if k == 0 {
					continue
				}
				res, err := a.Search(ctx, n, &SearchOptions{Sort: s, Limit: 10, After: after})
				if k != len(keys) {
					if err == nil {
						t.Errorf("%s: a cursor of %d values for %d keys was taken", s, k, len(keys))
					}
					continue
				}
				if err != nil {
					t.Errorf("%s cursor %q: %v", s, v[:min(len(v), 10)], err)
				} else if len(res.Hits) > 10 {
					t.Errorf("%s: %d hits", s, len(res.Hits))
				}
			}
		}
	}
}

// TestReviewRepliesOrder: the replies to a message come oldest first by
// their sent dates (before 1970 too), those without a date last, ties by
// id, whatever order they arrived in.
func TestReviewRepliesOrder(t *testing.T) {
	a := openTest(t, t.TempDir())
	defer a.Close()
	ctx := context.Background()
	mustMailbox(t, a, "alice", "INBOX")
	rng := rand.New(rand.NewPCG(3, 3))
	var items []Item
	for i := range 60 {
		date := ""
		if rng.IntN(6) > 0 {
			date = "Date: " + time.Unix(rng.Int64N(1<<33)-1<<32, 0).UTC().Format(time.RFC1123Z) + "\r\n"
		}
		raw := fmt.Sprintf("From: r@example.org\r\nSubject: re %d\r\n%sMessage-ID: <r%d@x>\r\nIn-Reply-To: <p@x>\r\n\r\nreply %d\r\n", i, date, i, i)
		items = append(items, Item{Account: "alice", Mailbox: "INBOX", UIDValidity: 7, UID: uint32(i + 1), Raw: []byte(raw)})
	}
	ingest(t, a, items...)
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := a.Replies(ctx, "p@x", 100)
	if err != nil || len(got) != len(items) {
		t.Fatalf("%d replies, %v", len(got), err)
	}
	hits := map[string]Hit{}
	for _, id := range got {
		h, err := a.Message(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		hits[id] = *h
	}
	want := slices.Clone(got)
	slices.SortFunc(want, func(x, y string) int {
		hx, hy := hits[x], hits[y]
		if c := cmp.Compare(btoi(hx.Date.IsZero()), btoi(hy.Date.IsZero())); c != 0 {
			return c
		}
		return cmp.Or(hx.Date.Compare(hy.Date), strings.Compare(x, y))
	})
	if !slices.Equal(got, want) {
		t.Errorf("replies out of order:\n got %v\nwant %v", got, want)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestReviewReadOnlyOldMapping: a read-only open (a one-shot `mailvault
// search` with no serve running, right after an upgrade) of an index a
// mapping-7 mailvault made, which has no sort keys, still sorts by the
// dates and sizes in every field order, pages by cursor, and counts the
// months, on the numeric fields that index has; before, every hit was
// "missing" its key and they came back in id order.
func TestReviewReadOnlyOldMapping(t *testing.T) {
	dir := t.TempDir()
	a := openTest(t, dir)
	ctx := context.Background()
	mustMailbox(t, a, "alice", "INBOX")
	rng := rand.New(rand.NewPCG(7, 7))
	var items []Item
	for i := range 40 {
		d := time.Date(1960+rng.IntN(70), time.Month(1+rng.IntN(12)), 1+rng.IntN(28), 0, 0, 0, 0, time.UTC)
		items = append(items, Item{Account: "alice", Mailbox: "INBOX", UIDValidity: 7, UID: uint32(i + 1),
			Raw: msg(fmt.Sprintf("C <c%d@example.org>", rng.IntN(3)), fmt.Sprintf("budget %d", i), d.Format(time.RFC1123Z), "budget"+strings.Repeat(" x", rng.IntN(50)))})
	}
	ingest(t, a, items...)
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	n, _ := query.ParseHuman("budget")
	want := map[Sort][]string{}
	for _, s := range []Sort{SortNewest, SortOldest, SortLargest, SortSmallest, SortSender} {
		res, err := a.Search(ctx, n, &SearchOptions{Limit: 100, Sort: s})
		if err != nil || len(res.Hits) != len(items) {
			t.Fatal(err)
		}
		for _, h := range res.Hits {
			want[s] = append(want[s], h.SHA256)
		}
	}
	wantFacets, err := a.Search(ctx, n, &SearchOptions{Limit: 1, Facets: true})
	if err != nil {
		t.Fatal(err)
	}
	// The index as mapping 7 wrote it: the same documents without the
	// sort keys, under version 7.
	for _, it := range items {
		doc, _ := buildDoc(mime.Parse(it.Raw, a.opts.Limits), int64(len(it.Raw)), nil)
		delete(doc, fieldSortTime)
		delete(doc, fieldSortSize)
		delete(doc, fieldDayKey)
		if err := a.idx.Index(store.KeyOf(it.Raw).String(), doc); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.idx.SetInternal(mappingKey, []byte("7")); err != nil {
		t.Fatal(err)
	}
	a.Close()
	ro, err := Open(dir, &Options{Layout: testLayout, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if ro.oldMapping != "7" {
		t.Fatalf("old mapping %q", ro.oldMapping)
	}
	for s, w := range want {
		var paged, after []string
		for range len(items) {
			res, err := ro.Search(ctx, n, &SearchOptions{Limit: 7, Sort: s, After: after})
			if err != nil {
				t.Fatalf("%s over a mapping-7 index: %v", s, err)
			}
			for _, h := range res.Hits {
				paged = append(paged, h.SHA256)
			}
			if len(res.Hits) < 7 {
				break
			}
			after = res.After
		}
		if !slices.Equal(paged, w) {
			t.Errorf("%s over a mapping-7 index, by cursor: another order than mapping 8's", s)
		}
	}
	res, err := ro.Search(ctx, n, &SearchOptions{Limit: 1, Facets: true})
	if err != nil || !slices.Equal(res.Facets.Months, wantFacets.Facets.Months) || len(res.Facets.Months) < 10 {
		t.Errorf("months over a mapping-7 index: %v (%v), want %v", res.Facets.Months, err, wantFacets.Facets.Months)
	}
}
