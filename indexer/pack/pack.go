// Package pack is a store of record for message bytes that keeps many
// messages per file: append-only pack segments and an index from sha256 to
// (segment, offset, length). It implements the archive's blobStore seam
// (indexer/storage.go) beside package store (one file per blob), so that a
// million messages are a few dozen files, not a million, and a small message
// costs its compressed bytes plus 48 bytes of framing, not a 4 KiB block.
//
// Invariants:
//   - A blob holds exactly the raw bytes it was given, zstd-compressed, keyed
//     by their sha256, written once (as in package store). Every read checks
//     the record's checksum and that its header names the key asked for; the
//     archive hashes what Get returns.
//   - The index (SQLite, index.db) is the commit point. Stage appends a record
//     to the active segment (neither visible nor durable); Publish fsyncs the
//     segments the batch wrote to, then records the batch's entries and each
//     segment's committed length in one index transaction (synchronous=FULL).
//     A blob exists when, and only when, the index names it: bytes past a
//     segment's committed length were never published and are cut on Open
//     (a torn tail, or records staged and never published).
//   - Delete removes the blob's index entry durably: Get says ErrNotFound
//     from then on. Compact reclaims the bytes by rewriting a sealed segment
//     without them: the new segment is written and fsynced, the index is
//     switched to it in one transaction, then the old file is removed. A
//     crash at any step leaves every live blob readable exactly once (the
//     index has one entry per key) and no deleted blob readable.
//
// On-disk layout:
//
//	<dir>/index.db                 SQLite (WAL): blobs(key → seg, off, len) and
//	                               segments(id, state, size, live, deleted)
//	<dir>/seg-<id, 10 digits>.pack records, appended; sealed at SegmentBytes
//
// What lives in RAM per blob: nothing. Lookups go through SQLite's B-tree
// with its page cache bounded (cache_size); staged-but-unpublished records
// are held by token until Publish or Discard (one batch's worth). The index
// costs about 60 bytes per blob on disk (32-byte key, three integers, B-tree
// overhead): 60 MB at a million messages, 60 GB at a billion, which is why
// it is a B-tree on disk and not a map in memory. docs/design.md ("Pack
// segments") says why this layout and how it maps onto S3 objects.
package pack

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
	_ "modernc.org/sqlite" // the index's SQL engine, as the catalog's

	"mailvault/indexer/store"
)

// DefaultSegmentBytes is the size at which the active segment is sealed and
// a new one started: large enough that a million messages are a few dozen
// files, small enough that compacting one costs seconds and that one is a
// sensible object to put in S3 (docs/design.md).
const DefaultSegmentBytes = 128 << 20

// Options configure a Store. A nil *Options is equivalent to a zero Options.
type Options struct {
	// ReadOnly opens an existing store for Get, Exists, Verify and Walk; it
	// repairs nothing and writes nothing.
	ReadOnly bool
	// SegmentBytes is the size at which the active segment is sealed
	// (default DefaultSegmentBytes).
	SegmentBytes int64
	// Logger receives what Open repairs; nil discards it.
	Logger *slog.Logger

	// compactHook, when set (tests only), is called at each step of a
	// segment's compaction; an error stops it there as a crash would.
	compactHook func(step string) error
}

// Store is a directory of pack segments and their index. It is safe for
// concurrent use.
type Store struct {
	dir  string
	opts Options
	log  *slog.Logger
	db   *sql.DB
	enc  *zstd.Encoder
	dec  *zstd.Decoder

	// mu owns the active segment (its file and end), the write handles of
	// segments with records in flight, and the staged records.
	lookupStmt, existsStmt *sql.Stmt

	mu        sync.Mutex
	active    int64
	activeEnd int64
	writers   map[int64]*os.File
	staged    map[string]struct{} // tokens of records staged, not yet published or discarded
	inFlight  map[int64]int       // staged records per segment: such a segment is not compacted

	// swapMu: readers hold it shared from the index lookup to the open of
	// the segment file; Compact holds it exclusively while it switches the
	// index and removes the old file, so no reader opens a removed segment.
	swapMu sync.RWMutex
	// delMu serialises Delete with Compact: a segment is rewritten from
	// one view of which of its blobs are deleted.
	delMu sync.Mutex
}

