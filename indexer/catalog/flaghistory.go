package catalog

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
)

// Flag history: every flag set a server was seen to hold for an
// occurrence, with when and how it was seen, so that "when was it read,
// answered, marked deleted" has an answer (issue 17).
//
// Decisions:
//   - A row holds the whole set seen, not the flags added and removed.
//     Each row is then the state at its time on its own: the state at the
//     latest sighting is one row, a dropped row (below) breaks no chain,
//     and added/removed are the difference with the row before, computed
//     when read (FlagHistory).
//   - Only changes are recorded. A sweep that finds the flags as they were
//     writes nothing, so the thousandth sweep of a quiet mailbox costs no
//     row; "seen at" is when the change was first seen, not the last time
//     it was confirmed.
//   - The first sighting is the occurrence row itself (first_seen, and its
//     flags until they first change): ingest writes no history row, so
//     harvest and import cost nothing more. setFlags writes it out as a
//     history row, source first-sight, just before the first change, and
//     FlagHistory shows it for an occurrence that never changed.
//   - Bounded: a server flapping a flag records each flap as a change, so
//     an occurrence keeps at most FlagHistoryCap rows. Past that the
//     oldest row is dropped that is neither the first sighting nor the
//     first time any flag was seen (the answers the history is for); when
//     every row is such a first (a server inventing keywords), the oldest
//     after the first sighting goes. The row after a dropped one counts
//     it in dropped, so the page says changes are missing, and when.
//   - Disposal (FinishTombstone) deletes the history with the message's
//     other metadata; a held message is never disposed, so holds keep it.
//   - Sets are compared sorted: a server listing the same flags in
//     another order has not changed them.
func init() {
	moreSchemas = append(moreSchemas, `
CREATE TABLE IF NOT EXISTS flag_history (
	id            INTEGER PRIMARY KEY,
	occurrence_id INTEGER NOT NULL REFERENCES occurrences(id),
	flags         TEXT NOT NULL,             -- the whole set seen, space-separated, as occurrences.flags
	seen_at       TEXT NOT NULL,             -- RFC 3339, UTC: when the archive first saw this set
	source        TEXT NOT NULL,             -- how: a FlagSource
	dropped       INTEGER NOT NULL DEFAULT 0 -- changes between the row before and this one that were not kept
);
CREATE INDEX IF NOT EXISTS flag_history_occurrence ON flag_history(occurrence_id, id);
`)
}

// How a flag set was seen (flag_history.source).
const (
	// FlagSourceHarvest: the flags a harvester fetched with the message.
	FlagSourceHarvest = "harvest"
	// FlagSourceImport: the flags an import read from the file (maildir
	// info, mbox Status headers).
	FlagSourceImport = "import"
	// FlagSourceReconcile: a full UID FETCH FLAGS sweep of the mailbox.
	FlagSourceReconcile = "reconcile"
	// FlagSourceChangedSince: FETCH ... (CHANGEDSINCE m) (RFC 7162, CONDSTORE).
	FlagSourceChangedSince = "changedsince"
	// FlagSourceQResync: the changes a SELECT ... (QRESYNC ...) reported.
	FlagSourceQResync = "qresync"
)

// FlagHistoryCap is how many rows one occurrence's history keeps.
const FlagHistoryCap = 64

// setFlags is the one write of an occurrence's flags after its insert:
// it sets occurrence occ's flags to flags and appends them to its
// history, seen at `at` (RFC 3339, UTC: now()) by source (a FlagSource).
// have is the occurrence's flags as stored (occurrences.flags), which the
// caller has just read in the same transaction tx. It reports whether the
// flags changed; when they did not (same set, any order) it writes
// nothing. It does not raise the message's gen: the caller does that,
// once per message per transaction, for the index to follow.
func setFlags(ctx context.Context, tx *sql.Tx, occ int64, have string, flags []string, source, at string) (bool, error) {
	if sameFlags(strings.Fields(have), flags) {
		return false, nil
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM flag_history WHERE occurrence_id = ?`, occ).Scan(&n); err != nil {
		return false, fmt.Errorf("flag history of occurrence %d: %w", occ, err)
	}
	if n == 0 {
		// The first sighting, until now only the occurrence row.
		if _, err := tx.ExecContext(ctx, `INSERT INTO flag_history(occurrence_id, flags, seen_at, source)
			SELECT o.id, o.flags, o.first_seen, CASE mb.source WHEN ? THEN ? ELSE mb.source END
			FROM occurrences o JOIN mailboxes mb ON mb.id = o.mailbox_id WHERE o.id = ?`,
			SourceIMAP, FlagSourceHarvest, occ); err != nil {
			return false, fmt.Errorf("flag history of occurrence %d: %w", occ, err)
		}
		n++
	}
	if _, err := tx.ExecContext(ctx, `UPDATE occurrences SET flags = ? WHERE id = ?`, strings.Join(flags, " "), occ); err != nil {
		return false, fmt.Errorf("set flags of occurrence %d: %w", occ, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO flag_history(occurrence_id, flags, seen_at, source) VALUES (?, ?, ?, ?)`,
		occ, strings.Join(flags, " "), at, source); err != nil {
		return false, fmt.Errorf("flag history of occurrence %d: %w", occ, err)
	}
	if n+1 > FlagHistoryCap {
		if err := trimFlagHistory(ctx, tx, occ); err != nil {
			return false, err
		}
	}
	return true, nil
}

// trimFlagHistory drops one row of occ's history, the one the package
// comment says, and counts it (and what it counted) in the row after it.
func trimFlagHistory(ctx context.Context, tx *sql.Tx, occ int64) error {
	rows, err := tx.QueryContext(ctx, `SELECT id, flags, dropped FROM flag_history WHERE occurrence_id = ? ORDER BY id`, occ)
	if err != nil {
		return fmt.Errorf("trim flag history of occurrence %d: %w", occ, err)
	}
	type row struct {
		id      int64
		flags   string
		dropped int
	}
	var hist []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.flags, &r.dropped); err != nil {
			rows.Close()
			return fmt.Errorf("trim flag history of occurrence %d: %w", occ, err)
		}
		hist = append(hist, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("trim flag history of occurrence %d: %w", occ, err)
	}
	if len(hist) < 3 {
		return nil
	}
	// The row to drop: never the first (the first sighting) nor the last
	// (the state now), preferably not one where a flag first appears.
	victim := 1
	seen := map[string]bool{}
	for f := range strings.FieldsSeq(hist[0].flags) {
		seen[f] = true
	}
	for i := 1; i < len(hist)-1; i++ {
		first := false
		for f := range strings.FieldsSeq(hist[i].flags) {
			if !seen[f] {
				seen[f], first = true, true
			}
		}
		if !first {
			victim = i
			break
		}
	}
	next := hist[victim+1]
	if _, err := tx.ExecContext(ctx, `DELETE FROM flag_history WHERE id = ?`, hist[victim].id); err != nil {
		return fmt.Errorf("trim flag history of occurrence %d: %w", occ, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE flag_history SET dropped = dropped + ? WHERE id = ?`,
		1+hist[victim].dropped, next.id); err != nil {
		return fmt.Errorf("trim flag history of occurrence %d: %w", occ, err)
	}
	return nil
}

// sameFlags reports whether a and b hold the same flags, in any order.
func sameFlags(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
