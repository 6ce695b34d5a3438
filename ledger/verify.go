package ledger

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// Problem is one thing `ledger verify` found wrong.
type Problem struct {
	Kind string `json:"kind"`           // a leaf kind, or "ledger" / "checkpoint"
	ID   int64  `json:"id,omitempty"`   // the row's id
	Leaf int64  `json:"leaf,omitempty"` // the leaf's index + 1 (0: none)
	What string `json:"what"`
}

// Report is the outcome of Verify.
type Report struct {
	Leaves      int64            `json:"leaves"`
	Checkpoints int              `json:"checkpoints"` // checked, every place
	Timestamps  int              `json:"timestamps"`  // RFC 3161 tokens checked, every place (timestamp.go)
	Latest      *Checkpoint      `json:"latest,omitempty"`
	Rows        map[string]int64 `json:"rows"`    // rows read, by kind
	Pending     map[string]int64 `json:"pending"` // rows newer than the ledger (the next Follow adds them)
	// Unsigned counts the leaves after the latest valid checkpoint: normal
	// between checkpoints, and what a rollback to an older checkpoint
	// would hide unless a checkpoint kept elsewhere (copyDirs) is newer.
	Unsigned int64     `json:"unsigned"`
	Problems []Problem `json:"problems"`
	OK       bool      `json:"ok"`
}

// MaxPending is the longest a followed row may wait for its leaf: serve
// follows every second and every one-shot command before it exits, so a
// row older than this without a leaf means the ledger stopped following.
// InFlight is how long a direct kind's row may lack its leaf (written
// between its row and its leaf as Verify runs).
var (
	MaxPending = 10 * time.Minute
	InFlight   = time.Minute
)

// Authorizes are the audit actions that authorize a tombstone: their
// detail begins with the message's sha256 (service/retention.go).
var Authorizes = map[string]bool{"dispose": true, "erase": true}

// maxProblems bounds the report; the count goes on.
const maxProblems = 1000

func (r *Report) add(p Problem) {
	r.OK = false
	if len(r.Problems) < maxProblems {
		r.Problems = append(r.Problems, p)
	}
}

// Verify checks the ledger in full, offline from any server:
//
//  1. every leaf is hashed again and the tree rebuilt; the stored hashes
//     must be those (an edited leaf, or hashes rewritten, shows);
//  2. every signed checkpoint, in the ledger and in each of copyDirs, must
//     verify under vkey and be a tree head of the rebuilt tree (a replaced
//     checkpoint, a rewritten or truncated ledger shows: a tree with the
//     same leaves has one root);
//  3. the rows of every source are replayed against the leaves of their
//     kind, by id: a row edited, removed or inserted after its id was
//     ledgered is named. Rows newer than the ledger are counted as pending.
//
// Every RFC 3161 token beside a checkpoint must stamp it and verify
// (VerifyTimestamped also chains them to the TSA's roots).
func Verify(ctx context.Context, l *Log, sources map[string]Source, vkey string, copyDirs ...string) (*Report, error) {
	return VerifyTimestamped(ctx, l, sources, vkey, nil, copyDirs...)
}

