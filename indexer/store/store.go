// Package store is mailvault's store of record for message bytes.
//
// Invariants:
//   - A blob holds exactly the raw bytes it was given (invariant 3 of ARCHITECTURE.md),
//     compressed with zstd, and is keyed by the sha256 of those raw bytes. A key names
//     one content forever: blobs are written once and never rewritten.
//   - A blob becomes visible under its final name only after its bytes are on disk,
//     and is referenced elsewhere (the catalog) only after its name is on disk too.
//     Writes go through a Batch: Add writes each blob to a temporary file; Commit
//     makes the data durable, renames every file into place, and makes the renames
//     durable. On Linux both steps are one syncfs(2) each, which costs the same as
//     one fsync however many blobs the batch holds; elsewhere every file and
//     directory is fsynced. A crash leaves at most unreferenced blobs or temporary
//     files, never a reference to a missing or partial blob.
//
// On-disk layout:
//
//	<dir>/ab/<sha256 hex>.zst    zstd frame of the raw message; 256 fan-out directories
//	<dir>/ab/.tmp-*              blobs being written. Temporary files live beside their
//	                             final name because a rename within a directory is several
//	                             times cheaper than across directories (measured: ext4).
//	                             Leftovers of a crashed writer are removed by a sweep that
//	                             Open starts in the background.
//
// One level of 256 directories (not two levels, ab/cd/) keeps a small archive from
// spending a 4 KiB directory block per message, and still leaves only ~40,000
// entries per directory at ten million messages, which ext4 and XFS index well.
package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"
)

// ErrNotFound is returned by Get for a key that has no blob.
var ErrNotFound = errors.New("blob not found")

// ErrCorrupt is (wrapped in) the error for a blob whose file does not
// decode, or whose bytes do not hash to its key: a disk fault, or a file
// swapped or edited behind the archive's back. Get reports the first kind;
// Verify and the archive's reads (which hash every blob they hand out) the
// second. Callers classify it with errors.Is.
var ErrCorrupt = errors.New("blob corrupt")

// DirMode and FileMode are the modes of everything the store creates: the
// store holds whole mailboxes, readable by its owner alone. They are set
// with an explicit chmod, so the process umask cannot loosen (or, with a
// strict umask, break) them.
const (
	DirMode  os.FileMode = 0o700
	FileMode os.FileMode = 0o600
)

// MkdirSecure creates dir (and missing parents) with DirMode. Directories
// it creates are chmodded to DirMode whatever the umask; one that exists
// already is left as it is (the archive's Open warns about a loose one).
func MkdirSecure(dir string) error {
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return nil
	}
	if parent := filepath.Dir(dir); parent != dir {
		if err := MkdirSecure(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, DirMode); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	} else if err == nil {
		return os.Chmod(dir, DirMode)
	}
	return nil
}

// Key is the sha256 of a message's raw bytes.
type Key [sha256.Size]byte

// KeyOf returns the key of raw.
func KeyOf(raw []byte) Key { return sha256.Sum256(raw) }

// String returns the lowercase hex form of k.
func (k Key) String() string { return hex.EncodeToString(k[:]) }

// ParseKey parses the hex form of a key.
func ParseKey(s string) (Key, error) {
	var k Key
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(k) {
		return k, fmt.Errorf("bad sha256 %q: want 64 hex digits", s)
	}
	copy(k[:], b)
	return k, nil
}

// Store is a directory of content-addressed blobs. It is safe for concurrent use.
type Store struct {
	dir string
	enc *zstd.Encoder // EncodeAll/DecodeAll are safe for concurrent use
	dec *zstd.Decoder

	// token starts the names of this Store's temporary files: tmpPrefix, the
	// pid and the open time. Every other temporary file is a crashed writer's.
	token string

	// dirFD is a descriptor of dir, opened at the first read (readFile,
	// read_linux.go).
	dirFD struct {
		once sync.Once
		fd   int
	}

	// unsynced is set when a Commit failed part way: some renames may not be
	// durable, so the next Commit syncs even if it has nothing of its own
	// (its batch may rely on a blob that an earlier, failed batch renamed).
	unsynced atomic.Bool
}

