package indexer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/blevesearch/bleve/v2"

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
	bytes int
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

	mu  sync.Mutex
	err error // first commit error; the writer stops accepting work after it
}

// idleCommit is how long a partly filled batch waits for more documents
// before it is committed anyway, so that mail arriving one by one becomes
// searchable within about this delay.
const idleCommit = 500 * time.Millisecond

func newWriter(a *Archive) *writer {
	w := &writer{
		a:       a,
		jobs:    make(chan indexJob, a.opts.BatchDocs),
		flushes: make(chan chan error),
		full:    make(chan batchWork),
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
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
	cur := batchWork{batch: w.a.idx.NewBatch()}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	add := func(j indexJob) {
		if err := cur.batch.Index(j.task.SHA256Hex(), j.doc); err != nil {
			w.a.log.Error("index document", "sha256", j.task.SHA256Hex(), "err", err)
			return
		}
		if len(cur.tasks) == 0 {
			timer.Reset(idleCommit)
		}
		cur.tasks = append(cur.tasks, j.task)
		cur.bytes += j.size
	}
	handOff := func() {
		timer.Stop()
		if len(cur.tasks) > 0 {
			w.full <- cur
			cur = batchWork{batch: w.a.idx.NewBatch()}
		}
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
			if len(cur.tasks) >= w.a.opts.BatchDocs || cur.bytes >= w.a.opts.BatchBytes {
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
			work.reply <- w.failed()
			continue
		}
		start := time.Now()
		err := w.a.idx.Batch(work.batch)
		if err == nil {
			err = w.a.cat.MarkIndexed(context.Background(), work.tasks)
		}
		if err != nil {
			err = fmt.Errorf("commit index batch of %d documents: %w", len(work.tasks), err)
			w.a.log.Error("index commit failed; the messages stay queued for the next start", "err", err)
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

// submit hands a document to the writer, waiting while the queue is full.
func (w *writer) submit(ctx context.Context, j indexJob) error {
	if err := w.failed(); err != nil {
		return err
	}
	select {
	case w.jobs <- j:
		return nil
	case <-w.done:
		return errWriterClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// flush commits everything submitted so far.
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
