package indexer

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"mailvault/query"
)

// TestHeaderColumns: a header key's second search is answered from the
// column (no view looked at) and answers what the scan does; a disposal
// takes the message out of the column's answers; the columns of an entry
// stay within their bounds.
func TestHeaderColumns(t *testing.T) {
	a, keys := disposeFixture(t, t.TempDir())
	defer a.Close()
	ctx := context.Background()
	search := func(q string, o *IMAPSearchOptions) *IMAPResult {
		t.Helper()
		n, err := query.ParseIMAP(q)
		if err != nil {
			t.Fatal(err)
		}
		res, err := a.SearchIMAP(ctx, "alice", "INBOX", n, o)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return res
	}
	// NOT FROM "zz" (too short for the prefilter) uses the FROM column the
	// first query filled.
	for _, q := range []string{`FROM "carol@"`, `SUBJECT "quarterly 3"`, `HEADER Subject "quarterly"`, `HEADER X-None ""`, `HEADER subject ""`, `NOT FROM "zz"`} {
		first := search(q, nil)
		second := search(q, nil)
		scan := search(q, &IMAPSearchOptions{NoPrefilter: true})
		if !slices.Equal(first.UIDs, scan.UIDs) || !slices.Equal(second.UIDs, scan.UIDs) {
			t.Errorf("%s: first %v, second %v, scan %v", q, first.UIDs, second.UIDs, scan.UIDs)
		}
		if q == `FROM "carol@"` && first.Plan.Verified == 0 {
			t.Errorf("%s: the first search looked at no view", q)
		}
		if second.Plan.Verified != 0 {
			t.Errorf("%s: the second search looked at %d views, want 0 (the column)", q, second.Plan.Verified)
		}
	}
	// Every message matched FROM "carol@", so its column is complete: the
	// key needs no signature pass. Beside a key that does (BODY), the two
	// evaluators agree on which needle is which.
	if p := search(`FROM "carol@"`, nil).Plan; p.Prefiltered != 0 {
		t.Errorf(`FROM "carol@" with a complete column: %d keys prefiltered, want 0`, p.Prefiltered)
	}
	for _, q := range []string{`OR FROM "carol" BODY "zebra"`, `FROM "carol" NOT BODY "crossing"`, `OR BODY "nothing-like-it" FROM "example.org"`} {
		got, scan := search(q, nil), search(q, &IMAPSearchOptions{NoPrefilter: true})
		if !slices.Equal(got.UIDs, scan.UIDs) || got.Plan.Prefiltered != 1 {
			t.Errorf("%s: %v (%d keys prefiltered), scan %v; want the scan's, 1 key prefiltered", q, got.UIDs, got.Plan.Prefiltered, scan.UIDs)
		}
	}
	// UID 3 disposed: its values go with the cache entry.
	if got := search(`SUBJECT "quarterly 2"`, nil).UIDs; !slices.Equal(got, []uint32{3}) {
		t.Fatalf(`SUBJECT "quarterly 2" = %v, want [3]`, got)
	}
	dispose(t, a, keys[2])
	for _, q := range []string{`SUBJECT "quarterly 2"`, `FROM "carol"`, `HEADER Subject "2"`} {
		got, scan := search(q, nil).UIDs, search(q, &IMAPSearchOptions{NoPrefilter: true}).UIDs
		if slices.Contains(got, 3) || !slices.Equal(got, scan) {
			t.Errorf("%s after disposing UID 3: %v, scan %v", q, got, scan)
		}
	}
	// A column a search left incomplete is filled in the background; then
	// the key needs neither the signatures nor a view, and answers right.
	q := `HEADER SUBJECT "quarterly 4"` // not the column of "Subject"
	first := search(q, nil)
	if first.Plan.Prefiltered != 1 || first.Plan.Verified >= 5 {
		t.Fatalf("%s, first: %d keys prefiltered, %d views; want 1 and fewer than the mailbox", q, first.Plan.Prefiltered, first.Plan.Verified)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		res := search(q, nil)
		if res.Plan.Prefiltered == 0 {
			if res.Plan.Verified != 0 || !slices.Equal(res.UIDs, search(q, &IMAPSearchOptions{NoPrefilter: true}).UIDs) || !slices.Equal(res.UIDs, []uint32{5}) {
				t.Errorf("%s from the completed column: %v, %d views; want [5], none", q, res.UIDs, res.Plan.Verified)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the column was not completed in the background", q)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Bounds: at most columnKeys columns; past them the view answers, right.
	for i := range columnKeys + 4 {
		q := fmt.Sprintf(`HEADER X-Key-%d "a"`, i)
		search(q, nil)
		if res := search(q, nil); i >= columnKeys && res.Plan.Verified == 0 {
			t.Errorf("%s: answered without views past the %d columns an entry may hold", q, columnKeys)
		}
	}
	a.occMu.Lock()
	for _, e := range a.occMap {
		if n := len(e.cols.byKey); n > columnKeys {
			t.Errorf("an entry holds %d columns, want at most %d", n, columnKeys)
		}
		if b := e.cols.bytes.Load(); b > columnBytes {
			t.Errorf("an entry's columns hold %d bytes, want at most %d", b, columnBytes)
		}
	}
	a.occMu.Unlock()
}
