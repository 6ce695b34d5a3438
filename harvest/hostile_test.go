package harvest_test

// A malicious IMAP server attacking the harvester ("Security and integrity
// hardening"): whatever it sends, the harvester holds bounded memory, does
// not hang, corrupts nothing in the archive, shows a clear error on the
// account, and backs off and retries.

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mailvault/harvest"
	"mailvault/indexer"
	"mailvault/service"
)

// hsRun is one harvester against a hostile server, over a real archive.
type hsRun struct {
	t       *testing.T
	srv     *hsServer
	a       *indexer.Archive
	h       *harvest.Harvester
	cancel  context.CancelFunc
	done    chan error
	stopped bool

	baseline  uint64
	peak      atomic.Uint64
	stopPeaks chan struct{}
	peaksDone sync.WaitGroup
	errs      sync.Map // every Status().Error seen
	log       hsLog    // the harvester's log
}

// hsLog is the harvester's log, safe for a writer and a reader at once.
type hsLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *hsLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *hsLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// hsOptions are quick options for a loopback hostile server.
func hsOptions() *harvest.Options {
	return &harvest.Options{MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
		ReadTimeout: 500 * time.Millisecond, CommandTimeout: 2 * time.Second}
}

// hsHarvest starts a harvester for srv's account, polling every 200ms.
func hsHarvest(t *testing.T, srv *hsServer, opts *harvest.Options, tweak ...func(*harvest.Account)) *hsRun {
	t.Helper()
	// Collect often, so that the heap in use is what is held, not garbage.
	old := debug.SetGCPercent(10)
	t.Cleanup(func() { debug.SetGCPercent(old) })
	a, err := indexer.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	acct := harvest.Account{Name: "mallory", Host: "127.0.0.1", Port: srv.port(), TLS: "none",
		Username: "alice", Password: "secret", Idle: []string{"INBOX"}, PollInterval: 200 * time.Millisecond}
	for _, f := range tweak {
		f(&acct)
	}
	r := &hsRun{t: t, srv: srv, a: a, done: make(chan error, 1), stopPeaks: make(chan struct{})}
	o := *opts
	o.Logger = slog.New(slog.NewTextHandler(&r.log, nil))
	r.h = harvest.New(acct, service.NewSink(a), &o)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r.baseline = ms.HeapInuse
	r.peaksDone.Add(1)
	go func() {
		defer r.peaksDone.Done()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-r.stopPeaks:
				return
			case <-tick.C:
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > r.peak.Load() {
				r.peak.Store(ms.HeapInuse)
			}
			if e := r.h.Status().Error; e != "" {
				r.errs.Store(e, true)
			}
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- r.h.Run(ctx) }()
	t.Cleanup(r.stop)
	return r
}

// stop cancels the harvester: Run must return nil within 5 s.
func (r *hsRun) stop() {
	if r.stopped {
		return
	}
	r.stopped = true
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			r.t.Errorf("Run returned %v after cancel, want nil", err)
		}
	case <-time.After(5 * time.Second):
		r.t.Errorf("Run still running 5 s after cancel")
	}
	close(r.stopPeaks)
	r.peaksDone.Wait()
}

