package mime

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestView(t *testing.T) {
	raw := "From: \"Doe, Jane\" <jane@example.org>, bob@example.org (Bob Smith)\r\n" +
		"To: =?utf-8?q?J=C3=BCrgen?= <j@example.de>\r\n" +
		"Subject: Re:  the\r\n\t =?iso-8859-1?q?caf=E9?=   menu\r\n" +
		"X-Empty:\r\n" +
		"Content-Type: multipart/alternative; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain; charset=windows-1252\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
		"Prix: 5=80 =ZZ soft=\r\nbreak\r\n" +
		"--b\r\nContent-Type: text/html\r\n\r\n<p>Ｆｒｅｅ <b>HTML</b></p>\r\n" +
		"--b\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nc2VjcmV0\r\n--b--\r\n"
	v := NewView([]byte(raw))
	for _, tt := range []struct {
		got, want string
	}{
		{v.Addresses[0].Value, Fold(`"Doe, Jane" <jane@example.org>, "Bob Smith" <bob@example.org>`)},
		{v.Addresses[1].Value, Fold("Jürgen <j@example.de>")},
		{v.Subjects[0], Fold("re: the café menu")},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
	for _, want := range []string{"prix: 5€ =zz softbreak", "<p>free <b>html</b></p>"} {
		if !strings.Contains(v.Body, Fold(want)) {
			t.Errorf("body %q does not contain %q", v.Body, want)
		}
	}
	if strings.Contains(v.Body, Fold("secret")) || strings.Contains(v.Body, Fold("c2VjcmV0")) {
		t.Errorf("body %q contains the PDF part", v.Body)
	}
	if !strings.Contains(v.PartHeaders, Fold("content-type: application/pdf")) || !v.TextContains(Fold("x-empty:\r\n")) || v.TextContains(Fold("x-empty: ")) {
		t.Errorf("part headers %q / header text %q", v.PartHeaders, v.HeaderText)
	}
	for _, tt := range [][2]string{{"ÉTÉ", "été"}, {"Ｆｒｅｅ", "free"}, {"ǅ", "ǆ"}, {"Ǆ", "ǆ"}} {
		if Fold(tt[0]) != Fold(tt[1]) {
			t.Errorf("Fold(%q) = %q, Fold(%q) = %q; want equal", tt[0], Fold(tt[0]), tt[1], Fold(tt[1]))
		}
	}
	if Fold("Straße") == Fold("STRASSE") {
		t.Error("Fold expands ß to ss; Dovecot's casemap (simple titlecase) does not")
	}
	// Dovecot 2.3's casemap (uni_utf8_to_decomposed_titlecase): titlecase,
	// then one level of decomposition; invalid UTF-8 is one U+FFFD a run.
	for _, tt := range [][2]string{
		{"k\u1EBF", "K\u00CA\u0301"},     // ế → Ế → Ê + acute, not E + circumflex + acute
		{"\u1E69", "\u1E62\u0307"},       // ṩ → Ṩ → Ṣ + dot above
		{"\uFB01", "fi"},                 // ﬁ has no titlecase: its compatibility form, lower case
		{"\u01C6\u01C4", "\u01C5\u01C5"}, // ǆ, Ǆ → ǅ, which has a titlecase field and so no decomposition
		{"\u00AA", "a"},                  // ª → a (compatibility, lower case)
		{"\uAC01", "\u1100\u1161\u11A8"}, // 각 → jamo
		{"a\xff\xfeb", "A\uFFFDB"},
		{"\uFFFD\xff", "\uFFFD"},
		{"\U0001D400", "A"}, // 𝐀, a one-character decomposition above U+FFFF
	} {
		if got := Fold(tt[0]); got != tt[1] {
			t.Errorf("Fold(%q) = %q, want %q", tt[0], got, tt[1])
		}
	}
	if !strings.Contains(Fold("Café"), Fold("cafe")) {
		t.Errorf("Fold(Café) = %q does not contain cafe (decomposition)", Fold("Café"))
	}
}

// TestViewDovecotCuts holds the classes of difference the generated IMAP
// SEARCH queries found against Dovecot (issue 13), one row each: the
// message, a needle, the field, and whether Dovecot finds it.
func TestViewDovecotCuts(t *testing.T) {
	const h = "From: a@x.org\r\nSubject: s\r\n"
	for _, tt := range []struct {
		name, raw, field, needle string
		want                     bool
	}{
		{"fold tab is a space", h + "X-F: alpha\r\n\tbeta\r\n\r\nb\r\n", "header", "alpha beta", true},
		{"fold tab not kept", h + "X-F: alpha\r\n\tbeta\r\n\r\nb\r\n", "header", "alpha\tbeta", false},
		{"second fold tab kept", h + "X-F: a\r\n\t\tb\r\n\r\nb\r\n", "header", "a \tb", true},
		{"fold spaces kept", h + "X-F: gamma\r\n  delta\r\n\r\nb\r\n", "header", "gamma  delta", true},
		{"inner tab kept", h + "X-F: one\ttwo\r\n\r\nb\r\n", "header", "one\ttwo", true},
		{"one blank after colon skipped", h + "X-F:   three\r\n\r\nb\r\n", "header", "  three", true},
		{"only one blank skipped", h + "X-F:   three\r\n\r\nb\r\n", "header", "   three", false},
		{"TEXT keeps the colon as written", h + "X-F:value\r\n\r\nb\r\n", "text", "x-f:value", true},
		{"TEXT adds no blank", h + "X-F:value\r\n\r\nb\r\n", "text", "x-f: value", false},
		{"TEXT header lines end in CRLF", h + "\r\nb\r\n", "text", "s\r\n", true},
		{"TEXT header lines not LF", h + "\r\nb\r\n", "text", "s\n", false},
		{"body line ends LF", h + "\r\nwords\r\nmore\r\n", "body", "words\nmore", true},
		{"body line ends not CRLF", h + "\r\nwords\r\nmore\r\n", "body", "words\r\n", false},
		{"Content-Type without ;", h + "Content-Type: text/plain charset=us-ascii\r\n\r\nbadct\r\n", "body", "badct", false},
		{"Content-Type without subtype", h + "Content-Type: text\r\n\r\nnoslash\r\n", "body", "noslash", false},
		{"empty Content-Type", h + "Content-Type: \r\n\r\nemptyct\r\n", "body", "emptyct", false},
		{"multipart without ;", h + "Content-Type: multipart/mixed boundary=z\r\n\r\n--z\r\n\r\ninner\r\n--z--\r\n", "text", "inner", false},
		{"bad parameter keeps the type", h + "Content-Type: text/plain; charset=us-ascii; foo\r\n\r\nbadparam\r\n", "body", "badparam", true},
		{"bad parameter keeps the boundary", h + "Content-Type: multipart/mixed; boundary=z; junk\r\n\r\n--z\r\n\r\ninside\r\n--z--\r\n", "body", "inside", true},
		{"no Content-Type is text", h + "\r\nplain\r\n", "body", "plain", true},
		{"QP padding at line end dropped", h + "Content-Transfer-Encoding: quoted-printable\r\n\r\netc. \r\nnext\r\n", "body", "etc. ", false},
		{"QP padding: line still there", h + "Content-Transfer-Encoding: quoted-printable\r\n\r\netc. \r\nnext\r\n", "body", "etc.\nnext", true},
		{"message/delivery-status is text", h + "Content-Type: multipart/report; boundary=z\r\n\r\n--z\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; x\r\n--z--\r\n", "body", "reporting-mta", true},
		{"application part is not text", h + "Content-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\nContent-Type: application/octet-stream\r\n\r\nbinary words\r\n--z--\r\n", "body", "binary", false},
		{"a name of blanks is written", "To: \" \" <fork@x.org>\r\n\r\nb\r\n", "to", `" " <fork@`, true},
		{"quoted name keeps its blanks", "From: \"IQ \" <nlv@x.us>\r\n\r\nb\r\n", "from", `"iq " <nlv@`, true},
		{"quoted local part as written", "To: \"odd local\"@x.net\r\n\r\nb\r\n", "to", `<"odd local"@x.net>`, true},
		{"encoded word in a local part decoded", "From: =?iso-2022-jp?B?am9rb0Bycy4xMjgubmUuanA=?=@FreeBSD.ORG\r\n\r\nb\r\n", "from", "<joko@rs.128.ne.jp@freebsd.org>", true},
		{"decomposed one level: Ế is Ê + acute", "Subject: s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nK\u1EBE TO\u00C1N\r\n", "body", "KE", false},
		{"decomposed one level: Ê + acute found", "Subject: s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nK\u1EBE TO\u00C1N\r\n", "body", "k\u1EBF", true},
		{"decomposed one level: Á is A + acute", "Subject: s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nK\u1EBE TO\u00C1N\r\n", "body", "toa", true},
		{"Hangul syllables are jamo", h + "Content-Type: text/plain; charset=utf-8\r\n\r\n\uD55C\uAD6D\r\n", "body", "\u1112\u1161", true},
		{"ks_c_5601-1987 is read as UTF-8 (iconv has no such name)", h + "Content-Type: text/html; charset=\"ks_c_5601-1987\"\r\n\r\n<p> \xC7\xAA\xC7\xD1</p>\r\n", "body", " o", true},
		{"ks_c_5601-1987 is not converted from EUC-KR", h + "Content-Type: text/plain; charset=ks_c_5601-1987\r\n\r\n\xC7\xD1\xB1\xB9\r\n", "body", "\uD55C\uAD6D", false},
		{"encoded word in a charset iconv lacks: its bytes, not folded", h + "X-F: =?ks_c_5601-1987?B?x6rHqg==?= tail\r\n\r\nb\r\n", "header", "o", false},
		{"encoded word in a charset iconv lacks: the bytes as written", h + "X-F: =?ks_c_5601-1987?B?x6rHqg==?= tail\r\n\r\nb\r\n", "header", "\u01EA\u01EA tail", false},
		{"encoded word in a charset iconv lacks: the rest folded", h + "X-F: =?ks_c_5601-1987?B?x6rHqg==?= tail\r\n\r\nb\r\n", "header", "TAIL", true},
		{"encoded word in euc-kr is converted", h + "X-F: =?euc-kr?B?x9GxuQ==?=\r\n\r\nb\r\n", "header", "\uD55C\uAD6D", true},
		{"euc-kr is converted", h + "Content-Type: text/plain; charset=euc-kr\r\n\r\n\xC7\xD1\xB1\xB9\r\n", "body", "\uD55C\uAD6D", true},
		{"x-sjis is read as UTF-8", h + "Content-Type: text/plain; charset=x-sjis\r\n\r\n\x82\xa0\r\n", "body", "\u3042", false},
		{"shift_jis is converted", h + "Content-Type: text/plain; charset=shift_jis\r\n\r\n\x82\xa0\r\n", "body", "\u3042", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := NewView([]byte(tt.raw))
			needle := Fold(tt.needle)
			var got bool
			switch tt.field {
			case "header":
				for _, x := range v.Headers {
					if x.Key == "X-F" && strings.Contains(x.Value, needle) {
						got = true
					}
				}
			case "text":
				got = v.TextContains(needle)
			case "body":
				got = strings.Contains(v.Body, needle)
			default:
				for _, x := range v.Addresses {
					if strings.EqualFold(x.Key, tt.field) && strings.Contains(x.Value, needle) {
						got = true
					}
				}
			}
			if got != tt.want {
				t.Errorf("%s %q: found %v, Dovecot %v (view: headers %q, text %q, body %q, addresses %q)",
					tt.field, tt.needle, got, tt.want, v.Headers, v.HeaderText, v.Body, v.Addresses)
			}
		})
	}
}

