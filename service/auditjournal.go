package service

import (
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"mailvault/indexer"
	"mailvault/ledger"
)

// The audit rows of bulk reads (the IMAP view's SELECT, SEARCH and FETCH:
// mbsync pulls a mailbox one message per command, a mail client selects and
// searches folder after folder) go through a journal before the table.
//
// Decision. Every read of mail is recorded before it is answered, and a
// read whose row cannot be recorded is refused: that does not change. What
// changes is where the row is first recorded. One SQLite commit per FETCH,
// even with synchronous(NORMAL), cost about 100 µs of CPU (the WAL frame,
// its locks and the shared-memory index) and was, with the ledger leaf
// written one at a time, the largest part of the view's time under mbsync
// (docs/benchmarks.md, "IMAP view"). The row is now one write(2) of a
// framed record to audit-reads.journal, beside users.db, under the
// journal's flock; a writer moves the journal's rows into the audit table
// and the ledger in batches (one transaction, one ledger append, at most
// auditJournalDelay after a row), recording in the same transaction how far
// into the journal it has read. So:
//   - a crash of the process loses nothing: the kernel has the record when
//     write returns, and the next open moves what the table does not have;
//     exactly once, by the offset committed with the rows;
//   - a power loss can lose the rows of the last moments, as it could the
//     synchronous(NORMAL) rows before (their WAL was synced within a
//     second): the rows moved are synced by a WAL checkpoint at most
//     readAuditSync after they are moved, and a torn record at the
//     journal's end is cut off at the next open (each record carries its
//     length and CRC-32C);
//   - rows keep their order: a row written directly (Audit) first moves
//     what the journal holds, and so does every reader of the trail in this
//     process (AuditQuery), so ids follow time within the process. Another
//     process reading the trail sees a bulk read's row within
//     auditJournalDelay;
//   - memory and disk stay bounded: at most auditJournalMax rows wait in
//     memory (AuditRead moves them itself when that many wait), and the
//     journal is emptied once everything in it is in the table;
//   - only one process writes a data directory's journal (the flock);
//     another one that opens the user store (`mailvault user` beside
//     serve) writes its bulk-read rows straight into the table.

// AuditJournalFile is the journal's name in the data directory.
const AuditJournalFile = "audit-reads.journal"

const (
	auditJournalDelay = 100 * time.Millisecond
	auditJournalMax   = 4096
	// auditJournalKeep: the journal is emptied when everything in it has
	// been moved and it holds more than this (emptying costs a transaction).
	auditJournalKeep = 1 << 20
	// auditJournalMaxRecord bounds a record read back (the fields are
	// bounded by auditText far below it).
	auditJournalMaxRecord = 1 << 20
)

var crc32c = crc32.MakeTable(crc32.Castagnoli)

type auditJournal struct {
	path string
	db   *sql.DB // users.db, synchronous(NORMAL)
	log  *ledger.Log
	slog *slog.Logger

	move sync.Mutex // one mover at a time; taken before mu

	mu      sync.Mutex
	f       *os.File // O_APPEND, flocked
	size    int64    // bytes in the journal
	pending []AuditEntry
	end     int64 // the journal's size after the last pending row
	timer   *time.Timer
	synced  bool // the WAL checkpoint is scheduled
	err     error
	closed  bool
}