// OpenReadOnly opens an existing store for reading (Get, Verify, Walk) without
// creating anything.
func OpenReadOnly(dir string) (*Store, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("open blob store: %w", err)
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0))
	if err != nil {
		return nil, err
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	return &Store{dir: dir, enc: enc, dec: dec}, nil
}

// Open opens (creating if needed) the store in dir. A writer should then call
// SweepTemps once.
func Open(dir string) (*Store, error) {
	if err := MkdirSecure(dir); err != nil {
		return nil, fmt.Errorf("open blob store: %w", err)
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0))
	if err != nil {
		return nil, err
	}
	s := &Store{dir: dir, enc: enc, dec: dec, token: fmt.Sprintf("%s%d-%d-", tmpPrefix, os.Getpid(), time.Now().UnixNano())}
	for i := range 256 {
		if err := MkdirSecure(filepath.Join(dir, fmt.Sprintf("%02x", i))); err != nil {
			return nil, fmt.Errorf("open blob store: %w", err)
		}
	}
	return s, nil
}

// SweepTemps removes the temporary files that a crashed writer left, until
// done or ctx is cancelled. Call it only while holding the data directory
// exclusively, and return from it before letting go: another writer's
// temporary files must never be swept (the Archive runs it in the
// background and waits for it in Close).
func (s *Store) SweepTemps(ctx context.Context) { s.sweepTemps(ctx) }

// Close releases the codec resources.
func (s *Store) Close() error {
	s.dec.Close()
	s.closeDir()
	return s.enc.Close()
}

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.dir }

// Path returns the file that holds (or would hold) the blob of k.
func (s *Store) Path(k Key) string {
	h := k.String()
	return filepath.Join(s.dir, h[0:2], h+".zst")
}

