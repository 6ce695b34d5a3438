package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"mailvault/indexer"
)

// TestDemo runs `mailvault demo` as a newcomer would (in process): it
// prints a URL and a login, the UI answers with the seeded mail, and mail
// delivered meanwhile becomes searchable. It refuses to wipe a directory
// that is not a demo's.
func TestDemo(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "demo")
	ctx, cancel := context.WithCancel(context.Background())
	var out, errs syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, &env{stdout: &out, stderr: &errs}, []string{"demo", "--data", data, "--listen", "127.0.0.1:0", "--every", "300ms", "--messages", "60"})
	}()
	defer func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("demo exit %d: %s", code, errs.String())
			}
		case <-time.After(15 * time.Second):
			t.Error("demo did not stop on cancel")
		}
	}()
	var base string
	re := regexp.MustCompile(`mailvault demo: (http://[0-9.:]+/)`)
	for deadline := time.Now().Add(30 * time.Second); base == ""; time.Sleep(50 * time.Millisecond) {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			base = m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no URL printed; stdout %q, stderr %q", out.String(), errs.String())
		}
	}
	if !strings.Contains(out.String(), "demo / demo-password") {
		t.Errorf("no login printed: %q", out.String())
	}
	archived := func() int {
		st, err := indexer.Status(context.Background(), data)
		if err != nil {
			return 0
		}
		n := 0
		for _, s := range st {
			n += s.Indexed
		}
		return n
	}
	for deadline := time.Now().Add(20 * time.Second); archived() < 62; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("demo: %d messages indexed, want the 60 seeded and some delivered; stderr %s", archived(), errs.String())
		}
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, err := c.PostForm(base+"login", url.Values{"name": {"demo"}, "password": {"demo-password"}, "next": {"/?q=subject:invoice"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "Invoice #") || !regexp.MustCompile(`imap://(alice|bob|carol)@127.0.0.1:[0-9]+/[A-Za-z]+;UIDVALIDITY=[0-9]+/;UID=[0-9]+`).Match(body) {
		t.Errorf("demo search page: %d\n%s", resp.StatusCode, body)
	}

	// A directory that is not the demo's is left alone.
	other := filepath.Join(dir, "precious")
	os.MkdirAll(other, 0o755)
	os.WriteFile(filepath.Join(other, "catalog.db"), []byte("x"), 0o644)
	var e2 bytes.Buffer
	if code := run(context.Background(), &env{stdout: io.Discard, stderr: &e2}, []string{"demo", "--data", other}); code != 2 || !strings.Contains(e2.String(), "is not a demo directory") {
		t.Errorf("demo on a non-demo directory: exit %d, %q", code, e2.String())
	}
	if _, err := os.Stat(filepath.Join(other, "catalog.db")); err != nil {
		t.Error("demo removed a directory that was not its own")
	}
}
