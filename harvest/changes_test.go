//go:build unix

package harvest_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"mailvault/harvest/dovecottest"
	"mailvault/harvest/harvesttest"
	"mailvault/service"
)

// TestDovecotExpungeAndFlagChanges: changes made on the server by another
// client reach the archive. In INBOX (IDLE) and in a polled mailbox, an
// expunged message is marked expunged, never removed, and is still found
// by search; a flag change replaces the archived flags. A poll that finds
// nothing changed costs one STATUS (Dovecot has CONDSTORE): no EXAMINE, no
// FETCH.
func TestDovecotExpungeAndFlagChanges(t *testing.T) {
	srv := dovecottest.Start(t, nil)
	srv.LoadMaildir(t, "alice", "INBOX", harvesttest.Maildir(t, harvesttest.Messages("chin", 5)))
	srv.LoadMaildir(t, "alice", "Archive", harvesttest.Maildir(t, harvesttest.Messages("char", 5)))
	log := dcLogger(t)
	p := startFaultProxy(t, srv.Addr, "\x00never sent\x00", false)
	a := harvesttest.OpenArchive(t, t.TempDir())
	acct := p.account(t, srv, "alice", "alice") // IDLE on INBOX, Archive polled every second
	h := dcStart(t, context.Background(), acct, service.NewSink(a.Archive), dcFastBackoff(log))
	dcWaitFor(t, 10*time.Second, "both mailboxes archived", func() (bool, string) {
		return dcArchived(t, a, map[string]int{"alice/INBOX": 5, "alice/Archive": 5})
	})

	// Quiet polls: STATUS only.
	dcWaitFor(t, 5*time.Second, "INBOX idle", func() (bool, string) {
		return h.Status().Mailboxes["INBOX"].State == "idle", fmt.Sprintf("%+v", h.Status())
	})
	mark := len(p.clientSent())
	time.Sleep(3500 * time.Millisecond) // three polls of Archive
	quiet := p.clientSent()[mark:]
	if n := strings.Count(quiet, ` STATUS "Archive"`) + strings.Count(quiet, " STATUS Archive "); n < 2 {
		t.Errorf("%d STATUS of Archive in 3.5 s of 1 s polls:\n%s", n, quiet)
	}
	for _, cmd := range []string{"EXAMINE Archive", `EXAMINE "Archive"`, " FETCH "} {
		if strings.Contains(quiet, cmd) {
			t.Errorf("a quiet poll sent %q:\n%s", cmd, quiet)
		}
	}

	srv.Expunge(t, "alice", "INBOX", 2)
	srv.SetFlags(t, "alice", "INBOX", 3, `\Flagged`, "$Important")
	srv.Expunge(t, "alice", "Archive", 4)
	srv.SetFlags(t, "alice", "Archive", 1, `\Answered`)
	type key struct {
		mailbox string
		uid     uint32
	}
	dcWaitFor(t, 10*time.Second, "the changes in the catalog", func() (bool, string) {
		got := map[key]harvesttest.Occ{}
		for _, o := range harvesttest.Occurrences(t, a) {
			got[key{o.Mailbox, o.UID}] = o
		}
		ok := got[key{"INBOX", 2}].Expunged != "" && got[key{"Archive", 4}].Expunged != "" &&
			got[key{"INBOX", 3}].Flags == `$Important \Flagged` && got[key{"Archive", 1}].Flags == `\Answered`
		return ok, fmt.Sprintf("%+v", got)
	})
	for _, o := range harvesttest.Occurrences(t, a) {
		expunged := (o.Mailbox == "INBOX" && o.UID == 2) || (o.Mailbox == "Archive" && o.UID == 4)
		if (o.Expunged != "") != expunged {
			t.Errorf("%s UID %d: expunged_at %q", o.Mailbox, o.UID, o.Expunged)
		}
	}
	st := harvesttest.Status(t, a)
	if st["alice/INBOX"].Expunged != 1 || st["alice/Archive"].Expunged != 1 || st["alice/INBOX"].Occurrences != 5 {
		t.Errorf("status: INBOX %+v, Archive %+v", st["alice/INBOX"], st["alice/Archive"])
	}
	h.stop(t)
	if err := a.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, tag := range []string{"chin", "char"} {
		uid := map[string]uint32{"chin": 2, "char": 4}[tag]
		hits := harvesttest.Search(t, a, harvesttest.Marker(tag, int(uid)))
		if len(hits) != 1 || len(hits[0].Occurrences) != 1 || hits[0].Occurrences[0].Expunged == "" {
			t.Errorf("search for the message expunged from %s: %+v", tag, hits)
		}
	}
}

// TestDovecotMailboxRenamedAndDeleted: a mailbox renamed on the server is
// harvested under its new name with its content linked, not stored again;
// the copies under the old name, and those of a deleted mailbox, stay in the
// archive, searchable, marked expunged.
func TestDovecotMailboxRenamedAndDeleted(t *testing.T) {
	srv := dovecottest.Start(t, nil)
	srv.Append(t, "alice", "INBOX", harvesttest.Message("rnin", 1))
	srv.LoadMaildir(t, "alice", "Projects", harvesttest.Maildir(t, harvesttest.Messages("rnpr", 3)))
	srv.LoadMaildir(t, "alice", "Old", harvesttest.Maildir(t, harvesttest.Messages("rnold", 2)))
	log := dcLogger(t)
	a := harvesttest.OpenArchive(t, t.TempDir())
	h := dcStart(t, context.Background(), harvesttest.Account(t, srv, "alice", "alice"), service.NewSink(a.Archive), dcFastBackoff(log))
	dcWaitFor(t, 10*time.Second, "everything archived", func() (bool, string) {
		return dcArchived(t, a, map[string]int{"alice/INBOX": 1, "alice/Projects": 3, "alice/Old": 2})
	})
	blobs := dcBlobCount(t, a)

	srv.RenameMailbox(t, "alice", "Projects", "Projects 2025")
	srv.DeleteMailbox(t, "alice", "Old")
	dcWaitFor(t, 10*time.Second, "the renamed mailbox archived and the old names marked", func() (bool, string) {
		st := harvesttest.Status(t, a)
		ok := st["alice/Projects 2025"].Occurrences == 3 && st["alice/Projects"].Expunged == 3 && st["alice/Old"].Expunged == 2 &&
			st["alice/INBOX"].Expunged == 0
		return ok, fmt.Sprintf("%+v", st)
	})
	h.stop(t)
	if n := dcBlobCount(t, a); n != blobs {
		t.Errorf("%d blobs after the rename, %d before: the renamed mailbox's mail was stored again", n, blobs)
	}
	if err := a.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	hits := harvesttest.Search(t, a, harvesttest.Marker("rnpr", 2))
	if len(hits) != 1 || len(hits[0].Occurrences) != 2 {
		t.Fatalf("search for a renamed message: %+v, want one message in two places", hits)
	}
	for _, o := range hits[0].Occurrences {
		if (o.Mailbox == "Projects") != (o.Expunged != "") {
			t.Errorf("occurrence %s UID %d: expunged %q", o.Mailbox, o.UID, o.Expunged)
		}
	}
	if hits := harvesttest.Search(t, a, harvesttest.Marker("rnold", 1)); len(hits) != 1 || hits[0].Occurrences[0].Expunged == "" {
		t.Errorf("search for a message of the deleted mailbox: %+v", hits)
	}
	dcVerify(t, a, 6, false)
}
