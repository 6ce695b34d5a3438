package indexer

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"mailvault/indexer/store"
)

// Two copies of one mail with different bytes (a mailbox's, with delivery
// headers, and another account's) are linked by fingerprint; a catalog
// whose rows lost their fingerprints (an old one) gets them back from the
// blobs, and the link with them.
func TestCopiesAndBackfill(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a := openTest(t, dir)
	defer a.Close()
	g := genMessage(rand.New(rand.NewPCG(1, 2)), 1)
	sent := g.render(delivery{})
	delivered := g.render(delivery{headers: []string{"Return-Path: <x@example.org>", "Delivered-To: rcpt@example.org"}, lf: true})
	other := genMessage(rand.New(rand.NewPCG(1, 3)), 2).render(delivery{})
	mustMailbox(t, a, "alice", "INBOX")
	mustMailbox(t, a, "bob", "Sent")
	ingest(t, a,
		Item{Account: "alice", Mailbox: "INBOX", UIDValidity: 7, UID: 1, Raw: delivered},
		Item{Account: "bob", Mailbox: "Sent", UIDValidity: 7, UID: 1, Raw: sent},
		Item{Account: "bob", Mailbox: "Sent", UIDValidity: 7, UID: 2, Raw: other},
	)
	check := func(when string) {
		t.Helper()
		copies, err := a.Copies(ctx, sha256hex(sent))
		if err != nil {
			t.Fatal(err)
		}
		var places []string
		for _, c := range copies {
			places = append(places, c.Account+"/"+c.Mailbox)
		}
		if strings.Join(places, " ") != "alice/INBOX bob/Sent" {
			t.Errorf("%s: Copies = %v, want alice/INBOX and bob/Sent", when, places)
		}
	}
	check("at ingest")
	if n, err := a.BackfillFingerprints(ctx); err != nil || n != 0 {
		t.Errorf("BackfillFingerprints after ingest = %d, %v; want 0", n, err)
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE messages SET fingerprint = NULL, fingerprint_v = NULL`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if copies, _ := a.Copies(ctx, sha256hex(sent)); len(copies) != 1 {
		t.Errorf("without fingerprints: %d copies, want the message's own only", len(copies))
	}
	if n, err := a.BackfillFingerprints(ctx); err != nil || n != 3 {
		t.Errorf("BackfillFingerprints = %d, %v; want 3", n, err)
	}
	check("after the backfill")
}

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// A disposed message's fingerprint is scrubbed with the rest of its row:
// its surviving copy elsewhere links to nothing of it, and the backfill
// does not look for its deleted blob.
func TestDisposalScrubsFingerprint(t *testing.T) {
	ctx := context.Background()
	a := openTest(t, t.TempDir())
	defer a.Close()
	g := genMessage(rand.New(rand.NewPCG(4, 4)), 1)
	sent := g.render(delivery{})
	delivered := g.render(delivery{headers: []string{"Delivered-To: rcpt@example.org"}})
	mustMailbox(t, a, "alice", "INBOX")
	mustMailbox(t, a, "bob", "INBOX")
	ingest(t, a,
		Item{Account: "alice", Mailbox: "INBOX", UIDValidity: 7, UID: 1, Raw: sent},
		Item{Account: "bob", Mailbox: "INBOX", UIDValidity: 7, UID: 1, Raw: delivered})
	if copies, _ := a.Copies(ctx, sha256hex(delivered)); len(copies) != 2 {
		t.Fatalf("before disposal: %d copies, want 2", len(copies))
	}
	if _, err := a.Dispose(ctx, Disposal{Key: store.KeyOf(sent), Reason: "erasure request", Rule: "erasure", Actor: "operator", MayDelete: allow}); err != nil {
		t.Fatal(err)
	}
	copies, err := a.Copies(ctx, sha256hex(delivered))
	if err != nil || len(copies) != 1 || copies[0].Account != "bob" {
		t.Errorf("after disposal: copies %+v, %v; want bob's only", copies, err)
	}
	if n, err := a.BackfillFingerprints(ctx); err != nil || n != 0 {
		t.Errorf("BackfillFingerprints after disposal = %d, %v; want 0 (nothing to read)", n, err)
	}
}
