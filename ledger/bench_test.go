//go:build bench

package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// TestBenchLedgerScale builds the ledger of an archive of N messages (one
// message and one occurrence leaf each, and an audit leaf per 10 messages:
// what 200,000 messages give, without importing them) from in-memory rows,
// then times Verify (rebuild, checkpoint, replay) and a proof. N comes from
// LEDGER_N (default 200000). Run it with
//
//	go test -tags bench -run TestBenchLedgerScale -v ./ledger/
func TestBenchLedgerScale(t *testing.T) {
	n := 200000
	if v, err := strconv.Atoi(os.Getenv("LEDGER_N")); err == nil && v > 0 {
		n = v
	}
	dir := t.TempDir()
	l, err := Open(filepath.Join(dir, "ledger"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	src := &memSource{rows: map[string][]Leaf{}}
	for i := 1; i <= n; i++ {
		sha := fmt.Sprintf("%064x", i*7919)
		src.rows[KindMessage] = append(src.rows[KindMessage], Leaf{Kind: KindMessage, ID: int64(i), SHA256: sha, Size: int64(2000 + i%30000)})
		src.rows[KindOccurrence] = append(src.rows[KindOccurrence], Leaf{Kind: KindOccurrence, ID: int64(i), SHA256: sha,
			Account: "user" + strconv.Itoa(i%50), Mailbox: "INBOX/folder" + strconv.Itoa(i%20), UIDValidity: 1700000000, UID: uint32(i)})
		if i%10 == 0 {
			src.rows[KindAudit] = append(src.rows[KindAudit], Leaf{Kind: KindAudit, ID: int64(i / 10), At: "2026-12-01T10:00:00.123456789Z",
				User: "operator:root", Action: "search", Detail: "in all accounts: human: invoice from:bob", Remote: "local"})
		}
	}
	sources := map[string]Source{KindMessage: src, KindOccurrence: src, KindAudit: src}
	f := &Follower{Log: l, Sources: sources}
	skey, vkey, _ := GenerateKey("bench.example.com/ledger")
	signer, _, _ := LoadSigner(skey)

	begin := time.Now()
	added, err := f.Follow(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	follow := time.Since(begin)
	if _, err := l.WriteCheckpoint(signer, ""); err != nil {
		t.Fatal(err)
	}
	var bytes int64
	for _, name := range []string{leavesFile, indexFile, hashesFile} {
		fi, _ := os.Stat(filepath.Join(l.dir, name))
		bytes += fi.Size()
	}
	runtime.GC()
	var ms0, ms runtime.MemStats
	runtime.ReadMemStats(&ms0)
	begin = time.Now()
	rep, err := Verify(context.Background(), l, sources, vkey)
	if err != nil || !rep.OK {
		t.Fatalf("verify: %v %+v", err, rep.Problems)
	}
	verify := time.Since(begin)
	runtime.ReadMemStats(&ms)

	signed, _ := os.ReadFile(filepath.Join(l.dir, Latest))
	begin = time.Now()
	const proofs = 100
	var size int
	for i := range proofs {
		idx, err := l.LeafByID(KindMessage, int64(1+i*n/proofs))
		if err != nil {
			t.Fatal(err)
		}
		b, err := l.Prove(idx, signed, vkey)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := VerifyBundle(b, vkey); err != nil {
			t.Fatal(err)
		}
		raw, _ := json.Marshal(b)
		size = max(size, len(raw))
	}
	prove := time.Since(begin) / proofs
	t.Logf("| %d | %d | %.2f | %.0f | %d | %.0f | %.2f | %.0f | %.2f | %d |", n, added, follow.Seconds(), float64(added)/follow.Seconds(),
		bytes, float64(bytes)/float64(n), verify.Seconds(), float64(ms.TotalAlloc-ms0.TotalAlloc)/(1<<20), float64(prove.Microseconds())/1000, size)
}
