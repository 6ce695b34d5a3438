package web

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"mailvault/service"
)

// The hostile-client suite: each test replays an attack a review found (or
// a sibling of it) against a real server over a real archive, and checks
// that it gets a clear 4xx, no data, and leaves nothing unbounded behind.

// clientFrom returns an HTTP client whose connections come from the
// loopback address ip (127.0.0.0/8 is all loopback on Linux), with a
// cookie jar.
func clientFrom(ip string) *http.Client {
	jar, _ := cookiejar.New(nil)
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Jar: jar, Transport: &http.Transport{DialContext: d.DialContext},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func postLogin(t *testing.T, c *http.Client, base, name, password string, header ...string) *http.Response {
	t.Helper()
	body := url.Values{"name": {name}, "password": {password}, "next": {"/"}}.Encode()
	req, _ := http.NewRequest("POST", base+"/login", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func auditCount(t *testing.T, f *apiFixture) int {
	t.Helper()
	trail, err := f.users.AuditTrail(context.Background(), 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	return len(trail)
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// TestHostileLoginFlood: 60 logins with 8 MB names (the finding: 35 → 528 MB
// RSS, users.db 557 MB), then thousands of distinct names from one address
// and from many. Memory, the database and the audit trail stay bounded.
func TestHostileLoginFlood(t *testing.T) {
	f := newAPIFixture(t)
	c := clientFrom("127.0.0.1")
	dbBefore := fileSize(t, filepath.Join(f.archive.Dir(), service.UsersFile+"-wal")) + fileSize(t, filepath.Join(f.archive.Dir(), service.UsersFile))
	heapBefore := heapInUse()
	rowsBefore := auditCount(t, f)
	big := strings.Repeat("A", 8<<20)
	for range 60 {
		if resp := postLogin(t, c, f.srv.URL, big, "x"); resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("8 MB name: %d, want 413", resp.StatusCode)
		}
	}
	// Just over the name limit but inside the body limit: refused at once.
	for range 200 {
		if resp := postLogin(t, c, f.srv.URL, strings.Repeat("B", 4000), "x"); resp.StatusCode != 401 {
			t.Fatalf("4 KB name: %d, want 401", resp.StatusCode)
		}
	}
	// Distinct plausible names from one address: after the address's
	// budget of password checks, refused without one.
	codes := map[int]int{}
	begin := time.Now()
	for i := range 300 {
		codes[postLogin(t, c, f.srv.URL, fmt.Sprintf("user%d", i), "guess").StatusCode]++
	}
	if codes[401] > service.LoginBurst+2 || codes[429] < 250 {
		t.Errorf("300 names from one address: %v; want at most %d checked (401), the rest 429", codes, service.LoginBurst+2)
	}
	if d := time.Since(begin); d > 10*time.Second {
		t.Errorf("300 refused logins took %v: they cost bcrypt work", d)
	}
	// And from 40 addresses: each gets its budget, the tables stay bounded.
	for i := range 40 {
		postLogin(t, clientFrom(fmt.Sprintf("127.0.%d.%d", 1+i/250, 1+i%250)), f.srv.URL, fmt.Sprintf("n%d", i), "guess")
	}
	if n := f.srvGuard().Size(); n > 3*service.GuardMax {
		t.Errorf("login guard holds %d entries", n)
	}
	if grown := int64(heapInUse()) - int64(heapBefore); grown > 64<<20 {
		t.Errorf("heap grew by %d MB", grown>>20)
	}
	dbAfter := fileSize(t, filepath.Join(f.archive.Dir(), service.UsersFile+"-wal")) + fileSize(t, filepath.Join(f.archive.Dir(), service.UsersFile))
	if dbAfter-dbBefore > 4<<20 {
		t.Errorf("users.db grew by %d bytes", dbAfter-dbBefore)
	}
	if rows := auditCount(t, f) - rowsBefore; rows > service.AuditBurst+40+5 {
		t.Errorf("%d audit rows for the flood; want at most %d from one address (plus one per other address)", rows, service.AuditBurst)
	}
}

// srvGuard is the fixture server's login guard.
func (f *apiFixture) srvGuard() *service.LoginGuard { return f.server.guard }

func fileSize(t *testing.T, path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

// TestHostileLockout: failures lock a name from one address only; the right
// password from another address still logs in (nobody can lock an admin
// out from elsewhere), and X-Forwarded-For from an untrusted peer is
// ignored: it neither changes the recorded address nor escapes the lock.
func TestHostileLockout(t *testing.T) {
	f := newAPIFixture(t)
	attacker := clientFrom("127.0.0.1")
	for i := range service.LoginFailures + 2 {
		resp := postLogin(t, attacker, f.srv.URL, "root", "wrong", "X-Forwarded-For", fmt.Sprintf("10.0.0.%d", i))
		if i >= service.LoginFailures && resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("failure %d with a rotating X-Forwarded-For: %d, want 429", i+1, resp.StatusCode)
		}
	}
	if resp := postLogin(t, attacker, f.srv.URL, "root", "correct horse"); resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("right password from the locked address: %d (Retry-After %q), want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	admin := clientFrom("127.0.0.2")
	if resp := postLogin(t, admin, f.srv.URL, "root", "correct horse"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("right password from another address: %d, want 303", resp.StatusCode)
	}
	trail, _ := f.users.AuditTrail(context.Background(), 100)
	for _, e := range trail {
		if strings.HasPrefix(e.Remote, "10.") {
			t.Errorf("audit trail records the forged address %s", e.Remote)
		}
	}
}

// TestHostileSharedGuard: a guard passed in Options is the one the web
// uses, so a lockout earned at another front door (here: failures recorded
// straight into the guard, as the IMAP server would) holds at the web's
// login too, and the web's failures are seen by the other door.
func TestHostileSharedGuard(t *testing.T) {
	g := service.NewLoginGuard()
	f := newAPIFixtureWith(t, func(o *Options) { o.Guard = g })
	now := time.Now()
	for range service.LoginFailures {
		g.Failed("127.0.0.1", "root", now)
	}
	if resp := postLogin(t, clientFrom("127.0.0.1"), f.srv.URL, "root", "correct horse"); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("right password for a name locked through the shared guard: %d, want 429", resp.StatusCode)
	}
	c := clientFrom("127.0.0.2")
	for range service.LoginFailures {
		postLogin(t, c, f.srv.URL, "ann", "wrong")
	}
	if ok, why, _ := g.Allow("127.0.0.2", "ann", time.Now()); ok {
		t.Errorf("after %d failed web logins the shared guard allows the pair (%q), want it locked", service.LoginFailures, why)
	}
}

// TestHostileSessions: a session ends at logout and at a password change,
// and its cookie is HttpOnly and SameSite=Strict.
func TestHostileSessions(t *testing.T) {
	f := newAPIFixture(t)
	c := clientFrom("127.0.0.3")
	resp := postLogin(t, c, f.srv.URL, "ann", "correct horse")
	if resp.StatusCode != 303 {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	var cookie *http.Cookie
	for _, k := range resp.Cookies() {
		if k.Name == sessionCookie {
			cookie = k
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict", cookie)
	}
	page := func(cl *http.Client) int {
		resp, err := cl.Get(f.srv.URL + "/status")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// A copy of the cookie, as a thief would keep it.
	thief := clientFrom("127.0.0.4")
	u, _ := url.Parse(f.srv.URL)
	thief.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: cookie.Value}})
	if code := page(thief); code != 200 {
		t.Fatalf("stolen cookie before logout: %d", code)
	}
	req, _ := http.NewRequest("POST", f.srv.URL+"/logout", nil)
	if resp, err := c.Do(req); err != nil || resp.StatusCode != 303 {
		t.Fatalf("logout: %v %v", resp, err)
	}
	if code := page(thief); code != http.StatusSeeOther {
		t.Errorf("the cookie still works after logout: %d", code)
	}
	// A password change ends the other sessions.
	c2 := clientFrom("127.0.0.5")
	postLogin(t, c2, f.srv.URL, "ann", "correct horse")
	if code := page(c2); code != 200 {
		t.Fatalf("second session: %d", code)
	}
	if err := f.users.SetPassword(context.Background(), "ann", "battery staple"); err != nil {
		t.Fatal(err)
	}
	if code := page(c2); code != http.StatusSeeOther {
		t.Errorf("session after a password change: %d", code)
	}
	if code, _ := f.get(t, f.ann, "/api/whoami"); code != 401 {
		t.Errorf("token after a password change: %d", code)
	}
}

// TestHostileAudit: every way to read a message is audited, probing with
// foreign or guessed ids is recorded, bad-token floods are bounded, and an
// audit trail that cannot be written serves nothing (fail closed).
func TestHostileAudit(t *testing.T) {
	f := newAPIFixture(t)
	c := clientFrom("127.0.0.6")
	postLogin(t, c, f.srv.URL, "ann", "correct horse")
	get := func(path string) int {
		resp, err := c.Get(f.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get("/message/" + f.shared + "/html"); code != 200 {
		t.Fatalf("html view: %d", code)
	}
	for i := range 30 {
		get(fmt.Sprintf("/message/%064x", i))
	}
	get("/message/" + f.onlyB)
	trail, _ := f.users.AuditTrail(context.Background(), 1000)
	reads, denied := 0, 0
	for _, e := range trail {
		if e.User == "ann" && e.Action == "read" && e.Detail == f.shared {
			reads++
		}
		if e.User == "ann" && e.Action == "denied" {
			denied++
		}
	}
	if reads != 1 || denied != 31 {
		t.Errorf("audit: %d reads of the html view (want 1), %d denials (want 31)", reads, denied)
	}
	before := auditCount(t, f)
	for range 300 {
		f.get(t, "mvt_"+strings.Repeat("0", 64), "/api/whoami")
	}
	if rows := auditCount(t, f) - before; rows > service.AuditBurst+1 {
		t.Errorf("300 bad tokens added %d audit rows, want at most %d", rows, service.AuditBurst+1)
	}
	// The trail breaks: reads are refused, not served unrecorded.
	f.users.Close()
	code, body := f.get(t, f.ann, "/api/messages/"+f.shared+"/raw")
	if code == 200 || strings.Contains(string(body), "budget") {
		t.Errorf("raw download with a broken audit trail: %d %q", code, body)
	}
}

// TestHostileRequests: odd and oversized requests get a 4xx and never a
// panic, a stack trace or data; mail is never cached or sniffed; metrics
// and directory listings are not served on the web listener; the Host
// header is checked against DNS rebinding.
func TestHostileRequests(t *testing.T) {
	f := newAPIFixtureWith(t, func(o *Options) { o.Loopback = true })
	for _, tt := range []struct {
		path string
		code int
	}{
		{"/api/search?q=budget&offset=99999999999999999999", 400},
		{"/api/search?q=budget&offset=100000000", 422},
		{"/api/search?q=budget&sort=relevance&offset=100000000", 422},
		{"/api/search?q=budget&cursor=" + encodeCursor(pagePos{Offset: 1 << 40}), 422},
		{"/api/search?q=budget&after=x", 400},
		{"/api/search?q=" + strings.Repeat("a", 20000), 422},
		{"/api/search?q=%22unterminated", 422},
		{"/metrics", 404},
		{"/static/", 404},
		{"/static/../templates.go", 404},
	} {
		code, body := f.get(t, f.admin, tt.path)
		if code != tt.code || strings.Contains(string(body), "goroutine") || strings.Contains(string(body), "panic") {
			t.Errorf("%.80s: %d %.200s; want %d", tt.path, code, body, tt.code)
		}
	}
	// Mail is never cached, raw mail never sniffed.
	req, _ := http.NewRequest("GET", f.srv.URL+"/api/messages/"+f.shared+"/raw", nil)
	req.Header.Set("Authorization", "Bearer "+f.admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("raw download headers: %v", resp.Header)
	}
	c := clientFrom("127.0.0.7")
	postLogin(t, c, f.srv.URL, "root", "correct horse")
	for _, p := range []string{"/", "/message/" + f.shared, "/message/" + f.shared + "/raw", "/message/" + f.shared + "/html", "/status"} {
		resp, err := c.Get(f.srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: Cache-Control %q, want no-store", p, resp.Header.Get("Cache-Control"))
		}
	}
	// DNS rebinding: a loopback-bound server answers loopback names only.
	for host, want := range map[string]int{"evil.example": 421, "evil.example:80": 421, "localhost:8080": 200, "127.0.0.1": 200, "[::1]:8080": 200} {
		req, _ := http.NewRequest("GET", f.srv.URL+"/healthz", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Host %s: %d, want %d", host, resp.StatusCode, want)
		}
	}
	// A body sent one byte at a time cannot hold the login form open: it
	// is bounded in size, and the server's read timeout bounds the time
	// (web.Serve).
	big := bytes.Repeat([]byte("x"), 2<<20)
	resp, err = http.Post(f.srv.URL+"/api/jobs", "application/json", bytes.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("2 MB body: %d, want 413", resp.StatusCode)
	}
}

// TestSafeNext: a redirect after login stays on this site however the
// target is spelled.
func TestSafeNext(t *testing.T) {
	for next, want := range map[string]string{
		"/status": "/status", "/?q=a%20b": "/?q=a%20b", "/message/abc": "/message/abc",
		"//evil.example": "/", "/\\evil.example": "/", "/%09/evil.example": "/", "/\t/evil.example": "/",
		"https://evil.example/": "/", "javascript:alert(1)": "/", "/%2F/evil.example": "/", "": "/",
		"/\x00": "/", strings.Repeat("/a", 2000): "/",
	} {
		if got := safeNext(next); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", next, got, want)
		}
	}
}

// TestSecureCookieOverTLS: served over TLS, the session cookie is Secure.
func TestSecureCookieOverTLS(t *testing.T) {
	f := newAPIFixture(t)
	srv := httptest.NewTLSServer(f.server.Handler())
	defer srv.Close()
	c := srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp := postLogin(t, c, srv.URL, "ann", "correct horse")
	if resp.StatusCode != 303 {
		t.Fatalf("login over TLS: %d", resp.StatusCode)
	}
	for _, k := range resp.Cookies() {
		if k.Name == sessionCookie && !k.Secure {
			t.Errorf("session cookie over TLS is not Secure: %+v", k)
		}
	}
}