// waitFor polls cond for up to limit.
func (r *hsRun) waitFor(limit time.Duration, what string, cond func() bool) {
	r.t.Helper()
	end := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(end) {
			var seen []string
			r.errs.Range(func(k, _ any) bool { seen = append(seen, k.(string)); return true })
			r.t.Fatalf("timed out after %v waiting for %s; status %+v; heap peak %d MiB over baseline; errors seen: %q", limit, what, r.h.Status(), r.peakOver()>>20, seen)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (r *hsRun) peakOver() uint64 {
	if p := r.peak.Load(); p > r.baseline {
		return p - r.baseline
	}
	return 0
}

// sawError waits until the account has shown an error containing want.
func (r *hsRun) sawError(limit time.Duration, want string) {
	r.t.Helper()
	r.waitFor(limit, fmt.Sprintf("an error saying %q on the account", want), func() bool {
		found := false
		r.errs.Range(func(k, _ any) bool {
			found = found || strings.Contains(k.(string), want)
			return !found
		})
		// The status shows an error only until the next attempt begins;
		// the log keeps every one (the status wording, quoted).
		if strings.Contains(r.log.String(), strings.ReplaceAll(want, `"`, `\"`)) {
			found = true
		}
		if st := r.h.Status(); strings.Contains(st.Error, want) {
			if st.State != harvest.StateBackingOff && st.State != harvest.StateError {
				r.t.Errorf("state %q with error %q", st.State, st.Error)
			}
			found = true
		}
		return found
	})
}

// archived returns the archive's occurrences as "uidvalidity/uid" → sha256.
func (r *hsRun) archived() map[string]string {
	occs, err := r.a.Occurrences(context.Background())
	if err != nil {
		r.t.Fatal(err)
	}
	out := map[string]string{}
	for _, o := range occs {
		k := fmt.Sprintf("%d/%d", o.UIDValidity, o.UID)
		if _, dup := out[k]; dup {
			r.t.Errorf("occurrence %s archived twice", k)
		}
		out[k] = o.SHA256
	}
	return out
}

// check stops the harvester and checks the archive: exactly want
// ("uidvalidity/uid" → message body), skipped exactly the "uid" list,
// Verify without problems, and the heap peak under bound above baseline.
func (r *hsRun) check(want map[string][]byte, skipped []string, bound uint64) {
	r.t.Helper()
	r.stop()
	got := r.archived()
	for k, body := range want {
		if got[k] == "" {
			r.t.Errorf("occurrence %s not archived", k)
		} else if got[k] != hsSHA(body) {
			r.t.Errorf("occurrence %s archived with sha256 %s, want %s", k, got[k], hsSHA(body))
		}
	}
	for k := range got {
		if want[k] == nil {
			r.t.Errorf("occurrence %s archived; the server never had it", k)
		}
	}
	sk, err := r.a.Skipped(context.Background())
	if err != nil {
		r.t.Fatal(err)
	}
	var gotSkipped []string
	for _, s := range sk {
		gotSkipped = append(gotSkipped, fmt.Sprint(s.UID))
	}
	if !slices.Equal(gotSkipped, skipped) {
		r.t.Errorf("skipped UIDs %q (%+v), want %q", gotSkipped, sk, skipped)
	}
	ctx := context.Background()
	if err := r.a.Flush(ctx); err != nil {
		r.t.Fatal(err)
	}
	var rep *indexer.VerifyReport
	for try := 0; ; try++ {
		var err error
		if rep, err = r.a.Verify(ctx, nil); err != nil {
			r.t.Fatal(err)
		}
		// The index writer may still be catching up with the last batch.
		if len(rep.Problems) == 0 || try == 50 || !strings.HasPrefix(fmt.Sprint(rep.Problems[0]), "not-indexed") {
			break
		}
		time.Sleep(20 * time.Millisecond)
		r.a.Flush(ctx)
	}
	for _, p := range rep.Problems {
		if strings.HasPrefix(fmt.Sprint(p), "not-indexed") {
			// The index writer lagging behind Flush is the indexer's
			// business, not the harvester's: said, not failed on.
			r.t.Logf("verify (index lag, not an archive fault): %v", p)
			continue
		}
		r.t.Errorf("verify: %v", p)
	}
	distinct := map[string]bool{}
	for _, b := range want {
		distinct[hsSHA(b)] = true
	}
	if rep.Messages != len(distinct) {
		r.t.Errorf("verify: %d messages, want %d", rep.Messages, len(distinct))
	}
	if over := r.peakOver(); over > bound {
		r.t.Errorf("heap in use peaked %d MiB above the baseline, want at most %d MiB", over>>20, bound>>20)
	} else {
		r.t.Logf("heap in use peaked %d MiB above the baseline (bound %d MiB)", over>>20, bound>>20)
	}
}

// epoch7 is want for msgs as UIDs 1.. of UIDVALIDITY 7, without skip.
func epoch7(msgs [][]byte, skip ...int) map[string][]byte {
	out := map[string][]byte{}
	for i, m := range msgs {
		if !slices.Contains(skip, i+1) {
			out[fmt.Sprintf("7/%d", i+1)] = m
		}
	}
	return out
}

// bodyFetch reports whether a UID FETCH asks for bodies and for uid.
func bodyFetch(cmd, args string, uid uint32) bool {
	set, items, _ := strings.Cut(args, " ")
	return cmd == "UID FETCH" && strings.Contains(items, "BODY") && hsInSet(set, uid, 1<<31)
}

// TestHostileHugeLiteral: the body of UID 2 is announced as 9,999,999,999
// bytes (over max_message_bytes) and then never ends. Before: the harvester
// read and dropped it byte by byte, for ever. After: it does not read it,
// records UID 2 as skipped, stores UID 1, reconnects and stores UID 3.
func TestHostileHugeLiteral(t *testing.T) {
	msgs := hsMessages(3)
	srv := hsStart(t, msgs, func(s *hsSession, tag, cmd, args string) bool {
		if !bodyFetch(cmd, args, 2) {
			return false
		}
		if hsInSet(strings.Fields(args)[0], 1, 1<<31) {
			s.fetchResponse(1, 1, msgs[0], "BODY")
		}
		s.printf("* 2 FETCH (UID 2 BODY[] {9999999999}\r\n")
		s.stream()
		return true
	})
	opts := hsOptions()
	opts.MaxMessageBytes = 1 << 20
	r := hsHarvest(t, srv, opts)
	r.sawError(10*time.Second, "9999999999-byte body")
	r.waitFor(10*time.Second, "UIDs 1 and 3 archived", func() bool { return len(r.archived()) == 2 })
	r.check(epoch7(msgs, 2), []string{"2"}, 64<<20)
}

// TestHostileBodiesOverAnnouncedSize: RFC822.SIZE says 100 bytes for each
// of 16 messages, then every body is 6 MiB. Before: one FETCH held all 96
// MiB (and a Budget counted 1,600 bytes). After: a FETCH holds at most
// twice max(announced, FetchBytes) beyond its first body; the rest waits
// for the next connection, and everything is archived.
func TestHostileBodiesOverAnnouncedSize(t *testing.T) {
	var msgs [][]byte
	for i := 1; i <= 16; i++ {
		var b strings.Builder
		fmt.Fprintf(&b, "From: a@example.org\r\nSubject: big %d\r\nContent-Type: application/octet-stream\r\n\r\n", i)
		line := strings.Repeat(fmt.Sprintf("%02d", i), 38) + "\r\n"
		for b.Len() < 6<<20 {
			b.WriteString(line)
		}
		msgs = append(msgs, []byte(b.String()))
	}
	srv := hsStart(t, msgs, func(s *hsSession, tag, cmd, args string) bool {
		if cmd != "UID FETCH" || strings.Contains(args, "BODY") {
			return false
		}
		set, _, _ := strings.Cut(args, " ")
		for u := uint32(1); u <= 16; u++ {
			if hsInSet(set, u, 16) {
				s.printf("* %d FETCH (UID %d RFC822.SIZE 100 FLAGS ())\r\n", u, u)
			}
		}
		s.printf("%s OK done\r\n", tag)
		return true
	})
	opts := hsOptions()
	opts.FetchBytes = 4 << 20
	opts.MaxMessageBytes = 16 << 20
	r := hsHarvest(t, srv, opts)
	r.waitFor(60*time.Second, "16 messages archived", func() bool { return len(r.archived()) == 16 })
	r.sawError(time.Second, "more than twice what RFC822.SIZE announced")
	r.check(epoch7(msgs), nil, 72<<20)
}

// TestHostileLiteralStalls: the body of UID 2 is announced as 200,000,000
// bytes (under max_message_bytes), 100 bytes come, then nothing. Before:
// each try allocated the 200 MB up front. After: memory follows the bytes
// that arrive; the read timeout ends each try, and after three UID 2 is
// recorded as skipped.
func TestHostileLiteralStalls(t *testing.T) {
	msgs := hsMessages(3)
	srv := hsStart(t, msgs, func(s *hsSession, tag, cmd, args string) bool {
		if !bodyFetch(cmd, args, 2) {
			return false
		}
		if hsInSet(strings.Fields(args)[0], 1, 1<<31) {
			s.fetchResponse(1, 1, msgs[0], "BODY")
		}
		s.printf("* 2 FETCH (UID 2 BODY[] {200000000}\r\n%s", strings.Repeat("y", 100))
		s.wait(time.Minute)
		return true
	})
	opts := hsOptions()
	opts.ReadTimeout = 200 * time.Millisecond
	r := hsHarvest(t, srv, opts)
	r.sawError(10*time.Second, "the server sent nothing for 200ms")
	r.waitFor(20*time.Second, "UIDs 1 and 3 archived", func() bool { return len(r.archived()) == 2 })
	r.check(epoch7(msgs, 2), []string{"2"}, 64<<20)
}

// TestHostileEndlessLine: a response line that never ends, and a literal
// of 9,999,999,999 bytes as a mailbox name in LIST (go-imap buffers both
// whole). Before: the heap grew without bound. After: the connection is
// dropped at 1 MiB with an error; when the server behaves, all is archived.
func TestHostileEndlessLine(t *testing.T) {
	for _, tc := range []struct{ name, cmd, send, wantErr string }{
		{"text", "EXAMINE", "* OK [ALERT] ", "longer than 1048576 bytes"},
		{"literal", "LIST", "* LIST () \"/\" {9999999999}\r\n", "a 9999999999-byte literal in a response line"},
		{"fake-body-literal", "EXAMINE", "* OK [ALERT] BODY[] {9999999}\r\n", "a 9999999-byte literal in a response line"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msgs := hsMessages(3)
			var attacks atomic.Int32
			srv := hsStart(t, msgs, func(s *hsSession, tag, cmd, args string) bool {
				if cmd != tc.cmd || attacks.Load() >= 3 {
					return false
				}
				attacks.Add(1)
				s.printf("%s", tc.send)
				s.stream()
				return true
			})
			r := hsHarvest(t, srv, hsOptions())
			r.sawError(10*time.Second, tc.wantErr)
			r.waitFor(10*time.Second, "3 archived once the server behaves", func() bool { return len(r.archived()) == 3 })
			r.check(epoch7(msgs), nil, 64<<20)
		})
	}
}

// TestHostileEndlessResponses: a million (here: endless) untagged
// responses to one command. FETCH responses to the size listing of a
// mailbox of 3: before, every one was kept (and the command never ended);
// after, the harvester stops at EXISTS + 1000. LIST responses without end:
// before, Collect kept them all; after, LIST stops at 100,000 mailboxes.
// Untagged OKs without end: the command timeout ends the wait.
func TestHostileEndlessResponses(t *testing.T) {
	for _, tc := range []struct {
		name, cmd string
		line      func(i int) string
		wantErr   string
	}{
		{"fetch", "UID FETCH", func(i int) string { return fmt.Sprintf("* %d FETCH (UID %d RFC822.SIZE 10)\r\n", i, i) },
			"more than 1003 FETCH responses for a mailbox of 3 messages"},
		{"list", "LIST", func(i int) string { return fmt.Sprintf("* LIST () \"/\" box%d\r\n", i) }, "more than 100000 mailboxes"},
		{"ok", "EXAMINE", func(i int) string { return "* OK still thinking\r\n" }, "has not completed a command in 2s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msgs := hsMessages(3)
			var attacks atomic.Int32
			srv := hsStart(t, msgs, func(s *hsSession, tag, cmd, args string) bool {
				if cmd != tc.cmd || strings.Contains(args, "BODY") || attacks.Load() >= 2 {
					return false
				}
				attacks.Add(1)
				go func() { <-s.done; s.c.Close() }()
				var b strings.Builder
				for i := 1; ; i++ {
					b.WriteString(tc.line(i))
					if b.Len() > 32<<10 {
						if _, err := s.c.Write([]byte(b.String())); err != nil {
							return true
						}
						b.Reset()
					}
				}
			})
			r := hsHarvest(t, srv, hsOptions())
			r.sawError(20*time.Second, tc.wantErr)
			r.waitFor(20*time.Second, "3 archived once the server behaves", func() bool { return len(r.archived()) == 3 })
			r.check(epoch7(msgs), nil, 64<<20)
		})
	}
}

