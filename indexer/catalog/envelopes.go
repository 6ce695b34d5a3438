package catalog

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Envelopes: the SMTP envelope of an occurrence that came in by journaling
// (package journal). The envelope is what the sending server said outside
// the message: MAIL FROM and every RCPT TO, which names the Bcc recipients
// that no header shows.
//
// Invariants:
//   - One row per occurrence at most, keyed like occurrences (mailbox,
//     uidvalidity, uid), inserted in the same transaction as the
//     occurrence (RecordIngest): an occurrence of a journal mailbox never
//     exists without its envelope, nor an envelope without its occurrence.
//   - Rows are never updated or deleted (the trigger refuses both);
//     retention removes occurrences' envelopes with them only through
//     disposal, which is its own audited path.
//   - digest is sha256 over MAIL FROM and the sorted RCPT TO list. A
//     delivery whose bytes and digest equal those of an occurrence already
//     in the same mailbox is the sending server retrying a message whose
//     acknowledgement it did not get (a crash between commit and reply):
//     RecordIngest records it as present, not again (invariant 2).
const envelopesSchema = `
CREATE TABLE IF NOT EXISTS envelopes (
	mailbox_id  INTEGER NOT NULL REFERENCES mailboxes(id),
	uidvalidity INTEGER NOT NULL,
	uid         INTEGER NOT NULL,
	message_id  INTEGER NOT NULL REFERENCES messages(id),
	mail_from   TEXT NOT NULL,               -- reverse path as given, '' for the null sender <>
	rcpt_to     TEXT NOT NULL,               -- JSON array: every RCPT TO, in order, as given
	recipients  TEXT NOT NULL,               -- JSON array: the recipients they stand for (decoded, lower-cased domain)
	client      TEXT NOT NULL DEFAULT '',    -- the sending client's address (ip:port)
	helo        TEXT NOT NULL DEFAULT '',
	listener    TEXT NOT NULL,               -- 'smtp' or 'lmtp'
	auth_user   TEXT NOT NULL DEFAULT '',
	received_at TEXT NOT NULL,               -- RFC 3339 UTC, when the message's data ended
	digest      BLOB NOT NULL,
	PRIMARY KEY (mailbox_id, uidvalidity, uid)
);
CREATE INDEX IF NOT EXISTS envelopes_message ON envelopes(message_id);
CREATE TRIGGER IF NOT EXISTS envelopes_never_updated BEFORE UPDATE ON envelopes
BEGIN SELECT RAISE(ABORT, 'envelopes are never changed'); END;
`

func init() { moreSchemas = append(moreSchemas, envelopesSchema) }

// SourceJournal is the source of a journal mailbox: its occurrences came
// in by SMTP or LMTP and each has an envelope.
const SourceJournal = "journal"

// Envelope is the SMTP envelope of a journaled occurrence.
// The JSON names are the API's (/api/messages/:id, each occurrence's
// "envelope").
type Envelope struct {
	MailFrom string `json:"mail_from"`
	// RcptTo are the RCPT TO addresses as the client sent them; Recipients
	// the recipients they stand for (an encoded journal address decoded,
	// package journal), one per RCPT TO.
	RcptTo     []string  `json:"rcpt_to"`
	Recipients []string  `json:"recipients"`
	Client     string    `json:"client"`
	Helo       string    `json:"helo,omitempty"`
	Listener   string    `json:"listener"`
	AuthUser   string    `json:"auth_user,omitempty"`
	ReceivedAt time.Time `json:"received_at"`
}

// Digest identifies the envelope for retry detection: MAIL FROM and the
// sorted, lower-cased RCPT TO list.
func (e *Envelope) Digest() []byte {
	rcpts := make([]string, len(e.RcptTo))
	for i, r := range e.RcptTo {
		rcpts[i] = strings.ToLower(r)
	}
	slices.Sort(rcpts)
	h := sha256.New()
	h.Write([]byte(strings.ToLower(e.MailFrom)))
	for _, r := range rcpts {
		h.Write([]byte{0})
		h.Write([]byte(r))
	}
	return h.Sum(nil)
}

