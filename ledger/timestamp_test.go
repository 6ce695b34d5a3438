package ledger_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailvault/ledger"
	"mailvault/ledger/tsatest"
)

// stampedLog is a ledger of n message leaves with one signed checkpoint
// (copied to copyDir when not empty).
func stampedLog(t *testing.T, n int, copyDir string) (l *ledger.Log, vkey string, signed []byte) {
	t.Helper()
	skey, vkey, err := ledger.GenerateKey("archive.example.com/tsa")
	if err != nil {
		t.Fatal(err)
	}
	s, _, err := ledger.LoadSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	l, err = ledger.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var leaves [][]byte
	for i := range n {
		leaves = append(leaves, ledger.Leaf{Kind: ledger.KindMessage, ID: int64(i + 1), SHA256: fmt.Sprintf("%064x", i), Size: 100}.Encode())
	}
	if _, err := l.Append(leaves, false); err != nil {
		t.Fatal(err)
	}
	c, err := l.WriteCheckpoint(s, copyDir)
	if err != nil {
		t.Fatal(err)
	}
	signed, err = os.ReadFile(filepath.Join(l.Dir(), ledger.CheckpointDir, fmt.Sprintf("%d.txt", c.Size)))
	if err != nil {
		t.Fatal(err)
	}
	return l, vkey, signed
}

