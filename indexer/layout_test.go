package indexer

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mailvault/indexer/store"
)

// testLayout is the layout openTest gives a new archive ("" = the default).
// TestStoreLayouts sets it to run the archive's store tests again on pack
// segments; nothing in this package's tests runs in parallel.
var testLayout = ""

// TestStoreLayouts runs the archive's tests of what the store of record
// does (ingest, dedup, byte-exactness, rebuild from store and catalog,
// disposal, recovery, verify, the interrupted-ingest journal) on the pack
// layout; they run on the files layout as themselves.
func TestStoreLayouts(t *testing.T) {
	tests := []struct {
		name string
		fn   func(*testing.T)
	}{
		{"IngestIsIdempotentAndStoresOnce", TestIngestIsIdempotentAndStoresOnce},
		{"MalformedMessageIsStoredByteExact", TestMalformedMessageIsStoredByteExact},
		{"IndexIsRebuiltFromStoreAndCatalog", TestIndexIsRebuiltFromStoreAndCatalog},
		{"Dispose", TestDispose},
		{"DisposeResumes", TestDisposeResumes},
		{"DisposeCopyArrivingMeanwhile", TestDisposeCopyArrivingMeanwhile},
		{"ArchiveStatusAndLookups", TestArchiveStatusAndLookups},
		{"InterruptedIngestIsNotLoss", TestInterruptedIngestIsNotLoss},
		{"CatalogCheckInVerify", TestCatalogCheckInVerify},
	}
	for _, layout := range []string{LayoutPack} {
		for _, tc := range tests {
			t.Run(layout+"/"+tc.name, func(t *testing.T) {
				testLayout = layout
				defer func() { testLayout = "" }()
				tc.fn(t)
			})
		}
	}
}

