//go:build bench

package web_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"mailvault/indexer"
	"mailvault/indexer/mailfile/corpustest"
	"mailvault/internal/benchtest"
	"mailvault/service"
	"mailvault/web"
)

// TestBenchWeb (bench tag: go test -tags bench -run TestBenchWeb -v ./web/)
// times the search API and the search page over the SpamAssassin corpus,
// imported as `mailvault import` does (service.Import): a fixed query set,
// each query 20 times, p50 and p95 of the time from request to the last
// byte of the answer over loopback; and a deep page (results 5,000 to
// 5,050).
func TestBenchWeb(t *testing.T) {
	root := corpustest.Maildir(t)
	data := filepath.Join(t.TempDir(), "data")
	ctx := context.Background()
	a, err := indexer.Open(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	sum, err := service.Import(ctx, a, service.ImportRequest{Account: "sa", Paths: []string{root}}, nil, nil)
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	if sum.FileErrors != 0 || sum.Imported() == 0 {
		t.Fatalf("import: %+v", sum)
	}
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	users, err := service.OpenUsers(data)
	if err != nil {
		t.Fatal(err)
	}
	defer users.Close()
	if err := users.Add(ctx, service.User{Name: "bench", Role: service.RoleAdmin}, "bench-password"); err != nil {
		t.Fatal(err)
	}
	token, _, err := users.NewToken(ctx, "bench", 0)
	if err != nil {
		t.Fatal(err)
	}
	s, err := web.New(web.Options{Archive: service.New(a, &service.Options{Users: users}), Users: users, DataDir: data})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	resp, err := browser.PostForm(srv.URL+"/login", url.Values{"name": {"bench"}, "password": {"bench-password"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	queries := []string{"razor", "subject:razor", "from:sourceforge", `"not to be"`, "mortgage rates", "linux kernel",
		"has:attachment", "filename:jpg", "before:2002-08-01", "after:2002-09-01 subject:re", "larger:50k", "smaller:2k spam",
		"-subject:re perl", "(from:jm OR from:tim) python", "bank*", "aliyorsunuz", "free money", "click here", "url:", "the"}
	get := func(c *http.Client, u string, auth bool) (time.Duration, int) {
		req, _ := http.NewRequest("GET", u, nil)
		if auth {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		begin := time.Now()
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return time.Since(begin), resp.StatusCode
	}
	measure := func(name string, c *http.Client, auth bool, path func(q string) string) {
		var ds []time.Duration
		for range 20 {
			for _, q := range queries {
				d, code := get(c, srv.URL+path(q), auth)
				if code != 200 && code != 422 {
					t.Fatalf("%s %q: %d", name, q, code)
				}
				ds = append(ds, d)
			}
		}
		slices.Sort(ds)
		p := func(f float64) string {
			return fmt.Sprintf("%.1f", float64(ds[int(f*float64(len(ds)-1))].Microseconds())/1000)
		}
		benchtest.Mdf(t, "| %s | %d | %s | %s | %s |", name, len(ds), p(0.5), p(0.95), p(1))
	}
	benchtest.Mdf(t, "")
	benchtest.Mdf(t, "| endpoint | requests | p50 ms | p95 ms | max ms |")
	benchtest.Mdf(t, "|---|---|---|---|---|")
	measure("GET /api/search (50 per page)", http.DefaultClient, true, func(q string) string { return "/api/search?q=" + url.QueryEscape(q) })
	measure("GET / (search page, 50 per page)", browser, false, func(q string) string { return "/?q=" + url.QueryEscape(q) })
	deepPage := func(name, cursor string) {
		var deep []time.Duration
		for range 20 {
			d, code := get(http.DefaultClient, srv.URL+"/api/search?limit=50&q="+url.QueryEscape("after:1990-01-01")+"&cursor="+url.QueryEscape(cursor), true)
			if code != 200 {
				t.Fatalf("deep page: %d", code)
			}
			deep = append(deep, d)
		}
		slices.Sort(deep)
		benchtest.Mdf(t, "| %s | %d | %.1f | %.1f | %.1f |", name, len(deep),
			float64(deep[len(deep)/2].Microseconds())/1000, float64(deep[int(0.95*float64(len(deep)-1))].Microseconds())/1000,
			float64(deep[len(deep)-1].Microseconds())/1000)
	}
	deepPage("GET /api/search, results 5,000–5,050 of 6,046 by date, cursor with an offset", offsetCursor(5000))
	// The cursor the API hands out: follow next_cursor to result 5,000.
	cursor := ""
	for range 100 {
		req, _ := http.NewRequest("GET", srv.URL+"/api/search?limit=50&q="+url.QueryEscape("after:1990-01-01")+"&cursor="+url.QueryEscape(cursor), nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var page struct {
			Next string `json:"next_cursor"`
		}
		json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		cursor = page.Next
	}
	deepPage("GET /api/search, results 5,000–5,050, the API's cursor (sort key)", cursor)
}

// offsetCursor is a cursor holding only an offset (the encoding is the
// web package's; the API documents cursors as opaque, the benchmark knows).
func offsetCursor(offset int) string {
	return base64RawURL(fmt.Sprintf(`{"o":%d}`, offset))
}

func base64RawURL(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
