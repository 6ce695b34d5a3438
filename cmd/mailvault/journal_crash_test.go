//go:build unix

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"mailvault/indexer"
	"mailvault/journal/postfixtest"
)

// TestServeJournalSurvivesSIGKILL: Postfix journals a burst of mail
// (always_bcc over LMTP) to the real `mailvault serve`, which is killed
// with SIGKILL several times while deliveries are in flight and restarted
// on the same address. Postfix retries what was not acknowledged. In the
// end every Message-ID submitted is archived exactly once in the journal
// mailbox (nothing lost, nothing duplicated), Postfix's queue is empty, and
// verify passes. Set MAILVAULT_CRASH_SEED to replay a run's kill points.
func TestServeJournalSurvivesSIGKILL(t *testing.T) {
	if err := postfixtest.Available(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("postfix: %v", err)
		}
		t.Skipf("postfix: %v", err)
	}
	const total = 400
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("MAILVAULT_CRASH_SEED"); s != "" {
		fmt.Sscan(s, &seed)
	}
	t.Logf("seed %d (MAILVAULT_CRASH_SEED=%d replays it)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))

	bin := buildMailvault(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	lmtp := postfixtest.FreeAddr(t)
	cfgPath := filepath.Join(dir, "mailvault.yaml")
	if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf("data_dir: %s\nweb_listen: \"off\"\njournal:\n  lmtp_listen: %s\n", data, lmtp)), 0o600); err != nil {
		t.Fatal(err)
	}
	start := func() (*exec.Cmd, *bytes.Buffer, <-chan error) { return startServeConfig(t, bin, cfgPath) }
	archived := func() int { return occurrencesIn(data) }

	cmd, out, done := start()
	waitListening(t, lmtp, out)
	pf := postfixtest.Start(t, postfixtest.Config{LMTP: lmtp})

	// The burst: submitted to Postfix on 8 connections while serve is
	// being killed.
	ids := make([]string, total)
	for i := range ids {
		ids[i] = fmt.Sprintf("<burst-%d-%d@mta.test>", seed%100000, i)
	}
	var submitted sync.WaitGroup
	submitErr := make(chan error, total)
	next := make(chan int)
	for range 8 {
		submitted.Add(1)
		go func() {
			defer submitted.Done()
			for i := range next {
				msg := fmt.Sprintf("From: s@example.org\r\nTo: r%d@example.org\r\nSubject: burst %d\r\nMessage-ID: %s\r\n\r\nbody %d\r\n", i, i, ids[i], i)
				if err := smtpSend(pf.Addr, "s@example.org", []string{fmt.Sprintf("r%d@example.org", i)}, msg); err != nil {
					submitErr <- fmt.Errorf("submit %d: %w", i, err)
				}
			}
		}()
	}
	go func() {
		for i := range ids {
			next <- i
		}
		close(next)
	}()

	kills, midway, last := 0, 0, 0
	for kills < 4 {
		target := last + 20 + rng.IntN(60)
		begin := time.Now()
		for archived() < min(target, total) {
			select {
			case err := <-done:
				t.Fatalf("serve exited by itself (%v):\n%s", err, out)
			case <-time.After(10 * time.Millisecond):
			}
			if time.Since(begin) > time.Minute {
				cmd.Process.Kill()
				t.Fatalf("serve did not reach %d journaled messages in a minute (has %d):\n%s\npostfix:\n%s", target, archived(), out, tailLines(pf.Log(), 30))
			}
		}
		cmd.Process.Kill()
		<-done
		n := archived()
		t.Logf("kill %d after %v: %d of %d archived", kills+1, time.Since(begin).Round(time.Millisecond), n, total)
		if n < last {
			t.Fatalf("archive shrank from %d to %d across a SIGKILL", last, n)
		}
		if n > last && n < total {
			midway++
		}
		last = n
		kills++
		cmd, out, done = start()
		waitListening(t, lmtp, out)
	}
	submitted.Wait()
	close(submitErr)
	for err := range submitErr {
		t.Fatal(err)
	}
	if midway < 3 {
		t.Fatalf("only %d of %d kills landed mid-burst; the test proved too little", midway, kills)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		q, err := pf.Queued()
		if err != nil {
			t.Fatal(err)
		}
		if q == 0 && archived() >= total {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("after the kills: %d archived of %d, %d in Postfix's queue\nserve:\n%s\npostfix:\n%s", archived(), total, q, out, tailLines(pf.Log(), 40))
		}
		pf.Flush()
		time.Sleep(500 * time.Millisecond)
	}
	// The listener's metrics are on serve's /metrics (the local socket).
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", filepath.Join(data, localSocket))
	}}}
	resp, err := hc.Get("http://mailvault/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	metricsText, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"mailvault_journal_accepted_total ", "mailvault_journal_ack_seconds_bucket", "mailvault_journal_batches_total "} {
		if !strings.Contains(string(metricsText), want) {
			t.Errorf("serve's /metrics lacks %s", want)
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve after SIGTERM: %v\n%s", err, out)
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("serve did not stop within 30s of SIGTERM:\n%s", out)
	}
	if r := runBinary(t, bin, 0, "verify", "--data", data); r.code != 0 {
		t.Fatalf("verify after %d kills: exit %d\n%s%s", kills, r.code, r.stdout, r.stderr)
	}

	a, err := indexer.Open(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	occs, err := a.Occurrences(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	uids := map[uint32]bool{}
	for _, o := range occs {
		if o.Account != "journal" || o.Mailbox != "Journal" {
			t.Errorf("occurrence outside the journal mailbox: %+v", o)
		}
		if uids[o.UID] {
			t.Errorf("UID %d twice", o.UID)
		}
		uids[o.UID] = true
		raw, err := a.Raw(o.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		count[messageID(raw)]++
	}
	lost, dup := 0, 0
	for _, id := range ids {
		switch count[id] {
		case 0:
			lost++
		case 1:
		default:
			dup++
			t.Errorf("%s archived %d times", id, count[id])
		}
		delete(count, id)
	}
	if lost > 0 || dup > 0 || len(count) > 0 {
		t.Fatalf("after %d kills: %d of %d lost, %d duplicated, %d unexpected %v", kills, lost, total, dup, len(count), count)
	}
	t.Logf("%d messages, %d kills: every one archived exactly once", total, kills)
}

func smtpSend(addr, from string, to []string, msg string) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.SendMail(from, to, strings.NewReader(msg))
}

// waitListening waits until serve's listener at addr accepts connections.
func waitListening(t *testing.T, addr string, out *bytes.Buffer) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve does not listen on %s: %v\n%s", addr, err, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func messageID(raw []byte) string {
	for _, line := range strings.Split(string(raw), "\r\n") {
		if line == "" {
			break
		}
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "Message-ID") {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
