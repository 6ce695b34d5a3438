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
// Locks and checks (the hostile review's F3 and F8):
//
//   - Dispose holds maintMu and commitMu from before MayDelete (the
//     service's hold check and its audit row) until the tombstone is done:
//     no Commit can record a copy of the message between the check and the
//     deletion, no Reindex build a new index with its document. A Commit
//     waiting meanwhile then finds its blob gone and stores the bytes again
//     (restage, called by Commit under commitMu): a copy is never
//     acknowledged without its bytes. Its tombstone stays done and its row
//     scrubbed; the new copy is kept (the mail is back, outside retention:
//     Candidates skips a disposed message), which errs on keeping.
//   - A tombstone is made only by Dispose, only after MayDelete said yes,
//     with its "started" row in the same transaction (catalog,
//     tombstone_started). MayDelete is required.
//   - Nothing finishes a pending tombstone without asking again: Open
//     finishes none (the archive does not know the holds' queries);
//     FinishPending takes the service's check and finishes only started
//     tombstones that pass it now; Dispose of a message with a pending
//     tombstone asks MayDelete again. A pending tombstone that was never
//     started (a row INSERTed by hand) is not finished by FinishPending
//     (ErrUnstarted); one whose message got a copy after the tombstone was
//     made is not finished by anything (ErrNewCopies). Both stay pending,
//     reported by FinishPending and named by verify.

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
	CandidateOf(ctx context.Context, sha [32]byte) (catalog.Candidate, error)
	Disposed(ctx context.Context, keys [][32]byte) (map[[32]byte]bool, error)
	TombstoneStarted(ctx context.Context, id int64) (int64, bool, error)
	StartTombstone(ctx context.Context, id int64) error
	NewerOccurrences(ctx context.Context, sha [32]byte, occMax int64) (int, error)
	WORM(ctx context.Context) (catalog.WORMState, error)
	SetWORM(ctx context.Context, on bool, actor, reason string) (catalog.WORMState, error)
}

// Tombstone is a catalog tombstone; Candidate a message retention weighs.
type (
	Tombstone = catalog.Tombstone
	Candidate = catalog.Candidate
	WORMState = catalog.WORMState
)

// ErrNotCataloged is Dispose's error for a key the catalog does not hold.
var ErrNotCataloged = catalog.ErrNoMessage

// The reasons a pending tombstone is not finished (see the top of the file).
var (
	ErrUnstarted = errors.New("the tombstone was not made by a checked disposal (no started step): not finished")
	ErrNewCopies = errors.New("copies of the message arrived after its tombstone was made: the disposal is not finished, the copies keep their bytes")
)

// Disposal says what to dispose of and why.
type Disposal struct {
	Key    store.Key
	Reason string // why, for the tombstone and the audit trail (required)
	Rule   string // what allowed it: "retention:POLICY" or "erasure" (required)
	Actor  string // who asked (required)
	// MayDelete is asked right before the tombstone is made, or before a
	// pending one is finished, under the archive's commit lock (the
	// service re-checks legal holds and writes its audit row there); an
	// error stops the disposal with nothing changed. Required: a disposal
	// nobody checked is refused.
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
	if d.MayDelete == nil {
		return Tombstone{}, fmt.Errorf("dispose %s: no check (MayDelete): only the service's checked and audited path disposes", d.Key)
	}
	a.maintMu.Lock()
	defer a.maintMu.Unlock()
	a.commitMu.Lock()
	defer a.commitMu.Unlock()
	// The index caught up with every Commit before the check, so that the
	// holds' queries see every copy recorded (the writer does not take the
	// locks).
	if err := a.Flush(ctx); err != nil {
		return Tombstone{}, fmt.Errorf("dispose %s: flush the index: %w", d.Key, err)
	}
	t, err := a.cat.TombstoneOf(ctx, d.Key)
	switch {
	case err == nil:
		if t.State == catalog.TombstoneDone {
			return t, nil
		}
		// Decided before and left pending: asked again, then finished;
		// one never started is started now that the checks passed.
		if err := d.MayDelete(ctx); err != nil {
			return Tombstone{}, err
		}
		if err := a.cat.StartTombstone(ctx, t.ID); err != nil {
			return Tombstone{}, err
		}
	case errors.Is(err, catalog.ErrNotFound):
		if err := d.MayDelete(ctx); err != nil {
			return Tombstone{}, err
		}
		t, err = a.cat.AddTombstone(ctx, d.Key, d.Reason, d.Rule, d.Actor, time.Now())
		if err != nil {
			return Tombstone{}, fmt.Errorf("dispose: %w", err)
		}
	default:
		return Tombstone{}, fmt.Errorf("dispose %s: %w", d.Key, err)
	}
	if err := a.finishLocked(ctx, t); err != nil {
		return t, err
	}
	t.State = catalog.TombstoneDone
	return t, nil
}

