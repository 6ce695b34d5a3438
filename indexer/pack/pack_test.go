package pack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"mailvault/indexer/store"
)

var ctx = context.Background()

// message returns a distinct, realistic-looking raw message.
func message(i int) []byte {
	r := rand.New(rand.NewPCG(uint64(i), 7))
	var b strings.Builder
	fmt.Fprintf(&b, "Message-ID: <%d@example.org>\r\nSubject: note %d\r\nFrom: a@example.org\r\n\r\n", i, i)
	for range 20 + r.IntN(200) {
		fmt.Fprintf(&b, "word%d ", r.IntN(500))
	}
	return []byte(b.String())
}

func open(t *testing.T, dir string, opts *Options) *Store {
	t.Helper()
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return s
}

// put stages and publishes raws as one batch.
func put(t *testing.T, s *Store, raws ...[]byte) []store.Staged {
	t.Helper()
	var sts []store.Staged
	for _, raw := range raws {
		st, err := s.Stage(ctx, store.KeyOf(raw), raw)
		if err != nil {
			t.Fatalf("Stage: %v", err)
		}
		sts = append(sts, st)
	}
	if err := s.Publish(ctx, sts); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	return sts
}

// checkContent asserts that exactly want (key → raw) is in the store: Walk
// names each once, Get returns its bytes, Verify passes; gone are absent.
func checkContent(t *testing.T, s *Store, want map[store.Key][]byte, gone []store.Key) {
	t.Helper()
	seen := map[store.Key]int{}
	if err := s.Walk(ctx, func(k store.Key, name string, ok bool) error {
		if !ok {
			t.Errorf("Walk: %s not ok", name)
		}
		seen[k]++
		return nil
	}); err != nil {
		t.Fatalf("Walk: %v", err)
	}
	for k, raw := range want {
		if seen[k] != 1 {
			t.Errorf("Walk saw %s %d times, want 1", k, seen[k])
		}
		got, err := s.Get(ctx, k)
		if err != nil || !bytes.Equal(got, raw) {
			t.Errorf("Get(%s) = %d bytes, %v; want %d bytes", k, len(got), err, len(raw))
		}
		if err := s.Verify(ctx, k); err != nil {
			t.Errorf("Verify(%s) = %v", k, err)
		}
	}
	if len(seen) != len(want) {
		t.Errorf("Walk saw %d blobs, want %d", len(seen), len(want))
	}
	for _, k := range gone {
		if _, err := s.Get(ctx, k); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Get(%s) of a deleted blob = %v, want ErrNotFound", k, err)
		}
		if ok, err := s.Exists(ctx, k); ok || err != nil {
			t.Errorf("Exists(%s) of a deleted blob = %v, %v", k, ok, err)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, &Options{SegmentBytes: 4096})
	want := map[store.Key][]byte{}
	for b := range 10 {
		var raws [][]byte
		for i := range 20 {
			raws = append(raws, message(b*20+i))
		}
		sts := put(t, s, raws...)
		for i, raw := range raws {
			want[store.KeyOf(raw)] = raw
			if sts[i].Stored <= headerLen {
				t.Errorf("Stage: Stored = %d", sts[i].Stored)
			}
		}
	}
	// The same content again: nothing staged, nothing replaced.
	st, err := s.Stage(ctx, store.KeyOf(message(3)), message(3))
	if err != nil || st.Token != "" || st.Stored != 0 {
		t.Errorf("Stage of an existing blob = %+v, %v; want nothing to publish", st, err)
	}
	checkContent(t, s, want, nil)
	stats, err := s.Stats(ctx)
	if err != nil || stats.Blobs != 200 || stats.Segments < 10 {
		t.Errorf("Stats = %+v, %v; want 200 blobs in many 4 KiB segments", stats, err)
	}
	s.Close()
	s = open(t, dir, &Options{SegmentBytes: 4096})
	checkContent(t, s, want, nil)
	if _, err := s.Get(ctx, store.KeyOf([]byte("absent"))); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get(absent) = %v, want ErrNotFound", err)
	}
	s.Close()
	r := open(t, dir, &Options{ReadOnly: true})
	checkContent(t, r, want, nil)
	if _, err := r.Stage(ctx, store.KeyOf([]byte("x")), []byte("x")); err == nil {
		t.Errorf("Stage on a read-only store succeeded")
	}
	r.Close()
}

