package mime

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func newTestParser() *parser {
	p := &parser{m: &Message{}, lim: (*Limits)(nil).withDefaults()}
	p.textLeft = p.lim.MaxTextBytes
	p.decodedLeft = p.lim.MaxDecodedBytes
	return p
}

func TestParseDate(t *testing.T) {
	tests := []struct {
		in   string
		want string // RFC 3339; "" for unparseable
	}{
		{"Fri, 1 Mar 2024 23:30:00 -0800", "2024-03-01T23:30:00-08:00"},
		{"Fri, 01 Mar 2024 23:30:00 -0800 (PST)", "2024-03-01T23:30:00-08:00"},
		{"1 Mar 2024 23:30:00 -0800", "2024-03-01T23:30:00-08:00"},        // no weekday
		{"Fri,1 Mar 2024 23:30 -0800", "2024-03-01T23:30:00-08:00"},       // no seconds, no blank
		{"Fri, 1 Mar 2024 23:30:00 PST", "2024-03-01T23:30:00-08:00"},     // named zone
		{"Fri, 1 Mar 2024 23:30:00 PDT", "2024-03-01T23:30:00-07:00"},     // named zone
		{"Fri, 1 Mar 2024 23:30:00 EST", "2024-03-01T23:30:00-05:00"},     // named zone
		{"Fri, 1 Mar 2024 23:30:00 GMT", "2024-03-01T23:30:00Z"},          // GMT
		{"Fri, 1 Mar 2024 23:30:00 UT", "2024-03-01T23:30:00Z"},           // UT
		{"Fri, 1 Mar 2024 23:30:00", "2024-03-01T23:30:00Z"},              // no zone
		{"Fri, 1 Mar 24 23:30:00 +0100", "2024-03-01T23:30:00+01:00"},     // two-digit year
		{"Sun, 1 Sep 02 10:00:00 +0000", "2002-09-01T10:00:00Z"},          // two-digit year
		{"Wed, 1 Dec 99 10:00:00 +0000", "1999-12-01T10:00:00Z"},          // two-digit year, 19xx
		{"Wed, 1 Dec 102 10:00:00 +0000", "2002-12-01T10:00:00Z"},         // three-digit year
		{"Thu, 29 Aug 2002 15:36:58 +-0500", "2002-08-29T15:36:58-05:00"}, // seen in spam
		{"Sat, 8 Jun 2002 1:5:13 -0500", "2002-06-08T01:05:13-05:00"},     // one-digit fields
		{"Thu Aug 22 10:30:00 2002", "2002-08-22T10:30:00Z"},              // asctime
		{"Thu, 22 Aug 2002 10:30:00 +05:30", "2002-08-22T10:30:00+05:30"}, // colon in zone
		{"Thursday, 22 August 2002 10:30:00 CET", "2002-08-22T10:30:00+01:00"},
		{"22 Aug 2002 10:30:00 GMT+2", "2002-08-22T10:30:00+02:00"},
		{"22-Aug-2002 10:30:00 +0000", "2002-08-22T10:30:00Z"},
		{"2002-08-22 10:30:00 -0300", "2002-08-22T10:30:00-03:00"},
		{"Mon, 22 Aug 2002 10:30:60 +0000", "2002-08-22T10:30:59Z"}, // leap second
		{"22 Aug 2002 10:30 PM -0400", "2002-08-22T22:30:00-04:00"},
		{"Fri, 31 Feb 2024 10:00:00 +0000", ""},
		{"Fri, 1 Mar 2024 25:00:00 +0000", ""},
		{"someday soon", ""},
		{"", ""},
		{"Fri, 1 Foo 2024 10:00:00 +0000", ""},
		{"1 Mar 2024 10:00:00 +9999", ""},
	}
	for _, tt := range tests {
		got, ok := parseDate(tt.in)
		gs := ""
		if ok {
			gs = got.Format(time.RFC3339)
		}
		if gs != tt.want {
			t.Errorf("parseDate(%q) = %q, want %q", tt.in, gs, tt.want)
		}
	}
}