// TestHostileNestedLists: FETCH responses with parenthesised lists nested
// 100,000 deep (BODYSTRUCTURE and FLAGS), which a recursive parser could
// overflow its stack on. go-imap stops at depth 1000: the connection ends
// with an error, and then the server behaves.
func TestHostileNestedLists(t *testing.T) {
	for _, tc := range []struct{ name, item string }{
		{"bodystructure", "BODYSTRUCTURE "},
		{"flags", "FLAGS "},
		{"body", "BODY "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msgs := hsMessages(3)
			var attacks atomic.Int32
			srv := hsStart(t, msgs, func(s *hsSession, tag, cmd, args string) bool {
				if cmd != "UID FETCH" || attacks.Load() >= 2 {
					return false
				}
				attacks.Add(1)
				s.printf("* 1 FETCH (UID 1 %s%s\r\n", tc.item, strings.Repeat("(", 100000))
				s.printf("%s OK done\r\n", tag)
				return true
			})
			r := hsHarvest(t, srv, hsOptions())
			r.sawError(10*time.Second, "nested deeper than 100")
			r.waitFor(10*time.Second, "3 archived once the server behaves", func() bool { return len(r.archived()) == 3 })
			r.check(epoch7(msgs), nil, 64<<20)
		})
	}
}

// TestHostileUnaskedUIDs: FETCH responses for UIDs never asked for — in
// the size listing a UID above UIDNEXT (4000000000), in the body FETCH a
// UID 99, a second UID 2 with other bytes, and unsolicited bodies. Before:
// UID 4000000000 was fetched and archived, moving the checkpoint past
// every message to come (UID 4, appended later, was never archived).
// After: only UIDs 1-4, each once, with the server's first bytes.
func TestHostileUnaskedUIDs(t *testing.T) {
	msgs := hsMessages(4)
	evil := []byte("From: evil@example.org\r\nSubject: not asked for\r\n\r\nevil\r\n")
	srv := hsStart(t, msgs[:3], func(s *hsSession, tag, cmd, args string) bool {
		if cmd != "UID FETCH" {
			return false
		}
		set, items, _ := strings.Cut(args, " ")
		if !strings.Contains(items, "BODY") {
			if strings.HasPrefix(set, "1:") {
				s.printf("* 9 FETCH (UID 4000000000 RFC822.SIZE %d)\r\n", len(evil))
			}
			return false
		}
		s.printf("* 50 FETCH (UID 99 FLAGS () BODY[] {%d}\r\n%s)\r\n", len(evil), evil)
		if hsInSet(set, 4000000000, 1<<31) {
			s.printf("* 9 FETCH (UID 4000000000 FLAGS () BODY[] {%d}\r\n%s)\r\n", len(evil), evil)
		}
		uids, m, _ := s.srv.state()
		for i, u := range uids {
			if hsInSet(set, u, 1<<31) {
				s.fetchResponse(i+1, u, m[u], "BODY")
				s.printf("* %d FETCH (UID %d BODY[] {%d}\r\n%s)\r\n", i+1, u, len(evil), evil)
			}
		}
		s.printf("* 7 FETCH (BODY[] {%d}\r\n%s UID 7)\r\n", len(evil), evil)
		s.printf("%s OK done\r\n", tag)
		return true
	})
	r := hsHarvest(t, srv, hsOptions())
	r.waitFor(10*time.Second, "3 archived", func() bool { return len(r.archived()) >= 3 })
	srv.mu.Lock()
	srv.msgs[4] = msgs[3]
	srv.mu.Unlock()
	r.waitFor(10*time.Second, "UID 4, appended later, archived", func() bool { return r.archived()["7/4"] != "" })
	time.Sleep(300 * time.Millisecond) // a poll more
	r.check(epoch7(msgs), nil, 64<<20)
}

