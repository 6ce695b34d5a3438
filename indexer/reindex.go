package indexer

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/blevesearch/bleve/v2"

	"mailvault/indexer/catalog"
	"mailvault/indexer/extract"
)

// Online reindex.
//
// Reindex builds a new index in <dir>/index.new from the store and catalog
// while the live index (<dir>/index) goes on serving searches and the writer
// goes on indexing new mail into it. The writer records which messages it
// indexes meanwhile (the dirty set): those are exactly the messages whose
// document changed after the bulk may have read them. When the bulk is done,
// Reindex pauses ingest (it holds commitMu, so Commit waits) and flushes the
// writer, then indexes the delta into the new index: the dirty set, messages
// that arrived after the bulk's last page, messages the catalog marks not
// indexed, and any the bulk could not read. The catalog is stable while
// ingest is paused, so after the delta the new index holds every message at
// its current gen. Then, under idxMu's write lock (searches wait, never fail):
// close the old index, rename index → index.old and index.new → index, sync
// the directory, open the new one, and unpause. index.old is removed last.
//
// The catalog's indexed_gen must never claim more than <dir>/index holds, at
// any moment a crash may freeze: messages the new index lacks are marked
// unindexed before the swap (lowering is always safe), and the delta's
// messages are marked indexed only after the swap is durable (until then the
// catalog at worst claims less, and CatchUp re-indexes a few).
//
// Crash recovery (Open, recoverIndexDirs): index.new without a complete swap
// is removed; index.old with no index means the crash fell between the two
// renames, and index.old (the catalog's bookkeeping is still its) is put back.

const (
	indexDirName    = "index"
	indexNewDirName = "index.new"
	indexOldDirName = "index.old"
)

// Reindex stages, named for the crash tests' hook.
const (
	stageBulk    = "bulk"    // after the first bulk batch is in the new index
	stageDelta   = "delta"   // the delta is in the new index, nothing swapped yet
	stageRenamed = "renamed" // index is now index.old; index.new not yet renamed
	stageSwapped = "swapped" // the new index is in place; catalog not yet marked
)

func (a *Archive) hook(stage string) {
	if a.opts.reindexHook != nil {
		a.opts.reindexHook(stage)
	}
}

// recoverIndexDirs puts the index directories right after a crash in Reindex
// or createIndex; see the comment at the top of this file.
func recoverIndexDirs(dir string) error {
	cur := filepath.Join(dir, indexDirName)
	old := filepath.Join(dir, indexOldDirName)
	if _, err := os.Stat(cur); errors.Is(err, fs.ErrNotExist) {
		if _, err := os.Stat(old); err == nil {
			if err := os.Rename(old, cur); err != nil {
				return fmt.Errorf("restore index: %w", err)
			}
		}
	}
	for _, leftover := range []string{old, filepath.Join(dir, indexNewDirName)} {
		if err := os.RemoveAll(leftover); err != nil {
			return fmt.Errorf("remove %s: %w", leftover, err)
		}
	}
	return syncDirOf(cur)
}

// trackIndexed adds tasks to the dirty set while a Reindex runs.
func (a *Archive) trackIndexed(tasks []catalog.IndexTask) {
	a.dirtyMu.Lock()
	defer a.dirtyMu.Unlock()
	if a.dirty == nil {
		return
	}
	for _, t := range tasks {
		a.dirty[t.ID] = struct{}{}
	}
}

func (a *Archive) startTracking() {
	a.dirtyMu.Lock()
	a.dirty = map[int64]struct{}{}
	a.dirtyMu.Unlock()
}

func (a *Archive) stopTracking() []int64 {
	a.dirtyMu.Lock()
	defer a.dirtyMu.Unlock()
	ids := slices.Collect(maps.Keys(a.dirty))
	a.dirty = nil
	return ids
}