func TestParseAddressList(t *testing.T) {
	tests := []struct {
		in   string
		want string // fmt of []Address
		ok   bool
	}{
		{"alice@example.com", `[{"" "alice@example.com"}]`, true},
		{"Alice <alice@example.com>", `[{"Alice" "alice@example.com"}]`, true},
		{`"Doe, John" <john@example.com>, bob@example.com`, `[{"Doe, John" "john@example.com"} {"" "bob@example.com"}]`, true},
		{"bob@example.com (Bob Smith)", `[{"Bob Smith" "bob@example.com"}]`, true},
		{"Bob (the builder) <bob@example.com>", `[{"Bob" "bob@example.com"}]`, true},
		{"=?utf-8?Q?J=C3=B6rg?= <joerg@example.de>", `[{"Jörg" "joerg@example.de"}]`, true},
		{`"=?utf-8?Q?J=C3=B6rg?=" <joerg@example.de>`, `[{"Jörg" "joerg@example.de"}]`, true},
		{"=?utf-8?Q?J=C3=B6rg?= =?utf-8?Q?_Schmidt?= <js@example.de>", `[{"Jörg Schmidt" "js@example.de"}]`, true},
		{"Friends: a@example.com, b@example.com;, c@example.com", `[{"" "a@example.com"} {"" "b@example.com"} {"" "c@example.com"}]`, true},
		{"undisclosed-recipients:;", `[]`, true},
		{"a@example.com,, b@example.com,", `[{"" "a@example.com"} {"" "b@example.com"}]`, true},
		{`"john.doe"@example.com`, `[{"" "\"john.doe\"@example.com"}]`, true},
		{"Null <>", `[{"Null" ""}]`, true},
		{"<@relay.example:alice@example.com>", `[{"" "alice@example.com"}]`, true},
		{"Ünïcødé Name <u@example.com>", `[{"Ünïcødé Name" "u@example.com"}]`, true},
		{"UPPER@Example.COM", `[{"" "UPPER@Example.COM"}]`, true},
		// Salvaged.
		{"Undisclosed Recipients", `[{"Undisclosed Recipients" ""}]`, false},
		{"John Doe john@example.net", `[{"John Doe" "john@example.net"}]`, false},
		{`"Broken <sender@example.com>`, `[{"Broken" "sender@example.com"}]`, false},
		{"Bob <bob@example.com", `[{"Bob" "bob@example.com"}]`, false},
		{"Bob <bob@example.com, Al <al@example.com>", `[{"Bob" "bob@example.com"} {"Al" "al@example.com"}]`, false},
		{"MAILER-DAEMON (Mail Delivery System)", `[{"MAILER-DAEMON" ""}]`, false},
		{"(just a comment)", `[{"just a comment" ""}]`, false},
		{"<not an address>", `[{"" "notanaddress"}]`, false},
	}
	for _, tt := range tests {
		p := newTestParser()
		got, ok := p.parseAddressList(tt.in, "header To")
		if gs := fmt.Sprintf("%q", got); gs != tt.want || ok != tt.ok {
			t.Errorf("parseAddressList(%q) = %s, %v, want %s, %v", tt.in, gs, ok, tt.want, tt.ok)
		}
	}
}

