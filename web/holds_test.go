package web

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"mailvault/service"
)

// Holds over the API and the page: the service's role rule answers (403
// for who may not), a cross-site form post is refused before it reaches
// the service, and a user's page has no link to holds.
func TestHoldsAPIAndPage(t *testing.T) {
	f := newAPIFixture(t)
	ctx := context.Background()
	if err := f.users.Add(ctx, service.User{Name: "lena", Role: service.RoleLegal}, "correct horse"); err != nil {
		t.Fatal(err)
	}
	legalTok, _, err := f.users.NewToken(ctx, "lena", 0)
	if err != nil {
		t.Fatal(err)
	}
	post := func(token, path string, body any, header map[string]string) (int, []byte) {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", f.srv.URL+path, bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, out
	}
	hold := service.HoldRequest{Name: "matter-a", Custodians: []string{"a"}}
	for _, tt := range []struct {
		who  string
		tok  string
		want int
	}{{"user", f.ann, 403}, {"auditor", f.auditor, 403}, {"legal", legalTok, 201}, {"admin", f.admin, 422}} {
		if code, body := post(tt.tok, "/api/holds", hold, nil); code != tt.want {
			t.Errorf("POST /api/holds as %s = %d %s, want %d", tt.who, code, body, tt.want)
		}
	}
	if code, body := post(legalTok, "/api/holds", map[string]any{"name": "q", "custodians": []string{"a"}, "query": "(x"}, nil); code != 422 ||
		!strings.Contains(string(body), "hold query") {
		t.Errorf("POST /api/holds with a bad query = %d %s, want 422 naming the query", code, body)
	}
	if code, _ := post(legalTok, "/api/holds", service.HoldRequest{Name: "cross", Custodians: []string{"a"}},
		map[string]string{"Sec-Fetch-Site": "cross-site"}); code != 403 {
		t.Errorf("cross-site POST /api/holds = %d, want 403", code)
	}
	for _, tt := range []struct {
		who, tok, path string
		want           int
	}{
		{"user", f.ann, "/api/holds", 403}, {"user", f.ann, "/api/holds/matter-a", 403},
		{"auditor", f.auditor, "/api/holds", 200}, {"auditor", f.auditor, "/api/holds/matter-a", 200},
		{"legal", legalTok, "/api/holds/nosuch", 404}, {"legal", legalTok, "/api/holds/cross", 404},
	} {
		if code, body := f.get(t, tt.tok, tt.path); code != tt.want {
			t.Errorf("GET %s as %s = %d %s, want %d", tt.path, tt.who, code, body, tt.want)
		}
	}
	code, body := f.get(t, f.auditor, "/api/holds/matter-a")
	var h service.HoldInfo
	if json.Unmarshal(body, &h); code != 200 || h.Counts == nil || h.Counts.Messages != 1 || !h.Active {
		t.Errorf("GET /api/holds/matter-a = %d %s, want account a's one message", code, body)
	}
	if code, _ := post(f.auditor, "/api/holds/matter-a/release", map[string]string{"reason": "x"}, nil); code != 403 {
		t.Errorf("release as auditor = %d, want 403", code)
	}
	if code, _ := post(legalTok, "/api/holds/matter-a/release", map[string]string{}, nil); code != 422 {
		t.Errorf("release without a reason = %d, want 422", code)
	}

	// The page: legal sees the form and releases with a reason; a
	// cross-site form post is refused; a user gets no link and a 403.
	lc, _ := f.login(t, "lena", "correct horse")
	code, page, _ := getPage(t, lc, f.srv.URL+"/holds")
	if code != 200 || !strings.Contains(page, `id="create-hold"`) || !strings.Contains(page, "matter-a") || !strings.Contains(page, `href="/holds"`) {
		t.Errorf("/holds as legal = %d, want the list, the form and the nav link:\n%s", code, page)
	}
	resp, err := lc.PostForm(f.srv.URL+"/holds", url.Values{"name": {"page-made"}, "custodians": {"a, b"}, "query": {"hello"}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "hold page-made created") {
		t.Errorf("create from the page = %d:\n%s", resp.StatusCode, b)
	}
	req, _ := http.NewRequest("POST", f.srv.URL+"/holds/page-made/release", strings.NewReader("reason=evil"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if resp, err := lc.Do(req); err != nil || resp.StatusCode != 403 {
		t.Errorf("cross-site release form = %v %v, want 403", resp.StatusCode, err)
	} else {
		resp.Body.Close()
	}
	resp, err = lc.PostForm(f.srv.URL+"/holds/page-made/release", url.Values{"reason": {"done"}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "hold page-made released") || !strings.Contains(string(b), "done") {
		t.Errorf("release from the page = %d:\n%s", resp.StatusCode, b)
	}

	if err := f.users.Add(ctx, service.User{Name: "ursula", Role: service.RoleUser, Accounts: []string{"a"}}, "correct horse"); err != nil {
		t.Fatal(err)
	}
	uc, _ := f.login(t, "ursula", "correct horse")
	if code, page, _ := getPage(t, uc, f.srv.URL+"/status"); code != 200 || strings.Contains(page, `href="/holds"`) {
		t.Errorf("/status as a user = %d, want no link to holds", code)
	}
	if code, page, _ := getPage(t, uc, f.srv.URL+"/holds"); code != 403 || strings.Contains(page, "matter-a") {
		t.Errorf("/holds as a user = %d, want 403 naming no hold", code)
	}
}
