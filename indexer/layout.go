package indexer

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"mailvault/indexer/pack"
	"mailvault/indexer/store"
)

// Store layouts. An archive's layout is chosen when it is created
// (Options.Layout) and recorded in <data>/store-layout, so that Open picks
// the right store whatever later defaults say; an archive without that file
// predates the choice and is "files". `mailvault store migrate` moves an
// archive from one to the other.
//
// The default for new archives stays "files" for now: it is the layout the
// whole test suite, the recovery tools and the operators' habits (a blob is
// a file one can zstdcat) are built on, and "pack" is new. docs/design.md
// ("Pack segments") says when to choose pack: above a few hundred thousand
// messages, where one file per blob costs inodes, 4 KiB blocks and per-file
// fsync work.
const (
	LayoutFiles = "files" // indexer/store: one zstd file per blob under blobs/
	LayoutPack  = "pack"  // indexer/pack: append-only segments under packs/
)

const (
	layoutFileName  = "store-layout"
	migrateFileName = "store-migrate" // names the target of a migration in progress
)

// ErrMigrating is returned by Open for writing while a store migration is
// unfinished: writes and deletions to the old layout alone would be lost
// or undone by the switch.
var ErrMigrating = errors.New("a store migration is unfinished")

func layoutDir(layout string) string {
	if layout == LayoutPack {
		return "packs"
	}
	return "blobs"
}

// readLayout returns the recorded layout of the archive in dir, "" when
// none is recorded.
func readLayout(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, layoutFileName))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read store layout: %w", err)
	}
	l := strings.TrimSpace(string(b))
	if l != LayoutFiles && l != LayoutPack {
		return "", fmt.Errorf("read store layout: %s says %q, want %q or %q", filepath.Join(dir, layoutFileName), l, LayoutFiles, LayoutPack)
	}
	return l, nil
}

// openStore opens the archive's store of record in the layout recorded for
// it, recording Options.Layout first for a new archive.
func (a *Archive) openStore() error {
	layout, err := readLayout(a.dir)
	if err != nil {
		return err
	}
	if layout == "" {
		layout = LayoutFiles // an archive from before layouts were recorded
		_, cerr := os.Stat(filepath.Join(a.dir, "catalog.db"))
		if !a.opts.ReadOnly && errors.Is(cerr, fs.ErrNotExist) && !dirExists(filepath.Join(a.dir, "blobs")) {
			switch a.opts.Layout {
			case "", LayoutFiles:
			case LayoutPack:
				layout = LayoutPack
			default:
				return fmt.Errorf("open archive: store layout %q: want %q or %q", a.opts.Layout, LayoutFiles, LayoutPack)
			}
			if err := store.WriteFileDurable(filepath.Join(a.dir, layoutFileName), []byte(layout+"\n"), FileMode); err != nil {
				return fmt.Errorf("open archive: record store layout: %w", err)
			}
		}
	}
	if !a.opts.ReadOnly && !a.opts.StoreMigration {
		if b, err := os.ReadFile(filepath.Join(a.dir, migrateFileName)); err == nil {
			return fmt.Errorf("open archive %s: %w (to %s): run `mailvault store migrate --to %s` again to finish it", a.dir, ErrMigrating, strings.TrimSpace(string(b)), strings.TrimSpace(string(b)))
		}
	}
	a.layout = layout
	a.store, a.fsStore, err = openLayout(a.dir, layout, a.opts.ReadOnly)
	return err
}

// openLayout opens the store of one layout in the data directory dir.
func openLayout(dir, layout string, readOnly bool) (blobStore, *store.Store, error) {
	path := filepath.Join(dir, layoutDir(layout))
	if layout == LayoutPack {
		p, err := pack.Open(path, &pack.Options{ReadOnly: readOnly})
		if err != nil {
			return nil, nil, err
		}
		return p, nil, nil
	}
	var fsStore *store.Store
	var err error
	if readOnly {
		fsStore, err = store.OpenReadOnly(path)
	} else {
		fsStore, err = store.Open(path)
	}
	if err != nil {
		return nil, nil, err
	}
	return fsStore, fsStore, nil
}

// Layout returns the layout of the archive's store of record.
func (a *Archive) Layout() string { return a.layout }

