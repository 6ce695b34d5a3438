package indexer

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"mailvault/query"
)

// corpusMsg is message i of a generated corpus: every one holds the word
// "corpusword" and one word of its own.
func corpusMsg(i int) []byte {
	return msg(fmt.Sprintf("sender%d@example.org", i%7), fmt.Sprintf("generated %d", i),
		"Mon, 4 Mar 2024 10:00:00 +0100", fmt.Sprintf("corpusword token%dx", i))
}

func corpusItems(account string, from, to int) []Item {
	var items []Item
	for i := from; i < to; i++ {
		items = append(items, Item{Account: account, Mailbox: "INBOX", UIDValidity: 7, UID: uint32(i + 1), Raw: corpusMsg(i)})
	}
	return items
}

// searchAll returns the sha256 of every message matching q (up to 100,000).
func searchAll(t *testing.T, a *Archive, q string, opts *SearchOptions) []string {
	t.Helper()
	n, err := query.ParseHuman(q)
	if err != nil {
		t.Fatal(err)
	}
	o := SearchOptions{Limit: 100000}
	if opts != nil {
		o = *opts
		o.Limit = 100000
	}
	res, err := a.Search(context.Background(), n, &o)
	if err != nil {
		t.Fatalf("Search(%q): %v", q, err)
	}
	var out []string
	for _, h := range res.Hits {
		out = append(out, h.SHA256)
	}
	slices.Sort(out)
	return out
}