func FuzzNewView(f *testing.F) {
	f.Add([]byte("Subject: x\r\n\r\nbody"))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\nContent-Type: message/rfc822\r\n\r\nFrom: a\r\n\r\nhi\r\n--z--"))
	f.Add([]byte("From: <>, \"\" <@>, =?x?q?a?=\r\nContent-Transfer-Encoding: base64\r\n\r\n===="))
	f.Add([]byte("From: alice\r\nTo: Foo <bar@x, (c\\) \"q\\\r\n\"@[1.2\r\nCc: <@r.x:, g: a@b, ;\r\nBcc: ...@, \x00\"\r\nContent-Type: text/plain; charset=ks_c_5601-1987\r\n\r\n\xc7\xaa\xff"))
	f.Add([]byte("Subject: \xff\x01not protected\xff\x02 =?ks_c_5601-1987?B?x6r/?=\r\n\r\nb"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		v := NewView(raw)
		if v.Size < 0 {
			t.Fatal("negative size")
		}
		// Folded text is UTF-8 (Fold and the protected encoded words make
		// every invalid byte U+FFFD): no protect mark survives.
		for _, s := range append([]string{v.HeaderText, v.Body, v.PartHeaders}, v.Subjects...) {
			if !utf8.ValidString(s) {
				t.Fatalf("view text %q is not UTF-8", s)
			}
		}
		// The header-only view (IMAP SEARCH's header columns) has the
		// same header fields, addresses, subjects and header text.
		h := NewHeaderView(raw)
		if !slices.Equal(h.Headers, v.Headers) || !slices.Equal(h.Addresses, v.Addresses) ||
			!slices.Equal(h.Subjects, v.Subjects) || h.HeaderText != v.HeaderText || h.Body != "" || h.PartHeaders != "" {
			t.Fatalf("NewHeaderView differs from NewView's header: %+v against %+v", h, v)
		}
		// The fields view keeps exactly the accepted fields' entries of
		// the header view, in order: here the first field's name (in
		// another case) and Subject.
		first := ""
		if len(v.Headers) > 0 {
			first = strings.ToUpper(v.Headers[0].Key)
		}
		want := func(k string) bool { return strings.EqualFold(k, first) || strings.EqualFold(k, "subject") }
		keep := func(hs []Header) []Header {
			return slices.DeleteFunc(slices.Clone(hs), func(h Header) bool { return !want(h.Key) })
		}
		fv := NewHeaderFieldsView(raw, want)
		var subjects []string
		if len(keep(v.Headers)) > 0 && slices.ContainsFunc(v.Headers, func(h Header) bool { return strings.EqualFold(h.Key, "subject") }) {
			subjects = v.Subjects
		}
		if !slices.Equal(fv.Headers, keep(v.Headers)) || !slices.Equal(fv.Addresses, keep(v.Addresses)) ||
			!slices.Equal(fv.Subjects, subjects) || fv.HeaderText != "" || fv.Body != "" {
			t.Fatalf("NewHeaderFieldsView(%q or Subject) differs from the view's fields: %+v against %+v", first, fv, v)
		}
	})
}

