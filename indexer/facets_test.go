package indexer

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"mailvault/query"
)

func TestSearchFacets(t *testing.T) {
	a := openTest(t, t.TempDir())
	defer a.Close()
	ctx := context.Background()
	mustMailbox(t, a, "alice", "INBOX")
	mustMailbox(t, a, "alice", "Archive")
	mustMailbox(t, a, "bob", "INBOX")
	att := "From: x@example.org\r\nSubject: budget with file\r\nDate: Tue, 5 Mar 2024 12:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\nContent-Type: text/plain\r\n\r\nbudget\r\n--q\r\nContent-Type: application/pdf; name=a.pdf\r\n\r\nxx\r\n--q--\r\n"
	ingest(t, a,
		Item{Account: "alice", Mailbox: "INBOX", UIDValidity: 7, UID: 1, Raw: msg("C <c@example.org>", "budget one", "Mon, 4 Mar 2024 10:00:00 +0100", "budget")},
		Item{Account: "alice", Mailbox: "Archive", UIDValidity: 7, UID: 1, Raw: msg("C <c@example.org>", "budget two", "Mon, 1 Apr 2024 10:00:00 +0100", "budget")},
		Item{Account: "bob", Mailbox: "INBOX", UIDValidity: 7, UID: 1, Raw: msg("C <c@example.org>", "budget one", "Mon, 4 Mar 2024 10:00:00 +0100", "budget")},
		Item{Account: "bob", Mailbox: "INBOX", UIDValidity: 7, UID: 2, Raw: []byte(att)},
		Item{Account: "bob", Mailbox: "INBOX", UIDValidity: 7, UID: 3, Raw: msg("C <c@example.org>", "lunch", "Mon, 4 Mar 2024 10:00:00 +0100", "pizza")},
	)
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	n, _ := query.ParseHuman("budget")
	res, err := a.Search(ctx, n, &SearchOptions{Facets: true, Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	f := res.Facets
	if res.Total != 3 || f == nil {
		t.Fatalf("total %d, facets %+v", res.Total, f)
	}
	places := map[string]int{}
	for _, p := range f.Places {
		places[p.Account+"/"+p.Mailbox] = p.Count
	}
	if places["alice/INBOX"] != 1 || places["alice/Archive"] != 1 || places["bob/INBOX"] != 2 || len(places) != 3 {
		t.Errorf("places %v", places)
	}
	if len(f.Months) != 2 || f.Months[0] != (MonthCount{"2024-03", 2}) || f.Months[1] != (MonthCount{"2024-04", 1}) {
		t.Errorf("months %+v", f.Months)
	}
	if f.WithAttachments != 1 {
		t.Errorf("with attachments %d", f.WithAttachments)
	}
}

// TestOldIndexMappingIsRebuilt: an index made with another mapping version
// (here: one without the version key's current value) is rebuilt on open,
// and answers as before.
func TestOldIndexMappingIsRebuilt(t *testing.T) {
	dir := t.TempDir()
	a := openTest(t, dir)
	mustMailbox(t, a, "alice", "INBOX")
	ingest(t, a, Item{Account: "alice", Mailbox: "INBOX", UIDValidity: 7, UID: 1, Raw: msg("C <c@example.org>", "zeppelin", "Mon, 4 Mar 2024 10:00:00 +0100", "x")})
	if err := a.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := a.idx.SetInternal(mappingKey, []byte("1")); err != nil {
		t.Fatal(err)
	}
	a.Close()
	a = openTest(t, dir)
	defer a.Close()
	if v, _ := a.idx.GetInternal(mappingKey); string(v) != mappingVersion {
		t.Errorf("mapping version after reopen: %q, want %q", v, mappingVersion)
	}
	if err := a.CatchUp(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if hits := find(t, a, "zeppelin", nil); len(hits) != 1 {
		t.Errorf("search after the rebuild: %d hits", len(hits))
	}
}

func TestSenderFacetAndReplies(t *testing.T) {
	a := openTest(t, t.TempDir())
	defer a.Close()
	ctx := context.Background()
	mustMailbox(t, a, "alice", "INBOX")
	mk := func(from, id, refs string) []byte {
		return []byte("From: " + from + "\r\nSubject: budget\r\nMessage-ID: <" + id + ">\r\nDate: Tue, 5 Mar 2024 12:00:00 +0000\r\n" + refs + "\r\nbudget\r\n")
	}
	ingest(t, a,
		Item{Account: "alice", Mailbox: "INBOX", UIDValidity: 7, UID: 1, Raw: mk("Bob <Bob@Example.org>", "p@x", "")},
		Item{Account: "alice", Mailbox: "INBOX", UIDValidity: 7, UID: 2, Raw: mk("bob@example.org", "r1@x", "In-Reply-To: <p@x>\r\n")},
		Item{Account: "alice", Mailbox: "INBOX", UIDValidity: 7, UID: 3, Raw: mk("Carol <carol@example.org>", "r2@x", "References: <p@x> <r1@x>\r\n")},
	)
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	n, _ := query.ParseHuman("budget")
	res, err := a.Search(ctx, n, &SearchOptions{Facets: true})
	if err != nil {
		t.Fatal(err)
	}
	if s := res.Facets.Senders; len(s) != 2 || s[0] != (SenderCount{"bob@example.org", 2}) || s[1] != (SenderCount{"carol@example.org", 1}) {
		t.Errorf("senders %+v", s)
	}
	replies, err := a.Replies(ctx, "p@x", 10)
	if err != nil || len(replies) != 2 {
		t.Errorf("replies to p@x: %v, %v", replies, err)
	}
	if r, _ := a.Replies(ctx, "r1@x", 10); len(r) != 1 {
		t.Errorf("replies to r1@x: %v", r)
	}
}

// TestSearchAfter pages through every match by sort key, each once, in the
// same order as offsets give.
func TestSearchAfter(t *testing.T) {
	a := openTest(t, t.TempDir())
	defer a.Close()
	ctx := context.Background()
	mustMailbox(t, a, "alice", "INBOX")
	var items []Item
	for i := range 23 {
		items = append(items, Item{Account: "alice", Mailbox: "INBOX", UIDValidity: 7, UID: uint32(i + 1),
			Raw: msg("C <c@example.org>", fmt.Sprintf("budget %d", i), fmt.Sprintf("Mon, %d Mar 2024 10:00:00 +0100", 1+i%5), "budget")})
	}
	ingest(t, a, items...)
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	n, _ := query.ParseHuman("budget")
	all, err := a.Search(ctx, n, &SearchOptions{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var paged []string
	var after []string
	for range 10 {
		res, err := a.Search(ctx, n, &SearchOptions{Limit: 5, After: after})
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range res.Hits {
			paged = append(paged, h.SHA256)
		}
		if len(res.Hits) < 5 {
			break
		}
		after = res.After
	}
	var want []string
	for _, h := range all.Hits {
		want = append(want, h.SHA256)
	}
	if !slices.Equal(paged, want) {
		t.Errorf("paging by sort key gave %d hits, offsets %d; or a different order", len(paged), len(want))
	}
}

// TestMonthFacetGenerated: the timeline's count for every month equals the
// number of matching messages whose sent date falls in it, counted from the
// messages themselves, over generated dates spread across the facet's years
// and outside them (those are not counted), in several zones.
func TestMonthFacetGenerated(t *testing.T) {
	a := openTest(t, t.TempDir())
	defer a.Close()
	ctx := context.Background()
	mustMailbox(t, a, "alice", "INBOX")
	rng := rand.New(rand.NewPCG(14, 1))
	want := map[string]int{}
	var items []Item
	for i := range 400 {
		y := facetFirstYear - 3 + rng.IntN(facetLastYear-facetFirstYear+7)
		d := time.Date(y, time.Month(1+rng.IntN(12)), 1+rng.IntN(28), rng.IntN(24), 0, 0, 0, time.FixedZone("", 3600*(rng.IntN(25)-12)))
		word := "budget"
		if i%5 == 0 {
			word = "lunch" // does not match
		} else if y >= facetFirstYear && y <= facetLastYear {
			want[d.Format("2006-01")]++ // the day in the message's own zone
		}
		items = append(items, Item{Account: "alice", Mailbox: "INBOX", UIDValidity: 1, UID: uint32(i + 1),
			Raw: msg("C <c@example.org>", fmt.Sprintf("%s %d", word, i), d.Format(time.RFC1123Z), word)})
	}
	ingest(t, a, items...)
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	n, _ := query.ParseHuman("budget")
	res, err := a.Search(ctx, n, &SearchOptions{Facets: true, Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for i, m := range res.Facets.Months {
		got[m.Month] = m.Count
		if i > 0 && res.Facets.Months[i-1].Month >= m.Month {
			t.Errorf("months out of order: %v", res.Facets.Months)
		}
	}
	if len(want) < 30 || !maps.Equal(got, want) {
		t.Errorf("month facet:\n got %v\nwant %v", got, want)
	}
}
