package catalog

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
)

// Partial syncs: what a harvester learned of one epoch of a mailbox since
// the HIGHESTMODSEQ (RFC 7162) the archive was last current to, recorded in
// one transaction with that HIGHESTMODSEQ. Reconcile takes the whole
// mailbox; Changes takes only what changed, so a flag change costs what
// changed, not the mailbox size.
//
// The HIGHESTMODSEQ is kept per epoch in epoch_modseq, beside the
// mailbox's checkpoint (mailboxes.uidnext) rather than in it: a new epoch
// has no row, so it starts with a full sweep without OpenEpoch having to
// know about modseqs, and an old epoch's row stays as the record of how
// far it was followed.
func init() {
	moreSchemas = append(moreSchemas, `
CREATE TABLE IF NOT EXISTS epoch_modseq (  -- HIGHESTMODSEQ an epoch's flags and expunges are current to
	mailbox_id  INTEGER NOT NULL REFERENCES mailboxes(id),
	uidvalidity INTEGER NOT NULL,
	modseq      INTEGER NOT NULL,
	PRIMARY KEY (mailbox_id, uidvalidity)
);
`)
}

// UIDRange is the UIDs Start to Stop, both included (Start <= Stop).
type UIDRange struct{ Start, Stop uint32 }

// EpochChanges is what a partial sync learned of one epoch.
type EpochChanges struct {
	// Flags holds the current flags of UIDs whose flags may have changed
	// (sorted, as ReconcileFlags takes them). UIDs the catalog does not
	// hold live are ignored: not archived yet, their flags come with them.
	Flags map[uint32][]string
	// Vanished are UIDs the server says are expunged (QRESYNC's VANISHED).
	// UIDs the catalog does not hold live are ignored: servers may name
	// UIDs that never existed (RFC 7162 section 3.2.10).
	Vanished []UIDRange
	// Listed says Present is the server's whole UID set now: every live
	// occurrence of the epoch outside it is marked expunged.
	Listed  bool
	Present []UIDRange
	// ModSeq is the HIGHESTMODSEQ the epoch is now current to; 0 leaves
	// the recorded one. It is set as given, not raised: a server whose
	// HIGHESTMODSEQ went back must be swept, and then followed from there.
	ModSeq uint64
	// Source is how the flags were seen, for their history:
	// FlagSourceChangedSince (the default) or FlagSourceQResync.
	Source string
}

// EpochModSeq returns the HIGHESTMODSEQ the epoch is current to (0: none
// recorded, a full sweep is due) and how many of its occurrences are live.
func (c *Catalog) EpochModSeq(ctx context.Context, mailboxID int64, uidvalidity uint32) (modseq uint64, live int, err error) {
	err = c.db.QueryRowContext(ctx, `SELECT
		coalesce((SELECT modseq FROM epoch_modseq WHERE mailbox_id = ?1 AND uidvalidity = ?2), 0),
		(SELECT count(*) FROM occurrences WHERE mailbox_id = ?1 AND uidvalidity = ?2 AND expunged_at = '')`,
		mailboxID, uidvalidity).Scan(&modseq, &live)
	if err != nil {
		return 0, 0, fmt.Errorf("epoch %d of mailbox %d: %w", uidvalidity, mailboxID, err)
	}
	return modseq, live, nil
}

