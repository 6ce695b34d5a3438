package catalog

import (
	"context"
	"fmt"
)

// MessageRowID returns the row id of the message with key sha (the slot of
// its IMAP SEARCH signature, indexer/ngram.go); ErrNotFound when the
// catalog has no such message.
func (c *Catalog) MessageRowID(ctx context.Context, sha [32]byte) (int64, error) {
	var id int64
	if err := c.db.QueryRowContext(ctx, `SELECT id FROM messages WHERE sha256 = ?`, sha[:]).Scan(&id); err != nil {
		return 0, fmt.Errorf("message %x: %w", sha[:6], err)
	}
	return id, nil
}
