//go:build unix

package harvest_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"mailvault/harvest"
	"mailvault/harvest/dovecottest"
	"mailvault/harvest/harvesttest"
	"mailvault/service"
)

// TestDovecotGapBelowCheckpoint: occurrences lost from the catalog below
// the checkpoint (deleted behind the archive's back) are found by a gap
// check against the real Dovecot, fetched, and reported with the right
// numbers in a mailbox with expunges; a second check finds nothing.
func TestDovecotGapBelowCheckpoint(t *testing.T) {
	srv := dovecottest.Start(t, nil)
	log := dcLogger(t)
	srv.LoadMaildir(t, "alice", "INBOX", harvesttest.Maildir(t, harvesttest.Messages("gaps", 10)))
	srv.Expunge(t, "alice", "INBOX", 3)
	srv.Expunge(t, "alice", "INBOX", 7)
	a := harvesttest.OpenArchive(t, t.TempDir())
	acct := harvesttest.Account(t, srv, "alice", "alice")
	opts := dcFastBackoff(log)
	opts.GapCheck = -1 // only on demand here
	h := dcStart(t, context.Background(), acct, service.NewSink(a.Archive), opts)
	dcWaitFor(t, 15*time.Second, "the first harvest", func() (bool, string) {
		return dcArchived(t, a, map[string]int{"alice/INBOX": 8})
	})
	h.stop(t)

	db, err := sql.Open("sqlite", filepath.Join(a.Dir(), "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	res, err := db.Exec(`DELETE FROM occurrences WHERE uid IN (2, 5, 6)`)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 3 {
		t.Fatalf("deleted %d occurrences, want 3", n)
	}

	checker := harvest.New(acct, service.NewSink(a.Archive), &harvest.Options{Logger: log})
	reps, err := checker.CheckGaps(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(reps) != 1 {
		t.Fatalf("CheckGaps = %d reports, want 1: %+v", len(reps), reps)
	}
	r := reps[0]
	if r.Mailbox != "INBOX" || r.OnServer != 8 || r.Archived != 5 || r.Missing != 3 || r.MissingUIDs != "2,5:6" ||
		r.Fetched != 3 || r.Pending != 0 || r.Skipped != 0 || r.Error != "" || r.Checkpoint != 11 {
		t.Errorf("report = %+v; want INBOX, 8 on server, 5 archived, missing 2,5:6, 3 fetched, checkpoint 11", r)
	}
	if st := harvesttest.Status(t, a); st["alice/INBOX"].Occurrences != 8 {
		t.Errorf("archived %d after the check, want 8", st["alice/INBOX"].Occurrences)
	}
	harvesttest.CheckAgainstServer(t, srv, a, harvesttest.Occurrences(t, a), "alice", "alice", "INBOX", r.UIDValidity, true)

	reps, err = checker.CheckGaps(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r := reps[0]; r.Missing != 0 || r.Archived != 8 || r.OnServer != 8 {
		t.Errorf("second check = %+v; want nothing missing, 8 archived", r)
	}
	checks, err := a.Archive.GapChecks(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(checks) != 1 || checks[0].Missing != 0 || checks[0].OnServer != 8 || checks[0].Indexed > 8 {
		t.Errorf("catalog's last check = %+v", checks)
	}
}