// finishLocked runs steps 2 to 4 for t; the caller holds maintMu and
// commitMu. A tombstone not started, or whose message has copies newer
// than it, is refused (ErrUnstarted, ErrNewCopies) with nothing changed.
func (a *Archive) finishLocked(ctx context.Context, t Tombstone) error {
	if t.State == catalog.TombstoneDone {
		return nil
	}
	k, err := t.Key()
	if err != nil {
		return err
	}
	occMax, started, err := a.cat.TombstoneStarted(ctx, t.ID)
	if err != nil {
		return err
	}
	if !started {
		return fmt.Errorf("dispose %s (tombstone %d): %w", t.SHA256, t.ID, ErrUnstarted)
	}
	if n, err := a.cat.NewerOccurrences(ctx, k, occMax); err != nil {
		return err
	} else if n > 0 {
		return fmt.Errorf("dispose %s (tombstone %d): %d %w", t.SHA256, t.ID, n, ErrNewCopies)
	}
	defer a.touch("", "") // every folder the message was in
	defer a.gen.Add(1)    // the IMAP SEARCH occurrence cache holds flags
	if err := a.Flush(ctx); err != nil {
		return fmt.Errorf("dispose %s: flush the index: %w", t.SHA256, err)
	}
	if err := a.withIndex(func(idx bleve.Index) error { return idx.Delete(t.SHA256) }); err != nil {
		return fmt.Errorf("dispose %s: delete index document: %w", t.SHA256, err)
	}
	if _, err := a.deleteBlob(ctx, k, t.Rule+": "+t.Reason); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("dispose %s: %w", t.SHA256, err)
	}
	// Its IMAP SEARCH signature too (bits of the erased text, ngram.go),
	// before the tombstone is done, so that a crash redoes it.
	if err := a.forgetSignature(ctx, k); err != nil {
		return fmt.Errorf("dispose %s: %w", t.SHA256, err)
	}
	if err := a.cat.FinishTombstone(ctx, t.ID); err != nil {
		return fmt.Errorf("dispose %s: %w", t.SHA256, err)
	}
	a.views.reset() // it may hold the message's decoded text
	return nil
}

// Parked is a pending tombstone FinishPending did not finish, and why.
type Parked struct {
	Tombstone Tombstone `json:"tombstone"`
	Why       string    `json:"why"`
}

// FinishPending finishes the pending tombstones (disposals a crash
// interrupted) that were started and that check (the service's hold check
// and audit row, required) allows now, and returns how many it finished
// and those it left pending, with why. Retention apply calls it before its
// own work; Open does not (see the top of the file).
func (a *Archive) FinishPending(ctx context.Context, check func(ctx context.Context, t Tombstone) error) (int, []Parked, error) {
	if a.writer == nil {
		return 0, nil, nil
	}
	if check == nil {
		return 0, nil, errors.New("finish pending disposals: no check: only the service's checked path finishes them")
	}
	pending, err := a.cat.Tombstones(ctx, 0, 0, catalog.TombstonePending)
	if err != nil {
		return 0, nil, err
	}
	var parked []Parked
	done := 0
	for _, t := range pending {
		why, err := a.finishOnePending(ctx, t, check)
		if err != nil {
			return done, parked, err
		}
		if why != "" {
			a.log.Warn("pending disposal left pending", "sha256", t.SHA256, "tombstone", t.ID, "why", why)
			parked = append(parked, Parked{Tombstone: t, Why: why})
			continue
		}
		done++
		a.log.Info("disposal finished after an interruption", "sha256", t.SHA256, "tombstone", t.ID, "rule", t.Rule)
	}
	return done, parked, nil
}

