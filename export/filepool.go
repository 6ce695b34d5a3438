package export

import (
	"archive/zip"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// filePool creates the whole files of an export (natives, texts, EML) on
// goroutines of its own, so that creating them — on ext4 most of an
// export's time is in the kernel's inode allocation — overlaps the parsing
// and hashing of the next ones and uses both cores. The writer hashes and
// records each file before it hands it over, so the file list, SHA256SUMS
// and the load files keep the export's order whatever order the files
// reach the disk in. At most maxQueued bytes wait (one larger file alone):
// memory stays bounded. The first error stops the pool and is returned by
// err and wait; finish waits for every file before it writes the manifest,
// so a manifest never lists a file that was not written.
//
// A pool made by newZipPool writes the files as entries of a zip instead,
// on one goroutine, in the order they were handed over: a zipped
// production creates one file on disk, not one per document.
type filePool struct {
	base string      // the export's directory; files go under it
	zw   *zip.Writer // or, when not nil, into this zip
	jobs chan fileJob
	wg   sync.WaitGroup
	stop sync.Once

	mu      sync.Mutex
	cond    *sync.Cond
	queued  int64 // bytes handed over and not yet written
	firstEr error
}

type fileJob struct {
	rel  string // slash-separated, relative to the export
	data []byte
}

const (
	poolWorkers = 2
	maxQueued   = 32 << 20
)

func newFilePool(base string) *filePool { return startPool(&filePool{base: base}, poolWorkers) }

// newZipPool writes into zw, which nothing else may write to until wait
// has returned.
func newZipPool(zw *zip.Writer) *filePool { return startPool(&filePool{zw: zw}, 1) }

func startPool(p *filePool, workers int) *filePool {
	p.jobs = make(chan fileJob, 256)
	p.cond = sync.NewCond(&p.mu)
	for range workers {
		p.wg.Add(1)
		go p.work()
	}
	return p
}

func (p *filePool) work() {
	defer p.wg.Done()
	for j := range p.jobs {
		err := p.err()
		if err == nil && p.zw != nil {
			err = writeEntry(p.zw, j.rel, j.data)
		} else if err == nil {
			err = writeNew(filepath.Join(p.base, filepath.FromSlash(j.rel)), j.data)
		}
		p.mu.Lock()
		p.queued -= int64(len(j.data))
		if err != nil && p.firstEr == nil {
			p.firstEr = err
		}
		p.cond.Broadcast()
		p.mu.Unlock()
	}
}

// writeNew creates path, which must not exist, with data.
func writeNew(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("export: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("export: write %s: %w", path, err)
	}
	return nil
}

// writeEntry adds one stored (not compressed) entry to a zip.
func writeEntry(zw *zip.Writer, rel string, data []byte) error {
	e, err := zw.CreateHeader(&zip.FileHeader{Name: rel, Method: zip.Store})
	if err == nil {
		_, err = e.Write(data)
	}
	if err != nil {
		return fmt.Errorf("export: zip %s: %w", rel, err)
	}
	return nil
}

// put hands data over to be written at rel; it waits while the queue is
// full and returns the pool's first error, if any, instead of queueing.
// data must not change afterwards.
func (p *filePool) put(rel string, data []byte) error {
	n := int64(len(data))
	p.mu.Lock()
	for p.firstEr == nil && p.queued > 0 && p.queued+n > maxQueued {
		p.cond.Wait()
	}
	if err := p.firstEr; err != nil {
		p.mu.Unlock()
		return err
	}
	p.queued += n
	p.mu.Unlock()
	p.jobs <- fileJob{rel, data}
	return nil
}

func (p *filePool) err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.firstEr
}

// wait writes what is queued, stops the workers and returns the first
// error. The pool takes no more files after it.
func (p *filePool) wait() error {
	p.stop.Do(func() { close(p.jobs) })
	p.wg.Wait()
	return p.err()
}
