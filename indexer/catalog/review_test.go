package catalog

import (
	"context"
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
)

// TestReviewRecordIngestConcurrent: batches recorded at once from several
// goroutines (each its own transaction with its own prepared statements),
// overlapping in messages and occurrences, and the same batch recorded
// twice, give each message one row and each occurrence one, and every
// batch's outcomes add up; a transaction's statements fail cleanly after
// its commit.
func TestReviewRecordIngestConcurrent(t *testing.T) {
	ctx := context.Background()
	c, err := Open(filepath.Join(t.TempDir(), "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var mbs []int64
	for _, name := range []string{"INBOX", "Sent", "Archive"} {
		mb, err := c.EnsureMailbox(ctx, "alice", name, SourceIMAP, 5)
		if err != nil {
			t.Fatal(err)
		}
		mbs = append(mbs, mb.ID)
	}
	const msgs = 60
	batch := func(g int) []Arrival {
		var out []Arrival
		for i := range 40 {
			k := (g*17 + i) % msgs
			sha := sha256.Sum256(fmt.Appendf(nil, "m%d", k))
			mb := mbs[(g+i)%len(mbs)]
			out = append(out, Arrival{Message: &Message{SHA256: sha, Size: int64(100 + k), Subject: fmt.Sprint("s", k)},
				Occurrence: Occurrence{MailboxID: mb, UIDValidity: 5, UID: uint32(1 + k)}, Checkpoint: true})
		}
		return out
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 2 { // the same batch twice: the second finds it all present
				rec, err := c.RecordIngest(ctx, batch(g%8))
				if err != nil {
					errs <- err
					return
				}
				if len(rec) != 40 {
					errs <- fmt.Errorf("%d outcomes for 40 arrivals", len(rec))
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	n, err := c.CountMessages(ctx)
	if err != nil || n != msgs {
		t.Errorf("%d messages (%v), want %d", n, err, msgs)
	}
	occ := map[string]bool{}
	for g := range 8 {
		for _, a := range batch(g) {
			occ[fmt.Sprint(a.Occurrence.MailboxID, "/", a.Occurrence.UID)] = true
		}
	}
	rows, err := c.Occurrences(ctx)
	if err != nil || len(rows) != len(occ) {
		t.Errorf("%d occurrences (%v), want %d", len(rows), err, len(occ))
	}
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.MessageID(ctx, sha256.Sum256([]byte("m1"))); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.MessageID(ctx, sha256.Sum256([]byte("m1"))); err == nil {
		t.Error("a prepared statement ran after its transaction's commit")
	}
	if err := tx.Rollback(); err != nil {
		t.Errorf("rollback after commit: %v", err)
	}
}
