package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Ingest: the write transaction that records arrivals.

// Tx is a write transaction. It is not safe for concurrent use.
type Tx struct {
	tx    *sql.Tx
	stmts map[string]*sql.Stmt // prepare's statements, closed with the transaction
}

// prepare returns q prepared on the transaction, once per transaction: the
// statements an ingest runs for every message (a batch is hundreds) cost
// SQLite's parse and plan each time otherwise.
func (t *Tx) prepare(ctx context.Context, q string) (*sql.Stmt, error) {
	if st := t.stmts[q]; st != nil {
		return st, nil
	}
	st, err := t.tx.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if t.stmts == nil {
		t.stmts = map[string]*sql.Stmt{}
	}
	t.stmts[q] = st
	return st, nil
}

// exec and queryRow run q as a statement prepared once per transaction.
func (t *Tx) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	st, err := t.prepare(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

func (t *Tx) queryRow(ctx context.Context, dest []any, q string, args ...any) error {
	st, err := t.prepare(ctx, q)
	if err != nil {
		return err
	}
	return st.QueryRowContext(ctx, args...).Scan(dest...)
}

// Begin starts a write transaction.
func (c *Catalog) Begin(ctx context.Context) (*Tx, error) {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin catalog transaction: %w", err)
	}
	return &Tx{tx: tx}, nil
}

// Commit commits the transaction durably.
func (t *Tx) Commit() error { return t.tx.Commit() }

// Rollback abandons the transaction; it is a no-op after Commit.
func (t *Tx) Rollback() error {
	err := t.tx.Rollback()
	if errors.Is(err, sql.ErrTxDone) {
		return nil
	}
	return err
}

