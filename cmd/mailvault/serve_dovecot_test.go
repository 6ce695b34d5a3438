//go:build unix

package main

// `mailvault serve` against a real, private Dovecot (harvest/dovecottest).
// The harvester's own Dovecot suites are in harvest/, next to it.

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailvault/harvest/dovecottest"
	"mailvault/harvest/harvesttest"
)

// TestDovecotServeReportsLoginFailure runs `mailvault serve` with one
// account whose password the server refuses and one that works: `mailvault
// status` shows the working account's mail and names the refused login of
// the other, which has no mailbox in the archive yet.
func TestDovecotServeReportsLoginFailure(t *testing.T) {
	srv := dovecottest.Start(t, &dovecottest.Options{Users: []string{"alice", "bob"}})
	srv.Append(t, "bob", "INBOX", harvesttest.Message("servebob", 1))
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	good, bad := filepath.Join(dir, "bob.pw"), filepath.Join(dir, "alice.pw")
	if err := os.WriteFile(good, []byte(srv.Password("bob")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("not-"+srv.Password("alice")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(srv.Addr)
	cfg := fmt.Sprintf(`data_dir: %s
accounts:
  - {name: alice, host: %s, port: %s, tls: none, username: alice, password_file: %s}
  - {name: bob, host: %s, port: %s, tls: none, username: bob, password_file: %s}
`, data, host, port, bad, host, port, good)
	cfgPath := filepath.Join(dir, "mailvault.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	var serveErr syncBuffer
	go func() {
		done <- run(ctx, &env{stdout: &bytes.Buffer{}, stderr: &serveErr}, []string{"serve", "--config", cfgPath})
	}()
	defer func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("serve exit %d", code)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("serve did not stop on cancel")
		}
		if t.Failed() {
			serveErr.mu.Lock()
			t.Logf("serve stderr:\n%s", serveErr.b.String())
			serveErr.mu.Unlock()
		}
	}()
	var out string
	status := func() string {
		var b bytes.Buffer
		run(context.Background(), &env{stdout: &b, stderr: &bytes.Buffer{}}, []string{"status", "--data", data})
		return b.String()
	}
	waitFor(t, 10*time.Second, "bob archived, shown by status", func() (bool, string) {
		out = status()
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) > 3 && f[0] == "bob" && f[1] == "INBOX" && f[3] == "1" {
				return true, out
			}
		}
		return false, out
	})
	// The harvest status is published every second.
	waitFor(t, 3*time.Second, "status to name alice's refused login", func() (bool, string) {
		out = status()
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "alice") && strings.Contains(l, "error") && strings.Contains(l, "login") {
				return true, out
			}
		}
		return false, out
	})
}

// waitFor polls cond until it holds and returns how long that took; on
// timeout it fails the test with what and cond's last description.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	return harvesttest.WaitFor(t, timeout, what, cond)
}
