package catalog

import (
	"context"
	"fmt"
	"strings"
)

// Mailboxes, accounts and epochs: what harvesters and imports record about
// where mail lives and how far each mailbox is archived.

// Mailbox is a mailbox's row.
type Mailbox struct {
	ID          int64
	Account     string
	AccountURL  string
	Name        string
	Source      string
	UIDValidity uint32
	UIDNext     uint32
}

// EnsureMailbox returns the mailbox (account, name), creating the account and
// mailbox with the given source and uidvalidity when they do not exist yet.
func (c *Catalog) EnsureMailbox(ctx context.Context, account, name, source string, uidvalidity uint32) (Mailbox, error) {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return Mailbox{}, err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO accounts(name) VALUES (?) ON CONFLICT(name) DO NOTHING`, account); err != nil {
		return Mailbox{}, fmt.Errorf("create account %q: %w", account, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO mailboxes(account_id, name, source, uidvalidity)
		SELECT id, ?, ?, ? FROM accounts WHERE name = ?
		ON CONFLICT(account_id, name) DO NOTHING`, name, source, uidvalidity, account); err != nil {
		return Mailbox{}, fmt.Errorf("create mailbox %q/%q: %w", account, name, err)
	}
	mb, err := mailbox(ctx, tx, account, name)
	if err != nil {
		return Mailbox{}, err
	}
	return mb, tx.Commit()
}

// Mailbox returns the mailbox (account, name); ErrNotFound when there is none.
func (c *Catalog) Mailbox(ctx context.Context, account, name string) (Mailbox, error) {
	return mailbox(ctx, c.db, account, name)
}

func mailbox(ctx context.Context, q querier, account, name string) (Mailbox, error) {
	var mb Mailbox
	err := q.QueryRowContext(ctx, `SELECT m.id, a.name, a.url, m.name, m.source, m.uidvalidity, m.uidnext
		FROM mailboxes m JOIN accounts a ON a.id = m.account_id WHERE a.name = ? AND m.name = ?`, account, name).
		Scan(&mb.ID, &mb.Account, &mb.AccountURL, &mb.Name, &mb.Source, &mb.UIDValidity, &mb.UIDNext)
	if err != nil {
		return Mailbox{}, fmt.Errorf("mailbox %q/%q: %w", account, name, err)
	}
	return mb, nil
}

// OpenEpoch returns the checkpoint (uidnext) of mailbox (account, name) in the
// epoch uidvalidity, creating the account and mailbox when new. When the
// mailbox's current epoch is another UIDVALIDITY, the server has renumbered
// it: a new epoch starts at uidnext 1 (invariant 6). Old occurrences stay.
// accountURL ("imap://user@host") is recorded for RFC 5092 URLs.
func (c *Catalog) OpenEpoch(ctx context.Context, account, accountURL, name string, uidvalidity uint32) (uidnext uint32, newEpoch bool, err error) {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, false, err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO accounts(name, url) VALUES (?, ?)
		ON CONFLICT(name) DO UPDATE SET url = excluded.url`, account, accountURL); err != nil {
		return 0, false, fmt.Errorf("account %q: %w", account, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO mailboxes(account_id, name, source, uidvalidity)
		SELECT id, ?, ?, ? FROM accounts WHERE name = ?
		ON CONFLICT(account_id, name) DO NOTHING`, name, SourceIMAP, uidvalidity, account); err != nil {
		return 0, false, fmt.Errorf("mailbox %q/%q: %w", account, name, err)
	}
	mb, err := mailbox(ctx, tx, account, name)
	if err != nil {
		return 0, false, err
	}
	if mb.Source != SourceIMAP {
		return 0, false, fmt.Errorf("mailbox %q of account %q holds imported mail; harvest it under another account name", name, account)
	}
	if mb.UIDValidity != uidvalidity {
		if _, err := tx.ExecContext(ctx, `UPDATE mailboxes SET uidvalidity = ?, uidnext = 1 WHERE id = ?`, uidvalidity, mb.ID); err != nil {
			return 0, false, err
		}
		mb.UIDNext, newEpoch = 1, true
	}
	return mb.UIDNext, newEpoch, tx.Commit()
}

// Reconcile brings the occurrences of one epoch of a mailbox in line with the
// server: flags holds every UID the server has now, with its flags. An
// occurrence whose UID the server no longer has is marked expunged (never
// deleted: invariant 5); one whose flags changed gets the new flags. It
// returns how many occurrences it marked expunged and how many it re-flagged.
func (c *Catalog) Reconcile(ctx context.Context, mailboxID int64, uidvalidity uint32, flags map[uint32][]string) (expunged, reflagged int, err error) {
	expunged, reflagged, _, err = c.ReconcileFlags(ctx, mailboxID, uidvalidity, flags)
	return expunged, reflagged, err
}