// TestHostileUIDValidity: a server that changes UIDVALIDITY between
// EXAMINEs, answers another one in STATUS than in EXAMINE, or none at all.
// Invariant 6: a change is a new epoch; the old one's occurrences stay,
// content is stored once; nothing is filed under an epoch no EXAMINE gave.
func TestHostileUIDValidity(t *testing.T) {
	t.Run("changes", func(t *testing.T) {
		msgs := hsMessages(3)
		srv := hsStart(t, msgs, nil)
		r := hsHarvest(t, srv, hsOptions())
		r.waitFor(10*time.Second, "epoch 7 archived", func() bool { return len(r.archived()) == 3 })
		srv.setUIDValidity(8)
		r.waitFor(10*time.Second, "epoch 8 archived too", func() bool { return len(r.archived()) == 6 })
		want := epoch7(msgs)
		for i, m := range msgs {
			want[fmt.Sprintf("8/%d", i+1)] = m
		}
		r.check(want, nil, 64<<20)
	})
	t.Run("status-differs", func(t *testing.T) {
		msgs := hsMessages(3)
		var statuses atomic.Int32
		srv := hsStart(t, msgs, func(s *hsSession, tag, cmd, args string) bool {
			if cmd != "STATUS" {
				return false
			}
			statuses.Add(1)
			s.printf("* STATUS INBOX (MESSAGES 3 UIDNEXT 4 UIDVALIDITY 99)\r\n%s OK done\r\n", tag)
			return true
		})
		r := hsHarvest(t, srv, hsOptions(), func(a *harvest.Account) { a.Idle = nil })
		r.waitFor(10*time.Second, "archived and a STATUS asked", func() bool { return len(r.archived()) == 3 && statuses.Load() > 0 })
		r.check(epoch7(msgs), nil, 64<<20)
	})
	t.Run("none", func(t *testing.T) {
		msgs := hsMessages(3)
		var once atomic.Bool
		srv := hsStart(t, msgs, func(s *hsSession, tag, cmd, args string) bool {
			if cmd != "SELECT" && cmd != "EXAMINE" || once.Swap(true) {
				return false
			}
			s.printf("* 3 EXISTS\r\n* OK [UIDNEXT 4] ok\r\n%s OK [READ-ONLY] done\r\n", tag)
			return true
		})
		r := hsHarvest(t, srv, hsOptions())
		r.sawError(10*time.Second, "no UIDVALIDITY")
		r.waitFor(10*time.Second, "archived once the server behaves", func() bool { return len(r.archived()) == 3 })
		r.check(epoch7(msgs), nil, 64<<20)
	})
}

