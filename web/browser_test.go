package web

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"mailvault/indexer"
)

// chromium returns the headless browser's path. Outside CI a machine
// without one skips the browser tests; in CI (CI=true) that is a failure.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no chromium on this machine: apt-get install -y chromium (.ci/run does)")
	}
	t.Skip("no chromium on this machine (apt-get install -y chromium); CI runs this test")
	return ""
}

// screenshotDir is where the browser test keeps its screenshots:
// $MAILVAULT_ARTIFACTS, else a directory under the system temp dir.
func screenshotDir(t *testing.T) string {
	dir := os.Getenv("MAILVAULT_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "mailvault-screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestBrowser drives headless Chromium through the UI: log in, search,
// open a message, download it and compare its sha256, fail to reach
// another account's message, and render a hostile message, asserting that
// no script runs and no request leaves for any host but mailvault.
func TestBrowser(t *testing.T) {
	exe := chromium(t)
	f := newAPIFixture(t)
	ctx := context.Background()

	// A sink that records every request: the hostile message points at it.
	var sinkMu sync.Mutex
	var sinkHits []string
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sinkMu.Lock()
		sinkHits = append(sinkHits, r.Method+" "+r.URL.String())
		sinkMu.Unlock()
	}))
	defer sink.Close()
	hostileRaw := strings.ReplaceAll(hostileHTML, "http://evil.example", sink.URL)
	if _, err := f.archive.Ingest(ctx, []indexer.Item{{Account: "a", Mailbox: "INBOX", UIDValidity: 5, UID: 8, Raw: []byte(hostileRaw)}}); err != nil {
		t.Fatal(err)
	}
	f.archive.Flush(ctx)
	hostile := sha([]byte(hostileRaw))

	bctx := headless(t, ctx, exe)
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		browserDo(t, bctx, what, steps...)
	}
	text := func(sel string) string {
		t.Helper()
		return browserText(t, bctx, sel)
	}
	shots := screenshotDir(t)
	shot := func(name string) {
		t.Helper()
		buf, err := chromedp.Run(bctx, chromedp.FullScreenshot(100)) // 100: PNG
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, name+".png"), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// Every request the browser makes, and every dialog a script opens.
	do("start the browser", chromedp.Navigate("about:blank"))
	var mu sync.Mutex
	var requests, dialogs []string
	if err := chromedp.Listen(bctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			requests = append(requests, ev.Request.URL)
		case *page.EventJavascriptDialogOpening:
			dialogs = append(dialogs, ev.Message)
			go chromedp.Call(bctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{})
		}
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(bctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}

	do("log in",
		chromedp.Navigate(f.srv.URL+"/"),
		chromedp.WaitVisible(`input[name=name]`))
	shot("login")
	do("log in",
		chromedp.SendKeys(`input[name=name]`, "ann"),
		chromedp.SendKeys(`input[name=password]`, "correct horse"),
		chromedp.Submit(`input[name=password]`),
		chromedp.WaitVisible(`input[name=q]`))
	do("search",
		chromedp.SendKeys(`input[name=q]`, "budget"),
		chromedp.Submit(`input[name=q]`),
		chromedp.WaitVisible(`#results`))
	shot("search")
	if got := text(`#results`); !strings.Contains(got, "quarterly figures") || strings.Contains(got, "secret merger") || !strings.Contains(got, ";UID=1") {
		t.Errorf("results: %q", got)
	}
	do("narrow with the a / INBOX facet",
		chromedp.Click(`#facets a`, chromedp.NodeVisible),
		chromedp.WaitVisible(`#results`))
	if got := text(`#summary`); !strings.HasPrefix(got, "1 matching") {
		t.Errorf("summary after the facet: %q", got)
	}
	if got := text(`#facets`); !strings.Contains(got, "all places") {
		t.Errorf("after a facet, the facets offer no way back: %q", got)
	}
	do("open the message",
		chromedp.Click(`#results a`, chromedp.NodeVisible),
		chromedp.WaitVisible(`#sha256`))
	shot("message")
	if got := text(`#sha256`); got != f.shared {
		t.Errorf("message page shows sha256 %q, want %q", got, f.shared)
	}
	downloads := t.TempDir()
	done := make(chan string, 1)
	if err := chromedp.ListenBrowser(bctx, func(ev any) {
		if e, ok := ev.(*browser.EventDownloadProgress); ok && e.State == browser.DownloadProgressStateCompleted {
			select {
			case done <- e.GUID:
			default:
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	yes := true
	if _, err := chromedp.CallBrowser(bctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: downloads, EventsEnabled: &yes}); err != nil {
		t.Fatal(err)
	}
	do("download the raw message", chromedp.Click(`#raw`, chromedp.NodeVisible))
	select {
	case guid := <-done:
		raw, err := os.ReadFile(filepath.Join(downloads, guid))
		if err != nil || sha(raw) != f.shared {
			t.Errorf("downloaded raw message: sha256 %s (%v), want %s", sha(raw), err, f.shared)
		}
	case <-time.After(20 * time.Second):
		t.Error("the raw download did not complete")
	}
	do("another account's message",
		chromedp.Navigate(f.srv.URL+"/message/"+f.onlyB),
		chromedp.WaitVisible(`h1`))
	if got := text(`main`); !strings.Contains(got, "No such message") || strings.Contains(got, "secret merger") {
		t.Errorf("another account's message page: %q", got)
	}

	// A link on another site (localhost is another site than 127.0.0.1)
	// to an audited search: with SameSite=Strict the session cookie does not
	// go with the navigation, so no search is made in ann's name.
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<a id="go" href="%s/?q=crosssiteprobe">win a prize</a>`, f.srv.URL)
	}))
	defer attacker.Close()
	do("follow a link from another site",
		chromedp.Navigate(strings.Replace(attacker.URL, "127.0.0.1", "localhost", 1)),
		chromedp.Click(`#go`, chromedp.NodeVisible),
		chromedp.WaitVisible(`input[name=name]`)) // the login page: no session came along
	trail, err := f.users.AuditTrail(ctx, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range trail {
		if strings.Contains(e.Detail, "crosssiteprobe") {
			t.Errorf("a cross-site link made an audited search in %s's name: %+v", e.User, e)
		}
	}
	do("the same link from this site still works",
		chromedp.Navigate(f.srv.URL+"/?q=crosssiteprobe"),
		chromedp.WaitVisible(`#summary`))

	mu.Lock()
	requests = nil
	mu.Unlock()
	do("render the hostile message",
		chromedp.Navigate(f.srv.URL+"/message/"+hostile),
		chromedp.WaitVisible(`iframe.html`),
		chromedp.Sleep(2*time.Second))
	shot("hostile")
	mu.Lock()
	defer mu.Unlock()
	for _, r := range requests {
		if !strings.HasPrefix(r, f.srv.URL+"/") {
			t.Errorf("the browser requested %s", r)
		}
	}
	if len(dialogs) > 0 {
		t.Errorf("scripts ran: dialogs %q", dialogs)
	}
	sinkMu.Lock()
	if len(sinkHits) > 0 {
		t.Errorf("requests reached the outside host: %q", sinkHits)
	}
	sinkMu.Unlock()
	if len(requests) == 0 {
		t.Error("no request recorded while rendering the hostile message: the recording is broken")
	}
	t.Logf("screenshots in %s; %d requests while rendering the hostile message, all to mailvault", shots, len(requests))
}

// TestBrowserSearchState drives the search page as a new user did when the
// mailbox narrowing was lost: narrow by a mailbox facet, refine the query
// (the narrowing stays, the count is the narrower one), switch to IMAP
// syntax and change the sort (the order changes), then open the page's
// address in a fresh browser context, with no cookie but the session:
// the same results, in IMAP syntax, from the URL alone.
func TestBrowserSearchState(t *testing.T) {
	exe := chromium(t)
	f := newAPIFixture(t)
	addProjects(t, f)

	bctx := headless(t, context.Background(), exe)
	do := func(ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		browserDo(t, ctx, what, steps...)
	}
	text := func(ctx context.Context, sel string) string {
		t.Helper()
		return browserText(t, ctx, sel)
	}
	// settle waits until the page's summary starts with want: a click or
	// a submit navigates, and the old page's summary is there until the
	// new page replaces it.
	settle := func(ctx context.Context, what, want string) {
		t.Helper()
		var got string
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if got = text(ctx, `#summary`); strings.HasPrefix(got, want) {
				return
			}
		}
		t.Fatalf("%s: summary %q, want %q…", what, got, want)
	}
	logIn := func(ctx context.Context) {
		t.Helper()
		do(ctx, "log in",
			chromedp.WaitVisible(`input[name=name]`),
			chromedp.SendKeys(`input[name=name]`, "ann"),
			chromedp.SendKeys(`input[name=password]`, "correct horse"),
			chromedp.Submit(`input[name=password]`),
			chromedp.WaitVisible(`input[name=q]`))
	}
	order := func(ctx context.Context, subjects ...string) []int {
		t.Helper()
		res := text(ctx, `#results`)
		var at []int
		for _, s := range subjects {
			at = append(at, strings.Index(res, s))
		}
		return at
	}

	do(bctx, "open the search page", chromedp.Navigate(f.srv.URL+"/"))
	logIn(bctx)
	do(bctx, "search", chromedp.SendKeys(`input[name=q]`, "budget"), chromedp.Submit(`input[name=q]`))
	settle(bctx, "search budget", "5 matching messages")
	do(bctx, "narrow with the a / Projects facet", chromedp.Click(`#facets a[href*="mailbox=Projects"]`, chromedp.NodeVisible))
	settle(bctx, "the a / Projects facet", "3 matching messages")
	if got := text(bctx, `#narrowed`); !strings.Contains(got, "mailbox Projects") {
		t.Errorf("the narrowing is not shown: %q", got)
	}
	do(bctx, "refine the query",
		chromedp.SetValue(`input[name=q]`, "budget alpha"),
		chromedp.Submit(`input[name=q]`))
	settle(bctx, "the refined query", "1 matching messages") // 2 in all of a: the mailbox was kept
	if got := text(bctx, `#results`); !strings.Contains(got, "budget plan alpha") || strings.Contains(got, "budget report alpha") {
		t.Errorf("refined results: %q", got)
	}

	// IMAP syntax, in the same mailbox, newest first and then in the
	// answer's order: the sort applies.
	do(bctx, "IMAP syntax, newest first",
		chromedp.Click(`input[name=syntax][value=imap]`, chromedp.NodeVisible),
		chromedp.SetValue(`input[name=q]`, "ALL"),
		chromedp.SetValue(`select[name=sort]`, "date"),
		chromedp.Submit(`input[name=q]`))
	settle(bctx, "IMAP ALL", "3 matching occurrences")
	if got := text(bctx, `#syntax-used`); got != "IMAP SEARCH syntax" {
		t.Errorf("the page says it used %q", got)
	}
	if at := order(bctx, "budget plan beta", "budget plan alpha", "budget misc"); !(at[0] >= 0 && at[0] < at[1] && at[1] < at[2]) {
		t.Errorf("IMAP ALL newest first: positions %v of beta, alpha, misc", at)
	}
	do(bctx, "IMAP syntax, the answer's order",
		chromedp.SetValue(`select[name=sort]`, "relevance"),
		chromedp.Submit(`input[name=q]`))
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		at := order(bctx, "budget plan alpha", "budget plan beta", "budget misc")
		if at[0] >= 0 && at[0] < at[1] && at[1] < at[2] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("IMAP ALL by the answer's order: positions %v of alpha, beta, misc (the sort did not change the order)", at)
		}
	}
	shared, err := chromedp.Run(bctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	results := text(bctx, `#results`)

	// The shared address, in a fresh browser context: only the session
	// cookie of a new login, no state of the first browser.
	fctx, cancel := chromedp.NewContext(bctx, chromedp.WithNewBrowserContext())
	defer cancel()
	do(fctx, "open the shared address", chromedp.Navigate(shared))
	logIn(fctx) // the login page sends back to the shared address
	settle(fctx, "the shared address", "3 matching occurrences")
	if got := text(fctx, `#results`); got != results {
		t.Errorf("the shared address shows\n%s\nwant\n%s", got, results)
	}
	if got := text(fctx, `#syntax-used`); got != "IMAP SEARCH syntax" {
		t.Errorf("the shared address used %q", got)
	}
	if got, _ := chromedp.Run(fctx, chromedp.Location()); got != shared {
		t.Errorf("after logging in, at %s, want %s", got, shared)
	}
}
