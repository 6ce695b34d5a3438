package web

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"mailvault/indexer"
	"mailvault/indexer/catalog"
)

// addProjects adds to account a of the fixture the messages the search
// page tests narrow: a/INBOX UID 9 and a/Projects UIDs 1 to 3 all say
// "budget" (with a/INBOX UID 1 of the fixture, five messages), two of them
// "alpha" (one in each mailbox), and a/Bulk holds 55 "bulkword" messages,
// more than one page. The Projects dates are out of UID order: newest
// first is UID 2, 1, 3.
func addProjects(t *testing.T, f *apiFixture) {
	t.Helper()
	ctx := context.Background()
	for _, mb := range []string{"Projects", "Bulk"} {
		if _, err := f.archive.EnsureMailbox(ctx, "a", mb, catalog.SourceIMAP, 5); err != nil {
			t.Fatal(err)
		}
	}
	msg := func(subject, date, body string) []byte {
		return fmt.Appendf(nil, "From: Kim <kim@example.org>\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%s@example.org>\r\n\r\n%s\r\n",
			subject, date, strings.ReplaceAll(subject, " ", "."), body)
	}
	items := []indexer.Item{
		{Account: "a", Mailbox: "INBOX", UIDValidity: 5, UID: 9, Raw: msg("budget report alpha", "Sat, 10 Feb 2024 09:00:00 +0000", "the budget, alpha")},
		{Account: "a", Mailbox: "Projects", UIDValidity: 5, UID: 1, Raw: msg("budget plan alpha", "Mon, 15 Jan 2024 09:00:00 +0000", "budget alpha")},
		{Account: "a", Mailbox: "Projects", UIDValidity: 5, UID: 2, Raw: msg("budget plan beta", "Thu, 20 Jun 2024 09:00:00 +0000", "budget beta")},
		{Account: "a", Mailbox: "Projects", UIDValidity: 5, UID: 3, Raw: msg("budget misc", "Thu, 5 Jan 2023 09:00:00 +0000", "budget misc")},
	}
	for i := range 55 {
		items = append(items, indexer.Item{Account: "a", Mailbox: "Bulk", UIDValidity: 5, UID: uint32(i + 1),
			Raw: msg(fmt.Sprintf("bulkword %d", i), fmt.Sprintf("Mon, %d Jan 2024 09:%02d:00 +0000", 1+i%28, i), "bulkword")})
	}
	if _, err := f.archive.Ingest(ctx, items); err != nil {
		t.Fatal(err)
	}
	if err := f.archive.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestSearchStateHref(t *testing.T) {
	for _, st := range []searchState{
		{Query: "budget", Syntax: "human"},
		{Query: "budget alpha", Syntax: "human", Account: "a", Mailbox: "Projects", Sort: "relevance", Offset: 50},
		{Query: `SUBJECT "a&b" OR FROM x TO y`, Syntax: "imap", Mailbox: "Sent Items/2024 ä", Sort: "date"},
		{Query: "q=1&syntax=imap", Syntax: "human", Account: "x&mailbox=y"},
	} {
		h := st.href()
		u, err := url.Parse(h)
		if err != nil || u.Path != "/" {
			t.Fatalf("href of %+v = %q (%v)", st, h, err)
		}
		if got := searchStateOf(u.Query()); got != st {
			t.Errorf("searchStateOf(%q) = %+v, want %+v", h, got, st)
		}
	}
	// What the URL does not say is the default, whatever else it says.
	for raw, want := range map[string]searchState{
		"q=x":                         {Query: "x", Syntax: "human"},
		"q=x&syntax=IMAP&offset=-5":   {Query: "x", Syntax: "human"},
		"q=x&syntax=imap&offset=zero": {Query: "x", Syntax: "imap"},
	} {
		v, _ := url.ParseQuery(raw)
		if got := searchStateOf(v); got != want {
			t.Errorf("searchStateOf(%q) = %+v, want %+v", raw, got, want)
		}
	}
}

var (
	hrefRE   = regexp.MustCompile(`href="(/\?[^"]*)"`)
	hiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
	summary  = regexp.MustCompile(`id="summary">(\d+) matching`)
	subject  = regexp.MustCompile(`<a href="/message/[0-9a-f]+">([^<]*)</a>`)
)

// pageState is what a search page says and links to.
type pageState struct {
	code     int
	body     string
	total    string   // the summary's count
	subjects []string // the hits' subjects, in order
	links    []searchState
	form     url.Values // what submitting the form sends, q aside
}

func loadSearch(t *testing.T, c *http.Client, base, path string) pageState {
	t.Helper()
	code, body, _ := getPage(t, c, base+path)
	p := pageState{code: code, body: body, form: url.Values{}}
	if m := summary.FindStringSubmatch(body); m != nil {
		p.total = m[1]
	}
	for _, m := range subject.FindAllStringSubmatch(body, -1) {
		p.subjects = append(p.subjects, html.UnescapeString(m[1]))
	}
	for _, m := range hrefRE.FindAllStringSubmatch(body, -1) {
		u, err := url.Parse(html.UnescapeString(m[1]))
		if err != nil {
			t.Fatalf("link %q: %v", m[1], err)
		}
		p.links = append(p.links, searchStateOf(u.Query()))
	}
	// The search form: its hidden inputs, the checked syntax, the
	// selected account and sort.
	form, _, _ := strings.Cut(body[strings.Index(body, `<form class="search"`):], "</form>")
	for _, m := range hiddenRE.FindAllStringSubmatch(form, -1) {
		p.form.Add(m[1], html.UnescapeString(m[2]))
	}
	if m := regexp.MustCompile(`name="syntax" value="(\w+)" checked`).FindStringSubmatch(form); m != nil {
		p.form.Set("syntax", m[1])
	}
	for _, name := range []string{"account", "sort"} {
		sel := regexp.MustCompile(`<select name="` + name + `">.*?</select>`).FindString(form)
		if m := regexp.MustCompile(`<option(?: value="([^"]*)")? selected>([^<]*)<`).FindStringSubmatch(sel); m != nil {
			v := m[1]
			if v == "" {
				v = m[2]
			}
			p.form.Set(name, html.UnescapeString(v))
		}
	}
	return p
}

// submit is the form of p sent with query q.
func (p pageState) submit(q string) string {
	v := url.Values{}
	for k, x := range p.form {
		v[k] = x
	}
	v.Set("q", q)
	return "/?" + v.Encode()
}

// keeps says whether link l from the page of st keeps st's narrowings:
// the same syntax and sort, the query or a refinement of it, and the same
// place, or a place facet (both set), or the place with a part removed
// (a chip, "all places").
func keeps(st, l searchState) bool {
	if l.Syntax != st.Syntax || l.Sort != st.Sort || !strings.HasPrefix(l.Query, st.Query) {
		return false
	}
	same := l.Account == st.Account && l.Mailbox == st.Mailbox
	facet := l.Account != "" && l.Mailbox != ""
	removal := (l.Account == "" || l.Account == st.Account) && (l.Mailbox == "" || l.Mailbox == st.Mailbox)
	return same || facet || removal
}

// TestSearchPageState is the round trip of every narrowing of the search
// page through its URL: the links it makes, the form it shows, and a
// refined query sent from that form.
func TestSearchPageState(t *testing.T) {
	f := newAPIFixture(t)
	addProjects(t, f)
	ann, _ := f.login(t, "ann", "correct horse")
	load := func(path string) pageState { t.Helper(); return loadSearch(t, ann, f.srv.URL, path) }

	p := load("/?q=budget")
	if p.total != "5" {
		t.Fatalf("budget: %s matching, want 5\n%s", p.total, p.body)
	}
	var facet *searchState
	for i, l := range p.links {
		if l.Mailbox == "Projects" {
			facet = &p.links[i]
		}
	}
	if facet == nil || facet.Account != "a" || facet.Query != "budget" {
		t.Fatalf("no a / Projects facet link among %+v", p.links)
	}

	// Each narrowing, alone and together, survives in every link and in
	// the form.
	for _, tc := range []struct {
		name  string
		state searchState
		total string
	}{
		{"mailbox facet", *facet, "3"},
		{"account", searchState{Query: "budget", Syntax: "human", Account: "a"}, "5"},
		{"mailbox alone", searchState{Query: "budget", Syntax: "human", Mailbox: "Projects"}, "3"},
		{"sort", searchState{Query: "budget", Syntax: "human", Sort: "relevance"}, "5"},
		{"all", searchState{Query: "budget", Syntax: "human", Account: "a", Mailbox: "Projects", Sort: "relevance"}, "3"},
		{"imap", searchState{Query: "BODY budget", Syntax: "imap", Account: "a", Mailbox: "Projects", Sort: "relevance"}, "3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := load(tc.state.href())
			if p.code != 200 || p.total != tc.total {
				t.Fatalf("%s: %d, %s matching, want %s\n%s", tc.state.href(), p.code, p.total, tc.total, p.body)
			}
			want := url.Values{"syntax": {tc.state.Syntax}}
			for k, v := range map[string]string{"account": tc.state.Account, "mailbox": tc.state.Mailbox, "sort": tc.state.Sort} {
				if v != "" {
					want.Set(k, v)
				}
			}
			if tc.state.Sort == "" {
				want.Set("sort", "date") // the selector's default, the same order
			}
			if p.form.Encode() != want.Encode() {
				t.Errorf("the form sends %v, want %v", p.form, want)
			}
			name := map[string]string{"human": "mailvault syntax", "imap": "IMAP SEARCH syntax"}[tc.state.Syntax]
			if !strings.Contains(p.body, `<span id="syntax-used">`+name+`</span>`) {
				t.Errorf("the page does not say it used the %s", name)
			}
			for _, l := range p.links {
				if !keeps(tc.state, l) {
					t.Errorf("link %+v loses a narrowing of %+v", l, tc.state)
				}
			}
			// A chip names each place narrowing and removes it.
			for _, chip := range []struct{ set, label, what string }{{tc.state.Account, "account ", "account"}, {tc.state.Mailbox, "mailbox ", "mailbox"}} {
				if chip.set != "" && !strings.Contains(p.body, `aria-label="remove `+chip.label+chip.set+`"`) {
					t.Errorf("no chip removes the %s", chip.what)
				}
			}
		})
	}

	// Refining the query from the facet's page keeps the mailbox: the
	// narrower query finds the one message in a/Projects, not the two in a.
	p = load(facet.href())
	refined := load(p.submit("budget alpha"))
	if refined.total != "1" || len(refined.subjects) != 1 || refined.subjects[0] != "budget plan alpha" {
		t.Errorf("refined after the facet: %s matching %q, want 1 (budget plan alpha)", refined.total, refined.subjects)
	}
	if everywhere := load("/?q=budget+alpha"); everywhere.total != "2" {
		t.Errorf("budget alpha everywhere: %s matching, want 2", everywhere.total)
	}
	// Removing the mailbox chip widens again.
	for _, l := range refined.links {
		if l.Mailbox == "" && l.Account == "a" && l.Query == "budget alpha" {
			if w := load(l.href()); w.total != "2" {
				t.Errorf("without the mailbox chip: %s matching, want 2", w.total)
			}
		}
	}

	// Paging keeps every narrowing; the second page holds the rest.
	st := searchState{Query: "bulkword", Syntax: "human", Account: "a", Mailbox: "Bulk", Sort: "date"}
	p = load(st.href())
	if p.total != "55" || len(p.subjects) != pageSize {
		t.Fatalf("bulkword: %s matching, %d on the page", p.total, len(p.subjects))
	}
	next := st
	next.Offset = pageSize
	if !strings.Contains(p.body, `id="next"`) || !strings.Contains(p.body, html.EscapeString(next.href())) {
		t.Errorf("the next page is not %s", next.href())
	}
	if p2 := load(next.href()); len(p2.subjects) != 5 || !strings.Contains(p2.body, html.EscapeString(st.href())) {
		t.Errorf("second page: %d hits (want 5), previous link to %s", len(p2.subjects), st.href())
	}

	// A timeline bar and a sender keep the place, the syntax and the sort
	// and add their terms to the query.
	p = load(searchState{Query: "budget", Syntax: "human", Account: "a", Mailbox: "Projects", Sort: "relevance"}.href())
	var month, sender bool
	for _, l := range p.links {
		month = month || l.Query == "budget after:2024-06-01 before:2024-07-01" && l.Mailbox == "Projects" && l.Sort == "relevance"
		sender = sender || l.Query == "budget from:kim@example.org" && l.Mailbox == "Projects" && l.Sort == "relevance"
	}
	if !month || !sender {
		t.Errorf("timeline bar kept: %v, sender facet kept: %v; links %+v", month, sender, p.links)
	}
	if bar := load(searchState{Query: "budget after:2024-06-01 before:2024-07-01", Syntax: "human", Account: "a", Mailbox: "Projects"}.href()); bar.total != "1" {
		t.Errorf("the June bar: %s matching, want 1", bar.total)
	}

	// The syntax is the URL's: a browser that once had the old syntax
	// cookie gets the default syntax for a plain link, and the cookie goes.
	u, _ := url.Parse(f.srv.URL)
	ann.Jar.SetCookies(u, []*http.Cookie{{Name: "mv_syntax", Value: "imap", Path: "/"}})
	if p := load("/?q=from:kim@example.org"); p.code != 200 || p.total != "59" || !strings.Contains(p.body, `value="human" checked`) {
		t.Errorf("a plain query with an old IMAP cookie: %d, %s matching\n%s", p.code, p.total, p.body)
	}
	for _, c := range ann.Jar.Cookies(u) {
		if c.Name == "mv_syntax" {
			t.Errorf("the old syntax cookie is still set: %v", c)
		}
	}
	// IMAP from the URL alone.
	if p := load("/?syntax=imap&q=" + url.QueryEscape("SUBJECT plan")); p.total != "2" || !strings.Contains(p.body, "IMAP SEARCH syntax</span>") {
		t.Errorf("IMAP from the URL: %s matching\n%s", p.total, p.body)
	}
	// A query in the wrong syntax says which syntax read it and links to
	// the other, keeping the narrowing.
	p = load(searchState{Query: "from:kim", Syntax: "imap", Mailbox: "Projects"}.href())
	other := searchState{Query: "from:kim", Syntax: "human", Mailbox: "Projects"}
	if p.code != http.StatusUnprocessableEntity || !strings.Contains(p.body, "The query was read in IMAP SEARCH syntax: ") ||
		!strings.Contains(p.body, `href="`+html.EscapeString(other.href())+`" id="other-syntax"`) {
		t.Errorf("human query in IMAP mode: %d\n%s", p.code, p.body)
	}
	if p := load(other.href()); p.total != "3" {
		t.Errorf("the other syntax's link: %s matching, want 3", p.total)
	}

	// The sort applies in IMAP mode: newest first is UID 2, 1, 3; the
	// answer's own order (relevance: IMAP has no scores) is UID 1, 2, 3.
	imap := searchState{Query: "ALL", Syntax: "imap", Account: "a", Mailbox: "Projects"}
	for sort, want := range map[string]string{
		"date":      "budget plan beta,budget plan alpha,budget misc",
		"relevance": "budget plan alpha,budget plan beta,budget misc",
	} {
		imap.Sort = sort
		if got := strings.Join(load(imap.href()).subjects, ","); got != want {
			t.Errorf("IMAP ALL sorted by %s: %s, want %s", sort, got, want)
		}
	}
}