// Changes records ch for the epoch uidvalidity of a mailbox in one
// transaction: vanished occurrences (and, when ch.Listed, those outside
// ch.Present) are marked expunged, never removed (invariant 5); changed
// flags are set and their messages' gen raised, as ReconcileFlags does, so
// the index follows; the HIGHESTMODSEQ is recorded. It returns how many
// occurrences it marked expunged and re-flagged, and the ids of the
// messages to index again.
func (c *Catalog) Changes(ctx context.Context, mailboxID int64, uidvalidity uint32, ch EpochChanges) (expunged, reflagged int, touched []int64, err error) {
	for _, rs := range [][]UIDRange{ch.Vanished, ch.Present} {
		for _, r := range rs {
			if r.Start == 0 || r.Start > r.Stop {
				return 0, 0, nil, fmt.Errorf("changes: bad UID range %d:%d", r.Start, r.Stop)
			}
		}
	}
	source := ch.Source
	switch source {
	case "":
		source = FlagSourceChangedSince
	case FlagSourceChangedSince, FlagSourceQResync:
	default:
		return 0, 0, nil, fmt.Errorf("changes: source %q: want %q or %q", source, FlagSourceChangedSince, FlagSourceQResync)
	}
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, 0, nil, err
	}
	defer tx.Rollback()
	at := now()
	gone := func(id int64) error {
		if _, err := tx.ExecContext(ctx, `UPDATE occurrences SET expunged_at = ? WHERE id = ?`, at, id); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO expunges(occurrence_id, at) VALUES (?, ?)`, id, at)
		expunged++
		return err
	}
	// Expunges first: a UID both vanished and in Flags is gone.
	//
	// The VANISHED ranges are merged first: a server may send them
	// overlapping (a hostile one 2^20 times 1:4294967295), and each range
	// would otherwise cost a query and a copy of every live id it covers.
	// Merged, they cover each live occurrence once. Many of them (more
	// than vanishedQueries) are matched against one scan of the epoch's
	// live occurrences instead of a query each.
	vanished := normalize(ch.Vanished)
	var ids []int64
	if len(vanished) <= vanishedQueries {
		for _, r := range vanished {
			more, err := liveIDs(ctx, tx, `SELECT id FROM occurrences WHERE mailbox_id = ? AND uidvalidity = ?
				AND uid BETWEEN ? AND ? AND expunged_at = '' ORDER BY uid`, mailboxID, uidvalidity, r.Start, r.Stop)
			if err != nil {
				return 0, 0, nil, err
			}
			ids = append(ids, more...)
		}
	}
	if ch.Listed || len(vanished) > vanishedQueries {
		present := normalize(ch.Present)
		rows, err := tx.QueryContext(ctx, `SELECT id, uid FROM occurrences WHERE mailbox_id = ? AND uidvalidity = ?
			AND expunged_at = '' ORDER BY uid`, mailboxID, uidvalidity)
		if err != nil {
			return 0, 0, nil, err
		}
		for rows.Next() {
			var id int64
			var uid uint32
			if err := rows.Scan(&id, &uid); err != nil {
				rows.Close()
				return 0, 0, nil, err
			}
			if (ch.Listed && !inRanges(present, uid)) || (len(vanished) > vanishedQueries && inRanges(vanished, uid)) {
				ids = append(ids, id)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return 0, 0, nil, err
		}
	}
	slices.Sort(ids)
	for _, id := range slices.Compact(ids) {
		if err := gone(id); err != nil {
			return 0, 0, nil, err
		}
	}
	uids := make([]uint32, 0, len(ch.Flags))
	for uid := range ch.Flags {
		uids = append(uids, uid)
	}
	slices.Sort(uids)
	bumped := map[int64]bool{}
	for _, uid := range uids {
		var id, msg int64
		var have string
		err := tx.QueryRowContext(ctx, `SELECT id, message_id, flags FROM occurrences
			WHERE mailbox_id = ? AND uidvalidity = ? AND uid = ? AND expunged_at = ''`, mailboxID, uidvalidity, uid).
			Scan(&id, &msg, &have)
		if err == sql.ErrNoRows {
			continue
		}
		if err != nil {
			return 0, 0, nil, err
		}
		// The one per-occurrence write (flaghistory.go): history too.
		changed, err := setFlags(ctx, tx, id, have, ch.Flags[uid], source, at)
		if err != nil {
			return 0, 0, nil, err
		}
		if !changed {
			continue
		}
		if !bumped[msg] {
			bumped[msg] = true
			touched = append(touched, msg)
			if _, err := tx.ExecContext(ctx, `UPDATE messages SET gen = gen + 1 WHERE id = ?`, msg); err != nil {
				return 0, 0, nil, err
			}
		}
		reflagged++
	}
	if ch.ModSeq != 0 {
		if _, err := tx.ExecContext(ctx, `INSERT INTO epoch_modseq(mailbox_id, uidvalidity, modseq) VALUES (?, ?, ?)
			ON CONFLICT(mailbox_id, uidvalidity) DO UPDATE SET modseq = excluded.modseq`,
			mailboxID, uidvalidity, int64(ch.ModSeq)); err != nil {
			return 0, 0, nil, err
		}
	}
	return expunged, reflagged, touched, tx.Commit()
}

// vanishedQueries is how many (merged) VANISHED ranges Changes looks up
// one query each; more are matched against one scan of the epoch.
const vanishedQueries = 256

func liveIDs(ctx context.Context, tx *sql.Tx, q string, args ...any) ([]int64, error) {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// normalize returns rs sorted by Start, overlapping and adjacent ranges merged.
func normalize(rs []UIDRange) []UIDRange {
	out := slices.Clone(rs)
	slices.SortFunc(out, func(a, b UIDRange) int { return int(int64(a.Start) - int64(b.Start)) })
	n := 0
	for _, r := range out {
		if n > 0 && uint64(r.Start) <= uint64(out[n-1].Stop)+1 {
			out[n-1].Stop = max(out[n-1].Stop, r.Stop)
			continue
		}
		out[n] = r
		n++
	}
	return out[:n]
}

// inRanges reports whether uid is in the normalized ranges rs.
func inRanges(rs []UIDRange, uid uint32) bool {
	i, _ := slices.BinarySearchFunc(rs, uid, func(r UIDRange, u uint32) int {
		switch {
		case r.Stop < u:
			return -1
		case r.Start > u:
			return 1
		}
		return 0
	})
	return i < len(rs) && rs[i].Start <= uid && uid <= rs[i].Stop
}
