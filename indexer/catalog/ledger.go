package catalog

import (
	"context"
	"encoding/hex"
	"fmt"

	"mailvault/ledger"
)

// The ledger (package ledger) follows the catalog's rows by id. Messages
// and occurrences are only ever inserted; an expunge is an UPDATE of its
// occurrence, so it is also recorded as a row of its own in expunges,
// in the same transaction, for the ledger to follow.
func init() {
	moreSchemas = append(moreSchemas, `
CREATE TABLE IF NOT EXISTS expunges (     -- one row per occurrence a server expunged (the ledger follows it)
	id            INTEGER PRIMARY KEY,
	occurrence_id INTEGER NOT NULL REFERENCES occurrences(id),
	at            TEXT NOT NULL
);
-- Occurrences expunged before this table existed get their rows once.
INSERT INTO expunges(occurrence_id, at)
	SELECT id, expunged_at FROM occurrences
	WHERE expunged_at != '' AND NOT EXISTS (SELECT 1 FROM expunges) ORDER BY id;
`)
}

// LedgerRows calls fn for each row of the ledger kind with an id above
// after, in id order, as its leaf (ledger.Source). Kinds the catalog does
// not hold (audit) give nothing; tombstones give nothing until their table
// exists.
func (c *Catalog) LedgerRows(ctx context.Context, kind string, after int64, fn func(ledger.Leaf) error) error {
	var q string
	switch kind {
	case ledger.KindMessage:
		q = `SELECT id, lower(hex(sha256)), size, stored_at FROM messages WHERE id > ? ORDER BY id`
	case ledger.KindOccurrence:
		q = `SELECT o.id, ac.name, mb.name, o.uidvalidity, o.uid, lower(hex(m.sha256)), o.first_seen FROM occurrences o
			JOIN mailboxes mb ON mb.id = o.mailbox_id JOIN accounts ac ON ac.id = mb.account_id
			JOIN messages m ON m.id = o.message_id WHERE o.id > ? ORDER BY o.id`
	case ledger.KindExpunge:
		q = `SELECT id, occurrence_id, at FROM expunges WHERE id > ? ORDER BY id`
	case ledger.KindTombstone:
		var n int
		if err := c.db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'tombstones'`).Scan(&n); err != nil || n == 0 {
			return err
		}
		q = `SELECT id, lower(sha256), size, at, reason, rule, actor FROM tombstones WHERE id > ? ORDER BY id`
	default:
		return nil
	}
	rows, err := c.db.QueryContext(ctx, q, after)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		f := ledger.Leaf{Kind: kind}
		switch kind {
		case ledger.KindMessage:
			err = rows.Scan(&f.ID, &f.SHA256, &f.Size, &f.At)
		case ledger.KindOccurrence:
			err = rows.Scan(&f.ID, &f.Account, &f.Mailbox, &f.UIDValidity, &f.UID, &f.SHA256, &f.At)
		case ledger.KindExpunge:
			err = rows.Scan(&f.ID, &f.Occurrence, &f.At)
		case ledger.KindTombstone:
			err = rows.Scan(&f.ID, &f.SHA256, &f.Size, &f.At, &f.Reason, &f.Rule, &f.Actor)
		}
		if err != nil {
			return fmt.Errorf("catalog: %s row: %w", kind, err)
		}
		if err := fn(f); err != nil {
			return err
		}
	}
	return rows.Err()
}

// MessageLeafID is the id of the catalog row of the message sha256 (hex),
// which is its message leaf's id; sql.ErrNoRows when there is none.
func (c *Catalog) MessageLeafID(ctx context.Context, sha256hex string) (int64, error) {
	sha, err := hex.DecodeString(sha256hex)
	if err != nil || len(sha) != 32 {
		return 0, fmt.Errorf("catalog: %q is not a sha256", sha256hex)
	}
	var id int64
	err = c.db.QueryRowContext(ctx, `SELECT id FROM messages WHERE sha256 = ?`, sha).Scan(&id)
	return id, err
}

// HoldsDigest is the ledger's digest of the holds table: every column of
// every hold (ledger.KindState, "holds").
func (c *Catalog) HoldsDigest(ctx context.Context) (string, error) {
	rs, err := c.db.QueryContext(ctx, `SELECT id, name, description, created_by, created_at, custodians, query, syntax,
		released_at, released_by, release_reason FROM holds`)
	if err != nil {
		return "", err
	}
	defer rs.Close()
	var rows [][]string
	for rs.Next() {
		r := make([]string, 11)
		p := make([]any, len(r))
		for i := range r {
			p[i] = &r[i]
		}
		if err := rs.Scan(p...); err != nil {
			return "", err
		}
		rows = append(rows, r)
	}
	if err := rs.Err(); err != nil {
		return "", err
	}
	return ledger.StateDigest(rows), nil
}
