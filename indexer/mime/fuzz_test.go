package mime

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// FuzzParse checks the invariants of Parse on arbitrary input: no panic
// (Parse recovers, so a recovered panic shows up as an "internal error"
// problem), a non-nil result, valid UTF-8 everywhere, limits respected, and
// bounded time.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.eml")
	for _, name := range files {
		raw, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add(nested(5))
	f.Add([]byte("Content-Type: message/rfc822\n\nContent-Type: multipart/mixed; boundary=x\n\n--x\n\nhi\n--x--\n"))
	f.Add([]byte("Subject: =?utf-8?q?=E2=9C?= =?utf-8?b?kw==?=\n\n"))

	tight := &Limits{MaxDepth: 3, MaxParts: 10, MaxHeaderBytes: 512, MaxDecodedBytes: 1024, MaxTextBytes: 256}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if len(raw) > 64<<10 {
			t.Skip()
		}
		for _, lim := range []*Limits{nil, tight} {
			start := time.Now()
			m := Parse(raw, lim)
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("Parse(%d bytes) took %v", len(raw), d)
			}
			checkInvariants(t, string(raw), m)
			l := lim.withDefaults()
			if len(m.Text) > l.MaxTextBytes {
				t.Errorf("Parse(%q): len(Text) = %d > MaxTextBytes %d", raw, len(m.Text), l.MaxTextBytes)
			}
			if m.Parts > l.MaxParts {
				t.Errorf("Parse(%q).Parts = %d > MaxParts %d", raw, m.Parts, l.MaxParts)
			}
			if len(m.Problems) > maxProblems+1 {
				t.Errorf("Parse(%q): %d problems", raw, len(m.Problems))
			}
		}
		// Limits.Fields decodes a subset of the header: the same fields
		// decoded the same way as by a full parse, and the envelope fields
		// they fill equal.
		full := Parse(raw, nil)
		fromDate := func(name string) bool { return strings.EqualFold(name, "From") || strings.EqualFold(name, "Date") }
		some := Parse(raw, &Limits{Fields: fromDate})
		var want []Header
		for _, h := range full.Headers {
			if fromDate(h.Key) {
				want = append(want, h)
			}
		}
		if !slices.Equal(some.Headers, want) || !slices.Equal(some.From, full.From) || !some.Date.Equal(full.Date) {
			t.Errorf("Parse(%q) with Fields From, Date: headers %q from %v date %v; full parse: %q %v %v",
				raw, some.Headers, some.From, some.Date, want, full.From, full.Date)
		}
		if some.Subject != "" || len(some.To) != 0 || some.MessageID != "" {
			t.Errorf("Parse(%q) with Fields From, Date filled other fields: %q %v %q", raw, some.Subject, some.To, some.MessageID)
		}
	})
}
