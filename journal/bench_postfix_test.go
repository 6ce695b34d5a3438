package journal_test

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"mailvault/journal"
	"mailvault/journal/postfixtest"
)

// TestBenchPostfixJournal is the journaling benchmark (docs/benchmarks.md,
// "Journaling (issue 16)"); it runs only with MAILVAULT_BENCH_POSTFIX=1
// (MAILVAULT_BENCH_N messages a run, default 2000; MAILVAULT_BENCH_ROUNDS,
// default 3). Each round, alternating, submits the same messages over SMTP
// (8 connections) to
//
//   - a Postfix that delivers them to Maildirs (virtual transport) and
//     journals nothing: the time until every message is a file in new/;
//   - a Postfix that journals them with always_bcc over LMTP to
//     mailvault's listener over a real archive, and discards the other
//     copy: the time until every message is durable in the archive (the
//     catalog counts it) and Postfix's queue is empty.
//
// Then the acknowledgement latency of the listener itself: 8 clients
// send straight to it, each timing end of DATA to the 250.
func TestBenchPostfixJournal(t *testing.T) {
	if os.Getenv("MAILVAULT_BENCH_POSTFIX") != "1" {
		t.Skip("set MAILVAULT_BENCH_POSTFIX=1 to run the journaling benchmark")
	}
	n := envInt("MAILVAULT_BENCH_N", 2000)
	rounds := envInt("MAILVAULT_BENCH_ROUNDS", 3)
	window, _ := time.ParseDuration(os.Getenv("MAILVAULT_BENCH_WINDOW")) // journal.Options.BatchWindow; default 0
	msgs := make([]string, n)
	for i := range msgs {
		msgs[i] = fmt.Sprintf("From: Sender <sender@example.org>\r\nTo: user%d@local.test\r\nSubject: bench %d\r\n"+
			"Message-ID: <bench-%d@mta.test>\r\nDate: Mon, 1 Dec 2025 10:00:00 +0000\r\n\r\n%s\r\n", i%50, i, i,
			strings.Repeat("The quarterly figures are attached; please review before Friday.\r\n", 30))
	}
	var maildirRates, journalRates []float64
	for round := range rounds {
		// Maildir baseline.
		{
			// Outside t.TempDir (0700, root's): Postfix's virtual agent,
			// running as the postfix user, must reach the Maildirs.
			md, err := os.MkdirTemp("", "bench-maildir-")
			if err != nil {
				t.Fatal(err)
			}
			os.Chmod(md, 0o755)
			t.Cleanup(func() { os.RemoveAll(md) })
			var users []string
			for u := range 50 {
				users = append(users, fmt.Sprintf("user%d", u))
			}
			pf := postfixtest.Start(t, postfixtest.Config{NoJournal: true, Maildir: md, MaildirUsers: users})
			begin := time.Now()
			submitRaw(t, pf.Addr, msgs)
			waitUntil(t, 10*time.Minute, func() bool { return countFiles(md) >= n })
			el := time.Since(begin)
			maildirRates = append(maildirRates, float64(n)/el.Seconds())
			t.Logf("round %d maildir: %d messages in %v: %.0f msg/s", round+1, n, el.Round(time.Millisecond), float64(n)/el.Seconds())
		}
		// Journal through mailvault.
		{
			r := openRig(t, t.TempDir(), journal.Options{BatchWindow: window})
			pf := postfixtest.Start(t, postfixtest.Config{LMTP: r.lmtp})
			begin := time.Now()
			submitRaw(t, pf.Addr, msgs)
			waitUntil(t, 10*time.Minute, func() bool {
				q, _ := pf.Queued()
				return q == 0 && journalCount(t, r) >= n
			})
			el := time.Since(begin)
			journalRates = append(journalRates, float64(n)/el.Seconds())
			t.Logf("round %d journal (batch window %v): %d messages in %v: %.0f msg/s", round+1, window, n, el.Round(time.Millisecond), float64(n)/el.Seconds())
			r.stop()
		}
	}
	t.Logf("maildir msg/s %v, journal msg/s %v, ratio of medians %.2f", fmtRates(maildirRates), fmtRates(journalRates),
		median(journalRates)/median(maildirRates))

	// Acknowledgement latency, straight to the listener.
	r := openRig(t, t.TempDir(), journal.Options{})
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	per := n / 8
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := smtp.Dial(r.lmtp)
			if err != nil {
				t.Error(err)
				return
			}
			c.Close()
			c, err = smtp.Dial(r.smtp)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			for i := range per {
				if err := c.Mail("sender@example.org", nil); err != nil {
					t.Error(err)
					return
				}
				if err := c.Rcpt(postfixtest.JournalAddress, nil); err != nil {
					t.Error(err)
					return
				}
				wc, err := c.Data()
				if err != nil {
					t.Error(err)
					return
				}
				wc.Write([]byte(msgs[(w*per+i)%n] + fmt.Sprintf("X-Bench: %d %d\r\n", w, i)))
				begin := time.Now()
				if err := wc.Close(); err != nil {
					t.Error(err)
					return
				}
				d := time.Since(begin)
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	slices.Sort(lat)
	if len(lat) > 0 {
		t.Logf("ack latency over %d messages, 8 clients: p50 %v, p99 %v, max %v", len(lat),
			lat[len(lat)/2].Round(time.Microsecond), lat[len(lat)*99/100].Round(time.Microsecond), lat[len(lat)-1].Round(time.Microsecond))
	}
}

func submitRaw(t *testing.T, addr string, msgs []string) {
	t.Helper()
	var wg sync.WaitGroup
	next := make(chan string)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := smtp.Dial(addr)
			if err != nil {
				t.Error(err)
				for range next {
				}
				return
			}
			defer c.Close()
			for m := range next {
				rcpt := m[strings.Index(m, "To: ")+4 : strings.Index(m, "\r\nSubject")]
				if err := c.SendMail("sender@example.org", []string{rcpt}, strings.NewReader(m)); err != nil {
					t.Errorf("submit: %v", err)
				}
			}
		}()
	}
	for _, m := range msgs {
		next <- m
	}
	close(next)
	wg.Wait()
}

func journalCount(t *testing.T, r *rig) int {
	occs, err := r.a.Occurrences(t.Context())
	if err != nil {
		return 0
	}
	return len(occs)
}

func waitUntil(t *testing.T, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not done within %v", within)
		}
		// Polling costs CPU on the machine measured: 100 ms is at most
		// one poll of error per run of seconds.
		time.Sleep(100 * time.Millisecond)
	}
}

func countFiles(dir string) int {
	n := 0
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && filepath.Base(filepath.Dir(path)) == "new" {
			n++
		}
		return nil
	})
	return n
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func median(x []float64) float64 {
	s := slices.Clone(x)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

func fmtRates(x []float64) string {
	var parts []string
	for _, v := range x {
		parts = append(parts, fmt.Sprintf("%.0f", v))
	}
	return "[" + strings.Join(parts, " ") + "]"
}
