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
	"time"

	"mailvault/indexer/catalog"
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

// Provenances (one query a batch, for exports) agrees with ProvenanceOf
// over Copies (a query a message) on a generated archive: mail seen in
// mailboxes, by the journal, by both under different bytes (linked by
// fingerprint), journal reports, and keys not archived.
func TestProvenancesAgreeWithCopies(t *testing.T) {
	ctx := context.Background()
	a := openTest(t, t.TempDir())
	defer a.Close()
	r := rand.New(rand.NewPCG(11, 17))
	mustMailbox(t, a, "alice", "INBOX")
	mustMailbox(t, a, "bob", "Sent")
	mustMailbox(t, a, "journal", "INBOX")
	var items []Item
	var keys [][32]byte
	uid := map[string]uint32{}
	add := func(account, mailbox string, raw []byte, journal bool) {
		uid[account]++
		it := Item{Account: account, Mailbox: mailbox, UIDValidity: 7, UID: uid[account], Raw: raw}
		if journal {
			it.Envelope = &Envelope{MailFrom: "x@example.org", RcptTo: []string{"y@example.org"}, Recipients: []string{"y@example.org"}, Client: "127.0.0.1", Listener: "smtp", ReceivedAt: time.Unix(1e9, 0).UTC()}
		}
		items = append(items, it)
		keys = append(keys, store.KeyOf(raw))
	}
	for i := range 300 {
		g := genMessage(r, i)
		sent := g.render(delivery{})
		switch r.IntN(4) {
		case 0: // a mailbox only
			add("alice", "INBOX", sent, false)
		case 1: // the journal only
			add("journal", "INBOX", sent, true)
		case 2: // both, with different bytes
			add("journal", "INBOX", sent, true)
			add("bob", "Sent", g.render(delivery{headers: []string{"Delivered-To: rcpt@example.org"}}), false)
		case 3: // both, the same bytes
			add("journal", "INBOX", sent, true)
			add("alice", "INBOX", sent, false)
		}
	}
	ingest(t, a, items...)
	// A few journal copies were reports carrying another journal copy.
	var journaled []int
	for i, it := range items {
		if it.Envelope != nil {
			journaled = append(journaled, i)
		}
	}
	reports := 0
	for j := 0; j+1 < len(journaled) && reports < 10; j += 2 {
		if err := a.LinkJournalReport(ctx, keys[journaled[j]], keys[journaled[j+1]], ""); err != nil {
			t.Fatal(err)
		}
		reports++
	}
	if reports < 10 {
		t.Fatalf("only %d journal reports linked", reports)
	}
	keys = append(keys, store.KeyOf([]byte("never archived")))
	got, err := a.Provenances(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, k := range keys {
		copies, err := a.Copies(ctx, hex.EncodeToString(k[:]))
		if err != nil {
			t.Fatal(err)
		}
		want := catalog.ProvenanceOf(copies)
		if got[k] != want {
			t.Errorf("%x: Provenances %q, ProvenanceOf(Copies) %q (copies %+v)", k[:4], got[k], want, copies)
		}
		kinds[want]++
	}
	// The generated archive has every kind, or the test proves little.
	for _, k := range []string{catalog.ProvenanceJournal, catalog.ProvenanceMailbox, catalog.ProvenanceBoth, ""} {
		if kinds[k] == 0 {
			t.Errorf("no message of provenance %q in the generated archive: %v", k, kinds)
		}
	}
}
