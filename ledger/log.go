package ledger

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"golang.org/x/mod/sumdb/tlog"
)

// Files of a ledger directory.
const (
	leavesFile = "leaves" // the leaves, one line each ('\n' ends a leaf; it is not part of it)
	indexFile  = "index"  // 8 bytes big-endian per leaf: where its line ends in leaves
	hashesFile = "hashes" // tlog's stored hashes, 32 bytes each, at tlog.StoredHashIndex
	lockFile   = "lock"   // flock: one appender at a time, across processes
)

// Log is the append-only Merkle log: RFC 6962 hashing by
// golang.org/x/mod/sumdb/tlog (RecordHash = SHA-256(0x00 || leaf), NodeHash
// = SHA-256(0x01 || left || right)), kept in three append-only files. It is
// safe for concurrent use, also by several processes: an append takes an
// exclusive flock and first reads what other processes appended.
//
// Crash safety without a write-ahead log: a leaf is appended to leaves,
// then its hashes to hashes, then its end offset to index, which is the
// commit point. On every append (and open) the files are cut back to what
// index commits, and hashes missing after a crash are computed again from
// the leaves, so a crash loses at most uncommitted leaves and never leaves
// a tree whose hashes disagree with its leaves.
type Log struct {
	dir                   string
	mu                    sync.Mutex
	lock                  *os.File
	leaves, index, hashes *os.File
	n                     int64 // committed leaves
	end                   int64 // committed bytes of leaves
}

// Open opens (creating when needed) the ledger in dir.
func Open(dir string) (*Log, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	l := &Log{dir: dir}
	var err error
	open := func(name string) *os.File {
		if err != nil {
			return nil
		}
		var f *os.File
		f, err = os.OpenFile(filepath.Join(dir, name), os.O_RDWR|os.O_CREATE, 0o600)
		return f
	}
	l.lock, l.leaves, l.index, l.hashes = open(lockFile), open(leavesFile), open(indexFile), open(hashesFile)
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("ledger: %w", err)
	}
	if err := l.locked(func() error { return nil }); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// Close closes the ledger's files.
func (l *Log) Close() error {
	for _, f := range []*os.File{l.leaves, l.index, l.hashes, l.lock} {
		if f != nil {
			f.Close()
		}
	}
	return nil
}

// Dir is the ledger's directory.
func (l *Log) Dir() string { return l.dir }