// Two stagings of the same content race: one entry wins, the other record
// is dead bytes, and the live account stays right for compaction.
func TestDuplicateStage(t *testing.T) {
	s := open(t, t.TempDir(), nil)
	defer s.Close()
	raw := message(1)
	a, _ := s.Stage(ctx, store.KeyOf(raw), raw)
	b, _ := s.Stage(ctx, store.KeyOf(raw), raw)
	if err := s.Publish(ctx, []store.Staged{a}); err != nil {
		t.Fatal(err)
	}
	if err := s.Publish(ctx, []store.Staged{b}); err != nil {
		t.Fatal(err)
	}
	stats, _ := s.Stats(ctx)
	if stats.Blobs != 1 || stats.Live != a.Stored || stats.Bytes != a.Stored+b.Stored {
		t.Errorf("Stats = %+v; want 1 blob, %d live of %d", stats, a.Stored, a.Stored+b.Stored)
	}
	checkContent(t, s, map[store.Key][]byte{store.KeyOf(raw): raw}, nil)
}

func TestPublishRefusesForeignToken(t *testing.T) {
	s := open(t, t.TempDir(), nil)
	defer s.Close()
	raw := message(1)
	for _, tok := range []string{"pack:1:0:100", "/tmp/x", "pack:a:b:c"} {
		if err := s.Publish(ctx, []store.Staged{{Key: store.KeyOf(raw), Token: tok}}); err == nil {
			t.Errorf("Publish(token %q) succeeded", tok)
		}
	}
	st, _ := s.Stage(ctx, store.KeyOf(raw), raw)
	s.Discard([]store.Staged{st})
	if err := s.Publish(ctx, []store.Staged{st}); err == nil {
		t.Errorf("Publish of a discarded record succeeded")
	}
	if ok, _ := s.Exists(ctx, st.Key); ok {
		t.Errorf("a discarded blob exists")
	}
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(dst, 0o700)
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// A crash while the last record was being written (or after it was written
// and before its Publish committed) leaves a torn or unpublished tail: at
// every byte offset of that record, Open cuts it, every published blob reads
// back, and appending goes on after the cut.
func TestTornTail(t *testing.T) {
	base := t.TempDir()
	s := open(t, base, nil)
	published := map[store.Key][]byte{}
	for _, raw := range [][]byte{message(1), message(2)} {
		put(t, s, raw)
		published[store.KeyOf(raw)] = raw
	}
	last := message(3)
	st, err := s.Stage(ctx, store.KeyOf(last), last)
	if err != nil {
		t.Fatal(err)
	}
	end := s.activeEnd
	seg := s.segPath(s.active)
	s.Close() // the crash: nothing of the last record was published
	// WAL and all: copy while closed.
	start := end - st.Stored
	for cut := start; cut <= end; cut++ {
		dir := filepath.Join(t.TempDir(), "c")
		copyDir(t, base, dir)
		if err := os.Truncate(filepath.Join(dir, filepath.Base(seg)), cut); err != nil {
			t.Fatal(err)
		}
		s := open(t, dir, nil)
		if fi, _ := os.Stat(filepath.Join(dir, filepath.Base(seg))); fi.Size() != start {
			t.Errorf("cut at %d: segment is %d bytes after Open, want %d", cut, fi.Size(), start)
		}
		checkContent(t, s, published, []store.Key{store.KeyOf(last)})
		fresh := message(4)
		put(t, s, fresh)
		s.Close()
		s = open(t, dir, nil)
		want := map[store.Key][]byte{store.KeyOf(fresh): fresh}
		for k, v := range published {
			want[k] = v
		}
		checkContent(t, s, want, []store.Key{store.KeyOf(last)})
		s.Close()
	}
}

// A segment shorter than the index says it was published is a disk fault
// (or a file truncated behind the archive's back): Open refuses it rather
// than forget blobs, and says what to do.
func TestPublishedTailMissing(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, nil)
	put(t, s, message(1), message(2))
	seg, end := s.segPath(s.active), s.activeEnd
	s.Close()
	os.Truncate(seg, end-1)
	_, err := Open(dir, nil)
	if !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), "backup") {
		t.Errorf("Open of a segment missing published bytes = %v, want ErrCorrupt naming the remedy", err)
	}
}

