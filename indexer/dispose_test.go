package indexer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/blevesearch/bleve/v2"

	"mailvault/indexer/catalog"
	"mailvault/indexer/store"
	"mailvault/query"
)

// disposeFixture is an archive of six messages in alice/INBOX, the first
// also in bob/Archive; it returns their keys.
func disposeFixture(t *testing.T, dir string) (*Archive, []store.Key) {
	t.Helper()
	a := openTest(t, dir)
	mustMailbox(t, a, "alice", "INBOX")
	mustMailbox(t, a, "bob", "Archive")
	var items []Item
	var keys []store.Key
	for i := range 6 {
		raw := msg("carol@example.org", fmt.Sprintf("quarterly %d", i), "Mon, 4 Mar 2024 10:00:00 +0100", "zebra crossing")
		items = append(items, Item{Account: "alice", Mailbox: "INBOX", UIDValidity: 7, UID: uint32(i + 1), Raw: raw, Flags: []string{`\Seen`, "$Lawsuit"}})
		keys = append(keys, store.KeyOf(raw))
	}
	items = append(items, Item{Account: "bob", Mailbox: "Archive", UIDValidity: 7, UID: 1, Raw: items[0].Raw})
	ingest(t, a, items...)
	return a, keys
}

func dispose(t *testing.T, a *Archive, k store.Key) Tombstone {
	t.Helper()
	ts, err := a.Dispose(context.Background(), Disposal{Key: k, Reason: "expired", Rule: "retention:mail-6y", Actor: "operator"})
	if err != nil {
		t.Fatalf("Dispose(%s): %v", k, err)
	}
	return ts
}

// checkDisposed asserts every consequence of a finished disposal of k.
func checkDisposed(t *testing.T, a *Archive, k store.Key) {
	t.Helper()
	ctx := context.Background()
	ts, err := a.TombstoneOf(ctx, k)
	if err != nil || ts.State != catalog.TombstoneDone || ts.SHA256 != k.String() {
		t.Fatalf("tombstone of %s = %+v, %v; want done", k, ts, err)
	}
	if ok, _ := a.store.Exists(ctx, k); ok {
		t.Errorf("blob of %s still in the store", k)
	}
	var doc bool
	a.withIndex(func(idx bleve.Index) error {
		d, err := idx.Document(k.String())
		doc = d != nil
		return err
	})
	if doc {
		t.Errorf("index still has a document for %s", k)
	}
	h, err := a.Message(ctx, k.String())
	if err != nil {
		t.Fatalf("Message(%s) after disposal: %v (the row stays)", k, err)
	}
	if h.Subject != "" || h.From != "" || !h.Date.IsZero() {
		t.Errorf("metadata of %s not scrubbed: %+v", k, h)
	}
	if h.Size == 0 || len(h.Occurrences) == 0 {
		t.Errorf("size or occurrences of %s gone: %+v", k, h)
	}
	for _, o := range h.Occurrences {
		if len(o.Flags) != 0 {
			t.Errorf("flags of %s not scrubbed: %v", k, o.Flags)
		}
	}
	_, err = a.Raw(k.String())
	var de *DisposedError
	if !errors.As(err, &de) || !errors.Is(err, ErrDisposed) || errors.Is(err, ErrBlobCorrupt) || de.Tombstone.Rule != ts.Rule {
		t.Errorf("Raw(%s) = %v, want a DisposedError naming rule %s", k, err, ts.Rule)
	}
}

