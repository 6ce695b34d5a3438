package catalog

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Legal holds (matters). A hold names custodians (accounts) and optionally
// a query; what it covers is evaluated whenever it is asked (package
// service, HeldBy), never stored as a list of messages, so that mail which
// arrives after the hold was created is covered too.
//
// Invariants:
//   - A hold row is never deleted: release sets released_at, released_by
//     and release_reason, once (ReleaseHold refuses a second release).
//     Two triggers refuse a DELETE and any other UPDATE, so that a slip in
//     code cannot do it either (someone with the database file can drop
//     them: the ledger is what makes that visible).
//   - Names are unique whatever their case (COLLATE NOCASE), also across
//     released holds: a name identifies one matter for ever.
const holdsSchema = `
CREATE TABLE IF NOT EXISTS holds (
	id             INTEGER PRIMARY KEY,
	name           TEXT NOT NULL UNIQUE COLLATE NOCASE,
	description    TEXT NOT NULL DEFAULT '',
	created_by     TEXT NOT NULL,
	created_at     TEXT NOT NULL,              -- RFC 3339 UTC
	custodians     TEXT NOT NULL,              -- JSON array of account names, sorted
	query          TEXT NOT NULL DEFAULT '',   -- '' covers everything of the custodians
	syntax         TEXT NOT NULL DEFAULT '',   -- 'human' or 'imap' when query != ''
	released_at    TEXT NOT NULL DEFAULT '',   -- '' while the hold is active
	released_by    TEXT NOT NULL DEFAULT '',
	release_reason TEXT NOT NULL DEFAULT ''
);
CREATE TRIGGER IF NOT EXISTS holds_never_deleted BEFORE DELETE ON holds
BEGIN SELECT RAISE(ABORT, 'legal holds are never deleted: release them'); END;
CREATE TRIGGER IF NOT EXISTS holds_release_only BEFORE UPDATE ON holds
WHEN OLD.released_at != '' OR NEW.name IS NOT OLD.name OR NEW.custodians IS NOT OLD.custodians
	OR NEW.query IS NOT OLD.query OR NEW.syntax IS NOT OLD.syntax OR NEW.created_at IS NOT OLD.created_at
	OR NEW.created_by IS NOT OLD.created_by OR NEW.released_at = ''
BEGIN SELECT RAISE(ABORT, 'a legal hold is changed only by its release, once'); END;
`

func init() { moreSchemas = append(moreSchemas, holdsSchema) }

// Hold is one row of the holds table.
type Hold struct {
	ID            int64
	Name          string
	Description   string
	CreatedBy     string
	CreatedAt     string
	Custodians    []string
	Query         string
	Syntax        string
	ReleasedAt    string
	ReleasedBy    string
	ReleaseReason string
}

// Active reports whether h still holds.
func (h Hold) Active() bool { return h.ReleasedAt == "" }

// ErrHoldExists is (wrapped in) the error of CreateHold for a name in use.
var ErrHoldExists = errors.New("a hold of that name exists")

// ErrHoldReleased is (wrapped in) the error of ReleaseHold for a hold
// released before.
var ErrHoldReleased = errors.New("hold already released")

// CreateHold inserts h (its ID and CreatedAt are set here) and returns it
// as stored.
func (c *Catalog) CreateHold(ctx context.Context, h Hold) (Hold, error) {
	cust, err := json.Marshal(h.Custodians)
	if err != nil {
		return Hold{}, err
	}
	h.CreatedAt = now()
	res, err := c.db.ExecContext(ctx, `INSERT INTO holds(name, description, created_by, created_at, custodians, query, syntax)
		VALUES (?,?,?,?,?,?,?)`, h.Name, h.Description, h.CreatedBy, h.CreatedAt, string(cust), h.Query, h.Syntax)
	if err != nil {
		if strings.Contains(err.Error(), "UNIQUE constraint failed") {
			return Hold{}, fmt.Errorf("create hold %q: %w", h.Name, ErrHoldExists)
		}
		return Hold{}, fmt.Errorf("create hold %q: %w", h.Name, err)
	}
	h.ID, _ = res.LastInsertId()
	return h, nil
}