// ReconcileFlags is Reconcile, and returns the ids of the messages whose
// flags changed. The changes go through setFlags (flaghistory.go), so each
// is in the occurrence's flag history, source reconcile. Their gen is raised in the same transaction, so the
// catalog marks them unindexed until their documents, which hold the flags
// (is:unread), are indexed again: a crash before that leaves them to
// CatchUp.
func (c *Catalog) ReconcileFlags(ctx context.Context, mailboxID int64, uidvalidity uint32, flags map[uint32][]string) (expunged, reflagged int, touched []int64, err error) {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, 0, nil, err
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT id, message_id, uid, flags FROM occurrences
		WHERE mailbox_id = ? AND uidvalidity = ? AND expunged_at = ''`, mailboxID, uidvalidity)
	if err != nil {
		return 0, 0, nil, err
	}
	type change struct {
		id, message int64
		have        string
		flags       []string
		gone        bool
	}
	var changes []change
	for rows.Next() {
		var id, msg int64
		var uid uint32
		var have string
		if err := rows.Scan(&id, &msg, &uid, &have); err != nil {
			rows.Close()
			return 0, 0, nil, err
		}
		now, present := flags[uid]
		switch {
		case !present:
			changes = append(changes, change{id: id, message: msg, gone: true})
		case !sameFlags(strings.Fields(have), now):
			changes = append(changes, change{id: id, message: msg, have: have, flags: now})
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, 0, nil, err
	}
	at := now()
	bumped := map[int64]bool{}
	for _, ch := range changes {
		if ch.gone {
			_, err = tx.ExecContext(ctx, `UPDATE occurrences SET expunged_at = ? WHERE id = ?`, at, ch.id)
			if err == nil {
				_, err = tx.ExecContext(ctx, `INSERT INTO expunges(occurrence_id, at) VALUES (?, ?)`, ch.id, at)
			}
			expunged++
		} else {
			_, err = setFlags(ctx, tx, ch.id, ch.have, ch.flags, FlagSourceReconcile, at)
			if err == nil && !bumped[ch.message] {
				bumped[ch.message] = true
				touched = append(touched, ch.message)
				_, err = tx.ExecContext(ctx, `UPDATE messages SET gen = gen + 1 WHERE id = ?`, ch.message)
			}
			reflagged++
		}
		if err != nil {
			return 0, 0, nil, err
		}
	}
	return expunged, reflagged, touched, tx.Commit()
}

// MailboxesGone marks expunged every live occurrence, in any epoch, of the
// account's harvested mailboxes whose names are not in onServer: mailboxes
// deleted or renamed on the server (a renamed one is harvested again under
// its new name, its content linked, not stored again). It returns the
// mailboxes it marked, with how many occurrences. Nothing is removed.
func (c *Catalog) MailboxesGone(ctx context.Context, account string, onServer []string) (map[string]int, error) {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT DISTINCT mb.id, mb.name FROM mailboxes mb
		JOIN accounts ac ON ac.id = mb.account_id JOIN occurrences o ON o.mailbox_id = mb.id
		WHERE ac.name = ? AND mb.source = ? AND o.expunged_at = ''`, account, SourceIMAP)
	if err != nil {
		return nil, err
	}
	present := make(map[string]bool, len(onServer))
	for _, n := range onServer {
		present[n] = true
	}
	gone := map[string]int64{}
	for rows.Next() {
		var id int64
		var name string
		if err := rows.Scan(&id, &name); err != nil {
			rows.Close()
			return nil, err
		}
		if !present[name] {
			gone[name] = id
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := map[string]int{}
	at := now()
	for name, id := range gone {
		if _, err := tx.ExecContext(ctx, `INSERT INTO expunges(occurrence_id, at)
			SELECT id, ? FROM occurrences WHERE mailbox_id = ? AND expunged_at = '' ORDER BY id`, at, id); err != nil {
			return nil, err
		}
		res, err := tx.ExecContext(ctx, `UPDATE occurrences SET expunged_at = ? WHERE mailbox_id = ? AND expunged_at = ''`, at, id)
		if err != nil {
			return nil, err
		}
		n, _ := res.RowsAffected()
		out[name] = int(n)
	}
	return out, tx.Commit()
}

// Skip records that (account, mailbox, uidvalidity, uid) could not be
// fetched, with why, and advances the mailbox checkpoint past it.
func (c *Catalog) Skip(ctx context.Context, account, name string, uidvalidity, uid uint32, reason string) error {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	mb, err := mailbox(ctx, tx, account, name)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO skipped(mailbox_id, uidvalidity, uid, reason, at) VALUES (?,?,?,?,?)
		ON CONFLICT DO UPDATE SET reason = excluded.reason, at = excluded.at`, mb.ID, uidvalidity, uid, reason, now()); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE mailboxes SET uidnext = max(uidnext, ?) WHERE id = ? AND uidvalidity = ?`,
		uid+1, mb.ID, uidvalidity); err != nil {
		return err
	}
	return tx.Commit()
}
