package indexer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/blevesearch/bleve/v2"

	"mailvault/indexer/catalog"
	"mailvault/indexer/store"
)

// Disposition: the only way a message's content leaves the archive
// (invariant 5: retention expiry without a legal hold, or a legal erasure
// request; the service layer decides which and checks the holds).
//
// Order, each step idempotent, so that a process killed anywhere is
// finished by the next writer (Open) or the next retention apply:
//
//  1. a tombstone is inserted, pending (catalog, tombstones.go), before
//     anything is deleted: the record of what is about to go, why, under
//     which rule and by whom;
//  2. the message's index document is deleted (durably: Bleve's Delete
//     returns once the segment is persisted), so no search finds it;
//  3. its blob is deleted from the store (a blob already gone is fine);
//  4. its personal metadata in the catalog is scrubbed and the tombstone
//     marked done, one transaction (catalog.FinishTombstone says what is
//     kept and why).
//
// The index goes before the blob because a document without a blob is a
// search hit that cannot be opened, while a blob without a document is
// only invisible; and both before the scrub, so that a scrubbed row (which
// nothing re-indexes) never has content left behind it.
//
// Dispose holds maintMu and commitMu while it deletes: no Reindex builds a
// new index with the document meanwhile, and no Commit hands the writer a
// new document for the message between the flush and the delete.

// ErrDisposed is (wrapped in) the error of every read of a message that was
// deleted on purpose; errors.As gives the *DisposedError with its tombstone.
var ErrDisposed = errors.New("message deleted by disposition")

// DisposedError is a read of a message whose tombstone says it is gone.
type DisposedError struct{ Tombstone catalog.Tombstone }

func (e *DisposedError) Error() string {
	t := e.Tombstone
	return fmt.Sprintf("message %s was deleted on %s under rule %s (%s; tombstone %d)",
		t.SHA256, t.At.Format(time.DateOnly), t.Rule, t.Reason, t.ID)
}

func (e *DisposedError) Unwrap() error { return ErrDisposed }

// disposalCatalog is the part of the catalog that keeps tombstones.
type disposalCatalog interface {
	AddTombstone(ctx context.Context, sha [32]byte, reason, rule, actor string, at time.Time) (catalog.Tombstone, error)
	FinishTombstone(ctx context.Context, id int64) error
	TombstoneOf(ctx context.Context, sha [32]byte) (catalog.Tombstone, error)
	Tombstones(ctx context.Context, afterID int64, limit int, state string) ([]catalog.Tombstone, error)
	Candidates(ctx context.Context, fn func(catalog.Candidate) error) error
	Disposed(ctx context.Context, keys [][32]byte) (map[[32]byte]bool, error)
}

// Tombstone is a catalog tombstone; Candidate a message retention weighs.
type (
	Tombstone = catalog.Tombstone
	Candidate = catalog.Candidate
)

// ErrNotCataloged is Dispose's error for a key the catalog does not hold.
var ErrNotCataloged = catalog.ErrNoMessage

// Disposal says what to dispose of and why.
type Disposal struct {
	Key    store.Key
	Reason string // why, for the tombstone and the audit trail (required)
	Rule   string // what allowed it: "retention:POLICY" or "erasure" (required)
	Actor  string // who asked (required)
	// MayDelete, when not nil, is asked right before the tombstone is made
	// (the service re-checks legal holds there); an error stops the
	// disposal with nothing changed. It is not asked when the message has a
	// tombstone already: that disposal was decided and is being finished.
	MayDelete func(ctx context.Context) error
}