// openAuditJournal opens dir's journal and moves what it holds into the
// table. It returns nil, nil when another process holds the journal.
func openAuditJournal(ctx context.Context, dir string, db *sql.DB, log *ledger.Log) (*auditJournal, error) {
	path := filepath.Join(dir, AuditJournalFile)
	if err := indexer.SecureFile(path); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, nil
		}
		return nil, fmt.Errorf("%s: lock: %w", path, err)
	}
	j := &auditJournal{path: path, db: db, log: log, f: f, slog: slog.Default()}
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS audit_journal (
		id INTEGER PRIMARY KEY CHECK (id = 1),
		offset INTEGER NOT NULL -- the bytes of audit-reads.journal already in the audit table
	); INSERT OR IGNORE INTO audit_journal(id, offset) VALUES (1, 0)`); err != nil {
		f.Close()
		return nil, err
	}
	if err := j.recover(ctx); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return j, nil
}

// recover moves the records past the committed offset into the table,
// cutting off a torn last record, and empties the journal.
func (j *auditJournal) recover(ctx context.Context) error {
	var off int64
	if err := j.db.QueryRowContext(ctx, `SELECT offset FROM audit_journal WHERE id = 1`).Scan(&off); err != nil {
		return err
	}
	fi, err := j.f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	if size < off {
		// Emptied after everything was moved, and stopped before the
		// offset was set back (empty): the journal holds only what came
		// after, if anything.
		off = 0
	}
	var rows []AuditEntry
	pos := off
	r := io.NewSectionReader(j.f, off, size-off)
	for {
		e, n, err := readJournalRecord(r)
		if err != nil {
			if err != io.EOF {
				j.slog.Warn("audit journal: cutting off a torn or damaged record at its end", "path", j.path, "offset", pos, "err", err)
				if err := j.f.Truncate(pos); err != nil {
					return err
				}
			}
			break
		}
		rows = append(rows, e)
		pos += n
	}
	if len(rows) > 0 {
		if moved, err := j.insert(ctx, rows, pos); !moved {
			return err
		} else if err != nil {
			j.slog.Error("audit journal: the ledger", "err", err)
		}
		j.slog.Info("audit journal: moved rows a previous run had not", "rows", len(rows))
	}
	if err := j.f.Truncate(0); err != nil {
		return err
	}
	_, err = j.db.ExecContext(ctx, `UPDATE audit_journal SET offset = 0 WHERE id = 1`)
	return err
}

// readJournalRecord reads one record: length (4 bytes), CRC-32C of the
// payload (4 bytes), the payload (an AuditEntry in JSON).
func readJournalRecord(r io.Reader) (AuditEntry, int64, error) {
	var e AuditEntry
	var h [8]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		if err == io.ErrUnexpectedEOF {
			return e, 0, errors.New("a short record header")
		}
		return e, 0, err // io.EOF: the end, cleanly
	}
	n := binary.BigEndian.Uint32(h[:4])
	if n == 0 || n > auditJournalMaxRecord {
		return e, 0, fmt.Errorf("a record of %d bytes", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return e, 0, errors.New("a short record")
	}
	if crc32.Checksum(b, crc32c) != binary.BigEndian.Uint32(h[4:]) {
		return e, 0, errors.New("a record whose checksum does not match")
	}
	if err := json.Unmarshal(b, &e); err != nil {
		return e, 0, fmt.Errorf("a record: %w", err)
	}
	return e, int64(8 + n), nil
}

func journalRecord(e AuditEntry) ([]byte, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 8, 8+len(b))
	binary.BigEndian.PutUint32(out[:4], uint32(len(b)))
	binary.BigEndian.PutUint32(out[4:], crc32.Checksum(b, crc32c))
	return append(out, b...), nil
}

// add records e (cleaned, with its time) in the journal.
func (j *auditJournal) add(ctx context.Context, e AuditEntry) error {
	rec, err := journalRecord(e)
	if err != nil {
		return err
	}
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return errors.New("audit journal: closed")
	}
	if j.err != nil {
		err := j.err
		j.mu.Unlock()
		return err
	}
	if len(j.pending) >= auditJournalMax {
		// The mover has fallen behind (or cannot write the table): move
		// them here, or refuse the read.
		j.mu.Unlock()
		if err := j.flush(ctx); err != nil {
			return err
		}
		j.mu.Lock()
		if j.closed || j.err != nil || len(j.pending) >= auditJournalMax {
			j.mu.Unlock()
			return errors.New("audit journal: rows cannot be moved into the audit table")
		}
	}
	if _, err := j.f.Write(rec); err != nil {
		// A short write leaves a torn record, cut off at the next open;
		// nothing more is written past it.
		j.err = fmt.Errorf("audit journal: %w", err)
		j.mu.Unlock()
		return j.err
	}
	j.size += int64(len(rec))
	j.pending = append(j.pending, e)
	j.end = j.size
	if j.timer == nil {
		j.timer = time.AfterFunc(auditJournalDelay, func() {
			if err := j.flush(context.Background()); err != nil {
				j.slog.Error("audit journal: cannot move rows into the audit table; retrying", "err", err)
				j.mu.Lock()
				if !j.closed && j.timer == nil && len(j.pending) > 0 {
					j.timer = time.AfterFunc(time.Second, func() { j.flush(context.Background()) })
				}
				j.mu.Unlock()
			}
		})
	}
	j.mu.Unlock()
	return nil
}

// flush moves the pending rows into the table and the ledger, and empties
// the journal when everything in it has been moved and it has grown.
func (j *auditJournal) flush(ctx context.Context) error {
	j.move.Lock()
	defer j.move.Unlock()
	j.mu.Lock()
	if j.timer != nil {
		j.timer.Stop()
		j.timer = nil
	}
	rows, end := j.pending, j.end
	j.mu.Unlock()
	if len(rows) == 0 {
		return nil
	}
	moved, lerr := j.insert(ctx, rows, end)
	if !moved {
		return lerr // still pending, still in the journal
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if lerr != nil {
		// In the table, not in the ledger: as Audit does, the error goes to
		// the caller (the read is refused), and the rows are not moved twice.
		j.slog.Error("audit journal: rows in the table could not be appended to the ledger", "rows", len(rows), "err", lerr)
	}
	j.pending = j.pending[len(rows):]
	if len(j.pending) == 0 {
		j.pending = nil
	}
	if !j.synced && !j.closed {
		j.synced = true
		time.AfterFunc(readAuditSync, j.checkpoint)
	}
	if len(j.pending) == 0 && j.size > auditJournalKeep && j.err == nil {
		// Truncate first: a crash before the offset is set back leaves a
		// journal shorter than the offset, which recover reads as empty.
		// Should the offset not be set back, nothing more is written (the
		// next records would sit below a stale offset).
		if err := j.f.Truncate(0); err != nil {
			j.slog.Warn("audit journal: cannot empty it; it goes on growing", "err", err)
			return lerr
		}
		j.size, j.end = 0, 0
		if _, err := j.db.ExecContext(ctx, `UPDATE audit_journal SET offset = 0 WHERE id = 1`); err != nil {
			j.err = fmt.Errorf("audit journal: emptied, but its offset cannot be set back, so no more bulk reads are recorded (restart to recover): %w", err)
			j.slog.Error(j.err.Error())
		}
	}
	return lerr
}

// insert writes rows into the audit table with the journal's offset after
// them, in one transaction (moved: committed), then appends their leaves to
// the ledger.
func (j *auditJournal) insert(ctx context.Context, rows []AuditEntry, end int64) (moved bool, err error) {
	tx, err := j.db.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, insertAuditSQL)
	if err != nil {
		return false, err
	}
	defer stmt.Close()
	ids := make([]int64, len(rows))
	for i, e := range rows {
		res, err := stmt.ExecContext(ctx, e.At, e.User, e.Action, e.Detail, e.Remote)
		if err != nil {
			return false, err
		}
		if ids[i], err = res.LastInsertId(); err != nil {
			return false, err
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE audit_journal SET offset = ? WHERE id = 1`, end); err != nil {
		return false, err
	}
	if err := tx.Commit(); err != nil {
		return false, err
	}
	if j.log == nil {
		return true, nil
	}
	leaves := make([][]byte, len(rows))
	for i, e := range rows {
		leaves[i] = auditLeaf(ids[i], e).Encode()
	}
	_, err = j.log.Append(leaves, false)
	return true, err
}

// checkpoint syncs the WAL (SQLite syncs it before a checkpoint in NORMAL
// mode): the moved rows are on disk within readAuditSync.
func (j *auditJournal) checkpoint() {
	j.mu.Lock()
	j.synced = false
	closed := j.closed
	j.mu.Unlock()
	if !closed {
		j.db.Exec(`PRAGMA wal_checkpoint(PASSIVE)`)
	}
}

// close moves what is pending, empties the journal and releases it.
func (j *auditJournal) close() error {
	err := j.flush(context.Background())
	j.move.Lock()
	defer j.move.Unlock()
	j.mu.Lock()
	defer j.mu.Unlock()
	j.closed = true
	if j.timer != nil {
		j.timer.Stop()
		j.timer = nil
	}
	if err == nil && len(j.pending) == 0 && j.err == nil && j.size > 0 {
		if terr := j.f.Truncate(0); terr == nil {
			j.db.Exec(`UPDATE audit_journal SET offset = 0 WHERE id = 1`)
		}
	}
	j.db.Exec(`PRAGMA wal_checkpoint(PASSIVE)`)
	if cerr := j.f.Close(); err == nil {
		err = cerr
	}
	return err
}
