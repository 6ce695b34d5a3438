package indexer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/blevesearch/bleve/v2"
	"golang.org/x/sync/semaphore"

	"mailvault/indexer/catalog"
)

// errWriterClosed is returned when work is handed to a closed writer.
var errWriterClosed = errors.New("index writer closed")

// indexJob is one document to (re)index, with the catalog generation it reflects.
type indexJob struct {
	task catalog.IndexTask
	doc  map[string]any
	size int // approximate text bytes, for the batch byte cap
}

// batchWork is a full batch handed from the filler to the committer, or a
// flush marker (reply set, batch nil) that the committer answers once every
// batch handed before it is committed.
type batchWork struct {
	batch *bleve.Batch
	tasks []catalog.IndexTask
	bytes int64
	reply chan error
}

// writer owns the Bleve batches. Two goroutines, each the only user of what
// it holds: run fills a batch from the bounded jobs channel (so a slow index
// slows ingest down instead of growing memory) and hands it to commit, which
// applies batches to the index one at a time, in order, and marks them
// indexed in the catalog. Filling the next batch while the last one is
// analysed and fsynced keeps both cores busy. Order matters: a message
// re-indexed (new place) may sit in two consecutive batches, and the later
// document must win.
type writer struct {
	a       *Archive
	jobs    chan indexJob
	flushes chan chan error
	full    chan batchWork
	quit    chan struct{}
	done    chan struct{}

	// budget bounds the text bytes queued or in batches not yet committed, so
	// that back-pressure holds for big documents too, not only for many.
	budget *semaphore.Weighted

	mu  sync.Mutex
	err error // first commit error since the last flush
}

// queueBudget is the most document bytes the writer holds at once.
const queueBudget = 96 << 20

// idleCommit is how long a partly filled batch waits for more documents
// before it is committed anyway, so that mail arriving one by one becomes
// searchable within about this delay. 200 ms: with 500 ms the
// delivery-to-searchable p99 against Dovecot was 1.09 s, half of it Dovecot's
// own IDLE notice; with 200 ms it is 733–794 ms (docs/benchmarks.md), under
// the 1 s target. Shorter buys little against the 0.5 s notice and costs a
// commit (an fsync) per trickled message.
const idleCommit = 200 * time.Millisecond

func newWriter(a *Archive) *writer {
	w := &writer{
		a:       a,
		jobs:    make(chan indexJob, a.opts.BatchDocs),
		flushes: make(chan chan error),
		full:    make(chan batchWork),
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
		budget:  semaphore.NewWeighted(queueBudget),
	}
	committed := make(chan struct{})
	go func() {
		defer close(committed)
		w.commitLoop()
	}()
	go func() {
		defer close(w.done)
		w.fillLoop()
		close(w.full)
		<-committed
	}()
	return w
}

// fillLoop collects jobs into batches and hands full ones to commitLoop.
func (w *writer) fillLoop() {
	// A batch is made when its first document comes, from the index live
	// then: Reindex swaps the index only while the writer is flushed and
	// idle, so a batch never outlives the index it was made for.
	var cur batchWork
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	add := func(j indexJob) {
		if cur.batch == nil {
			w.a.withIndex(func(idx bleve.Index) error { cur.batch = idx.NewBatch(); return nil })
		}
		if err := cur.batch.Index(j.task.SHA256Hex(), j.doc); err != nil {
			// The message stays unindexed in the catalog; CatchUp retries it.
			w.a.log.Error("index document", "sha256", j.task.SHA256Hex(), "err", err)
			w.budget.Release(jobWeight(j))
			return
		}
		if len(cur.tasks) == 0 {
			timer.Reset(idleCommit)
		}
		cur.tasks = append(cur.tasks, j.task)
		cur.bytes += jobWeight(j)
	}
	handOff := func() {
		timer.Stop()
		if len(cur.tasks) > 0 {
			w.full <- cur
		}
		cur = batchWork{}
	}
	drain := func() {
		for {
			select {
			case j := <-w.jobs:
				add(j)
			default:
				return
			}
		}
	}
	for {
		select {
		case j := <-w.jobs:
			add(j)
			if len(cur.tasks) >= w.a.opts.BatchDocs || cur.bytes >= int64(w.a.opts.BatchBytes) {
				handOff()
			}
		case <-timer.C:
			handOff()
		case reply := <-w.flushes:
			// Flush covers every job handed in before it.
			drain()
			handOff()
			w.full <- batchWork{reply: reply}
		case <-w.quit:
			drain()
			handOff()
			return
		}
	}
}

// commitLoop applies batches to the index in the order they were filled.
func (w *writer) commitLoop() {
	for work := range w.full {
		if work.reply != nil {
			w.mu.Lock()
			work.reply <- w.err
			w.err = nil
			w.mu.Unlock()
			continue
		}
		start := time.Now()
		w.a.trackIndexed(work.tasks)
		err := w.a.withIndex(func(idx bleve.Index) error {
			if err := idx.Batch(work.batch); err != nil {
				return err
			}
			return w.a.cat.MarkIndexed(context.Background(), work.tasks)
		})
		w.budget.Release(work.bytes)
		if err != nil {
			err = fmt.Errorf("commit index batch of %d documents: %w", len(work.tasks), err)
			// The catalog still marks these messages unindexed: CatchUp (at the
			// next start, or reindex) indexes them. Ingest goes on: the index
			// is a cache, and an index problem must not stop archiving.
			w.a.log.Error("index commit failed; the messages stay unindexed until the next start", "err", err)
			w.mu.Lock()
			if w.err == nil {
				w.err = err
			}
			w.mu.Unlock()
			continue
		}
		w.a.log.Debug("index batch committed", "docs", len(work.tasks), "bytes", work.bytes, "took", time.Since(start))
	}
}

func (w *writer) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// jobWeight is what a job counts against the queue budget: its text bytes,
// capped so that one huge document can always get in alone.
func jobWeight(j indexJob) int64 { return min(int64(j.size)+256, queueBudget) }

// submit hands a document to the writer, waiting while the queue is full
// (by count or by bytes).
func (w *writer) submit(ctx context.Context, j indexJob) error {
	if err := w.budget.Acquire(ctx, jobWeight(j)); err != nil {
		return err
	}
	select {
	case w.jobs <- j:
		return nil
	case <-w.done:
		w.budget.Release(jobWeight(j))
		return errWriterClosed
	case <-ctx.Done():
		w.budget.Release(jobWeight(j))
		return ctx.Err()
	}
}

// flush commits everything submitted so far. It returns the first index
// commit error since the previous flush, if any.
func (w *writer) flush(ctx context.Context) error {
	reply := make(chan error, 1)
	select {
	case w.flushes <- reply:
	case <-w.done:
		return errWriterClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close commits what is queued and stops both goroutines.
func (w *writer) close() error {
	select {
	case <-w.quit:
	default:
		close(w.quit)
	}
	<-w.done
	return w.failed()
}