// Every damaged byte of a record is found on read: ErrCorrupt, never other
// bytes.
func TestDamageDetected(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, nil)
	defer s.Close()
	raw := message(1)
	st := put(t, s, raw)[0]
	seg := s.segPath(s.active)
	orig, _ := os.ReadFile(seg)
	for i := range int(st.Stored) {
		b := bytes.Clone(orig)
		b[i] ^= 0x40
		os.WriteFile(seg, b, 0o600)
		got, err := s.Get(ctx, st.Key)
		if !errors.Is(err, store.ErrCorrupt) {
			t.Fatalf("byte %d flipped: Get = %d bytes, %v; want ErrCorrupt", i, len(got), err)
		}
		if err := s.Verify(ctx, st.Key); !errors.Is(err, store.ErrCorrupt) {
			t.Fatalf("byte %d flipped: Verify = %v; want ErrCorrupt", i, err)
		}
	}
	os.WriteFile(seg, orig, 0o600)
	if err := s.Verify(ctx, st.Key); err != nil {
		t.Errorf("Verify after repair = %v", err)
	}
}

// fixture fills a store with n blobs over small segments and deletes every
// third; it returns the live and the deleted.
func fixture(t *testing.T, s *Store, n int) (map[store.Key][]byte, []store.Key) {
	t.Helper()
	live := map[store.Key][]byte{}
	var gone []store.Key
	for b := 0; b < n; b += 10 {
		var raws [][]byte
		for i := b; i < b+10 && i < n; i++ {
			raws = append(raws, message(i))
		}
		put(t, s, raws...)
		for _, raw := range raws {
			live[store.KeyOf(raw)] = raw
		}
	}
	i := 0
	for k := range live {
		if i%3 == 0 {
			d, err := s.Delete(ctx, k, "retention: test")
			if err != nil || d.Key != k || d.Stored <= 0 || d.Reason != "retention: test" {
				t.Fatalf("Delete = %+v, %v", d, err)
			}
			gone = append(gone, k)
		}
		i++
	}
	for _, k := range gone {
		delete(live, k)
	}
	return live, gone
}

// noBytesOf asserts that no segment file holds a deleted blob's record.
func noBytesOf(t *testing.T, dir string, gone []store.Key) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "seg-*.pack"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, k := range gone {
			if bytes.Contains(b, k[:]) {
				t.Errorf("%s still holds the record of deleted blob %s", filepath.Base(f), k)
			}
		}
	}
}

func TestDeleteThenCompact(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, &Options{SegmentBytes: 8192})
	live, gone := fixture(t, s, 120)
	checkContent(t, s, live, gone) // gone before compaction
	if _, err := s.Delete(ctx, gone[0], "again"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Delete of a deleted blob = %v, want ErrNotFound", err)
	}
	if _, err := s.Delete(ctx, store.KeyOf(message(1)), " "); !errors.Is(err, store.ErrNoReason) {
		t.Errorf("Delete without a reason = %v, want ErrNoReason", err)
	}
	before, _ := s.Stats(ctx)
	rep, err := s.Compact(ctx)
	if err != nil {
		t.Fatalf("Compact: %v", err)
	}
	after, _ := s.Stats(ctx)
	if rep.Segments == 0 || rep.Reclaimed <= 0 || after.Bytes >= before.Bytes || after.Deleted != 0 || after.Live != after.Bytes {
		t.Errorf("Compact = %+v; stats %+v → %+v; want segments rewritten and every byte live", rep, before, after)
	}
	checkContent(t, s, live, gone)
	noBytesOf(t, dir, gone)
	// Writing goes on after a compaction sealed the active segment.
	fresh := message(9999)
	put(t, s, fresh)
	live[store.KeyOf(fresh)] = fresh
	s.Close()
	s = open(t, dir, &Options{SegmentBytes: 8192})
	defer s.Close()
	checkContent(t, s, live, gone)
	if rep, err := s.Compact(ctx); err != nil || rep.Segments != 0 {
		t.Errorf("second Compact = %+v, %v; want nothing to do", rep, err)
	}
}

var errCrash = errors.New("simulated crash")

