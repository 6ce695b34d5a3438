package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailvault/indexer/mailfile/corpustest"
)

// writeMaildir writes n small distinct messages into a new Maildir.
func writePackMaildir(t *testing.T, n int) string {
	t.Helper()
	md := filepath.Join(t.TempDir(), "Maildir")
	for _, d := range []string{"cur", "new", "tmp"} {
		os.MkdirAll(filepath.Join(md, d), 0o700)
	}
	for i := range n {
		raw := fmt.Sprintf("From: a%d@example.org\r\nTo: b@example.org\r\nSubject: ledger note %d\r\nMessage-ID: <%d@example.org>\r\nDate: Mon, 4 Mar 2024 10:00:00 +0000\r\n\r\nbody %d of the pack test\r\n", i, i, i, i)
		if err := os.WriteFile(filepath.Join(md, "cur", fmt.Sprintf("%d.eml:2,S", i)), []byte(raw), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return md
}

// The store commands end to end: a new archive on pack segments, import,
// verify, migrate to files and back (each followed by the whole-archive
// verify), compact, each audited; --help and bad arguments.
func TestStoreCommands(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	mv := func(args ...string) cliResult { t.Helper(); return inProcess(t, args...) }
	if r := mv("store", "--help"); r.code != 0 || !strings.Contains(r.stderr+r.stdout, "migrate") || !strings.Contains(r.stderr+r.stdout, "--to") {
		t.Errorf("store --help: exit %d, %q", r.code, r.stderr)
	}
	if r := mv("store", "migrate", "--data", data, "--to", "tape"); r.code != 2 || !strings.Contains(r.stderr, "tape") {
		t.Errorf("store migrate --to tape: exit %d, %q; want 2 naming the value", r.code, r.stderr)
	}
	if r := mv("store", "frobnicate", "--data", data); r.code == 0 {
		t.Errorf("store frobnicate: exit 0")
	}
	r := mv("store", "init", "--data", data, "--json")
	var ini map[string]string
	if err := json.Unmarshal([]byte(r.stdout), &ini); err != nil || r.code != 0 || ini["layout"] != "pack" {
		t.Fatalf("store init: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	if r := mv("import", "--data", data, "--account", "alice", writePackMaildir(t, 40)); r.code != 0 {
		t.Fatalf("import: exit %d, %s", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(data, "blobs")); err == nil {
		t.Errorf("a pack archive has a blobs/ directory")
	}
	verifyOK(t, inProcess, data, 40)
	if r := mv("store", "init", "--data", data); r.code != 2 {
		t.Errorf("store init on an existing archive: exit %d", r.code)
	}
	for _, to := range []string{"files", "pack"} {
		r := mv("store", "migrate", "--data", data, "--to", to, "--json")
		var rep struct {
			From, To      string
			Blobs, Copied int
			Switched      bool
			Removed       bool
		}
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || r.code != 0 || rep.To != to || rep.Blobs != 40 || rep.Copied != 40 || !rep.Switched || !rep.Removed {
			t.Fatalf("store migrate --to %s: exit %d, %q %q", to, r.code, r.stdout, r.stderr)
		}
		verifyOK(t, inProcess, data, 40)
		if n := searchTotal(t, inProcess, data, "ledger"); n != 40 {
			t.Errorf("after migrating to %s: search ledger = %d, want 40", to, n)
		}
	}
	if r := mv("store", "migrate", "--data", data, "--to", "pack"); r.code == 0 || !strings.Contains(r.stderr, "already") {
		t.Errorf("migrate to the layout it has: exit %d, %q", r.code, r.stderr)
	}
	r = mv("store", "compact", "--data", data, "--json")
	if r.code != 0 || !strings.Contains(r.stdout, `"segments"`) {
		t.Errorf("store compact: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	r = mv("audit", "--data", data, "--json")
	for _, action := range []string{actionStoreInit, actionStoreMigrate, actionStoreCompact} {
		if !strings.Contains(r.stdout, `"`+action+`"`) {
			t.Errorf("audit lacks %s:\n%s", action, r.stdout)
		}
	}
}

// An import into a pack archive killed (SIGKILL) while segments grow, four
// times at random points, then run to the end: verify finds every message
// stored, cataloged and indexed once, and nothing torn (Open cut each
// unpublished tail).
func TestPackImportSurvivesSIGKILL(t *testing.T) {
	c := corpustest.Scan(t, corpustest.Maildir(t))
	f := c.Folder(t, "easy-ham-2")
	total := distinctOf([]*corpustest.Folder{f})
	bin := buildMailvault(t)
	mv := binary(bin)
	data := filepath.Join(t.TempDir(), "data")
	if r := mv(t, "store", "init", "--data", data, "--layout", "pack"); r.code != 0 {
		t.Fatalf("store init: exit %d, %s", r.code, r.stderr)
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 14))
	segSize := func() int64 {
		var n int64
		segs, _ := filepath.Glob(filepath.Join(data, "packs", "seg-*.pack"))
		for _, s := range segs {
			if fi, err := os.Stat(s); err == nil {
				n += fi.Size()
			}
		}
		return n
	}
	args := []string{"import", "--data", data, "--account", "sa", f.Dir}
	kills := 0
	for range 4 {
		from := segSize()
		grow := int64(20_000 + rng.IntN(400_000))
		r := runBinaryKill(t, bin, 0, func() bool { return segSize() > from+grow }, args...)
		if r.killed {
			kills++
		} else if r.code != 0 {
			t.Fatalf("import: exit %d, %s", r.code, r.stderr)
		}
	}
	if r := mv(t, args...); r.code != 0 {
		t.Fatalf("final import: exit %d, %s", r.code, r.stderr)
	}
	t.Logf("%d of 4 imports killed while a segment grew", kills)
	if kills == 0 {
		t.Errorf("no import was killed mid-way: the test proved nothing")
	}
	verifyOK(t, mv, data, total)
}
