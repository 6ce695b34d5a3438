// Package catalog is mailvault's catalog of record: which messages exist, where
// each copy lives, and how far each mailbox has been archived. It is a SQLite
// database (pure Go, modernc.org/sqlite) in WAL mode with synchronous=FULL, so a
// committed transaction survives a crash or power loss.
//
// Invariants:
//   - messages: one row per unique content, keyed by the sha256 of the raw bytes
//     (the blob key). It carries the key headers needed to list a hit without
//     reading the blob, and the parse status.
//   - occurrences: one row per copy of a message in a mailbox, unique on
//     (mailbox, uidvalidity, uid). Rows are never deleted because the server
//     deleted the message: expunged_at records that instead.
//   - A message's index state is a pair of counters: gen grows whenever what the
//     index must hold for it changes (new content, an occurrence in a new account
//     or mailbox); indexed_gen is the gen the index last committed. A message with
//     indexed_gen < gen is "not yet indexed", and the indexer picks it up, at start
//     too, so a crash between catalog commit and index commit loses nothing.
//   - Callers write only through Tx; one process writes at a time (the data
//     directory lock in package indexer enforces it).
package catalog

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

const schema = `
CREATE TABLE IF NOT EXISTS accounts (
	id   INTEGER PRIMARY KEY,
	name TEXT NOT NULL UNIQUE,
	url  TEXT NOT NULL DEFAULT ''            -- "imap://user@host" for harvested accounts, '' for imports
);
CREATE TABLE IF NOT EXISTS mailboxes (
	id          INTEGER PRIMARY KEY,
	account_id  INTEGER NOT NULL REFERENCES accounts(id),
	name        TEXT NOT NULL,
	source      TEXT NOT NULL,               -- 'imap' or 'import'
	uidvalidity INTEGER NOT NULL,            -- current epoch
	uidnext     INTEGER NOT NULL DEFAULT 1,  -- checkpoint: every uid below it in this epoch is archived
	last_sync   TEXT NOT NULL DEFAULT '',
	UNIQUE (account_id, name)
);
CREATE TABLE IF NOT EXISTS messages (
	id              INTEGER PRIMARY KEY,
	sha256          BLOB NOT NULL UNIQUE,
	size            INTEGER NOT NULL,
	stored_size     INTEGER NOT NULL DEFAULT 0,
	parse_error     TEXT NOT NULL DEFAULT '',
	subject         TEXT NOT NULL DEFAULT '',
	from_addr       TEXT NOT NULL DEFAULT '',
	date            TEXT NOT NULL DEFAULT '',  -- RFC 3339 in the message's own zone, '' when it has none
	date_unix       INTEGER,
	message_id      TEXT NOT NULL DEFAULT '',
	has_attachments INTEGER NOT NULL DEFAULT 0,
	gen             INTEGER NOT NULL DEFAULT 1,
	indexed_gen     INTEGER NOT NULL DEFAULT 0,
	stored_at       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_unindexed ON messages(id) WHERE indexed_gen < gen;
CREATE INDEX IF NOT EXISTS messages_by_message_id ON messages(message_id) WHERE message_id != '';
CREATE TABLE IF NOT EXISTS occurrences (
	id            INTEGER PRIMARY KEY,
	mailbox_id    INTEGER NOT NULL REFERENCES mailboxes(id),
	uidvalidity   INTEGER NOT NULL,
	uid           INTEGER NOT NULL,
	message_id    INTEGER NOT NULL REFERENCES messages(id),
	flags         TEXT NOT NULL DEFAULT '',  -- space-separated IMAP flags and keywords
	internal_date TEXT NOT NULL DEFAULT '',
	size          INTEGER NOT NULL,
	first_seen    TEXT NOT NULL,
	expunged_at   TEXT NOT NULL DEFAULT '',
	UNIQUE (mailbox_id, uidvalidity, uid)
);
CREATE INDEX IF NOT EXISTS occurrences_message ON occurrences(message_id);
CREATE TABLE IF NOT EXISTS skipped (         -- messages a server would not deliver, after retries
	mailbox_id  INTEGER NOT NULL REFERENCES mailboxes(id),
	uidvalidity INTEGER NOT NULL,
	uid         INTEGER NOT NULL,
	reason      TEXT NOT NULL,
	at          TEXT NOT NULL,
	PRIMARY KEY (mailbox_id, uidvalidity, uid)
);
`

