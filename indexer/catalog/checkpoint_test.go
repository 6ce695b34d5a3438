package catalog

import (
	"context"
	"path/filepath"
	"testing"
)

// TestCheckpointPassesPresentCopies: copies stored again (a harvester that
// re-fetched them: its epoch's checkpoint had been set back) move the
// checkpoint past them like new ones. Before, a batch of present copies
// moved nothing, and a mailbox whose checkpoint was ever behind its copies
// was fetched whole at every sync.
func TestCheckpointPassesPresentCopies(t *testing.T) {
	ctx := context.Background()
	c, err := Open(filepath.Join(t.TempDir(), "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	mb, err := c.EnsureMailbox(ctx, "alice", "INBOX", SourceIMAP, 7)
	if err != nil {
		t.Fatal(err)
	}
	var arr []Arrival
	for uid := uint32(1); uid <= 3; uid++ {
		arr = append(arr, Arrival{Message: &Message{SHA256: [32]byte{byte(uid)}, Size: 1},
			Occurrence: Occurrence{MailboxID: mb.ID, UIDValidity: 7, UID: uid}, Checkpoint: true})
	}
	uidnext := func() uint32 {
		t.Helper()
		var n uint32
		if err := c.db.QueryRow(`SELECT uidnext FROM mailboxes WHERE id = ?`, mb.ID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if _, err := c.RecordIngest(ctx, arr); err != nil {
		t.Fatal(err)
	}
	if n := uidnext(); n != 4 {
		t.Fatalf("uidnext %d after the first store, want 4", n)
	}
	if _, err := c.db.Exec(`UPDATE mailboxes SET uidnext = 1 WHERE id = ?`, mb.ID); err != nil {
		t.Fatal(err)
	}
	recs, err := c.RecordIngest(ctx, arr)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range recs {
		if r.Outcome != RecordedPresent {
			t.Fatalf("arrival %d: outcome %v, want present", i, r.Outcome)
		}
	}
	if n := uidnext(); n != 4 {
		t.Fatalf("uidnext %d after storing the present copies again, want 4", n)
	}
}
