package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"mailvault/ledger"
	"mailvault/ledger/tsatest"
)

// lockedBuffer is a log sink the stamper goroutine may write while a test
// reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *lockedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// tsaLedger is a service whose ledger signs and has tsa stamp its
// checkpoints; audit adds a leaf.
func tsaLedger(t *testing.T, tsa *ledger.TSA) (s *Service, lg *Ledger, logs *lockedBuffer, audit func()) {
	t.Helper()
	a, users := newArchive(t)
	skey, _, err := ledger.GenerateKey("archive.example.com/tsa")
	if err != nil {
		t.Fatal(err)
	}
	signer, vkey, err := ledger.LoadSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	logs = &lockedBuffer{}
	lg, err = OpenLedger(context.Background(), a, users, LedgerOptions{Signer: signer, VerifierKey: vkey, TSA: tsa,
		Logger: slog.New(slog.NewTextHandler(logs, nil)), Every: 1 << 30, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lg.Close() })
	n := 0
	audit = func() {
		t.Helper()
		n++
		if err := users.Audit(context.Background(), AuditEntry{User: "op", Action: "test", Detail: fmt.Sprint(n)}); err != nil {
			t.Fatal(err)
		}
		if err := lg.Follow(context.Background(), false); err != nil {
			t.Fatal(err)
		}
	}
	return New(a, &Options{Users: users, Ledger: lg}), lg, logs, audit
}

// Checkpoints are stamped in the background: a slow TSA does not hold up
// the checkpoint, the newest checkpoint is always stamped however fast they
// come, and waiters get the outcome.
func TestLedgerStampsInBackground(t *testing.T) {
	tsa := tsatest.New(t)
	tsa.Delay = 1500 * time.Millisecond
	_, lg, _, audit := tsaLedger(t, &ledger.TSA{URL: tsa.URL, Roots: tsa.Roots, Timeout: 5 * time.Second})
	var sizes []int64
	for range 5 {
		audit()
		start := time.Now()
		c, err := lg.Checkpoint()
		if err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("Checkpoint waited %v for a TSA that takes 1.5s", d)
		}
		sizes = append(sizes, c.Size)
	}
	st, err := lg.WaitTimestamp()
	if err != nil || st == nil || !st.Time.Equal(tsa.Time) {
		t.Fatalf("WaitTimestamp = %+v, %v; want the TSA's time %v", st, err, tsa.Time)
	}
	newest := sizes[len(sizes)-1]
	if _, err := lg.Log.ReadTimestamp(newest); err != nil {
		t.Errorf("the newest checkpoint (%d leaves) has no token: %v", newest, err)
	}
	ok, failed := lg.TimestampCounts()
	if ok < 2 || ok > int64(len(sizes)) || failed != 0 {
		t.Errorf("counts ok %d failed %d; want 2..%d stamped (the first, then the newest waiting), none failed", ok, failed, len(sizes))
	}
	// Checkpoints from several goroutines at once (go test -race).
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lg.Checkpoint()
		}()
	}
	wg.Wait()
	if _, err := lg.WaitTimestamp(); err != nil {
		t.Error(err)
	}
}

// A TSA that fails: the checkpoint is written all the same, the failure is
// logged and counted (and in the metrics), and the next checkpoint tries
// again and is stamped.
func TestLedgerTSAFailureDoesNotStop(t *testing.T) {
	tsa := tsatest.New(t)
	tsa.SetLie(tsatest.Reject)
	s, lg, logs, audit := tsaLedger(t, &ledger.TSA{URL: tsa.URL, Timeout: 5 * time.Second})
	audit()
	c, err := lg.Checkpoint()
	if err != nil {
		t.Fatalf("Checkpoint with the TSA refusing: %v", err)
	}
	if _, err := lg.WaitTimestamp(); err == nil || !errors.Is(err, ledger.ErrTimestamp) {
		t.Errorf("WaitTimestamp = %v, want the refusal", err)
	}
	if _, err := os.Stat(lg.Log.Dir() + "/" + ledger.CheckpointDir + fmt.Sprintf("/%d.txt", c.Size)); err != nil {
		t.Errorf("the checkpoint was not written: %v", err)
	}
	if _, err := lg.Log.ReadTimestamp(c.Size); err == nil {
		t.Error("a refused token was stored")
	}
	if !strings.Contains(logs.String(), "not timestamped") || !strings.Contains(logs.String(), "rejected") {
		t.Errorf("the failure was not logged: %q", logs.String())
	}
	rec := httptest.NewRecorder()
	s.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	if !strings.Contains(string(body), "mailvault_ledger_timestamp_failures_total 1") || !strings.Contains(string(body), "mailvault_ledger_timestamps_total 0") {
		t.Errorf("metrics do not count the failure:\n%s", grepLines(string(body), "mailvault_ledger_"))
	}

	tsa.SetLie(tsatest.Honest)
	audit()
	c2, err := lg.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lg.WaitTimestamp(); err != nil {
		t.Errorf("the next checkpoint, the TSA back: %v", err)
	}
	if _, err := lg.Log.ReadTimestamp(c2.Size); err != nil {
		t.Errorf("the next checkpoint has no token: %v", err)
	}
	if ok, failed := lg.TimestampCounts(); ok != 1 || failed != 1 {
		t.Errorf("counts ok %d failed %d, want 1 and 1", ok, failed)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
