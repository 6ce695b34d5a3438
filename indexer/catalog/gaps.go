package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Gap checks: a harvester compares a mailbox's UIDs on the server with what
// the catalog holds of the epoch (HeldUIDs) and records what it found
// (RecordGapCheck). Only the last check of each mailbox is kept, in
// gap_checks: it is the mailbox's completeness as last seen. The history
// of what was found missing is in the logs and the audit trail.
func init() {
	moreSchemas = append(moreSchemas, `
CREATE TABLE IF NOT EXISTS gap_checks (  -- the last gap check of each harvested mailbox
	mailbox_id       INTEGER PRIMARY KEY REFERENCES mailboxes(id),
	uidvalidity      INTEGER NOT NULL,
	at               TEXT NOT NULL,        -- RFC 3339, UTC
	checkpoint       INTEGER NOT NULL,
	on_server        INTEGER NOT NULL,
	archived         INTEGER NOT NULL,     -- of on_server: held by an occurrence
	indexed          INTEGER NOT NULL,     -- live occurrences of the epoch whose message is indexed
	skipped          INTEGER NOT NULL,
	pending          INTEGER NOT NULL,
	missing          INTEGER NOT NULL,
	missing_uids     TEXT NOT NULL DEFAULT '',  -- IMAP set syntax
	missing_truncated INTEGER NOT NULL DEFAULT 0,
	fetched          INTEGER NOT NULL,
	expunged_present INTEGER NOT NULL,
	error            TEXT NOT NULL DEFAULT ''
);
`)
}

// Holdings of HeldUIDs.
const (
	HeldLive     = 0
	HeldExpunged = 1
	HeldSkipped  = 2
)

