//go:build unix

package harvest_test

// Integration tests of the harvester against a real, private Dovecot 2.3
// (harvest/dovecottest), writing into a real indexer.Archive through
// service.NewSink, the Sink `mailvault serve` uses. Each test runs
// harvest.Harvester in-process and checks the archive (catalog, store,
// index) against what the server says it holds: STATUS/EXAMINE counts and
// the BODY[] bytes Dovecot serves (CRLF, even for LF-only Maildir files:
// see the dovecottest package doc), never the files on disk. The helpers
// shared with other packages' tests are in harvest/harvesttest.
//
// Only TestDovecotCorpusColdHarvest needs the SpamAssassin corpus
// (scripts/fetch-corpus.sh); the others make their own messages.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"mailvault/harvest"
	"mailvault/harvest/dovecottest"
	"mailvault/harvest/harvesttest"
	"mailvault/indexer"
	"mailvault/indexer/mailfile/corpustest"
	"mailvault/indexer/store"
	"mailvault/service"
)

// dcFastBackoff makes reconnects quick enough for a test.
func dcFastBackoff(log *slog.Logger) *harvest.Options {
	return &harvest.Options{Logger: log, MinBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond,
		ThrottleBackoff: 50 * time.Millisecond}
}

// dcLogger returns a logger for harvesters whose output is shown only when
// the test fails. Call it before starting harvesters, so that its cleanup
// runs after theirs and includes their last words.
func dcLogger(t *testing.T) *slog.Logger {
	l := &dcLogBuffer{}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		lines := strings.Split(strings.TrimSpace(l.b.String()), "\n")
		if len(lines) > 80 {
			lines = lines[len(lines)-80:]
		}
		t.Logf("harvester log (last %d lines):\n%s", len(lines), strings.Join(lines, "\n"))
	})
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// dcLogBuffer is a bytes.Buffer safe for a writer and a reader at once.
type dcLogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *dcLogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// dcHarvester is a harvester running in its own goroutine.
type dcHarvester struct {
	*harvest.Harvester
	cancel  context.CancelFunc
	done    chan error
	stopped bool
}

// dcStart runs a harvester for acct until parent is done or stop is called;
// the test's cleanup stops it.
func dcStart(t *testing.T, parent context.Context, acct harvest.Account, sink harvest.Sink, opts *harvest.Options) *dcHarvester {
	ctx, cancel := context.WithCancel(parent)
	h := &dcHarvester{Harvester: harvest.New(acct, sink, opts), cancel: cancel, done: make(chan error, 1)}
	go func() { h.done <- h.Run(ctx) }()
	t.Cleanup(func() { h.stop(t) })
	return h
}

// stop cancels the harvester and waits for Run, which must return nil.
func (h *dcHarvester) stop(t testing.TB) {
	if h.stopped {
		return
	}
	h.stopped = true
	h.cancel()
	h.wait(t)
}

// wait waits for Run to return after its context was cancelled.
func (h *dcHarvester) wait(t testing.TB) {
	h.stopped = true
	select {
	case err := <-h.done:
		if err != nil {
			t.Errorf("harvester %s: Run returned %v after cancellation, want nil", h.Status().Account, err)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("harvester %s: Run still running 10 s after cancellation", h.Status().Account)
	}
}

// dcWaitFor polls cond until it holds and returns how long that took; on
// timeout it fails the test with what and cond's last description.
func dcWaitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	return harvesttest.WaitFor(t, timeout, what, cond)
}

// dcArchived returns the archived (occurrence) counts of the given
// "account/mailbox" keys, and whether each equals want.
func dcArchived(t *testing.T, a *harvesttest.Archive, want map[string]int) (bool, string) {
	t.Helper()
	st := harvesttest.Status(t, a)
	ok := true
	var desc []string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		got := st[k].Occurrences
		if got != want[k] {
			ok = false
		}
		desc = append(desc, fmt.Sprintf("%s %d/%d", k, got, want[k]))
	}
	return ok, strings.Join(desc, ", ")
}

// dcVerify flushes the index and runs Verify: no problems, wantMessages
// distinct messages, all indexed, a blob for each. Orphan blobs (a batch
// interrupted between blob and catalog commit) are allowed only when
// orphansOK.
func dcVerify(t *testing.T, a *harvesttest.Archive, wantMessages int, orphansOK bool) {
	t.Helper()
	ctx := context.Background()
	if err := a.Flush(ctx); err != nil {
		t.Fatalf("flush index: %v", err)
	}
	rep, err := a.Verify(ctx, nil)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	for i, p := range rep.Problems {
		if i == 10 {
			t.Errorf("verify: ... %d problems in all", len(rep.Problems))
			break
		}
		t.Errorf("verify: %s", p)
	}
	if rep.Messages != wantMessages || rep.Indexed != uint64(wantMessages) || rep.Blobs != rep.Messages+rep.Orphans {
		t.Errorf("verify: %d messages, %d index documents, %d blobs (%d orphans); want %d messages, all indexed, one blob each",
			rep.Messages, rep.Indexed, rep.Blobs, rep.Orphans, wantMessages)
	}
	if rep.Orphans != 0 && !orphansOK {
		t.Errorf("verify: %d orphan blobs after an uninterrupted harvest", rep.Orphans)
	}
}