const schema = `
CREATE TABLE IF NOT EXISTS blobs (
	key BLOB PRIMARY KEY,
	seg INTEGER NOT NULL,
	off INTEGER NOT NULL,
	len INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS segments (
	id      INTEGER PRIMARY KEY AUTOINCREMENT,
	state   TEXT NOT NULL,              -- active | sealed | new (a compaction's target) | retired
	size    INTEGER NOT NULL DEFAULT 0, -- committed length: bytes past it were never published
	live    INTEGER NOT NULL DEFAULT 0, -- bytes of the records the index names
	deleted INTEGER NOT NULL DEFAULT 0  -- blobs deleted since the segment was written
);
`

// Open opens (creating if needed, unless read-only) the pack store in dir
// and repairs what a crash left: a compaction's unfinished target or
// unremoved source, and each segment's tail past its committed length.
func Open(dir string, opts *Options) (*Store, error) {
	s := &Store{dir: dir, writers: map[int64]*os.File{}, staged: map[string]struct{}{}, inFlight: map[int64]int{}}
	if opts != nil {
		s.opts = *opts
	}
	if s.opts.SegmentBytes <= 0 {
		s.opts.SegmentBytes = DefaultSegmentBytes
	}
	s.log = s.opts.Logger
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	path := filepath.Join(dir, "index.db")
	var dsn string
	if s.opts.ReadOnly {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("open pack store: %w", err)
		}
		dsn = "file:" + path + "?mode=ro&_pragma=busy_timeout(10000)"
	} else {
		if err := store.MkdirSecure(dir); err != nil {
			return nil, fmt.Errorf("open pack store: %w", err)
		}
		if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, store.FileMode); err == nil {
			f.Close()
		}
		dsn = "file:" + path + "?_txlock=immediate&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)" +
			"&_pragma=busy_timeout(10000)&_pragma=cache_size(-8192)"
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open pack store %s: %w", dir, err)
	}
	db.SetMaxOpenConns(4)
	s.db = db
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()
	if !s.opts.ReadOnly {
		if _, err := db.Exec(schema); err != nil {
			return nil, fmt.Errorf("open pack store %s: %w", dir, err)
		}
		for _, p := range []string{path + "-wal", path + "-shm"} {
			if err := os.Chmod(p, store.FileMode); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("open pack store %s: %w", dir, err)
			}
		}
	}
	// The two lookups every read and every store makes, prepared once
	// (preparing them per call was a third of their cost).
	if s.lookupStmt, err = db.Prepare(`SELECT seg, off, len FROM blobs WHERE key = ?`); err != nil {
		return nil, fmt.Errorf("open pack store %s: %w", dir, err)
	}
	if s.existsStmt, err = db.Prepare(`SELECT 1 FROM blobs WHERE key = ?`); err != nil {
		return nil, fmt.Errorf("open pack store %s: %w", dir, err)
	}
	if s.enc, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1)); err != nil {
		return nil, err
	}
	if s.dec, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0)); err != nil {
		return nil, err
	}
	if !s.opts.ReadOnly {
		if err := s.repair(); err != nil {
			return nil, fmt.Errorf("open pack store %s: %w", dir, err)
		}
	}
	ok = true
	return s, nil
}

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) segPath(id int64) string {
	return filepath.Join(s.dir, fmt.Sprintf("seg-%010d.pack", id))
}