func verifyDisposed(t *testing.T, a *Archive, messages, disposed int) {
	t.Helper()
	rep, err := a.Verify(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 0 || rep.Messages != messages || rep.Disposed != disposed || rep.Blobs != messages-disposed {
		t.Fatalf("verify = %+v, want %d messages, %d disposed, no problems", rep, messages, disposed)
	}
}

func TestDispose(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a, keys := disposeFixture(t, dir)
	defer func() { a.Close() }()
	if hits := find(t, a, "zebra", &SearchOptions{Limit: 100}); len(hits) != 6 {
		t.Fatalf("before: %d hits", len(hits))
	}
	first := dispose(t, a, keys[0])
	dispose(t, a, keys[1])
	checkDisposed(t, a, keys[0])
	checkDisposed(t, a, keys[1])
	if hits := find(t, a, "zebra", &SearchOptions{Limit: 100}); len(hits) != 4 {
		t.Errorf("after disposing of 2: %d hits, want 4", len(hits))
	}
	// Idempotent: the same tombstone again, nothing new.
	again := dispose(t, a, keys[0])
	if again.ID != first.ID {
		t.Errorf("second Dispose made tombstone %d, want %d again", again.ID, first.ID)
	}
	if all, _ := a.Tombstones(ctx, 0, 0, ""); len(all) != 2 {
		t.Errorf("%d tombstones, want 2", len(all))
	}
	verifyDisposed(t, a, 6, 2)

	// MayDelete refusing (a hold) changes nothing.
	held := errors.New("held by matter acme")
	_, err := a.Dispose(ctx, Disposal{Key: keys[2], Reason: "r", Rule: "erasure", Actor: "x", MayDelete: func(context.Context) error { return held }})
	if !errors.Is(err, held) {
		t.Fatalf("Dispose under a refusing MayDelete = %v", err)
	}
	if _, err := a.TombstoneOf(ctx, keys[2]); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("refused disposal left a tombstone: %v", err)
	}
	// Bad input: no reason, unknown message.
	if _, err := a.Dispose(ctx, Disposal{Key: keys[2], Rule: "erasure", Actor: "x"}); err == nil {
		t.Error("Dispose without a reason succeeded")
	}
	if _, err := a.Dispose(ctx, Disposal{Key: store.KeyOf([]byte("nope")), Reason: "r", Rule: "erasure", Actor: "x"}); !errors.Is(err, ErrNotCataloged) {
		t.Errorf("Dispose of an unknown message = %v, want ErrNotCataloged", err)
	}

	// IMAP SEARCH over a mailbox with disposed messages: their UIDs stay,
	// their content matches nothing.
	n, _ := query.ParseIMAP("BODY zebra")
	res, err := a.SearchIMAP(ctx, "alice", "INBOX", n, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.UIDs, []uint32{3, 4, 5, 6}) {
		t.Errorf("BODY zebra = %v, want [3 4 5 6]", res.UIDs)
	}
	n, _ = query.ParseIMAP("ALL")
	if res, _ := a.SearchIMAP(ctx, "alice", "INBOX", n, nil); len(res.UIDs) != 6 {
		t.Errorf("ALL = %v, want 6 UIDs", res.UIDs)
	}

	// A rebuilt index neither fails on nor resurrects them.
	a.Close()
	if a, err = Open(dir, &Options{DiscardIndex: true}); err != nil {
		t.Fatal(err)
	}
	if err := a.CatchUp(ctx, nil); err != nil {
		t.Fatalf("CatchUp after disposals: %v", err)
	}
	if hits := find(t, a, "zebra", &SearchOptions{Limit: 100}); len(hits) != 4 {
		t.Errorf("after reindex: %d hits, want 4", len(hits))
	}
	verifyDisposed(t, a, 6, 2)
	if err := a.Reindex(ctx, nil); err != nil {
		t.Fatalf("online Reindex after disposals: %v", err)
	}
	verifyDisposed(t, a, 6, 2)
}

// A disposal interrupted after its tombstone (at any later step) is
// finished by the next writer's Open; verify names it meanwhile.
func TestDisposeResumesOnOpen(t *testing.T) {
	ctx := context.Background()
	for _, step := range []string{"tombstone", "index", "blob"} {
		t.Run(step, func(t *testing.T) {
			dir := t.TempDir()
			a, keys := disposeFixture(t, dir)
			k := keys[3]
			if _, err := a.cat.AddTombstone(ctx, k, "expired", "retention:p", "operator", time.Now()); err != nil {
				t.Fatal(err)
			}
			if step == "index" || step == "blob" {
				a.Flush(ctx)
				a.withIndex(func(idx bleve.Index) error { return idx.Delete(k.String()) })
			}
			if step == "blob" {
				if _, err := a.deleteBlob(ctx, k, "test"); err != nil {
					t.Fatal(err)
				}
			}
			a.Close()
			ro, err := Open(dir, &Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			rep, err := ro.Verify(ctx, nil)
			ro.Close()
			if err != nil || len(rep.Problems) != 1 || rep.Problems[0].Kind != "disposal-pending" {
				t.Fatalf("verify of an interrupted disposal = %+v, %v; want one disposal-pending", rep, err)
			}
			a = openTest(t, dir)
			defer a.Close()
			checkDisposed(t, a, k)
			verifyDisposed(t, a, 6, 1)
		})
	}
}
