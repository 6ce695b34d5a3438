//go:build unix

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"

	"mailvault/harvest/dovecottest"
	"mailvault/harvest/harvesttest"
	"mailvault/service"
)

// TestDovecotStatusCheck: `status --check --json --out` without serve
// checks the configured account against the real Dovecot and prints (and
// keeps) the completeness report: on a fresh archive every UID is pending
// (above the checkpoint), nothing missing; the kept file's digest is the
// one printed.
func TestDovecotStatusCheck(t *testing.T) {
	srv := dovecottest.Start(t, &dovecottest.Options{Users: []string{"alice"}})
	for i := range 4 {
		srv.Append(t, "alice", "INBOX", harvesttest.Message("check", i))
	}
	srv.Expunge(t, "alice", "INBOX", 2)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	pw := filepath.Join(dir, "alice.pw")
	if err := os.WriteFile(pw, []byte(srv.Password("alice")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(srv.Addr)
	cfgPath := filepath.Join(dir, "mailvault.yaml")
	cfg := fmt.Sprintf("data_dir: %s\naccounts:\n  - {name: alice, host: %s, port: %s, tls: none, username: alice, password_file: %s}\n", data, host, port, pw)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "report.json")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), &env{stdout: &stdout, stderr: &stderr}, []string{"status", "--check", "--config", cfgPath, "--json", "--out", out})
	if code != 0 {
		t.Fatalf("status --check exit %d; stderr:\n%s", code, stderr.String())
	}
	var rep service.Completeness
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("status --check --json: %v\n%s", err, stdout.String())
	}
	if len(rep.Mailboxes) != 1 {
		t.Fatalf("report mailboxes = %+v, want INBOX", rep.Mailboxes)
	}
	m := rep.Mailboxes[0]
	if m.Mailbox != "INBOX" || m.OnServer != 3 || m.Pending != 3 || m.Missing != 0 || m.Archived != 0 || !rep.Checked {
		t.Errorf("INBOX = %+v; want 3 on server, 3 pending, none missing", m)
	}
	if rep.SHA256 == "" || rep.SHA256 != rep.Digest() {
		t.Errorf("report sha256 %q, digest %q", rep.SHA256, rep.Digest())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var kept service.Completeness
	if err := json.Unmarshal(b, &kept); err != nil || kept.SHA256 != rep.SHA256 || kept.Digest() != rep.SHA256 {
		t.Errorf("kept report %v: sha256 %q digest %q, printed %q", err, kept.SHA256, kept.Digest(), rep.SHA256)
	}
}
