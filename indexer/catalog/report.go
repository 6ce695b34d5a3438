package catalog

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// Reports: whole-catalog reads for status, verify and tests. Each runs in one
// read transaction, so it sees one consistent state however writers go on.

// MailboxStats are the counts of one mailbox.
type MailboxStats struct {
	Account     string
	Mailbox     string
	Source      string
	UIDValidity uint32
	UIDNext     uint32
	LastSync    string
	Occurrences int // occurrence rows, in every epoch
	Unique      int // distinct messages among them
	ParseErrors int // distinct messages that did not parse cleanly
	Unindexed   int // distinct messages with indexed_gen < gen
	Expunged    int // occurrences the server has expunged
	Skipped     int // messages the server would not deliver
}

// readTx starts a read transaction: on SQLite a deferred BEGIN, whose
// snapshot is taken at its first read and kept to its end (WAL).
func (c *Catalog) readTx(ctx context.Context) (*sql.Tx, error) {
	tx, err := c.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("begin catalog read: %w", err)
	}
	return tx, nil
}

// MailboxStats returns the counts of every mailbox, by account and mailbox
// name. A catalog whose creation was interrupted (the schema is made in one
// transaction) holds no tables yet; it has no mailboxes.
func (c *Catalog) MailboxStats(ctx context.Context) ([]MailboxStats, error) {
	tx, err := c.readTx(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	var tables int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'skipped'`).Scan(&tables); err != nil {
		return nil, fmt.Errorf("mailbox stats: %w", err)
	}
	if tables == 0 {
		return nil, nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT a.name, m.name, m.source, m.uidvalidity, m.uidnext, m.last_sync,
		count(o.id), count(DISTINCT o.message_id),
		count(DISTINCT CASE WHEN msg.parse_error != '' THEN msg.id END),
		count(DISTINCT CASE WHEN msg.indexed_gen < msg.gen THEN msg.id END),
		coalesce(sum(o.expunged_at != ''), 0),
		(SELECT count(*) FROM skipped s WHERE s.mailbox_id = m.id)
		FROM mailboxes m JOIN accounts a ON a.id = m.account_id
		LEFT JOIN occurrences o ON o.mailbox_id = m.id
		LEFT JOIN messages msg ON msg.id = o.message_id
		GROUP BY m.id ORDER BY a.name, m.name`)
	if err != nil {
		return nil, fmt.Errorf("mailbox stats: %w", err)
	}
	defer rows.Close()
	var out []MailboxStats
	for rows.Next() {
		var s MailboxStats
		if err := rows.Scan(&s.Account, &s.Mailbox, &s.Source, &s.UIDValidity, &s.UIDNext, &s.LastSync,
			&s.Occurrences, &s.Unique, &s.ParseErrors, &s.Unindexed, &s.Expunged, &s.Skipped); err != nil {
			return nil, fmt.Errorf("mailbox stats: %w", err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("mailbox stats: %w", err)
	}
	return out, nil
}

// MessageState is a message's key and index bookkeeping.
type MessageState struct {
	ID         int64
	SHA256     [32]byte
	Gen        int64
	IndexedGen int64
}

// Indexed reports whether the index holds the message as of its gen.
func (s MessageState) Indexed() bool { return s.IndexedGen >= s.Gen }

// EachMessageState calls fn with every message, by row id, all read in one
// read transaction: a snapshot that writers committing meanwhile do not
// change. fn must not call back into the catalog's write methods (it would
// wait on the snapshot's connection on a small pool); collect, then act.
func (c *Catalog) EachMessageState(ctx context.Context, fn func(MessageState) error) error {
	tx, err := c.readTx(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT id, sha256, gen, indexed_gen FROM messages ORDER BY id`)
	if err != nil {
		return fmt.Errorf("list messages: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var s MessageState
		var b []byte
		if err := rows.Scan(&s.ID, &b, &s.Gen, &s.IndexedGen); err != nil {
			return fmt.Errorf("list messages: %w", err)
		}
		copy(s.SHA256[:], b)
		if err := fn(s); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list messages: %w", err)
	}
	return nil
}

// MessageStates returns the current state of the messages with these keys;
// keys the catalog does not know are left out.
func (c *Catalog) MessageStates(ctx context.Context, keys [][32]byte) (map[[32]byte]MessageState, error) {
	out := make(map[[32]byte]MessageState, len(keys))
	for start := 0; start < len(keys); start += 500 {
		chunk := keys[start:min(start+500, len(keys))]
		args := make([]any, len(chunk))
		for i := range chunk {
			args[i] = chunk[i][:]
		}
		in := strings.TrimSuffix(strings.Repeat("?,", len(chunk)), ",")
		rows, err := c.db.QueryContext(ctx, `SELECT id, sha256, gen, indexed_gen FROM messages WHERE sha256 IN (`+in+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("message states: %w", err)
		}
		for rows.Next() {
			var s MessageState
			var b []byte
			if err := rows.Scan(&s.ID, &b, &s.Gen, &s.IndexedGen); err != nil {
				rows.Close()
				return nil, fmt.Errorf("message states: %w", err)
			}
			copy(s.SHA256[:], b)
			out[s.SHA256] = s
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("message states: %w", err)
		}
	}
	return out, nil
}

// OccurrenceRow is one occurrence with its place and content key.
type OccurrenceRow struct {
	Account     string
	Mailbox     string
	UIDValidity uint32
	UID         uint32
	SHA256      [32]byte
	Flags       []string
	ExpungedAt  string // "" while the server has it
}

// Occurrences returns every occurrence, by account, mailbox, uidvalidity and uid.
func (c *Catalog) Occurrences(ctx context.Context) ([]OccurrenceRow, error) {
	tx, err := c.readTx(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT ac.name, mb.name, o.uidvalidity, o.uid, m.sha256, o.flags, o.expunged_at
		FROM occurrences o JOIN mailboxes mb ON mb.id = o.mailbox_id JOIN accounts ac ON ac.id = mb.account_id
		JOIN messages m ON m.id = o.message_id ORDER BY ac.name, mb.name, o.uidvalidity, o.uid`)
	if err != nil {
		return nil, fmt.Errorf("list occurrences: %w", err)
	}
	defer rows.Close()
	var out []OccurrenceRow
	for rows.Next() {
		var o OccurrenceRow
		var sha []byte
		var flags string
		if err := rows.Scan(&o.Account, &o.Mailbox, &o.UIDValidity, &o.UID, &sha, &flags, &o.ExpungedAt); err != nil {
			return nil, fmt.Errorf("list occurrences: %w", err)
		}
		copy(o.SHA256[:], sha)
		o.Flags = strings.Fields(flags)
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list occurrences: %w", err)
	}
	return out, nil
}

// SkippedRow is a message a server would not deliver.
type SkippedRow struct {
	Account     string
	Mailbox     string
	UIDValidity uint32
	UID         uint32
	Reason      string
	At          string // RFC 3339, when it was last skipped
}

// Skipped returns every skipped message, by account, mailbox, uidvalidity and uid.
func (c *Catalog) Skipped(ctx context.Context) ([]SkippedRow, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT ac.name, mb.name, s.uidvalidity, s.uid, s.reason, s.at
		FROM skipped s JOIN mailboxes mb ON mb.id = s.mailbox_id JOIN accounts ac ON ac.id = mb.account_id
		ORDER BY ac.name, mb.name, s.uidvalidity, s.uid`)
	if err != nil {
		return nil, fmt.Errorf("list skipped: %w", err)
	}
	defer rows.Close()
	var out []SkippedRow
	for rows.Next() {
		var s SkippedRow
		if err := rows.Scan(&s.Account, &s.Mailbox, &s.UIDValidity, &s.UID, &s.Reason, &s.At); err != nil {
			return nil, fmt.Errorf("list skipped: %w", err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list skipped: %w", err)
	}
	return out, nil
}