// OccurrenceExists reports whether (mailbox, uidvalidity, uid) is archived.
func (t *Tx) OccurrenceExists(ctx context.Context, mailboxID int64, uidvalidity, uid uint32) (bool, error) {
	var one int
	err := t.queryRow(ctx, []any{&one}, `SELECT 1 FROM occurrences WHERE mailbox_id = ? AND uidvalidity = ? AND uid = ?`,
		mailboxID, uidvalidity, uid)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// MessageID returns the row id of the message with the given sha256, or 0.
func (t *Tx) MessageID(ctx context.Context, sha [32]byte) (int64, error) {
	var id int64
	err := t.queryRow(ctx, []any{&id}, `SELECT id FROM messages WHERE sha256 = ?`, sha[:])
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return id, err
}

// Message is what the catalog keeps of a unique message.
type Message struct {
	ID             int64
	SHA256         [32]byte
	Size           int64
	StoredSize     int64
	ParseError     string
	Subject        string
	From           string
	Date           time.Time // in the message's own zone; zero when it has none
	MessageID      string
	HasAttachments bool
	// Extract queues the attachments' text extraction (extracts.go) with
	// the message, when it is new.
	Extract bool
	// Fingerprint is the normalised-content fingerprint (fingerprint.go)
	// of FingerprintVersion; version 0 leaves it to the backfill.
	Fingerprint        string
	FingerprintVersion int
}

func dateText(t time.Time) (string, any) {
	if t.IsZero() {
		return "", nil
	}
	return t.Format(time.RFC3339), t.Unix()
}

// InsertMessage adds a unique message and returns its row id.
func (t *Tx) InsertMessage(ctx context.Context, m *Message) (int64, error) {
	ds, du := dateText(m.Date)
	var fp, fpv any // NULL: not computed
	if m.FingerprintVersion > 0 {
		fp, fpv = m.Fingerprint, m.FingerprintVersion
	}
	res, err := t.exec(ctx, `INSERT INTO messages(sha256, size, stored_size, parse_error, subject, from_addr,
		date, date_unix, message_id, has_attachments, stored_at, fingerprint, fingerprint_v) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		m.SHA256[:], m.Size, m.StoredSize, m.ParseError, m.Subject, m.From, ds, du, m.MessageID, m.HasAttachments, now(), fp, fpv)
	if err != nil {
		return 0, fmt.Errorf("insert message %x: %w", m.SHA256, err)
	}
	return res.LastInsertId()
}

// Occurrence is one copy of a message in a mailbox.
type Occurrence struct {
	MailboxID    int64
	UIDValidity  uint32
	UID          uint32
	MessageID    int64
	Flags        []string
	InternalDate time.Time
	Size         int64
}

// InsertOccurrence records an occurrence. It reports false, and changes
// nothing, when the occurrence exists already.
func (t *Tx) InsertOccurrence(ctx context.Context, o *Occurrence) (bool, error) {
	idate := ""
	if !o.InternalDate.IsZero() {
		idate = o.InternalDate.Format(time.RFC3339)
	}
	res, err := t.exec(ctx, `INSERT INTO occurrences(mailbox_id, uidvalidity, uid, message_id, flags,
		internal_date, size, first_seen) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING`,
		o.MailboxID, o.UIDValidity, o.UID, o.MessageID, strings.Join(o.Flags, " "), idate, o.Size, now())
	if err != nil {
		return false, fmt.Errorf("insert occurrence uid %d: %w", o.UID, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// InNewPlace reports whether the message has no occurrence yet in the mailbox
// (in any epoch), so that adding one changes the (account, mailbox) keys the
// index holds for it. Call it before InsertOccurrence.
func (t *Tx) InNewPlace(ctx context.Context, messageID, mailboxID int64) (bool, error) {
	var one int
	err := t.queryRow(ctx, []any{&one}, `SELECT 1 FROM occurrences WHERE message_id = ? AND mailbox_id = ? LIMIT 1`,
		messageID, mailboxID)
	if errors.Is(err, sql.ErrNoRows) {
		return true, nil
	}
	return false, err
}

// Touch marks the message as needing (re)indexing.
func (t *Tx) Touch(ctx context.Context, messageID int64) error {
	_, err := t.tx.ExecContext(ctx, `UPDATE messages SET gen = gen + 1 WHERE id = ?`, messageID)
	return err
}

// SetUIDNext advances the mailbox checkpoint; it never moves it backwards.
func (t *Tx) SetUIDNext(ctx context.Context, mailboxID int64, uidnext uint32) error {
	_, err := t.tx.ExecContext(ctx, `UPDATE mailboxes SET uidnext = max(uidnext, ?), last_sync = ? WHERE id = ?`,
		uidnext, now(), mailboxID)
	return err
}

// Outcome says what RecordIngest did with one arrival.
type Outcome int

const (
	// New content: a message and an occurrence were inserted.
	RecordedNew Outcome = iota + 1
	// Known content in a new place: only an occurrence was inserted.
	RecordedLinked
	// The occurrence was there already: nothing changed.
	RecordedPresent
)

// Arrival is one copy of a message to record.
type Arrival struct {
	Message *Message // the content; its SHA256 identifies it, the rest is used when it is new
	// Occurrence is where the copy lives; its MessageID is filled in.
	Occurrence Occurrence
	// Checkpoint advances the mailbox's uidnext past the UID (an arrival in
	// the mailbox's current epoch).
	Checkpoint bool
	// Envelope, when set, is the SMTP envelope of a journaled copy
	// (envelopes.go), recorded with the occurrence. A copy whose bytes and
	// envelope the mailbox holds already is a retried delivery: recorded
	// as present.
	Envelope *Envelope
	// Gmail, when set, is what Gmail's X-GM-EXT-1 said of the copy
	// (gmail.go), recorded with the occurrence.
	Gmail *Gmail
}

// Recorded is what RecordIngest did with one arrival.
type Recorded struct {
	Outcome   Outcome
	MessageID int64
	// NewPlace: the message had no occurrence in this mailbox before, so the
	// (account, mailbox) keys its index document holds change. Its gen was
	// raised (once per batch) unless the message is new.
	NewPlace bool
}

// RecordIngest records a batch of arrivals in one transaction: all of them,
// or (on error) none. Arrivals already recorded (same mailbox, uidvalidity
// and uid) are left alone, so a batch may be recorded again after a crash.
// The transaction is what keeps the catalog right: the statements are
// insert-if-absent on the unique keys, so concurrent writers (a database
// server with several archive processes) record each occurrence once.
func (c *Catalog) RecordIngest(ctx context.Context, arrivals []Arrival) ([]Recorded, error) {
	tx, err := c.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	out := make([]Recorded, len(arrivals))
	touched := map[int64]bool{}
	uidnext := map[int64]uint32{}
	for i, ar := range arrivals {
		o := ar.Occurrence
		rec := &out[i]
		exists, err := tx.OccurrenceExists(ctx, o.MailboxID, o.UIDValidity, o.UID)
		if err != nil {
			return nil, err
		}
		if ar.Checkpoint && o.UID+1 > uidnext[o.MailboxID] {
			// Present or new, the copy is durable now: the checkpoint may
			// pass it. (Present copies moved nothing before, so a
			// checkpoint that was ever behind its copies stayed there and
			// the mailbox was fetched again at every sync.)
			uidnext[o.MailboxID] = o.UID + 1
		}
		if exists {
			rec.Outcome = RecordedPresent
			continue
		}
		id, err := tx.MessageID(ctx, ar.Message.SHA256)
		if err != nil {
			return nil, err
		}
		rec.NewPlace = true
		if id == 0 {
			rec.Outcome = RecordedNew
			if id, err = tx.InsertMessage(ctx, ar.Message); err != nil {
				return nil, err
			}
			if ar.Message.Extract {
				if err := tx.QueueExtract(ctx, id); err != nil {
					return nil, err
				}
			}
			touched[id] = true // inserted at gen 1
		} else {
			if ar.Envelope != nil {
				again, err := tx.retried(ctx, o.MailboxID, id, ar.Envelope.Digest())
				if err != nil {
					return nil, err
				}
				if again {
					*rec = Recorded{Outcome: RecordedPresent}
					continue
				}
			}
			rec.Outcome = RecordedLinked
			if rec.NewPlace, err = tx.InNewPlace(ctx, id, o.MailboxID); err != nil {
				return nil, err
			}
		}
		rec.MessageID = id
		o.MessageID = id
		if _, err := tx.InsertOccurrence(ctx, &o); err != nil {
			return nil, err
		}
		if ar.Envelope != nil {
			if err := tx.insertEnvelope(ctx, &o, ar.Envelope); err != nil {
				return nil, err
			}
			// Envelope recipients are indexed (rcpt:, bcc:): a new
			// envelope in a known place changes the document too.
			rec.NewPlace = true
		}
		if ar.Gmail != nil {
			if err := tx.recordGmail(ctx, &o, ar.Gmail); err != nil {
				return nil, err
			}
		}
		if rec.NewPlace && !touched[id] {
			if err := tx.Touch(ctx, id); err != nil {
				return nil, fmt.Errorf("touch message %d: %w", id, err)
			}
			touched[id] = true
		}
	}
	for mbID, next := range uidnext {
		if err := tx.SetUIDNext(ctx, mbID, next); err != nil {
			return nil, fmt.Errorf("advance checkpoint: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	return out, nil
}
