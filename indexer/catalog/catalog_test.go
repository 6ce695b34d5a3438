package catalog

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

func TestOccurrencesAreUniqueAndCheckpointsMonotonic(t *testing.T) {
	ctx := context.Background()
	c, err := Open(filepath.Join(t.TempDir(), "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	mb, err := c.EnsureMailbox(ctx, "alice", "INBOX", SourceIMAP, 42)
	if err != nil {
		t.Fatal(err)
	}
	// A second EnsureMailbox returns the same row, its epoch unchanged.
	again, err := c.EnsureMailbox(ctx, "alice", "INBOX", SourceIMAP, 99)
	if err != nil || again.ID != mb.ID || again.UIDValidity != 42 {
		t.Fatalf("EnsureMailbox again = %+v, %v; want the first row", again, err)
	}
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sha := [32]byte{1, 2, 3}
	id, err := tx.InsertMessage(ctx, &Message{SHA256: sha, Size: 10, Subject: "hi", Date: time.Date(2024, 3, 1, 23, 30, 0, 0, time.FixedZone("", -8*3600))})
	if err != nil {
		t.Fatal(err)
	}
	occ := &Occurrence{MailboxID: mb.ID, UIDValidity: 42, UID: 7, MessageID: id, Size: 10, Flags: []string{`\Seen`}}
	for i, want := range []bool{true, false} {
		if got, err := tx.InsertOccurrence(ctx, occ); err != nil || got != want {
			t.Fatalf("InsertOccurrence #%d = %v, %v; want %v", i+1, got, err, want)
		}
	}
	if ok, _ := tx.OccurrenceExists(ctx, mb.ID, 42, 7); !ok {
		t.Fatal("OccurrenceExists = false after insert")
	}
	if ok, _ := tx.OccurrenceExists(ctx, mb.ID, 43, 7); ok {
		t.Fatal("an occurrence of another epoch exists")
	}
	if err := tx.SetUIDNext(ctx, mb.ID, 8); err != nil {
		t.Fatal(err)
	}
	if err := tx.SetUIDNext(ctx, mb.ID, 3); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	got, _ := c.Mailbox(ctx, "alice", "INBOX")
	if got.UIDNext != 8 {
		t.Fatalf("uidnext = %d, want 8 (never moves back)", got.UIDNext)
	}
	// The date keeps its zone through the catalog.
	loc, err := c.Locate(ctx, [][32]byte{sha})
	if err != nil {
		t.Fatal(err)
	}
	m := loc[sha]
	if m == nil || m.Date.Day() != 1 || len(m.Occurrences) != 1 || m.Occurrences[0].Flags[0] != `\Seen` {
		t.Fatalf("Locate = %+v", m)
	}
	if n, _ := c.CountUnindexed(ctx); n != 1 {
		t.Fatalf("CountUnindexed = %d, want 1", n)
	}
	tasks, _ := c.Unindexed(ctx, 0, 10)
	if err := c.MarkIndexed(ctx, tasks); err != nil {
		t.Fatal(err)
	}
	if n, _ := c.CountUnindexed(ctx); n != 0 {
		t.Fatalf("CountUnindexed after MarkIndexed = %d, want 0", n)
	}
}

func TestReconcileMarksExpungedAndReflags(t *testing.T) {
	ctx := context.Background()
	c, err := Open(filepath.Join(t.TempDir(), "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	mb, _ := c.EnsureMailbox(ctx, "alice", "INBOX", SourceIMAP, 5)
	tx, _ := c.Begin(ctx)
	for uid := uint32(1); uid <= 3; uid++ {
		id, err := tx.InsertMessage(ctx, &Message{SHA256: [32]byte{byte(uid)}, Size: 1})
		if err != nil {
			t.Fatal(err)
		}
		tx.InsertOccurrence(ctx, &Occurrence{MailboxID: mb.ID, UIDValidity: 5, UID: uid, MessageID: id, Size: 1})
	}
	tx.Commit()
	// The server now has UID 1 (flagged) and 3; UID 2 was expunged.
	exp, ref, err := c.Reconcile(ctx, mb.ID, 5, map[uint32][]string{1: {`\Flagged`}, 3: nil})
	if err != nil || exp != 1 || ref != 1 {
		t.Fatalf("Reconcile = %d expunged, %d reflagged, %v; want 1, 1", exp, ref, err)
	}
	// Idempotent: a second identical pass changes nothing.
	if exp, ref, _ := c.Reconcile(ctx, mb.ID, 5, map[uint32][]string{1: {`\Flagged`}, 3: nil}); exp != 0 || ref != 0 {
		t.Fatalf("second Reconcile = %d, %d; want 0, 0", exp, ref)
	}
	occs, err := c.Occurrences(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n, total := 0, len(occs)
	for _, o := range occs {
		if o.ExpungedAt != "" {
			n++
			if o.UID != 2 {
				t.Errorf("UID %d marked expunged, want only UID 2", o.UID)
			}
		}
		if o.UID == 1 && (len(o.Flags) != 1 || o.Flags[0] != `\Flagged`) {
			t.Errorf("UID 1 flags = %q, want [\\Flagged]", o.Flags)
		}
	}
	if n != 1 || total != 3 {
		t.Fatalf("%d expunged of %d occurrences; want 1 of 3 (never deleted)", n, total)
	}
}

func TestSkipAdvancesTheCheckpoint(t *testing.T) {
	ctx := context.Background()
	c, err := Open(filepath.Join(t.TempDir(), "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.EnsureMailbox(ctx, "alice", "INBOX", SourceIMAP, 5)
	if err := c.Skip(ctx, "alice", "INBOX", 5, 41, "fetch failed 3 times"); err != nil {
		t.Fatal(err)
	}
	if next, _, err := c.OpenEpoch(ctx, "alice", "imap://alice@h", "INBOX", 5); err != nil || next != 42 {
		t.Fatalf("checkpoint after skipping uid 41 = %d, %v; want 42", next, err)
	}
	sk, err := c.Skipped(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(sk) != 1 || sk[0].Account != "alice" || sk[0].Mailbox != "INBOX" || sk[0].UIDValidity != 5 || sk[0].UID != 41 ||
		sk[0].Reason != "fetch failed 3 times" || sk[0].At == "" {
		t.Fatalf("Skipped = %+v, want alice/INBOX 5/41 with its reason", sk)
	}
}

// TestSchemaIsAllOrNothing: the schema is created in one transaction, so an
// existing catalog has every table.
func TestSchemaIsAllOrNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalog.db")
	c, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, name := range []string{"accounts", "mailboxes", "messages", "occurrences", "skipped"} {
		var n int
		if err := c.db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, name).Scan(&n); err != nil || n != 1 {
			t.Errorf("table %s: %d, %v", name, n, err)
		}
	}
}