// Reindex rebuilds the index from the store and catalog while the archive
// stays live: searches are served by the old index until the new one is
// complete, and ingest goes on except for a short pause at the end (the
// delta and the swap). progress, when not nil, is called with the messages
// indexed so far and the total when the rebuild started (the delta may add
// a few). Reindex must not run beside CatchUp or Compact (it waits for them)
// and Close waits for it; cancel ctx to stop it, which leaves the old index
// in place. A SIGKILL at any moment leaves a data directory whose next Open
// serves a complete index (see the comment at the top of reindex.go).
//
// Reindex refuses (ErrUnreferencedBlobs) while the store holds blobs the
// catalog does not reference: run Recover first (recover.go).
//
// Messages whose blob cannot be read are left out of the new index and
// marked not indexed; Reindex then returns an error naming how many
// (`mailvault verify` lists them), after the swap.
func (a *Archive) Reindex(ctx context.Context, progress func(done, total int)) error {
	if a.writer == nil {
		return fmt.Errorf("reindex: archive %s is open read-only", a.dir)
	}
	defer a.Bulk()()
	a.maintMu.Lock()
	defer a.maintMu.Unlock()
	// A rebuilt index would erase the last trace of mail the catalog lost
	// (its old documents): refuse until Recover has cataloged it.
	if n, err := a.countUnreferenced(ctx); err != nil {
		return fmt.Errorf("reindex: %w", err)
	} else if n > 0 {
		return unreferencedError("reindex", n)
	}
	// Text an older extractor version made is extracted again, and so is a
	// message whose blob the extractor could not read (repaired since, or
	// still failing and recorded again): the new index takes the text in as
	// the extractor gets there (attachments.go).
	if n, err := a.cat.Reextract(ctx, extract.Version); err != nil {
		return fmt.Errorf("reindex: %w", err)
	} else if n > 0 {
		a.log.Info("reindex: attachments extracted by an older extractor, or failed for a cause outside them, are queued again", "messages", n, "version", extract.Version)
		a.wakeExtractor()
	}
	newDir := filepath.Join(a.dir, indexNewDirName)
	if err := os.RemoveAll(filepath.Join(a.dir, indexOldDirName)); err != nil {
		return fmt.Errorf("reindex: %w", err)
	}
	idx, err := newIndexAt(newDir)
	if err != nil {
		return fmt.Errorf("reindex: %w", err)
	}
	a.startTracking()
	swapped := false
	defer func() {
		if !swapped {
			a.stopTracking()
			idx.Close()
			os.RemoveAll(newDir)
		}
	}()

	total, err := a.cat.CountMessages(ctx)
	if err != nil {
		return fmt.Errorf("reindex: %w", err)
	}
	// Bulk: every message the catalog has, page by page.
	var after int64
	done := 0
	var unreadable []int64
	for {
		tasks, err := a.cat.Messages(ctx, after, 256)
		if err != nil {
			return fmt.Errorf("reindex: %w", err)
		}
		if len(tasks) == 0 {
			break
		}
		after = tasks[len(tasks)-1].ID
		n, bad, err := a.indexInto(ctx, idx, tasks)
		if err != nil {
			return fmt.Errorf("reindex: %w", err)
		}
		unreadable = append(unreadable, bad...)
		if done == 0 {
			a.hook(stageBulk)
		}
		done += n
		if progress != nil {
			progress(done, total)
		}
	}

	// Pause ingest and let the writer commit everything handed to it; the
	// catalog's index state holds still until the swap is done.
	a.commitMu.Lock()
	defer a.commitMu.Unlock()
	paused := time.Now()
	if err := a.Flush(ctx); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// A failed commit leaves its messages unindexed in the catalog, and
		// the delta below takes every unindexed message.
		a.log.Warn("reindex: index writer", "err", err)
	}
	delta, err := a.reindexDelta(ctx, a.stopTracking(), unreadable, after)
	if err != nil {
		return fmt.Errorf("reindex: %w", err)
	}
	n, bad, err := a.indexInto(ctx, idx, delta)
	if err != nil {
		return fmt.Errorf("reindex: %w", err)
	}
	done += n
	if progress != nil {
		progress(done, max(total, done))
	}
	// What the new index lacks, the catalog must not claim (safe either way
	// the swap goes).
	if err := a.cat.MarkUnindexed(ctx, bad); err != nil {
		return fmt.Errorf("reindex: %w", err)
	}
	if err := idx.Close(); err != nil {
		return fmt.Errorf("reindex: close new index: %w", err)
	}
	a.hook(stageDelta)
	if err := a.swapIndex(); err != nil {
		return fmt.Errorf("reindex: %w", err)
	}
	swapped = true
	a.log.Info("index rebuilt and swapped in", "messages", done, "delta", len(delta), "ingest_paused", time.Since(paused))
	a.hook(stageSwapped)
	os.RemoveAll(filepath.Join(a.dir, indexOldDirName))
	badSet := map[int64]bool{}
	for _, id := range bad {
		badSet[id] = true
	}
	marked := slices.DeleteFunc(delta, func(t catalog.IndexTask) bool { return badSet[t.ID] })
	if err := a.cat.MarkIndexed(context.WithoutCancel(ctx), marked); err != nil {
		// The catalog claims less than the index holds: CatchUp redoes them.
		return fmt.Errorf("reindex: record the new index: %w", err)
	}
	if len(bad) > 0 {
		return unindexableError("reindex", len(bad), a.corruptAmong(ctx, bad))
	}
	return nil
}

