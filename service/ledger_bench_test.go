//go:build bench && linux

package service_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"mailvault/indexer"
	"mailvault/indexer/mailfile/corpustest"
	"mailvault/internal/benchtest"
	"mailvault/ledger"
	"mailvault/service"
)

// TestBenchLedger measures what the ledger costs (issue 12): the corpus
// imported into a new archive without a ledger and with one (followed and
// signed at the end, as a one-shot import does), alternating, 3 runs; then
// ledger verify (ledger only, and the blob re-hash beside it), prove and
// the bundle's size. Run it with
//
//	MAILVAULT_CORPUS=~/.cache/mailvault/corpus go test -tags bench -run TestBenchLedger -v ./service/
func TestBenchLedger(t *testing.T) {
	root := corpustest.Maildir(t)
	ctx := context.Background()
	skey, vkey, err := ledger.GenerateKey("bench.example.com/ledger")
	if err != nil {
		t.Fatal(err)
	}
	signer, _, err := ledger.LoadSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	benchtest.Mdf(t, "Machine: %d cores, Linux, %s.", runtime.NumCPU(), runtime.Version())
	benchtest.Mdf(t, "")
	benchtest.Mdf(t, "| run | import | seconds | msg/s | of which ledger follow + sign, s | ledger leaves | ledger bytes | bytes/message |")
	benchtest.Mdf(t, "|---|---|---|---|---|---|---|---|")
	var last string
	for run := 1; run <= 3; run++ {
		for _, withLedger := range []bool{run%2 == 0, run%2 != 0} {
			data := filepath.Join(t.TempDir(), "data")
			a, err := indexer.Open(data, nil)
			if err != nil {
				t.Fatal(err)
			}
			users, err := service.OpenUsers(data)
			if err != nil {
				t.Fatal(err)
			}
			begin := time.Now()
			var lg *service.Ledger
			if withLedger {
				if lg, err = service.OpenLedger(ctx, a, users, service.LedgerOptions{Signer: signer, VerifierKey: vkey}); err != nil {
					t.Fatal(err)
				}
			}
			sum, err := service.Import(ctx, a, service.ImportRequest{Account: "sa", Paths: []string{root}}, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := a.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			what, leaves, bytes := "without ledger", int64(0), int64(0)
			var settle time.Duration
			if lg != nil {
				sb := time.Now()
				err := lg.Settle(ctx)
				settle = time.Since(sb)
				if err != nil {
					t.Fatal(err)
				}
				what, leaves = "with ledger", lg.Log.Size()
				for _, f := range []string{"leaves", "index", "hashes"} {
					fi, _ := os.Stat(filepath.Join(data, service.LedgerDir, f))
					bytes += fi.Size()
				}
			}
			el := time.Since(begin)
			n := sum.Stored + sum.Linked
			per := "—"
			if leaves > 0 {
				per = strconv.FormatInt(bytes/int64(n), 10)
			}
			benchtest.Mdf(t, "| %d | %s | %.2f | %.0f | %.2f | %d | %d | %s |", run, what, el.Seconds(), float64(n)/el.Seconds(), settle.Seconds(), leaves, bytes, per)
			if lg != nil {
				lg.Close()
				last = data
			}
			users.Close()
			a.Close()
		}
	}

	// Verify and prove on the last archive with a ledger.
	a, err := indexer.Open(last, &indexer.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	users, _ := service.OpenUsers(last)
	defer users.Close()
	lg, err := service.OpenLedger(ctx, a, users, service.LedgerOptions{Signer: signer, VerifierKey: vkey})
	if err != nil {
		t.Fatal(err)
	}
	defer lg.Close()
	begin := time.Now()
	rep, err := ledger.Verify(ctx, lg.Log, lg.Sources(), vkey)
	if err != nil || !rep.OK {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	vl := time.Since(begin)
	begin = time.Now()
	if _, err := a.Verify(ctx, nil); err != nil {
		t.Fatal(err)
	}
	vb := time.Since(begin)
	occs, _ := a.Occurrences(ctx)
	begin = time.Now()
	const proofs = 20
	var size int
	for i := range proofs {
		b, err := lg.Prove(ctx, a, occs[i*len(occs)/proofs].SHA256)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := json.Marshal(b)
		size = max(size, len(raw))
		if _, err := ledger.VerifyBundle(b, vkey); err != nil {
			t.Fatal(err)
		}
	}
	pr := time.Since(begin) / proofs
	benchtest.Mdf(t, "")
	benchtest.Mdf(t, "ledger verify (%d leaves, rows replayed): %.2f s; the blob re-hash beside it (mailvault verify): %.2f s; prove: %.1f ms a message (mean of %d, verified); largest bundle %d bytes.",
		rep.Leaves, vl.Seconds(), vb.Seconds(), float64(pr.Microseconds())/1000, proofs, size)
}
