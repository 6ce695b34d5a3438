package catalog

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"
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
	// \Recent is not a state of the message but of an IMAP session (the
	// first to see it gets it; IMAP4rev2 dropped it): the history leaves it
	// out, or every message would show it "removed" at its second sync. It
	// stays in occurrences.flags, which IMAP SEARCH RECENT reads.
	if sameFlags(withoutRecent(strings.Fields(have)), withoutRecent(flags)) {
		if _, err := tx.ExecContext(ctx, `UPDATE occurrences SET flags = ? WHERE id = ?`, strings.Join(flags, " "), occ); err != nil {
			return false, fmt.Errorf("set flags of occurrence %d: %w", occ, err)
		}
		return true, nil
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM flag_history WHERE occurrence_id = ?`, occ).Scan(&n); err != nil {
		return false, fmt.Errorf("flag history of occurrence %d: %w", occ, err)
	}
	if n == 0 {
		// The first sighting, until now only the occurrence row.
		if _, err := tx.ExecContext(ctx, `INSERT INTO flag_history(occurrence_id, flags, seen_at, source)
			SELECT o.id, ?, o.first_seen, CASE mb.source WHEN ? THEN ? ELSE mb.source END
			FROM occurrences o JOIN mailboxes mb ON mb.id = o.mailbox_id WHERE o.id = ?`,
			strings.Join(withoutRecent(strings.Fields(have)), " "), SourceIMAP, FlagSourceHarvest, occ); err != nil {
			return false, fmt.Errorf("flag history of occurrence %d: %w", occ, err)
		}
		n++
	}
	if _, err := tx.ExecContext(ctx, `UPDATE occurrences SET flags = ? WHERE id = ?`, strings.Join(flags, " "), occ); err != nil {
		return false, fmt.Errorf("set flags of occurrence %d: %w", occ, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO flag_history(occurrence_id, flags, seen_at, source) VALUES (?, ?, ?, ?)`,
		occ, strings.Join(withoutRecent(flags), " "), at, source); err != nil {
		return false, fmt.Errorf("flag history of occurrence %d: %w", occ, err)
	}
	if n+1 > FlagHistoryCap {
		if err := trimFlagHistory(ctx, tx, occ); err != nil {
			return false, err
		}
	}
	return true, nil
}

// withoutRecent returns flags without \Recent (any case), in a new slice.
func withoutRecent(flags []string) []string {
	out := make([]string, 0, len(flags))
	for _, f := range flags {
		if !strings.EqualFold(f, `\Recent`) {
			out = append(out, f)
		}
	}
	return out
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

// FlagSighting is one flag set seen for an occurrence.
type FlagSighting struct {
	At     time.Time
	Source string // a FlagSource, or the mailbox's source for the first sighting
	Flags  []string
	// Added and Removed are the difference with the sighting before; the
	// first sighting adds all its flags.
	Added, Removed []string
	// Dropped counts the changes between the sighting before and this one
	// the history did not keep (FlagHistoryCap).
	Dropped int
}

// OccurrenceFlags is the flag history of one occurrence, oldest first; the
// last sighting is the occurrence's flags now.
type OccurrenceFlags struct {
	Account     string
	Mailbox     string
	UIDValidity uint32
	UID         uint32
	Sightings   []FlagSighting
}

// FlagFirstSeen returns when each flag of the occurrence's latest sighting
// was first seen in the run of sightings that still holds it: for \Seen
// set, removed and set again, the second setting. That is "since when has
// it been so", the question a copy's current flags raise.
func (o OccurrenceFlags) FlagFirstSeen() map[string]time.Time {
	out := map[string]time.Time{}
	if len(o.Sightings) == 0 {
		return out
	}
	for _, f := range o.Sightings[len(o.Sightings)-1].Flags {
		for i := len(o.Sightings) - 1; i >= 0 && slices.Contains(o.Sightings[i].Flags, f); i-- {
			out[f] = o.Sightings[i].At
		}
	}
	return out
}

// FlagHistories returns the flag history of every occurrence of the
// messages keys, by message, its occurrences in (account, mailbox,
// uidvalidity, uid) order. An occurrence whose flags never changed has its
// first sighting only, made from the occurrence row. One read transaction.
func (c *Catalog) FlagHistories(ctx context.Context, keys [][32]byte) (map[[32]byte][]OccurrenceFlags, error) {
	tx, err := c.readTx(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	out := map[[32]byte][]OccurrenceFlags{}
	for start := 0; start < len(keys); start += 500 {
		chunk := keys[start:min(start+500, len(keys))]
		args := make([]any, 0, len(chunk)+1)
		args = append(args, SourceIMAP)
		for _, k := range chunk {
			args = append(args, k[:])
		}
		rows, err := tx.QueryContext(ctx, `SELECT msg.sha256, o.id, a.name, mb.name, o.uidvalidity, o.uid,
			coalesce(h.flags, o.flags), coalesce(h.seen_at, o.first_seen),
			coalesce(h.source, CASE mb.source WHEN ?1 THEN 'harvest' ELSE mb.source END), coalesce(h.dropped, 0)
			FROM messages msg JOIN occurrences o ON o.message_id = msg.id
			JOIN mailboxes mb ON mb.id = o.mailbox_id JOIN accounts a ON a.id = mb.account_id
			LEFT JOIN flag_history h ON h.occurrence_id = o.id
			WHERE msg.sha256 IN (?`+repeatComma(len(chunk)-1)+`)
			ORDER BY msg.id, a.name, mb.name, o.uidvalidity, o.uid, h.id`, args...)
		if err != nil {
			return nil, fmt.Errorf("flag histories: %w", err)
		}
		lastOcc := int64(-1)
		for rows.Next() {
			var b []byte
			var occ int64
			var of OccurrenceFlags
			var s FlagSighting
			var flags, at string
			if err := rows.Scan(&b, &occ, &of.Account, &of.Mailbox, &of.UIDValidity, &of.UID,
				&flags, &at, &s.Source, &s.Dropped); err != nil {
				rows.Close()
				return nil, fmt.Errorf("flag histories: %w", err)
			}
			var k [32]byte
			copy(k[:], b)
			s.Flags = withoutRecent(strings.Fields(flags))
			s.At, _ = time.Parse(time.RFC3339Nano, at)
			list := out[k]
			if occ != lastOcc {
				list = append(list, of)
				lastOcc = occ
			}
			cur := &list[len(list)-1]
			var prev []string
			if n := len(cur.Sightings); n > 0 {
				prev = cur.Sightings[n-1].Flags
			}
			s.Added, s.Removed = flagDiff(prev, s.Flags)
			cur.Sightings = append(cur.Sightings, s)
			out[k] = list
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("flag histories: %w", err)
		}
	}
	return out, nil
}

// flagDiff returns the flags of now not in before, and of before not in now.
func flagDiff(before, now []string) (added, removed []string) {
	for _, f := range now {
		if !slices.Contains(before, f) {
			added = append(added, f)
		}
	}
	for _, f := range before {
		if !slices.Contains(now, f) {
			removed = append(removed, f)
		}
	}
	return added, removed
}
