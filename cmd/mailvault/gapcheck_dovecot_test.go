//go:build unix

package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"mailvault/harvest/dovecottest"
	"mailvault/harvest/harvesttest"
	"mailvault/indexer/catalog"
	"mailvault/service"
)

// TestDovecotServePeriodicGapCheck: `mailvault serve` with gap_check: 2s
// finds by itself, against the real Dovecot, messages that are on the
// server below the checkpoint and not in the archive, fetches them, keeps
// the check in gap_checks (status shows it), audits gap-found and counts it
// on /metrics; the next periodic check finds the mailbox complete.
//
// The gap is made as harvest's TestDovecotGapBelowCheckpoint makes it:
// occurrence rows deleted from the catalog while serve is stopped (lost to
// a bug). Dovecot gives a message moved or copied in a new UID (UIDNEXT),
// so the server itself cannot make one.
func TestDovecotServePeriodicGapCheck(t *testing.T) {
	srv := dovecottest.Start(t, &dovecottest.Options{Users: []string{"alice"}})
	srv.LoadMaildir(t, "alice", "INBOX", harvesttest.Maildir(t, harvesttest.Messages("gapserve", 6)))
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	pw := filepath.Join(dir, "alice.pw")
	if err := os.WriteFile(pw, []byte(srv.Password("alice")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(srv.Addr)
	cfgPath := filepath.Join(dir, "mailvault.yaml")
	cfg := fmt.Sprintf("data_dir: %s\nweb_listen: \"off\"\ngap_check: 2s\naccounts:\n"+
		"  - {name: alice, host: %s, port: %s, tls: none, username: alice, password_file: %s, idle: [INBOX], poll_interval: 1s}\n",
		data, host, port, pw)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	serve := func() (stop func()) {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan int, 1)
		var serveErr syncBuffer
		go func() {
			done <- run(ctx, &env{stdout: &bytes.Buffer{}, stderr: &serveErr}, []string{"serve", "--config", cfgPath})
		}()
		return func() {
			t.Helper()
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
				t.Logf("serve stderr:\n%s", serveErr.String())
			}
		}
	}
	status := func() (*service.Status, error) {
		d, err := dialDaemon(context.Background(), data)
		if err != nil {
			return nil, err
		}
		return d.status(context.Background())
	}
	inbox := func(st *service.Status) (service.MailboxStatus, *catalog.GapCheck) {
		var ms service.MailboxStatus
		for _, m := range st.Mailboxes {
			if m.Account == "alice" && m.Mailbox == "INBOX" {
				ms = m
			}
		}
		var g *catalog.GapCheck
		if st.Completeness != nil {
			for i, c := range st.Completeness.Mailboxes {
				if c.Account == "alice" && c.Mailbox == "INBOX" {
					g = &st.Completeness.Mailboxes[i]
				}
			}
		}
		return ms, g
	}

	stop := serve()
	waitFor(t, 15*time.Second, "the first harvest", func() (bool, string) {
		st, err := status()
		if err != nil {
			return false, err.Error()
		}
		ms, _ := inbox(st)
		return ms.Occurrences == 6, fmt.Sprintf("%+v", ms)
	})
	stop()

	db, err := sql.Open("sqlite", filepath.Join(data, "catalog.db")+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	res, err := db.Exec(`DELETE FROM occurrences WHERE uid IN (2, 5)`)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 2 {
		t.Fatalf("deleted %d occurrences, want 2", n)
	}

	stop = serve()
	defer stop()
	var found catalog.GapCheck
	waitFor(t, 10*time.Second, "a periodic gap check finding UIDs 2 and 5", func() (bool, string) {
		st, err := status()
		if err != nil {
			return false, err.Error()
		}
		if _, g := inbox(st); g != nil && g.Missing > 0 {
			found = *g
			return true, ""
		}
		return false, fmt.Sprintf("%+v", st.Completeness)
	})
	if found.Missing != 2 || found.MissingUIDs != "2,5" || found.Fetched != 2 || found.OnServer != 6 || found.Archived != 4 ||
		found.Pending != 0 || found.Checkpoint != 7 || found.Error != "" {
		t.Errorf("the check that found the gap = %+v; want 6 on server, 4 archived, missing 2,5, both fetched, checkpoint 7", found)
	}
	st, err := status()
	if err != nil {
		t.Fatal(err)
	}
	if ms, _ := inbox(st); ms.Occurrences != 6 {
		t.Errorf("archived %d after the check, want 6", ms.Occurrences)
	}

	var audit bytes.Buffer
	if code := run(context.Background(), &env{stdout: &audit, stderr: &bytes.Buffer{}},
		[]string{"audit", "--data", data, "--action", service.ActionGapFound, "--json"}); code != 0 {
		t.Fatalf("audit exit %d", code)
	}
	if lines := strings.Split(strings.TrimSpace(audit.String()), "\n"); len(lines) != 1 ||
		!strings.Contains(lines[0], `"user":"harvester"`) || !strings.Contains(lines[0], "account alice mailbox INBOX") ||
		!strings.Contains(lines[0], "2 missing below checkpoint 7 (UIDs 2,5), 2 fetched") {
		t.Errorf("gap-found in the audit trail: %s", audit.String())
	}

	// The next periodic check (2 s later) finds the mailbox complete; the
	// metrics count both.
	waitFor(t, 8*time.Second, "the next periodic check", func() (bool, string) {
		st, err := status()
		if err != nil {
			return false, err.Error()
		}
		_, g := inbox(st)
		return g != nil && g.At.After(found.At) && g.Missing == 0 && g.Archived == 6, fmt.Sprintf("%+v", g)
	})
	unix := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", filepath.Join(data, localSocket))
		}}}
	resp, err := unix.Get("http://mailvault/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	checkMetrics(t, "unix", string(body), map[string]float64{
		`mailvault_gap_found_total{account="alice"}`:      2,
		`mailvault_gap_fetched_total{account="alice"}`:    2,
		`mailvault_gap_missing_messages{account="alice"}`: 0,
		`mailvault_gap_checks_total{account="alice"}`:     -1, // present; at least 2, below
	})
	var checks float64
	for _, l := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(l, `mailvault_gap_checks_total{account="alice"} `); ok {
			json.Unmarshal([]byte(v), &checks)
		}
	}
	if checks < 2 {
		t.Errorf("mailvault_gap_checks_total = %v, want at least 2 (the check that found the gap, the next)", checks)
	}
}
