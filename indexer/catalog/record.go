package catalog

import (
	"context"
	"fmt"
)

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
			touched[id] = true // inserted at gen 1
		} else {
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
		if rec.NewPlace && !touched[id] {
			if err := tx.Touch(ctx, id); err != nil {
				return nil, fmt.Errorf("touch message %d: %w", id, err)
			}
			touched[id] = true
		}
		if ar.Checkpoint && o.UID+1 > uidnext[o.MailboxID] {
			uidnext[o.MailboxID] = o.UID + 1
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

// Messages returns up to limit messages with id > afterID, by id, with their
// current gen: the whole catalog, page by page, for a rebuild of the index.
func (c *Catalog) Messages(ctx context.Context, afterID int64, limit int) ([]IndexTask, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT id, sha256, gen FROM messages WHERE id > ? ORDER BY id LIMIT ?`, afterID, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var tasks []IndexTask
	for rows.Next() {
		var t IndexTask
		var b []byte
		if err := rows.Scan(&t.ID, &b, &t.Gen); err != nil {
			return nil, err
		}
		copy(t.SHA256[:], b)
		tasks = append(tasks, t)
	}
	return tasks, rows.Err()
}

// CountMessages returns the number of unique messages.
func (c *Catalog) CountMessages(ctx context.Context) (int, error) {
	var n int
	err := c.db.QueryRowContext(ctx, `SELECT count(*) FROM messages`).Scan(&n)
	return n, err
}

// IndexTasks returns the messages with these row ids and their current gen;
// ids the catalog does not know are left out.
func (c *Catalog) IndexTasks(ctx context.Context, ids []int64) ([]IndexTask, error) {
	var tasks []IndexTask
	for start := 0; start < len(ids); start += 500 {
		chunk := ids[start:min(start+500, len(ids))]
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		in := "?" + repeatComma(len(chunk)-1)
		rows, err := c.db.QueryContext(ctx, `SELECT id, sha256, gen FROM messages WHERE id IN (`+in+`) ORDER BY id`, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var t IndexTask
			var b []byte
			if err := rows.Scan(&t.ID, &b, &t.Gen); err != nil {
				rows.Close()
				return nil, err
			}
			copy(t.SHA256[:], b)
			tasks = append(tasks, t)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return tasks, nil
}

func repeatComma(n int) string {
	b := make([]byte, 0, 2*n)
	for range n {
		b = append(b, ",?"...)
	}
	return string(b)
}

// MarkUnindexed records that the index does not hold these messages (a
// rebuilt index could not read their blobs): they are indexed again by the
// next catch-up. Always safe: at worst a message is indexed twice.
func (c *Catalog) MarkUnindexed(ctx context.Context, ids []int64) error {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `UPDATE messages SET indexed_gen = 0 WHERE id = ?`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, id := range ids {
		if _, err := stmt.ExecContext(ctx, id); err != nil {
			return err
		}
	}
	return tx.Commit()
}
