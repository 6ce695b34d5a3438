package catalog

import (
	"context"
	"database/sql"
	"encoding/hex"
)

// Attachment text (issue 15). Extraction runs after ingest, off the path
// that makes a message searchable (package indexer, attachments.go):
//
//   - extract_state has a row for every message with attachments worth
//     extracting; version is the extractor version (extract.Version) whose
//     results attachment_texts holds, 0 while extraction is pending. The
//     row is inserted in the ingest transaction with the message, so a
//     crash never leaves a message whose extraction nobody will do.
//   - attachment_texts holds one row per attachment looked at: how it
//     ended (status, reason code, detail), the format and the text (as the
//     indexer compressed it). It is derived data, like the index, but
//     costly to derive (seconds for a large PDF), which is why it is kept:
//     the message page, exports and every reindex read it instead of
//     extracting again. A newer extractor version re-extracts (Reextract).
const extractsSchema = `
CREATE TABLE IF NOT EXISTS extract_state (
	message_id INTEGER PRIMARY KEY REFERENCES messages(id),
	version    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS extract_pending ON extract_state(message_id) WHERE version = 0;
CREATE TABLE IF NOT EXISTS attachment_texts (
	message_id   INTEGER NOT NULL REFERENCES messages(id),
	part         INTEGER NOT NULL,             -- index in the parse's list of attachments
	name         TEXT NOT NULL DEFAULT '',
	content_type TEXT NOT NULL DEFAULT '',
	format       TEXT NOT NULL DEFAULT '',     -- extract's format name, '' when not recognised
	status       TEXT NOT NULL,                -- ok, truncated, failed, unsupported
	reason       TEXT NOT NULL DEFAULT '',     -- a reason code when truncated or failed
	detail       TEXT NOT NULL DEFAULT '',
	members      INTEGER NOT NULL DEFAULT 0,   -- archive members / TNEF attachments listed
	text_bytes   INTEGER NOT NULL DEFAULT 0,   -- length of the text before compression
	text         BLOB,
	PRIMARY KEY (message_id, part)
);
`

func init() { moreSchemas = append(moreSchemas, extractsSchema) }

// AttachmentText is one attachment's extraction as recorded.
type AttachmentText struct {
	Part        int
	Name        string
	ContentType string
	Format      string
	Status      string
	Reason      string
	Detail      string
	Members     int
	TextBytes   int
	Text        []byte // as the indexer stored it (compressed)
}

// ExtractTask names a message whose attachments are to be extracted.
type ExtractTask struct {
	ID     int64
	SHA256 [32]byte
}

// SHA256Hex is the task's blob key in hex.
func (t ExtractTask) SHA256Hex() string { return hex.EncodeToString(t.SHA256[:]) }

// QueueExtract records, in the ingest transaction, that message id's
// attachments are to be extracted.
func (t *Tx) QueueExtract(ctx context.Context, id int64) error {
	_, err := t.exec(ctx, `INSERT OR IGNORE INTO extract_state (message_id, version) VALUES (?, 0)`, id)
	return err
}