// MigrateReport says what MigrateStore did.
type MigrateReport struct {
	From     string  `json:"from"`
	To       string  `json:"to"`
	Blobs    int     `json:"blobs"`    // blobs in the store, each verified in the new layout
	Copied   int     `json:"copied"`   // copied by this run (the others were copied by an interrupted one)
	Bytes    int64   `json:"bytes"`    // raw bytes verified
	Removed  bool    `json:"removed"`  // the old layout's files were removed
	Seconds  float64 `json:"seconds"`  // how long it took
	Resumed  bool    `json:"resumed"`  // an interrupted migration was taken up again
	Switched bool    `json:"switched"` // the archive now reads from the new layout
}

// ErrCompactLayout is returned by CompactStore on an archive whose layout
// has nothing to compact.
var ErrCompactLayout = errors.New("only the pack layout is compacted")

// CompactStore rewrites the pack segments that hold deleted blobs (or are
// mostly dead bytes) without them; see pack.Store.Compact.
func (a *Archive) CompactStore(ctx context.Context) (pack.CompactReport, error) {
	p, ok := a.store.(*pack.Store)
	if !ok {
		return pack.CompactReport{}, fmt.Errorf("compact store: %w (this archive is %q: a deleted blob's file is gone already)", ErrCompactLayout, a.layout)
	}
	if a.writer == nil {
		return pack.CompactReport{}, fmt.Errorf("compact store: archive %s is open read-only", a.dir)
	}
	return p.Compact(ctx)
}