// TestHostileTags: a server that answers with a wrong tag, or never sends
// the tagged completion — silent, or talking without end.
func TestHostileTags(t *testing.T) {
	for _, tc := range []struct {
		name    string
		act     func(s *hsSession, tag string)
		wantErr string
	}{
		{"wrong-tag", func(s *hsSession, tag string) { s.printf("* 3 EXISTS\r\nX%s OK done\r\n", tag) }, "unknown tag"},
		{"silent", func(s *hsSession, tag string) { s.printf("* 3 EXISTS\r\n"); s.wait(time.Minute) }, "the server sent nothing for"},
		{"chatty", func(s *hsSession, tag string) {
			for {
				select {
				case <-s.done:
					return
				case <-time.After(10 * time.Millisecond):
				}
				if _, err := s.c.Write([]byte("* 3 EXISTS\r\n* OK still here\r\n")); err != nil {
					return
				}
			}
		}, "has not completed a command in 2s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msgs := hsMessages(3)
			var attacks atomic.Int32
			srv := hsStart(t, msgs, func(s *hsSession, tag, cmd, args string) bool {
				if cmd != "SELECT" && cmd != "EXAMINE" || attacks.Add(1) > 2 {
					return false
				}
				tc.act(s, tag)
				return true
			})
			r := hsHarvest(t, srv, hsOptions())
			r.sawError(15*time.Second, tc.wantErr)
			r.waitFor(10*time.Second, "archived once the server behaves", func() bool { return len(r.archived()) == 3 })
			r.check(epoch7(msgs), nil, 64<<20)
		})
	}
}
