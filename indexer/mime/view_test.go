package mime

import (
	"strings"
	"testing"
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
	if !strings.Contains(v.PartHeaders, Fold("content-type: application/pdf")) || !v.TextContains(Fold("x-empty: ")) {
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
	if !strings.Contains(Fold("Café"), Fold("cafe")) {
		t.Errorf("Fold(Café) = %q does not contain cafe (decomposition)", Fold("Café"))
	}
}

func FuzzNewView(f *testing.F) {
	f.Add([]byte("Subject: x\r\n\r\nbody"))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\nContent-Type: message/rfc822\r\n\r\nFrom: a\r\n\r\nhi\r\n--z--"))
	f.Add([]byte("From: <>, \"\" <@>, =?x?q?a?=\r\nContent-Transfer-Encoding: base64\r\n\r\n===="))
	f.Fuzz(func(t *testing.T, raw []byte) {
		v := NewView(raw)
		if v.Size < 0 {
			t.Fatal("negative size")
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
	} {
		if got := writeAddresses(tt.in); got != tt.want {
			t.Errorf("writeAddresses(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