// HeldUIDs calls fn with every UID of the epoch the catalog holds, in
// ascending order, each once: an occurrence (HeldLive, or HeldExpunged when
// marked expunged) or else a skipped record (HeldSkipped). It streams: a
// million-occurrence epoch is never held in memory here.
func (c *Catalog) HeldUIDs(ctx context.Context, mailboxID int64, uidvalidity uint32, fn func(uid uint32, held int) error) error {
	rows, err := c.db.QueryContext(ctx, `SELECT uid, CASE WHEN expunged_at = '' THEN 0 ELSE 1 END FROM occurrences
		WHERE mailbox_id = ?1 AND uidvalidity = ?2
		UNION ALL
		SELECT s.uid, 2 FROM skipped s WHERE s.mailbox_id = ?1 AND s.uidvalidity = ?2
			AND NOT EXISTS (SELECT 1 FROM occurrences o WHERE o.mailbox_id = ?1 AND o.uidvalidity = ?2 AND o.uid = s.uid)
		ORDER BY 1`, mailboxID, uidvalidity)
	if err != nil {
		return fmt.Errorf("held UIDs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var uid uint32
		var held int
		if err := rows.Scan(&uid, &held); err != nil {
			return err
		}
		if err := fn(uid, held); err != nil {
			return err
		}
	}
	return rows.Err()
}

// GapCheck is the last gap check of one mailbox (see harvest.GapReport for
// what the numbers count). Indexed is the catalog's own count at the time
// of recording: the live occurrences of the epoch whose message the index
// holds as the catalog last wrote it.
type GapCheck struct {
	Account          string    `json:"account"`
	Mailbox          string    `json:"mailbox"`
	UIDValidity      uint32    `json:"uidvalidity"`
	At               time.Time `json:"checked_at"`
	Checkpoint       uint32    `json:"checkpoint"`
	OnServer         int       `json:"on_server"`
	Archived         int       `json:"archived"`
	Indexed          int       `json:"indexed"`
	Skipped          int       `json:"skipped"`
	Pending          int       `json:"pending"`
	Missing          int       `json:"missing"`
	MissingUIDs      string    `json:"missing_uids"`
	MissingTruncated bool      `json:"missing_truncated,omitempty"`
	Fetched          int       `json:"fetched_now"`
	ExpungedPresent  int       `json:"expunged_but_on_server"`
	Error            string    `json:"error,omitempty"`
}

// RecordGapCheck keeps g as the last check of its mailbox, with the
// epoch's indexed count as of now, and returns g with it.
func (c *Catalog) RecordGapCheck(ctx context.Context, g GapCheck) (GapCheck, error) {
	mb, err := mailbox(ctx, c.db, g.Account, g.Mailbox)
	if err != nil {
		return g, err
	}
	if err := c.db.QueryRowContext(ctx, `SELECT count(*) FROM occurrences o JOIN messages m ON m.id = o.message_id
		WHERE o.mailbox_id = ? AND o.uidvalidity = ? AND o.expunged_at = '' AND m.indexed_gen >= m.gen`,
		mb.ID, g.UIDValidity).Scan(&g.Indexed); err != nil {
		return g, fmt.Errorf("gap check %q/%q: %w", g.Account, g.Mailbox, err)
	}
	_, err = c.db.ExecContext(ctx, `INSERT INTO gap_checks(mailbox_id, uidvalidity, at, checkpoint, on_server, archived,
		indexed, skipped, pending, missing, missing_uids, missing_truncated, fetched, expunged_present, error)
		VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT(mailbox_id) DO UPDATE SET uidvalidity = excluded.uidvalidity, at = excluded.at,
			checkpoint = excluded.checkpoint, on_server = excluded.on_server, archived = excluded.archived,
			indexed = excluded.indexed, skipped = excluded.skipped, pending = excluded.pending,
			missing = excluded.missing, missing_uids = excluded.missing_uids,
			missing_truncated = excluded.missing_truncated, fetched = excluded.fetched,
			expunged_present = excluded.expunged_present, error = excluded.error`,
		mb.ID, g.UIDValidity, g.At.UTC().Format(time.RFC3339Nano), g.Checkpoint, g.OnServer, g.Archived,
		g.Indexed, g.Skipped, g.Pending, g.Missing, g.MissingUIDs, g.MissingTruncated, g.Fetched, g.ExpungedPresent, g.Error)
	if err != nil {
		return g, fmt.Errorf("gap check %q/%q: %w", g.Account, g.Mailbox, err)
	}
	return g, nil
}

// LastGapCheck returns when mailbox (account, name) was last checked; zero
// when never (or when the mailbox is not in the catalog yet).
func (c *Catalog) LastGapCheck(ctx context.Context, account, name string) (time.Time, error) {
	var at string
	err := c.db.QueryRowContext(ctx, `SELECT g.at FROM gap_checks g JOIN mailboxes m ON m.id = g.mailbox_id
		JOIN accounts a ON a.id = m.account_id WHERE a.name = ? AND m.name = ?`, account, name).Scan(&at)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	return time.Parse(time.RFC3339Nano, at)
}

// GapChecks returns the last check of every mailbox checked, by account
// and mailbox name.
func (c *Catalog) GapChecks(ctx context.Context) ([]GapCheck, error) {
	// A catalog opened read-only that no writer of this version opened
	// yet has no table: no checks.
	var n int
	if err := c.db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'gap_checks'`).Scan(&n); err != nil || n == 0 {
		return nil, err
	}
	rows, err := c.db.QueryContext(ctx, `SELECT a.name, m.name, g.uidvalidity, g.at, g.checkpoint, g.on_server,
		g.archived, g.indexed, g.skipped, g.pending, g.missing, g.missing_uids, g.missing_truncated, g.fetched,
		g.expunged_present, g.error
		FROM gap_checks g JOIN mailboxes m ON m.id = g.mailbox_id JOIN accounts a ON a.id = m.account_id
		ORDER BY a.name, m.name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []GapCheck
	for rows.Next() {
		var g GapCheck
		var at string
		if err := rows.Scan(&g.Account, &g.Mailbox, &g.UIDValidity, &at, &g.Checkpoint, &g.OnServer, &g.Archived,
			&g.Indexed, &g.Skipped, &g.Pending, &g.Missing, &g.MissingUIDs, &g.MissingTruncated, &g.Fetched,
			&g.ExpungedPresent, &g.Error); err != nil {
			return nil, err
		}
		g.At, _ = time.Parse(time.RFC3339Nano, at)
		out = append(out, g)
	}
	return out, rows.Err()
}
