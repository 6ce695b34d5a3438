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
//   - Every exported method is one transaction, explicit: RecordIngest
//     records a batch of arrivals, insert-if-absent on the unique keys, so
//     its result does not depend on a caller-side mutex. (With SQLite one
//     process writes at a time anyway: the data directory lock in package
//     indexer.) Reports read in one read transaction, a snapshot.
//
// Files: catalog.go opens and creates the schema; mailbox.go holds
// mailboxes, accounts and epochs; ingest.go the write transaction of ingest;
// index.go the index bookkeeping; lookup.go the read side for searches and
// pages; report.go whole-catalog reports for status, verify and tests;
// flaghistory.go every flag set seen per occurrence (setFlags is the one
// write of an occurrence's flags after its insert).
package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
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

// moreSchemas are the schemas of the catalog's other files (holds,
// tombstones, the ledger's expunges), each added by its file's init and
// run with the main one, in the same transaction, when the catalog opens.
// Each must be idempotent (CREATE ... IF NOT EXISTS).
var moreSchemas []string

// migrations change the schema of a catalog made by an older mailvault
// where CREATE ... IF NOT EXISTS cannot (a column added to an existing
// table). Each runs after the schemas, in the same transaction, and must
// check what is there before it changes anything (PRAGMA table_info), so
// it is idempotent and a crash leaves all of it or none.
var migrations []func(*sql.Tx) error

// Sources of a mailbox's contents.
const (
	SourceIMAP   = "imap"
	SourceImport = "import"
	// SourceRecovered: messages `mailvault recover` found in the store with
	// no catalog row; where they lived is unknown (package indexer, recover.go).
	SourceRecovered = "recovered"
)

// Catalog is the SQL catalog. It is safe for concurrent use.
type Catalog struct {
	db *sql.DB
}

// FileMode is the mode of the catalog and of its -wal and -shm files: the
// catalog names every correspondent and subject, readable by the archive's
// owner alone.
const FileMode os.FileMode = 0o600

// Open opens (creating if needed) the catalog database at path.
//
// A new catalog is created here, empty and FileMode, before SQLite opens
// it: SQLite would create it 0644 (less the umask), and it gives the -wal
// and -shm files the mode of the database file, so these follow. They are
// chmodded again once they exist, whatever the umask did. An existing
// catalog's mode is left alone: the archive's Open warns when it is loose.
func Open(path string) (*Catalog, error) {
	created := false
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, FileMode); err == nil {
		created = true
		f.Close()
	} else if !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("open catalog %s: %w", path, err)
	}
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
		for _, sch := range append([]string{schema}, moreSchemas...) {
			if _, err = tx.Exec(sch); err != nil {
				break
			}
		}
		for _, m := range migrations {
			if err != nil {
				break
			}
			err = m(tx)
		}
		if err == nil {
			err = tx.Commit()
		} else {
			tx.Rollback()
		}
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open catalog %s: %w", path, err)
	}
	if created {
		for _, p := range []string{path, path + "-wal", path + "-shm"} {
			if err := os.Chmod(p, FileMode); err != nil && !errors.Is(err, fs.ErrNotExist) {
				db.Close()
				return nil, fmt.Errorf("open catalog %s: %w", path, err)
			}
		}
	}
	return &Catalog{db: db}, nil
}

// Close closes the database.
func (c *Catalog) Close() error { return c.db.Close() }

func now() string { return time.Now().UTC().Format(time.RFC3339Nano) }

// ErrNotFound is (wrapped in) the error of Mailbox for a mailbox that is
// not in the catalog.
var ErrNotFound = sql.ErrNoRows

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
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

// Check runs SQLite's own consistency check of the database file and
// returns what it found, nil when the catalog is sound. quick runs
// `PRAGMA quick_check` (O(N): pages, records, NOT NULL and UNIQUE columns,
// but not that every index matches its table); otherwise `PRAGMA
// integrity_check`, which does that too and costs O(N log N). Either way a
// `PRAGMA foreign_key_check` follows: an occurrence whose message or
// mailbox row is gone is a catalog that lost rows. It reads in one read
// transaction, so it sees one state while writers go on.
func (c *Catalog) Check(ctx context.Context, quick bool) ([]string, error) {
	tx, err := c.readTx(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	pragma := "integrity_check"
	if quick {
		pragma = "quick_check"
	}
	rows, err := tx.QueryContext(ctx, "PRAGMA "+pragma)
	if err != nil {
		return []string{pragma + ": " + err.Error()}, nil // a database too damaged to check is a finding
	}
	var out []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			rows.Close()
			return nil, fmt.Errorf("%s: %w", pragma, err)
		}
		if line != "ok" {
			out = append(out, pragma+": "+line)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		out = append(out, pragma+": "+err.Error())
	}
	fk, err := tx.QueryContext(ctx, "PRAGMA foreign_key_check")
	if err != nil {
		return append(out, "foreign_key_check: "+err.Error()), nil
	}
	defer fk.Close()
	for fk.Next() {
		var table, parent string
		var rowid sql.NullInt64
		var fkid int
		if err := fk.Scan(&table, &rowid, &parent, &fkid); err != nil {
			return nil, fmt.Errorf("foreign_key_check: %w", err)
		}
		out = append(out, fmt.Sprintf("foreign_key_check: %s row %d refers to a missing %s row", table, rowid.Int64, parent))
	}
	if err := fk.Err(); err != nil {
		out = append(out, "foreign_key_check: "+err.Error())
	}
	return out, nil
}