// repair finishes or undoes what a crash interrupted (see the package doc)
// and opens the active segment for appending.
func (s *Store) repair() error {
	type seg struct {
		id         int64
		state      string
		size       int64
		live, dels int64
	}
	rows, err := s.db.Query(`SELECT id, state, size, live, deleted FROM segments ORDER BY id`)
	if err != nil {
		return err
	}
	var segs []seg
	for rows.Next() {
		var g seg
		if err := rows.Scan(&g.id, &g.state, &g.size, &g.live, &g.dels); err != nil {
			rows.Close()
			return err
		}
		segs = append(segs, g)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	s.active = 0
	for _, g := range segs {
		switch g.state {
		case "new", "retired":
			// "new": a compaction's target whose index switch did not
			// commit (nothing points at it). "retired": a compacted
			// segment whose removal a crash interrupted (nothing points
			// at it any more).
			if err := os.Remove(s.segPath(g.id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			if err := store.SyncDir(s.dir); err != nil {
				return err
			}
			if _, err := s.db.Exec(`DELETE FROM segments WHERE id = ?`, g.id); err != nil {
				return err
			}
			s.log.Info("pack store: removed a segment an interrupted compaction left", "segment", g.id, "state", g.state)
		case "active", "sealed":
			// Cut what was never published: the index is the commit point.
			fi, err := os.Stat(s.segPath(g.id))
			if errors.Is(err, fs.ErrNotExist) && g.size == 0 {
				if err := createSegment(s.segPath(g.id)); err != nil {
					return err
				}
				fi, err = os.Stat(s.segPath(g.id))
			}
			if err != nil {
				return fmt.Errorf("segment %d: %w", g.id, err)
			}
			if fi.Size() < g.size {
				return fmt.Errorf("segment %d: %w: the file has %d bytes, the index says %d were published (restore it from a backup)", g.id, store.ErrCorrupt, fi.Size(), g.size)
			}
			if fi.Size() > g.size {
				if err := truncateSync(s.segPath(g.id), g.size); err != nil {
					return fmt.Errorf("segment %d: %w", g.id, err)
				}
				s.log.Warn("pack store: cut a segment's unpublished tail", "segment", g.id, "bytes", fi.Size()-g.size)
			}
			if g.state == "active" {
				s.active, s.activeEnd = g.id, g.size
			}
		default:
			return fmt.Errorf("segment %d: unknown state %q", g.id, g.state)
		}
	}
	if s.active == 0 {
		id, err := s.newSegment("active")
		if err != nil {
			return err
		}
		s.active, s.activeEnd = id, 0
	}
	f, err := os.OpenFile(s.segPath(s.active), os.O_WRONLY, store.FileMode)
	if err != nil {
		return err
	}
	s.writers[s.active] = f
	return nil
}

// newSegment records a segment in the index first and then creates its
// file, so that no segment file exists that the index does not name.
func (s *Store) newSegment(state string) (int64, error) {
	res, err := s.db.Exec(`INSERT INTO segments(state) VALUES (?)`, state)
	if err != nil {
		return 0, err
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, err
	}
	if err := createSegment(s.segPath(id)); err != nil {
		return 0, err
	}
	return id, nil
}

func createSegment(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, store.FileMode)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = store.SyncDir(filepath.Dir(path))
	}
	return err
}

// Close closes the index, the segment files and the codec.
func (s *Store) Close() error {
	s.mu.Lock()
	var errs []error
	for id, f := range s.writers {
		errs = append(errs, f.Close())
		delete(s.writers, id)
	}
	s.mu.Unlock()
	for _, st := range []*sql.Stmt{s.lookupStmt, s.existsStmt} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	if s.db != nil {
		errs = append(errs, s.db.Close())
	}
	if s.dec != nil {
		s.dec.Close()
	}
	if s.enc != nil {
		errs = append(errs, s.enc.Close())
	}
	return errors.Join(errs...)
}

// loc is where the index says a blob is.
type loc struct {
	seg, off, len int64
}

func (s *Store) lookup(ctx context.Context, k store.Key) (loc, error) {
	var l loc
	err := s.lookupStmt.QueryRowContext(ctx, k[:]).Scan(&l.seg, &l.off, &l.len)
	if errors.Is(err, sql.ErrNoRows) {
		return l, fmt.Errorf("read blob %s: %w", k, store.ErrNotFound)
	}
	if err != nil {
		return l, fmt.Errorf("read blob %s: %w", k, err)
	}
	return l, nil
}

// Exists reports whether the index names the blob of k.
func (s *Store) Exists(ctx context.Context, k store.Key) (bool, error) {
	var one int
	err := s.existsStmt.QueryRowContext(ctx, k[:]).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up blob %s: %w", k, err)
	}
	return true, nil
}

// Stage appends raw's record to the active segment, unless the blob exists
// already (then Stored is 0 and there is nothing to publish). It is safe for
// concurrent use; compression runs outside the store's lock.
func (s *Store) Stage(ctx context.Context, k store.Key, raw []byte) (store.Staged, error) {
	if s.opts.ReadOnly {
		return store.Staged{}, fmt.Errorf("store blob %s: the pack store is open read-only", k)
	}
	if ok, err := s.Exists(ctx, k); err != nil {
		return store.Staged{}, err
	} else if ok {
		return store.Staged{Key: k}, nil
	}
	rec := encodeRecord(k, s.enc.EncodeAll(raw, make([]byte, 0, len(raw)/2+64)), len(raw))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.activeEnd > 0 && s.activeEnd+int64(len(rec)) > s.opts.SegmentBytes {
		if err := s.rollLocked(); err != nil {
			return store.Staged{}, fmt.Errorf("store blob %s: seal segment: %w", k, err)
		}
	}
	f := s.writers[s.active]
	if f == nil {
		return store.Staged{}, fmt.Errorf("store blob %s: the pack store is closed", k)
	}
	off := s.activeEnd
	if _, err := f.WriteAt(rec, off); err != nil {
		// A partial record is past the committed length: never read, cut
		// at the next Open. The next record starts after it all the same.
		s.activeEnd += int64(len(rec))
		return store.Staged{}, fmt.Errorf("store blob %s: %w", k, err)
	}
	s.activeEnd += int64(len(rec))
	tok := token(s.active, off, int64(len(rec)))
	s.staged[tok] = struct{}{}
	s.inFlight[s.active]++
	return store.Staged{Key: k, Stored: int64(len(rec)), Token: tok}, nil
}