// A crash at each step of a compaction: after Open, every live blob reads
// back exactly once, no deleted blob is readable, and a second Compact
// finishes the job.
func TestCompactCrash(t *testing.T) {
	steps := []string{"target created", "target written", "target synced", "before switch", "switched", "source removed"}
	for _, step := range steps {
		t.Run(strings.ReplaceAll(step, " ", "_"), func(t *testing.T) {
			dir := t.TempDir()
			crashed := false
			s := open(t, dir, &Options{SegmentBytes: 8192, compactHook: func(s string) error {
				if s == step && !crashed {
					crashed = true
					return errCrash
				}
				return nil
			}})
			live, gone := fixture(t, s, 90)
			if _, err := s.Compact(ctx); !errors.Is(err, errCrash) {
				t.Fatalf("Compact = %v, want the simulated crash", err)
			}
			s.Close()
			s = open(t, dir, &Options{SegmentBytes: 8192})
			defer s.Close()
			checkContent(t, s, live, gone)
			var states []string
			rows, _ := s.db.Query(`SELECT state FROM segments`)
			for rows.Next() {
				var st string
				rows.Scan(&st)
				states = append(states, st)
			}
			rows.Close()
			for _, st := range states {
				if st != "active" && st != "sealed" {
					t.Errorf("after Open a segment is %q", st)
				}
			}
			files, _ := filepath.Glob(filepath.Join(dir, "seg-*.pack"))
			if len(files) != len(states) {
				t.Errorf("%d segment files for %d segments in the index", len(files), len(states))
			}
			if _, err := s.Compact(ctx); err != nil {
				t.Fatalf("Compact after the crash: %v", err)
			}
			checkContent(t, s, live, gone)
			noBytesOf(t, dir, gone)
		})
	}
}

// Readers never fail while compactions move their blobs.
func TestConcurrentReadersDuringCompaction(t *testing.T) {
	s := open(t, t.TempDir(), &Options{SegmentBytes: 8192})
	defer s.Close()
	live, _ := fixture(t, s, 300)
	keys := make([]store.Key, 0, len(live))
	for k := range live {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return bytes.Compare(keys[i][:], keys[j][:]) < 0 })
	// The first 15 keys are deleted while the readers read the others.
	doomed, read := keys[:15], keys[15:]
	want := map[store.Key][]byte{}
	for _, k := range read {
		want[k] = live[k]
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var reads int
	var failures []string
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := read[i%len(read)]
				got, err := s.Get(ctx, k)
				mu.Lock()
				reads++
				if err != nil || !bytes.Equal(got, want[k]) {
					failures = append(failures, fmt.Sprintf("Get(%s): %v", k, err))
				}
				mu.Unlock()
			}
		}()
	}
	compactions := 0
	for round := range 3 {
		// Delete a few more each round, so that there is work each time.
		for _, k := range doomed[round*5 : round*5+5] {
			if _, err := s.Delete(ctx, k, "test"); err != nil {
				t.Fatal(err)
			}
		}
		rep, err := s.Compact(ctx)
		if err != nil {
			t.Fatalf("Compact: %v", err)
		}
		compactions += rep.Segments
	}
	close(stop)
	wg.Wait()
	if len(failures) > 0 {
		t.Errorf("%d of %d reads failed during compaction, e.g. %s", len(failures), reads, failures[0])
	}
	if compactions < 3 || reads < 100 {
		t.Errorf("%d segments compacted, %d reads beside them; want both to happen", compactions, reads)
	}
	checkContent(t, s, want, doomed)
}

// Concurrent Stage/Publish from several writers (as harvesters of many
// accounts do), with segments rolling under them.
func TestConcurrentWriters(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, &Options{SegmentBytes: 16384})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range 10 {
				var sts []store.Staged
				for i := range 5 {
					raw := message(w*1000 + b*10 + i)
					st, err := s.Stage(ctx, store.KeyOf(raw), raw)
					if err != nil {
						errs <- err
						return
					}
					sts = append(sts, st)
				}
				if err := s.Publish(ctx, sts); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	want := map[store.Key][]byte{}
	for w := range 8 {
		for b := range 10 {
			for i := range 5 {
				raw := message(w*1000 + b*10 + i)
				want[store.KeyOf(raw)] = raw
			}
		}
	}
	checkContent(t, s, want, nil)
	s.Close()
	s = open(t, dir, nil)
	defer s.Close()
	checkContent(t, s, want, nil)
}
