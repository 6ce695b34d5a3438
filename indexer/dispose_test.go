package indexer

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
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

// allow is a MayDelete that lets every disposal through.
func allow(context.Context) error { return nil }

func dispose(t *testing.T, a *Archive, k store.Key) Tombstone {
	t.Helper()
	ts, err := a.Dispose(context.Background(), Disposal{Key: k, Reason: "expired", Rule: "retention:mail-6y", Actor: "operator", MayDelete: allow})
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
	// Bad input: no reason, no check, unknown message.
	if _, err := a.Dispose(ctx, Disposal{Key: keys[2], Rule: "erasure", Actor: "x", MayDelete: allow}); err == nil {
		t.Error("Dispose without a reason succeeded")
	}
	if _, err := a.Dispose(ctx, Disposal{Key: keys[2], Reason: "r", Rule: "erasure", Actor: "x"}); err == nil || !strings.Contains(err.Error(), "MayDelete") {
		t.Errorf("Dispose without a check (MayDelete) = %v, want refused", err)
	}
	if _, err := a.TombstoneOf(ctx, keys[2]); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("unchecked disposal left a tombstone: %v", err)
	}
	if _, err := a.Dispose(ctx, Disposal{Key: store.KeyOf([]byte("nope")), Reason: "r", Rule: "erasure", Actor: "x", MayDelete: allow}); !errors.Is(err, ErrNotCataloged) {
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

// A disposal interrupted after its tombstone (at any later step) is not
// finished by Open (the archive cannot check the holds' queries), is named
// by verify, and is finished by FinishPending with a check that allows it;
// one the check refuses stays pending, untouched.
func TestDisposeResumes(t *testing.T) {
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
			if ts, _ := a.TombstoneOf(ctx, k); ts.State != catalog.TombstonePending {
				t.Fatalf("Open finished a pending disposal without a hold check: %+v", ts)
			}
			if _, _, err := a.FinishPending(ctx, nil); err == nil {
				t.Error("FinishPending without a check succeeded")
			}
			held := errors.New("held by matter acme")
			n, parked, err := a.FinishPending(ctx, func(context.Context, Tombstone) error { return held })
			if err != nil || n != 0 || len(parked) != 1 || !strings.Contains(parked[0].Why, "acme") {
				t.Fatalf("FinishPending under a refusing check = %d %+v %v; want 1 left pending", n, parked, err)
			}
			if ts, _ := a.TombstoneOf(ctx, k); ts.State != catalog.TombstonePending {
				t.Fatalf("a refused pending disposal was finished: %+v", ts)
			}
			if n, parked, err := a.FinishPending(ctx, func(context.Context, Tombstone) error { return nil }); err != nil || n != 1 || len(parked) != 0 {
				t.Fatalf("FinishPending = %d %+v %v; want 1 finished", n, parked, err)
			}
			checkDisposed(t, a, k)
			verifyDisposed(t, a, 6, 1)
		})
	}
}