// rollLocked seals the active segment and starts a new one (under mu). The
// sealed segment keeps its write handle while records staged in it are in
// flight: Publish fsyncs through it.
func (s *Store) rollLocked() error {
	tx, err := s.db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`UPDATE segments SET state = 'sealed' WHERE id = ?`, s.active); err != nil {
		return err
	}
	res, err := tx.Exec(`INSERT INTO segments(state) VALUES ('active')`)
	if err != nil {
		return err
	}
	id, err := res.LastInsertId()
	if err != nil {
		return err
	}
	if err := createSegment(s.segPath(id)); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		os.Remove(s.segPath(id))
		return err
	}
	f, err := os.OpenFile(s.segPath(id), os.O_WRONLY, store.FileMode)
	if err != nil {
		return err
	}
	old := s.active
	s.active, s.activeEnd = id, 0
	s.writers[id] = f
	if s.inFlight[old] == 0 {
		if w := s.writers[old]; w != nil {
			w.Close()
			delete(s.writers, old)
		}
	}
	return nil
}

func token(seg, off, n int64) string { return fmt.Sprintf("pack:%d:%d:%d", seg, off, n) }

func parseToken(t string) (loc, error) {
	parts := strings.Split(t, ":")
	if len(parts) != 4 || parts[0] != "pack" {
		return loc{}, fmt.Errorf("%q is not a staged record of a pack store", t)
	}
	var l loc
	var err error
	for i, p := range []*int64{&l.seg, &l.off, &l.len} {
		if *p, err = strconv.ParseInt(parts[i+1], 10, 64); err != nil {
			return loc{}, fmt.Errorf("%q is not a staged record of a pack store", t)
		}
	}
	return l, nil
}

// Publish makes staged blobs durable and visible: one fsync of each segment
// the batch wrote to, then one index transaction with the batch's entries
// and the segments' committed lengths. A blob is never replaced: when the
// same content was published meanwhile, the first entry stays and the new
// record is dead bytes for compaction. On error nothing of the batch is
// visible, and Publish may be called again.
func (s *Store) Publish(ctx context.Context, staged []store.Staged) error {
	type item struct {
		st store.Staged
		l  loc
	}
	var work []item
	s.mu.Lock()
	files := map[int64]*os.File{}
	for _, st := range staged {
		if st.Token == "" {
			continue
		}
		if _, ok := s.staged[st.Token]; !ok {
			s.mu.Unlock()
			return fmt.Errorf("store blob %s: %q is not a staged record of this store", st.Key, st.Token)
		}
		l, err := parseToken(st.Token)
		if err != nil {
			s.mu.Unlock()
			return err
		}
		work = append(work, item{st, l})
		files[l.seg] = s.writers[l.seg]
	}
	s.mu.Unlock()
	if len(work) == 0 {
		return nil
	}
	for id, f := range files {
		if f == nil {
			return fmt.Errorf("sync segment %d: it is not open for writing", id)
		}
		if err := f.Sync(); err != nil {
			return fmt.Errorf("sync segment %d: %w", id, err)
		}
	}
	// Inserted in key order: neighbouring keys share B-tree pages, so a
	// batch dirties fewer pages than in arrival (random) order.
	sort.Slice(work, func(i, j int) bool { return bytes.Compare(work[i].st.Key[:], work[j].st.Key[:]) < 0 })
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("publish blobs: %w", err)
	}
	defer tx.Rollback()
	ins, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO blobs(key, seg, off, len) VALUES (?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("publish blobs: %w", err)
	}
	defer ins.Close()
	// Each segment's committed length and live bytes, updated once per
	// segment rather than once per blob.
	type segSum struct{ end, live int64 }
	sums := map[int64]*segSum{}
	for _, it := range work {
		res, err := ins.ExecContext(ctx, it.st.Key[:], it.l.seg, it.l.off, it.l.len)
		if err != nil {
			return fmt.Errorf("publish blob %s: %w", it.st.Key, err)
		}
		sum := sums[it.l.seg]
		if sum == nil {
			sum = &segSum{}
			sums[it.l.seg] = sum
		}
		sum.end = max(sum.end, it.l.off+it.l.len)
		if n, _ := res.RowsAffected(); n > 0 {
			sum.live += it.l.len
		}
	}
	for id, sum := range sums {
		if _, err := tx.ExecContext(ctx, `UPDATE segments SET size = max(size, ?), live = live + ? WHERE id = ?`, sum.end, sum.live, id); err != nil {
			return fmt.Errorf("publish blobs: segment %d: %w", id, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("publish blobs: %w", err)
	}
	s.release(staged)
	return nil
}

// Discard forgets staged records that will not be published; their bytes
// are dead (cut at the next Open when at the tail, reclaimed by compaction
// otherwise).
func (s *Store) Discard(staged []store.Staged) { s.release(staged) }

func (s *Store) release(staged []store.Staged) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range staged {
		if _, ok := s.staged[st.Token]; !ok || st.Token == "" {
			continue
		}
		delete(s.staged, st.Token)
		l, _ := parseToken(st.Token)
		s.inFlight[l.seg]--
		if s.inFlight[l.seg] <= 0 {
			delete(s.inFlight, l.seg)
			if l.seg != s.active {
				if w := s.writers[l.seg]; w != nil {
					w.Close()
					delete(s.writers, l.seg)
				}
			}
		}
	}
}