func TestDecodeWords(t *testing.T) {
	tests := []struct {
		in, want string
		problem  string
	}{
		{"plain text", "plain text", ""},
		{"=?utf-8?B?R3LDvMOfZQ==?=", "Grüße", ""},
		{"=?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus?= Berlin", "Grüße aus Berlin", ""},
		{"=?utf-8?q?a?= =?utf-8?q?b?=", "ab", ""},                // blank between words dropped
		{"=?utf-8?q?a?=\r\n =?utf-8?q?b?=", "ab", ""},            // also when folded
		{"x =?utf-8?q?a?= y", "x a y", ""},                       // kept next to text
		{"=?utf-8?q?a?= =?iso-8859-1?q?=E9?=", "aé", ""},         // charset change
		{"=?utf-8?B?w6k=?==?utf-8?B?w6k=?=", "éé", ""},           // no blank at all
		{"=?utf-8?B?4pw=?= =?utf-8?B?kw==?=", "✓", ""},           // character split across words
		{"=?iso-8859-1*fr?q?=E9t=E9?=", "été", ""},               // RFC 2231 language
		{"=?utf-8?q?with spaces?=", "with spaces", ""},           // broken but common
		{"=?utf-8?x?abc?=", "=?utf-8?x?abc?=", ""},               // unknown encoding: kept
		{"=?utf-8?q?unterminated", "=?utf-8?q?unterminated", ""}, // kept
		{"a =? b ?= c", "a =? b ?= c", ""},                       // not a word
		{"=?x-unknown-cs?q?caf=E9?=", "café", `unknown charset "x-unknown-cs" in header Subject`},
		{"=?utf-8?b?/w==?=", "ÿ", ""},           // invalid UTF-8 salvaged
		{"=?koi8-r?b?8NLJ18XU?=", "Привет", ""}, // koi8-r
		{"=?shift_jis?b?k/qWe4zq?=", "日本語", ""}, // shift_jis
		{"=?euc-kr?b?x9GxuQ==?=", "한국", ""},     // euc-kr
	}
	for _, tt := range tests {
		p := newTestParser()
		got := p.decodeWords(tt.in, "header Subject")
		if got != tt.want {
			t.Errorf("decodeWords(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if pe := p.m.ParseError(); pe != tt.problem {
			t.Errorf("decodeWords(%q): problems %q, want %q", tt.in, pe, tt.problem)
		}
	}
}

func TestParseValue(t *testing.T) {
	tests := []struct {
		in    string
		token string
		want  string // fmt of params as key=val
	}{
		{"text/plain; charset=utf-8", "text/plain", "charset=utf-8"},
		{`Text/HTML; Charset="ISO-8859-1"`, "text/html", "charset=ISO-8859-1"},
		{"text/html charset=utf-8", "text/html", "charset=utf-8"},
		{"text/plain; charset=utf-8 format=flowed", "text/plain", "charset=utf-8 format=flowed"},
		{`multipart/mixed; boundary="----=_Part_1;x"`, "multipart/mixed", "boundary=----=_Part_1;x"},
		{`multipart/mixed; boundary=----=_NextPart_000`, "multipart/mixed", "boundary=----=_NextPart_000"},
		{`attachment; filename="a \"quoted\" name.txt"`, "attachment", `filename=a "quoted" name.txt`},
		{`attachment; filename="unterminated.txt`, "attachment", "filename=unterminated.txt"},
		{"attachment; junk; filename=a.txt;", "attachment", "filename=a.txt"},
		{"attachment; filename*=UTF-8''%E2%82%AC.pdf", "attachment", "filename=€.pdf"},
		{"attachment; filename*=ISO-8859-1''%E9t%E9.txt", "attachment", "filename=été.txt"},
		{"attachment; filename*=iso-8859-1'fr'%E9t%E9.txt", "attachment", "filename=été.txt"},
		{"attachment; filename=plain.txt; filename*=utf-8''ext%C3%A9.txt", "attachment", "filename=exté.txt"},
		{`attachment; filename*1="b.txt"; filename*0="a"`, "attachment", "filename=ab.txt"},
		{`attachment; filename*0*=utf-8''%C3%A9; filename*1*=%C3%A9; filename*2=".doc"`, "attachment", "filename=éé.doc"},
		{"text/plain (comment); charset=us-ascii", "text/plain", "charset=us-ascii"},
		{"", "", ""},
	}
	for _, tt := range tests {
		p := newTestParser()
		token, ps := p.parseValue(tt.in, "part 1")
		var got []string
		for _, q := range ps {
			got = append(got, q.key+"="+q.val)
		}
		if token != tt.token || strings.Join(got, " ") != tt.want {
			t.Errorf("parseValue(%q) = %q, %q, want %q, %q", tt.in, token, strings.Join(got, " "), tt.token, tt.want)
		}
	}
}

func TestHTMLText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"<p>a</p><p>b</p>", "a\n\nb"},
		{"a<br>b<br><br><br>c", "a\nb\n\nc"},
		{"&#252;&uuml;&amp;&lt;&gt;&quot;&#x263A;", "üü&<>\"☺"},
		{"a&nbsp;b", "a b"},
		{"  lots   of\n\n white\tspace  ", "lots of white space"},
		{"<pre>keep\n  this</pre>", "keep\n  this"},
		{"<script>x</script><style>y</style><title>t</title>z", "z"},
		{"<SCRIPT>x</SCRIPT>z", "z"},
		{"<style>unclosed", ""},
		{"<ul><li>one<li>two</ul>", "one\ntwo"},
		{"<td>a</td><td>b</td>", "a b"},
		{"x<!-- comment -->y", "xy"},
		{"<b>bo</b>ld", "bold"},
		{"<a href=x>link</a> text", "link text"},
		{"broken <tag attr='x", "broken"},
		{"&bogus; & && &#xD800;", "&bogus; & && \uFFFD"},
		{"a<iframe src=x><script>ad()</script></iframe>b", "a b"},
		{"<noscript><p>Enable <b>JS</b> &amp; go</p></noscript>", "Enable JS & go"},
		{"<noframes><noscript><i>x</i></noscript>y</noframes>", "y"},
		{"<textarea>a &lt; b</textarea>", "a < b"},
	}
	for _, tt := range tests {
		if got := string(appendHTMLText(nil, []byte(tt.in))); got != tt.want {
			t.Errorf("appendHTMLText(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestTransferDecoders(t *testing.T) {
	b64 := []struct{ in, want string }{
		{"aGVsbG8=", "hello"},
		{"aGVs\r\nbG8=", "hello"},
		{"aGVsbG8", "hello"},               // missing padding
		{"aGVs bG8 =", "hello"},            // blanks
		{"aGVsbG8=aGVsbG8=", "hellohello"}, // concatenated
		{"a*G!V#s%b^G&8(=", "hello"},       // junk skipped
		{"-_8=", "\xfb\xff"},               // URL-safe alphabet
		{"=", ""},
		{"a", ""},
	}
	for _, tt := range b64 {
		if got := string(appendBase64(nil, []byte(tt.in), -1)); got != tt.want {
			t.Errorf("appendBase64(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got := base64Size([]byte(tt.in)); got != int64(len(tt.want)) {
			t.Errorf("base64Size(%q) = %d, want %d", tt.in, got, len(tt.want))
		}
	}
	if got := string(appendBase64(nil, []byte("aGVsbG8gd29ybGQ="), 4)); got != "hell" {
		t.Errorf("appendBase64(%q, max 4) = %q, want %q", "aGVsbG8gd29ybGQ=", got, "hell")
	}
	qp := []struct{ in, want string }{
		{"a=3Db", "a=b"},
		{"soft=\r\nbreak", "softbreak"},
		{"soft=\nbreak", "softbreak"},
		{"soft=  \r\nbreak", "softbreak"},
		{"bare = sign", "bare = sign"},
		{"bad =ZZ hex", "bad =ZZ hex"},
		{"lower =c3=a9", "lower é"},
		{"end=", "end"},
		{"end=4", "end=4"},
	}
	for _, tt := range qp {
		if got := string(appendQP(nil, []byte(tt.in), -1)); got != tt.want {
			t.Errorf("appendQP(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got := qpSize([]byte(tt.in)); got != int64(len(tt.want)) {
			t.Errorf("qpSize(%q) = %d, want %d", tt.in, got, len(tt.want))
		}
	}
}

func TestSalvage(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"caf\xc3\xa9", "café"},
		{"caf\xe9", "café"},                   // Latin-1
		{"\x93quoted\x94 \x80", "“quoted” €"}, // windows-1252
		{"\xc3\xa9t\xc3\xa9 \xff", "été \uFFFD"},
	}
	for _, tt := range tests {
		if got := string(salvage(nil, []byte(tt.in))); got != tt.want {
			t.Errorf("salvage(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