// Exists reports whether the blob of k exists.
func (s *Store) Exists(_ context.Context, k Key) (bool, error) {
	_, err := os.Stat(s.Path(k))
	if err == nil {
		return true, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return false, err
}

// Staged is a blob written but not yet published: the first half of a
// durable write, handed back to Publish or Discard. Token is the store's own
// (here the temporary file); callers treat it as opaque, so that another
// store (pack segments, object storage) can put its own there.
type Staged struct {
	Key    Key
	Stored int64  // bytes the blob takes in the store; 0 when it existed already
	Token  string // "" when there is nothing to publish (the blob existed)
}

// Stage writes raw under key k where it is neither visible nor durable yet,
// unless the blob exists already (then Stored is 0 and Publish has nothing
// to do for it). It is safe for concurrent use.
func (s *Store) Stage(_ context.Context, k Key, raw []byte) (Staged, error) {
	path := s.Path(k)
	if _, err := os.Stat(path); err == nil {
		return Staged{Key: k}, nil
	}
	data := s.enc.EncodeAll(raw, make([]byte, 0, len(raw)/2+64))
	// CreateTemp makes the file 0600 whatever the umask; the rename keeps it.
	f, err := os.CreateTemp(filepath.Dir(path), s.token)
	if err != nil {
		return Staged{}, fmt.Errorf("store blob %s: %w", k, err)
	}
	_, err = f.Write(data)
	if err == nil && !syncfsWorks {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return Staged{}, fmt.Errorf("store blob %s: %w", k, err)
	}
	return Staged{Key: k, Stored: int64(len(data)), Token: f.Name()}, nil
}

// Publish makes staged blobs durable under their final names: the data, then
// the renames, each made durable with one syncfs(2) on Linux. A blob is never
// replaced: when another writer published the same content meanwhile, its
// file stays (same key, same bytes). On error some blobs may be published;
// publishing them again (or the next Publish) finishes the job.
func (s *Store) Publish(_ context.Context, staged []Staged) error {
	var work []Staged
	for _, st := range staged {
		if st.Token != "" {
			work = append(work, st)
		}
	}
	if len(work) == 0 && !s.unsynced.Load() {
		return nil
	}
	if err := s.publish(work); err != nil {
		s.unsynced.Store(true)
		return err
	}
	s.unsynced.Store(false)
	return nil
}

func (s *Store) publish(work []Staged) error {
	if syncfsWorks {
		if err := syncFS(s.dir); err != nil { // the temporary files' data
			return fmt.Errorf("sync blob store: %w", err)
		}
	}
	dirs := map[string]struct{}{}
	for _, st := range work {
		final := s.Path(st.Key)
		if filepath.Dir(st.Token) != filepath.Dir(final) || !strings.HasPrefix(filepath.Base(st.Token), tmpPrefix) {
			return fmt.Errorf("store blob %s: %q is not a staged file of this store", st.Key, st.Token)
		}
		dirs[filepath.Dir(final)] = struct{}{}
		if err := renameNoReplace(st.Token, final); errors.Is(err, fs.ErrExist) {
			os.Remove(st.Token)
		} else if errors.Is(err, fs.ErrNotExist) {
			// Published by an earlier, partly failed Publish of the same batch.
			if _, serr := os.Stat(final); serr != nil {
				return fmt.Errorf("store blob %s: %w", st.Key, err)
			}
		} else if err != nil {
			return fmt.Errorf("store blob: %w", err)
		}
	}
	if syncfsWorks {
		if err := syncFS(s.dir); err != nil { // the renames
			return fmt.Errorf("sync blob store: %w", err)
		}
		return nil
	}
	dirs[s.dir] = struct{}{}
	for d := range dirs {
		if err := SyncDir(d); err != nil {
			return fmt.Errorf("sync blob store: %w", err)
		}
	}
	return nil
}

// Discard removes staged blobs that will not be published.
func (s *Store) Discard(staged []Staged) {
	for _, st := range staged {
		if st.Token != "" && strings.HasPrefix(filepath.Base(st.Token), tmpPrefix) {
			os.Remove(st.Token)
		}
	}
}

// Batch collects staged blobs to publish together. It is safe for concurrent
// use by several goroutines calling Add.
type Batch struct {
	s      *Store
	mu     sync.Mutex
	staged []Staged
}

// NewBatch starts a batch of writes.
func (s *Store) NewBatch() *Batch { return &Batch{s: s} }

// Add stages raw under key k (see Stage) and returns the bytes the blob
// takes in the store, 0 when it exists already. The blob is durable and
// visible only after Commit.
func (b *Batch) Add(k Key, raw []byte) (int64, error) {
	st, err := b.s.Stage(context.Background(), k, raw)
	if err != nil {
		return 0, err
	}
	b.mu.Lock()
	b.staged = append(b.staged, st)
	b.mu.Unlock()
	return st.Stored, nil
}

// Commit publishes every blob added to the batch.
func (b *Batch) Commit() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.s.Publish(context.Background(), b.staged); err != nil {
		return err
	}
	b.staged = nil
	return nil
}

// Abort discards the blobs of a batch that will not be committed.
func (b *Batch) Abort() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.s.Discard(b.staged)
	b.staged = nil
}

// Put stores one blob durably: a batch of one.
func (s *Store) Put(k Key, raw []byte) (int64, error) {
	b := s.NewBatch()
	n, err := b.Add(k, raw)
	if err != nil {
		return 0, err
	}
	return n, b.Commit()
}

// ErrNoReason is returned by Delete when it is not told why.
var ErrNoReason = errors.New("a blob is deleted only with a reason")

// Deletion is the record of a blob removed by Delete, for the caller's audit
// log: a compliance archive removes data only on purpose and says so.
type Deletion struct {
	Key    Key
	Name   string    // where the blob was (here its path)
	Stored int64     // bytes it took in the store
	Reason string    // why, as the caller gave it (e.g. "retention: policy 7y expired")
	At     time.Time // when the removal became durable
}