// reindexDelta lists, with their current gen, the messages the new index
// must (re)take after the bulk: those the writer indexed during it, those
// the bulk could not read, those the catalog marks unindexed, and those
// added after the bulk's last page (id > after).
func (a *Archive) reindexDelta(ctx context.Context, dirty, unreadable []int64, after int64) ([]catalog.IndexTask, error) {
	byID := map[int64]catalog.IndexTask{}
	tasks, err := a.cat.IndexTasks(ctx, append(dirty, unreadable...))
	if err != nil {
		return nil, err
	}
	for _, t := range tasks {
		byID[t.ID] = t
	}
	// Every page of a listing (Unindexed from the start, Messages from
	// after) goes into byID.
	collect := func(list func(ctx context.Context, afterID int64, limit int) ([]catalog.IndexTask, error), from int64) error {
		for {
			ts, err := list(ctx, from, 1000)
			if err != nil || len(ts) == 0 {
				return err
			}
			for _, t := range ts {
				byID[t.ID] = t
			}
			from = ts[len(ts)-1].ID
		}
	}
	if err := collect(a.cat.Unindexed, 0); err != nil {
		return nil, err
	}
	if err := collect(a.cat.Messages, after); err != nil {
		return nil, err
	}
	out := slices.Collect(maps.Values(byID))
	slices.SortFunc(out, func(x, y catalog.IndexTask) int { return int(x.ID - y.ID) })
	return out, nil
}

// indexInto indexes tasks into idx (not the live index: Reindex owns idx
// and its batches) in batches of the writer's size, and returns how many it
// indexed and the ids of those whose blob could not be read.
func (a *Archive) indexInto(ctx context.Context, idx bleve.Index, tasks []catalog.IndexTask) (int, []int64, error) {
	var bad []int64
	n := 0
	for start := 0; start < len(tasks); start += a.opts.BatchDocs {
		chunk := tasks[start:min(start+a.opts.BatchDocs, len(tasks))]
		jobs, errs := a.loadJobs(ctx, chunk)
		if err := ctx.Err(); err != nil {
			return 0, nil, err
		}
		b := idx.NewBatch()
		for i, j := range jobs {
			if errs[i] != nil {
				a.log.Error("reindex: cannot index message", "sha256", chunk[i].SHA256Hex(), "err", errs[i])
				bad = append(bad, chunk[i].ID)
				continue
			}
			if err := b.Index(j.task.SHA256Hex(), j.doc); err != nil {
				a.log.Error("reindex: index document", "sha256", chunk[i].SHA256Hex(), "err", err)
				bad = append(bad, chunk[i].ID)
				continue
			}
			n++
		}
		if err := idx.Batch(b); err != nil {
			return 0, nil, fmt.Errorf("commit index batch: %w", err)
		}
	}
	return n, bad, nil
}

