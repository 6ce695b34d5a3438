package catalog

import (
	"context"
	"time"
)

// FolderMessage is one occurrence as the IMAP view serves it: what FETCH
// and SEARCH ask of a message in a folder without reading its blob.
type FolderMessage struct {
	UID          uint32
	Flags        string // space-separated, as harvested
	Size         int64  // RFC822.SIZE: the bytes the server sent
	InternalDate time.Time
	Expunged     string // when the server expunged it; "" while it is there
	SHA256       [32]byte
}

// FolderMessages returns every occurrence of a mailbox's epoch, expunged
// ones included, in UID order.
func (c *Catalog) FolderMessages(ctx context.Context, mailboxID int64, uidvalidity uint32) ([]FolderMessage, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT o.uid, o.flags, o.size, o.internal_date, o.expunged_at, m.sha256
		FROM occurrences o JOIN messages m ON m.id = o.message_id
		WHERE o.mailbox_id = ? AND o.uidvalidity = ? ORDER BY o.uid`, mailboxID, uidvalidity)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []FolderMessage
	for rows.Next() {
		var m FolderMessage
		var idate string
		var sha []byte
		if err := rows.Scan(&m.UID, &m.Flags, &m.Size, &idate, &m.Expunged, &sha); err != nil {
			return nil, err
		}
		if idate != "" {
			// Unparseable dates (none are written) read as unknown.
			m.InternalDate, _ = time.Parse(time.RFC3339, idate)
		}
		copy(m.SHA256[:], sha)
		out = append(out, m)
	}
	return out, rows.Err()
}
