package indexer

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"mailvault/indexer/store"
)

// The ingest journal tells a crash's leftover blobs from mail the catalog
// lost (recover.go says why they differ).
//
// Commit writes the keys of a batch's new blobs to <dir>/ingest.pending and
// fsyncs it before it publishes them, and truncates it once the catalog
// transaction committed (Commits are serialised: one batch at a time). So a
// crash between Publish and the catalog commit leaves the batch's keys
// there. The next writable Open appends them to <dir>/ingest.interrupted
// (fsynced; kept, one batch per crash) and removes the pending file. A blob
// no catalog row references whose key is in either file was left by an
// interrupted ingest: its source delivers it again (its checkpoint did not
// advance) and ingest links it, so Verify counts it (VerifyReport.Interrupted)
// without calling it a problem, and Reindex does not wait for it. Any other
// unreferenced blob was committed once and the catalog lost it.
//
// Cost: one small write and one fsync per batch with new content.

const (
	pendingFile     = "ingest.pending"
	interruptedFile = "ingest.interrupted"
)

// writePending records keys as the batch in flight, durably.
func (a *Archive) writePending(staged []store.Staged) error {
	var b bytes.Buffer
	for _, st := range staged {
		if st.Token != "" {
			b.WriteString(st.Key.String())
			b.WriteByte('\n')
		}
	}
	if b.Len() == 0 {
		return nil
	}
	f, err := os.OpenFile(filepath.Join(a.dir, pendingFile), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, FileMode)
	if err != nil {
		return fmt.Errorf("ingest journal: %w", err)
	}
	_, err = f.Write(b.Bytes())
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("ingest journal: %w", err)
	}
	a.pendingDirty = true
	return nil
}

// clearPending marks the batch in flight committed. Not synced: a crash
// that undoes it leaves keys the catalog references, which nothing counts.
func (a *Archive) clearPending() {
	if a.pendingDirty {
		os.Truncate(filepath.Join(a.dir, pendingFile), 0)
		a.pendingDirty = false
	}
}

// loadJournal reads the keys of interrupted ingests; a writer first moves
// the pending batch of a crashed process into the interrupted file.
func (a *Archive) loadJournal() error {
	a.interrupted = map[store.Key]bool{}
	pending := filepath.Join(a.dir, pendingFile)
	interrupted := filepath.Join(a.dir, interruptedFile)
	for _, p := range []string{interrupted, pending} {
		if err := readKeys(p, a.interrupted); err != nil {
			return err
		}
	}
	if a.opts.ReadOnly {
		return nil
	}
	return a.movePending()
}

// movePending appends the pending batch to the interrupted file: at Open
// after a crash, and when a batch's catalog commit failed after its blobs
// were published.
func (a *Archive) movePending() error {
	pending := filepath.Join(a.dir, pendingFile)
	interrupted := filepath.Join(a.dir, interruptedFile)
	data, err := os.ReadFile(pending)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && len(data) == 0) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("ingest journal: %w", err)
	}
	f, err := os.OpenFile(interrupted, os.O_WRONLY|os.O_CREATE|os.O_APPEND, FileMode)
	if err != nil {
		return fmt.Errorf("ingest journal: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Remove(pending)
	}
	if err != nil {
		return fmt.Errorf("ingest journal: %w", err)
	}
	a.pendingDirty = false
	return readKeys(interrupted, a.interrupted)
}

func readKeys(path string, into map[store.Key]bool) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("ingest journal: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, err := store.ParseKey(sc.Text()); err == nil {
			into[k] = true
		}
	}
	return nil
}