// EnsureExtract queues message id's extraction unless it is queued or done
// (a message archived before extraction existed, found by a reindex); it
// reports whether it queued it.
func (c *Catalog) EnsureExtract(ctx context.Context, id int64) (bool, error) {
	res, err := c.db.ExecContext(ctx, `INSERT OR IGNORE INTO extract_state (message_id, version)
		SELECT ?, 0 WHERE ? NOT IN (SELECT message_id FROM disposed)`, id, id)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// RequeueExtract queues message id's extraction again when it is done (a
// record that lacks an attachment the extractor now reads: OCR turned on
// since, or a parse that lists the attachments otherwise); it reports
// whether it did. A disposed message is not queued.
func (c *Catalog) RequeueExtract(ctx context.Context, id int64) (bool, error) {
	res, err := c.db.ExecContext(ctx, `UPDATE extract_state SET version = 0
		WHERE message_id = ? AND version > 0 AND message_id NOT IN (SELECT message_id FROM disposed)`, id)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// PendingExtracts returns up to limit messages whose extraction is pending,
// with id > afterID, by id; disposed messages are left out.
func (c *Catalog) PendingExtracts(ctx context.Context, afterID int64, limit int) ([]ExtractTask, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT m.id, m.sha256 FROM extract_state e JOIN messages m ON m.id = e.message_id
		WHERE e.version = 0 AND e.message_id > ? AND e.message_id NOT IN (SELECT message_id FROM disposed)
		ORDER BY e.message_id LIMIT ?`, afterID, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ExtractTask
	for rows.Next() {
		var t ExtractTask
		var b []byte
		if err := rows.Scan(&t.ID, &b); err != nil {
			return nil, err
		}
		copy(t.SHA256[:], b)
		out = append(out, t)
	}
	return out, rows.Err()
}

// ExtractRecord is one message's extraction to record.
type ExtractRecord struct {
	ID    int64
	Texts []AttachmentText
}

// RecordExtracts stores each message's extraction (replacing an older
// one), marks it done at version and raises the message's gen, so that the
// index takes the text in, all in one transaction. recorded[i] is false for
// a message disposed of meanwhile: its text must not come back.
func (c *Catalog) RecordExtracts(ctx context.Context, version int, recs []ExtractRecord) (recorded []bool, err error) {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	stmts := map[string]*sql.Stmt{}
	exec := func(q string, args ...any) error {
		st := stmts[q]
		if st == nil {
			if st, err = tx.PrepareContext(ctx, q); err != nil {
				return err
			}
			stmts[q] = st
		}
		_, err := st.ExecContext(ctx, args...)
		return err
	}
	defer func() {
		for _, st := range stmts {
			st.Close()
		}
	}()
	recorded = make([]bool, len(recs))
	for i, r := range recs {
		var disposed int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM disposed WHERE message_id = ?`, r.ID).Scan(&disposed); err != nil {
			return nil, err
		}
		if disposed > 0 {
			continue
		}
		if err := exec(`DELETE FROM attachment_texts WHERE message_id = ?`, r.ID); err != nil {
			return nil, err
		}
		for _, t := range r.Texts {
			if err := exec(`INSERT INTO attachment_texts
				(message_id, part, name, content_type, format, status, reason, detail, members, text_bytes, text)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, r.ID, t.Part, t.Name, t.ContentType, t.Format, t.Status, t.Reason, t.Detail,
				t.Members, t.TextBytes, t.Text); err != nil {
				return nil, err
			}
		}
		if err := exec(`INSERT INTO extract_state (message_id, version) VALUES (?, ?)
			ON CONFLICT (message_id) DO UPDATE SET version = excluded.version`, r.ID, version); err != nil {
			return nil, err
		}
		if err := exec(`UPDATE messages SET gen = gen + 1 WHERE id = ?`, r.ID); err != nil {
			return nil, err
		}
		recorded[i] = true
	}
	return recorded, tx.Commit()
}

// AttachmentTexts returns message id's recorded extractions by part; none
// when it has none (no attachments worth it, or extraction pending).
func (c *Catalog) AttachmentTexts(ctx context.Context, id int64) ([]AttachmentText, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT part, name, content_type, format, status, reason, detail, members, text_bytes, text
		FROM attachment_texts WHERE message_id = ? ORDER BY part`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []AttachmentText
	for rows.Next() {
		var t AttachmentText
		if err := rows.Scan(&t.Part, &t.Name, &t.ContentType, &t.Format, &t.Status, &t.Reason, &t.Detail,
			&t.Members, &t.TextBytes, &t.Text); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// ExtractPending reports whether message id's extraction is queued and not
// done yet.
func (c *Catalog) ExtractPending(ctx context.Context, id int64) (bool, error) {
	var v int
	err := c.db.QueryRowContext(ctx, `SELECT version FROM extract_state WHERE message_id = ?`, id).Scan(&v)
	if err == sql.ErrNoRows {
		return false, nil
	}
	return err == nil && v == 0, err
}

// Reextract queues again every message extracted by a version older than
// version, and every message with an attachment that failed for a cause
// outside it (retryReasons): a reindex after the cause is gone extracts
// it; it returns how many.
func (c *Catalog) Reextract(ctx context.Context, version int) (int64, error) {
	res, err := c.db.ExecContext(ctx, `UPDATE extract_state SET version = 0 WHERE version > 0 AND (version < ?
		OR message_id IN (SELECT message_id FROM attachment_texts WHERE status = 'failed' AND reason IN `+retryReasons+`))`, version)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// retryReasons are the failures that say nothing of the attachment, so a
// reindex tries them again: "unreadable" (the blob could not be read: a
// repair since), "busy" (too many stuck extractions in that process),
// "ocr-unavailable" (OCR on, tesseract installed since). Not "timeout":
// it would most likely recur, at up to a minute a message. These are
// extract's Reason codes (and the indexer's "unreadable"), spelled here
// because catalog does not import extract.
const retryReasons = `('unreadable', 'busy', 'ocr-unavailable')`

// ExtractCounts is what status shows of attachment text.
type ExtractCounts struct {
	Pending   int            // messages waiting for extraction
	Seen      int            // attachments looked at
	Extracted int            // with text (ok or truncated)
	Truncated map[string]int // of those, cut short by a limit, by reason code
	TextBytes int64          // text extracted, before compression
	Failed    map[string]int // without text, by reason code
	Formats   map[string]int // attachments looked at by format ("" = not recognised)
	Old       int            // messages extracted by an older extractor version than asked
}

// ExtractCounts counts the catalog's extraction state; version is the
// current extractor version (older results count in Old).
func (c *Catalog) ExtractCounts(ctx context.Context, version int) (ExtractCounts, error) {
	out := ExtractCounts{Failed: map[string]int{}, Truncated: map[string]int{}, Formats: map[string]int{}}
	err := c.db.QueryRowContext(ctx, `SELECT
		coalesce(sum(version = 0), 0), coalesce(sum(version > 0 AND version < ?), 0) FROM extract_state`, version).Scan(&out.Pending, &out.Old)
	if err != nil {
		return out, err
	}
	rows, err := c.db.QueryContext(ctx, `SELECT format, status, reason, count(*), coalesce(sum(text_bytes), 0)
		FROM attachment_texts GROUP BY format, status, reason`)
	if err != nil {
		return out, err
	}
	defer rows.Close()
	for rows.Next() {
		var format, status, reason string
		var n int
		var bytes int64
		if err := rows.Scan(&format, &status, &reason, &n, &bytes); err != nil {
			return out, err
		}
		out.Seen += n
		out.Formats[format] += n
		out.TextBytes += bytes
		switch status {
		case "ok":
			out.Extracted += n
		case "truncated":
			out.Extracted += n
			out.Truncated[reason] += n
		case "failed":
			out.Failed[reason] += n
		}
	}
	return out, rows.Err()
}

// ExtractOf is where a message stands with the extractor (an export reads
// it a batch at a time: ExtractStates).
type ExtractOf struct {
	// Tracked: the message has an extraction row, queued or done; false
	// for one archived before attachment text existed.
	Tracked bool
	// Queued: the row waits for the extractor.
	Queued bool
	// HasText: some attachment text is recorded (an export reads the text
	// of those messages alone).
	HasText bool
}

// ExtractStates returns where each of keys stands with the extractor, in
// one query a chunk of keys; keys the catalog does not hold are absent.
func (c *Catalog) ExtractStates(ctx context.Context, keys [][32]byte) (map[[32]byte]ExtractOf, error) {
	out := make(map[[32]byte]ExtractOf, len(keys))
	for start := 0; start < len(keys); start += 500 {
		chunk := keys[start:min(start+500, len(keys))]
		args := make([]any, len(chunk))
		for i, k := range chunk {
			args[i] = k[:]
		}
		rows, err := c.db.QueryContext(ctx, `SELECT m.sha256, e.version,
			EXISTS (SELECT 1 FROM attachment_texts a WHERE a.message_id = m.id AND a.text_bytes > 0)
			FROM messages m LEFT JOIN extract_state e ON e.message_id = m.id
			WHERE m.sha256 IN (?`+repeatComma(len(chunk)-1)+`)`, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var b []byte
			var version sql.NullInt64
			var x ExtractOf
			if err := rows.Scan(&b, &version, &x.HasText); err != nil {
				rows.Close()
				return nil, err
			}
			x.Tracked = version.Valid
			x.Queued = version.Valid && version.Int64 == 0
			var k [32]byte
			copy(k[:], b)
			out[k] = x
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}
