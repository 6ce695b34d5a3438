package service

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"mailvault/indexer"
	"mailvault/indexer/catalog"
)

// TestSearchIMAPSort: the IMAP syntax honours the sort, over all its
// mailboxes, before the page is cut; Date: headers in other zones compare
// as instants and a message without a Date: comes last.
func TestSearchIMAPSort(t *testing.T) {
	a, users := newArchive(t)
	ctx := context.Background()
	for _, mb := range []string{"INBOX", "Sent"} {
		if _, err := a.EnsureMailbox(ctx, "al", mb, catalog.SourceIMAP, 1); err != nil {
			t.Fatal(err)
		}
	}
	msg := func(subject, date string) []byte {
		if date != "" {
			date = "Date: " + date + "\r\n"
		}
		return fmt.Appendf(nil, "From: x@example.org\r\nSubject: %s\r\n%s\r\nbody\r\n", subject, date)
	}
	// In UTC: s3 10:30, i1 11:00, s4 11:30, i2 12:00; i5 has no date.
	if _, err := a.Ingest(ctx, []indexer.Item{
		{Account: "al", Mailbox: "INBOX", UIDValidity: 1, UID: 1, Raw: msg("i1", "Mon, 4 Mar 2024 11:00:00 +0000")},
		{Account: "al", Mailbox: "INBOX", UIDValidity: 1, UID: 2, Raw: msg("i2", "Mon, 4 Mar 2024 13:00:00 +0100")},
		{Account: "al", Mailbox: "INBOX", UIDValidity: 1, UID: 5, Raw: msg("i5", "")},
		{Account: "al", Mailbox: "Sent", UIDValidity: 1, UID: 3, Raw: msg("s3", "Mon, 4 Mar 2024 05:30:00 -0500")},
		{Account: "al", Mailbox: "Sent", UIDValidity: 1, UID: 4, Raw: msg("s4", "Mon, 4 Mar 2024 12:30:00 +0100")},
	}); err != nil {
		t.Fatal(err)
	}
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	s := New(a, &Options{Users: users})
	admin := Caller{Name: "root", Role: RoleAdmin, Remote: "r"}
	for _, tc := range []struct {
		sort          string
		offset, limit int
		want          string
	}{
		{"", 0, 0, "i1 i2 i5 s3 s4"}, // the answer's order: mailbox, UID
		{"relevance", 0, 0, "i1 i2 i5 s3 s4"},
		{"date", 0, 0, "i2 s4 i1 s3 i5"},
		{"date", 1, 2, "s4 i1"}, // sorted before the page is cut
	} {
		res, err := s.Search(ctx, admin, SearchRequest{Query: "ALL", Syntax: SyntaxIMAP, Sort: tc.sort, Offset: tc.offset, Limit: tc.limit})
		if err != nil {
			t.Fatalf("sort %q: %v", tc.sort, err)
		}
		var got []string
		for _, h := range res.Hits {
			got = append(got, h.Subject)
		}
		if strings.Join(got, " ") != tc.want || res.Total != 5 {
			t.Errorf("Search(ALL, sort %q, offset %d) = %v of %d, want %s of 5", tc.sort, tc.offset, got, res.Total, tc.want)
		}
	}
	for _, syntax := range []Syntax{SyntaxIMAP, SyntaxHuman} {
		_, err := s.Search(ctx, admin, SearchRequest{Query: "ALL", Syntax: syntax, Sort: "sideways"})
		if !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), `"sideways"`) {
			t.Errorf("%s search with sort sideways: %v, want a bad-request error naming it", syntax, err)
		}
	}
}
