package service

import (
	"context"
	"fmt"
	"testing"

	"mailvault/indexer"
	"mailvault/indexer/catalog"
)

// TestSearchIMAPPagesFromOneAnswer: the pages of an IMAP-syntax search
// come from one computation of the whole answer (the plan of every page
// is the first's, to the nanosecond), which another caller's search and a
// search after a new message do not reuse: they compute anew, and the new
// answer holds the message.
func TestSearchIMAPPagesFromOneAnswer(t *testing.T) {
	a, users := newArchive(t)
	ctx := context.Background()
	if _, err := a.EnsureMailbox(ctx, "al", "INBOX", catalog.SourceIMAP, 1); err != nil {
		t.Fatal(err)
	}
	var items []indexer.Item
	for i := 1; i <= 30; i++ {
		items = append(items, indexer.Item{Account: "al", Mailbox: "INBOX", UIDValidity: 1, UID: uint32(i),
			Raw: fmt.Appendf(nil, "From: x@example.org\r\nSubject: invoice %d\r\n\r\nbody %d\r\n", i, i)})
	}
	if _, err := a.Ingest(ctx, items); err != nil {
		t.Fatal(err)
	}
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	s := New(a, &Options{Users: users})
	admin := Caller{Name: "root", Role: RoleAdmin, Remote: "r"}
	page := func(c Caller, offset int) *SearchResult {
		t.Helper()
		res, err := s.Search(ctx, c, SearchRequest{Query: `SUBJECT "invoice"`, Syntax: SyntaxIMAP, Offset: offset, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	first := page(admin, 0)
	took := first.Mailboxes[0].Plan.Took
	var uids []uint32
	for off := 0; off < 30; off += 10 {
		p := page(admin, off)
		if p.Total != 30 || len(p.Hits) != 10 {
			t.Fatalf("offset %d: total %d, %d hits", off, p.Total, len(p.Hits))
		}
		if p.Mailboxes[0].Plan.Took != took {
			t.Fatalf("offset %d: the search ran again (took %v, first %v)", off, p.Mailboxes[0].Plan.Took, took)
		}
		for _, h := range p.Hits {
			uids = append(uids, h.Occurrences[0].UID)
		}
	}
	for i, u := range uids {
		if u != uint32(i+1) {
			t.Fatalf("pages gave UIDs %v", uids)
		}
	}
	// Another caller computes its own answer.
	if other := page(Caller{Name: "aud", Role: RoleAuditor, Remote: "r"}, 0); other.Mailboxes[0].Plan.Took == took {
		t.Fatal("another caller was given the admin's answer")
	}
	// A new message: a new answer, with it.
	if _, err := a.Ingest(ctx, []indexer.Item{{Account: "al", Mailbox: "INBOX", UIDValidity: 1, UID: 31,
		Raw: []byte("From: y@example.org\r\nSubject: invoice 31\r\n\r\nbody\r\n")}}); err != nil {
		t.Fatal(err)
	}
	if p := page(admin, 0); p.Total != 31 {
		t.Fatalf("after a new message: total %d, want 31 (a stale answer)", p.Total)
	}
}