// MigrateStore copies every blob into the store of layout to, verifies each
// there (its bytes hash to its key), switches the archive to it and removes
// the old layout's files (unless keepOld). It is resumable: the target of a
// migration in progress is named in <data>/store-migrate before the first
// copy, a run that is interrupted leaves the archive on its old layout
// (writable opens refuse until the migration is finished, so that nothing
// is written to or deleted from the old layout alone), and a new run skips
// what was copied (content-addressed) but verifies it again. The switch is
// one durable rename of <data>/store-layout. A blob of the old layout that
// does not hash to its key stops the migration before the switch, with
// nothing lost. The archive must be opened with Options.StoreMigration, by
// one process (the CLI refuses while serve runs).
func (a *Archive) MigrateStore(ctx context.Context, to string, keepOld bool, progress func(done, total int)) (MigrateReport, error) {
	start := time.Now()
	rep := MigrateReport{From: a.layout, To: to}
	if to != LayoutFiles && to != LayoutPack {
		return rep, fmt.Errorf("store migrate: layout %q: want %q or %q", to, LayoutFiles, LayoutPack)
	}
	if a.writer == nil || !a.opts.StoreMigration {
		return rep, errors.New("store migrate: the archive must be open for writing with StoreMigration")
	}
	a.commitMu.Lock() // no ingest meanwhile
	defer a.commitMu.Unlock()
	marker := filepath.Join(a.dir, migrateFileName)
	if b, err := os.ReadFile(marker); err == nil {
		if m := strings.TrimSpace(string(b)); m != to {
			return rep, fmt.Errorf("store migrate: a migration to %q is unfinished: finish it first (--to %s)", m, m)
		}
		rep.Resumed = true
	}
	if a.layout == to {
		if !rep.Resumed {
			return rep, fmt.Errorf("store migrate: the archive's store is %q already", to)
		}
		// Switched already; an interrupted run left the old files.
		rep.From = otherLayout(to)
		return rep, a.finishMigration(&rep, keepOld, start)
	}
	target := filepath.Join(a.dir, layoutDir(to))
	if !rep.Resumed {
		if ents, err := os.ReadDir(target); err == nil && len(ents) > 0 && !emptyFilesStore(target, ents) {
			// Content there is not from a migration this archive recorded:
			// it may hold blobs deleted since (retention), which a copy
			// would bring back. Refuse rather than guess.
			return rep, fmt.Errorf("store migrate: %s holds a store that is not part of a migration in progress (move it away first)", target)
		}
		if err := store.WriteFileDurable(marker, []byte(to+"\n"), FileMode); err != nil {
			return rep, fmt.Errorf("store migrate: %w", err)
		}
	}
	dst, _, err := openLayout(a.dir, to, false)
	if err != nil {
		return rep, fmt.Errorf("store migrate: %w", err)
	}
	defer func() {
		if dst != nil {
			dst.Close()
		}
	}()
	total := 0
	if err := a.store.Walk(ctx, func(store.Key, string, bool) error { total++; return nil }); err != nil {
		return rep, fmt.Errorf("store migrate: count blobs: %w", err)
	}
	// Copies are published (one fsync) a batch at a time; a resumed run
	// skips what an interrupted one published.
	batchMax := 500
	if a.opts.migrateBatch > 0 {
		batchMax = a.opts.migrateBatch
	}
	var batch []store.Staged
	var raws int64
	flush := func() error {
		if err := dst.Publish(ctx, batch); err != nil {
			return err
		}
		for _, st := range batch {
			if err := dst.Verify(ctx, st.Key); err != nil {
				return fmt.Errorf("verify the copy: %w", err)
			}
		}
		batch = batch[:0]
		return nil
	}
	err = a.store.Walk(ctx, func(k store.Key, name string, ok bool) error {
		if !ok {
			return nil // not a blob (the files layout's stray files)
		}
		raw, err := a.store.Get(ctx, k)
		if err == nil && store.KeyOf(raw) != k {
			err = fmt.Errorf("%w: content hashes to %s", ErrBlobCorrupt, store.KeyOf(raw))
		}
		if err != nil {
			return fmt.Errorf("blob %s (%s): %w (nothing was switched: run `mailvault verify`)", k, name, err)
		}
		st, err := dst.Stage(ctx, k, raw)
		if err != nil {
			return err
		}
		if st.Token != "" {
			rep.Copied++
		}
		rep.Blobs++
		rep.Bytes += int64(len(raw))
		raws += int64(len(raw))
		batch = append(batch, st)
		if len(batch) >= batchMax || raws >= 64<<20 {
			raws = 0
			if err := flush(); err != nil {
				return err
			}
		}
		if progress != nil {
			progress(rep.Blobs, total)
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		dst.Discard(batch)
		return rep, fmt.Errorf("store migrate: %w", err)
	}
	// The switch. From here the archive reads the new layout.
	if err := store.WriteFileDurable(filepath.Join(a.dir, layoutFileName), []byte(to+"\n"), FileMode); err != nil {
		return rep, fmt.Errorf("store migrate: switch: %w", err)
	}
	old := a.store
	a.store, a.fsStore, a.layout = dst, nil, to
	if fs, ok := dst.(*store.Store); ok {
		a.fsStore = fs
	}
	dst = nil
	rep.Switched = true
	old.Close()
	return rep, a.finishMigration(&rep, keepOld, start)
}

func otherLayout(l string) string {
	if l == LayoutPack {
		return LayoutFiles
	}
	return LayoutPack
}

// emptyFilesStore reports whether ents (of a blobs/ directory) are only the
// empty fan-out directories store.Open makes.
func emptyFilesStore(dir string, ents []fs.DirEntry) bool {
	for _, e := range ents {
		if !e.IsDir() {
			return false
		}
		sub, err := os.ReadDir(filepath.Join(dir, e.Name()))
		if err != nil || len(sub) > 0 {
			return false
		}
	}
	return true
}

// finishMigration removes the old layout's files (the archive reads the
// new one already) and then the marker.
func (a *Archive) finishMigration(rep *MigrateReport, keepOld bool, start time.Time) error {
	if !keepOld {
		if err := os.RemoveAll(filepath.Join(a.dir, layoutDir(rep.From))); err != nil {
			return fmt.Errorf("store migrate: remove the old store: %w (the archive reads the new one; remove it by hand)", err)
		}
		if err := syncDirOf(filepath.Join(a.dir, layoutDir(rep.From))); err != nil {
			return fmt.Errorf("store migrate: %w", err)
		}
		rep.Removed = true
	}
	if err := os.Remove(filepath.Join(a.dir, migrateFileName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("store migrate: %w", err)
	}
	if err := syncDirOf(filepath.Join(a.dir, migrateFileName)); err != nil {
		return fmt.Errorf("store migrate: %w", err)
	}
	rep.Switched = true
	rep.Seconds = time.Since(start).Seconds()
	return nil
}