func verifyReport(t *testing.T, l *ledger.Log, vkey string, tsa *tsatest.TSA, dirs ...string) *ledger.Report {
	t.Helper()
	var roots = tsa.Roots
	r, err := ledger.VerifyTimestamped(context.Background(), l, nil, vkey, roots, dirs...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestCheckpointTimestamped(t *testing.T) {
	tsa := tsatest.New(t)
	copyDir := t.TempDir()
	l, vkey, signed := stampedLog(t, 40, copyDir)
	st, err := l.StampCheckpoint(context.Background(), &ledger.TSA{URL: tsa.URL, Roots: tsa.Roots}, 40, copyDir)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Time.Equal(tsa.Time) || !strings.Contains(st.TSA, "mailvault test TSA") {
		t.Errorf("stamp = %+v, want time %v from the test TSA", st, tsa.Time)
	}
	tsr, err := l.ReadTimestamp(40)
	if err != nil {
		t.Fatal(err)
	}
	if cp, err := os.ReadFile(filepath.Join(copyDir, "40.tsr")); err != nil || string(cp) != string(tsr) {
		t.Errorf("copy_dir's token: %v (equal: %v)", err, string(cp) == string(tsr))
	}
	if _, err := ledger.VerifyTimestamp(tsr, signed, tsa.Roots); err != nil {
		t.Errorf("the stored token: %v", err)
	}
	// Stamping the same checkpoint again keeps the token (no request).
	before := tsa.Requests.Load()
	if _, err := l.StampCheckpoint(context.Background(), &ledger.TSA{URL: tsa.URL}, 40, copyDir); err != nil || tsa.Requests.Load() != before {
		t.Errorf("stamping again: %v, %d requests, want none", err, tsa.Requests.Load()-before)
	}
	if r := verifyReport(t, l, vkey, tsa, copyDir); !r.OK || r.Timestamps != 2 {
		t.Errorf("verify: ok %v, %d timestamps (want 2): %+v", r.OK, r.Timestamps, r.Problems)
	}

	// The bundle carries the token, and it gives the TSA's time.
	b, err := l.Prove(7, signed, vkey)
	if err != nil {
		t.Fatal(err)
	}
	if string(b.Timestamp) != string(tsr) {
		t.Fatal("the bundle does not carry the checkpoint's token")
	}
	raw, _ := json.Marshal(b)
	var back ledger.Bundle
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if len(raw) > 8192 {
		t.Errorf("a bundle with its timestamp is %d bytes, want a few KB", len(raw))
	}
	v, err := ledger.VerifyBundle(&back, vkey)
	if err != nil {
		t.Fatal(err)
	}
	if !v.Time.Equal(tsa.Time) || v.TSA != st.TSA {
		t.Errorf("verified time %v by %q, want the TSA's %v by %q", v.Time, v.TSA, tsa.Time, st.TSA)
	}
	if _, err := ledger.VerifyBundleTimestamp(&back, vkey, tsa.Roots); err != nil {
		t.Errorf("against the TSA's root: %v", err)
	}
}

// Every bad token is refused by the bundle's check and reported by verify.
func TestBadTimestampsRefused(t *testing.T) {
	ctx := context.Background()
	tsa, other := tsatest.New(t), tsatest.New(t)
	l, vkey, signed := stampedLog(t, 30, "")
	if _, err := l.StampCheckpoint(ctx, &ledger.TSA{URL: tsa.URL}, 30, ""); err != nil {
		t.Fatal(err)
	}
	good, _ := l.ReadTimestamp(30)
	b, err := l.Prove(3, signed, vkey)
	if err != nil || b.Timestamp == nil {
		t.Fatalf("prove: %v, timestamp %d bytes", err, len(b.Timestamp))
	}
	// A token of another checkpoint: a second ledger's, by the same TSA.
	l2, _, _ := stampedLog(t, 31, "")
	if _, err := l2.StampCheckpoint(ctx, &ledger.TSA{URL: tsa.URL}, 31, ""); err != nil {
		t.Fatal(err)
	}
	otherCheckpoint, _ := l2.ReadTimestamp(31)
	// A token by another TSA, honest in itself.
	otherTSA, _, err := (&ledger.TSA{URL: other.URL}).Request(ctx, signed)
	if err != nil {
		t.Fatal(err)
	}
	// A token signed by a key that is not its certificate's: the lying
	// TSA's answer, which Request refuses, made here by hand.
	tsa.SetLie(tsatest.WrongKey)
	if _, _, err := (&ledger.TSA{URL: tsa.URL}).Request(ctx, signed); err == nil {
		t.Fatal("Request took a token signed by another key")
	}
	tsa.SetLie(tsatest.Honest)
	wrongKey := forgedBy(t, tsa, tsatest.WrongKey, signed)
	corrupt := append([]byte(nil), good...)
	corrupt[len(corrupt)-10] ^= 0x40 // in the signature

	cases := []struct {
		name    string
		tsr     []byte
		roots   bool // refused only when checked against the TSA's roots
		inWords string
	}{
		{"another checkpoint's token", otherCheckpoint, false, "another checkpoint"},
		{"signed by another key", wrongKey, false, "verif"},
		{"corrupted", corrupt, false, ""},
		{"truncated", good[:len(good)/2], false, ""},
		{"empty", []byte{}, false, ""},
		{"another TSA's, checked against our TSA's root", otherTSA, true, "certificate"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var roots = tsa.Roots
			if !c.roots {
				roots = nil
			}
			bb := *b
			bb.Timestamp = c.tsr
			_, err := ledger.VerifyBundleTimestamp(&bb, vkey, roots)
			if !errors.Is(err, ledger.ErrProof) {
				t.Fatalf("bundle with it: %v, want ErrProof", err)
			}
			if !strings.Contains(err.Error(), c.inWords) {
				t.Errorf("error %q does not say %q", err, c.inWords)
			}
			// The same token beside the checkpoint: ledger verify names it.
			path := filepath.Join(l.Dir(), ledger.CheckpointDir, "30.tsr")
			if err := os.WriteFile(path, c.tsr, 0o600); err != nil {
				t.Fatal(err)
			}
			defer os.WriteFile(path, good, 0o600)
			r, err := ledger.VerifyTimestamped(ctx, l, nil, vkey, roots)
			if err != nil {
				t.Fatal(err)
			}
			if r.OK || len(r.Problems) != 1 || r.Problems[0].Kind != "timestamp" || !strings.Contains(r.Problems[0].What, "30.tsr") {
				t.Errorf("verify: ok %v, problems %+v; want the one timestamp named", r.OK, r.Problems)
			}
		})
	}
	// Without roots another TSA's token is only self-consistent, and says
	// whose it is; a checker must look at who that is.
	bb := *b
	bb.Timestamp = otherTSA
	if v, err := ledger.VerifyBundle(&bb, vkey); err != nil || v.TSA == "" {
		t.Errorf("another TSA's token, no roots: %v %+v", err, v)
	}
	// A bundle whose timestamp field was emptied ("timestamp": "") is
	// refused, not taken as unstamped.
	raw, _ := json.Marshal(b)
	var emptied ledger.Bundle
	json.Unmarshal([]byte(strings.Replace(string(raw), `"timestamp":"`, `"timestamp":"","x":"`, 1)), &emptied)
	if _, err := ledger.VerifyBundle(&emptied, vkey); err == nil {
		t.Error("a bundle with an empty timestamp verifies")
	}
	// A token with no checkpoint beside it: the checkpoint was removed.
	os.Rename(filepath.Join(l.Dir(), ledger.CheckpointDir, "30.txt"), filepath.Join(t.TempDir(), "30.txt"))
	r, err := ledger.VerifyTimestamped(ctx, l, nil, vkey, nil)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range r.Problems {
		found = found || (p.Kind == "timestamp" && strings.Contains(p.What, "removed"))
	}
	if !found {
		t.Errorf("a token without its checkpoint is not reported: %+v", r.Problems)
	}
}

// forgedBy has the TSA lie to a request over signed and returns its raw
// answer, bypassing Request's checks (which refuse it).
func forgedBy(t *testing.T, tsa *tsatest.TSA, lie tsatest.Lie, signed []byte) []byte {
	t.Helper()
	tsa.SetLie(lie)
	defer tsa.SetLie(tsatest.Honest)
	raw, err := tsatest.Ask(tsa.URL, signed)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// A TSA that lies or is down is refused by Request and stores nothing.
func TestTSAFailures(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name string
		lie  tsatest.Lie
		want string
	}{
		{"wrong nonce", tsatest.WrongNonce, "nonce"},
		{"wrong imprint", tsatest.WrongImprint, "another checkpoint"},
		{"wrong key", tsatest.WrongKey, "verif"},
		{"rejection", tsatest.Reject, "rejected"},
		{"garbage", tsatest.Garbage, "asn1"},
		{"down", -1, "connection refused"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tsa := tsatest.New(t)
			if c.lie < 0 {
				tsa.Close()
			} else {
				tsa.SetLie(c.lie)
			}
			l, _, _ := stampedLog(t, 5, "")
			start := time.Now()
			_, err := l.StampCheckpoint(ctx, &ledger.TSA{URL: tsa.URL, Timeout: 5 * time.Second}, 5, "")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("StampCheckpoint: %v, want an error saying %q", err, c.want)
			}
			if time.Since(start) > 5*time.Second {
				t.Errorf("took %v", time.Since(start))
			}
			if _, err := l.ReadTimestamp(5); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a token was stored: %v", err)
			}
			// The next try, with the TSA honest again, stamps.
			if c.lie >= 0 {
				tsa.SetLie(tsatest.Honest)
				if _, err := l.StampCheckpoint(ctx, &ledger.TSA{URL: tsa.URL}, 5, ""); err != nil {
					t.Errorf("the next try: %v", err)
				}
			}
		})
	}
}