// F3: a tombstone row INSERTed by hand (no started step) is never finished
// by Open or FinishPending, even when the check allows it: the blob stays,
// verify names it. Only an explicit, checked Dispose of that message
// finishes it.
func TestDisposeForgedTombstone(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a, keys := disposeFixture(t, dir)
	k := keys[2]
	a.Close()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO tombstones(sha256, size, reason, rule, actor, at, state) VALUES (?, 100, 'expired', 'retention:finra-6y', 'alice', '2026-01-01T00:00:00Z', 'pending')`, k.String()); err != nil {
		t.Fatal(err)
	}
	db.Close()
	a = openTest(t, dir)
	defer a.Close()
	n, parked, err := a.FinishPending(ctx, allowPending)
	if err != nil || n != 0 || len(parked) != 1 || !strings.Contains(parked[0].Why, "started") {
		t.Fatalf("FinishPending of a forged tombstone = %d %+v %v; want it left pending (never started)", n, parked, err)
	}
	if ok, _ := a.store.Exists(ctx, k); !ok {
		t.Fatal("the forged tombstone's blob was deleted")
	}
	if why, _ := a.PendingWhy(ctx, parked[0].Tombstone); !strings.Contains(why, "never started") {
		t.Errorf("PendingWhy = %q", why)
	}
	rep, err := a.Verify(ctx, nil)
	if err != nil || len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0].Detail, "never started") {
		t.Errorf("verify = %+v, %v; want the forged tombstone named as never started", rep.Problems, err)
	}
	// A refused explicit Dispose leaves it too; an allowed one finishes it.
	if _, err := a.Dispose(ctx, Disposal{Key: k, Reason: "r", Rule: "erasure", Actor: "x", MayDelete: func(context.Context) error { return errors.New("held") }}); err == nil {
		t.Fatal("Dispose of a held message with a forged tombstone succeeded")
	}
	if ok, _ := a.store.Exists(ctx, k); !ok {
		t.Fatal("blob deleted by a refused Dispose")
	}
	dispose(t, a, k)
	checkDisposed(t, a, k)
}

func allowPending(context.Context, Tombstone) error { return nil }

// F8: a copy arriving while a disposal is being decided (here: ingested
// from inside MayDelete, which runs under the commit lock) waits for the
// disposal, and then is stored with its bytes: no acknowledged copy is
// left without them. A started disposal whose message got a copy after
// its tombstone is not finished (ErrNewCopies).
func TestDisposeCopyArrivingMeanwhile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a, keys := disposeFixture(t, dir)
	defer func() { a.Close() }()
	mustMailbox(t, a, "carol", "INBOX")
	raw, err := a.Raw(keys[4].String())
	if err != nil {
		t.Fatal(err)
	}
	ingested := make(chan error, 1)
	_, err = a.Dispose(ctx, Disposal{Key: keys[4], Reason: "r", Rule: "retention:p", Actor: "x", MayDelete: func(context.Context) error {
		go func() {
			_, err := a.Ingest(ctx, []Item{{Account: "carol", Mailbox: "INBOX", UIDValidity: 7, UID: 1, Raw: raw}})
			ingested <- err
		}()
		select {
		case err := <-ingested:
			return fmt.Errorf("the copy was acknowledged during the hold check (%v): the commit lock is not held", err)
		case <-time.After(300 * time.Millisecond):
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-ingested; err != nil {
		t.Fatal(err)
	}
	got, err := a.Raw(keys[4].String())
	if err != nil || !bytes.Equal(got, raw) {
		t.Fatalf("the copy acknowledged after the disposal has no bytes: %v", err)
	}

	// Started, then a copy arrives (a crash between): not finished.
	k := keys[5]
	if _, err := a.cat.AddTombstone(ctx, k, "expired", "retention:p", "operator", time.Now()); err != nil {
		t.Fatal(err)
	}
	raw5, _ := a.Raw(k.String())
	ingest(t, a, Item{Account: "carol", Mailbox: "INBOX", UIDValidity: 7, UID: 2, Raw: raw5})
	n, parked, err := a.FinishPending(ctx, allowPending)
	if err != nil || n != 0 || len(parked) != 1 || !strings.Contains(parked[0].Why, "arrived after") {
		t.Fatalf("FinishPending with a newer copy = %d %+v %v; want it left pending", n, parked, err)
	}
	if _, err := a.Dispose(ctx, Disposal{Key: k, Reason: "r", Rule: "retention:p", Actor: "x", MayDelete: allow}); !errors.Is(err, ErrNewCopies) {
		t.Fatalf("Dispose with a newer copy = %v, want ErrNewCopies", err)
	}
	if got, err := a.Raw(k.String()); err != nil || !bytes.Equal(got, raw5) {
		t.Fatalf("newer copy lost its bytes: %v", err)
	}
}