// Dispose removes a message's content from the archive in the order above
// and returns its tombstone (done). A message disposed of already returns
// its tombstone again. Only a writable archive disposes.
func (a *Archive) Dispose(ctx context.Context, d Disposal) (Tombstone, error) {
	if a.writer == nil {
		return Tombstone{}, fmt.Errorf("dispose: archive %s is open read-only", a.dir)
	}
	if d.Reason == "" || d.Rule == "" || d.Actor == "" {
		return Tombstone{}, fmt.Errorf("dispose %s: %w (and a rule and an actor)", d.Key, store.ErrNoReason)
	}
	t, err := a.cat.TombstoneOf(ctx, d.Key)
	switch {
	case err == nil:
		// Decided before: finish it (no-op when done).
	case errors.Is(err, catalog.ErrNotFound):
		if d.MayDelete != nil {
			if err := d.MayDelete(ctx); err != nil {
				return Tombstone{}, err
			}
		}
		t, err = a.cat.AddTombstone(ctx, d.Key, d.Reason, d.Rule, d.Actor, time.Now())
		if err != nil {
			return Tombstone{}, fmt.Errorf("dispose: %w", err)
		}
	default:
		return Tombstone{}, fmt.Errorf("dispose %s: %w", d.Key, err)
	}
	if err := a.finishTombstone(ctx, t); err != nil {
		return t, err
	}
	t.State = catalog.TombstoneDone
	return t, nil
}

// finishTombstone runs steps 2 to 4 for t.
func (a *Archive) finishTombstone(ctx context.Context, t Tombstone) error {
	if t.State == catalog.TombstoneDone {
		return nil
	}
	k, err := t.Key()
	if err != nil {
		return err
	}
	a.maintMu.Lock()
	defer a.maintMu.Unlock()
	a.commitMu.Lock()
	defer a.commitMu.Unlock()
	defer a.gen.Add(1) // the IMAP SEARCH occurrence cache holds flags
	if err := a.Flush(ctx); err != nil {
		return fmt.Errorf("dispose %s: flush the index: %w", t.SHA256, err)
	}
	if err := a.withIndex(func(idx bleve.Index) error { return idx.Delete(t.SHA256) }); err != nil {
		return fmt.Errorf("dispose %s: delete index document: %w", t.SHA256, err)
	}
	if _, err := a.deleteBlob(ctx, k, t.Rule+": "+t.Reason); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("dispose %s: %w", t.SHA256, err)
	}
	if err := a.cat.FinishTombstone(ctx, t.ID); err != nil {
		return fmt.Errorf("dispose %s: %w", t.SHA256, err)
	}
	a.views.reset() // it may hold the message's decoded text
	return nil
}

// FinishPending finishes every pending tombstone (a disposal a crash
// interrupted) and returns how many it finished. Open calls it on a
// writable archive; retention apply calls it before its own work.
func (a *Archive) FinishPending(ctx context.Context) (int, error) {
	if a.writer == nil {
		return 0, nil
	}
	pending, err := a.cat.Tombstones(ctx, 0, 0, catalog.TombstonePending)
	if err != nil {
		return 0, err
	}
	for i, t := range pending {
		if err := a.finishTombstone(ctx, t); err != nil {
			return i, err
		}
		a.log.Info("disposal finished after an interruption", "sha256", t.SHA256, "tombstone", t.ID, "rule", t.Rule)
	}
	return len(pending), nil
}

// Tombstones returns the tombstones with id > afterID, by id (limit 0: all;
// state "" any state).
func (a *Archive) Tombstones(ctx context.Context, afterID int64, limit int, state string) ([]Tombstone, error) {
	return a.cat.Tombstones(ctx, afterID, limit, state)
}

// TombstoneOf returns the tombstone of the message with key k; a message
// with none is catalog.ErrNotFound.
func (a *Archive) TombstoneOf(ctx context.Context, k store.Key) (Tombstone, error) {
	return a.cat.TombstoneOf(ctx, k)
}

// Candidates calls fn with every message not disposed of, with its dates
// and places (one catalog snapshot).
func (a *Archive) Candidates(ctx context.Context, fn func(Candidate) error) error {
	return a.cat.Candidates(ctx, fn)
}

// disposedError turns a blob the store does not have into the
// DisposedError of its tombstone, when it has one; err otherwise.
func (a *Archive) disposedError(ctx context.Context, k store.Key, err error) error {
	if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	t, terr := a.cat.TombstoneOf(ctx, k)
	if terr != nil {
		return err
	}
	return &DisposedError{Tombstone: t}
}

// reset empties the cache.
func (c *viewCache) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ll.Init()
	clear(c.items)
	c.size = 0
}
