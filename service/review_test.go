package service

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"mailvault/export"
	"mailvault/indexer"
)

// TestReviewExportKeptHitsSameAsLookedUp: a scope whose hits are kept
// from the search (<= exportKeepHits) and the same scope looked up again
// as it is exported give the same load file, the same counts and the same
// natives, over queries, custodians, mailboxes, dedups and date windows.
func TestReviewExportKeptHitsSameAsLookedUp(t *testing.T) {
	svc := openScopeArchive(t, scopeCorpus(), func(scopeCopy) bool { return true })
	ctx := context.Background()
	op := Operator()
	defer func(n int) { exportKeepHits = n }(exportKeepHits)
	n := 0
	for _, q := range []string{"budget", "larger:0", "merger OR audit", "account:bob"} {
		for _, sc := range []SearchRequest{{}, {Accounts: []string{"alice"}}, {Accounts: []string{"bob", "carol"}}, {Mailboxes: []string{"INBOX", "Shared"}}} {
			accts := append(sc.Accounts, sc.Mailboxes...)
			for _, d := range []export.Dedup{export.DedupNone, export.DedupGlobal, export.DedupCustodian} {
				for _, win := range [][2]string{{"", ""}, {"2024-03-01", "2024-07-01"}} {
					sr := sc
					sr.Query = q
					req := ExportRequest{Search: &sr, Dedup: d, After: win[0], Before: win[1]}
					var dats [2][]byte
					var counts [2]export.Counts
					for i, keep := range []int{20000, 1} {
						exportKeepHits = keep
						req.Dir = filepath.Join(t.TempDir(), "p")
						res, err := svc.Export(ctx, op, req, nil)
						if err != nil {
							t.Fatalf("%q %v %s %v keep %d: %v", q, accts, d, win, keep, err)
						}
						dats[i], _ = os.ReadFile(filepath.Join(req.Dir, export.DATName))
						counts[i] = res.Manifest.Counts
					}
					if !bytes.Equal(dats[0], dats[1]) || counts[0] != counts[1] {
						t.Errorf("%q %v %s %v: kept and looked-up scopes differ: %+v vs %+v", q, accts, d, win, counts[0], counts[1])
					}
					if counts[0].Messages > 0 {
						n++
					}
				}
			}
		}
	}
	if n < 30 {
		t.Errorf("only %d non-empty scopes compared", n)
	}
}

// TestReviewExportChangesMidway: a message erased while the export runs
// (after its scope was resolved) stops the export, which leaves no
// manifest and none of the erased message's bytes, with the hits kept or
// looked up; a copy arriving meanwhile is reported as what each way does.
func TestReviewExportChangesMidway(t *testing.T) {
	defer func(n int) { exportKeepHits = n }(exportKeepHits)
	for _, keep := range []int{20000, 1} {
		t.Run(fmt.Sprintf("erased/keep%d", keep), func(t *testing.T) {
			exportKeepHits = keep
			base := openScopeArchive(t, scopeCorpus(), func(scopeCopy) bool { return true })
			svc := New(base.Archive(), &Options{Users: base.opts.Users, Retention: &RetentionConfig{}}) // may erase
			ctx := context.Background()
			op := Operator()
			if _, err := svc.SetWORM(ctx, op, false, "review: erasure under test"); err != nil {
				t.Fatal(err)
			}
			req := ExportRequest{Search: &SearchRequest{Query: "budget"}, Dir: filepath.Join(t.TempDir(), "a")}
			if _, err := svc.Export(ctx, op, req, nil); err != nil {
				t.Fatal(err)
			}
			m, err := export.ReadManifest(req.Dir)
			if err != nil {
				t.Fatal(err)
			}
			last := ""
			for _, f := range m.Files {
				if f.ArchiveSHA256 != "" {
					last = f.ArchiveSHA256
				}
			}
			raw, err := svc.Archive().Raw(last)
			if err != nil {
				t.Fatal(err)
			}
			req.Dir = filepath.Join(t.TempDir(), "b")
			var eraseErr error
			_, err = svc.Export(ctx, op, req, func(done, total int) {
				if done == 1 {
					_, eraseErr = svc.Erase(ctx, Caller{Name: "adm", Role: RoleAdmin}, last, "request 1")
				}
			})
			if eraseErr != nil {
				t.Fatal(eraseErr)
			}
			if err == nil {
				t.Fatal("an export whose last message was erased midway succeeded")
			}
			t.Logf("error: %v", err)
			if _, err := os.Stat(filepath.Join(req.Dir, export.ManifestName)); err == nil {
				t.Error("the stopped export has a manifest")
			}
			filepath.WalkDir(req.Dir, func(p string, d os.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					if b, _ := os.ReadFile(p); bytes.Equal(b, raw) {
						t.Errorf("the erased message was exported as %s", p)
					}
				}
				return nil
			})
		})
		t.Run(fmt.Sprintf("arrived/keep%d", keep), func(t *testing.T) {
			exportKeepHits = keep
			var copies []scopeCopy
			for i := range 2*exportBatch + 10 { // more than one lookup batch
				copies = append(copies, scopeCopy{"alice", "INBOX", uint32(i + 1), fmt.Appendf(nil,
					"From: a@example.org\r\nSubject: budget %d\r\nDate: Mon, 4 Mar 2024 %02d:%02d:00 +0000\r\n\r\nbudget %d\r\n", i, i/60%24, i%60, i)})
			}
			svc := openScopeArchive(t, copies, func(scopeCopy) bool { return true })
			ctx := context.Background()
			op := Operator()
			req := ExportRequest{Search: &SearchRequest{Query: "budget"}, Dir: filepath.Join(t.TempDir(), "a")}
			res, err := svc.Export(ctx, op, req, nil)
			if err != nil {
				t.Fatal(err)
			}
			m, _ := export.ReadManifest(req.Dir)
			last := ""
			for _, f := range m.Files {
				if f.ArchiveSHA256 != "" {
					last = f.ArchiveSHA256
				}
			}
			raw, _ := svc.Archive().Raw(last)
			a := svc.Archive()
			if _, err := a.EnsureMailbox(ctx, "alice", "Late", "import", 9); err != nil {
				t.Fatal(err)
			}
			req.Dir = filepath.Join(t.TempDir(), "b")
			res2, err := svc.Export(ctx, op, req, func(done, total int) {
				if done == 1 {
					if _, err := a.Ingest(ctx, []indexer.Item{{Account: "alice", Mailbox: "Late", UIDValidity: 9, UID: 1, Raw: raw}}); err != nil {
						t.Error(err)
					}
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			// Kept hits are the scope as resolved; looked-up ones are as of
			// when the export reaches their batch: the copy may be in.
			before, after := res.Manifest.Counts.Occurrences, res2.Manifest.Counts.Occurrences
			t.Logf("keep %d: copies in scope before %d, with one arriving midway %d", keep, before, after)
			if after != before && after != before+1 || keep > 1 && after != before {
				t.Errorf("keep %d: %d copies, %d before one arrived", keep, after, before)
			}
			if rep, err := export.Verify(req.Dir); err != nil || !rep.OK {
				t.Errorf("verify: %+v %v", rep, err)
			}
		})
	}
}
