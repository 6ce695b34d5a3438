package catalog

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Tombstones: the record of every message removed on purpose (retention,
// a legal erasure). A tombstone is inserted, pending, before anything of
// the message is deleted, and marked done in the same transaction that
// scrubs the message's personal metadata, after its index document and
// its blob are gone (package indexer, dispose.go). Tombstones are never
// deleted or rewritten beyond that one state change: the ledger (package
// ledger) tails this table by id and makes each row a leaf.
//
// The columns are a contract with the ledger; do not rename or reorder:
//
//	id     INTEGER PRIMARY KEY  the ledger's cursor
//	sha256 TEXT    lowercase hex of the message's blob key
//	size   INTEGER the message's size in bytes
//	reason TEXT    why, as the actor gave it
//	rule   TEXT    what allowed it: "retention:POLICY" or "erasure"
//	actor  TEXT    who ("operator", a user name, "scheduler")
//	at     TEXT    RFC 3339 UTC, when the tombstone was made
//	state  TEXT    'pending', then 'done'
//
// disposed lists the messages whose rows are scrubbed (one row per message
// disposed of, made with the tombstone's done state): the index
// bookkeeping and retention skip them. It is a table of its own rather than
// a column of messages so that catalogs made before retention need no
// ALTER TABLE (the schemas here are CREATE ... IF NOT EXISTS only).
const tombstoneSchema = `
CREATE TABLE IF NOT EXISTS tombstones (
	id     INTEGER PRIMARY KEY,
	sha256 TEXT NOT NULL,
	size   INTEGER NOT NULL,
	reason TEXT NOT NULL,
	rule   TEXT NOT NULL,
	actor  TEXT NOT NULL,
	at     TEXT NOT NULL,
	state  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tombstones_sha256 ON tombstones(sha256);
CREATE INDEX IF NOT EXISTS tombstones_pending ON tombstones(id) WHERE state = 'pending';
CREATE TABLE IF NOT EXISTS disposed (
	message_id   INTEGER PRIMARY KEY REFERENCES messages(id),
	tombstone_id INTEGER NOT NULL REFERENCES tombstones(id),
	at           TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tombstone_started (
	tombstone_id INTEGER PRIMARY KEY REFERENCES tombstones(id),
	occ_max      INTEGER NOT NULL,
	at           TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS worm_log (
	id     INTEGER PRIMARY KEY,
	worm   INTEGER NOT NULL,
	at     TEXT NOT NULL,
	actor  TEXT NOT NULL,
	reason TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS worm_log_append_only_d BEFORE DELETE ON worm_log
BEGIN SELECT RAISE(ABORT, 'the WORM log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS worm_log_append_only_u BEFORE UPDATE ON worm_log
BEGIN SELECT RAISE(ABORT, 'the WORM log is append-only'); END;
`

// tombstone_started marks a tombstone whose disposal passed the service's
// checks: AddTombstone writes it in the transaction that inserts the
// tombstone, and only Dispose calls AddTombstone, after its MayDelete (the
// service's hold check and audit row) said yes, under the archive's commit
// lock. A pending tombstone without it was not made by that path (a row
// INSERTed by hand, or by an older mailvault): nothing finishes it
// (indexer.ErrUnstarted), verify names it. occ_max is the highest
// occurrence id when the tombstone was made: an occurrence of the message
// with a higher id is a copy that arrived after the decision, and the
// disposal is then not finished (indexer.ErrNewCopies).
//
// worm_log records the archive's WORM state (service/retention.go, "WORM"):
// one row per change, append-only (triggers), the last row in force; no
// row is an archive whose state was never recorded.`

func init() { moreSchemas = append(moreSchemas, tombstoneSchema) }

// Tombstone states.
const (
	TombstonePending = "pending"
	TombstoneDone    = "done"
)

// Tombstone is one row of the tombstones table.
type Tombstone struct {
	ID     int64     `json:"id"`
	SHA256 string    `json:"sha256"`
	Size   int64     `json:"size"`
	Reason string    `json:"reason"`
	Rule   string    `json:"rule"`
	Actor  string    `json:"actor"`
	At     time.Time `json:"at"`
	State  string    `json:"state"`
}

// Key is the tombstone's blob key.
func (t Tombstone) Key() ([32]byte, error) {
	var k [32]byte
	b, err := hex.DecodeString(t.SHA256)
	if err != nil || len(b) != 32 {
		return k, fmt.Errorf("tombstone %d: bad sha256 %q", t.ID, t.SHA256)
	}
	copy(k[:], b)
	return k, nil
}

// ErrNoMessage is returned by AddTombstone for a key the catalog does not
// hold: only a cataloged message can be disposed of.
var ErrNoMessage = errors.New("no such message in the catalog")

// AddTombstone records, pending, that the message with key sha is to be
// removed, and returns the tombstone. It is idempotent: a message that has
// a tombstone already (pending or done) gets that one back, unchanged, so
// a resumed disposal never makes a second.
func (c *Catalog) AddTombstone(ctx context.Context, sha [32]byte, reason, rule, actor string, at time.Time) (Tombstone, error) {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return Tombstone{}, err
	}
	defer tx.Rollback()
	hx := hex.EncodeToString(sha[:])
	if t, err := tombstoneBy(ctx, tx, `sha256 = ?`, hx); err == nil {
		return t, nil
	} else if !errors.Is(err, sql.ErrNoRows) {
		return Tombstone{}, err
	}
	var size int64
	if err := tx.QueryRowContext(ctx, `SELECT size FROM messages WHERE sha256 = ?`, sha[:]).Scan(&size); errors.Is(err, sql.ErrNoRows) {
		return Tombstone{}, fmt.Errorf("tombstone %s: %w", hx, ErrNoMessage)
	} else if err != nil {
		return Tombstone{}, fmt.Errorf("tombstone %s: %w", hx, err)
	}
	t := Tombstone{SHA256: hx, Size: size, Reason: reason, Rule: rule, Actor: actor, At: at.UTC().Truncate(time.Second), State: TombstonePending}
	res, err := tx.ExecContext(ctx, `INSERT INTO tombstones(sha256, size, reason, rule, actor, at, state) VALUES (?,?,?,?,?,?,?)`,
		t.SHA256, t.Size, t.Reason, t.Rule, t.Actor, t.At.Format(time.RFC3339), t.State)
	if err != nil {
		return Tombstone{}, fmt.Errorf("tombstone %s: %w", hx, err)
	}
	if t.ID, err = res.LastInsertId(); err != nil {
		return Tombstone{}, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO tombstone_started(tombstone_id, occ_max, at)
		SELECT ?, coalesce(max(id), 0), ? FROM occurrences`, t.ID, now()); err != nil {
		return Tombstone{}, fmt.Errorf("tombstone %s: %w", hx, err)
	}
	return t, tx.Commit()
}

// FinishTombstone scrubs the personal metadata of the tombstone's message
// and marks the tombstone done, in one transaction. What goes and what
// stays:
//   - messages: subject, from_addr, message_id, date, date_unix,
//     has_attachments and stored_size are blanked; sha256, size, stored_at
//     (the archive date) and the row stay, because the ledger's leaf for
//     the message is (sha256, size) and the tombstone names it.
//     A disposed row is added and indexed_gen raised to gen, so that
//     nothing indexes the message again.
//   - occurrences: the rows stay (account, mailbox, UIDVALIDITY, UID are
//     ledger leaves, and a harvester must not fetch the UID again); their
//     flags are blanked and their flag history deleted, since keywords
//     are a person's annotations of the message.
//
// It is idempotent (a done tombstone is left as it is).
func (c *Catalog) FinishTombstone(ctx context.Context, id int64) error {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	t, err := tombstoneBy(ctx, tx, `id = ?`, id)
	if err != nil {
		return fmt.Errorf("finish tombstone %d: %w", id, err)
	}
	if t.State == TombstoneDone {
		return nil
	}
	k, err := t.Key()
	if err != nil {
		return err
	}
	var mid int64
	if err := tx.QueryRowContext(ctx, `SELECT id FROM messages WHERE sha256 = ?`, k[:]).Scan(&mid); err != nil {
		return fmt.Errorf("finish tombstone %d: %w", id, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE messages SET subject = '', from_addr = '', message_id = '', date = '',
		date_unix = NULL, has_attachments = 0, stored_size = 0, indexed_gen = gen WHERE id = ?`, mid); err != nil {
		return fmt.Errorf("finish tombstone %d: scrub message: %w", id, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO disposed(message_id, tombstone_id, at) VALUES (?,?,?) ON CONFLICT DO NOTHING`,
		mid, id, now()); err != nil {
		return fmt.Errorf("finish tombstone %d: %w", id, err)
	}
	// Not setFlags: blanking is erasure, not a sighting, and the history
	// (flaghistory.go) goes with the flags.
	if _, err := tx.ExecContext(ctx, `UPDATE occurrences SET flags = '' WHERE message_id = ?`, mid); err != nil {
		return fmt.Errorf("finish tombstone %d: scrub occurrences: %w", id, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM flag_history WHERE occurrence_id IN
		(SELECT id FROM occurrences WHERE message_id = ?)`, mid); err != nil {
		return fmt.Errorf("finish tombstone %d: scrub flag history: %w", id, err)
	}
	// The attachments' text is the message's content too (extracts.go);
	// Gmail's labels are annotations, like keywords (gmail.go).
	for _, q := range []string{`DELETE FROM attachment_texts WHERE message_id = ?`, `DELETE FROM extract_state WHERE message_id = ?`,
		`DELETE FROM gmail_messages WHERE message_id = ?`} {
		if _, err := tx.ExecContext(ctx, q, mid); err != nil {
			return fmt.Errorf("finish tombstone %d: scrub attachment text: %w", id, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE tombstones SET state = ? WHERE id = ?`, TombstoneDone, id); err != nil {
		return fmt.Errorf("finish tombstone %d: %w", id, err)
	}
	return tx.Commit()
}

const tombstoneCols = `id, sha256, size, reason, rule, actor, at, state`

func scanTombstone(sc interface{ Scan(...any) error }) (Tombstone, error) {
	var t Tombstone
	var at string
	if err := sc.Scan(&t.ID, &t.SHA256, &t.Size, &t.Reason, &t.Rule, &t.Actor, &at, &t.State); err != nil {
		return t, err
	}
	t.At, _ = time.Parse(time.RFC3339, at)
	return t, nil
}

func tombstoneBy(ctx context.Context, q querier, where string, args ...any) (Tombstone, error) {
	return scanTombstone(q.QueryRowContext(ctx, `SELECT `+tombstoneCols+` FROM tombstones WHERE `+where+` ORDER BY id LIMIT 1`, args...))
}

// TombstoneOf returns the tombstone of the message with key sha, or
// sql.ErrNoRows (ErrNotFound) when it has none.
func (c *Catalog) TombstoneOf(ctx context.Context, sha [32]byte) (Tombstone, error) {
	return tombstoneBy(ctx, c.db, `sha256 = ?`, hex.EncodeToString(sha[:]))
}

// Tombstones returns the tombstones with id > afterID, by id, at most
// limit (0: all); state filters when not empty.
func (c *Catalog) Tombstones(ctx context.Context, afterID int64, limit int, state string) ([]Tombstone, error) {
	q := `SELECT ` + tombstoneCols + ` FROM tombstones WHERE id > ?`
	args := []any{afterID}
	if state != "" {
		q += ` AND state = ?`
		args = append(args, state)
	}
	q += ` ORDER BY id`
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	rows, err := c.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list tombstones: %w", err)
	}
	defer rows.Close()
	var out []Tombstone
	for rows.Next() {
		t, err := scanTombstone(rows)
		if err != nil {
			return nil, fmt.Errorf("list tombstones: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// Candidate is a whole (not disposed) message with what retention decides
// on: its dates and every place it lives.
type Candidate struct {
	SHA256   [32]byte
	Size     int64
	Sent     time.Time // zero when the message has no Date header
	Archived time.Time // when the archive first stored it
	Places   []Place
}

// Candidates calls fn with every message not disposed of, by row id, with
// its places, read in one read transaction (a snapshot).
func (c *Catalog) Candidates(ctx context.Context, fn func(Candidate) error) error {
	tx, err := c.readTx(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT m.id, m.sha256, m.size, m.date_unix, m.stored_at, a.name, mb.name
		FROM messages m
		LEFT JOIN occurrences o ON o.message_id = m.id
		LEFT JOIN mailboxes mb ON mb.id = o.mailbox_id
		LEFT JOIN accounts a ON a.id = mb.account_id
		WHERE m.id NOT IN (SELECT message_id FROM disposed)
		ORDER BY m.id`)
	if err != nil {
		return fmt.Errorf("list retention candidates: %w", err)
	}
	defer rows.Close()
	var cur Candidate
	curID := int64(-1)
	seen := map[[2]string]bool{} // account, mailbox (a Place holds a slice)
	for rows.Next() {
		var id, size int64
		var sha []byte
		var du sql.NullInt64
		var stored string
		var acct, mbox sql.NullString
		if err := rows.Scan(&id, &sha, &size, &du, &stored, &acct, &mbox); err != nil {
			return fmt.Errorf("list retention candidates: %w", err)
		}
		if id != curID {
			if curID >= 0 {
				if err := fn(cur); err != nil {
					return err
				}
			}
			curID = id
			cur = Candidate{Size: size}
			copy(cur.SHA256[:], sha)
			if du.Valid {
				cur.Sent = time.Unix(du.Int64, 0).UTC()
			}
			cur.Archived, _ = time.Parse(time.RFC3339Nano, stored)
			clear(seen)
		}
		if acct.Valid && mbox.Valid {
			p := Place{Account: acct.String, Mailbox: mbox.String}
			if k := [2]string{p.Account, p.Mailbox}; !seen[k] {
				seen[k] = true
				cur.Places = append(cur.Places, p)
			}
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list retention candidates: %w", err)
	}
	if curID >= 0 {
		return fn(cur)
	}
	return nil
}

// Disposed reports, of these keys, which are disposed of (their row
// scrubbed).
func (c *Catalog) Disposed(ctx context.Context, keys [][32]byte) (map[[32]byte]bool, error) {
	out, err := c.keySet(ctx, `SELECT sha256 FROM messages WHERE id IN (SELECT message_id FROM disposed) AND sha256 IN `, keys)
	if err != nil {
		return nil, fmt.Errorf("disposed messages: %w", err)
	}
	return out, nil
}

// TombstoneStarted reports whether tombstone id was made by AddTombstone
// (see tombstone_started) and, if so, the highest occurrence id then.
func (c *Catalog) TombstoneStarted(ctx context.Context, id int64) (occMax int64, started bool, err error) {
	err = c.db.QueryRowContext(ctx, `SELECT occ_max FROM tombstone_started WHERE tombstone_id = ?`, id).Scan(&occMax)
	if errors.Is(err, sql.ErrNoRows) || noTable(err) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("tombstone %d: %w", id, err)
	}
	return occMax, true, nil
}

// NewerOccurrences counts the occurrences of the message with key sha
// whose id is above occMax (copies recorded after a tombstone was made).
func (c *Catalog) NewerOccurrences(ctx context.Context, sha [32]byte, occMax int64) (int, error) {
	var n int
	err := c.db.QueryRowContext(ctx, `SELECT count(*) FROM occurrences o JOIN messages m ON m.id = o.message_id
		WHERE m.sha256 = ? AND o.id > ?`, sha[:], occMax).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("occurrences of %x: %w", sha, err)
	}
	return n, nil
}

// CandidateOf is Candidates for the one message with key sha (read now);
// ErrNoMessage when the catalog has no such message, ErrNotFound when it
// is disposed of.
func (c *Catalog) CandidateOf(ctx context.Context, sha [32]byte) (Candidate, error) {
	var id, size int64
	var du sql.NullInt64
	var stored string
	err := c.db.QueryRowContext(ctx, `SELECT id, size, date_unix, stored_at FROM messages WHERE sha256 = ?`, sha[:]).Scan(&id, &size, &du, &stored)
	if errors.Is(err, sql.ErrNoRows) {
		return Candidate{}, fmt.Errorf("message %x: %w", sha, ErrNoMessage)
	}
	if err != nil {
		return Candidate{}, err
	}
	var gone int
	if err := c.db.QueryRowContext(ctx, `SELECT count(*) FROM disposed WHERE message_id = ?`, id).Scan(&gone); err != nil {
		return Candidate{}, err
	}
	if gone > 0 {
		return Candidate{}, fmt.Errorf("message %x is disposed of: %w", sha, ErrNotFound)
	}
	cand := Candidate{SHA256: sha, Size: size}
	if du.Valid {
		cand.Sent = time.Unix(du.Int64, 0).UTC()
	}
	cand.Archived, _ = time.Parse(time.RFC3339Nano, stored)
	rows, err := c.db.QueryContext(ctx, `SELECT DISTINCT a.name, mb.name FROM occurrences o
		JOIN mailboxes mb ON mb.id = o.mailbox_id JOIN accounts a ON a.id = mb.account_id
		WHERE o.message_id = ? ORDER BY a.name, mb.name`, id)
	if err != nil {
		return Candidate{}, err
	}
	defer rows.Close()
	for rows.Next() {
		var p Place
		if err := rows.Scan(&p.Account, &p.Mailbox); err != nil {
			return Candidate{}, err
		}
		cand.Places = append(cand.Places, p)
	}
	return cand, rows.Err()
}

// WORMState is the archive's recorded WORM state (worm_log's last row).
type WORMState struct {
	Recorded bool      `json:"recorded"` // false: never recorded
	WORM     bool      `json:"worm"`
	At       time.Time `json:"at,omitzero"`
	Actor    string    `json:"actor,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	Changes  int       `json:"changes"` // rows in the log
}

// WORM returns the archive's recorded WORM state.
func (c *Catalog) WORM(ctx context.Context) (WORMState, error) {
	var st WORMState
	var on int
	var at string
	err := c.db.QueryRowContext(ctx, `SELECT worm, at, actor, reason, (SELECT count(*) FROM worm_log) FROM worm_log ORDER BY id DESC LIMIT 1`).
		Scan(&on, &at, &st.Actor, &st.Reason, &st.Changes)
	if errors.Is(err, sql.ErrNoRows) || noTable(err) {
		return WORMState{}, nil
	}
	if err != nil {
		return WORMState{}, fmt.Errorf("WORM state: %w", err)
	}
	st.Recorded, st.WORM = true, on != 0
	st.At, _ = time.Parse(time.RFC3339Nano, at)
	return st, nil
}

// SetWORM appends a WORM state change.
func (c *Catalog) SetWORM(ctx context.Context, on bool, actor, reason string) (WORMState, error) {
	v := 0
	if on {
		v = 1
	}
	if _, err := c.db.ExecContext(ctx, `INSERT INTO worm_log(worm, at, actor, reason) VALUES (?,?,?,?)`, v, now(), actor, reason); err != nil {
		return WORMState{}, fmt.Errorf("record WORM state: %w", err)
	}
	return c.WORM(ctx)
}

// StartTombstone marks a pending tombstone made without the started step
// (by hand, or by an older mailvault) as started, now: Dispose does it
// after the service's checks passed for it (an explicit, audited
// disposal of that message). A tombstone started already is left as is.
func (c *Catalog) StartTombstone(ctx context.Context, id int64) error {
	if _, err := c.db.ExecContext(ctx, `INSERT INTO tombstone_started(tombstone_id, occ_max, at)
		SELECT ?, coalesce(max(id), 0), ? FROM occurrences WHERE true ON CONFLICT DO NOTHING`, id, now()); err != nil {
		return fmt.Errorf("start tombstone %d: %w", id, err)
	}
	return nil
}

// noTable: a catalog made before a table existed, opened read-only (the
// schema is only created by a writer).
func noTable(err error) bool { return err != nil && strings.Contains(err.Error(), "no such table") }
