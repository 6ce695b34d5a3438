package catalog

import (
	"context"
	"encoding/hex"
)

// Index bookkeeping: gen is what the index must hold for a message,
// indexed_gen what it holds.

// IndexTask names a message whose index document is out of date.
type IndexTask struct {
	ID     int64
	SHA256 [32]byte
	Gen    int64
}

// Unindexed returns up to limit messages with indexed_gen < gen and id > afterID, by id.
func (c *Catalog) Unindexed(ctx context.Context, afterID int64, limit int) ([]IndexTask, error) {
	return c.indexTasks(ctx, `SELECT id, sha256, gen FROM messages WHERE indexed_gen < gen AND id > ?
		ORDER BY id LIMIT ?`, afterID, limit)
}

// indexTasks runs a query of (id, sha256, gen) rows.
func (c *Catalog) indexTasks(ctx context.Context, query string, args ...any) ([]IndexTask, error) {
	rows, err := c.db.QueryContext(ctx, query, args...)
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

// Gen returns the message's current gen.
func (c *Catalog) Gen(ctx context.Context, messageID int64) (int64, error) {
	var g int64
	err := c.db.QueryRowContext(ctx, `SELECT gen FROM messages WHERE id = ?`, messageID).Scan(&g)
	return g, err
}

// MarkIndexed records that the index holds the documents of these tasks as of
// their gen. A task whose message changed since (gen moved on) stays unindexed.
func (c *Catalog) MarkIndexed(ctx context.Context, tasks []IndexTask) error {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `UPDATE messages SET indexed_gen = ? WHERE id = ? AND indexed_gen < ?`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, t := range tasks {
		if _, err := stmt.ExecContext(ctx, t.Gen, t.ID, t.Gen); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// ResetIndexed marks every message as not indexed (for a rebuild of the
// index), except those disposed of: they have no blob and no document.
func (c *Catalog) ResetIndexed(ctx context.Context) error {
	_, err := c.db.ExecContext(ctx, `UPDATE messages SET indexed_gen = 0 WHERE id NOT IN (SELECT message_id FROM disposed)`)
	return err
}

// SHA256Hex is the task's blob key in hex, the message's index document id.
func (t IndexTask) SHA256Hex() string { return hex.EncodeToString(t.SHA256[:]) }

// CountUnindexed returns the number of messages with indexed_gen < gen.
func (c *Catalog) CountUnindexed(ctx context.Context) (int, error) {
	var n int
	err := c.db.QueryRowContext(ctx, `SELECT count(*) FROM messages WHERE indexed_gen < gen`).Scan(&n)
	return n, err
}

// Messages returns up to limit messages with id > afterID, by id, with their
// current gen: the whole catalog, page by page, for a rebuild of the index.
// Messages disposed of are left out (tombstones.go).
func (c *Catalog) Messages(ctx context.Context, afterID int64, limit int) ([]IndexTask, error) {
	return c.indexTasks(ctx, `SELECT id, sha256, gen FROM messages WHERE id > ? AND id NOT IN (SELECT message_id FROM disposed) ORDER BY id LIMIT ?`, afterID, limit)
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
	stmt, err := tx.PrepareContext(ctx, `UPDATE messages SET indexed_gen = 0 WHERE id = ? AND id NOT IN (SELECT message_id FROM disposed)`)
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
