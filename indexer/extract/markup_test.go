package extract

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMarkup(t *testing.T) {
	src := func(name string) string {
		b, err := os.ReadFile(filepath.Join("testdata", "containers", "src", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, tc := range []struct {
		name, ct, data string
		format         string
		want           string // the whole text
	}{
		{"report.xml", "", src("report.xml"), "xml", "Quarterly Kestrel report Revenue grew in Zürich Costs & margins held"},
		{"page.html", "", src("page.html"), "html", "Pelican minutes Board meeting The budget & the harbour plan. Lighthouse photo"},
		{"meeting.ics", "", src("meeting.ics"), "ics", "2024-03-01 10:00 2024-03-01 11:00 Osprey review, phase two Bring the draft contract and the signed annex Room 4; Harbour building Ada Lovelace ada@example.com Charles Babbage charles@example.org"},
		{"card.vcf", "", src("card.vcf"), "vcf", "Hopper Grace Brewster Grace Hopper Navy Computing Lab Rear Admiral grace@example.net +1-555-0100 1 Cobol Way Arlington VA 22201 USA Inventor of the compiler — and nanoseconds"},
		// Element boundaries are spaces; attributes, comments, processing
		// instructions are not text.
		{"a.xml", "", `<?xml version="1.0"?><a x="attr"><b>one</b><c>two</c><!-- no --><?pi no?></a>`, "xml", "one two"},
		// Not well-formed: Strict off reads on.
		{"a.xml", "", `<a><b>unclosed <c>text & more</a>`, "xml", "unclosed text & more"},
		// Windows-1252 by meta.
		{"w.html", "", "<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=windows-1252\"><script src=x></script></head><body>caf\xe9 \x93quoted\x94</body></html>", "html", "café “quoted”"},
		{"x", "text/html", "<p>a<style>p{}</style>b<template>t</template>c<noscript>n</noscript>", "html", "a b c n"},
		// "<script/>" opens a script all the same (HTML5): what follows is script.
		{"y.html", "", "<p>shown<script/>hidden", "html", "shown"},
		// Unescaping and a quoted CN holding a colon and a semicolon.
		{"e.ics", "", "BEGIN:VCALENDAR\nBEGIN:VEVENT\nSUMMARY:a\\\\b\\;c\nORGANIZER;CN=\"Doe: J; r\":MAILTO:j@x.org\nDTSTART;VALUE=DATE:20240229\nEND:VEVENT\nEND:VCALENDAR\n", "ics", "a\\b;c Doe: J; r j@x.org 2024-02-29"},
		// vCard 3/4: a group prefix, folding, a Latin-1 2.1 value.
		{"c.vcf", "", "BEGIN:VCARD\nVERSION:3.0\nitem1.EMAIL;TYPE=INTERNET:a@b.c\nNOTE:long\n  folded line\nEND:VCARD\n", "vcf", "a@b.c long folded line"},
		{"c.vcf", "", "BEGIN:VCARD\nVERSION:2.1\nFN;CHARSET=ISO-8859-1;ENCODING=QUOTED-PRINTABLE:Andr=E9\nEND:VCARD\n", "vcf", "André"},
	} {
		r := extract(t, tc.name, []byte(tc.data), nil)
		if tc.ct != "" {
			r = Extract(t.Context(), tc.name, tc.ct, []byte(tc.data), nil)
		}
		if r.Format != tc.format || r.Status != OK || r.Text != tc.want {
			t.Errorf("Extract(%s) = %s %s %s %q,\n want %s ok %q", tc.name, r.Format, r.Status, r.Detail, r.Text, tc.format, tc.want)
		}
	}
}

// Entities a document declares are never expanded: a billion laughs
// yields its literal reference, in microseconds.
func TestXMLBillionLaughsNotExpanded(t *testing.T) {
	r := extract(t, "lol.xml", []byte(billionLaughs), nil)
	if r.Status != OK || r.Text != "&lol9;" {
		t.Fatalf("got %s %s %q", r.Status, r.Reason, r.Text)
	}
}

const billionLaughs = `<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<lolz>&lol9;</lolz>`

// A million levels of nesting cost the document's size: RawToken keeps
// no stack of names.
func TestXMLDeepNesting(t *testing.T) {
	const n = 1_000_000
	doc := strings.Repeat("<a>", n) + "deep" + strings.Repeat("</a>", n)
	r := extract(t, "deep.xml", []byte(doc), nil)
	if r.Status != OK || r.Text != "deep" {
		t.Fatalf("got %s %s %q", r.Status, r.Reason, r.Text)
	}
	html := strings.Repeat("<div>", n) + "deep"
	r = extract(t, "deep.html", []byte(html), nil)
	if r.Status != OK || r.Text != "deep" {
		t.Fatalf("html: got %s %s %q", r.Status, r.Reason, r.Text)
	}
}

func TestCalendarAndCardNeedABeginLine(t *testing.T) {
	for _, name := range []string{"x.ics", "x.vcf"} {
		r := extract(t, name, []byte("just some text\n"), nil)
		if r.Status != Failed || r.Reason != ReasonCorrupt {
			t.Errorf("Extract(%s) = %s %s, want failed corrupt", name, r.Status, r.Reason)
		}
	}
}

func TestCollapse(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""}, {"a", "a"}, {"a b", "a b"}, {" a", "a"}, {"a ", "a"}, {"a  b", "a b"},
		{"\n\t a \r\n b \f", "a b"}, {"   ", ""}, {"a\u00a0b", "a\u00a0b"}, {"é  ü", "é ü"},
	} {
		if got := collapse(tc.in); got != tc.want {
			t.Errorf("collapse(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
