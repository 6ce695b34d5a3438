//go:build unix

package harvest_test

import (
	"context"
	"database/sql"
	"fmt"
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

// TestDovecotOldEpochStale: after a UIDVALIDITY change, a search's
// occurrences of the old epoch are marked stale (their imap:// URLs no
// longer resolve), those of the new one are not; a gap check of the new
// epoch finds nothing missing. Once the harvester has seen the new
// UIDVALIDITY, the catalog's current epoch stays the new one.
//
// In about one run of three the current epoch was the old one again after
// the stop. Dovecot was not at fault: every EXAMINE after the change
// answered the new UIDVALIDITY (the change came during an IDLE, and Dovecot
// did not end that session). The harvester was: after the sync that
// followed the IDLE, watch read the checkpoint with the UIDVALIDITY of its
// EXAMINE from before the IDLE, and Checkpoint opened the old epoch again
// at UID 1. The run failed when the harvester was stopped between that sync
// and the next one. TestUIDValidityChangeDuringIdle is the same case, every
// time.
func TestDovecotOldEpochStale(t *testing.T) {
	srv := dovecottest.Start(t, nil)
	log := dcLogger(t)
	srv.LoadMaildir(t, "alice", "INBOX", harvesttest.Maildir(t, harvesttest.Messages("stale", 3)))
	a := harvesttest.OpenArchive(t, t.TempDir())
	acct := harvesttest.Account(t, srv, "alice", "alice")
	opts := dcFastBackoff(log)
	opts.GapCheck = -1
	h := dcStart(t, context.Background(), acct, service.NewSink(a.Archive), opts)
	dcWaitFor(t, 15*time.Second, "the first harvest", func() (bool, string) {
		return dcArchived(t, a, map[string]int{"alice/INBOX": 3})
	})
	old := srv.UIDValidity(t, "alice", "INBOX")
	srv.ChangeUIDValidity(t, "alice", "INBOX", old+1000)
	dcWaitFor(t, 15*time.Second, "the new epoch", func() (bool, string) {
		st := harvesttest.Status(t, a)["alice/INBOX"]
		return st.UIDValidity == old+1000 && st.Occurrences == 6, fmt.Sprintf("%+v", st)
	})
	h.stop(t)
	if st := harvesttest.Status(t, a)["alice/INBOX"]; st.UIDValidity != old+1000 || st.UIDNext != 4 {
		t.Errorf("current epoch after stop: uidvalidity %d, uidnext %d; want %d, 4", st.UIDValidity, st.UIDNext, old+1000)
	}
	hits := harvesttest.Search(t, a, "stale")
	if len(hits) != 3 {
		t.Fatalf("%d hits, want 3", len(hits))
	}
	stale := 0
	for _, hit := range hits {
		for _, o := range hit.Occurrences {
			if o.Stale {
				stale++
			}
			if want := o.UIDValidity == old; o.Stale != want {
				t.Errorf("occurrence %s stale = %v, want %v", o.URL, o.Stale, want)
			}
		}
	}
	if stale != 3 {
		t.Errorf("%d stale occurrences, want 3 (the old epoch's)", stale)
	}
	reps, err := harvest.New(acct, service.NewSink(a.Archive), &harvest.Options{Logger: log}).CheckGaps(context.Background())
	if err != nil || len(reps) != 1 || reps[0].UIDValidity != old+1000 || reps[0].Missing != 0 || reps[0].Archived != 3 {
		t.Errorf("check after the change = %+v, %v; want the new epoch, 3 archived, none missing", reps, err)
	}
}