// catalogKeys returns the sha256 of every message with an occurrence, sorted.
func catalogKeys(t *testing.T, a *Archive, account string) []string {
	t.Helper()
	occs, err := a.Occurrences(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, o := range occs {
		if account == "" || o.Account == account {
			out = append(out, o.SHA256)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func verifyClean(t *testing.T, a *Archive, messages int) {
	t.Helper()
	rep, err := a.Verify(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 0 || (messages >= 0 && (rep.Messages != messages || int(rep.Indexed) != messages || rep.Blobs != messages)) {
		t.Fatalf("Verify = %d messages, %d blobs, %d indexed, problems %v; want %d of each and none", rep.Messages, rep.Blobs, rep.Indexed, rep.Problems, messages)
	}
}

// TestReindexWhileLive: Reindex builds a new index while one goroutine
// ingests (new content and known content in a new account) and another
// searches without pause. No search fails, and afterwards every message is
// found, with every place, the catalog agrees, and the new index is the one
// in <dir>/index.
func TestReindexWhileLive(t *testing.T) {
	dir := t.TempDir()
	a, err := Open(dir, &Options{BatchDocs: 40})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { a.Close() }()
	ctx := context.Background()
	mustMailbox(t, a, "alice", "INBOX")
	mustMailbox(t, a, "bob", "INBOX")
	const base = 300
	ingest(t, a, corpusItems("alice", 0, base)...)
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var searches, searchErrs atomic.Int64
	var firstErr atomic.Value
	wg.Add(1)
	go func() { // searches, continuously
		defer wg.Done()
		q, _ := query.ParseHuman("corpusword")
		for {
			select {
			case <-stop:
				return
			default:
			}
			res, err := a.Search(ctx, q, &SearchOptions{Limit: 5})
			searches.Add(1)
			if err != nil {
				searchErrs.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
			} else if res.Total < base {
				searchErrs.Add(1)
				firstErr.CompareAndSwap(nil, fmt.Sprintf("search found %d messages, want at least %d", res.Total, base))
			}
		}
	}()
	var duringReindex atomic.Bool
	var ingestedDuring atomic.Int64
	ingestDone := make(chan error, 1)
	next := base
	linked := 0
	go func() { // ingest: new content for alice, old content into bob's INBOX
		for i := 0; ; i++ {
			select {
			case <-stop:
				ingestDone <- nil
				return
			default:
			}
			items := corpusItems("alice", next, next+3)
			old := corpusItems("bob", linked, linked+1)
			if _, err := a.Ingest(ctx, append(items, old...)); err != nil {
				ingestDone <- err
				return
			}
			next += 3
			linked++
			if duringReindex.Load() {
				ingestedDuring.Add(1)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()

	duringReindex.Store(true)
	var calls int
	err = a.Reindex(ctx, func(done, total int) {
		calls++
		time.Sleep(20 * time.Millisecond) // a bulk long enough for ingest to overlap it
	})
	duringReindex.Store(false)
	time.Sleep(50 * time.Millisecond) // ingest and search go on after the swap too
	close(stop)
	if err := <-ingestDone; err != nil {
		t.Fatalf("ingest during reindex: %v", err)
	}
	wg.Wait()
	if err != nil {
		t.Fatalf("Reindex: %v", err)
	}
	if n := ingestedDuring.Load(); n < 3 {
		t.Fatalf("only %d ingests overlapped the reindex; the test proves nothing", n)
	}
	if searchErrs.Load() != 0 {
		t.Fatalf("%d of %d searches failed during reindex; first: %v", searchErrs.Load(), searches.Load(), firstErr.Load())
	}
	if calls == 0 {
		t.Fatal("progress never called")
	}
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for _, leftover := range []string{indexNewDirName, indexOldDirName} {
		if dirExists(filepath.Join(dir, leftover)) {
			t.Errorf("%s left behind after Reindex", leftover)
		}
	}
	check := func(when string) {
		t.Helper()
		if got, want := searchAll(t, a, "corpusword", nil), catalogKeys(t, a, ""); !slices.Equal(got, want) {
			t.Fatalf("%s: search finds %d messages, the catalog has %d", when, len(got), len(want))
		}
		if got, want := searchAll(t, a, "corpusword", &SearchOptions{Accounts: []string{"bob"}}), catalogKeys(t, a, "bob"); !slices.Equal(got, want) || len(want) != linked {
			t.Fatalf("%s: bob's messages: search finds %d, the catalog has %d, linked %d", when, len(got), len(want), linked)
		}
		if hits := searchAll(t, a, fmt.Sprintf("token%dx", next-1), nil); len(hits) != 1 {
			t.Fatalf("%s: the last message ingested: %d hits, want 1", when, len(hits))
		}
		if n, err := a.CountUnindexed(ctx); err != nil || n != 0 {
			t.Fatalf("%s: CountUnindexed = %d, %v; want 0", when, n, err)
		}
		verifyClean(t, a, next)
	}
	check("after reindex")
	// The new index is the one on disk, and the catalog's bookkeeping is its.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	a = openTest(t, dir)
	check("reopened")
}

// TestReindexAndOfflineRebuildAgree: the offline path (DiscardIndex +
// CatchUp) still works, and Reindex on an archive whose index was lost
// (everything unindexed) takes every message.
func TestReindexAfterDiscard(t *testing.T) {
	dir := t.TempDir()
	a := openTest(t, dir)
	mustMailbox(t, a, "alice", "INBOX")
	ingest(t, a, corpusItems("alice", 0, 50)...)
	a.Close()
	a, err := Open(dir, &Options{DiscardIndex: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if n, _ := a.CountUnindexed(context.Background()); n != 50 {
		t.Fatalf("after DiscardIndex: %d unindexed, want 50", n)
	}
	if err := a.Reindex(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if got := searchAll(t, a, "corpusword", nil); len(got) != 50 {
		t.Fatalf("after Reindex: %d hits, want 50", len(got))
	}
	if n, _ := a.CountUnindexed(context.Background()); n != 0 {
		t.Fatalf("after Reindex: %d unindexed, want 0", n)
	}
	verifyClean(t, a, 50)
}

const (
	childDirEnv   = "MAILVAULT_REINDEX_CHILD_DIR"
	childStageEnv = "MAILVAULT_REINDEX_CHILD_STAGE"
)

// TestHelperReindexChild is the process TestReindexSurvivesSIGKILL kills:
// it ingests in the background, reporting each acknowledged batch, and
// reindexes, stopping for good at the stage it is told.
func TestHelperReindexChild(t *testing.T) {
	dir := os.Getenv(childDirEnv)
	if dir == "" {
		t.Skip("run by TestReindexSurvivesSIGKILL")
	}
	stage := os.Getenv(childStageEnv)
	var out sync.Mutex
	say := func(format string, args ...any) {
		out.Lock()
		fmt.Fprintf(os.Stdout, format+"\n", args...)
		out.Unlock()
	}
	a, err := Open(dir, &Options{BatchDocs: 20, reindexHook: func(s string) {
		say("stage %s", s)
		if s == stage {
			select {} // killed here
		}
	}})
	if err != nil {
		say("error %v", err)
		os.Exit(2)
	}
	go func() {
		for i := 1000; ; i += 2 {
			if _, err := a.Ingest(context.Background(), corpusItems("alice", i, i+2)); err != nil {
				say("error %v", err)
				return
			}
			say("acked %d", i+2)
			time.Sleep(3 * time.Millisecond)
		}
	}()
	for {
		if err := a.Reindex(context.Background(), nil); err != nil {
			say("error %v", err)
			os.Exit(2)
		}
		say("reindexed")
	}
}

// TestReindexSurvivesSIGKILL kills a process in the middle of Reindex, at
// each stage and at a moment of no stage, and checks that the next Open
// serves a complete index (every message acknowledged before the kill is
// found, before any catch-up), leaves no index.new or index.old behind, and
// that after CatchUp the archive verifies clean.
func TestReindexSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	const base = 150
	for _, stage := range []string{stageBulk, stageDelta, stageRenamed, stageSwapped, "timed"} {
		t.Run(stage, func(t *testing.T) {
			dir := t.TempDir()
			a := openTest(t, dir)
			mustMailbox(t, a, "alice", "INBOX")
			ingest(t, a, corpusItems("alice", 0, base)...)
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}

			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperReindexChild$", "-test.v")
			cmd.Env = append(os.Environ(), childDirEnv+"="+dir, childStageEnv+"="+stage)
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			acked := 0
			lines := make(chan string)
			go func() {
				sc := bufio.NewScanner(stdout)
				for sc.Scan() {
					lines <- sc.Text()
				}
				close(lines)
			}()
			timeout := time.After(60 * time.Second)
			var timed <-chan time.Time
			if stage == "timed" {
				timed = time.After(700 * time.Millisecond)
			}
			var seen []string
		wait:
			for {
				select {
				case l, ok := <-lines:
					if !ok {
						t.Fatalf("child exited before stage %s: %v", stage, seen)
					}
					switch {
					case strings.HasPrefix(l, "acked "):
						acked, _ = strconv.Atoi(strings.TrimPrefix(l, "acked "))
					case strings.HasPrefix(l, "error "):
						t.Fatalf("child: %s", l)
					case strings.HasPrefix(l, "stage ") || l == "reindexed":
						seen = append(seen, l)
						if l == "stage "+stage {
							break wait
						}
					}
				case <-timed:
					break wait
				case <-timeout:
					cmd.Process.Kill()
					t.Fatalf("child never reached stage %s: %v", stage, seen)
				}
			}
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			go func() {
				for range lines {
				}
			}()
			cmd.Wait()
			t.Logf("killed at %s after %v, %d acknowledged", stage, seen, acked)

			a = openTest(t, dir)
			defer a.Close()
			for _, leftover := range []string{indexNewDirName, indexOldDirName} {
				if dirExists(filepath.Join(dir, leftover)) {
					t.Errorf("%s left behind after Open", leftover)
				}
			}
			// Complete before any catch-up: the base corpus was indexed
			// before the child started, in whichever index is served now.
			hits := searchAll(t, a, "corpusword", nil)
			for i := range base {
				if got := searchAll(t, a, fmt.Sprintf("token%dx", i), nil); len(got) != 1 {
					t.Fatalf("base message %d: %d hits before catch-up, want 1 (of %d found)", i, len(got), len(hits))
				}
			}
			if err := a.CatchUp(context.Background(), nil); err != nil {
				t.Fatal(err)
			}
			if got, want := searchAll(t, a, "corpusword", nil), catalogKeys(t, a, ""); !slices.Equal(got, want) {
				t.Fatalf("after catch-up: search finds %d messages, the catalog has %d", len(got), len(want))
			}
			if n := len(catalogKeys(t, a, "")); n < base+acked-1000 && acked > 0 {
				t.Fatalf("catalog has %d messages, want at least the %d acknowledged", n, base+acked-1000)
			}
			verifyClean(t, a, -1)
		})
	}
}