// swapIndex puts the closed, complete index in index.new in the place of
// the live one, under idxMu's write lock: searches wait for it and then run
// on the new index. When a step fails, the old index is put back.
func (a *Archive) swapIndex() error {
	cur := filepath.Join(a.dir, indexDirName)
	old := filepath.Join(a.dir, indexOldDirName)
	newDir := filepath.Join(a.dir, indexNewDirName)
	a.idxMu.Lock()
	defer a.idxMu.Unlock()
	if err := a.idx.Close(); err != nil {
		a.log.Warn("reindex: close old index", "err", err)
	}
	reopenOld := func(cause error) error {
		idx, err := openIndex(cur, false)
		if err != nil {
			// Nothing to serve: searches fail until the next Open, which
			// recovers the directories (the catalog marks nothing wrongly).
			return errors.Join(cause, fmt.Errorf("reopen old index: %w", err))
		}
		a.idx = idx
		return cause
	}
	if err := os.Rename(cur, old); err != nil {
		return reopenOld(fmt.Errorf("swap index: %w", err))
	}
	a.hook(stageRenamed)
	if err := os.Rename(newDir, cur); err != nil {
		if rerr := os.Rename(old, cur); rerr != nil {
			return errors.Join(err, rerr)
		}
		return reopenOld(fmt.Errorf("swap index: %w", err))
	}
	if err := syncDirOf(cur); err != nil {
		a.log.Warn("reindex: sync data directory", "err", err)
	}
	idx, err := openIndex(cur, false)
	if err != nil {
		// Put the old one back rather than serve nothing.
		err = fmt.Errorf("open new index: %w", err)
		if rerr := os.Rename(cur, newDir); rerr != nil {
			return errors.Join(err, rerr)
		}
		if rerr := os.Rename(old, cur); rerr != nil {
			return errors.Join(err, rerr)
		}
		return reopenOld(err)
	}
	a.idx = idx
	return nil
}

// newIndexAt creates an empty index of the current mapping at path,
// replacing whatever is there, and leaves it open.
func newIndexAt(path string) (bleve.Index, error) {
	m, err := newMapping()
	if err != nil {
		return nil, err
	}
	if err := os.RemoveAll(path); err != nil {
		return nil, fmt.Errorf("create index: %w", err)
	}
	idx, err := bleve.NewUsing(path, m, bleve.Config.DefaultIndexType, bleve.Config.DefaultKVStore, maps.Clone(indexConfig))
	if err != nil {
		return nil, fmt.Errorf("create index %s: %w", path, err)
	}
	if err := idx.SetInternal(mappingKey, []byte(mappingVersion)); err != nil {
		idx.Close()
		return nil, fmt.Errorf("create index %s: %w", path, err)
	}
	if err := secureIndexMeta(path); err != nil {
		idx.Close()
		return nil, fmt.Errorf("create index %s: %w", path, err)
	}
	return idx, nil
}

// corruptAmong counts the messages of ids whose blob exists but is not their
// message (for Reindex's error; it reads each blob again, and there are few).
func (a *Archive) corruptAmong(ctx context.Context, ids []int64) int {
	tasks, err := a.cat.IndexTasks(ctx, ids)
	if err != nil {
		return 0
	}
	n := 0
	for _, t := range tasks {
		if err := a.store.Verify(ctx, t.SHA256); errors.Is(err, ErrBlobCorrupt) {
			n++
		}
	}
	return n
}
