package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

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
	if err := s.Sync(); err != nil {
		t.Fatal(err)
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
	got, err := s.Get(k)
	if err != nil || !bytes.Equal(got, raw) {
		t.Fatalf("Get = %q, %v; want %q", got, err, raw)
	}
	if err := s.Verify(k); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.Has(k); !ok {
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
	if err := s.Verify(ka); err == nil {
		t.Fatal("Verify of swapped blob = nil, want error")
	}
	if err := os.WriteFile(s.Path(kb), []byte("not zstd"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(kb); err == nil {
		t.Fatal("Verify of garbage blob = nil, want error")
	}
	var missing Key
	if _, err := s.Get(missing); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(missing) = %v, want ErrNotFound", err)
	}
}

func TestOpenRemovesTemps(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	stray := filepath.Join(dir, ".tmp", "blob-123")
	if err := os.WriteFile(stray, []byte("half"), 0o640); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := os.Stat(stray); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stray temp file survived Open: %v", err)
	}
	n := 0
	s.Walk(func(k Key, path string, ok bool) error { n++; return nil })
	if n != 0 {
		t.Fatalf("Walk saw %d files in an empty store", n)
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