// Delete removes the blob of k durably and returns what it removed, for the
// caller to audit. It is the only way a blob goes (invariant 5: only
// retention expiry without a legal hold removes data); reason must say why.
// A key with no blob is ErrNotFound.
func (s *Store) Delete(_ context.Context, k Key, reason string) (Deletion, error) {
	if strings.TrimSpace(reason) == "" {
		return Deletion{}, fmt.Errorf("delete blob %s: %w", k, ErrNoReason)
	}
	path := s.Path(k)
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Deletion{}, fmt.Errorf("delete blob %s: %w", k, ErrNotFound)
	}
	if err != nil {
		return Deletion{}, fmt.Errorf("delete blob %s: %w", k, err)
	}
	if err := os.Remove(path); err != nil {
		return Deletion{}, fmt.Errorf("delete blob %s: %w", k, err)
	}
	if err := SyncDir(filepath.Dir(path)); err != nil {
		return Deletion{}, fmt.Errorf("delete blob %s: %w", k, err)
	}
	return Deletion{Key: k, Name: path, Stored: fi.Size(), Reason: reason, At: time.Now().UTC()}, nil
}

// SyncDir makes the entries of dir (files created, renamed or removed in
// it) durable: fsync of the directory.
func SyncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// WriteFileDurable replaces path with b, created with mode, so that after
// a crash path holds either its old content or b, never a part: a
// temporary file beside it, fsync, rename, fsync of the directory. The
// temporary file is removed on error.
func WriteFileDurable(path string, b []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = SyncDir(filepath.Dir(path))
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// Get returns the raw bytes of the blob of k. It decodes but does not hash
// them: the archive hashes every blob it reads (one sha256 per read, for
// whatever store is behind its seam), and Verify does here.
func (s *Store) Get(_ context.Context, k Key) ([]byte, error) {
	data, err := s.readFile(k)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read blob %s: %w", k, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", k, err)
	}
	raw, err := s.dec.DecodeAll(data, nil)
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w: zstd: %v", k, ErrCorrupt, err)
	}
	return raw, nil
}

// Verify reads the blob of k and checks that its content hashes to k.
func (s *Store) Verify(ctx context.Context, k Key) error {
	raw, err := s.Get(ctx, k)
	if err != nil {
		return err
	}
	if got := KeyOf(raw); !bytes.Equal(got[:], k[:]) {
		return fmt.Errorf("blob %s: %w: content hashes to %s", k, ErrCorrupt, got)
	}
	return nil
}

// Walk calls fn with the key of every blob in the store, in no particular
// order, and the name it is stored under (here its path). Files that do not
// look like blobs are reported to fn with ok false. Blobs published while Walk
// runs may or may not be seen.
func (s *Store) Walk(ctx context.Context, fn func(k Key, name string, ok bool) error) error {
	return filepath.WalkDir(s.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		name := d.Name()
		if strings.HasPrefix(name, tmpPrefix) {
			return nil
		}
		k, perr := ParseKey(strings.TrimSuffix(name, ".zst"))
		return fn(k, path, perr == nil && strings.HasSuffix(name, ".zst") && path == s.Path(k))
	})
}

// tmpPrefix starts the name of a blob being written.
const tmpPrefix = ".tmp-"

// sweepTemps deletes temporary files left by a writer that crashed: every
// one not named with this Store's token, since the caller holds the data
// directory's exclusive lock. (Comparing modification times with the time of
// Open is not enough: file timestamps lag the clock by a few milliseconds, and
// a sweep so based deleted files of writes in progress.)
func (s *Store) sweepTemps(ctx context.Context) {
	for i := range 256 {
		if ctx.Err() != nil {
			return
		}
		dir := filepath.Join(s.dir, fmt.Sprintf("%02x", i))
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if n := e.Name(); strings.HasPrefix(n, tmpPrefix) && !strings.HasPrefix(n, s.token) {
				os.Remove(filepath.Join(dir, n))
			}
		}
	}
}
