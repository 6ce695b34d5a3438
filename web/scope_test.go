package web

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"mailvault/service"
)

// TestScopeThroughTheFrontDoors: a user who may see only account "a" asks,
// through the JSON API and the search page, queries that name account b,
// mailboxes of both, and negations. The front doors must answer exactly
// what the service answers for her (whose scoping the service's
// differential test checks), and nothing of account b may show: not an
// occurrence, not a facet place, not a count.
func TestScopeThroughTheFrontDoors(t *testing.T) {
	f := newAPIFixture(t)
	ann := service.Caller{Name: "ann", Role: service.RoleUser, Accounts: []string{"a"}}
	browser, _ := f.login(t, "ann", "correct horse")
	var queries []string
	for _, acct := range []string{"a", "b", "nosuch"} {
		for _, term := range []string{"account:" + acct, "-account:" + acct, "budget account:" + acct, "budget OR account:" + acct} {
			queries = append(queries, term)
		}
	}
	for _, mb := range []string{"INBOX", "nosuch"} {
		queries = append(queries, "mailbox:"+mb, "-mailbox:"+mb, "secret mailbox:"+mb, "account:b mailbox:"+mb)
	}
	queries = append(queries, "budget", "merger", "secret OR budget", "-budget", "from:zed")
	placeLabel := regexp.MustCompile(`<a href="[^"]*"[^>]*>([^<(]+) \((\d+)\)</a>`)
	summary := regexp.MustCompile(`id="summary">(\d+) matching`)
	for _, q := range queries {
		want, err := f.svc.Search(context.Background(), ann, service.SearchRequest{Query: q, Limit: 1000, Facets: true})
		if err != nil {
			t.Fatalf("%q: %v", q, err)
		}
		// The API.
		code, ans := f.search(t, f.ann, "q="+url.QueryEscape(q)+"&limit=1000")
		if code != 200 || ans.Total != want.Total || !slices.Equal(places(ans.Hits), places(wrapHits(want.Hits))) {
			t.Errorf("API %q: %d, total %d %v; the service says %d %v", q, code, ans.Total, places(ans.Hits), want.Total, places(wrapHits(want.Hits)))
		}
		for _, p := range places(ans.Hits) {
			if !strings.HasPrefix(p, "a/") {
				t.Errorf("API %q shows ann %s", q, p)
			}
		}
		// The page.
		code, body, _ := getPage(t, browser, f.srv.URL+"/?q="+url.QueryEscape(q))
		m := summary.FindStringSubmatch(body)
		if code != 200 || m == nil || m[1] != fmt.Sprint(want.Total) {
			t.Errorf("page %q: %d, summary %v, want %d matching", q, code, m, want.Total)
		}
		for _, l := range placeLabel.FindAllStringSubmatch(body, -1) {
			if strings.HasPrefix(l[1], "b / ") {
				t.Errorf("page %q shows ann the place %q", q, l[1])
			}
		}
		if strings.Contains(body, "b/INBOX") || strings.Contains(body, "account=b") {
			t.Errorf("page %q names account b", q)
		}
	}
	// b's message by id, and account b by name, answer as what does not exist.
	if code, _ := f.get(t, f.ann, "/api/messages/"+f.onlyB); code != 404 {
		t.Errorf("b's message: %d", code)
	}
	if code, body, _ := getPage(t, browser, f.srv.URL+"/?q=budget&account=b"); code != 404 || !strings.Contains(body, "no such account") {
		t.Errorf("page with account=b: %d", code)
	}
}
