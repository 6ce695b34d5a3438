package catalog

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Gmail: what Gmail's IMAP extension X-GM-EXT-1 says of an account's
// messages (harvest/gmail.go). Gmail shows each label as a folder, so one
// message is in as many mailboxes as it has labels, and in "[Gmail]/All
// Mail" besides; X-GM-MSGID is the message's identity across all of them.
//
// Invariants:
//   - One row per (account, X-GM-MSGID), inserted in the transaction that
//     records the first occurrence of the message in the account
//     (RecordIngest), updated (labels, last_seen) by every later one.
//   - message_id is the message the first sighting's bytes made; it is
//     never changed. The harvester uses the row to record a message it
//     meets again under another label without downloading it (Google
//     documents X-GM-MSGID as unique to one message), so the row must name
//     content the archive holds: GmailKnown leaves out messages that have
//     a tombstone, whose blob is or will be gone, and disposal
//     (FinishTombstone) deletes their rows, labels being a person's
//     annotations of the message like keywords.
//   - msgid and thrid are unsigned 64-bit on the wire; SQLite's INTEGER is
//     signed, so they are stored as the int64 with the same bits.
const gmailSchema = `
CREATE TABLE IF NOT EXISTS gmail_messages (
	account_id INTEGER NOT NULL REFERENCES accounts(id),
	msgid      INTEGER NOT NULL,             -- X-GM-MSGID, as int64 bits
	thrid      INTEGER NOT NULL,             -- X-GM-THRID, as int64 bits
	message_id INTEGER NOT NULL REFERENCES messages(id),
	labels     TEXT NOT NULL,                -- JSON array: X-GM-LABELS at the latest sighting, decoded
	first_seen TEXT NOT NULL,
	last_seen  TEXT NOT NULL,
	PRIMARY KEY (account_id, msgid)
);
CREATE INDEX IF NOT EXISTS gmail_messages_message ON gmail_messages(message_id);
`

func init() { moreSchemas = append(moreSchemas, gmailSchema) }

// Gmail is what X-GM-EXT-1 said of one message when it was seen.
// The JSON names are the API's (/api/messages/:id, "gmail").
type Gmail struct {
	MsgID  uint64   `json:"msgid,string"`
	ThrID  uint64   `json:"thrid,string"`
	Labels []string `json:"labels"`
	// FirstSeen and LastSeen are filled in by GmailOf.
	FirstSeen time.Time `json:"first_seen,omitzero"`
	LastSeen  time.Time `json:"last_seen,omitzero"`
}

// recordGmail records g for the occurrence o (its MessageID set): a new
// row, or the latest labels of a known one.
func (t *Tx) recordGmail(ctx context.Context, o *Occurrence, g *Gmail) error {
	labels, _ := json.Marshal(nonNil(g.Labels))
	at := now()
	_, err := t.exec(ctx, `INSERT INTO gmail_messages(account_id, msgid, thrid, message_id, labels, first_seen, last_seen)
		SELECT account_id, ?, ?, ?, ?, ?, ? FROM mailboxes WHERE id = ?
		ON CONFLICT (account_id, msgid) DO UPDATE SET labels = excluded.labels, last_seen = excluded.last_seen`,
		int64(g.MsgID), int64(g.ThrID), o.MessageID, string(labels), at, at, o.MailboxID)
	if err != nil {
		return fmt.Errorf("record X-GM-MSGID %d: %w", g.MsgID, err)
	}
	return nil
}

// GmailMessage is the message the archive holds under an X-GM-MSGID.
type GmailMessage struct {
	SHA256 [32]byte
	Size   int64 // its bytes, to check against the server's RFC822.SIZE
}

// GmailKnown returns, of msgids, those the archive holds the content of
// for account, each with its message. A message with a tombstone is not
// known: its blob is being, or has been, deleted.
func (c *Catalog) GmailKnown(ctx context.Context, account string, msgids []uint64) (map[uint64]GmailMessage, error) {
	out := map[uint64]GmailMessage{}
	for start := 0; start < len(msgids); start += 500 {
		chunk := msgids[start:min(start+500, len(msgids))]
		args := []any{account}
		for _, id := range chunk {
			args = append(args, int64(id))
		}
		rows, err := c.db.QueryContext(ctx, `
			SELECT g.msgid, m.sha256, m.size FROM gmail_messages g JOIN messages m ON m.id = g.message_id
			WHERE g.account_id = (SELECT id FROM accounts WHERE name = ?) AND g.msgid IN (?`+repeatComma(len(chunk)-1)+`)
			AND NOT EXISTS (SELECT 1 FROM disposed d WHERE d.message_id = m.id)
			AND NOT EXISTS (SELECT 1 FROM tombstones t WHERE t.sha256 = lower(hex(m.sha256)))`, args...)
		if err != nil {
			return nil, fmt.Errorf("gmail known: %w", err)
		}
		for rows.Next() {
			var id, size int64
			var sha []byte
			if err := rows.Scan(&id, &sha, &size); err != nil {
				rows.Close()
				return nil, err
			}
			if len(sha) == 32 {
				out[uint64(id)] = GmailMessage{SHA256: [32]byte(sha), Size: size}
			}
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// GmailOf returns what Gmail said of the message with key sha, per
// account name (one message may be in several Gmail accounts).
func (c *Catalog) GmailOf(ctx context.Context, sha [32]byte) (map[string]Gmail, error) {
	rows, err := c.db.QueryContext(ctx, `
		SELECT a.name, g.msgid, g.thrid, g.labels, g.first_seen, g.last_seen
		FROM gmail_messages g JOIN accounts a ON a.id = g.account_id
		WHERE g.message_id = (SELECT id FROM messages WHERE sha256 = ?)`, sha[:])
	if err != nil {
		return nil, fmt.Errorf("gmail of: %w", err)
	}
	defer rows.Close()
	out := map[string]Gmail{}
	for rows.Next() {
		var name, labels, first, last string
		var msgid, thrid int64
		if err := rows.Scan(&name, &msgid, &thrid, &labels, &first, &last); err != nil {
			return nil, err
		}
		g := Gmail{MsgID: uint64(msgid), ThrID: uint64(thrid)}
		if err := json.NewDecoder(strings.NewReader(labels)).Decode(&g.Labels); err != nil {
			return nil, fmt.Errorf("gmail of: labels: %w", err)
		}
		g.FirstSeen, _ = time.Parse(time.RFC3339Nano, first)
		g.LastSeen, _ = time.Parse(time.RFC3339Nano, last)
		out[name] = g
	}
	return out, rows.Err()
}
