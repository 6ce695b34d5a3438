package ledger

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
)

// KindState leaves record the state of a small mutable table after each
// change mailvault makes to it: Name names the table ("users": users and
// their tokens; "holds"), SHA256 is the digest of its rows (StateDigest),
// ID the change's audit row (or, for a change made without one, the leaf's
// place). Appending, deleting or editing those rows leaves no trace in an
// append-only log, so instead Verify compares each table's digest now with
// the last one mailvault recorded: a role raised, a token inserted, a hold
// released by an UPDATE behind the archive's back shows. The writer appends
// the leaf while its change commits (Log.CommitAndAppend), so the log's
// last state leaf is the table's last committed state.
const KindState = "state"

func init() { Direct[KindState] = true }

// StateSource gives the digests of the tables whose state is ledgered, by
// name.
type StateSource interface {
	LedgerStates(ctx context.Context) (map[string]string, error)
}

// StateDigest is the digest of a table's rows, each given as its fields:
// SHA-256 over the rows, sorted, each field tab-separated (a tab or newline
// in a field is escaped), one row per line.
func StateDigest(rows [][]string) string {
	lines := make([]string, len(rows))
	esc := strings.NewReplacer(`\`, `\\`, "\t", `\t`, "\n", `\n`)
	for i, r := range rows {
		f := make([]string, len(r))
		for j, v := range r {
			f[j] = esc.Replace(v)
		}
		lines[i] = strings.Join(f, "\t") + "\n"
	}
	sort.Strings(lines)
	h := sha256.New()
	for _, l := range lines {
		h.Write([]byte(l))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// EmptyState is the digest of a table with no rows.
var EmptyState = StateDigest(nil)

// CommitAndAppend runs commit holding the log's lock and, when it succeeds,
// appends leaves (a leaf whose ID is 0 gets its place + 1 as ID): so that
// two processes' changes reach the log in the order they committed.
func (l *Log) CommitAndAppend(commit func() error, leaves ...Leaf) error {
	return l.locked(func() error {
		if err := commit(); err != nil {
			return err
		}
		var bs [][]byte
		for i, lf := range leaves {
			if lf.ID == 0 {
				lf.ID = l.n + int64(i) + 1
			}
			bs = append(bs, lf.Encode())
		}
		return l.appendLocked(bs)
	})
}

// checkStates compares the tables' digests with the last state leaves.
func checkStates(ctx context.Context, r *Report, l *Log, src StateSource, last map[string]Leaf) error {
	now, err := src.LedgerStates(ctx)
	if err != nil {
		return fmt.Errorf("ledger: reading the tables' state: %w", err)
	}
	for name, digest := range now {
		lf, ok := last[name]
		switch {
		case !ok && digest == EmptyState:
		case !ok:
			r.add(Problem{Kind: KindState, What: fmt.Sprintf("%s: rows exist but mailvault never recorded a change to them: written behind the archive's back", name)})
		case lf.SHA256 != digest:
			r.add(Problem{Kind: KindState, ID: lf.ID, What: fmt.Sprintf("%s: not as the last change mailvault made left them (its leaf: row %d at %s): a row was inserted, edited or deleted behind the archive's back", name, lf.ID, lf.At)})
		}
	}
	for name, lf := range last {
		if _, ok := now[name]; !ok && lf.SHA256 != EmptyState {
			r.add(Problem{Kind: KindState, What: fmt.Sprintf("%s: recorded by the ledger but not found now", name)})
		}
	}
	return nil
}
