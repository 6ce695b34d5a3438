package web

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzSafeNext: whatever a login form says, the redirect stays on this
// site: a path that a browser cannot read as another host.
func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/", "/status?q=x", "//evil", "/\\evil", "/%09/evil", "/%2F/evil", "https://evil/", "/\t/x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, next string) {
		got := safeNext(next)
		if got != "/" && got != next {
			t.Fatalf("safeNext(%q) = %q: neither the input nor /", next, got)
		}
		u, err := url.Parse(got)
		if err != nil || u.Host != "" || u.Scheme != "" || !strings.HasPrefix(u.Path, "/") || strings.HasPrefix(u.Path, "//") {
			t.Fatalf("safeNext(%q) = %q leaves the site (%+v, %v)", next, got, u, err)
		}
		// Browsers drop tabs and newlines and read \\ as / in URLs.
		cleaned := strings.NewReplacer("\t", "", "\n", "", "\r", "", "\\", "/").Replace(got)
		if strings.HasPrefix(cleaned, "//") {
			t.Fatalf("safeNext(%q) = %q reads as %q in a browser", next, got, cleaned)
		}
	})
}

// FuzzDecodeCursor: any cursor decodes to a valid page position or a clear
// error, never a panic or a negative offset.
func FuzzDecodeCursor(f *testing.F) {
	f.Add(encodeCursor(pagePos{Offset: 50, After: []string{"1700000000", "abc"}}))
	f.Add("garbage")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := decodeCursor(s)
		if err == nil && (p.Offset < 0 || p.After != nil && len(p.After) != 2) {
			t.Fatalf("decodeCursor(%q) = %+v", s, p)
		}
	})
}
