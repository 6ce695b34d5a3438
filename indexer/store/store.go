// Package store is mailvault's store of record for message bytes.
//
// Invariants:
//   - A blob holds exactly the raw bytes it was given (invariant 3 of ARCHITECTURE.md),
//     compressed with zstd, and is keyed by the sha256 of those raw bytes. A key names
//     one content forever: blobs are written once and never rewritten.
//   - A blob becomes visible under its final name only after its bytes are on disk:
//     it is written to a temporary file in the same directory, fsynced, then renamed.
//     The rename itself is durable once Sync has fsynced the directory; callers call
//     Sync before they record the blob anywhere else (the catalog), so a crash can leave
//     an unreferenced blob or a stray temporary file, never a reference to a missing or
//     partial blob.
//
// On-disk layout:
//
//	<dir>/ab/cd/<sha256 hex>.zst    zstd frame of the raw message
//	<dir>/.tmp/                     blobs being written; leftovers of interrupted writes are removed by Open
package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// ErrNotFound is returned by Get for a key that has no blob.
var ErrNotFound = errors.New("blob not found")

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

	mu    sync.Mutex
	dirty map[string]struct{} // directories with renames not yet fsynced
}

// Open opens (creating if needed) the store in dir and removes leftovers of
// interrupted writes.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
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
	s := &Store{dir: dir, enc: enc, dec: dec, dirty: map[string]struct{}{}}
	if err := s.removeTemps(); err != nil {
		return nil, err
	}
	return s, nil
}

// Close releases the codec resources.
func (s *Store) Close() error {
	s.dec.Close()
	return s.enc.Close()
}

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.dir }

// Path returns the file that holds (or would hold) the blob of k.
func (s *Store) Path(k Key) string {
	h := k.String()
	return filepath.Join(s.dir, h[0:2], h[2:4], h+".zst")
}

// Has reports whether the blob of k exists.
func (s *Store) Has(k Key) (bool, error) {
	_, err := os.Stat(s.Path(k))
	if err == nil {
		return true, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return false, err
}

// Put stores raw under its key unless a blob with that key exists already. It
// returns the number of bytes written to disk (0 when the blob existed). The
// blob's bytes are durable when Put returns; its directory entry is durable
// after the next Sync.
func (s *Store) Put(k Key, raw []byte) (int64, error) {
	path := s.Path(k)
	if _, err := os.Stat(path); err == nil {
		return 0, nil
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return 0, fmt.Errorf("store blob %s: %w", k, err)
	}
	data := s.enc.EncodeAll(raw, make([]byte, 0, len(raw)/2+64))
	f, err := os.CreateTemp(filepath.Join(s.dir, ".tmp"), "blob-")
	if err != nil {
		return 0, fmt.Errorf("store blob %s: %w", k, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return 0, fmt.Errorf("store blob %s: %w", k, err)
	}
	s.mu.Lock()
	s.dirty[dir] = struct{}{}
	s.mu.Unlock()
	return int64(len(data)), nil
}

// Sync makes every rename done by Put since the last Sync durable by fsyncing
// the directories involved (and their parents, which MkdirAll may have created).
func (s *Store) Sync() error {
	s.mu.Lock()
	dirs := s.dirty
	s.dirty = map[string]struct{}{}
	s.mu.Unlock()
	parents := map[string]struct{}{}
	for d := range dirs {
		parents[filepath.Dir(d)] = struct{}{}
	}
	parents[s.dir] = struct{}{}
	for _, set := range []map[string]struct{}{dirs, parents} {
		for d := range set {
			if err := syncDir(d); err != nil {
				return fmt.Errorf("sync blob store: %w", err)
			}
		}
	}
	return nil
}

func syncDir(dir string) error {
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

// Get returns the raw bytes of the blob of k.
func (s *Store) Get(k Key) ([]byte, error) {
	data, err := os.ReadFile(s.Path(k))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read blob %s: %w", k, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", k, err)
	}
	raw, err := s.dec.DecodeAll(data, nil)
	if err != nil {
		return nil, fmt.Errorf("read blob %s: corrupt zstd data: %w", k, err)
	}
	return raw, nil
}

// Verify reads the blob of k and checks that its content hashes to k.
func (s *Store) Verify(k Key) error {
	raw, err := s.Get(k)
	if err != nil {
		return err
	}
	if got := KeyOf(raw); !bytes.Equal(got[:], k[:]) {
		return fmt.Errorf("blob %s: content hashes to %s", k, got)
	}
	return nil
}

// Walk calls fn with the key of every blob in the store, in no particular order.
// Files that do not look like blobs are reported to fn with ok false.
func (s *Store) Walk(fn func(k Key, path string, ok bool) error) error {
	return filepath.WalkDir(s.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == ".tmp" {
				return filepath.SkipDir
			}
			return nil
		}
		name := d.Name()
		k, perr := ParseKey(strings.TrimSuffix(name, ".zst"))
		return fn(k, path, perr == nil && strings.HasSuffix(name, ".zst") && path == s.Path(k))
	})
}

// removeTemps deletes temporary files left by writes that a crash interrupted.
func (s *Store) removeTemps() error {
	tmp := filepath.Join(s.dir, ".tmp")
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("open blob store: %w", err)
	}
	return os.Mkdir(tmp, 0o750)
}
