package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailvault/ledger"
	"mailvault/ledger/tsatest"
)

// TestLedgerTimestampsCLI: with ledger.tsa_url pointing at an in-process
// TSA, a checkpoint gets its RFC 3161 token beside it, prove puts it in the
// bundle, verify-proof prints the TSA's time (and checks it against
// --tsa-roots), ledger verify checks every token and names a swapped one,
// and a TSA that is down does not stop the checkpoint.
func TestLedgerTimestampsCLI(t *testing.T) {
	data, pub, msgs := ledgerArchive(t, 12)
	tsa, stranger := tsatest.New(t), tsatest.New(t)
	dir := t.TempDir()
	roots := filepath.Join(dir, "tsa-roots.pem")
	os.WriteFile(roots, tsa.RootsPEM, 0o600)
	strangerRoots := filepath.Join(dir, "stranger.pem")
	os.WriteFile(strangerRoots, stranger.RootsPEM, 0o600)
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("data_dir: %s\nledger:\n  tsa_url: %s\n  tsa_ca_file: %s\n  tsa_timeout: 5s\n", data, tsa.URL, roots)), 0o600)
	cpDir := filepath.Join(data, "ledger", ledger.CheckpointDir)
	when := tsa.Time.UTC().Format(time.RFC3339)

	checkpoint := func() (size int64, out string) {
		t.Helper()
		r := inProcess(t, "ledger", "checkpoint", "--config", cfg)
		if r.code != 0 {
			t.Fatalf("ledger checkpoint: %d %s %s", r.code, r.stdout, r.stderr)
		}
		if _, err := fmt.Sscanf(r.stdout[strings.Index(r.stdout, ", ")+2:], "%d leaves", &size); err != nil {
			t.Fatalf("ledger checkpoint said %q: %v", r.stdout, err)
		}
		return size, r.stdout
	}
	n1, out := checkpoint()
	if !strings.Contains(out, "timestamp: "+when+" by ") || !strings.Contains(out, "mailvault test TSA") {
		t.Fatalf("ledger checkpoint with a TSA: %q, want the TSA's time %s", out, when)
	}
	tsr1, err := os.ReadFile(filepath.Join(cpDir, fmt.Sprintf("%d.tsr", n1)))
	if err != nil {
		t.Fatal(err)
	}

	// prove carries the token; verify-proof checks it offline.
	bundle := filepath.Join(dir, "proof.json")
	if r := inProcess(t, "prove", "--data", data, "--out", bundle, shaHex(msgs[4])); r.code != 0 {
		t.Fatalf("prove: %d %s %s", r.code, r.stdout, r.stderr)
	}
	b, err := ledger.ReadBundle(bundle)
	if err != nil {
		t.Fatal(err)
	}
	if b.TreeSize != n1 || string(b.Timestamp) != string(tsr1) {
		t.Fatalf("the bundle is against %d leaves with a %d-byte timestamp; want %d and the checkpoint's token", b.TreeSize, len(b.Timestamp), n1)
	}
	r := inProcess(t, "verify-proof", bundle, "--key", pub)
	if r.code != 0 || !strings.Contains(r.stdout, "timestamped: "+when) || !strings.Contains(r.stdout, "own certificate only") {
		t.Fatalf("verify-proof: %d %q %s", r.code, r.stdout, r.stderr)
	}
	r = inProcess(t, "verify-proof", bundle, "--key", pub, "--tsa-roots", roots, "--json")
	var res struct {
		OK        bool      `json:"ok"`
		Timestamp time.Time `json:"timestamp"`
		Roots     bool      `json:"tsa_roots_checked"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || r.code != 0 || !res.OK || !res.Timestamp.Equal(tsa.Time) || !res.Roots {
		t.Fatalf("verify-proof --tsa-roots --json: %d %s %v", r.code, r.stdout, err)
	}
	if r := inProcess(t, "verify-proof", bundle, "--key", pub, "--tsa-roots", strangerRoots); r.code != 1 || !strings.Contains(r.stdout, "FAILED") {
		t.Errorf("verify-proof against another TSA's roots: %d %q, want 1", r.code, r.stdout)
	}
	if r := inProcess(t, "ledger", "verify", "--config", cfg, "--key", pub, "--no-blobs"); r.code != 0 || !strings.Contains(r.stdout, " 1 timestamps checked") {
		t.Fatalf("ledger verify: %d %s %s", r.code, r.stdout, r.stderr)
	}

	// A second checkpoint, then each bad token is refused and named.
	n2, _ := checkpoint()
	tsr2, err := os.ReadFile(filepath.Join(cpDir, fmt.Sprintf("%d.tsr", n2)))
	if n2 <= n1 || err != nil {
		t.Fatalf("second checkpoint of %d leaves (first %d): %v", n2, n1, err)
	}
	corrupt := append([]byte(nil), tsr1...)
	corrupt[len(corrupt)-8] ^= 0x20
	for _, c := range []struct {
		name string
		tsr  []byte
	}{
		{"another checkpoint's token", tsr2},
		{"a corrupted token", corrupt},
		{"another TSA's token", mustAsk(t, stranger, []byte(b.Checkpoint))},
	} {
		t.Run(c.name, func(t *testing.T) {
			bb := *b
			bb.Timestamp = c.tsr
			raw, _ := json.Marshal(&bb)
			bad := filepath.Join(t.TempDir(), "bad.json")
			os.WriteFile(bad, raw, 0o600)
			if r := inProcess(t, "verify-proof", bad, "--key", pub, "--tsa-roots", roots); r.code != 1 || !strings.Contains(r.stdout, "timestamp") {
				t.Errorf("verify-proof: %d %q, want 1 and the timestamp named", r.code, r.stdout)
			}
			path := filepath.Join(cpDir, fmt.Sprintf("%d.tsr", n1))
			os.WriteFile(path, c.tsr, 0o600)
			defer os.WriteFile(path, tsr1, 0o600)
			r := inProcess(t, "ledger", "verify", "--config", cfg, "--key", pub, "--no-blobs")
			if r.code != 1 || !strings.Contains(r.stdout, "PROBLEM timestamp: "+path) {
				t.Errorf("ledger verify: %d %s, want 1 and %s named", r.code, r.stdout, path)
			}
		})
	}

	// The TSA down: the checkpoint is still written, without a token, and
	// the failure is said; verify stays clean.
	tsa.Close()
	n3, out := checkpoint()
	if !strings.Contains(out, "timestamp: FAILED") {
		t.Errorf("checkpoint with the TSA down: %q, want the failure said", out)
	}
	if _, err := os.Stat(filepath.Join(cpDir, fmt.Sprintf("%d.txt", n3))); err != nil {
		t.Errorf("no checkpoint written with the TSA down: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cpDir, fmt.Sprintf("%d.tsr", n3))); err == nil {
		t.Error("a token was stored with the TSA down")
	}
	if r := inProcess(t, "ledger", "verify", "--config", cfg, "--key", pub, "--no-blobs"); r.code != 0 || !strings.Contains(r.stdout, " 2 timestamps checked") {
		t.Errorf("ledger verify after a failed timestamp: %d %s", r.code, r.stdout)
	}

	// A bad tsa_url is refused with the key named.
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("data_dir: "+data+"\nledger:\n  tsa_url: tsa.example.org\n"), 0o600)
	if r := inProcess(t, "ledger", "checkpoint", "--config", bad); r.code == 0 || !strings.Contains(r.stderr, "ledger.tsa_url") {
		t.Errorf("a tsa_url without a scheme: %d %s", r.code, r.stderr)
	}
}

func mustAsk(t *testing.T, tsa *tsatest.TSA, data []byte) []byte {
	t.Helper()
	raw, err := tsatest.Ask(tsa.URL, data)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestServeTimestampsCheckpoints: serve, configured with a TSA, stamps the
// checkpoints it writes (in the background) and prove through it carries
// the token.
func TestServeTimestampsCheckpoints(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildMailvault(t)
	data, pub, msgs := ledgerArchive(t, 6)
	tsa := tsatest.New(t)
	dir := t.TempDir()
	roots := filepath.Join(dir, "tsa-roots.pem")
	os.WriteFile(roots, tsa.RootsPEM, 0o600)
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("data_dir: %s\nledger:\n  tsa_url: %s\n  tsa_ca_file: %s\n", data, tsa.URL, roots)), 0o600)
	srv := startServe(t, bin, data, "--config", cfg)

	r := runBinary(t, bin, 0, "ledger", "checkpoint", "--data", data, "--json")
	var cp struct {
		Size int64 `json:"size"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &cp); err != nil || r.code != 0 {
		t.Fatalf("ledger checkpoint through serve: %d %s %s", r.code, r.stdout, r.stderr)
	}
	tsr := filepath.Join(data, "ledger", ledger.CheckpointDir, fmt.Sprintf("%d.tsr", cp.Size))
	waitUntilT(t, "the checkpoint's token", func() bool { _, err := os.Stat(tsr); return err == nil })

	bundle := filepath.Join(dir, "proof.json")
	if r := runBinary(t, bin, 0, "prove", "--data", data, "--out", bundle, shaHex(msgs[2])); r.code != 0 {
		t.Fatalf("prove through serve: %d %s", r.code, r.stderr)
	}
	if r := inProcess(t, "verify-proof", bundle, "--key", pub, "--tsa-roots", roots); r.code != 0 || !strings.Contains(r.stdout, "timestamped: ") {
		t.Errorf("verify-proof of serve's bundle: %d %q", r.code, r.stdout)
	}
	srv.stop(t)
	if r := inProcess(t, "ledger", "verify", "--config", cfg, "--key", pub, "--no-blobs"); r.code != 0 || strings.Contains(r.stdout, " 0 timestamps checked") {
		t.Errorf("ledger verify after serve: %d %s", r.code, r.stdout)
	}
	if tsa.Requests.Load() == 0 {
		t.Error("serve never asked the TSA")
	}
}