// readRecord reads the record the index names for k: the lookup and the
// open of the segment under swapMu (shared), the read after.
func (s *Store) readRecord(ctx context.Context, k store.Key) ([]byte, header, loc, error) {
	s.swapMu.RLock()
	l, err := s.lookup(ctx, k)
	if err != nil {
		s.swapMu.RUnlock()
		return nil, header{}, l, err
	}
	f, err := os.Open(s.segPath(l.seg))
	s.swapMu.RUnlock()
	if err != nil {
		return nil, header{}, l, fmt.Errorf("read blob %s: segment %d: %w", k, l.seg, err)
	}
	defer f.Close()
	if l.len < headerLen || l.len > headerLen+maxFrame {
		return nil, header{}, l, fmt.Errorf("read blob %s: %w: index entry of %d bytes", k, store.ErrCorrupt, l.len)
	}
	buf := make([]byte, l.len)
	if _, err := f.ReadAt(buf, l.off); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, header{}, l, fmt.Errorf("read blob %s: %w: segment %d ends inside the record at %d", k, store.ErrCorrupt, l.seg, l.off)
		}
		return nil, header{}, l, fmt.Errorf("read blob %s: %w", k, err)
	}
	h, frame, err := parseRecord(buf)
	if err == nil && headerLen+int64(h.clen) != l.len {
		err = fmt.Errorf("%w: record of %d bytes, index entry of %d", store.ErrCorrupt, headerLen+h.clen, l.len)
	}
	if err == nil && h.key != k {
		err = fmt.Errorf("%w: the record there is blob %s", store.ErrCorrupt, h.key)
	}
	if err != nil {
		if errors.Is(err, errTorn) {
			err = fmt.Errorf("%w: %v", store.ErrCorrupt, err)
		}
		return nil, h, l, fmt.Errorf("read blob %s: segment %d at %d: %w", k, l.seg, l.off, err)
	}
	return frame, h, l, nil
}

// Get returns the raw bytes of the blob of k, after checking its record's
// checksum, key and lengths; the archive hashes what it returns.
func (s *Store) Get(ctx context.Context, k store.Key) ([]byte, error) {
	frame, h, l, err := s.readRecord(ctx, k)
	if err != nil {
		return nil, err
	}
	raw, err := s.dec.DecodeAll(frame, make([]byte, 0, h.rlen))
	if err != nil {
		return nil, fmt.Errorf("read blob %s: segment %d at %d: %w: zstd: %v", k, l.seg, l.off, store.ErrCorrupt, err)
	}
	if len(raw) != h.rlen {
		return nil, fmt.Errorf("read blob %s: segment %d at %d: %w: %d bytes, the record says %d", k, l.seg, l.off, store.ErrCorrupt, len(raw), h.rlen)
	}
	return raw, nil
}

