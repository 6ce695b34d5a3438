package web

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"mailvault/indexer"
	"mailvault/indexer/catalog"
	"mailvault/service"
)

// apiFixture is a real archive with two accounts, a user store with one
// user of each role, and the API served over HTTP.
type apiFixture struct {
	srv                 *httptest.Server
	server              *Server
	users               *service.Users
	archive             *indexer.Archive
	svc                 *service.Service
	admin, auditor, ann string // tokens; ann may see account "a" only
	shared, onlyB       string // sha256 of a message in both accounts, of one only in "b"
}

func newAPIFixture(t *testing.T) *apiFixture { t.Helper(); return newAPIFixtureWith(t, nil) }

// newAPIFixtureWith is newAPIFixture with the server's options changed by
// opt.
func newAPIFixtureWith(t *testing.T, opt func(*Options)) *apiFixture {
	t.Helper()
	dir := t.TempDir()
	a, err := indexer.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	ctx := context.Background()
	for _, acct := range []string{"a", "b"} {
		if _, err := a.EnsureMailbox(ctx, acct, "INBOX", catalog.SourceIMAP, 5); err != nil {
			t.Fatal(err)
		}
	}
	msg := func(subject, body string) []byte {
		return fmt.Appendf(nil, "From: Zed <zed@example.org>\r\nSubject: %s\r\nDate: Mon, 4 Mar 2024 10:00:00 +0000\r\n\r\n%s\r\n", subject, body)
	}
	shared, onlyB := msg("quarterly figures", "shared budget"), msg("secret merger", "budget for b only")
	_, err = a.Ingest(ctx, []indexer.Item{
		{Account: "a", Mailbox: "INBOX", UIDValidity: 5, UID: 1, Raw: shared},
		{Account: "b", Mailbox: "INBOX", UIDValidity: 5, UID: 1, Raw: shared},
		{Account: "b", Mailbox: "INBOX", UIDValidity: 5, UID: 2, Raw: onlyB, Flags: []string{`\Seen`}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	users, err := service.OpenUsers(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { users.Close() })
	svc := service.New(a, &service.Options{Users: users})
	f := &apiFixture{users: users, archive: a, svc: svc, shared: sha(shared), onlyB: sha(onlyB)}
	for _, u := range []service.User{{Name: "root", Role: service.RoleAdmin}, {Name: "aud", Role: service.RoleAuditor}, {Name: "ann", Role: service.RoleUser, Accounts: []string{"a"}}} {
		if err := users.Add(ctx, u, "correct horse"); err != nil {
			t.Fatal(err)
		}
	}
	for name, tok := range map[string]*string{"root": &f.admin, "aud": &f.auditor, "ann": &f.ann} {
		if *tok, _, err = users.NewToken(ctx, name, 0); err != nil {
			t.Fatal(err)
		}
	}
	o := Options{Archive: svc, Users: users, DataDir: dir}
	if opt != nil {
		opt(&o)
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	f.server = s
	f.srv = httptest.NewServer(s.Handler())
	t.Cleanup(f.srv.Close)
	return f
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// get requests path with token and returns the status and body.
func (f *apiFixture) get(t *testing.T, token, path string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", f.srv.URL+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (f *apiFixture) search(t *testing.T, token, query string) (int, searchAnswer) {
	t.Helper()
	code, body := f.get(t, token, "/api/search?"+query)
	var ans searchAnswer
	if code == http.StatusOK {
		if err := json.Unmarshal(body, &ans); err != nil {
			t.Fatalf("search %s: %v: %s", query, err, body)
		}
	}
	return code, ans
}

// places lists "account/mailbox/uid" of every occurrence in hits.
func places(hits []apiHit) []string {
	var out []string
	for _, h := range hits {
		for _, o := range h.Occurrences {
			out = append(out, fmt.Sprintf("%s/%s/%d", o.Account, o.Mailbox, o.UID))
		}
	}
	slices.Sort(out)
	return out
}

// TestAPIRoleIsolation: a user of account "a" sees nothing of account "b"
// through the API: not in results, not in occurrences of a message both
// hold, not by message id, not by raw download, not in status; what is
// outside their accounts answers exactly like what does not exist.
func TestAPIRoleIsolation(t *testing.T) {
	f := newAPIFixture(t)
	for _, tt := range []struct {
		who, token, query string
		want              []string
	}{
		{"admin", f.admin, "q=budget", []string{"a/INBOX/1", "b/INBOX/1", "b/INBOX/2"}},
		{"auditor", f.auditor, "q=budget", []string{"a/INBOX/1", "b/INBOX/1", "b/INBOX/2"}},
		{"user of a", f.ann, "q=budget", []string{"a/INBOX/1"}},
		{"user of a", f.ann, "q=merger", nil},
		{"user of a, IMAP", f.ann, "syntax=imap&q=" + urlq(`BODY "budget"`), []string{"a/INBOX/1"}},
		{"admin, IMAP", f.admin, "syntax=imap&q=SEEN", []string{"b/INBOX/2"}},
		{"admin, account b", f.admin, "q=budget&account=b", []string{"b/INBOX/1", "b/INBOX/2"}},
	} {
		code, ans := f.search(t, tt.token, tt.query)
		if got := places(ans.Hits); code != http.StatusOK || !slices.Equal(got, tt.want) {
			t.Errorf("%s: search %s: %d, %v; want %v", tt.who, tt.query, code, got, tt.want)
		}
	}
	notFound := func(what, path string) {
		t.Helper()
		code, body := f.get(t, f.ann, path)
		var e apiError
		if code != http.StatusNotFound || json.Unmarshal(body, &e) != nil || !strings.HasPrefix(e.Error, "no such") {
			t.Errorf("user of a, %s (%s): %d %s; want 404 no such ...", what, path, code, body)
		}
	}
	notFound("b's message", "/api/messages/"+f.onlyB)
	notFound("b's raw message", "/api/messages/"+f.onlyB+"/raw")
	notFound("an unknown message", "/api/messages/"+strings.Repeat("0", 64))
	notFound("a malformed id", "/api/messages/xyz")
	notFound("account b", "/api/search?q=budget&account=b")

	code, body := f.get(t, f.ann, "/api/messages/"+f.shared)
	var h apiHit
	if code != http.StatusOK || json.Unmarshal(body, &h) != nil || len(h.Occurrences) != 1 || h.Occurrences[0].Account != "a" {
		t.Errorf("user of a, the shared message: %d %s", code, body)
	}
	code, raw := f.get(t, f.ann, "/api/messages/"+f.shared+"/raw")
	if code != http.StatusOK || sha(raw) != f.shared {
		t.Errorf("user of a, raw shared message: %d, sha256 %s, want %s", code, sha(raw), f.shared)
	}
	code, body = f.get(t, f.ann, "/api/status")
	if code != http.StatusOK || strings.Contains(string(body), `"b"`) || !strings.Contains(string(body), `"a"`) {
		t.Errorf("user of a, status: %d %s", code, body)
	}
	// The audit trail says who searched, read and downloaded what.
	trail, err := f.users.AuditTrail(context.Background(), 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range trail {
		if e.User == "ann" {
			got = append(got, e.Action+" "+e.Detail)
		}
	}
	for _, want := range []string{"search in accounts a: human: budget", "search in accounts a: imap: BODY \"budget\"", "read " + f.shared, "download " + f.shared} {
		if !slices.Contains(got, want) {
			t.Errorf("audit trail of ann %q lacks %q", got, want)
		}
	}
}

func urlq(s string) string {
	return strings.NewReplacer(" ", "%20", `"`, "%22").Replace(s)
}

// TestAPIErrors: authentication, bad queries, paging and ops endpoints
// answer with the right status and a JSON error, never a stack trace.
func TestAPIErrors(t *testing.T) {
	f := newAPIFixture(t)
	for _, tt := range []struct {
		token, path string
		code        int
		want        string
	}{
		{"", "/api/search?q=x", 401, "authentication required"},
		{"mvt_nope", "/api/search?q=x", 401, "unknown or revoked token"},
		{f.admin, "/api/search?q=from:", 422, `from: needs a value (at offset 5)`},
		{f.admin, "/api/search?syntax=imap&q=OR%20FROM%20x", 422, "OR needs two search keys (at offset 9)"},
		{f.admin, "/api/search?syntax=sql&q=x", 400, `want human or imap`},
		{f.admin, "/api/search?q=x&limit=0", 400, "limit: want a number from 1 to 1000"},
		{f.admin, "/api/search?q=x&cursor=garbage", 400, "bad cursor"},
		{f.admin, "/api/nothing", 404, "no such page or endpoint"},
		{"", "/healthz", 200, "ok"},
		{"", "/readyz", 200, "ready"},
	} {
		code, body := f.get(t, tt.token, tt.path)
		if code != tt.code || !strings.Contains(string(body), tt.want) {
			t.Errorf("%s: %d %s; want %d with %q", tt.path, code, body, tt.code, tt.want)
		}
	}
	// Cursor paging walks every hit once.
	var seen []string
	cursor := ""
	for range 5 {
		code, ans := f.search(t, f.admin, "q=budget&limit=1&cursor="+cursor)
		if code != 200 {
			t.Fatalf("page: %d", code)
		}
		for _, h := range ans.Hits {
			seen = append(seen, h.SHA256)
		}
		if cursor = ans.NextCursor; cursor == "" {
			break
		}
	}
	if len(seen) != 2 || seen[0] == seen[1] {
		t.Errorf("paging one by one gave %v, want the 2 matching messages once each", seen)
	}
	// A cross-site state-changing request is refused.
	req, _ := http.NewRequest("POST", f.srv.URL+"/api/search", nil)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	req.Header.Set("Authorization", "Bearer "+f.admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site POST: %d, want 403", resp.StatusCode)
	}
}

// TestRequestID: every answer carries an X-Request-ID, and an error names
// it in its body, so that a report can be found in the log.
func TestRequestID(t *testing.T) {
	f := newAPIFixture(t)
	seen := map[string]bool{}
	for range 3 {
		req, _ := http.NewRequest("GET", f.srv.URL+"/api/messages/"+strings.Repeat("0", 64), nil)
		req.Header.Set("Authorization", "Bearer "+f.admin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e apiError
		json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		id := resp.Header.Get("X-Request-ID")
		if resp.StatusCode != 404 || len(id) != 16 || e.RequestID != id || seen[id] {
			t.Errorf("404: id %q, body id %q (seen %v)", id, e.RequestID, seen[id])
		}
		seen[id] = true
	}
}