// locked runs fn holding the process mutex and the exclusive flock, after
// bringing l up to date with the files (and repairing an uncommitted tail).
func (l *Log) locked(fn func() error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := syscall.Flock(int(l.lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("ledger: lock: %w", err)
	}
	defer syscall.Flock(int(l.lock.Fd()), syscall.LOCK_UN)
	if err := l.refresh(); err != nil {
		return err
	}
	return fn()
}

// refresh reads the committed size and cuts every file back to it.
func (l *Log) refresh() error {
	fi, err := l.index.Stat()
	if err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	n := fi.Size() / 8
	lf, err := l.leaves.Stat()
	if err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	// The index may be ahead of the leaves after a crash (written before
	// they reached the disk): drop the entries that point past them.
	for n > 0 {
		e, err := l.endOf(n - 1)
		if err != nil {
			return err
		}
		if e <= lf.Size() {
			break
		}
		n--
	}
	var end int64
	if n > 0 {
		if end, err = l.endOf(n - 1); err != nil {
			return err
		}
	}
	if fi.Size() != n*8 {
		if err := l.index.Truncate(n * 8); err != nil {
			return fmt.Errorf("ledger: %w", err)
		}
	}
	if lf.Size() != end {
		if err := l.leaves.Truncate(end); err != nil {
			return fmt.Errorf("ledger: %w", err)
		}
	}
	hf, err := l.hashes.Stat()
	if err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	want := tlog.StoredHashCount(n) * tlog.HashSize
	if hf.Size() > want {
		if err := l.hashes.Truncate(want); err != nil {
			return fmt.Errorf("ledger: %w", err)
		}
	}
	l.n, l.end = n, end
	if hf.Size() < want {
		// Hashes lost in a crash: compute them again from the leaves.
		m := int64(0)
		for m < n && tlog.StoredHashCount(m+1)*tlog.HashSize <= hf.Size() {
			m++
		}
		if err := l.hashes.Truncate(tlog.StoredHashCount(m) * tlog.HashSize); err != nil {
			return fmt.Errorf("ledger: %w", err)
		}
		for i := m; i < n; i++ {
			leaf, err := l.Leaf(i)
			if err != nil {
				return err
			}
			if err := l.storeHashes(i, leaf); err != nil {
				return err
			}
		}
	}
	return nil
}

func (l *Log) endOf(i int64) (int64, error) {
	var b [8]byte
	if _, err := l.index.ReadAt(b[:], i*8); err != nil {
		return 0, fmt.Errorf("ledger: index: %w", err)
	}
	return int64(binary.BigEndian.Uint64(b[:])), nil
}

// Size is the number of leaves committed (by any process, as of the last
// append or Refresh of this one).
func (l *Log) Size() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

// Refresh reads what other processes appended.
func (l *Log) Refresh() error { return l.locked(func() error { return nil }) }

// Leaf returns leaf i's bytes.
func (l *Log) Leaf(i int64) ([]byte, error) {
	var start int64
	var err error
	if i > 0 {
		if start, err = l.endOf(i - 1); err != nil {
			return nil, err
		}
	}
	end, err := l.endOf(i)
	if err != nil {
		return nil, err
	}
	if end <= start || end-start > MaxLeaf+1 {
		return nil, fmt.Errorf("ledger: leaf %d: bad index entry", i)
	}
	b := make([]byte, end-start)
	if _, err := l.leaves.ReadAt(b, start); err != nil {
		return nil, fmt.Errorf("ledger: leaf %d: %w", i, err)
	}
	if b[len(b)-1] != '\n' {
		return nil, fmt.Errorf("ledger: leaf %d: not ended by a newline", i)
	}
	return b[:len(b)-1], nil
}

// MaxLeaf bounds a leaf's size (the audit fields are bounded far below it).
const MaxLeaf = 64 << 10

// ErrBadLeaf is returned for a leaf that cannot be appended.
var ErrBadLeaf = errors.New("ledger: a leaf must be 1 to 64 KiB with no newline")

// Append appends leaves, in order, and returns the index of the first. With
// sync, the files are on disk when it returns.
func (l *Log) Append(leaves [][]byte, sync bool) (int64, error) {
	for _, b := range leaves {
		if len(b) == 0 || len(b) > MaxLeaf || containsNewline(b) {
			return 0, ErrBadLeaf
		}
	}
	var first int64
	err := l.locked(func() error {
		first = l.n
		if err := l.appendLocked(leaves); err != nil {
			return err
		}
		if sync {
			return l.syncFiles()
		}
		return nil
	})
	return first, err
}

// appendLocked appends leaves with the log locked.
func (l *Log) appendLocked(leaves [][]byte) error {
	for _, b := range leaves {
		if _, err := l.leaves.WriteAt(append(b[:len(b):len(b)], '\n'), l.end); err != nil {
			return fmt.Errorf("ledger: %w", err)
		}
		if err := l.storeHashes(l.n, b); err != nil {
			return err
		}
		var e [8]byte
		binary.BigEndian.PutUint64(e[:], uint64(l.end+int64(len(b))+1))
		if _, err := l.index.WriteAt(e[:], l.n*8); err != nil {
			return fmt.Errorf("ledger: %w", err)
		}
		l.end += int64(len(b)) + 1
		l.n++
	}
	return nil
}

func containsNewline(b []byte) bool {
	for _, c := range b {
		if c == '\n' {
			return true
		}
	}
	return false
}

func (l *Log) storeHashes(i int64, leaf []byte) error {
	hs, err := tlog.StoredHashes(i, leaf, l.reader())
	if err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	buf := make([]byte, 0, len(hs)*tlog.HashSize)
	for _, h := range hs {
		buf = append(buf, h[:]...)
	}
	if _, err := l.hashes.WriteAt(buf, tlog.StoredHashIndex(0, i)*tlog.HashSize); err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	return nil
}

// Sync puts what was appended on disk.
func (l *Log) Sync() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.syncFiles()
}

func (l *Log) syncFiles() error {
	for _, f := range []*os.File{l.leaves, l.hashes, l.index} {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("ledger: sync: %w", err)
		}
	}
	return nil
}

// reader reads stored hashes from the hashes file.
func (l *Log) reader() tlog.HashReader {
	return tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			if _, err := l.hashes.ReadAt(out[i][:], x*tlog.HashSize); err != nil {
				if errors.Is(err, io.EOF) {
					return nil, fmt.Errorf("ledger: hash %d missing", x)
				}
				return nil, err
			}
		}
		return out, nil
	})
}

// TreeHash is the root hash of the tree of the first n leaves.
func (l *Log) TreeHash(n int64) (tlog.Hash, error) { return tlog.TreeHash(n, l.reader()) }

// ProveLeaf proves leaf i is in the tree of size n.
func (l *Log) ProveLeaf(i, n int64) (tlog.RecordProof, error) {
	return tlog.ProveRecord(n, i, l.reader())
}

// ProveTree proves the tree of size n is a prefix of the tree of size t.
func (l *Log) ProveTree(t, n int64) (tlog.TreeProof, error) { return tlog.ProveTree(t, n, l.reader()) }
