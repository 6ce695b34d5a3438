package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// Source gives the rows a ledger follows: the archive's catalog (messages,
// occurrences, expunges, tombstones) and the audit trail.
type Source interface {
	// Rows calls fn for every row of kind with an id above after, in id
	// order, as the leaf it makes; fn may return ErrStop to end early.
	LedgerRows(ctx context.Context, kind string, after int64, fn func(Leaf) error) error
}

// ErrStop ends a LedgerRows walk early without an error.
var ErrStop = errors.New("stop")

// Follower appends to the log every row its sources have that the log has
// not: the ledger follows the catalog and the audit trail rather than being
// written beside them, so that no path that writes a row can forget the
// ledger, and a crash between a row's commit and its leaf only delays the
// leaf (the next Follow appends it). Every process that writes rows can run
// one; the log's lock makes each row's leaf appear once.
type Follower struct {
	Log     *Log
	Sources map[string]Source // by kind

	mu   sync.Mutex
	last map[string]int64 // the last id ledgered, by kind
	at   map[string]int64 // the leaf of that id
	seen int64            // leaves of the log read into last
}

// cursorHolds checks a cursor file against the leaves it claims: the
// cursor is only a hint, and one that lies (edited to make the follower
// skip rows) is read again from the leaves. Each kind's last id must be the
// id of the leaf it names, of that kind; so an edited cursor can at worst
// make the follower ledger rows again (two leaves for a row, which Verify
// names), never skip one.
func (f *Follower) cursorHolds(c cursor) bool {
	if c.Size > f.Log.n || c.Size < 0 {
		return false
	}
	for k, id := range c.Last {
		i, ok := c.At[k]
		if !ok || i < 0 || i >= c.Size {
			return false
		}
		b, err := f.Log.Leaf(i)
		if err != nil {
			return false
		}
		lf, err := DecodeLeaf(b)
		if err != nil || lf.Kind != k || lf.ID != id {
			return false
		}
	}
	return true
}

const cursorFile = "cursor" // {size, last}: spares reading every leaf at each open

type cursor struct {
	Size int64            `json:"size"`
	Last map[string]int64 `json:"last"`
	At   map[string]int64 `json:"at"` // the leaf of each kind's last row
}

// batch bounds the leaves held in memory by one append.
const batch = 4096

// Follow appends the leaves of the rows of kinds (every kind when none is
// given) that are not yet in the log, syncing the files when sync is set,
// and returns how many it appended.
func (f *Follower) Follow(ctx context.Context, sync bool, kinds ...string) (int, error) {
	if len(kinds) == 0 {
		kinds = Kinds
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	added := 0
	err := f.Log.locked(func() error {
		if err := f.catchUp(); err != nil {
			return err
		}
		for _, k := range kinds {
			src := f.Sources[k]
			if src == nil {
				continue
			}
			for {
				var leaves [][]byte
				var ids []int64
				last := f.last[k]
				err := src.LedgerRows(ctx, k, last, func(lf Leaf) error {
					if lf.Kind != k || lf.ID <= last {
						return fmt.Errorf("ledger: source of %s gave %s row %d after %d", k, lf.Kind, lf.ID, last)
					}
					last = lf.ID
					leaves = append(leaves, lf.Encode())
					ids = append(ids, lf.ID)
					if len(leaves) >= batch {
						return ErrStop
					}
					return nil
				})
				if err != nil && !errors.Is(err, ErrStop) {
					return fmt.Errorf("ledger: reading %s rows: %w", k, err)
				}
				if len(leaves) == 0 {
					break
				}
				first := f.Log.n
				if err := f.Log.appendLocked(leaves); err != nil {
					return err
				}
				if err := f.Log.noteIDs(k, first, ids); err != nil {
					return err
				}
				f.last[k] = last
				f.at[k] = f.Log.n - 1
				f.seen = f.Log.n
				added += len(leaves)
				if len(leaves) < batch {
					break
				}
			}
		}
		if sync && added > 0 {
			if err := f.Log.syncFiles(); err != nil {
				return err
			}
		}
		if added > 0 {
			b, _ := json.Marshal(cursor{Size: f.seen, Last: f.last, At: f.at})
			os.WriteFile(filepath.Join(f.Log.dir, cursorFile), b, 0o600) // a hint: read again when it disagrees
		}
		return nil
	})
	return added, err
}

// catchUp brings last up to date with leaves other processes appended
// (called with the log locked).
func (f *Follower) catchUp() error {
	if f.last == nil {
		f.last = map[string]int64{}
		var c cursor
		if b, err := os.ReadFile(filepath.Join(f.Log.dir, cursorFile)); err == nil && json.Unmarshal(b, &c) == nil && f.cursorHolds(c) {
			f.last, f.seen, f.at = c.Last, c.Size, c.At
		}
		if f.at == nil {
			f.at = map[string]int64{}
		}
	}
	if f.seen > f.Log.n { // the log was cut back
		f.last, f.at, f.seen = map[string]int64{}, map[string]int64{}, 0
	}
	for ; f.seen < f.Log.n; f.seen++ {
		b, err := f.Log.Leaf(f.seen)
		if err != nil {
			return err
		}
		lf, err := DecodeLeaf(b)
		if err != nil {
			return fmt.Errorf("ledger: leaf %d: %w", f.seen, err)
		}
		if lf.ID > f.last[lf.Kind] {
			f.last[lf.Kind] = lf.ID
			f.at[lf.Kind] = f.seen
		}
	}
	return nil
}
