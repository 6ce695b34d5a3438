package service

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"mailvault/export"
)

// TestExportScope: an export holds exactly the messages of its search in
// the caller's scope, with their copies in scope; it verifies offline; the
// same scope numbers the same way twice; users may not export; a listed id
// and a date range narrow it.
func TestExportScope(t *testing.T) {
	copies := scopeCorpus()
	svc := openScopeArchive(t, copies, func(scopeCopy) bool { return true })
	ctx := context.Background()
	auditor := Caller{Name: "aud", Role: RoleAuditor}
	search := &SearchRequest{Query: "budget", Accounts: []string{"alice", "bob"}}

	want, err := svc.Search(ctx, auditor, SearchRequest{Query: "budget", Accounts: []string{"alice", "bob"}, Limit: MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	occ := 0
	for _, h := range want.Hits {
		occ += len(h.Occurrences)
	}
	dir := filepath.Join(t.TempDir(), "prod")
	res, err := svc.Export(ctx, auditor, ExportRequest{Search: search, Dir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Manifest.Counts.Messages != len(want.Hits) || res.Manifest.Counts.Occurrences != occ {
		t.Errorf("export of %q: %d messages, %d copies; the search has %d, %d", search.Query,
			res.Manifest.Counts.Messages, res.Manifest.Counts.Occurrences, len(want.Hits), occ)
	}
	rep, err := export.Verify(dir)
	if err != nil || !rep.OK || len(rep.Problems) > 0 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	// Every native message is a message of the search, byte-exact.
	m, err := export.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	var natives []string
	for _, f := range m.Files {
		if f.ArchiveSHA256 != "" {
			b, err := os.ReadFile(filepath.Join(dir, f.Path))
			if err != nil || fmt.Sprintf("%x", sha256.Sum256(b)) != f.ArchiveSHA256 {
				t.Errorf("native %s: not the archived bytes of %s (%v)", f.Path, f.ArchiveSHA256, err)
			}
			if !slices.Contains(natives, f.ArchiveSHA256) {
				natives = append(natives, f.ArchiveSHA256)
			}
		}
	}
	var wantIDs []string
	for _, h := range want.Hits {
		wantIDs = append(wantIDs, h.SHA256)
	}
	slices.Sort(natives)
	slices.Sort(wantIDs)
	if !slices.Equal(natives, wantIDs) {
		t.Errorf("natives %d, want the %d messages of the search", len(natives), len(wantIDs))
	}
	// The same scope again, its messages looked up again as they are
	// exported (as a scope larger than exportKeepHits is) instead of kept
	// from the search: the same load file, number for number.
	defer func(n int) { exportKeepHits = n }(exportKeepHits)
	exportKeepHits = 1
	dir2 := filepath.Join(t.TempDir(), "again")
	if _, err := svc.Export(ctx, auditor, ExportRequest{Search: search, Dir: dir2}, nil); err != nil {
		t.Fatal(err)
	}
	exportKeepHits = 20000
	a, _ := os.ReadFile(filepath.Join(dir, export.DATName))
	b, _ := os.ReadFile(filepath.Join(dir2, export.DATName))
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Error("two exports of one scope have different load files")
	}
	// Users may not export.
	if _, err := svc.Export(ctx, Caller{Name: "ann", Role: RoleUser, Accounts: []string{"alice"}}, ExportRequest{Search: search, Dir: t.TempDir()}, nil); !errors.Is(err, ErrForbidden) {
		t.Errorf("a user's export: %v, want ErrForbidden", err)
	}
	if _, err := svc.StartExport(Caller{Name: "ann", Role: RoleUser, Accounts: []string{"alice"}}, ExportRequest{Search: search}); !errors.Is(err, ErrForbidden) {
		t.Errorf("a user's export job: %v, want ErrForbidden", err)
	}
	// Listed ids within the search, and dates.
	ids := wantIDs[:2]
	res, err = svc.Export(ctx, auditor, ExportRequest{Search: search, IDs: ids, Dir: filepath.Join(t.TempDir(), "ids")}, nil)
	if err != nil || res.Manifest.Counts.Messages != 2 {
		t.Errorf("export of 2 listed ids: %+v %v", res, err)
	}
	res, err = svc.Export(ctx, auditor, ExportRequest{Search: &SearchRequest{Query: "budget"}, After: "2024-03-01", Before: "2024-04-01",
		Dir: filepath.Join(t.TempDir(), "march")}, nil)
	march, _ := svc.Search(ctx, auditor, SearchRequest{Query: "budget after:2024-03-01 before:2024-04-01", Limit: MaxLimit})
	if err != nil || res.Manifest.Counts.Messages != len(march.Hits) || len(march.Hits) == 0 {
		t.Errorf("export of March: %+v %v; the search finds %d", res, err, len(march.Hits))
	}
	// Bad requests.
	for _, bad := range []ExportRequest{{Dir: t.TempDir()}, {Search: search, Format: "pdf"}, {Search: search, Dedup: "some"},
		{Search: search, After: "March"}, {IDs: []string{"../etc"}}} {
		if _, err := svc.Export(ctx, auditor, bad, nil); !errors.Is(err, ErrBadRequest) {
			t.Errorf("export %+v: %v, want ErrBadRequest", bad, err)
		}
	}
}

// TestExportStopsOnAlteredMail: a blob whose bytes no longer match their
// hash stops the export, which leaves no manifest (it fails verification).
func TestExportStopsOnAlteredMail(t *testing.T) {
	copies := scopeCorpus()
	svc := openScopeArchive(t, copies, func(scopeCopy) bool { return true })
	ctx := context.Background()
	op := Operator()
	res, err := svc.Search(ctx, op, SearchRequest{Query: "budget", Limit: 2})
	if err != nil || len(res.Hits) < 2 {
		t.Fatal(res, err)
	}
	blob := func(sha string) string { return filepath.Join(svc.Archive().Dir(), "blobs", sha[:2], sha+".zst") }
	other, err := os.ReadFile(blob(res.Hits[1].SHA256))
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(blob(res.Hits[0].SHA256), 0o600)
	if err := os.WriteFile(blob(res.Hits[0].SHA256), other, 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "x")
	_, err = svc.Export(ctx, op, ExportRequest{Search: &SearchRequest{Query: "budget"}, Dir: dir}, nil)
	if !errors.Is(err, export.ErrCorrupt) {
		t.Fatalf("export with an altered blob: %v, want ErrCorrupt", err)
	}
	if rep, err := export.Verify(dir); err == nil && rep.OK {
		t.Error("the stopped export verifies")
	}
}

// TestExportDiskFull: the disk filling up mid-export is a clear error, and
// what was written is recognisably incomplete (no manifest: verification
// fails). The full disk is a real one: a 64 KiB tmpfs (needs root; CI runs
// as root).
func TestExportDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("this test mounts a tmpfs and needs root (CI runs as root)")
		}
		t.Skip("needs root to mount a small tmpfs")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	defer exec.Command("umount", mnt).Run()
	svc := openScopeArchive(t, scopeCorpus(), func(scopeCopy) bool { return true })
	dir := filepath.Join(mnt, "prod")
	_, err := svc.Export(context.Background(), Operator(), ExportRequest{Search: &SearchRequest{Query: "larger:0"}, Dir: dir}, nil)
	if err == nil || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("export onto a full disk: %v, want an error saying no space is left", err)
	}
	if rep, err := export.Verify(dir); err == nil && rep.OK {
		t.Error("the export cut short by a full disk verifies")
	}
}
