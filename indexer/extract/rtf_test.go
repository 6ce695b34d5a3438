package extract

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestRTFTokenizer(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{`{\rtf1\ansi Hello\par World}`, "Hello\nWorld\n"},
		{`{\rtf1{\fonttbl{\f0 Times;}}{\colortbl;\red0\green0\blue0;}{\stylesheet{\s0 Normal;}}{\info{\title Secret title}}Body}`, "Body\n"},
		{`{\rtf1{\*\generator Writer;}{\*\unknowndest junk}Kept}`, "Kept\n"},
		{`{\rtf1 caf\'e9 na\'efve}`, "café naïve\n"},                                             // Windows-1252 by default
		{`{\rtf1\ansi\ansicpg1251 \'cf\'f0\'e8\'e2\'e5\'f2}`, "Привет\n"},                        // Cyrillic code page
		{`{\rtf1\uc1 \u26085\'3f\u26412?\u-3\'3f}`, "日本\ufffd\n"},                                // \uN, fallback skipped; negative N
		{`{\rtf1\uc0 \u26085\u26412}`, "日本\n"},                                                   // no fallback
		{`{\rtf1\uc2 \u26085\'3f\'3fX}`, "日X\n"},                                                 // two fallback bytes
		{`{\rtf1 a\tab b\line c\~d\_e}`, "a b\nc d-e\n"},                                         // symbols
		{`{\rtf1 \{braces\} and \\back}`, "{braces} and \\back\n"},                               // escapes
		{`{\rtf1 {\field{\*\fldinst HYPERLINK "http://x"}{\fldrslt Link text}}}`, "Link text\n"}, // field: the result only
		{`{\rtf1 {\pict\pngblip 89504e47}after}`, "after\n"},                                     // pictures skipped
		{`{\rtf1 pre\bin4 {}\}post}`, "prepost\n"},                                               // \bin skips raw bytes
		{`{\rtf1 x\emdash y\lquote z\rquote}`, "x\u2014y'z'\n"},
		{`{\rtf1 A}trailing garbage`, "A\n"},
	} {
		j := testJob(Limits{})
		if err := extractRTF(j, []byte(tc.in)); err != nil {
			t.Errorf("extractRTF(%q) error %v", tc.in, err)
			continue
		}
		if got := j.text.String(); got != tc.want {
			t.Errorf("extractRTF(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRTFHostile(t *testing.T) {
	// Unclosed groups: the text so far is kept and the file flagged corrupt.
	j := testJob(Limits{})
	err := extractRTF(j, []byte(`{\rtf1 kept {\b bold`))
	if err == nil || reasonOf(err) != ReasonCorrupt || j.text.String() != "kept bold\n" {
		t.Fatalf("truncated: err %v text %q", err, j.text.String())
	}
	// 100,000 nested groups and a 5 MB paragraph with a small text limit:
	// bounded, cut at the limit.
	deep := "{\\rtf1 " + strings.Repeat("{", 100000) + "deep" + strings.Repeat("}", 100000) + "}"
	r := docExtract(t, "deep.rtf", []byte(deep), nil)
	if r.Status != Failed || r.Reason != ReasonCorrupt {
		t.Fatalf("deep nesting: %s %s %s", r.Status, r.Reason, r.Detail)
	}
	long := "{\\rtf1 " + strings.Repeat("word ", 1<<20) + "}"
	r = docExtract(t, "long.rtf", []byte(long), &Limits{MaxText: 1 << 16, Timeout: 5 * time.Second})
	if r.Status != Truncated || r.Reason != ReasonText || len(r.Text) > 1<<16 {
		t.Fatalf("long: %s %s len %d", r.Status, r.Reason, len(r.Text))
	}
	// A truncated \' escape and a control word at the end of the data.
	for _, in := range []string{`{\rtf1 a\'e`, `{\rtf1 a\`, `{\rtf1 \u`, `{\rtf1 \bin99999999 x}`} {
		r := docExtract(t, "x.rtf", []byte(in), nil)
		if r.Status != Failed || r.Reason != ReasonCorrupt {
			t.Errorf("%q: %s %s", in, r.Status, r.Reason)
		}
	}
}

func FuzzRTF(f *testing.F) {
	f.Add(docFixture(f, "letter.rtf"))
	f.Add([]byte(`{\rtf1\ansi\ansicpg1252\uc1 caf\'e9 \u26085? {\*\x y}{\fonttbl x}\par}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		docFuzzCheck(t, "f.rtf", append([]byte("{\\rtf"), data...))
	})
}

// docFuzzCheck runs one fuzz input through Extract with small limits: no
// panic gets out (nor is one recovered: that is a bug here too), the text
// is UTF-8 within MaxText, and the call returns by its deadline.
func docFuzzCheck(t *testing.T, name string, data []byte) {
	lim := &Limits{Timeout: 2 * time.Second, MaxText: 1 << 16, MaxExpanded: 8 << 20, MaxMembers: 200}
	begin := time.Now()
	r := Extract(t.Context(), name, "", data, lim)
	if el := time.Since(begin); el > lim.Timeout+time.Second {
		t.Fatalf("returned after %s", el)
	}
	if r.Reason == ReasonPanic {
		t.Fatalf("panic: %s", r.Detail)
	}
	if !utf8.ValidString(r.Text) || len(r.Text) > lim.MaxText {
		t.Fatalf("text of %d bytes, valid %v", len(r.Text), utf8.ValidString(r.Text))
	}
}
