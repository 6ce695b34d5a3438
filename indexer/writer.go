package indexer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

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

// writer owns the Bleve batch. Only run touches the batch; producers hand it
// documents through the bounded jobs channel, so a slow index slows ingest down
// instead of growing memory.
type writer struct {
	a       *Archive
	jobs    chan indexJob
	flushes chan chan error
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
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	go w.run()
	return w
}

func (w *writer) run() {
	defer close(w.done)
	batch := w.a.idx.NewBatch()
	var tasks []catalog.IndexTask
	bytes := 0
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	commit := func() error {
		if len(tasks) == 0 {
			return nil
		}
		start := time.Now()
		err := w.a.idx.Batch(batch)
		if err == nil {
			err = w.a.cat.MarkIndexed(context.Background(), tasks)
		}
		if err != nil {
			err = fmt.Errorf("commit index batch of %d documents: %w", len(tasks), err)
			w.a.log.Error("index commit failed; the messages stay queued for the next start", "err", err)
			w.mu.Lock()
			if w.err == nil {
				w.err = err
			}
			w.mu.Unlock()
		} else {
			w.a.log.Debug("index batch committed", "docs", len(tasks), "bytes", bytes, "took", time.Since(start))
		}
		batch.Reset()
		tasks = tasks[:0]
		bytes = 0
		timer.Stop()
		return err
	}
	for {
		select {
		case j := <-w.jobs:
			if err := batch.Index(j.task.SHA256Hex(), j.doc); err != nil {
				w.a.log.Error("index document", "sha256", j.task.SHA256Hex(), "err", err)
				continue
			}
			if len(tasks) == 0 {
				timer.Reset(idleCommit)
			}
			tasks = append(tasks, j.task)
			bytes += j.size
			if len(tasks) >= w.a.opts.BatchDocs || bytes >= w.a.opts.BatchBytes {
				commit()
			}
		case <-timer.C:
			commit()
		case reply := <-w.flushes:
			// Drain what is already queued so Flush covers every job handed in before it.
			for drained := false; !drained; {
				select {
				case j := <-w.jobs:
					if err := batch.Index(j.task.SHA256Hex(), j.doc); err == nil {
						tasks = append(tasks, j.task)
						bytes += j.size
					}
				default:
					drained = true
				}
			}
			err := commit()
			if err == nil {
				err = w.failed()
			}
			reply <- err
		case <-w.quit:
			for {
				select {
				case j := <-w.jobs:
					if err := batch.Index(j.task.SHA256Hex(), j.doc); err == nil {
						tasks = append(tasks, j.task)
						bytes += j.size
					}
					continue
				default:
				}
				break
			}
			commit()
			return
		}
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

func (w *writer) close() error {
	select {
	case <-w.quit:
	default:
		close(w.quit)
	}
	<-w.done
	return w.failed()
}