// The layout is chosen at creation, recorded, and kept: a later Open with
// another choice (or none) opens what is there.
func TestLayoutRecorded(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct{ create, reopen, want, dir string }{
		{"", LayoutPack, LayoutFiles, "blobs"},
		{LayoutPack, "", LayoutPack, "packs"},
		{LayoutFiles, LayoutPack, LayoutFiles, "blobs"},
	} {
		dir := t.TempDir()
		a, err := Open(dir, &Options{Layout: tc.create})
		if err != nil {
			t.Fatal(err)
		}
		mustMailbox(t, a, "alice", "INBOX")
		ingest(t, a, corpusItems("alice", 0, 5)...)
		a.Close()
		a, err = Open(dir, &Options{Layout: tc.reopen})
		if err != nil {
			t.Fatal(err)
		}
		if a.Layout() != tc.want || countBlobs(t, a) != 5 {
			t.Errorf("created %q, reopened asking %q: layout %q with %d blobs, want %q with 5", tc.create, tc.reopen, a.Layout(), countBlobs(t, a), tc.want)
		}
		if !dirExists(filepath.Join(dir, tc.dir)) || dirExists(filepath.Join(dir, layoutDir(otherLayout(tc.want)))) {
			t.Errorf("layout %q: want only %s/ in the data directory", tc.want, tc.dir)
		}
		a.Close()
		ro, err := Open(dir, &Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		if rep, err := ro.Verify(ctx, nil); err != nil || len(rep.Problems) > 0 || rep.Blobs != 5 {
			t.Errorf("layout %q: read-only Verify = %+v, %v", tc.want, rep, err)
		}
		ro.Close()
	}
	// An archive from before layouts were recorded is files, whatever is asked.
	dir := t.TempDir()
	a := openTest(t, dir)
	mustMailbox(t, a, "alice", "INBOX")
	ingest(t, a, corpusItems("alice", 0, 3)...)
	a.Close()
	os.Remove(filepath.Join(dir, layoutFileName))
	a, err := Open(dir, &Options{Layout: LayoutPack})
	if err != nil || a.Layout() != LayoutFiles || countBlobs(t, a) != 3 {
		t.Fatalf("old archive opened asking pack: %v, layout %q", err, a.Layout())
	}
	a.Close()
	if _, err := Open(t.TempDir(), &Options{Layout: "tape"}); err == nil || !strings.Contains(err.Error(), `"tape"`) {
		t.Errorf("Open with layout tape = %v, want an error naming it", err)
	}
}

// rawsOf reads every blob the catalog's messages name, through the archive.
func rawsOf(t *testing.T, a *Archive, keys []store.Key) map[store.Key][]byte {
	t.Helper()
	out := map[store.Key][]byte{}
	for _, k := range keys {
		raw, err := a.readBlob(context.Background(), k)
		if err != nil {
			t.Fatalf("read %s: %v", k, err)
		}
		out[k] = raw
	}
	return out
}

func verifyBlobs(t *testing.T, a *Archive, blobs int) {
	t.Helper()
	rep, err := a.Verify(context.Background(), nil)
	if err != nil || len(rep.Problems) > 0 || rep.Blobs != blobs {
		t.Fatalf("Verify = %+v, %v; want %d blobs and no problems", rep, err, blobs)
	}
}

// Migration both ways on a small archive with a disposed message, each
// followed by the whole-archive verify, a search and a byte-exact read of
// every message; then a migration interrupted part way and resumed.
func TestMigrateStore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a := openTest(t, dir)
	mustMailbox(t, a, "alice", "INBOX")
	items := corpusItems("alice", 0, 120)
	ingest(t, a, items...)
	var keys []store.Key
	for _, it := range items {
		keys = append(keys, store.KeyOf(it.Raw))
	}
	dispose(t, a, keys[0])
	keys = keys[1:]
	want := rawsOf(t, a, keys)
	hitsBefore := len(find(t, a, "money", nil))
	a.Close()

	migrate := func(to string, progress func(int, int)) (MigrateReport, error) {
		t.Helper()
		a, err := Open(dir, &Options{StoreMigration: true})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		return a.MigrateStore(ctx, to, false, progress)
	}
	check := func(layout string) {
		t.Helper()
		a := openTest(t, dir)
		defer a.Close()
		if a.Layout() != layout {
			t.Fatalf("layout %q, want %q", a.Layout(), layout)
		}
		verifyBlobs(t, a, len(keys))
		for k, raw := range rawsOf(t, a, keys) {
			if !bytes.Equal(raw, want[k]) {
				t.Fatalf("%s: %d bytes after migration, want %d", k, len(raw), len(want[k]))
			}
		}
		if _, err := a.readBlob(ctx, store.KeyOf(items[0].Raw)); !errors.Is(err, ErrDisposed) {
			t.Errorf("the disposed message after migration: %v, want ErrDisposed", err)
		}
		if n := len(find(t, a, "money", nil)); n != hitsBefore {
			t.Errorf("search money: %d hits after migration, want %d", n, hitsBefore)
		}
		if dirExists(filepath.Join(dir, layoutDir(otherLayout(layout)))) {
			t.Errorf("the old layout's directory is still there")
		}
	}
	for _, to := range []string{LayoutPack, LayoutFiles} {
		rep, err := migrate(to, nil)
		if err != nil || rep.Blobs != len(keys) || rep.Copied != len(keys) || !rep.Switched || !rep.Removed {
			t.Fatalf("migrate to %s = %+v, %v", to, rep, err)
		}
		check(to)
		if _, err := migrate(to, nil); err == nil {
			t.Errorf("a second migration to %s succeeded", to)
		}
	}

	// Interrupted: cancelled after 50 blobs. The archive stays on files,
	// refuses writable opens, reads fine; the next run resumes.
	cctx, cancel := context.WithCancel(ctx)
	a, err := Open(dir, &Options{StoreMigration: true, migrateBatch: 20})
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.MigrateStore(cctx, LayoutPack, false, func(done, _ int) {
		if done == 50 {
			cancel()
		}
	})
	a.Close()
	if err == nil {
		t.Fatalf("a cancelled migration succeeded")
	}
	if _, err := Open(dir, nil); !errors.Is(err, ErrMigrating) || !strings.Contains(err.Error(), "--to pack") {
		t.Errorf("writable Open during a migration = %v, want ErrMigrating naming the command", err)
	}
	ro, err := Open(dir, &Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if ro.Layout() != LayoutFiles {
		t.Errorf("an interrupted migration switched the layout to %q", ro.Layout())
	}
	verifyBlobs(t, ro, len(keys))
	ro.Close()
	if _, err := migrate(LayoutFiles, nil); err == nil {
		t.Errorf("a migration the other way while one is unfinished succeeded")
	}
	rep, err := migrate(LayoutPack, nil)
	if err != nil || !rep.Resumed || rep.Blobs != len(keys) || rep.Copied >= len(keys) || rep.Copied == 0 {
		t.Fatalf("resumed migration = %+v, %v; want it to copy only what the first run did not", rep, err)
	}
	check(LayoutPack)

	// A stray store in the target directory (not from a recorded
	// migration) is refused: it could hold blobs deleted since.
	os.MkdirAll(filepath.Join(dir, "blobs", "ab"), 0o700)
	os.WriteFile(filepath.Join(dir, "blobs", "ab", "x.zst"), []byte("old"), 0o600)
	if _, err := migrate(LayoutFiles, nil); err == nil || !strings.Contains(err.Error(), "move it away") {
		t.Errorf("migration onto a stray store = %v, want a refusal", err)
	}
}

// On the pack layout, damage in a segment is found by verify and refused
// by every read, and a disposal's bytes are gone after CompactStore.
func TestPackDamageAndCompaction(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a, err := Open(dir, &Options{Layout: LayoutPack})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	mustMailbox(t, a, "alice", "INBOX")
	items := corpusItems("alice", 0, 30)
	ingest(t, a, items...)
	victim, doomed := store.KeyOf(items[3].Raw), store.KeyOf(items[5].Raw)
	dispose(t, a, doomed)
	if _, err := a.CompactStore(ctx); err != nil {
		t.Fatalf("CompactStore: %v", err)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "packs", "seg-*.pack"))
	var seg string
	var at int
	for _, f := range segs {
		b, _ := os.ReadFile(f)
		if bytes.Contains(b, doomed[:]) {
			t.Errorf("%s still holds the disposed blob's record", f)
		}
		if i := bytes.Index(b, victim[:]); i >= 0 {
			seg, at = f, i
		}
	}
	if seg == "" {
		t.Fatalf("no segment holds blob %s", victim)
	}
	b, _ := os.ReadFile(seg)
	b[at+100] ^= 0xff // inside the record's frame
	os.WriteFile(seg, b, 0o600)
	if _, err := a.readBlob(ctx, victim); !errors.Is(err, ErrBlobCorrupt) {
		t.Errorf("read of a damaged record = %v, want ErrBlobCorrupt", err)
	}
	rep, err := a.Verify(ctx, nil)
	if err != nil || len(rep.Problems) != 1 || rep.Problems[0].Kind != "blob-corrupt" {
		t.Errorf("Verify = %+v, %v; want one blob-corrupt", rep, err)
	}
	files := openTest(t, t.TempDir())
	defer files.Close()
	if _, err := files.CompactStore(ctx); !errors.Is(err, ErrCompactLayout) {
		t.Errorf("CompactStore on files = %v, want ErrCompactLayout", err)
	}
}