// Sources of a mailbox's contents.
const (
	SourceIMAP   = "imap"
	SourceImport = "import"
)

// Catalog is the SQL catalog. It is safe for concurrent use.
type Catalog struct {
	db *sql.DB
}

// Open opens (creating if needed) the catalog database at path.
func Open(path string) (*Catalog, error) {
	dsn := "file:" + path + "?_txlock=immediate" +
		"&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)" +
		"&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open catalog %s: %w", path, err)
	}
	db.SetMaxOpenConns(4)
	// One transaction: a process killed while creating the catalog leaves
	// all of the schema or none of it, never some tables without the
	// others (which a reader such as `status` would trip on).
	tx, err := db.Begin()
	if err == nil {
		if _, err = tx.Exec(schema); err == nil {
			err = tx.Commit()
		} else {
			tx.Rollback()
		}
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open catalog %s: %w", path, err)
	}
	return &Catalog{db: db}, nil
}

// Close closes the database.
func (c *Catalog) Close() error { return c.db.Close() }

func now() string { return time.Now().UTC().Format(time.RFC3339Nano) }

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

// Mailbox returns the mailbox (account, name); sql.ErrNoRows when there is none.
// ErrNotFound is (wrapped in) the error of Mailbox for a mailbox that is
// not in the catalog.
var ErrNotFound = sql.ErrNoRows

