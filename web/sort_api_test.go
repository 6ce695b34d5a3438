package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"mailvault/indexer"
)

// TestAPISortAndOperators: /api/search takes sort= (every order of
// indexer.Sorts, and date), pages each by its cursor, refuses a cursor made
// for another order, and passes the new operators (is:, in:, larger:) to the
// service with the caller's scope.
func TestAPISortAndOperators(t *testing.T) {
	f := newAPIFixture(t)
	ctx := context.Background()
	// Five more messages in account a, of known sizes, senders and dates.
	var items []indexer.Item
	for i, m := range []struct {
		from string
		day  int
		pad  int
	}{{"carol@example.org", 10, 300}, {"alice@example.org", 12, 100}, {"bob@example.org", 11, 500}, {"dave@example.org", 13, 0}, {"alice@example.org", 9, 200}} {
		raw := fmt.Appendf(nil, "From: %s\r\nSubject: s%d\r\nDate: Sun, %d Mar 2024 10:00:00 +0000\r\n\r\nbudget sorted %s\r\n",
			m.from, i+1, m.day, strings.Repeat("x", m.pad))
		items = append(items, indexer.Item{Account: "a", Mailbox: "INBOX", UIDValidity: 5, UID: uint32(10 + i), Raw: raw})
	}
	if _, err := f.archive.Ingest(ctx, items); err != nil {
		t.Fatal(err)
	}
	if err := f.archive.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	subjects := func(hits []apiHit) string {
		var out []string
		for _, h := range hits {
			out = append(out, h.Subject)
		}
		return strings.Join(out, " ")
	}
	for _, tt := range []struct{ sort, want string }{
		{"", "s4 s2 s3 s1 s5"},
		{"date", "s4 s2 s3 s1 s5"},
		{"newest", "s4 s2 s3 s1 s5"},
		{"oldest", "s5 s1 s3 s2 s4"},
		{"largest", "s3 s1 s5 s2 s4"},
		{"smallest", "s4 s2 s5 s1 s3"},
		{"sender", "s2 s5 s3 s1 s4"},
	} {
		// One page, then two at a time by next_cursor.
		q := url.Values{"q": {"sorted"}, "sort": {tt.sort}}
		code, ans := f.search(t, f.admin, q.Encode())
		if code != http.StatusOK || subjects(ans.Hits) != tt.want {
			t.Errorf("sort=%q: %d [%s], want [%s]", tt.sort, code, subjects(ans.Hits), tt.want)
		}
		q.Set("limit", "2")
		var pages []string
		for range 5 {
			code, ans := f.search(t, f.admin, q.Encode())
			if code != http.StatusOK {
				t.Fatalf("sort=%q page: %d", tt.sort, code)
			}
			pages = append(pages, subjects(ans.Hits))
			if ans.NextCursor == "" {
				break
			}
			q.Set("cursor", ans.NextCursor)
		}
		if got := strings.Join(pages, " "); got != tt.want {
			t.Errorf("sort=%q by cursor: [%s], want [%s]", tt.sort, got, tt.want)
		}
	}
	// The relevance order and the IMAP syntax take sort= too.
	if code, ans := f.search(t, f.admin, "q=budget+sorted&sort=relevance"); code != http.StatusOK || len(ans.Hits) != 5 {
		t.Errorf("sort=relevance: %d, %d hits", code, len(ans.Hits))
	}
	if code, ans := f.search(t, f.admin, "syntax=imap&q=BODY+sorted&sort=largest"); code != http.StatusOK || subjects(ans.Hits) != "s3 s1 s5 s2 s4" {
		t.Errorf("IMAP sort=largest: %d [%s]", code, subjects(ans.Hits))
	}
	// A cursor of one order is refused for another; an unknown order says
	// which there are.
	_, first := f.search(t, f.admin, "q=sorted&sort=sender&limit=2")
	if code, body := f.get(t, f.admin, "/api/search?q=sorted&sort=largest&cursor="+first.NextCursor); code != http.StatusBadRequest ||
		!strings.Contains(string(body), "made for sort=sender") {
		t.Errorf("a sender cursor with sort=largest: %d %s", code, body)
	}
	if code, body := f.get(t, f.admin, "/api/search?q=sorted&sort=size"); code != http.StatusUnprocessableEntity ||
		!strings.Contains(string(body), `unknown sort \"size\" (known: newest, oldest, largest, smallest, sender, relevance)`) {
		t.Errorf("sort=size: %d %s", code, body)
	}
	// is: through the API, in the caller's scope: b's copy of the shared
	// message is unread like a's, onlyB was read in b.
	for _, tt := range []struct {
		token, q, want string
	}{
		{f.admin, "is:read", "secret merger"},
		{f.admin, "is:unread budget -sorted", "quarterly figures"},
		{f.ann, "is:read", ""},
		{f.ann, "in:INBOX is:unread -sorted", "quarterly figures"},
		{f.admin, "in:INBOX larger:500 sorted", "s3"},
	} {
		code, ans := f.search(t, tt.token, url.Values{"q": {tt.q}}.Encode())
		if code != http.StatusOK || subjects(ans.Hits) != tt.want {
			t.Errorf("%q: %d [%s], want [%s]", tt.q, code, subjects(ans.Hits), tt.want)
		}
	}
}