// VerifyTimestamped is Verify with the roots the checkpoints' timestamp
// tokens must chain to (nil: each token's own certificate only).
func VerifyTimestamped(ctx context.Context, l *Log, sources map[string]Source, vkey string, tsaRoots *x509.CertPool, copyDirs ...string) (*Report, error) {
	if err := l.Refresh(); err != nil {
		return nil, err
	}
	n := l.Size()
	start := time.Now()
	r := &Report{Leaves: n, Rows: map[string]int64{}, Pending: map[string]int64{}, Problems: []Problem{}, OK: true}

	// 1. Rebuild the tree from the leaves, in memory (32 bytes a hash).
	hashes := make([]tlog.Hash, 0, tlog.StoredHashCount(n))
	mem := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			if x >= int64(len(hashes)) {
				return nil, fmt.Errorf("hash %d not computed", x)
			}
			out[i] = hashes[x]
		}
		return out, nil
	})
	byKind := map[string][]int64{} // leaf indexes by kind, in log order
	lastState := map[string]Leaf{}
	authorized := map[string]bool{} // messages an audited disposal names
	var tombstones []int64
	ids := make([]int64, n) // leaf index -> row id
	stored := l.reader()
	badHash := false
	for i := int64(0); i < n; i++ {
		if i%4096 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		b, err := l.Leaf(i)
		if err != nil {
			r.add(Problem{Kind: "ledger", Leaf: i + 1, What: err.Error()})
			return r, nil
		}
		hs, err := tlog.StoredHashes(i, b, mem)
		if err != nil {
			return nil, err
		}
		base := int64(len(hashes))
		hashes = append(hashes, hs...)
		if !badHash {
			idx := make([]int64, len(hs))
			for k := range hs {
				idx[k] = base + int64(k)
			}
			got, err := stored.ReadHashes(idx)
			if err != nil || !equalHashes(got, hs) {
				badHash = true
				r.add(Problem{Kind: "ledger", Leaf: i + 1, What: fmt.Sprintf("leaf %d does not hash to the stored tree: the leaves file or the hashes file was edited", i)})
			}
		}
		lf, err := DecodeLeaf(b)
		if err != nil {
			r.add(Problem{Kind: "ledger", Leaf: i + 1, What: fmt.Sprintf("leaf %d: %v", i, err)})
			continue
		}
		if lf.Kind == KindAudit && Authorizes[lf.Action] {
			sha, _, _ := strings.Cut(lf.Detail, " ")
			authorized[strings.TrimSuffix(sha, ":")] = true
		}
		if lf.Kind == KindTombstone {
			tombstones = append(tombstones, i)
		}
		if lf.Kind == KindState {
			lastState[lf.Name] = lf // the log's last is the table's last committed state
			continue
		}
		byKind[lf.Kind] = append(byKind[lf.Kind], i)
		ids[i] = lf.ID
	}

	// 2. Checkpoints, everywhere they are kept.
	dirs := append([]string{filepath.Join(l.dir, CheckpointDir)}, copyDirs...)
	var all []StoredCheckpoint
	for _, d := range dirs {
		cs, err := Checkpoints(d)
		if err != nil {
			return nil, err
		}
		all = append(all, cs...)
	}
	if b, err := os.ReadFile(filepath.Join(l.dir, Latest)); err == nil {
		all = append(all, StoredCheckpoint{Path: filepath.Join(l.dir, Latest), Signed: b})
	}
	if len(all) == 0 {
		r.add(Problem{Kind: "checkpoint", What: "no signed checkpoint: nothing proves the ledger was not rewritten whole (run serve with a ledger key, or mailvault ledger checkpoint)"})
	}
	if err := checkTimestamps(r, dirs, tsaRoots); err != nil {
		return nil, err
	}
	for _, sc := range all {
		c, err := OpenCheckpoint(sc.Signed, vkey)
		if err != nil {
			r.add(Problem{Kind: "checkpoint", What: fmt.Sprintf("%s: %v (replaced or forged)", sc.Path, err)})
			continue
		}
		r.Checkpoints++
		if c.Size > n {
			r.add(Problem{Kind: "checkpoint", What: fmt.Sprintf("%s: signed for %d leaves but the ledger holds %d: the ledger was truncated", sc.Path, c.Size, n)})
			continue
		}
		root, err := tlog.TreeHash(c.Size, mem)
		if err != nil {
			return nil, err
		}
		if root != c.Root {
			r.add(Problem{Kind: "checkpoint", What: fmt.Sprintf("%s: the tree of its %d leaves has another root: leaves before %d were changed", sc.Path, c.Size, c.Size)})
			continue
		}
		if r.Latest == nil || c.Size > r.Latest.Size {
			cc := c
			r.Latest = &cc
		}
	}

	if r.Latest != nil {
		r.Unsigned = n - r.Latest.Size
	} else {
		r.Unsigned = n
	}

	// 3. Replay the rows against the leaves, kind by kind.
	for _, k := range Kinds {
		src := sources[k]
		if src == nil {
			continue
		}
		// By id (direct kinds may reach the log out of order); a row
		// ledgered twice is named.
		leaves := byKind[k]
		sort.SliceStable(leaves, func(a, b int) bool { return ids[leaves[a]] < ids[leaves[b]] })
		for x := 1; x < len(leaves); x++ {
			if ids[leaves[x]] == ids[leaves[x-1]] {
				r.add(Problem{Kind: k, ID: ids[leaves[x]], Leaf: leaves[x] + 1, What: fmt.Sprintf("%s row %d has two leaves (%d and %d): the ledger's follower was misled (its cursor edited?)", k, ids[leaves[x]], leaves[x-1], leaves[x])})
			}
		}
		var maxID int64
		for _, i := range leaves {
			maxID = max(maxID, ids[i])
		}
		j := 0
		missing := func(i int64) {
			r.add(Problem{Kind: k, ID: ids[i], Leaf: i + 1, What: fmt.Sprintf("%s row %d is in the ledger (leaf %d) but no longer in its table: deleted", k, ids[i], i)})
		}
		err := src.LedgerRows(ctx, k, 0, func(row Leaf) error {
			r.Rows[k]++
			for j < len(leaves) && ids[leaves[j]] < row.ID {
				missing(leaves[j])
				j++
			}
			if j < len(leaves) && ids[leaves[j]] == row.ID {
				i := leaves[j]
				j++
				b, err := l.Leaf(i)
				if err != nil {
					return err
				}
				if got := row.Encode(); !bytes.Equal(got, b) {
					r.add(Problem{Kind: k, ID: row.ID, Leaf: i + 1, What: fmt.Sprintf("%s row %d was changed after it was ledgered: the ledger (leaf %d) has %s, the table has %s", k, row.ID, i, b, got)})
				}
				return nil
			}
			// A row with no leaf. A direct kind's writer appends the leaf
			// as it writes the row: only a row written in the last moments
			// (in flight while this runs) may lack it. A followed kind's
			// rows newer than the ledger are pending, unless they have
			// waited longer than a follower ever lets them.
			at, atErr := time.Parse(time.RFC3339Nano, row.At)
			switch {
			case Direct[k] && (atErr != nil || at.Before(start.Add(-InFlight))):
				r.add(Problem{Kind: k, ID: row.ID, What: fmt.Sprintf("%s row %d (%s) has no leaf: it was not written by mailvault (inserted behind the archive's back), or lost in a crash as it was written", k, row.ID, row.At)})
			case Direct[k]:
				r.Pending[k]++
			case row.ID > maxID && (atErr != nil || !at.Before(start.Add(-MaxPending))):
				r.Pending[k]++
			case row.ID > maxID:
				r.add(Problem{Kind: k, ID: row.ID, What: fmt.Sprintf("%s row %d (%s) is not in the ledger after more than %v: the ledger stopped following the catalog (its cursor edited?), or the row was inserted behind the archive's back", k, row.ID, row.At, MaxPending)})
			default:
				r.add(Problem{Kind: k, ID: row.ID, What: fmt.Sprintf("%s row %d is not in the ledger, though later rows are: inserted afterwards", k, row.ID)})
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("ledger: replaying %s rows: %w", k, err)
		}
		for ; j < len(leaves); j++ {
			missing(leaves[j])
		}
	}
	// Every tombstone must have been preceded by the audited action that
	// made it (the audit leaf is appended by its writer; a tombstone row
	// inserted by SQL, which the archive would then carry out, has none).
	for _, i := range tombstones {
		b, err := l.Leaf(i)
		if err != nil {
			return nil, err
		}
		lf, _ := DecodeLeaf(b)
		if !authorized[lf.SHA256] {
			r.add(Problem{Kind: KindTombstone, ID: lf.ID, Leaf: i + 1, What: fmt.Sprintf("tombstone %d deletes %s (actor %q, rule %q) but no audited disposal or erasure names it: made behind the archive's back", lf.ID, lf.SHA256, lf.Actor, lf.Rule)})
		}
	}
	if st, ok := sources[KindState].(StateSource); ok {
		if err := checkStates(ctx, r, l, st, lastState); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func equalHashes(a, b []tlog.Hash) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
