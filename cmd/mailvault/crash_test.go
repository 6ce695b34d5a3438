package main

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"mailvault/indexer/mailfile/corpustest"
)

// crashFolders are the corpus folders the crash test imports: 3,046
// messages, enough to kill an import at many points while keeping the test
// short.
var crashFolders = []string{"easy-ham-2", "hard-ham-1", "spam-2"}

// crashQueries are searches whose answers must not depend on how often an
// import was killed.
var crashQueries = [][]string{
	{"from:tomwhore@slack.net"},
	{"subject:mortgage"},
	{`"on the other hand"`},
	{"aliyorsunuz"},
	{"larger:50k"},
	{"has:attachment"},
	{"before:2002-08-01"},
	{"--", "-subject:mortgage"},
}

// TestImportSurvivesSIGKILL kills `mailvault import` with SIGKILL at random
// points, restarts it each time, and then checks invariants 1 and 2 (nothing
// lost, nothing duplicated) and 7 (the index is a cache) against a clean
// import of the same mail. Set MAILVAULT_CRASH_SEED to replay a run's kill
// points (as fractions of the measured import time, which varies).
func TestImportSurvivesSIGKILL(t *testing.T) {
	root := corpustest.Maildir(t)
	c := corpustest.Scan(t, root)
	var folders []*corpustest.Folder
	var paths []string
	total := 0
	for _, name := range crashFolders {
		f := c.Folder(t, name)
		folders = append(folders, f)
		paths = append(paths, f.Dir) // a Maildir++ folder given directly keeps its name
		total += len(f.Files)
	}
	if total < 3000 {
		t.Fatalf("crash folders hold %d messages, want at least 3000", total)
	}
	if distinctOf(folders) != total {
		t.Fatalf("crash folders hold %d files but %d contents; the checks below assume no duplicates", total, distinctOf(folders))
	}

	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("MAILVAULT_CRASH_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("MAILVAULT_CRASH_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("seed %d (MAILVAULT_CRASH_SEED=%d replays it)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))

	bin := buildMailvault(t)
	mv := binary(bin)
	dir := t.TempDir()

	// Deterministic crash points first: the moment a new index appears on
	// disk, before Bleve has persisted anything in it.
	t.Run("ImportKilledAtIndexCreation", func(t *testing.T) {
		killImportAtIndexCreation(t, bin, c.Folder(t, "hard-ham-1"))
	})
	t.Run("ReindexKilledAtIndexCreation", func(t *testing.T) {
		killReindexAtIndexCreation(t, bin, c.Folder(t, "hard-ham-1"))
	})
	importArgs := func(data string) []string {
		return append([]string{"import", "--data", data, "--account", "sa", "--json"}, paths...)
	}

	// A clean import: the reference, and how long a full import takes.
	clean := filepath.Join(dir, "clean")
	start := time.Now()
	r := mv(t, importArgs(clean)...)
	full := time.Since(start)
	if r.code != 0 {
		t.Fatalf("clean import: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	if sum := parseImportSummary(t, r); sum.stored+sum.linked != total || sum.present != 0 {
		t.Fatalf("clean import summary %+v: want %d imported", sum, total)
	}
	t.Logf("clean import of %d messages: %s", total, full.Round(time.Millisecond))
	want := map[string][]string{}
	for _, q := range crashQueries {
		want[strings.Join(q, " ")] = shaSet(searchAll(t, mv, clean, q...))
	}

	// Kill points spread over a third of a full import's length: sorted
	// random offsets, each run killed that long after the previous point (at
	// least 50ms after its start). Restarts redo some work (opening, catching
	// up the index, re-reading files already archived), so every kill should
	// land in a running import — with room to spare when the machine is less
	// loaded than during the timing run (a span of the whole length once let
	// one run finish the import, and the kills after it had nothing to hit).
	const kills = 8
	const minDelay = 50 * time.Millisecond
	span := full/3 - kills*minDelay
	if span < 0 {
		span = 0
	}
	points := make([]time.Duration, kills)
	for i := range points {
		points[i] = time.Duration(rng.Float64() * float64(span))
	}
	slices.Sort(points)
	crashed := filepath.Join(dir, "crashed")
	effective := 0
	prev := time.Duration(0)
	for i, p := range points {
		delay := minDelay + p - prev
		prev = p
		r := runBinary(t, bin, delay, importArgs(crashed)...)
		switch {
		case r.killed:
			effective++
		case r.code != 0:
			t.Fatalf("import run %d (not killed): exit %d, stderr:\n%s", i, r.code, r.stderr)
		}
		// Between crashes: never a duplicate, never more than the files.
		if _, err := os.Stat(filepath.Join(crashed, "catalog.db")); err != nil {
			t.Logf("run %d: killed=%v after %s, before the catalog was created", i, r.killed, delay.Round(time.Millisecond))
			continue
		}
		st := statusOf(t, mv, crashed, "sa")
		got, unindexed := 0, 0
		for _, f := range folders {
			s := st[f.Mailbox]
			got += s.Archived
			unindexed += s.NotIndexed
			// (The folders hold no two files with the same content, so
			// unique < archived would be a duplicate occurrence.)
			if s.Archived > len(f.Files) || s.Unique != s.Archived {
				t.Errorf("after kill %d: %s archived %d, unique %d, of %d files", i, f.Mailbox, s.Archived, s.Unique, len(f.Files))
			}
		}
		t.Logf("run %d: killed=%v after %s; %d of %d archived, %d not indexed yet", i, r.killed, delay.Round(time.Millisecond), got, total, unindexed)
	}
	if effective < 5 {
		t.Fatalf("only %d of %d kills hit a running import; want at least 5", effective, kills)
	}

	// Run to completion.
	r = mv(t, importArgs(crashed)...)
	if r.code != 0 {
		t.Fatalf("final import: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	sum := parseImportSummary(t, r)
	if sum.stored+sum.linked+sum.present != total || sum.fileErrors != 0 {
		t.Errorf("final import summary %+v: imported + already present should be %d", sum, total)
	}
	t.Logf("final import: %+v", sum)
	if !checkCrashed(t, mv, crashed, folders, distinctOf(folders), want, "AfterKilledImports") {
		t.FailNow()
	}

	// Kill a reindex; an import (a no-op) catches the index up.
	start = time.Now()
	if r := mv(t, "reindex", "--data", clean); r.code != 0 {
		t.Fatalf("reindex of the clean archive: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	reindex := time.Since(start)
	delay := minDelay + time.Duration(rng.Float64()*float64(max(reindex-minDelay, 0)))
	r = runBinary(t, bin, delay, "reindex", "--data", crashed)
	t.Logf("reindex takes %s; killed=%v after %s", reindex.Round(time.Millisecond), r.killed, delay.Round(time.Millisecond))
	if !r.killed && r.code != 0 {
		t.Fatalf("reindex (not killed): exit %d, stderr:\n%s", r.code, r.stderr)
	}
	r = mv(t, importArgs(crashed)...)
	if r.code != 0 {
		t.Fatalf("import after the killed reindex: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	if sum := parseImportSummary(t, r); sum.stored+sum.linked != 0 || sum.present != total {
		t.Errorf("import after the killed reindex: %+v, want 0 imported, %d already present", sum, total)
	}
	if !checkCrashed(t, mv, crashed, folders, distinctOf(folders), want, "AfterKilledReindex") {
		t.FailNow()
	}

	// And a full reindex leaves the same.
	if r := mv(t, "reindex", "--data", crashed); r.code != 0 {
		t.Fatalf("reindex: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	checkCrashed(t, mv, crashed, folders, distinctOf(folders), want, "AfterReindex")
}

// checkCrashed checks an archive that went through crashes against the
// corpus and, when want is not nil, the clean archive's answers. It runs as a
// subtest named when, and reports whether it passed.
func checkCrashed(t *testing.T, mv runner, data string, folders []*corpustest.Folder, distinct int, want map[string][]string, when string) bool {
	t.Helper()
	return t.Run(when, func(t *testing.T) {
		st := statusOf(t, mv, data, "sa")
		checkStatusMatchesCorpus(t, st, folders)
		checkOccurrences(t, searchAll(t, mv, data, "larger:0"), folders)
		for _, q := range crashQueries {
			if want == nil {
				break
			}
			name := strings.Join(q, " ")
			got := shaSet(searchAll(t, mv, data, q...))
			if !slices.Equal(got, want[name]) {
				t.Errorf("search %s finds %d messages, the clean import %d", name, len(got), len(want[name]))
			}
		}
		verifyOK(t, mv, data, distinct)
	})
}

// killImportAtIndexCreation kills an import into a new archive as soon as
// the new index's index_meta.json exists, and checks that running the import
// again simply works (its help: "an import interrupted at any point can
// simply be run again").
func killImportAtIndexCreation(t *testing.T, bin string, f *corpustest.Folder) {
	mv := binary(bin)
	data := filepath.Join(t.TempDir(), "data")
	meta := filepath.Join(data, "index", "index_meta.json")
	args := []string{"import", "--data", data, "--account", "sa", "--json", f.Dir}
	folders := []*corpustest.Folder{f}

	r := runBinaryKill(t, bin, 0, func() bool {
		_, err := os.Stat(meta)
		return err == nil
	}, args...)
	t.Logf("import killed=%v when %s appeared", r.killed, meta)
	r = mv(t, args...)
	if r.code != 0 {
		t.Errorf("import after a kill at index creation: exit %d, stderr:\n%s", r.code, r.stderr)
		// Go on as a user would, to check that nothing was lost.
		if r := mv(t, "reindex", "--data", data); r.code != 0 {
			t.Fatalf("reindex: exit %d, stderr:\n%s", r.code, r.stderr)
		}
		if r = mv(t, args...); r.code != 0 {
			t.Fatalf("import after reindex: exit %d, stderr:\n%s", r.code, r.stderr)
		}
	}
	if sum := parseImportSummary(t, r); sum.stored+sum.linked+sum.present != len(f.Files) {
		t.Errorf("import after a kill at index creation: %+v, want %d in all", sum, len(f.Files))
	}
	checkCrashed(t, mv, data, folders, distinctOf(folders), nil, "Check")
}

// killReindexAtIndexCreation kills a reindex as soon as its new index's
// index_meta.json exists, and checks that an import (a no-op) then restores
// the index.
func killReindexAtIndexCreation(t *testing.T, bin string, f *corpustest.Folder) {
	mv := binary(bin)
	data := filepath.Join(t.TempDir(), "data")
	meta := filepath.Join(data, "index", "index_meta.json")
	args := []string{"import", "--data", data, "--account", "sa", "--json", f.Dir}
	folders := []*corpustest.Folder{f}

	if r := mv(t, args...); r.code != 0 {
		t.Fatalf("import: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	old, err := os.Stat(meta)
	if err != nil {
		t.Fatal(err)
	}
	r := runBinaryKill(t, bin, 0, func() bool {
		st, err := os.Stat(meta)
		return err == nil && !os.SameFile(st, old)
	}, "reindex", "--data", data)
	t.Logf("reindex killed=%v when a new %s appeared", r.killed, meta)
	r = mv(t, args...)
	if r.code != 0 {
		t.Errorf("import after a reindex killed at index creation: exit %d, stderr:\n%s", r.code, r.stderr)
		// Go on as the message says, to check that reindex at least repairs it.
		if r := mv(t, "reindex", "--data", data); r.code != 0 {
			t.Fatalf("reindex: exit %d, stderr:\n%s", r.code, r.stderr)
		}
		if r = mv(t, args...); r.code != 0 {
			t.Fatalf("import after reindex: exit %d, stderr:\n%s", r.code, r.stderr)
		}
	}
	if sum := parseImportSummary(t, r); sum.stored+sum.linked != 0 || sum.present != len(f.Files) {
		t.Errorf("import after a reindex killed at index creation: %+v, want 0 imported, %d present", sum, len(f.Files))
	}
	checkCrashed(t, mv, data, folders, distinctOf(folders), nil, "Check")
}

// distinctOf returns the number of distinct contents in folders.
func distinctOf(folders []*corpustest.Folder) int {
	distinct := map[string]bool{}
	for _, f := range folders {
		for _, h := range f.SHA {
			distinct[h] = true
		}
	}
	return len(distinct)
}
