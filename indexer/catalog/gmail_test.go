package catalog

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestGmailRecordKnownAndDisposed records one Gmail message under three
// labels of one account and under one of another account, through
// RecordIngest as the harvester's Store does: one row per (account,
// X-GM-MSGID), the latest labels kept, IDs above 2^63 intact, the
// message known only in its own account, and no longer known (nor its
// labels kept) once it has a tombstone and is disposed.
func TestGmailRecordKnownAndDisposed(t *testing.T) {
	ctx := context.Background()
	c, err := Open(filepath.Join(t.TempDir(), "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const big = uint64(1<<63 + 12345) // not an int64: stored by its bits
	sha := [32]byte{9, 9}
	other := [32]byte{8}
	record := func(account, mailbox string, uid uint32, m *Message, g *Gmail) Recorded {
		t.Helper()
		mb, err := c.EnsureMailbox(ctx, account, mailbox, SourceIMAP, 7)
		if err != nil {
			t.Fatal(err)
		}
		recs, err := c.RecordIngest(ctx, []Arrival{{Message: m, Occurrence: Occurrence{MailboxID: mb.ID, UIDValidity: 7, UID: uid, Size: 1},
			Checkpoint: true, Gmail: g}})
		if err != nil {
			t.Fatal(err)
		}
		return recs[0]
	}
	msg := &Message{SHA256: sha, Size: 1}
	if r := record("alice", "[Gmail]/All Mail", 1, msg, &Gmail{MsgID: big, ThrID: 77, Labels: []string{`\Inbox`, "Work"}}); r.Outcome != RecordedNew {
		t.Fatalf("first sighting: %v, want new", r.Outcome)
	}
	time.Sleep(2 * time.Millisecond)
	if r := record("alice", "INBOX", 4, msg, &Gmail{MsgID: big, ThrID: 77, Labels: []string{`\Inbox`, "Work"}}); r.Outcome != RecordedLinked {
		t.Fatalf("second sighting: %v, want linked", r.Outcome)
	}
	record("alice", "Work", 2, msg, &Gmail{MsgID: big, ThrID: 77, Labels: []string{"Work", "Ünïcode"}})
	record("bob", "INBOX", 1, msg, &Gmail{MsgID: 5, ThrID: 6, Labels: nil})
	record("alice", "INBOX", 5, &Message{SHA256: other, Size: 1}, &Gmail{MsgID: 99, ThrID: 99})

	var rows int
	if err := c.db.QueryRow(`SELECT count(*) FROM gmail_messages`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 3 {
		t.Fatalf("%d gmail rows, want 3 (alice's two messages, bob's one)", rows)
	}
	of, err := c.GmailOf(ctx, sha)
	if err != nil {
		t.Fatal(err)
	}
	a := of["alice"]
	if a.MsgID != big || a.ThrID != 77 || !slices.Equal(a.Labels, []string{"Work", "Ünïcode"}) || !a.LastSeen.After(a.FirstSeen) {
		t.Fatalf("alice's = %+v; want msgid %d, thrid 77, the latest labels, last seen after first", a, big)
	}
	if b := of["bob"]; b.MsgID != 5 || b.Labels == nil || len(b.Labels) != 0 {
		t.Fatalf("bob's = %+v; want msgid 5 and no labels", b)
	}
	known, err := c.GmailKnown(ctx, "alice", []uint64{big, 5, 99, 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(known) != 2 || known[big].SHA256 != sha || known[99].SHA256 != other || known[big].Size != 1 {
		t.Fatalf("alice knows %v; want %d (and 99), not bob's 5 nor 1", known, big)
	}
	if k, _ := c.GmailKnown(ctx, "carol", []uint64{big}); len(k) != 0 {
		t.Fatalf("carol knows %v, want nothing", k)
	}

	// A tombstone makes the message unknown at once (its blob is going);
	// disposal deletes its labels.
	ts, err := c.AddTombstone(ctx, sha, "retention", "r1", "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if k, _ := c.GmailKnown(ctx, "alice", []uint64{big, 99}); len(k) != 1 || k[99].SHA256 != other {
		t.Fatalf("with a pending tombstone alice knows %v; want only 99", k)
	}
	if err := c.FinishTombstone(ctx, ts.ID); err != nil {
		t.Fatal(err)
	}
	if of, _ := c.GmailOf(ctx, sha); len(of) != 0 {
		t.Fatalf("labels after disposal: %v, want none", of)
	}
}

// TestGmailKnownManyIDs asks for more IDs than one statement takes.
func TestGmailKnownManyIDs(t *testing.T) {
	ctx := context.Background()
	c, err := Open(filepath.Join(t.TempDir(), "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	mb, err := c.EnsureMailbox(ctx, "alice", "INBOX", SourceIMAP, 1)
	if err != nil {
		t.Fatal(err)
	}
	var arr []Arrival
	var ids []uint64
	for i := range 1200 {
		sha := [32]byte{1, byte(i >> 8), byte(i)}
		arr = append(arr, Arrival{Message: &Message{SHA256: sha, Size: 1}, Occurrence: Occurrence{MailboxID: mb.ID, UIDValidity: 1, UID: uint32(i + 1)},
			Gmail: &Gmail{MsgID: uint64(1000 + 2*i)}})
		ids = append(ids, uint64(1000+2*i), uint64(1000+2*i+1)) // every other one unknown
	}
	if _, err := c.RecordIngest(ctx, arr); err != nil {
		t.Fatal(err)
	}
	known, err := c.GmailKnown(ctx, "alice", ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(known) != 1200 {
		t.Fatalf("%d known of 2400 asked, want 1200", len(known))
	}
	for id := range known {
		if id%2 != 0 {
			t.Fatalf("%d known, never recorded", id)
		}
	}
}
