package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

var ctx = context.Background()

func TestPutGetVerify(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	raw := []byte("Subject: hi\r\n\r\nbody\r\n")
	k := KeyOf(raw)
	n, err := s.Put(k, raw)
	if err != nil || n == 0 {
		t.Fatalf("Put = %d, %v; want bytes written", n, err)
	}
	info, _ := os.Stat(s.Path(k))
	mtime := info.ModTime()
	// A second Put of the same content must not rewrite the blob.
	if n, err := s.Put(k, raw); err != nil || n != 0 {
		t.Fatalf("second Put = %d, %v; want 0, nil", n, err)
	}
	if info, _ := os.Stat(s.Path(k)); !info.ModTime().Equal(mtime) {
		t.Fatal("second Put rewrote the blob")
	}
	got, err := s.Get(ctx, k)
	if err != nil || !bytes.Equal(got, raw) {
		t.Fatalf("Get = %q, %v; want %q", got, err, raw)
	}
	if err := s.Verify(ctx, k); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.Exists(ctx, k); !ok {
		t.Fatal("Has = false after Put")
	}
}

func TestVerifyDetectsCorruption(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a, b := []byte("message a"), []byte("message b")
	ka, kb := KeyOf(a), KeyOf(b)
	if _, err := s.Put(ka, a); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(kb, b); err != nil {
		t.Fatal(err)
	}
	// Swap b's content into a's file: valid zstd, wrong content.
	data, _ := os.ReadFile(s.Path(kb))
	if err := os.WriteFile(s.Path(ka), data, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(ctx, ka); err == nil {
		t.Fatal("Verify of swapped blob = nil, want error")
	}
	if err := os.WriteFile(s.Path(kb), []byte("not zstd"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(ctx, kb); err == nil {
		t.Fatal("Verify of garbage blob = nil, want error")
	}
	var missing Key
	if _, err := s.Get(ctx, missing); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(missing) = %v, want ErrNotFound", err)
	}
}

func TestTempFilesAreSweptAndAborted(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// An aborted batch leaves nothing behind.
	k := KeyOf([]byte("x"))
	b := s.NewBatch()
	if _, err := b.Add(k, []byte("x")); err != nil {
		t.Fatal(err)
	}
	b.Abort()
	if ents, _ := os.ReadDir(filepath.Dir(s.Path(k))); len(ents) != 0 {
		t.Fatalf("Abort left %d files", len(ents))
	}
	// A crashed writer's leftovers are swept; this store's own temporary
	// files, written right after Open, are not (a sweep by modification time
	// once deleted those: file times lag the clock).
	old := filepath.Join(dir, "ab", tmpPrefix+"123-456-old")
	if err := os.WriteFile(old, []byte("half"), 0o640); err != nil {
		t.Fatal(err)
	}
	b = s.NewBatch()
	var keys []Key
	for i := range 200 {
		raw := fmt.Appendf(nil, "message %d", i)
		keys = append(keys, KeyOf(raw))
		if _, err := b.Add(KeyOf(raw), raw); err != nil {
			t.Fatal(err)
		}
	}
	s.sweepTemps(context.Background())
	if err := b.Commit(); err != nil {
		t.Fatalf("commit after a sweep: %v", err)
	}
	if _, err := os.Stat(old); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale temporary file survived the sweep: %v", err)
	}
	for _, k := range keys {
		if err := s.Verify(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	s.Walk(ctx, func(k Key, path string, ok bool) error { n++; return nil })
	if n != 200 {
		t.Fatalf("Walk saw %d files, want the 200 blobs and no temporaries", n)
	}
}

func TestParseKey(t *testing.T) {
	k := KeyOf([]byte("x"))
	got, err := ParseKey(k.String())
	if err != nil || got != k {
		t.Fatalf("ParseKey(%q) = %v, %v", k.String(), got, err)
	}
	for _, bad := range []string{"", "zz", k.String()[:10]} {
		if _, err := ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q) = nil error, want error", bad)
		}
	}
}

func TestConcurrentBatchesOfTheSameContent(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	raw := []byte("same bytes")
	k := KeyOf(raw)
	b1, b2 := s.NewBatch(), s.NewBatch()
	// Both batches look before either commits, so both write the blob.
	if n, err := b1.Add(k, raw); err != nil || n == 0 {
		t.Fatalf("b1.Add = %d, %v", n, err)
	}
	if n, err := b2.Add(k, raw); err != nil || n == 0 {
		t.Fatalf("b2.Add = %d, %v", n, err)
	}
	if err := b1.Commit(); err != nil {
		t.Fatal(err)
	}
	info1, _ := os.Stat(s.Path(k))
	if err := b2.Commit(); err != nil {
		t.Fatalf("second commit of the same content: %v", err)
	}
	info2, _ := os.Stat(s.Path(k))
	if !os.SameFile(info1, info2) {
		t.Fatal("the second commit replaced the blob's file")
	}
	if ents, _ := os.ReadDir(filepath.Dir(s.Path(k))); len(ents) != 1 {
		t.Fatalf("%d files in the blob's directory, want 1 (temporaries removed)", len(ents))
	}
}

func TestDeleteIsExplicitAndReported(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	raw := []byte("Subject: expired\r\n\r\nseven years old\r\n")
	k := KeyOf(raw)
	stored, err := s.Put(k, raw)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(ctx, k, "  "); !errors.Is(err, ErrNoReason) {
		t.Fatalf("Delete without a reason = %v, want ErrNoReason", err)
	}
	if ok, _ := s.Exists(ctx, k); !ok {
		t.Fatal("Delete without a reason removed the blob")
	}
	d, err := s.Delete(ctx, k, "retention: policy 7y expired")
	if err != nil {
		t.Fatal(err)
	}
	if d.Key != k || d.Reason != "retention: policy 7y expired" || d.Stored != stored || d.Name != s.Path(k) || d.At.IsZero() {
		t.Fatalf("Delete = %+v, want key %s, the reason, %d bytes, its path and a time", d, k, stored)
	}
	if ok, _ := s.Exists(ctx, k); ok {
		t.Fatal("blob still there after Delete")
	}
	if _, err := s.Get(ctx, k); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete = %v, want ErrNotFound", err)
	}
	if _, err := s.Delete(ctx, k, "again"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Delete = %v, want ErrNotFound", err)
	}
}

