package web

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserOperatorAndSort types Gmail's in: operator on the search page
// and picks the oldest-first order from the sort menu: the count is the
// mailbox's, the order turns over, and the address carries both.
func TestBrowserOperatorAndSort(t *testing.T) {
	exe := chromium(t)
	f := newAPIFixture(t)
	addProjects(t, f)

	bctx := headless(t, context.Background(), exe)
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		browserDo(t, bctx, what, steps...)
	}
	text := func(sel string) string {
		t.Helper()
		return browserText(t, bctx, sel)
	}
	// until waits for the results to show subjects in this order.
	until := func(what string, subjects ...string) {
		t.Helper()
		var at []int
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			res := text(`#results`)
			at = at[:0]
			ok := true
			for i, s := range subjects {
				at = append(at, strings.Index(res, s))
				ok = ok && at[i] >= 0 && (i == 0 || at[i-1] < at[i])
			}
			if ok {
				return
			}
		}
		t.Fatalf("%s: positions %v of %v in the results", what, at, subjects)
	}

	do("open the search page", chromedp.Navigate(f.srv.URL+"/"))
	do("log in",
		chromedp.WaitVisible(`input[name=name]`),
		chromedp.SendKeys(`input[name=name]`, "ann"),
		chromedp.SendKeys(`input[name=password]`, "correct horse"),
		chromedp.Submit(`input[name=password]`),
		chromedp.WaitVisible(`input[name=q]`))
	do("in:Projects, newest first",
		chromedp.SendKeys(`input[name=q]`, "in:Projects budget"),
		chromedp.Submit(`input[name=q]`))
	until("newest first", "budget plan beta", "budget plan alpha", "budget misc")
	if got := text(`#summary`); !strings.HasPrefix(got, "3 matching messages") {
		t.Errorf("in:Projects budget: summary %q, want 3 matching messages (not the 4 of all mailboxes)", got)
	}
	do("oldest first",
		chromedp.SetValue(`select[name=sort]`, "oldest"),
		chromedp.Submit(`input[name=q]`))
	until("oldest first", "budget misc", "budget plan alpha", "budget plan beta")
	loc, err := chromedp.Run(bctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(loc, "sort=oldest") || !strings.Contains(loc, "in%3AProjects") {
		t.Errorf("the address %s does not carry the query and the sort", loc)
	}
}