func TestWriteAddresses(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{`Bob <bob@x.org>`, `Bob <bob@x.org>`},
		{`bob@x.org`, `<bob@x.org>`},
		{`bob@x.org (Bob Smith)`, `"Bob Smith" <bob@x.org>`},
		{`"Doe, Jane" <jane@x.org>, tim@y.org`, `"Doe, Jane" <jane@x.org>, <tim@y.org>`},
		{`=?utf-8?q?J=C3=B6rg_M?= <j@x.de>`, `Jörg M <j@x.de>`},
		{`undisclosed-recipients:;`, `undisclosed-recipients:;`},
		{`Team: b@x.org, c@x.org;, d@x.org`, `Team: <b@x.org>, <c@x.org>;, <d@x.org>`},
		{`a@x.org, "My Group": b@x.org;`, `<a@x.org>, "My Group": <b@x.org>;`},
		// Dovecot's salvage (FILL_MISSING), checked against Dovecot 2.3.19.1
		// (messy message 9 of the generated differential)
		{`alice`, `<alice@MISSING_DOMAIN>`},
		{`Foo Bar, Foo <bar@x.org`, `"Foo Bar" <MISSING_MAILBOX@MISSING_DOMAIN>, Foo <bar@SYNTAX_ERROR>`},
		{`<@route.x:bob@x.org>, a@b.c,`, `<@route.x:bob@x.org>, <a@b.c>`},
		{`(only a comment) "q"@x, <>, x@[1.2.3.4], @nolocal.org`, `<q@x>, <MISSING_MAILBOX@MISSING_DOMAIN>, <x@[1.2.3.4]>, <MISSING_MAILBOX@nolocal.org>`},
	} {
		if got := writeAddresses(tt.in); got != tt.want {
			t.Errorf("writeAddresses(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