const holdColumns = `id, name, description, created_by, created_at, custodians, query, syntax,
	released_at, released_by, release_reason`

func scanHold(sc interface{ Scan(...any) error }) (Hold, error) {
	var h Hold
	var cust string
	if err := sc.Scan(&h.ID, &h.Name, &h.Description, &h.CreatedBy, &h.CreatedAt, &cust, &h.Query, &h.Syntax,
		&h.ReleasedAt, &h.ReleasedBy, &h.ReleaseReason); err != nil {
		return Hold{}, err
	}
	if err := json.Unmarshal([]byte(cust), &h.Custodians); err != nil {
		// A hold whose custodians cannot be read must not silently hold
		// nothing: the caller (a deletion) fails instead.
		return Hold{}, fmt.Errorf("hold %q: custodians %q: %w", h.Name, cust, err)
	}
	return h, nil
}

// Holds returns every hold, active or released, oldest first. A catalog
// opened read-only that was made before holds existed has none.
func (c *Catalog) Holds(ctx context.Context) ([]Hold, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT `+holdColumns+` FROM holds ORDER BY id`)
	if err != nil {
		if strings.Contains(err.Error(), "no such table") {
			return nil, nil
		}
		return nil, fmt.Errorf("list holds: %w", err)
	}
	defer rows.Close()
	var out []Hold
	for rows.Next() {
		h, err := scanHold(rows)
		if err != nil {
			return nil, fmt.Errorf("list holds: %w", err)
		}
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list holds: %w", err)
	}
	return out, nil
}

// HoldByName returns the hold named name (any case); ErrNotFound when none is.
func (c *Catalog) HoldByName(ctx context.Context, name string) (Hold, error) {
	h, err := scanHold(c.db.QueryRowContext(ctx, `SELECT `+holdColumns+` FROM holds WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) || err != nil && strings.Contains(err.Error(), "no such table") {
		return Hold{}, fmt.Errorf("hold %q: %w", name, ErrNotFound)
	}
	return h, err
}