func (c *Catalog) Mailbox(ctx context.Context, account, name string) (Mailbox, error) {
	return mailbox(ctx, c.db, account, name)
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
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

// Tx is a write transaction. It is not safe for concurrent use.
type Tx struct {
	tx *sql.Tx
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
	err := t.tx.QueryRowContext(ctx, `SELECT 1 FROM occurrences WHERE mailbox_id = ? AND uidvalidity = ? AND uid = ?`,
		mailboxID, uidvalidity, uid).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// MessageID returns the row id of the message with the given sha256, or 0.
func (t *Tx) MessageID(ctx context.Context, sha [32]byte) (int64, error) {
	var id int64
	err := t.tx.QueryRowContext(ctx, `SELECT id FROM messages WHERE sha256 = ?`, sha[:]).Scan(&id)
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
	res, err := t.tx.ExecContext(ctx, `INSERT INTO messages(sha256, size, stored_size, parse_error, subject, from_addr,
		date, date_unix, message_id, has_attachments, stored_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)`,
		m.SHA256[:], m.Size, m.StoredSize, m.ParseError, m.Subject, m.From, ds, du, m.MessageID, m.HasAttachments, now())
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
	res, err := t.tx.ExecContext(ctx, `INSERT INTO occurrences(mailbox_id, uidvalidity, uid, message_id, flags,
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
	err := t.tx.QueryRowContext(ctx, `SELECT 1 FROM occurrences WHERE message_id = ? AND mailbox_id = ? LIMIT 1`,
		messageID, mailboxID).Scan(&one)
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

// IndexTask names a message whose index document is out of date.
type IndexTask struct {
	ID     int64
	SHA256 [32]byte
	Gen    int64
}

// Unindexed returns up to limit messages with indexed_gen < gen and id > afterID, by id.
func (c *Catalog) Unindexed(ctx context.Context, afterID int64, limit int) ([]IndexTask, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT id, sha256, gen FROM messages WHERE indexed_gen < gen AND id > ?
		ORDER BY id LIMIT ?`, afterID, limit)
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

// ResetIndexed marks every message as not indexed (for a rebuild of the index).
func (c *Catalog) ResetIndexed(ctx context.Context) error {
	_, err := c.db.ExecContext(ctx, `UPDATE messages SET indexed_gen = 0`)
	return err
}

// Place is an (account, mailbox) pair holding an occurrence of a message.
type Place struct{ Account, Mailbox string }

// Places returns the distinct (account, mailbox) pairs holding occurrences of the message.
func (c *Catalog) Places(ctx context.Context, messageID int64) ([]Place, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT DISTINCT a.name, m.name FROM occurrences o
		JOIN mailboxes m ON m.id = o.mailbox_id JOIN accounts a ON a.id = m.account_id
		WHERE o.message_id = ? ORDER BY 1, 2`, messageID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ps []Place
	for rows.Next() {
		var p Place
		if err := rows.Scan(&p.Account, &p.Mailbox); err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	return ps, rows.Err()
}

// SHA256Hex is the task's blob key in hex, the message's index document id.
func (t IndexTask) SHA256Hex() string { return hex.EncodeToString(t.SHA256[:]) }

// CountUnindexed returns the number of messages with indexed_gen < gen.
func (c *Catalog) CountUnindexed(ctx context.Context) (int, error) {
	var n int
	err := c.db.QueryRowContext(ctx, `SELECT count(*) FROM messages WHERE indexed_gen < gen`).Scan(&n)
	return n, err
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
			o.flags, o.internal_date, o.size, o.first_seen, o.expunged_at
			FROM occurrences o JOIN mailboxes m ON m.id = o.mailbox_id JOIN accounts a ON a.id = m.account_id
			WHERE o.message_id IN (`+in+`) ORDER BY a.name, m.name, o.uidvalidity, o.uid`, chunk...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id int64
			var o LocatedOccurrence
			var flags string
			if err := rows.Scan(&id, &o.Account, &o.AccountURL, &o.Mailbox, &o.Source, &o.UIDValidity, &o.UID,
				&flags, &o.InternalDate, &o.Size, &o.FirstSeen, &o.ExpungedAt); err != nil {
				rows.Close()
				return nil, err
			}
			o.Flags = strings.Fields(flags)
			byID[id].Occurrences = append(byID[id].Occurrences, o)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// OpenReadOnly opens an existing catalog for reading only; it works while
// another process writes (WAL).
func OpenReadOnly(path string) (*Catalog, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		return nil, fmt.Errorf("open catalog %s: %w", path, err)
	}
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open catalog %s: %w", path, err)
	}
	return &Catalog{db: db}, nil
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
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, 0, err
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT id, uid, flags FROM occurrences
		WHERE mailbox_id = ? AND uidvalidity = ? AND expunged_at = ''`, mailboxID, uidvalidity)
	if err != nil {
		return 0, 0, err
	}
	type change struct {
		id    int64
		flags string
		gone  bool
	}
	var changes []change
	for rows.Next() {
		var id int64
		var uid uint32
		var have string
		if err := rows.Scan(&id, &uid, &have); err != nil {
			rows.Close()
			return 0, 0, err
		}
		now, present := flags[uid]
		switch {
		case !present:
			changes = append(changes, change{id: id, gone: true})
		case strings.Join(now, " ") != have:
			changes = append(changes, change{id: id, flags: strings.Join(now, " ")})
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, 0, err
	}
	at := now()
	for _, ch := range changes {
		if ch.gone {
			_, err = tx.ExecContext(ctx, `UPDATE occurrences SET expunged_at = ? WHERE id = ?`, at, ch.id)
			expunged++
		} else {
			_, err = tx.ExecContext(ctx, `UPDATE occurrences SET flags = ? WHERE id = ?`, ch.flags, ch.id)
			reflagged++
		}
		if err != nil {
			return 0, 0, err
		}
	}
	return expunged, reflagged, tx.Commit()
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