// A TSA that answers too slowly is given up after the timeout.
func TestTSATimeout(t *testing.T) {
	tsa := tsatest.New(t)
	tsa.Delay = 3 * time.Second
	l, _, _ := stampedLog(t, 5, "")
	start := time.Now()
	_, err := l.StampCheckpoint(context.Background(), &ledger.TSA{URL: tsa.URL, Timeout: 200 * time.Millisecond}, 5, "")
	if err == nil || time.Since(start) > 2*time.Second {
		t.Errorf("a slow TSA: %v after %v, want a timeout after 200ms", err, time.Since(start))
	}
}

// The stored token is what OpenSSL reads: `openssl ts -verify` checks it
// against the checkpoint file beside it and the TSA's root, as docs/ledger.md
// tells a third party to, and refuses it for other bytes.
func TestOpenSSLVerifiesToken(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("no openssl")
	}
	tsa := tsatest.New(t)
	l, _, _ := stampedLog(t, 9, "")
	if _, err := l.StampCheckpoint(context.Background(), &ledger.TSA{URL: tsa.URL, Roots: tsa.Roots}, 9, ""); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(l.Dir(), ledger.CheckpointDir)
	roots := filepath.Join(t.TempDir(), "roots.pem")
	os.WriteFile(roots, tsa.RootsPEM, 0o600)
	out, err := exec.Command(openssl, "ts", "-verify", "-data", filepath.Join(dir, "9.txt"), "-in", filepath.Join(dir, "9.tsr"), "-CAfile", roots).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Verification: OK") {
		t.Fatalf("openssl ts -verify: %v\n%s", err, out)
	}
	other := filepath.Join(t.TempDir(), "other.txt")
	os.WriteFile(other, []byte("another checkpoint\n"), 0o600)
	if out, err := exec.Command(openssl, "ts", "-verify", "-data", other, "-in", filepath.Join(dir, "9.tsr"), "-CAfile", roots).CombinedOutput(); err == nil {
		t.Errorf("openssl verified the token for other bytes:\n%s", out)
	}
}
