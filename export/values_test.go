package export

import (
	"encoding/xml"
	"strings"
	"testing"
)

// FuzzLoadFileValues checks the fast paths of datValue and xesc against
// their definitions: datValue against the rule written out the slow way
// (line breaks to ®, delimiters to U+FFFD), xesc against encoding/xml.
func FuzzLoadFileValues(f *testing.F) {
	for _, s := range []string{"", "plain", "a\r\nb\rc\nd", "þ®\x14", "<&>\"'", "\t", "\xff\xfe", "\uFFFE", "naïve"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(s)
		want = strings.Map(func(r rune) rune {
			switch r {
			case datSep, datQuote, datNewline:
				return '\uFFFD'
			case '\n':
				return datNewline
			}
			return r
		}, want)
		if got := datValue(s); got != want {
			t.Errorf("datValue(%q) = %q, want %q", s, got, want)
		}
		var b strings.Builder
		xml.EscapeText(&b, []byte(s))
		if got := xesc(s); got != b.String() {
			t.Errorf("xesc(%q) = %q, want %q", s, got, b.String())
		}
	})
}
