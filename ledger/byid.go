package ledger

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
)

// byIDKinds are the kinds whose leaves can be found by row id in O(1):
// messages, which `prove` looks up. byid-<kind> holds, at offset id*8, the
// leaf's index + 1 (big-endian; 0: not recorded). It is a hint derived from
// the leaves, written after them, never trusted: a lookup checks the leaf
// it points to and falls back to a scan (and rewrites the entry) when the
// entry is missing or wrong, so a crash or an edit of it costs time, not
// correctness. Row ids are SQLite rowids, dense, so the file is about 8
// bytes per message.
var byIDKinds = map[string]bool{KindMessage: true}

func (l *Log) byIDFile(kind string) (*os.File, error) {
	return os.OpenFile(filepath.Join(l.dir, "byid-"+kind), os.O_RDWR|os.O_CREATE, 0o600)
}

// noteIDs records where the leaves first.. (of kind, ids) went.
func (l *Log) noteIDs(kind string, first int64, ids []int64) error {
	if !byIDKinds[kind] || len(ids) == 0 {
		return nil
	}
	f, err := l.byIDFile(kind)
	if err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	defer f.Close()
	var b [8]byte
	for i, id := range ids {
		binary.BigEndian.PutUint64(b[:], uint64(first+int64(i)+1))
		if _, err := f.WriteAt(b[:], id*8); err != nil {
			return fmt.Errorf("ledger: %w", err)
		}
	}
	return nil
}

// LeafByID finds the leaf of the row kind/id, or an error when the ledger
// has none.
func (l *Log) LeafByID(kind string, id int64) (int64, error) {
	if id <= 0 {
		return 0, fmt.Errorf("ledger: no %s row %d", kind, id)
	}
	is := func(i int64) bool {
		b, err := l.Leaf(i)
		if err != nil {
			return false
		}
		f, err := DecodeLeaf(b)
		return err == nil && f.Kind == kind && f.ID == id
	}
	n := l.Size()
	if byIDKinds[kind] {
		if f, err := l.byIDFile(kind); err == nil {
			var b [8]byte
			_, rerr := f.ReadAt(b[:], id*8)
			f.Close()
			if v := int64(binary.BigEndian.Uint64(b[:])); rerr == nil && v > 0 && v <= n && is(v-1) {
				return v - 1, nil
			}
		}
	}
	for i := n - 1; i >= 0; i-- {
		if is(i) {
			l.noteIDs(kind, i, []int64{id}) // repair the hint
			return i, nil
		}
	}
	return 0, fmt.Errorf("ledger: the %s row %d has no leaf (ledger verify)", kind, id)
}