// finishOnePending finishes t under the locks, or says why not ("" done).
func (a *Archive) finishOnePending(ctx context.Context, t Tombstone, check func(context.Context, Tombstone) error) (string, error) {
	a.maintMu.Lock()
	defer a.maintMu.Unlock()
	a.commitMu.Lock()
	defer a.commitMu.Unlock()
	_, started, err := a.cat.TombstoneStarted(ctx, t.ID)
	if err != nil {
		return "", err
	}
	if !started {
		return ErrUnstarted.Error(), nil
	}
	if err := a.Flush(ctx); err != nil {
		return "", fmt.Errorf("finish pending disposals: flush the index: %w", err)
	}
	if err := check(ctx, t); err != nil {
		return err.Error(), nil
	}
	err = a.finishLocked(ctx, t)
	switch {
	case errors.Is(err, ErrNewCopies), errors.Is(err, ErrUnstarted):
		return err.Error(), nil
	case err != nil:
		return "", err
	}
	return "", nil
}

// PendingWhy says why a pending tombstone is not finished by itself:
// "unstarted", "new copies" or "" (started, finished by the next apply).
func (a *Archive) PendingWhy(ctx context.Context, t Tombstone) (string, error) {
	occMax, started, err := a.cat.TombstoneStarted(ctx, t.ID)
	if err != nil || !started {
		return "never started: not made by a checked disposal (a row written by hand?)", err
	}
	k, err := t.Key()
	if err != nil {
		return "", err
	}
	if n, err := a.cat.NewerOccurrences(ctx, k, occMax); err != nil || n > 0 {
		return fmt.Sprintf("%d copies arrived after the tombstone was made: not finished", n), err
	}
	return "", nil
}

// restage is called by Commit under commitMu: a blob that existed when the
// batch was prepared (so nothing was staged for it) may have been disposed
// of since; it is staged again from the batch's bytes, so that the copy
// Commit acknowledges has its bytes (see the top of the file).
func (a *Archive) restage(ctx context.Context, p *Prepared) error {
	for i, st := range p.staged {
		if st.Token != "" {
			continue
		}
		ok, err := a.store.Exists(ctx, p.preps[i].key)
		if err != nil {
			return err
		}
		if ok {
			continue
		}
		ns, err := a.store.Stage(ctx, p.preps[i].key, p.items[i].Raw)
		if err != nil {
			return err
		}
		p.staged[i] = ns
		p.preps[i].stored = ns.Stored
		a.log.Warn("a copy of a disposed message arrived: its bytes are stored again", "sha256", p.preps[i].key)
	}
	return nil
}

// WORM returns the archive's recorded WORM state.
func (a *Archive) WORM(ctx context.Context) (WORMState, error) { return a.cat.WORM(ctx) }

// SetWORM records a change of the archive's WORM state (the service
// decides who may, and audits it first).
func (a *Archive) SetWORM(ctx context.Context, on bool, actor, reason string) (WORMState, error) {
	if a.writer == nil {
		return WORMState{}, fmt.Errorf("WORM: archive %s is open read-only", a.dir)
	}
	return a.cat.SetWORM(ctx, on, actor, reason)
}

// CandidateOf returns the message with key k as retention weighs it, read
// now (catalog.CandidateOf).
func (a *Archive) CandidateOf(ctx context.Context, k store.Key) (Candidate, error) {
	return a.cat.CandidateOf(ctx, k)
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

// Writable reports whether the archive was opened for writing.
func (a *Archive) Writable() bool { return a.writer != nil }
