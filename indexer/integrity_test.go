package indexer

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"mailvault/indexer/store"
)

// copyFile copies src to dst (mode 0600).
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o700)
		}
		copyFile(t, p, filepath.Join(dst, rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func problemKinds(rep *VerifyReport) map[string]int {
	out := map[string]int{}
	for _, p := range rep.Problems {
		out[p.Kind]++
	}
	return out
}

// TestCatalogLossIsFoundAndRecovered reproduces the finding: a copy of a
// data directory whose catalog.db-wal is truncated lost the last 21
// messages from the catalog (their blobs and index documents are there).
// Verify fails on them (blob-unreferenced), Reindex and the offline rebuild
// refuse to erase the evidence, Recover catalogs every one in
// _recovered/lost+found, searchable and byte-exact, and Verify is then clean.
func TestCatalogLossIsFoundAndRecovered(t *testing.T) {
	dir, lost := t.TempDir(), filepath.Join(t.TempDir(), "copy")
	a, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	mustMailbox(t, a, "alice", "INBOX")
	ingest(t, a, corpusItems("alice", 0, 30)...)
	if err := a.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	wal := filepath.Join(dir, "catalog.db-wal")
	fi, err := os.Stat(wal)
	if err != nil || fi.Size() == 0 {
		t.Fatalf("no WAL after the first batch (%v); the test needs one", err)
	}
	keep := fi.Size()
	ingest(t, a, corpusItems("alice", 30, 51)...)
	if err := a.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The copy's catalog: the database file and its WAL as they are now,
	// cut back to the end of the first batch's transactions, plus half a
	// frame of the next (a torn write).
	copyFile(t, filepath.Join(dir, "catalog.db"), filepath.Join(lost, "catalog.db"))
	copyFile(t, wal, filepath.Join(lost, "catalog.db-wal"))
	if err := os.Truncate(filepath.Join(lost, "catalog.db-wal"), keep+2000); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	copyTree(t, filepath.Join(dir, "blobs"), filepath.Join(lost, "blobs"))
	copyTree(t, filepath.Join(dir, "index"), filepath.Join(lost, "index"))

	b, err := Open(lost, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { b.Close() }()
	if n := len(catalogKeys(t, b, "")); n != 30 {
		t.Fatalf("the damaged copy's catalog holds %d messages, want 30 (the test did not lose the last batch)", n)
	}
	rep, err := b.Verify(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if k := problemKinds(rep); k["blob-unreferenced"] != 21 || rep.Orphans != 21 || k["index-extra"] != 21 {
		t.Fatalf("Verify of the damaged copy = %v (orphans %d), want 21 blob-unreferenced and 21 index-extra", k, rep.Orphans)
	}
	for _, p := range rep.Problems {
		if p.Kind == "blob-unreferenced" && !strings.Contains(p.Detail, "mailvault recover") {
			t.Fatalf("problem %v does not say to run mailvault recover", p)
		}
	}
	// Neither rebuild may erase the last trace of the lost mail.
	if err := b.Reindex(context.Background(), nil); !errors.Is(err, ErrUnreferencedBlobs) || !strings.Contains(err.Error(), "mailvault recover") {
		t.Fatalf("Reindex with 21 unreferenced blobs = %v, want ErrUnreferencedBlobs naming mailvault recover", err)
	}
	b.Close()
	if c, err := Open(lost, &Options{DiscardIndex: true}); !errors.Is(err, ErrUnreferencedBlobs) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("Open(DiscardIndex) with 21 unreferenced blobs = %v, want ErrUnreferencedBlobs", err)
	}
	if b, err = Open(lost, nil); err != nil {
		t.Fatal(err)
	}

	var calls int
	rr, err := b.Recover(context.Background(), func(done, total int) { calls++ })
	if err != nil {
		t.Fatal(err)
	}
	if rr.Unreferenced != 21 || len(rr.Recovered) != 21 || len(rr.Failed) != 0 || calls == 0 {
		t.Fatalf("Recover = %d unreferenced, %d recovered, failed %v, %d progress calls; want 21, 21, none, some", rr.Unreferenced, len(rr.Recovered), rr.Failed, calls)
	}
	var want []string
	for i := 30; i < 51; i++ {
		k := store.KeyOf(corpusMsg(i))
		want = append(want, k.String())
		raw, err := b.Raw(k.String())
		if err != nil || !bytes.Equal(raw, corpusMsg(i)) {
			t.Fatalf("Raw(recovered message %d) = %q, %v; want its bytes", i, raw, err)
		}
		if got := searchAll(t, b, fmt.Sprintf("token%dx", i), nil); !slices.Equal(got, []string{k.String()}) {
			t.Fatalf("search token%dx after recover = %v, want %s", i, got, k)
		}
		h, err := b.Message(context.Background(), k.String())
		if err != nil || len(h.Occurrences) != 1 || h.Occurrences[0].Account != RecoveredAccount || h.Occurrences[0].Mailbox != LostAndFound {
			t.Fatalf("Message(recovered %d) = %+v, %v; want one occurrence in %s/%s", i, h, err, RecoveredAccount, LostAndFound)
		}
	}
	slices.Sort(want)
	if got := catalogKeys(t, b, RecoveredAccount); !slices.Equal(got, want) {
		t.Fatalf("catalog of %s = %v, want the 21 lost messages", RecoveredAccount, got)
	}
	if got := searchAll(t, b, "account:"+RecoveredAccount, nil); !slices.Equal(got, want) {
		t.Fatalf("search account:%s = %d hits, want the 21 lost messages", RecoveredAccount, len(got))
	}
	st, err := b.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range st {
		if s.Account == RecoveredAccount {
			found = s.Mailbox == LostAndFound && s.Source == "recovered" && s.Occurrences == 21 && s.Indexed == 21
		}
	}
	if !found {
		t.Fatalf("status = %+v, want %s/%s with 21 messages, all indexed", st, RecoveredAccount, LostAndFound)
	}
	verifyClean(t, b, 51)
	// Idempotent; and reindex works again, and keeps them.
	if rr, err := b.Recover(context.Background(), nil); err != nil || rr.Unreferenced != 0 || len(rr.Recovered) != 0 {
		t.Fatalf("second Recover = %+v, %v; want nothing to do", rr, err)
	}
	if err := b.Reindex(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if got := searchAll(t, b, "account:"+RecoveredAccount, nil); !slices.Equal(got, want) {
		t.Fatalf("after reindex, search account:%s = %d hits, want 21", RecoveredAccount, len(got))
	}
	verifyClean(t, b, 51)
}

// TestRecoveredAccountIsReserved: no harvest or import can use the account
// that holds recovered mail.
func TestRecoveredAccountIsReserved(t *testing.T) {
	a := openTest(t, t.TempDir())
	defer a.Close()
	if _, err := a.EnsureMailbox(context.Background(), RecoveredAccount, LostAndFound, "import", 1); err == nil || !strings.Contains(err.Error(), "reserved") {
		t.Errorf("EnsureMailbox(%q) = %v, want reserved", RecoveredAccount, err)
	}
	if _, _, err := a.OpenEpoch(context.Background(), RecoveredAccount, "imap://x@y", "INBOX", 1); err == nil || !strings.Contains(err.Error(), "reserved") {
		t.Errorf("OpenEpoch(%q) = %v, want reserved", RecoveredAccount, err)
	}
}

// TestCrashLeftoverBlobIsRecoverable: a blob published whose catalog
// commit never happened (the crash case) is reported like lost mail, and
// when its source delivers it again after Recover, it is linked in its real
// place beside lost+found, with one blob.
func TestCrashLeftoverBlobIsRecoverable(t *testing.T) {
	a := openTest(t, t.TempDir())
	defer a.Close()
	mustMailbox(t, a, "alice", "INBOX")
	raw := corpusMsg(1)
	if _, err := a.fsStore.Put(store.KeyOf(raw), raw); err != nil {
		t.Fatal(err)
	}
	rep, err := a.Verify(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if k := problemKinds(rep); k["blob-unreferenced"] != 1 {
		t.Fatalf("Verify with a crash leftover = %v, want one blob-unreferenced", rep.Problems)
	}
	if _, err := a.Recover(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	ingest(t, a, corpusItems("alice", 1, 2)...)
	h, err := a.Message(context.Background(), store.KeyOf(raw).String())
	if err != nil || len(h.Occurrences) != 2 {
		t.Fatalf("Message after recover and re-delivery = %+v, %v; want 2 occurrences", h, err)
	}
	verifyClean(t, a, 1)
}

// TestSwappedBlobIsRefused reproduces the finding: a blob file replaced by
// another blob's file (valid zstd, another message) is refused by Raw
// (ErrBlobCorrupt, logged at error with the key), is not indexed under its
// key by Reindex (which says so), and Verify reports it.
func TestSwappedBlobIsRefused(t *testing.T) {
	dir := t.TempDir()
	var logs bytes.Buffer
	a, err := Open(dir, &Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	mustMailbox(t, a, "alice", "INBOX")
	ingest(t, a, corpusItems("alice", 0, 5)...)
	victim, other := store.KeyOf(corpusMsg(1)), store.KeyOf(corpusMsg(2))
	copyFile(t, a.fsStore.Path(other), a.fsStore.Path(victim))

	raw, err := a.Raw(victim.String())
	if !errors.Is(err, ErrBlobCorrupt) || raw != nil {
		t.Fatalf("Raw(swapped blob) = %d bytes, %v; want ErrBlobCorrupt", len(raw), err)
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), victim.String()) {
		t.Fatalf("no error log naming %s:\n%s", victim, logs.String())
	}
	if raw, err := a.Raw(other.String()); err != nil || !bytes.Equal(raw, corpusMsg(2)) {
		t.Fatalf("Raw(intact blob) = %v", err)
	}

	err = a.Reindex(context.Background(), nil)
	if !errors.Is(err, ErrBlobCorrupt) {
		t.Fatalf("Reindex with a swapped blob = %v, want an error wrapping ErrBlobCorrupt", err)
	}
	// The other message's words find only the other message: nothing was
	// indexed under the victim's key.
	if got := searchAll(t, a, "token2x", nil); !slices.Equal(got, []string{other.String()}) {
		t.Fatalf("search token2x after reindex = %v, want only %s", got, other)
	}
	if got := searchAll(t, a, "token1x", nil); len(got) != 0 {
		t.Fatalf("search token1x after reindex = %v, want nothing (its blob is not its message)", got)
	}
	if err := a.CatchUp(context.Background(), nil); !errors.Is(err, ErrBlobCorrupt) {
		t.Fatalf("CatchUp with a swapped blob = %v, want ErrBlobCorrupt", err)
	}
	rep, err := a.Verify(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var corrupt []string
	for _, p := range rep.Problems {
		if p.Kind == "blob-corrupt" {
			corrupt = append(corrupt, p.SHA256)
		}
	}
	if !slices.Equal(corrupt, []string{victim.String()}) {
		t.Fatalf("Verify problems = %v, want blob-corrupt %s", rep.Problems, victim)
	}
}

// TestCatalogCheckInVerify: damage SQLite's integrity_check or
// foreign_key_check finds is a verify problem.
func TestCatalogCheckInVerify(t *testing.T) {
	dir := t.TempDir()
	a := openTest(t, dir)
	mustMailbox(t, a, "alice", "INBOX")
	ingest(t, a, corpusItems("alice", 0, 3)...)
	a.Close()
	// An occurrence whose message row is gone (written with foreign keys
	// off, as a damaged or hand-edited catalog would be).
	if err := execCatalog(filepath.Join(dir, "catalog.db"), `PRAGMA foreign_keys=OFF; DELETE FROM messages WHERE id = 2`); err != nil {
		t.Fatal(err)
	}
	ro, err := Open(dir, &Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	rep, err := ro.Verify(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if k := problemKinds(rep); k["catalog-corrupt"] != 1 {
		t.Fatalf("Verify after a message row vanished = %v, want one catalog-corrupt", rep.Problems)
	}
}

// TestPermissions: with umask 022 every file mailvault creates in the data
// directory is 0600 and every directory 0700; a loosened file is warned
// about at Open, naming it and the chmod to run.
func TestPermissions(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "data")
	a := openTest(t, dir)
	mustMailbox(t, a, "alice", "INBOX")
	ingest(t, a, corpusItems("alice", 0, 3)...)
	if err := a.Reindex(context.Background(), nil); err != nil { // index.new, then renamed
		t.Fatal(err)
	}
	if err := SecureFile(filepath.Join(dir, "users.db")); err != nil {
		t.Fatal(err)
	}
	check := func() {
		t.Helper()
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				t.Fatal(err)
			}
			fi, _ := d.Info()
			want := FileMode
			if d.IsDir() {
				want = DirMode
			}
			if fi.Mode().Perm() != want {
				t.Errorf("%s: mode %04o, want %04o", p, fi.Mode().Perm(), want)
			}
			return nil
		})
	}
	check()
	for _, f := range []string{"catalog.db", "catalog.db-wal", "catalog.db-shm", "lock"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s: %v (the test checks its mode)", f, err)
		}
	}
	a.Close()
	check()
	if l := CheckPermissions(dir); len(l) != 0 {
		t.Errorf("CheckPermissions of a fresh archive = %v, want none", l)
	}

	os.Chmod(filepath.Join(dir, "catalog.db"), 0o644)
	os.Chmod(filepath.Join(dir, "users.db"), 0o640)
	os.Chmod(filepath.Join(dir, "blobs", "0a"), 0o755)
	var logs bytes.Buffer
	b, err := Open(dir, &Options{ReadOnly: true, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	for _, want := range []string{
		"chmod 600 " + filepath.Join(dir, "catalog.db"),
		"chmod 600 " + filepath.Join(dir, "users.db"),
		"chmod 700 " + filepath.Join(dir, "blobs") + "/*/",
	} {
		if !strings.Contains(logs.String(), want) || !strings.Contains(logs.String(), "level=WARN") {
			t.Errorf("Open with loose files: no warning with %q in:\n%s", want, logs.String())
		}
	}
	if strings.Contains(logs.String(), filepath.Join(dir, "lock")) {
		t.Errorf("warning names the lock file, which is 0600:\n%s", logs.String())
	}
	// SecureFile tightens an existing file.
	if err := SecureFile(filepath.Join(dir, "users.db")); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "users.db")); fi.Mode().Perm() != FileMode {
		t.Errorf("users.db after SecureFile: %04o, want 0600", fi.Mode().Perm())
	}
}

// BenchmarkReadBlob measures what hashing every blob read costs: Raw
// (decode + sha256) against the store's decode alone, for messages of a
// few typical sizes.
func BenchmarkReadBlob(b *testing.B) {
	for _, size := range []int{4 << 10, 64 << 10, 1 << 20} {
		a, err := Open(b.TempDir(), nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := a.EnsureMailbox(context.Background(), "bench", "INBOX", "import", 1); err != nil {
			b.Fatal(err)
		}
		body := make([]byte, size)
		for i := range body {
			body[i] = "abcdefghij klmnopqrstuvwxyz\r\n"[(i*7+i/13)%29]
		}
		raw := append([]byte("From: a@example.org\r\nSubject: bench\r\n\r\n"), body...)
		if _, err := a.Ingest(context.Background(), []Item{{Account: "bench", Mailbox: "INBOX", UIDValidity: 1, UID: 1, Raw: raw}}); err != nil {
			b.Fatal(err)
		}
		k := store.KeyOf(raw)
		b.Run(fmt.Sprintf("decode/%dKiB", size>>10), func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				if _, err := a.store.Get(context.Background(), k); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("decode+sha256/%dKiB", size>>10), func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				if _, err := a.readBlob(context.Background(), k); err != nil {
					b.Fatal(err)
				}
			}
		})
		a.Close()
	}
}

// execCatalog runs stmts on the catalog database at path, outside the
// archive (a hand edit or damage).
func execCatalog(path, stmts string) error {
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	_, err = db.Exec(stmts)
	return err
}

// TestInterruptedIngestIsNotLoss: a batch whose blobs were published and
// whose catalog commit a crash prevented (the ingest journal names it) is
// counted by Verify but is no problem and does not block Reindex; Recover
// still catalogs it.
func TestInterruptedIngestIsNotLoss(t *testing.T) {
	dir := t.TempDir()
	a := openTest(t, dir)
	mustMailbox(t, a, "alice", "INBOX")
	ingest(t, a, corpusItems("alice", 0, 3)...)
	p, err := a.Prepare(context.Background(), corpusItems("alice", 3, 5))
	if err != nil {
		t.Fatal(err)
	}
	// Commit up to the crash: journal, publish, no catalog transaction.
	if err := a.writePending(p.staged); err != nil {
		t.Fatal(err)
	}
	if err := a.store.Publish(context.Background(), p.staged); err != nil {
		t.Fatal(err)
	}
	p.staged = nil
	a.Close()

	a = openTest(t, dir)
	defer func() { a.Close() }()
	rep, err := a.Verify(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 0 || rep.Orphans != 2 || rep.Interrupted != 2 {
		t.Fatalf("Verify after an interrupted ingest = %v, %d orphans, %d interrupted; want no problem, 2 and 2", rep.Problems, rep.Orphans, rep.Interrupted)
	}
	if err := a.Reindex(context.Background(), nil); err != nil {
		t.Fatalf("Reindex after an interrupted ingest: %v", err)
	}
	// The journal survives the next commits.
	ingest(t, a, corpusItems("alice", 10, 12)...)
	a.Close()
	a = openTest(t, dir)
	if rep, err := a.Verify(context.Background(), nil); err != nil || rep.Interrupted != 2 || len(rep.Problems) != 0 {
		t.Fatalf("Verify after more ingest and a reopen = %+v, %v; want 2 interrupted, no problem", rep, err)
	}
	rr, err := a.Recover(context.Background(), nil)
	if err != nil || len(rr.Recovered) != 2 {
		t.Fatalf("Recover = %+v, %v; want the 2 interrupted messages", rr, err)
	}
	verifyClean(t, a, 7)
}

// TestPermissionsPackAndSignatures: CheckPermissions also finds a loose
// pack segment, the pack index and the IMAP SEARCH signature file (each
// holds mail or bits of its text), and nothing in a fresh pack archive.
func TestPermissionsPackAndSignatures(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "data")
	a, err := Open(dir, &Options{Layout: LayoutPack})
	if err != nil {
		t.Fatal(err)
	}
	mustMailbox(t, a, "alice", "INBOX")
	ingest(t, a, corpusItems("alice", 0, 3)...)
	a.Close()
	if l := CheckPermissions(dir); len(l) != 0 {
		t.Fatalf("CheckPermissions of a fresh pack archive = %v, want none", l)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "packs", "seg-*.pack"))
	if len(segs) == 0 {
		t.Fatal("no pack segment")
	}
	loose := []string{segs[0], filepath.Join(dir, "packs", "index.db"), filepath.Join(dir, sigFileName)}
	for _, p := range loose {
		if err := os.Chmod(p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]bool{}
	for _, l := range CheckPermissions(dir) {
		got[l.Path] = true
	}
	for _, p := range loose {
		if !got[p] {
			t.Errorf("CheckPermissions does not report %s at 0644: %v", p, got)
		}
	}
}