// Verify reads the blob of k and checks that its content hashes to k.
func (s *Store) Verify(ctx context.Context, k store.Key) error {
	raw, err := s.Get(ctx, k)
	if err != nil {
		return err
	}
	if got := sha256.Sum256(raw); !bytes.Equal(got[:], k[:]) {
		return fmt.Errorf("blob %s: %w: content hashes to %s", k, store.ErrCorrupt, store.Key(got))
	}
	return nil
}

// Walk calls fn with every blob the index names, in key order, a page at a
// time (no read transaction is held across fn); name is segment@offset.
// Blobs published or compacted meanwhile may be missed or seen once more at
// their new place, never twice under one walk's key order.
func (s *Store) Walk(ctx context.Context, fn func(k store.Key, name string, ok bool) error) error {
	var after []byte = []byte{}
	for {
		rows, err := s.db.QueryContext(ctx, `SELECT key, seg, off FROM blobs WHERE key > ? ORDER BY key LIMIT 1000`, after)
		if err != nil {
			return fmt.Errorf("walk pack index: %w", err)
		}
		type ent struct {
			k        store.Key
			ok       bool
			seg, off int64
		}
		var page []ent
		for rows.Next() {
			var kb []byte
			var e ent
			if err := rows.Scan(&kb, &e.seg, &e.off); err != nil {
				rows.Close()
				return fmt.Errorf("walk pack index: %w", err)
			}
			e.ok = len(kb) == len(e.k)
			copy(e.k[:], kb)
			page = append(page, e)
			after = kb
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("walk pack index: %w", err)
		}
		for _, e := range page {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := fn(e.k, fmt.Sprintf("%s@%d", s.segPath(e.seg), e.off), e.ok); err != nil {
				return err
			}
		}
		if len(page) < 1000 {
			return nil
		}
	}
}

// Delete removes the blob of k from the index durably and returns what it
// removed, for the caller to audit: from then on Get says ErrNotFound. Its
// bytes stay in their segment until Compact rewrites it.
func (s *Store) Delete(ctx context.Context, k store.Key, reason string) (store.Deletion, error) {
	if strings.TrimSpace(reason) == "" {
		return store.Deletion{}, fmt.Errorf("delete blob %s: %w", k, store.ErrNoReason)
	}
	if s.opts.ReadOnly {
		return store.Deletion{}, fmt.Errorf("delete blob %s: the pack store is open read-only", k)
	}
	s.delMu.Lock()
	defer s.delMu.Unlock()
	l, err := s.lookup(ctx, k)
	if err != nil {
		return store.Deletion{}, fmt.Errorf("delete blob %s: %w", k, store.ErrNotFound)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return store.Deletion{}, fmt.Errorf("delete blob %s: %w", k, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM blobs WHERE key = ?`, k[:]); err != nil {
		return store.Deletion{}, fmt.Errorf("delete blob %s: %w", k, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE segments SET live = live - ?, deleted = deleted + 1 WHERE id = ?`, l.len, l.seg); err != nil {
		return store.Deletion{}, fmt.Errorf("delete blob %s: %w", k, err)
	}
	if err := tx.Commit(); err != nil {
		return store.Deletion{}, fmt.Errorf("delete blob %s: %w", k, err)
	}
	return store.Deletion{Key: k, Name: fmt.Sprintf("%s@%d", s.segPath(l.seg), l.off), Stored: l.len, Reason: reason, At: time.Now().UTC()}, nil
}

// Stats is the size of a pack store.
type Stats struct {
	Blobs    int64 `json:"blobs"`
	Segments int64 `json:"segments"`
	Bytes    int64 `json:"bytes"`      // committed segment bytes
	Live     int64 `json:"live_bytes"` // of which the index names
	Deleted  int64 `json:"deleted"`    // blobs deleted whose bytes compaction has not reclaimed
}

// Stats reports the store's size from the index.
func (s *Store) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	err := s.db.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(size), 0), coalesce(sum(live), 0), coalesce(sum(deleted), 0) FROM segments WHERE state IN ('active', 'sealed')`).
		Scan(&st.Segments, &st.Bytes, &st.Live, &st.Deleted)
	if err == nil {
		err = s.db.QueryRowContext(ctx, `SELECT count(*) FROM blobs`).Scan(&st.Blobs)
	}
	if err != nil {
		return st, fmt.Errorf("pack store stats: %w", err)
	}
	return st, nil
}

func truncateSync(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, store.FileMode)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