func shaHex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func dcCRLF(b []byte) []byte { return bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n")) }

// TestDovecotCorpusColdHarvest harvests the SpamAssassin corpus, 5 mailboxes
// and 6,046 messages, from scratch: every mailbox ends up with exactly the
// server's count, every occurrence's content is the sha256 of the BODY[]
// Dovecot serves for its UID, every blob is byte for byte that BODY[], and
// verify passes.
func TestDovecotCorpusColdHarvest(t *testing.T) {
	root := corpustest.Maildir(t)
	folders := []string{"easy-ham-1", "easy-ham-2", "hard-ham-1", "spam-1", "spam-2"}
	srv := dovecottest.Start(t, nil)
	log := dcLogger(t)

	begin := time.Now()
	want := map[string]int{"alice/INBOX": 0}
	total := 0
	for _, f := range folders {
		n := srv.LoadMaildir(t, "alice", f, filepath.Join(root, "."+f))
		want["alice/"+f] = n
		total += n
	}
	t.Logf("loaded %d corpus messages into %d mailboxes in %v", total, len(folders), time.Since(begin).Round(time.Millisecond))
	if total != 6046 {
		t.Errorf("the corpus has %d messages, want 6046 (has scripts/fetch-corpus.sh changed?)", total)
	}

	a := harvesttest.OpenArchive(t, t.TempDir())
	h := dcStart(t, context.Background(), harvesttest.Account(t, srv, "alice", "alice"), service.NewSink(a.Archive), &harvest.Options{Logger: log})
	var progress harvest.MailboxState // a catch-up seen midway, for status
	took := dcWaitFor(t, 50*time.Second, "the archive to hold every message", func() (bool, string) {
		for _, ms := range h.Status().Mailboxes {
			if ms.State == "catching up" && ms.Fetched > 0 && ms.Fetched < ms.ToFetch && !ms.CatchUpSince.IsZero() {
				progress = ms
			}
		}
		return dcArchived(t, a, want)
	})
	if progress.ToFetch == 0 {
		t.Error("status never showed a catch-up's progress (fetched of to fetch)")
	} else {
		t.Logf("progress seen: %s %d/%d", progress.Mailbox, progress.Fetched, progress.ToFetch)
	}
	t.Logf("cold harvest of %d messages: %v (%.0f msg/s)", total, took.Round(time.Millisecond), float64(total)/took.Seconds())
	// The harvester's own view (EXAMINE) agrees with what was loaded.
	dcWaitFor(t, 10*time.Second, "the harvester to finish its first pass", func() (bool, string) {
		st := h.Status()
		for _, f := range folders {
			ms := st.Mailboxes[f]
			if ms.ServerMessages != uint32(want["alice/"+f]) || ms.LastSync.IsZero() {
				return false, fmt.Sprintf("%+v", st)
			}
		}
		return true, ""
	})
	h.stop(t)

	begin = time.Now()
	st := harvesttest.Status(t, a)
	occs := harvesttest.Occurrences(t, a)
	distinct := map[string]bool{}
	crlf := 0
	for _, f := range folders {
		s := st["alice/"+f]
		server := harvesttest.CheckAgainstServer(t, srv, a, occs, "alice", "alice", f, s.UIDValidity, true)
		folderDistinct := map[string]bool{}
		for _, body := range server {
			sum := shaHex(body)
			distinct[sum] = true
			folderDistinct[sum] = true
			if bytes.Contains(body, []byte("\r\n")) {
				crlf++
			}
		}
		if s.Occurrences != len(server) || s.Unique != len(folderDistinct) || s.UIDNext != uint32(len(server))+1 {
			t.Errorf("status %s: archived %d, unique %d, uidnext %d; server has %d messages, %d distinct, UIDs 1..%d",
				f, s.Occurrences, s.Unique, s.UIDNext, len(server), len(folderDistinct), len(server))
		}
	}
	// LoadMaildir keeps the ":2,S" of the corpus file names: \Seen on the
	// server, and so on every archived occurrence.
	seen := 0
	for _, o := range occs {
		if slices.Contains(strings.Fields(o.Flags), `\Seen`) {
			seen++
		}
	}
	if len(occs) != total || seen != total {
		t.Errorf("catalog: %d occurrences, %d with \\Seen; want %d, all \\Seen", len(occs), seen, total)
	}
	t.Logf("%d occurrences, %d distinct messages; %d BODY[]s carry CRLF (Dovecot converts the LF files); compared with the server in %v",
		len(occs), len(distinct), crlf, time.Since(begin).Round(time.Millisecond))
	begin = time.Now()
	dcVerify(t, a, len(distinct), false)
	t.Logf("flush and verify: %v", time.Since(begin).Round(time.Millisecond))
}

// TestDovecotAppendWhileIdleIsSearchable appends messages while the
// harvester IDLEs on INBOX: each is searchable within a few seconds,
// under its server UID and RFC 5092 URL, stored as the CRLF bytes Dovecot
// serves; and archiving never marks anything \Seen on the server.
func TestDovecotAppendWhileIdleIsSearchable(t *testing.T) {
	srv := dovecottest.Start(t, nil)
	log := dcLogger(t)
	srv.Append(t, "alice", "INBOX", harvesttest.Message("before", 1))
	a := harvesttest.OpenArchive(t, t.TempDir())
	h := dcStart(t, context.Background(), harvesttest.Account(t, srv, "alice", "alice"), service.NewSink(a.Archive), &harvest.Options{Logger: log})
	uidvalidity := srv.UIDValidity(t, "alice", "INBOX")

	var latencies []time.Duration
	for i := 1; i <= 3; i++ {
		dcWaitFor(t, 10*time.Second, "the harvester to IDLE on INBOX", func() (bool, string) {
			st := h.Status()
			return st.State == "harvesting" && st.Mailboxes["INBOX"].State == "idle", fmt.Sprintf("%+v", st)
		})
		raw := harvesttest.Message("idle", i)
		marker := harvesttest.Marker("idle", i)
		begin := time.Now()
		uid := srv.Append(t, "alice", "INBOX", raw)
		var hits []indexer.Hit
		dcWaitFor(t, 10*time.Second, "the appended message to be searchable", func() (bool, string) {
			hits = harvesttest.Search(t, a, marker)
			return len(hits) > 0, fmt.Sprintf("%d hits", len(hits))
		})
		latency := time.Since(begin)
		latencies = append(latencies, latency)
		if latency > 5*time.Second {
			t.Errorf("append %d: searchable after %v, want < 5 s", i, latency)
		}
		if len(hits) != 1 || len(hits[0].Occurrences) != 1 {
			t.Fatalf("search %s: %+v, want one hit with one occurrence", marker, hits)
		}
		hit, o := hits[0], hits[0].Occurrences[0]
		wantURL := fmt.Sprintf("imap://alice@%s/INBOX;UIDVALIDITY=%d/;UID=%d", srv.Addr, uidvalidity, uid)
		if o.Account != "alice" || o.Mailbox != "INBOX" || o.UID != uid || o.UIDValidity != uidvalidity || o.URL != wantURL {
			t.Errorf("search %s: occurrence %+v, want INBOX UID %d, URL %s", marker, o, uid, wantURL)
		}
		// Dovecot serves the LF-only APPEND with CRLF: the archive holds that.
		if want := shaHex(dcCRLF(raw)); hit.SHA256 != want {
			t.Errorf("search %s: sha256 %s, want %s (the CRLF BODY[] Dovecot serves; LF original %s)", marker, hit.SHA256, want, shaHex(raw))
		}
		if hit.Subject != fmt.Sprintf("idle number %d", i) {
			t.Errorf("search %s: subject %q", marker, hit.Subject)
		}
	}
	t.Logf("APPEND → searchable while idle: %v", latencies)

	// EXAMINE and BODY.PEEK[]: the harvest did not set \Seen.
	c := srv.Dial(t, "alice")
	if _, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Fetch(imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, Flags: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 4 {
		t.Errorf("INBOX has %d messages, want 4", len(msgs))
	}
	for _, m := range msgs {
		if slices.Contains(m.Flags, imap.FlagSeen) {
			t.Errorf("UID %d is \\Seen on the server after harvesting: %v", m.UID, m.Flags)
		}
	}
	dcVerify(t, a, 4, false)
}

// dcInterruptSink passes everything to the archive, counting the messages
// handed to Store, and cancels the harvester's context when Store is called
// for the at-th time: before handing that batch on (so the archive sees a
// cancelled context mid-batch) or after.
type dcInterruptSink struct {
	harvest.Sink
	at     int
	after  bool
	cancel context.CancelFunc

	stores atomic.Int64
	msgs   atomic.Int64
}

func (s *dcInterruptSink) Store(ctx context.Context, msgs []harvest.Message) error {
	n := int(s.stores.Add(1))
	s.msgs.Add(int64(len(msgs)))
	if n == s.at && !s.after {
		s.cancel()
	}
	err := s.Sink.Store(ctx, msgs)
	if n == s.at && s.after {
		s.cancel()
	}
	return err
}

// TestDovecotRestartMidCatchUp stops the harvester twice in the middle of
// catching up a 1,200-message mailbox (once with a batch in the archive's
// hands, once between batches), each time closing the archive and opening it
// again as a restarted process would. Each stop leaves a contiguous prefix
// of UIDs archived; the third run finishes with exactly the server's
// messages, no occurrence twice, every content once, having fetched again at
// most the batch in flight at each stop.
func TestDovecotRestartMidCatchUp(t *testing.T) {
	const n, chunk, mailbox = 1200, 50, "Archive"
	msgs := harvesttest.Messages("bulk", n)
	for i := 9; i < n; i += 10 {
		msgs[i] = msgs[i-1] // every tenth message is a copy of the one before
	}
	distinct := n - n/10
	srv := dovecottest.Start(t, nil)
	log := dcLogger(t)
	if got := srv.LoadMaildir(t, "alice", mailbox, harvesttest.Maildir(t, msgs)); got != n {
		t.Fatalf("loaded %d messages, want %d", got, n)
	}
	dir := t.TempDir()
	acct := harvesttest.Account(t, srv, "alice", "alice")
	opts := &harvest.Options{Logger: log, FetchChunk: chunk}
	key := "alice/" + mailbox

	fetched := int64(0)
	last := 0
	for round, interrupt := range []struct {
		at    int
		after bool
	}{{5, false}, {7, true}} {
		a := harvesttest.OpenArchive(t, dir)
		ctx, cancel := context.WithCancel(context.Background())
		sink := &dcInterruptSink{Sink: service.NewSink(a.Archive), at: interrupt.at, after: interrupt.after, cancel: cancel}
		h := dcStart(t, ctx, acct, sink, opts)
		select {
		case <-ctx.Done():
		case <-time.After(30 * time.Second):
			t.Fatalf("round %d: the harvester did not reach Store #%d in 30 s (%d Store calls so far; %d archived; status %+v)",
				round+1, interrupt.at, sink.stores.Load(), harvesttest.Status(t, a)[key].Occurrences, h.Status())
		}
		h.wait(t)
		cancel()
		fetched += sink.msgs.Load()
		a.Close(t)

		a = harvesttest.OpenArchive(t, dir)
		st := harvesttest.Status(t, a)[key]
		occs := harvesttest.Occurrences(t, a)
		a.Close(t)
		t.Logf("round %d: stopped at Store #%d (%s the batch was handed on): %d archived, uidnext %d",
			round+1, interrupt.at, map[bool]string{false: "before", true: "after"}[interrupt.after], st.Occurrences, st.UIDNext)
		if st.Occurrences <= last || st.Occurrences >= n {
			t.Fatalf("round %d: %d archived, want more than %d and fewer than %d (stopped mid catch-up)", round+1, st.Occurrences, last, n)
		}
		// A checkpoint, not a scatter: UIDs 1..k exactly, uidnext k+1.
		for i, o := range occs {
			if o.UID != uint32(i+1) {
				t.Fatalf("round %d: occurrence %d has UID %d: the archived UIDs are not 1..%d", round+1, i, o.UID, len(occs))
			}
		}
		if st.UIDNext != uint32(st.Occurrences)+1 {
			t.Errorf("round %d: uidnext %d with UIDs 1..%d archived", round+1, st.UIDNext, st.Occurrences)
		}
		last = st.Occurrences
	}

	a := harvesttest.OpenArchive(t, dir)
	sink := &dcInterruptSink{Sink: service.NewSink(a.Archive)}
	h := dcStart(t, context.Background(), acct, sink, opts)
	dcWaitFor(t, 30*time.Second, "the third run to finish the catch-up", func() (bool, string) {
		return dcArchived(t, a, map[string]int{key: n})
	})
	// Let it look again (a poll, a reconcile) before judging duplicates.
	first := h.Status().Mailboxes[mailbox].LastSync
	dcWaitFor(t, 5*time.Second, "another sync of the mailbox", func() (bool, string) {
		ls := h.Status().Mailboxes[mailbox].LastSync
		return ls.After(first), ls.String()
	})
	h.stop(t)
	fetched += sink.msgs.Load()

	st := harvesttest.Status(t, a)[key]
	if st.Occurrences != n || st.Unique != distinct || st.UIDNext != n+1 || st.Expunged != 0 {
		t.Errorf("status: archived %d, unique %d, uidnext %d, expunged %d; want %d, %d, %d, 0",
			st.Occurrences, st.Unique, st.UIDNext, st.Expunged, n, distinct, n+1)
	}
	// Each stop may cost the batch in flight once more, nothing else.
	if fetched < n || fetched > n+2*chunk {
		t.Errorf("%d messages handed to the archive over three runs; want between %d and %d", fetched, n, n+2*chunk)
	}
	t.Logf("%d messages fetched in all for %d on the server", fetched, n)
	harvesttest.CheckAgainstServer(t, srv, a, harvesttest.Occurrences(t, a), "alice", "alice", mailbox, st.UIDValidity, true)
	dcVerify(t, a, distinct, true)
}

// TestDovecotUIDValidityChange renumbers two mailboxes on the server (the
// IDLE one and a polled one): the harvester notices, starts a new epoch and
// archives every message again under the new UIDVALIDITY, keeping the old
// occurrences and storing no content twice; new mail then lands in the new
// epoch.
func TestDovecotUIDValidityChange(t *testing.T) {
	srv := dovecottest.Start(t, nil)
	log := dcLogger(t)
	srv.LoadMaildir(t, "alice", "INBOX", harvesttest.Maildir(t, harvesttest.Messages("uvinbox", 10)))
	srv.LoadMaildir(t, "alice", "Archive", harvesttest.Maildir(t, harvesttest.Messages("uvarch", 5)))
	a := harvesttest.OpenArchive(t, t.TempDir())
	h := dcStart(t, context.Background(), harvesttest.Account(t, srv, "alice", "alice"), service.NewSink(a.Archive), dcFastBackoff(log))
	dcWaitFor(t, 15*time.Second, "the first harvest", func() (bool, string) {
		return dcArchived(t, a, map[string]int{"alice/INBOX": 10, "alice/Archive": 5})
	})
	dcWaitFor(t, 5*time.Second, "IDLE on INBOX", func() (bool, string) {
		st := h.Status()
		return st.Mailboxes["INBOX"].State == "idle", fmt.Sprintf("%+v", st)
	})
	blobsBefore := dcBlobCount(t, a)
	old := map[string]uint32{"INBOX": srv.UIDValidity(t, "alice", "INBOX"), "Archive": srv.UIDValidity(t, "alice", "Archive")}
	if st := harvesttest.Status(t, a); st["alice/INBOX"].UIDValidity != old["INBOX"] || st["alice/Archive"].UIDValidity != old["Archive"] {
		t.Fatalf("status uidvalidities %d, %d; server %v", st["alice/INBOX"].UIDValidity, st["alice/Archive"].UIDValidity, old)
	}

	renumbered := map[string]uint32{}
	for mb, v := range old {
		renumbered[mb] = v + 1000
		srv.ChangeUIDValidity(t, "alice", mb, renumbered[mb])
	}
	took := dcWaitFor(t, 15*time.Second, "new epochs for both mailboxes", func() (bool, string) {
		st := harvesttest.Status(t, a)
		hs := h.Status()
		ok := true
		var desc []string
		for mb, v := range renumbered {
			s := st["alice/"+mb]
			want := map[string]int{"INBOX": 20, "Archive": 10}[mb]
			if s.UIDValidity != v || s.Occurrences != want || hs.Mailboxes[mb].UIDValidity != v {
				ok = false
			}
			desc = append(desc, fmt.Sprintf("%s: catalog uidvalidity %d archived %d, harvester uidvalidity %d",
				mb, s.UIDValidity, s.Occurrences, hs.Mailboxes[mb].UIDValidity))
		}
		return ok, strings.Join(desc, "; ")
	})
	t.Logf("new epochs archived %v after the UIDVALIDITY change", took.Round(time.Millisecond))

	st := harvesttest.Status(t, a)
	if st["alice/INBOX"].Unique != 10 || st["alice/Archive"].Unique != 5 {
		t.Errorf("unique messages INBOX %d, Archive %d; want 10, 5 (the same contents in both epochs)", st["alice/INBOX"].Unique, st["alice/Archive"].Unique)
	}
	if got := dcBlobCount(t, a); got != blobsBefore {
		t.Errorf("store holds %d blobs after the new epochs, %d before: identical content stored twice", got, blobsBefore)
	}
	occs := harvesttest.Occurrences(t, a)
	for mb, v := range old {
		// Both epochs hold the same UIDs with the same contents.
		byUID := map[uint32]map[uint32]string{}
		for _, o := range occs {
			if o.Mailbox == mb {
				if byUID[o.UID] == nil {
					byUID[o.UID] = map[uint32]string{}
				}
				byUID[o.UID][o.UIDValidity] = o.SHA256
			}
		}
		for uid, epochs := range byUID {
			if len(epochs) != 2 || epochs[v] == "" || epochs[v] != epochs[renumbered[mb]] {
				t.Errorf("%s UID %d: occurrences by uidvalidity %v; want the same content under %d and %d", mb, uid, epochs, v, renumbered[mb])
			}
		}
		harvesttest.CheckAgainstServer(t, srv, a, occs, "alice", "alice", mb, renumbered[mb], false)
	}
	hits := harvesttest.Search(t, a, harvesttest.Marker("uvinbox", 3))
	if len(hits) != 1 {
		t.Fatalf("search %s: %d hits, want 1", harvesttest.Marker("uvinbox", 3), len(hits))
	}
	var epochs []uint32
	urls := map[string]bool{}
	for _, o := range hits[0].Occurrences {
		if o.Mailbox == "INBOX" && o.UID == 3 {
			epochs = append(epochs, o.UIDValidity)
			urls[o.URL] = true
		}
	}
	slices.Sort(epochs)
	if !slices.Equal(epochs, []uint32{old["INBOX"], renumbered["INBOX"]}) || len(urls) != 2 {
		t.Errorf("search hit occurrences %+v; want INBOX UID 3 under UIDVALIDITY %d and %d, with two URLs", hits[0].Occurrences, old["INBOX"], renumbered["INBOX"])
	}

	// Life goes on in the new epoch.
	uid := srv.Append(t, "alice", "INBOX", harvesttest.Message("uvafter", 1))
	dcWaitFor(t, 10*time.Second, "new mail in the new epoch", func() (bool, string) {
		hits := harvesttest.Search(t, a, harvesttest.Marker("uvafter", 1))
		if len(hits) != 1 || len(hits[0].Occurrences) != 1 {
			return false, fmt.Sprintf("%+v", hits)
		}
		o := hits[0].Occurrences[0]
		return o.UIDValidity == renumbered["INBOX"] && o.UID == uid, fmt.Sprintf("%+v", o)
	})
	h.stop(t)
	if got := harvesttest.Status(t, a)["alice/INBOX"]; got.Occurrences != 21 || got.UIDNext != uid+1 {
		t.Errorf("INBOX: archived %d, uidnext %d; want 21, %d", got.Occurrences, got.UIDNext, uid+1)
	}
	dcVerify(t, a, 16, false)
}

func dcBlobCount(t *testing.T, a *harvesttest.Archive) int {
	t.Helper()
	n := 0
	if err := a.Blobs(context.Background(), func(store.Key) error {
		n++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestDovecotWrongPassword: an account whose password the server refuses
// is reported in state "error" with a message naming the failed login, is
// not retried in a loop, and does not hold up another account on the same
// server.
func TestDovecotWrongPassword(t *testing.T) {
	srv := dovecottest.Start(t, &dovecottest.Options{Users: []string{"alice", "bob"}})
	log := dcLogger(t)
	for i := 1; i <= 3; i++ {
		srv.Append(t, "bob", "INBOX", harvesttest.Message("bobmail", i))
	}
	a := harvesttest.OpenArchive(t, t.TempDir())
	sink := service.NewSink(a.Archive)
	bad := harvesttest.Account(t, srv, "alice", "alice")
	bad.Password = "not-" + bad.Password
	hAlice := dcStart(t, context.Background(), bad, sink, dcFastBackoff(log))
	hBob := dcStart(t, context.Background(), harvesttest.Account(t, srv, "bob", "bob"), sink, dcFastBackoff(log))

	dcWaitFor(t, 15*time.Second, "bob archived and alice in error", func() (bool, string) {
		ok, desc := dcArchived(t, a, map[string]int{"bob/INBOX": 3})
		st := hAlice.Status()
		return ok && st.State == "error", fmt.Sprintf("%s; alice %+v", desc, st)
	})
	// Give a hammering harvester the chance to show itself.
	time.Sleep(time.Second)
	st := hAlice.Status()
	lower := strings.ToLower(st.Error)
	if st.State != "error" || !strings.Contains(lower, "login") || !strings.Contains(st.Error, harvest.ErrAuth.Error()) {
		t.Errorf("alice: state %q, error %q; want state error, naming the refused login", st.State, st.Error)
	}
	if len(st.Mailboxes) != 0 {
		t.Errorf("alice: mailboxes %v before any login succeeded", st.Mailboxes)
	}
	if bs := hBob.Status(); bs.State != "harvesting" || bs.Error != "" || bs.Mailboxes["INBOX"].ServerMessages != 3 {
		t.Errorf("bob: %+v; want harvesting, no error, 3 messages on the server", bs)
	}
	for k := range harvesttest.Status(t, a) {
		if strings.HasPrefix(k, "alice/") {
			t.Errorf("the archive has mailbox %s of the account that never logged in", k)
		}
	}
	// Parked, not hammering: one refused login in Dovecot's log.
	if n := dcAuthFailures(t, srv, "alice"); n != 1 {
		t.Errorf("Dovecot logged %d failed logins for alice; want 1 (a refused account waits AuthBackoff)", n)
	}
}

// TestDovecotNestedMailboxes: with the default mailbox selection (all),
// mailboxes below others ("Archive/2019", "Lists/go/dev") are harvested
// like top-level ones.
func TestDovecotNestedMailboxes(t *testing.T) {
	srv := dovecottest.Start(t, nil)
	log := dcLogger(t)
	want := map[string]int{"alice/INBOX": 1}
	srv.Append(t, "alice", "INBOX", harvesttest.Message("nestinbox", 1))
	for i, mb := range []string{"Archive", "Archive/2019", "Lists/go/dev"} {
		srv.LoadMaildir(t, "alice", mb, harvesttest.Maildir(t, harvesttest.Messages(fmt.Sprintf("nest%d", i), 2)))
		want["alice/"+mb] = 2
	}
	a := harvesttest.OpenArchive(t, t.TempDir())
	acct := harvesttest.Account(t, srv, "alice", "alice") // Mailboxes unset: every mailbox
	h := dcStart(t, context.Background(), acct, service.NewSink(a.Archive), dcFastBackoff(log))
	dcWaitFor(t, 3*time.Second, "every mailbox archived", func() (bool, string) {
		ok, desc := dcArchived(t, a, want)
		return ok, fmt.Sprintf("%s; harvester sees %v", desc, slices.Sorted(maps.Keys(h.Status().Mailboxes)))
	})
}

// dcAuthFailures counts the failed logins of user in Dovecot's log
// ("imap-login: Disconnected (auth failed, ...): user=<alice>, ...").
func dcAuthFailures(t *testing.T, srv *dovecottest.Server, user string) int {
	t.Helper()
	f, err := os.Open(srv.LogFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		if strings.Contains(l, "imap-login:") && strings.Contains(l, "auth failed") && strings.Contains(l, "user=<"+user+">") {
			n++
		}
	}
	return n
}

// TestDovecotServerDownAtStart starts the harvester while the server is
// down: it backs off (small bounds here) and, once the server is up,
// catches up by itself; a second outage under a running harvester is
// survived the same way, and mail that arrived meanwhile is archived once.
func TestDovecotServerDownAtStart(t *testing.T) {
	srv := dovecottest.Start(t, nil)
	log := dcLogger(t)
	srv.LoadMaildir(t, "alice", "INBOX", harvesttest.Maildir(t, harvesttest.Messages("downinbox", 25)))
	srv.LoadMaildir(t, "alice", "Sent", harvesttest.Maildir(t, harvesttest.Messages("downsent", 10)))
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	a := harvesttest.OpenArchive(t, t.TempDir())
	h := dcStart(t, context.Background(), harvesttest.Account(t, srv, "alice", "alice"), service.NewSink(a.Archive), dcFastBackoff(log))
	dcWaitFor(t, 5*time.Second, "the harvester to back off", func() (bool, string) {
		st := h.Status()
		return st.State == "backing off" && strings.Contains(st.Error, "connect"), fmt.Sprintf("%+v", st)
	})
	time.Sleep(time.Second) // several failed attempts; the backoff reaches its bound
	if st := h.Status(); st.State != "backing off" {
		t.Errorf("with the server down: state %q, want backing off", st.State)
	}
	want := map[string]int{"alice/INBOX": 25, "alice/Sent": 10}
	if ok, desc := dcArchived(t, a, map[string]int{"alice/INBOX": 0, "alice/Sent": 0}); !ok {
		t.Errorf("archived with the server down: %s", desc)
	}

	begin := time.Now()
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	up := time.Since(begin)
	took := dcWaitFor(t, 10*time.Second, "the catch-up after the server came up", func() (bool, string) {
		return dcArchived(t, a, want)
	})
	t.Logf("server up in %v; caught up %v later", up.Round(time.Millisecond), took.Round(time.Millisecond))
	if took > 5*time.Second {
		t.Errorf("caught up %v after the server came up, want < 5 s with MaxBackoff 500ms", took)
	}
	dcWaitFor(t, 5*time.Second, "IDLE after recovery", func() (bool, string) {
		st := h.Status()
		return st.State == "harvesting" && st.Error == "" && st.Mailboxes["INBOX"].State == "idle", fmt.Sprintf("%+v", st)
	})

	// A second outage, this time under a running harvester; mail arrives
	// right after the server is back.
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	dcWaitFor(t, 5*time.Second, "the harvester to notice the outage", func() (bool, string) {
		st := h.Status()
		return st.State == "backing off" || st.State == "connecting", fmt.Sprintf("%+v", st)
	})
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	uid := srv.Append(t, "alice", "INBOX", harvesttest.Message("downafter", 1))
	want["alice/INBOX"] = 26
	took = dcWaitFor(t, 10*time.Second, "the message appended after the second outage", func() (bool, string) {
		return dcArchived(t, a, want)
	})
	t.Logf("second outage: new mail archived %v after the append", took.Round(time.Millisecond))
	dcWaitFor(t, 5*time.Second, "IDLE after the second recovery", func() (bool, string) {
		st := h.Status()
		return st.State == "harvesting" && st.Mailboxes["INBOX"].State == "idle", fmt.Sprintf("%+v", st)
	})
	h.stop(t)
	st := harvesttest.Status(t, a)
	if s := st["alice/INBOX"]; s.UIDNext != uid+1 || s.Occurrences != 26 {
		t.Errorf("INBOX: archived %d, uidnext %d; want 26, %d", s.Occurrences, s.UIDNext, uid+1)
	}
	occs := harvesttest.Occurrences(t, a)
	harvesttest.CheckAgainstServer(t, srv, a, occs, "alice", "alice", "INBOX", st["alice/INBOX"].UIDValidity, false)
	harvesttest.CheckAgainstServer(t, srv, a, occs, "alice", "alice", "Sent", st["alice/Sent"].UIDValidity, false)
	dcVerify(t, a, 36, false)
}

// TestDovecotManyAccounts harvests 200 accounts of one Dovecot in one
// process, one IDLE connection each: a message of its own per account and
// one identical message sent to everyone, which is stored once with 200
// occurrences.
func TestDovecotManyAccounts(t *testing.T) {
	const n = 200
	users := make([]string, n)
	for i := range users {
		users[i] = fmt.Sprintf("user%03d", i)
	}
	srv := dovecottest.Start(t, &dovecottest.Options{Users: users})
	log := dcLogger(t)
	broadcast := harvesttest.Message("broadcast", 1)
	begin := time.Now()
	for _, u := range users {
		dcDeliver(t, srv, u, harvesttest.Message(u, 1), broadcast)
	}
	t.Logf("delivered %d messages to %d accounts in %v", 2*n, n, time.Since(begin).Round(time.Millisecond))

	a := harvesttest.OpenArchive(t, t.TempDir())
	sink := service.NewSink(a.Archive)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	rssBefore := dcRSS()
	goroutinesBefore := runtime.NumGoroutine()

	hs := make([]*dcHarvester, n)
	for i, u := range users {
		acct := harvesttest.Account(t, srv, u, u)
		acct.PollInterval = time.Minute
		hs[i] = dcStart(t, context.Background(), acct, sink, &harvest.Options{Logger: log, MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second, StartJitter: 2 * time.Second})
	}
	count := func() (int, error) {
		occs, err := a.Occurrences(context.Background())
		return len(occs), err
	}
	archived := dcWaitFor(t, 40*time.Second, "every account archived", func() (bool, string) {
		c, err := count()
		return err == nil && c == 2*n, fmt.Sprintf("%d of %d archived (%v)", c, 2*n, err)
	})
	idle := dcWaitFor(t, 20*time.Second, "every account IDLE", func() (bool, string) {
		k := 0
		for _, h := range hs {
			if st := h.Status(); st.State == "harvesting" && st.Mailboxes["INBOX"].State == "idle" {
				k++
			}
		}
		return k == n, fmt.Sprintf("%d of %d idle", k, n)
	}) + archived
	runtime.GC()
	runtime.ReadMemStats(&after)
	rssAfter := dcRSS()
	t.Logf("%d accounts: %d messages archived in %v, all IDLE after %v; heap in use %.1f → %.1f MiB (+%.1f), RSS %s → %s, goroutines %d → %d",
		n, 2*n, archived.Round(time.Millisecond), idle.Round(time.Millisecond),
		mib(before.HeapInuse), mib(after.HeapInuse), mib(after.HeapInuse)-mib(before.HeapInuse),
		rssBefore, rssAfter, goroutinesBefore, runtime.NumGoroutine())

	begin = time.Now()
	for _, h := range hs {
		h.cancel()
	}
	for _, h := range hs {
		h.wait(t)
	}
	t.Logf("%d harvesters stopped in %v", n, time.Since(begin).Round(time.Millisecond))

	st := harvesttest.Status(t, a)
	for _, u := range users {
		s, ok := st[u+"/INBOX"]
		if !ok || s.Occurrences != 2 || s.Unique != 2 || s.UIDNext != 3 {
			t.Errorf("%s/INBOX: %+v; want 2 archived, UIDs 1 and 2", u, s)
		}
	}
	if len(st) != n {
		t.Errorf("status lists %d mailboxes, want %d", len(st), n)
	}
	hits := harvesttest.Search(t, a, harvesttest.Marker("broadcast", 1))
	if len(hits) != 1 || len(hits[0].Occurrences) != n || hits[0].SHA256 != shaHex(dcCRLF(broadcast)) {
		occ := 0
		if len(hits) > 0 {
			occ = len(hits[0].Occurrences)
		}
		t.Errorf("broadcast message: %d hits, %d occurrences; want one message with %d occurrences", len(hits), occ, n)
	}
	dcVerify(t, a, n+1, false)
}

// dcDeliver delivers msgs into user's INBOX the way an MDA does, straight
// into the Maildir (home/USER/Maildir, see the dovecottest package doc):
// written to tmp/, renamed into new/, owned like the user's home. Dovecot
// gives them UIDs when a session first looks. For many users this is much
// faster than APPEND, whose first login per user also builds the indexes.
func dcDeliver(t *testing.T, srv *dovecottest.Server, user string, msgs ...[]byte) {
	t.Helper()
	home := filepath.Join(srv.Dir, "home", user)
	fi, err := os.Stat(home)
	if err != nil {
		t.Fatalf("deliver to %s: %v", user, err)
	}
	uid, gid := -1, -1
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		uid, gid = int(st.Uid), int(st.Gid)
	}
	own := func(path string) {
		if err := os.Lchown(path, uid, gid); err != nil {
			t.Fatalf("deliver to %s: %v", user, err)
		}
	}
	md := filepath.Join(home, "Maildir")
	for _, d := range []string{md, filepath.Join(md, "cur"), filepath.Join(md, "new"), filepath.Join(md, "tmp")} {
		if err := os.Mkdir(d, 0o700); err != nil && !os.IsExist(err) {
			t.Fatalf("deliver to %s: %v", user, err)
		}
		own(d)
	}
	for i, m := range msgs {
		name := fmt.Sprintf("%d.M%dP%d.dovecot-test", time.Now().Unix(), i, os.Getpid())
		tmp := filepath.Join(md, "tmp", name)
		if err := os.WriteFile(tmp, m, 0o600); err != nil {
			t.Fatalf("deliver to %s: %v", user, err)
		}
		own(tmp)
		if err := os.Rename(tmp, filepath.Join(md, "new", name)); err != nil {
			t.Fatalf("deliver to %s: %v", user, err)
		}
	}
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// dcRSS returns the process's resident set size from /proc, or "n/a".
func dcRSS() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "n/a"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			return strings.Join(strings.Fields(rest), " ")
		}
	}
	return "n/a"
}

// TestDovecotConnectionLimitIsNotALoginFailure: a login refused because the
// user has too many sessions (Dovecot's mail_max_userip_connections, NO
// [LIMIT]) is a transient condition, not a wrong password: the harvester
// is throttled (throttle.go), retries, and harvests as soon as a session is
// free.
func TestDovecotConnectionLimitIsNotALoginFailure(t *testing.T) {
	srv := dovecottest.Start(t, &dovecottest.Options{MaxUserIPConnections: 1})
	log := dcLogger(t)
	srv.Append(t, "alice", "INBOX", harvesttest.Message("limit", 1))
	other := srv.Dial(t, "alice") // another client holds the one session allowed
	a := harvesttest.OpenArchive(t, t.TempDir())
	h := dcStart(t, context.Background(), harvesttest.Account(t, srv, "alice", "alice"), service.NewSink(a.Archive), dcFastBackoff(log))
	var st harvest.Status
	dcWaitFor(t, 5*time.Second, "the first refused login", func() (bool, string) {
		st = h.Status()
		return st.Error != "", fmt.Sprintf("%+v", st)
	})
	if st.State == "error" || strings.Contains(st.Error, harvest.ErrAuth.Error()) {
		t.Errorf("too many sessions reported as a refused login (parked for AuthBackoff): state %q, error %q", st.State, st.Error)
	} else if st.State != harvest.StateThrottled || !strings.Contains(st.Error, "Maximum number of connections from user+IP exceeded") {
		t.Errorf("too many sessions: state %q, error %q; want throttled with Dovecot's words", st.State, st.Error)
	}
	if err := other.Logout().Wait(); err != nil {
		t.Fatal(err)
	}
	other.Close()
	took := dcWaitFor(t, 3*time.Second, "the harvest once the other session is gone", func() (bool, string) {
		ok, desc := dcArchived(t, a, map[string]int{"alice/INBOX": 1})
		return ok, fmt.Sprintf("%s; %+v", desc, h.Status())
	})
	t.Logf("archived %v after the other session logged out", took.Round(time.Millisecond))
}

// TestDovecotCancelWhileServerHangs freezes Dovecot (SIGSTOP to its process
// group: connections are still accepted by the kernel, but nothing answers,
// as with an overloaded or wedged server) while the harvester connects.
// Cancelling the harvester must still end Run promptly: shutdown of serve
// waits for every harvester.
func TestDovecotCancelWhileServerHangs(t *testing.T) {
	srv := dovecottest.Start(t, nil)
	log := dcLogger(t)
	pgid := dcMasterPID(t, srv)
	if err := syscall.Kill(-pgid, syscall.SIGSTOP); err != nil {
		t.Fatalf("freeze dovecot: %v", err)
	}
	thawed := false
	thaw := func() {
		if !thawed {
			thawed = true
			syscall.Kill(-pgid, syscall.SIGCONT)
		}
	}
	defer thaw()
	a := harvesttest.OpenArchive(t, t.TempDir())
	h := dcStart(t, context.Background(), harvesttest.Account(t, srv, "alice", "alice"), service.NewSink(a.Archive), dcFastBackoff(log))
	time.Sleep(500 * time.Millisecond) // connected; waiting for a greeting that does not come
	if st := h.Status(); st.State != "connecting" {
		t.Errorf("while the server hangs: state %q, want connecting", st.State)
	}
	begin := time.Now()
	h.cancel()
	select {
	case err := <-h.done:
		h.stopped = true
		if err != nil {
			t.Errorf("Run returned %v after cancellation, want nil", err)
		}
		t.Logf("Run returned %v after cancellation", time.Since(begin).Round(time.Millisecond))
	case <-time.After(5 * time.Second):
		t.Errorf("Run still running %v after cancellation while the server hangs", time.Since(begin).Round(time.Millisecond))
		thaw()
		h.wait(t)
		t.Logf("Run returned %v after cancellation, once the server answered again", time.Since(begin).Round(time.Millisecond))
	}
}

// dcMasterPID returns the pid of srv's Dovecot master, which leads the
// process group of the server, from the master.pid in its base_dir.
func dcMasterPID(t *testing.T, srv *dovecottest.Server) int {
	t.Helper()
	cfg, err := os.ReadFile(srv.ConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(cfg), "\n") {
		if rest, ok := strings.CutPrefix(l, "base_dir = "); ok {
			b, err := os.ReadFile(filepath.Join(strings.TrimSpace(rest), "master.pid"))
			if err != nil {
				t.Fatal(err)
			}
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil || pid <= 1 {
				t.Fatalf("master.pid %q: %v", b, err)
			}
			return pid
		}
	}
	t.Fatalf("no base_dir in %s", srv.ConfigFile)
	return 0
}
