package catalog

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// TestCoverageScale measures the journal coverage report's time and heap
// over MAILVAULT_COVERAGE_SCALE mails (outside CI: set it, e.g. 1000000),
// each journaled once (an envelope naming one of 1000 accounts' addresses)
// and harvested once into that account (other bytes, same fingerprint), a
// tenth journal-only and a tenth mailbox-only. Rows are written by SQL in
// one transaction, not through Ingest (no blobs, no index: the report reads
// the catalog only). Review of issue 16; figures in docs/benchmarks.md.
func TestCoverageScale(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("MAILVAULT_COVERAGE_SCALE"))
	if n <= 0 {
		t.Skip("set MAILVAULT_COVERAGE_SCALE to run (outside CI)")
	}
	ctx := context.Background()
	c, err := Open(filepath.Join(t.TempDir(), "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const accounts = 1000
	begin := time.Now()
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	exec := func(q string, args ...any) int64 {
		r, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		id, _ := r.LastInsertId()
		return id
	}
	addresses := map[string][]string{}
	jacct := exec(`INSERT INTO accounts(name) VALUES ('journal')`)
	jbox := exec(`INSERT INTO mailboxes(account_id, name, source, uidvalidity) VALUES (?, 'Journal', 'journal', 1)`, jacct)
	boxes := make([]int64, accounts)
	for i := range accounts {
		a := exec(`INSERT INTO accounts(name) VALUES (?)`, fmt.Sprintf("u%d", i))
		boxes[i] = exec(`INSERT INTO mailboxes(account_id, name, source, uidvalidity) VALUES (?, 'INBOX', 'imap', 1)`, a)
		addresses[fmt.Sprintf("u%d@example.org", i)] = []string{fmt.Sprintf("u%d", i)}
	}
	msg, err := tx.PrepareContext(ctx, `INSERT INTO messages(sha256, size, date_unix, message_id, stored_at, fingerprint, fingerprint_v)
		VALUES (?, 100, ?, ?, '2026-12-01T00:00:00Z', ?, 1)`)
	if err != nil {
		t.Fatal(err)
	}
	occ, _ := tx.PrepareContext(ctx, `INSERT INTO occurrences(mailbox_id, uidvalidity, uid, message_id, size, first_seen) VALUES (?, 1, ?, ?, 100, '2026-12-01T00:00:00Z')`)
	env, _ := tx.PrepareContext(ctx, `INSERT INTO envelopes(mailbox_id, uidvalidity, uid, message_id, mail_from, rcpt_to, recipients, listener, received_at, digest)
		VALUES (?, 1, ?, ?, 'zed@example.org', ?, ?, 'smtp', '2026-01-01T00:00:00Z', x'00')`)
	var key [16]byte
	uid := make([]uint32, accounts)
	var juid uint32
	for i := range n {
		fp := fmt.Sprintf("%064x", sha256.Sum256(binary.AppendUvarint(key[:0], uint64(i))))
		acct := i % accounts
		rc := fmt.Sprintf(`["u%d@example.org"]`, acct)
		if i%10 != 0 { // journaled
			sum := sha256.Sum256([]byte("j" + fp))
			r, err := msg.ExecContext(ctx, sum[:], 1780000000+i, fmt.Sprintf("<%d@x>", i), fp)
			if err != nil {
				t.Fatal(err)
			}
			id, _ := r.LastInsertId()
			juid++
			if _, err := occ.ExecContext(ctx, jbox, juid, id); err != nil {
				t.Fatal(err)
			}
			if _, err := env.ExecContext(ctx, jbox, juid, id, rc, rc); err != nil {
				t.Fatal(err)
			}
		}
		if i%10 != 1 { // harvested
			sum := sha256.Sum256([]byte("m" + fp))
			r, err := msg.ExecContext(ctx, sum[:], 1780000000+i, fmt.Sprintf("<%d@x>", i), fp)
			if err != nil {
				t.Fatal(err)
			}
			id, _ := r.LastInsertId()
			uid[acct]++
			if _, err := occ.ExecContext(ctx, boxes[acct], uid[acct], id); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d mails written in %v", n, time.Since(begin).Round(time.Millisecond))

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var peak atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var m runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				runtime.ReadMemStats(&m)
				if m.HeapInuse > peak.Load() {
					peak.Store(m.HeapInuse)
				}
			}
		}
	}()
	begin = time.Now()
	cov, err := c.JournalCoverage(ctx, CoverageInput{Addresses: addresses})
	el := time.Since(begin)
	close(stop)
	<-done
	if err != nil {
		t.Fatal(err)
	}
	var both, jonly, monly int
	for _, a := range cov.Accounts {
		both, jonly, monly = both+a.Both, jonly+a.JournalOnly, monly+a.MailboxOnly
	}
	t.Logf("coverage of %d mails, %d accounts: %v, heap in use peak %d MiB above %d MiB before; both %d, journal only %d, mailbox only %d",
		n, len(cov.Accounts), el.Round(time.Millisecond), (peak.Load()-min(peak.Load(), before.HeapInuse))>>20, before.HeapInuse>>20, both, jonly, monly)
	if both != n*8/10 || jonly != n/10 || monly != n/10 {
		t.Errorf("both %d, journal only %d, mailbox only %d; want %d, %d, %d", both, jonly, monly, n*8/10, n/10, n/10)
	}
}
