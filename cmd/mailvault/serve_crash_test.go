//go:build unix

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailvault/harvest/dovecottest"
	"mailvault/harvest/harvesttest"
	"mailvault/indexer"
	"mailvault/service"
)

// TestServeSurvivesSIGKILL kills the `mailvault serve` process with SIGKILL
// at random points of a cold harvest from Dovecot, restarts it each time,
// and then checks invariants 1 and 2 against the server: every message the
// server holds is archived exactly once under its UID, byte-exact, nothing
// else is, and verify passes. The last run is stopped with SIGTERM, which
// must end it cleanly (exit 0) within a few seconds. Set
// MAILVAULT_CRASH_SEED to replay a run's kill points.
func TestServeSurvivesSIGKILL(t *testing.T) {
	const perMailbox = 2000
	srv := dovecottest.Start(t, nil)
	boxes := []string{"INBOX", "Lists", "Archive/2002"}
	total := 0
	for _, mb := range boxes {
		total += srv.LoadMaildir(t, "alice", mb, harvesttest.Maildir(t, harvesttest.Messages(strings.ReplaceAll(mb, "/", "")+"k", perMailbox)))
	}

	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("MAILVAULT_CRASH_SEED"); s != "" {
		fmt.Sscan(s, &seed)
	}
	t.Logf("seed %d (MAILVAULT_CRASH_SEED=%d replays it)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))

	bin := buildMailvault(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfgPath := filepath.Join(dir, "mailvault.yaml")
	acct := harvesttest.Account(t, srv, "alice", "alice")
	os.WriteFile(filepath.Join(dir, "pw"), []byte(acct.Password+"\n"), 0o600)
	cfg := fmt.Sprintf(`data_dir: %s
accounts:
  - name: alice
    host: %s
    port: %d
    tls: none
    username: alice
    password_file: %s
    idle: [INBOX]
    poll_interval: 1s
`, data, acct.Host, acct.Port, filepath.Join(dir, "pw"))
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	// archived counts occurrences and indexed messages through `status
	// --json`, which reads the catalog beside a running (or killed) serve.
	archived := func() (occurrences, indexed int) {
		r := runBinary(t, bin, 0, "status", "--data", data, "--json")
		if r.code != 0 {
			return -1, -1
		}
		for _, line := range nonEmptyLines(r.stdout) {
			var l service.MailboxStatus
			if json.Unmarshal([]byte(line), &l) == nil {
				occurrences += l.Occurrences
				indexed += l.Indexed
			}
		}
		return occurrences, indexed
	}
	start := func() (*exec.Cmd, *bytes.Buffer, <-chan error) { return startServeConfig(t, bin, cfgPath) }

	// Kill points: the first at a random moment of startup (login, LIST,
	// EXAMINE, the index being created); the others when a random number
	// (300 to 1,200) more messages than at the last kill are archived, so
	// that they land mid-harvest, with a batch in flight, however fast the
	// machine. inProcess reads the catalog (WAL) beside the running serve.
	inProcess := func() int { return occurrencesIn(data) }
	kills, midway, last := 0, 0, 0
	for kills < 8 && last < total {
		cmd, out, done := start()
		target := last + 300 + rng.IntN(900)
		startupKill := time.Duration(100+rng.IntN(500)) * time.Millisecond
		begin := time.Now()
		for {
			select {
			case err := <-done:
				t.Fatalf("serve exited by itself (%v):\n%s", err, out)
			case <-time.After(20 * time.Millisecond):
			}
			if kills == 0 && time.Since(begin) >= startupKill {
				break
			}
			if kills > 0 && inProcess() >= min(target, total) {
				break
			}
			if time.Since(begin) > time.Minute {
				cmd.Process.Kill()
				t.Fatalf("serve did not reach %d archived messages in a minute (has %d):\n%s", target, inProcess(), out)
			}
		}
		cmd.Process.Kill()
		<-done
		n := inProcess() // 0 before the catalog exists
		t.Logf("kill %d after %v: %d of %d archived", kills+1, time.Since(begin).Round(time.Millisecond), n, total)
		if n < last {
			t.Fatalf("archive shrank from %d to %d occurrences across a SIGKILL", last, n)
		}
		if n > last && n < total {
			midway++
		}
		last = n
		kills++
	}
	if midway < 3 {
		t.Fatalf("only %d of %d kills landed mid-harvest (after progress, before the end); the test proved too little", midway, kills)
	}

	// The last run: until everything is archived and indexed (an index
	// behind the catalog is caught up at start; a SIGTERM during that
	// leaves the rest for the next start, which verify would report).
	cmd, out, done := start()
	deadline := time.Now().Add(90 * time.Second)
	for {
		n, indexed := archived()
		if n == total && indexed == total {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("serve did not archive and index all %d messages after restart (archived %d, indexed %d):\n%s", total, n, indexed, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve after SIGTERM: %v\n%s", err, out)
		}
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("serve did not stop within 15s of SIGTERM:\n%s", out)
	}

	if r := runBinary(t, bin, 0, "verify", "--data", data); r.code != 0 {
		t.Fatalf("verify after %d kills: exit %d\n%s%s", kills, r.code, r.stdout, r.stderr)
	}
	a := harvesttest.OpenArchive(t, data)
	occs := harvesttest.Occurrences(t, a)
	if len(occs) != total {
		t.Errorf("%d occurrences after %d kills, want %d", len(occs), kills, total)
	}
	st := harvesttest.Status(t, a)
	for _, mb := range boxes {
		s := st["alice/"+mb]
		harvesttest.CheckAgainstServer(t, srv, a, occs, "alice", "alice", mb, s.UIDValidity, true)
		if s.UIDNext != perMailbox+1 || s.Indexed != perMailbox {
			t.Errorf("%s: checkpoint uidnext %d, indexed %d; want %d, %d", mb, s.UIDNext, s.Indexed, perMailbox+1, perMailbox)
		}
	}
	if hits := harvesttest.Search(t, a, harvesttest.Marker("Listsk", 123)); len(hits) != 1 {
		t.Errorf("search for one message after the kills: %d hits, want 1", len(hits))
	}
}

// startServeConfig starts `mailvault serve --config cfgPath` as a child
// (its output in the buffer, its exit on the channel), for the tests that
// kill it.
func startServeConfig(t *testing.T, bin, cfgPath string) (*exec.Cmd, *bytes.Buffer, <-chan error) {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(bin, "serve", "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start serve: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	return cmd, &out, done
}

// occurrencesIn counts the occurrences the catalog in data holds, read
// beside a running serve (WAL); 0 before the catalog exists.
func occurrencesIn(data string) int {
	st, err := indexer.Status(context.Background(), data)
	if err != nil {
		return 0
	}
	n := 0
	for _, s := range st {
		n += s.Occurrences
	}
	return n
}
