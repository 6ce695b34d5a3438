package catalog

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Lookups: the read side that searches and pages use.

// ContentCounts returns, for the mailbox's current epoch, how many occurrences
// each content (by sha256) has. Imports use it to recognise mail already there.
func (c *Catalog) ContentCounts(ctx context.Context, mailboxID int64, uidvalidity uint32) (map[[32]byte]int, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT m.sha256 FROM occurrences o JOIN messages m ON m.id = o.message_id
		WHERE o.mailbox_id = ? AND o.uidvalidity = ?`, mailboxID, uidvalidity)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	counts := map[[32]byte]int{}
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, err
		}
		var k [32]byte
		copy(k[:], b)
		counts[k]++
	}
	return counts, rows.Err()
}

// MaxUID returns the highest uid of the mailbox's epoch, 0 when it has none.
func (c *Catalog) MaxUID(ctx context.Context, mailboxID int64, uidvalidity uint32) (uint32, error) {
	var n sql.NullInt64
	err := c.db.QueryRowContext(ctx, `SELECT max(uid) FROM occurrences WHERE mailbox_id = ? AND uidvalidity = ?`,
		mailboxID, uidvalidity).Scan(&n)
	return uint32(n.Int64), err
}

// Place is an (account, mailbox) pair holding an occurrence of a message.
// Flags (from Places) are the flags and keywords of its occurrences there,
// each once, in the order first met.
type Place struct {
	Account, Mailbox string
	Flags            []string
	// Recipients are the envelope recipients of the journaled occurrences
	// there (envelopes.go), each once; nil for harvested and imported mail.
	Recipients []string
}

// Places returns the distinct (account, mailbox) pairs holding occurrences
// of the message, with the flags of those occurrences (expunged ones
// included: the human syntax searches them too).
func (c *Catalog) Places(ctx context.Context, messageID int64) ([]Place, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT a.name, m.name, o.flags FROM occurrences o
		JOIN mailboxes m ON m.id = o.mailbox_id JOIN accounts a ON a.id = m.account_id
		WHERE o.message_id = ? ORDER BY 1, 2, o.id`, messageID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ps []Place
	for rows.Next() {
		var p Place
		var flags string
		if err := rows.Scan(&p.Account, &p.Mailbox, &flags); err != nil {
			return nil, err
		}
		if n := len(ps); n == 0 || ps[n-1].Account != p.Account || ps[n-1].Mailbox != p.Mailbox {
			ps = append(ps, p)
		}
		last := &ps[len(ps)-1]
		for f := range strings.FieldsSeq(flags) {
			if !slices.Contains(last.Flags, f) {
				last.Flags = append(last.Flags, f)
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rcpts, err := c.envelopeRecipients(ctx, messageID)
	if err != nil {
		return nil, fmt.Errorf("envelopes: %w", err)
	}
	for i := range ps {
		ps[i].Recipients = rcpts[[2]string{ps[i].Account, ps[i].Mailbox}]
	}
	return ps, nil
}

// Located is a message with every one of its occurrences, for listing hits.
type Located struct {
	Message
	Occurrences []LocatedOccurrence
}

// LocatedOccurrence is an occurrence with its account and mailbox spelled out.
type LocatedOccurrence struct {
	Account      string
	AccountURL   string
	Mailbox      string
	Source       string
	UIDValidity  uint32
	UID          uint32
	Flags        []string
	InternalDate string
	Size         int64
	FirstSeen    string
	ExpungedAt   string
	// Stale: an occurrence of an old epoch of a harvested mailbox (its
	// UIDVALIDITY is no longer the mailbox's): its imap:// URL no longer
	// resolves on the server.
	Stale bool
	// Envelope is the SMTP envelope of a journaled occurrence
	// (envelopes.go); nil for every other.
	Envelope *Envelope
}

// Locate returns the messages with the given sha256 keys and their
// occurrences; keys the catalog does not know are left out.
func (c *Catalog) Locate(ctx context.Context, keys [][32]byte) (map[[32]byte]*Located, error) {
	out := make(map[[32]byte]*Located, len(keys))
	byID := map[int64]*Located{}
	for start := 0; start < len(keys); start += 500 {
		chunk := keys[start:min(start+500, len(keys))]
		args := make([]any, len(chunk))
		for i := range chunk {
			args[i] = chunk[i][:]
		}
		in := strings.TrimSuffix(strings.Repeat("?,", len(chunk)), ",")
		rows, err := c.db.QueryContext(ctx, `SELECT id, sha256, size, stored_size, parse_error, subject, from_addr,
			date, message_id, has_attachments FROM messages WHERE sha256 IN (`+in+`)`, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			l := &Located{}
			var sha []byte
			var date string
			if err := rows.Scan(&l.ID, &sha, &l.Size, &l.StoredSize, &l.ParseError, &l.Subject, &l.From,
				&date, &l.MessageID, &l.HasAttachments); err != nil {
				rows.Close()
				return nil, err
			}
			copy(l.SHA256[:], sha)
			if date != "" {
				l.Date, _ = time.Parse(time.RFC3339, date)
			}
			out[l.SHA256] = l
			byID[l.ID] = l
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	ids := make([]any, 0, len(byID))
	for id := range byID {
		ids = append(ids, id)
	}
	for start := 0; start < len(ids); start += 500 {
		chunk := ids[start:min(start+500, len(ids))]
		in := strings.TrimSuffix(strings.Repeat("?,", len(chunk)), ",")
		rows, err := c.db.QueryContext(ctx, `SELECT o.message_id, a.name, a.url, m.name, m.source, o.uidvalidity, o.uid,
			o.flags, o.internal_date, o.size, o.first_seen, o.expunged_at, m.source = 'imap' AND o.uidvalidity != m.uidvalidity,
			e.mail_from, e.rcpt_to, e.recipients, e.client, e.helo, e.listener, e.auth_user, e.received_at
			FROM occurrences o JOIN mailboxes m ON m.id = o.mailbox_id JOIN accounts a ON a.id = m.account_id
			LEFT JOIN envelopes e ON e.mailbox_id = o.mailbox_id AND e.uidvalidity = o.uidvalidity AND e.uid = o.uid
			WHERE o.message_id IN (`+in+`) ORDER BY a.name, m.name, o.uidvalidity, o.uid`, chunk...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id int64
			var o LocatedOccurrence
			var flags string
			var ev [8]sql.NullString
			if err := rows.Scan(&id, &o.Account, &o.AccountURL, &o.Mailbox, &o.Source, &o.UIDValidity, &o.UID,
				&flags, &o.InternalDate, &o.Size, &o.FirstSeen, &o.ExpungedAt, &o.Stale,
				&ev[0], &ev[1], &ev[2], &ev[3], &ev[4], &ev[5], &ev[6], &ev[7]); err != nil {
				rows.Close()
				return nil, err
			}
			o.Flags = strings.Fields(flags)
			if ev[1].Valid {
				e := &Envelope{MailFrom: ev[0].String, Client: ev[3].String, Helo: ev[4].String,
					Listener: ev[5].String, AuthUser: ev[6].String}
				json.Unmarshal([]byte(ev[1].String), &e.RcptTo)
				json.Unmarshal([]byte(ev[2].String), &e.Recipients)
				e.ReceivedAt, _ = time.Parse(time.RFC3339Nano, ev[7].String)
				o.Envelope = e
			}
			byID[id].Occurrences = append(byID[id].Occurrences, o)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// MailboxOccurrence is one occurrence with what IMAP SEARCH asks of it.
type MailboxOccurrence struct {
	UID         uint32
	Flags       string // space-separated
	Size        int64  // RFC822.SIZE: the bytes the server sent
	InternalDay string // YYYY-MM-DD of the INTERNALDATE in its own zone; "" when unknown
	SentDay     string // YYYY-MM-DD of the Date: header in its own zone; "" when none
	Expunged    string // when the server expunged it; "" while it is there
	MessageID   int64
	SHA256      [32]byte
	// For display.
	Date, From, Subject, ParseError string
}

// MailboxOccurrences returns the occurrences of a mailbox's epoch in UID
// order; expunged ones only when withExpunged.
func (c *Catalog) MailboxOccurrences(ctx context.Context, mailboxID int64, uidvalidity uint32, withExpunged bool) ([]MailboxOccurrence, error) {
	q := `SELECT o.uid, o.flags, o.size, substr(o.internal_date, 1, 10), substr(m.date, 1, 10), o.expunged_at, m.id, m.sha256,
		m.date, m.from_addr, m.subject, m.parse_error
		FROM occurrences o JOIN messages m ON m.id = o.message_id
		WHERE o.mailbox_id = ? AND o.uidvalidity = ?`
	if !withExpunged {
		q += ` AND o.expunged_at = ''`
	}
	rows, err := c.db.QueryContext(ctx, q+` ORDER BY o.uid`, mailboxID, uidvalidity)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []MailboxOccurrence
	for rows.Next() {
		var o MailboxOccurrence
		var sha []byte
		if err := rows.Scan(&o.UID, &o.Flags, &o.Size, &o.InternalDay, &o.SentDay, &o.Expunged, &o.MessageID, &sha,
			&o.Date, &o.From, &o.Subject, &o.ParseError); err != nil {
			return nil, err
		}
		copy(o.SHA256[:], sha)
		out = append(out, o)
	}
	return out, rows.Err()
}

// Accounts returns the names of every account, sorted.
func (c *Catalog) Accounts(ctx context.Context) ([]string, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT name FROM accounts ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// ByMessageID returns the sha256 (hex) of the messages whose Message-ID
// (without angle brackets) is one of ids.
func (c *Catalog) ByMessageID(ctx context.Context, ids []string) (map[string][]string, error) {
	out := map[string][]string{}
	for _, id := range ids {
		if id == "" || out[id] != nil {
			continue
		}
		rows, err := c.db.QueryContext(ctx, `SELECT lower(hex(sha256)) FROM messages WHERE message_id = ?`, id)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var sha string
			if err := rows.Scan(&sha); err != nil {
				rows.Close()
				return nil, err
			}
			out[id] = append(out[id], sha)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// AllMailboxes returns every (account, mailbox), sorted: a cheap list, where
// indexer.Status also counts.
func (c *Catalog) AllMailboxes(ctx context.Context) ([]Place, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT a.name, m.name FROM mailboxes m JOIN accounts a ON a.id = m.account_id ORDER BY 1, 2`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Place
	for rows.Next() {
		var p Place
		if err := rows.Scan(&p.Account, &p.Mailbox); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// keySet runs q, a query of sha256 values ending in "IN ", with the keys
// as its list, 500 at a time, and returns the keys it answered.
func (c *Catalog) keySet(ctx context.Context, q string, keys [][32]byte) (map[[32]byte]bool, error) {
	out := map[[32]byte]bool{}
	for start := 0; start < len(keys); start += 500 {
		chunk := keys[start:min(start+500, len(keys))]
		args := make([]any, len(chunk))
		for i, k := range chunk {
			args[i] = k[:]
		}
		rows, err := c.db.QueryContext(ctx, q+`(?`+repeatComma(len(chunk)-1)+`)`, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var b []byte
			if err := rows.Scan(&b); err != nil {
				rows.Close()
				return nil, err
			}
			var k [32]byte
			copy(k[:], b)
			out[k] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}