// retried reports whether the mailbox holds the message already with an
// envelope of the same digest (a retried delivery; see the schema).
func (t *Tx) retried(ctx context.Context, mailboxID, messageID int64, digest []byte) (bool, error) {
	var one int
	err := t.queryRow(ctx, []any{&one}, `SELECT 1 FROM envelopes WHERE mailbox_id = ? AND message_id = ? AND digest = ? LIMIT 1`,
		mailboxID, messageID, digest)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// insertEnvelope records the envelope of the occurrence o.
func (t *Tx) insertEnvelope(ctx context.Context, o *Occurrence, e *Envelope) error {
	rcpt, _ := json.Marshal(nonNil(e.RcptTo))
	recips, _ := json.Marshal(nonNil(e.Recipients))
	_, err := t.exec(ctx, `INSERT INTO envelopes(mailbox_id, uidvalidity, uid, message_id, mail_from, rcpt_to, recipients,
		client, helo, listener, auth_user, received_at, digest) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		o.MailboxID, o.UIDValidity, o.UID, o.MessageID, e.MailFrom, string(rcpt), string(recips),
		e.Client, e.Helo, e.Listener, e.AuthUser, e.ReceivedAt.UTC().Format(time.RFC3339Nano), e.Digest())
	if err != nil {
		return fmt.Errorf("insert envelope uid %d: %w", o.UID, err)
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// OccurrenceEnvelope is an envelope with the occurrence it belongs to.
type OccurrenceEnvelope struct {
	Account, Mailbox string
	UIDValidity, UID uint32
	Envelope
}

// Envelopes returns the envelopes of the message's occurrences, in
// (account, mailbox, uidvalidity, uid) order.
func (c *Catalog) Envelopes(ctx context.Context, messageID int64) ([]OccurrenceEnvelope, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT a.name, m.name, e.uidvalidity, e.uid, e.mail_from, e.rcpt_to, e.recipients,
		e.client, e.helo, e.listener, e.auth_user, e.received_at
		FROM envelopes e JOIN mailboxes m ON m.id = e.mailbox_id JOIN accounts a ON a.id = m.account_id
		WHERE e.message_id = ? ORDER BY 1, 2, 3, 4`, messageID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []OccurrenceEnvelope
	for rows.Next() {
		var oe OccurrenceEnvelope
		var rcpt, recips, at string
		if err := rows.Scan(&oe.Account, &oe.Mailbox, &oe.UIDValidity, &oe.UID, &oe.MailFrom, &rcpt, &recips,
			&oe.Client, &oe.Helo, &oe.Listener, &oe.AuthUser, &at); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(rcpt), &oe.RcptTo); err != nil {
			return nil, fmt.Errorf("envelope uid %d: rcpt_to: %w", oe.UID, err)
		}
		if err := json.Unmarshal([]byte(recips), &oe.Recipients); err != nil {
			return nil, fmt.Errorf("envelope uid %d: recipients: %w", oe.UID, err)
		}
		oe.ReceivedAt, _ = time.Parse(time.RFC3339Nano, at)
		out = append(out, oe)
	}
	return out, rows.Err()
}

// envelopeRecipients returns, per (account, mailbox) of the message, the
// envelope recipients of its occurrences there, for the index (Places).
func (c *Catalog) envelopeRecipients(ctx context.Context, messageID int64) (map[[2]string][]string, error) {
	envs, err := c.Envelopes(ctx, messageID)
	if err != nil || len(envs) == 0 {
		return nil, err
	}
	out := map[[2]string][]string{}
	for _, e := range envs {
		k := [2]string{e.Account, e.Mailbox}
		for _, r := range e.Recipients {
			if !slices.Contains(out[k], r) {
				out[k] = append(out[k], r)
			}
		}
	}
	return out, nil
}