func TestStagePublishDiscard(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a, b := []byte("kept"), []byte("dropped")
	sa, err := s.Stage(ctx, KeyOf(a), a)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := s.Stage(ctx, KeyOf(b), b)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.Exists(ctx, sa.Key); ok {
		t.Fatal("a staged blob is visible before Publish")
	}
	s.Discard([]Staged{sb})
	if err := s.Publish(ctx, []Staged{sa}); err != nil {
		t.Fatal(err)
	}
	// Publishing again is harmless (a retry after a partial failure).
	if err := s.Publish(ctx, []Staged{sa}); err != nil {
		t.Fatalf("second Publish = %v", err)
	}
	if got, err := s.Get(ctx, sa.Key); err != nil || !bytes.Equal(got, a) {
		t.Fatalf("Get(published) = %q, %v", got, err)
	}
	if ok, _ := s.Exists(ctx, sb.Key); ok {
		t.Fatal("a discarded blob was published")
	}
	if again, err := s.Stage(ctx, sa.Key, a); err != nil || again.Token != "" || again.Stored != 0 {
		t.Fatalf("Stage of a stored blob = %+v, %v; want nothing to publish", again, err)
	}
	n := 0
	s.Walk(ctx, func(Key, string, bool) error { n++; return nil })
	if n != 1 {
		t.Fatalf("Walk saw %d files, want 1 (no temporaries left)", n)
	}
}
