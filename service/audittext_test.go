package service

import (
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestAuditTextIsOneHonestBoundedLine(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"plain", "plain"},
		{"a\nb\rc\x00d", "a b c d"},
		{"x\u0085y\u009bz", "x y z"},                   // C1 controls: NEL, CSI
		{"report\u202Efdp.exe", "report\uFFFDfdp.exe"}, // a right-to-left override
		{"\u2066iso\u2069", "\uFFFDiso\uFFFD"},
		{"bad \xff utf8", "bad \uFFFD utf8"},
	} {
		if got := auditText(c.in); got != c.want {
			t.Errorf("auditText(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	long := strings.Repeat("é", 3000) // 6000 bytes, 2-byte runes
	got := auditText(long)
	sum := sha256.Sum256([]byte(long))
	if !utf8.ValidString(got) || len(got) > maxAuditText+100 || !strings.HasSuffix(got, fmt.Sprintf("…[6000 bytes, sha256 %x]", sum)) {
		t.Errorf("a long text: %d bytes, valid %v, ends %q", len(got), utf8.ValidString(got), got[len(got)-90:])
	}
}

// A long list of mailboxes cannot push a search's query out of its audit
// row.
func TestSearchAuditKeepsTheQuery(t *testing.T) {
	var mbs []string
	for i := range 300 {
		mbs = append(mbs, fmt.Sprintf("%s%d", strings.Repeat("x", 20), i))
	}
	detail := auditText(searchScope([]string{"alice"}, mbs) + ": human: " + `subject:"msg 7"`)
	if !strings.Contains(detail, `subject:"msg 7"`) || len(detail) > maxAuditText {
		t.Errorf("the audit row of a search with 300 mailboxes: %d bytes, has the query: %v", len(detail), strings.Contains(detail, "msg 7"))
	}
}

// CSVCell is reversible: strip one leading apostrophe from a cell that has
// one and the stored text comes back, whatever it was.
func TestCSVCellRoundTrip(t *testing.T) {
	for _, s := range []string{"", "plain", "=X", "'=X", "''", "'", "+1", "-", "@a", "\tx", "\rx", "a'b"} {
		c := CSVCell(s)
		if c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) {
			t.Errorf("CSVCell(%q) = %q starts with a formula character", s, c)
		}
		back := c
		if strings.HasPrefix(back, "'") {
			back = back[1:]
		}
		if back != s {
			t.Errorf("CSVCell(%q) = %q: stripping one apostrophe gives %q", s, c, back)
		}
	}
}