// ReleaseHold marks the hold named name released by who for reason, and
// returns it as it is now. A hold is released once.
func (c *Catalog) ReleaseHold(ctx context.Context, name, who, reason string) (Hold, error) {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return Hold{}, err
	}
	defer tx.Rollback()
	h, err := scanHold(tx.QueryRowContext(ctx, `SELECT `+holdColumns+` FROM holds WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return Hold{}, fmt.Errorf("hold %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return Hold{}, err
	}
	if !h.Active() {
		return h, fmt.Errorf("hold %q: released at %s by %s: %w", h.Name, h.ReleasedAt, h.ReleasedBy, ErrHoldReleased)
	}
	h.ReleasedAt, h.ReleasedBy, h.ReleaseReason = now(), who, reason
	if _, err := tx.ExecContext(ctx, `UPDATE holds SET released_at = ?, released_by = ?, release_reason = ? WHERE id = ?`,
		h.ReleasedAt, h.ReleasedBy, h.ReleaseReason, h.ID); err != nil {
		return Hold{}, fmt.Errorf("release hold %q: %w", name, err)
	}
	return h, tx.Commit()
}

// HeldContent is what the catalog knows of one message in a hold's
// custodians' accounts.
type HeldContent struct {
	// Unindexed: the index has not caught up with the message, so a
	// query cannot be asked about it yet.
	Unindexed bool
}

// InAccounts returns, of the messages keys, those with at least one
// occurrence (expunged or not) in one of accounts, with their index
// state. One query per 500 keys.
func (c *Catalog) InAccounts(ctx context.Context, accounts []string, keys [][32]byte) (map[[32]byte]HeldContent, error) {
	out := map[[32]byte]HeldContent{}
	if len(accounts) == 0 || len(keys) == 0 {
		return out, nil
	}
	acctIn := strings.TrimSuffix(strings.Repeat("?,", len(accounts)), ",")
	for start := 0; start < len(keys); start += 500 {
		chunk := keys[start:min(start+500, len(keys))]
		args := make([]any, 0, len(chunk)+len(accounts))
		for i := range chunk {
			args = append(args, chunk[i][:])
		}
		for _, a := range accounts {
			args = append(args, a)
		}
		in := strings.TrimSuffix(strings.Repeat("?,", len(chunk)), ",")
		rows, err := c.db.QueryContext(ctx, `SELECT m.sha256, m.indexed_gen < m.gen FROM messages m
			WHERE m.sha256 IN (`+in+`) AND EXISTS (SELECT 1 FROM occurrences o
				JOIN mailboxes b ON b.id = o.mailbox_id JOIN accounts a ON a.id = b.account_id
				WHERE o.message_id = m.id AND a.name IN (`+acctIn+`))`, args...)
		if err != nil {
			return nil, fmt.Errorf("messages in accounts: %w", err)
		}
		for rows.Next() {
			var sha []byte
			var h HeldContent
			if err := rows.Scan(&sha, &h.Unindexed); err != nil {
				rows.Close()
				return nil, fmt.Errorf("messages in accounts: %w", err)
			}
			var k [32]byte
			copy(k[:], sha)
			out[k] = h
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("messages in accounts: %w", err)
		}
	}
	return out, nil
}

// AccountCounts returns how many messages have an occurrence in one of
// accounts, how many occurrences (expunged or not) those accounts hold,
// and how many of those messages the index has not caught up with.
func (c *Catalog) AccountCounts(ctx context.Context, accounts []string) (messages, occurrences, unindexed int, err error) {
	if len(accounts) == 0 {
		return 0, 0, 0, nil
	}
	in := strings.TrimSuffix(strings.Repeat("?,", len(accounts)), ",")
	args := make([]any, len(accounts))
	for i, a := range accounts {
		args[i] = a
	}
	err = c.db.QueryRowContext(ctx, `SELECT count(DISTINCT o.message_id), count(*),
		count(DISTINCT CASE WHEN m.indexed_gen < m.gen THEN m.id END)
		FROM occurrences o JOIN messages m ON m.id = o.message_id
		JOIN mailboxes b ON b.id = o.mailbox_id JOIN accounts a ON a.id = b.account_id
		WHERE a.name IN (`+in+`)`, args...).Scan(&messages, &occurrences, &unindexed)
	if err != nil {
		err = fmt.Errorf("count messages in accounts: %w", err)
	}
	return messages, occurrences, unindexed, err
}

// Epochs returns, for each mailbox of accounts, every UIDVALIDITY its
// occurrences were archived under (the current one first when it has
// any): a hold's IMAP query is asked of each epoch.
func (c *Catalog) Epochs(ctx context.Context, accounts []string) ([]MailboxEpochs, error) {
	if len(accounts) == 0 {
		return nil, nil
	}
	args := make([]any, len(accounts))
	for i, a := range accounts {
		args[i] = a
	}
	in := strings.TrimSuffix(strings.Repeat("?,", len(accounts)), ",")
	rows, err := c.db.QueryContext(ctx, `SELECT a.name, mb.name, mb.uidvalidity, o.uidvalidity
		FROM mailboxes mb JOIN accounts a ON a.id = mb.account_id
		JOIN (SELECT DISTINCT mailbox_id, uidvalidity FROM occurrences) o ON o.mailbox_id = mb.id
		WHERE a.name IN (`+in+`)
		ORDER BY a.name, mb.name, o.uidvalidity != mb.uidvalidity, o.uidvalidity`, args...)
	if err != nil {
		return nil, fmt.Errorf("mailbox epochs: %w", err)
	}
	defer rows.Close()
	var out []MailboxEpochs
	for rows.Next() {
		var acct, name string
		var cur, ep uint32
		if err := rows.Scan(&acct, &name, &cur, &ep); err != nil {
			return nil, err
		}
		if n := len(out); n == 0 || out[n-1].Account != acct || out[n-1].Mailbox != name {
			out = append(out, MailboxEpochs{Account: acct, Mailbox: name, Current: cur})
		}
		out[len(out)-1].Epochs = append(out[len(out)-1].Epochs, ep)
	}
	return out, rows.Err()
}

// MailboxEpochs is one mailbox and the epochs it has copies in.
type MailboxEpochs struct {
	Account, Mailbox string
	Current          uint32
	Epochs           []uint32
}
