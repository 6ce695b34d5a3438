package mime

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fixture describes what Parse must find in one testdata file. Empty
// fields are not checked.
type fixture struct {
	file       string
	subject    string
	from       []Address
	to         []Address
	date       string // RFC 3339, or "zero"
	messageID  string
	text       []string // substrings of Text
	notText    []string // must not be in Text
	atts       []Attachment
	problems   []string // substrings, each of some problem
	noProblems bool
	check      func(t *testing.T, m *Message)
}

var fixtures = []fixture{
	{file: "subject-utf8-b.eml", subject: "Grüße aus Köln ✓",
		from: []Address{{"Alice", "alice@example.com"}}, date: "2024-03-01T10:00:00+01:00",
		messageID: "utf8b@example.com", text: []string{"Hello."}, noProblems: true},
	{file: "subject-utf8-q.eml", subject: "Café crème brûlée",
		from: []Address{{"Jürgen Müller", "jm@example.de"}}, noProblems: true},
	{file: "subject-latin1.eml", subject: "Résumé de l'été",
		from: []Address{{"François", "f@example.fr"}}, noProblems: true},
	{file: "subject-cp1251.eml", subject: "Привет мир",
		from: []Address{{"Иван", "ivan@example.ru"}}, noProblems: true},
	// The subject's second character is split across two encoded words.
	{file: "subject-big5.eml", subject: "中文郵件", noProblems: true},
	{file: "subject-gb2312.eml", subject: "中文邮件",
		from: []Address{{"张三", "zs@example.cn"}}, noProblems: true},
	{file: "subject-iso2022jp.eml", subject: "日本語の件名",
		from: []Address{{"山田太郎", "yamada@example.jp"}}, text: []string{"こんにちは世界"}, noProblems: true},
	{file: "raw-latin1-header.eml", subject: "Mañana en la café",
		from: []Address{{"José García", "jose@example.es"}}, text: []string{"Señor, ¡hola!"},
		problems: []string{"raw 8-bit header bytes"}},
	// Raw 8-bit bytes in the charset that an encoded word names.
	{file: "raw-big5-header.eml", subject: "你準備好了嗎",
		from: []Address{{"小吳", "wu@example.tw"}}, problems: []string{"raw 8-bit header bytes decoded as big5"}},
	{file: "qp-body.eml", text: []string{"Grüße, this line is soft-broken and ends here.\nEquals sign: 1 = 1. A bare = stays."},
		notText: []string{"\r"}, noProblems: true},
	{file: "base64-body.eml", text: []string{"Zürich is lovely in spring.\nSecond line."}, noProblems: true},
	{file: "html-only.eml",
		text:    []string{"Grüße", "München & Berlin today", "line one\nline two", "cell1 cell2"},
		notText: []string{"color: red", "do not index", "Page title", "a comment", "<", "&amp;", "&uuml;", "&#252;", "&nbsp;", "\u00a0"},
		check: func(t *testing.T, m *Message) {
			if want := "Grüße\n\nMünchen & Berlin today"; !strings.HasPrefix(m.Text, want) {
				t.Errorf("Parse(%q).Text = %q, want prefix %q", "html-only.eml", m.Text, want)
			}
		},
		noProblems: true},
	{file: "alternative.eml", text: []string{"Plain version of the text."},
		notText: []string{"HTML version", "multi-part message"}, noProblems: true,
		check: func(t *testing.T, m *Message) {
			if m.Parts != 3 || m.HasAttachments() {
				t.Errorf("Parse(%q): Parts = %d, HasAttachments = %v, want 3, false", "alternative.eml", m.Parts, m.HasAttachments())
			}
		}},
	{file: "attachments.eml", text: []string{"See attached."}, notText: []string{"summer", "Meeting notes"},
		atts: []Attachment{
			{Filename: "€ rates für 2024.pdf", ContentType: "application/pdf", Size: 1040},
			{Filename: "été.txt", ContentType: "application/octet-stream", Size: 6, Text: "summer"},
			{Filename: "Übersicht.xls", ContentType: "application/vnd.ms-excel", Size: 6},
			{Filename: "notes.txt", ContentType: "text/plain", Size: 54, Text: "Meeting notes: budget approved.\nNext meeting Tuesday."},
			{Filename: "long name continued.pdf", ContentType: "application/pdf", Size: 5},
		}, noProblems: true},
	{file: "forwarded.eml",
		text: []string{"Forwarding this, see below.", "From: Erin <erin@example.org>", "Subject: Quarterly réport",
			"Date: Mon, 4 Mar 2024 09:15:00 +0000", "Revenue grew by eleven percent."},
		notText: []string{"quarter,revenue"},
		atts: []Attachment{
			{Filename: "report.eml", ContentType: "message/rfc822", Size: 430},
			{Filename: "figures.csv", ContentType: "text/csv", Size: 23, Text: "quarter,revenue\nQ1,1100"},
		},
		check: func(t *testing.T, m *Message) {
			if m.Subject != "Fwd: quarterly report" {
				t.Errorf("Parse(%q).Subject = %q, want the outer subject", "forwarded.eml", m.Subject)
			}
		},
		noProblems: true},
	{file: "missing-boundary.eml", text: []string{"First part survives.", "Second part is truncated mid-"},
		problems: []string{"missing closing boundary in message body"}},
	{file: "unknown-charset.eml", text: []string{"Café au lait."},
		problems: []string{`unknown charset "x-foo-bar" in part 1`}},
	{file: "unknown-cte.eml", text: []string{"Raw body kept as is."},
		problems: []string{`unknown transfer encoding "x-gzip64" in message body`}},
	{file: "bad-address.eml",
		from: []Address{{"Broken", "sender@example.com"}},
		to: []Address{{"Undisclosed Recipients", ""}, {"", "good@example.com"},
			{"John Doe", "john@example.net"}, {"Jörg", "joerg@example.de"}},
		problems: []string{"malformed address in From", "malformed address in To"},
		check: func(t *testing.T, m *Message) {
			if len(m.Cc) != 0 {
				t.Errorf("Parse(%q).Cc = %q, want none", "bad-address.eml", m.Cc)
			}
			if want := []Address{{"Reply Desk", "reply@example.com"}}; fmt.Sprint(m.ReplyTo) != fmt.Sprint(want) {
				t.Errorf("Parse(%q).ReplyTo = %q, want %q", "bad-address.eml", m.ReplyTo, want)
			}
			for _, p := range m.Problems {
				if strings.Contains(p, "Cc") || strings.Contains(p, "Reply-To") {
					t.Errorf("Parse(%q): problem %q, want none for Cc and Reply-To", "bad-address.eml", p)
				}
			}
		}},
	{file: "no-message-id.eml", messageID: "", date: "2024-03-05T08:00:00Z", noProblems: true,
		check: func(t *testing.T, m *Message) {
			if m.MessageID != "" {
				t.Errorf("Parse(%q).MessageID = %q, want empty", "no-message-id.eml", m.MessageID)
			}
		}},
	{file: "date-zone.eml", date: "2024-03-01T23:30:00-08:00", noProblems: true,
		check: func(t *testing.T, m *Message) {
			if m.Date.Day() != 1 {
				t.Errorf("Parse(%q).Date.Day() = %d, want 1 (the sender's day)", "date-zone.eml", m.Date.Day())
			}
			if _, off := m.Date.Zone(); off != -8*3600 {
				t.Errorf("Parse(%q).Date offset = %d, want %d", "date-zone.eml", off, -8*3600)
			}
			if got := fmt.Sprint(m.InReplyTo, m.References); got != "[parent@example.com] [root@example.com parent@example.com]" {
				t.Errorf("Parse(%q).InReplyTo, References = %s", "date-zone.eml", got)
			}
		}},
	{file: "bad-date.eml", date: "zero", problems: []string{`unparseable date "someday soon"`}},
	{file: "no-separator.eml", subject: "no separator",
		text:     []string{"This body follows the header without a blank line.\nSecond body line."},
		problems: []string{"missing blank line after message header"}},
	{file: "malformed-header.eml", subject: "still parsed", messageID: "malformed@example.com",
		text: []string{"Body after a malformed header line."}, notText: []string{"not a header field"},
		problems: []string{"malformed line in message header"}},
	{file: "garbage.eml", problems: []string{"no header fields found"},
		check: func(t *testing.T, m *Message) {
			if len(m.Headers) != 0 || m.Text != "" {
				t.Errorf("Parse(%q) = %d headers, text %q, want none", "garbage.eml", len(m.Headers), m.Text)
			}
		}},
	{file: "digest-and-delivery.eml",
		from: []Address{{"Mail Delivery System", "MAILER-DAEMON@example.com"}},
		text: []string{"could not be delivered", "Status: 5.1.1", "Subject: original subject"}, noProblems: true},
}

func TestParseFixtures(t *testing.T) {
	for _, fx := range fixtures {
		t.Run(fx.file, func(t *testing.T) {
			m := Parse(readFixture(t, fx.file), nil)
			f := fx.file
			if fx.subject != "" && m.Subject != fx.subject {
				t.Errorf("Parse(%q).Subject = %q, want %q", f, m.Subject, fx.subject)
			}
			if fx.from != nil && fmt.Sprintf("%q", m.From) != fmt.Sprintf("%q", fx.from) {
				t.Errorf("Parse(%q).From = %q, want %q", f, m.From, fx.from)
			}
			if fx.to != nil && fmt.Sprintf("%q", m.To) != fmt.Sprintf("%q", fx.to) {
				t.Errorf("Parse(%q).To = %q, want %q", f, m.To, fx.to)
			}
			switch {
			case fx.date == "zero":
				if !m.Date.IsZero() {
					t.Errorf("Parse(%q).Date = %v, want zero", f, m.Date)
				}
			case fx.date != "":
				if got := m.Date.Format(time.RFC3339); got != fx.date {
					t.Errorf("Parse(%q).Date = %s, want %s", f, got, fx.date)
				}
			}
			if fx.messageID != "" && m.MessageID != fx.messageID {
				t.Errorf("Parse(%q).MessageID = %q, want %q", f, m.MessageID, fx.messageID)
			}
			for _, s := range fx.text {
				if !strings.Contains(m.Text, s) {
					t.Errorf("Parse(%q).Text = %q, want it to contain %q", f, m.Text, s)
				}
			}
			for _, s := range fx.notText {
				if strings.Contains(m.Text, s) {
					t.Errorf("Parse(%q).Text = %q, want it without %q", f, m.Text, s)
				}
			}
			if fx.atts != nil && !reflect.DeepEqual(m.Attachments, fx.atts) {
				t.Errorf("Parse(%q).Attachments = %+v, want %+v", f, m.Attachments, fx.atts)
			}
			if fx.noProblems && len(m.Problems) > 0 {
				t.Errorf("Parse(%q).Problems = %q, want none", f, m.Problems)
			}
			for _, want := range fx.problems {
				if !strings.Contains(m.ParseError(), want) {
					t.Errorf("Parse(%q).ParseError() = %q, want it to contain %q", f, m.ParseError(), want)
				}
			}
			if m.LimitHit {
				t.Errorf("Parse(%q).LimitHit = true, want false", f)
			}
			if fx.check != nil {
				fx.check(t, m)
			}
			checkInvariants(t, f, m)
		})
	}
}

// checkInvariants checks what must hold for any input.
func checkInvariants(t testing.TB, name string, m *Message) {
	t.Helper()
	if m == nil {
		t.Fatalf("Parse(%q) = nil", name)
	}
	strs := []string{m.Subject, m.MessageID, m.Text}
	for _, h := range m.Headers {
		strs = append(strs, h.Key, h.Value)
	}
	for _, l := range [][]Address{m.From, m.Sender, m.ReplyTo, m.To, m.Cc, m.Bcc} {
		for _, a := range l {
			strs = append(strs, a.Name, a.Addr)
		}
	}
	for _, a := range m.Attachments {
		strs = append(strs, a.Filename, a.ContentType, a.Text)
		if a.Size < 0 {
			t.Errorf("Parse(%q): attachment %q has size %d", name, a.Filename, a.Size)
		}
	}
	strs = append(strs, m.InReplyTo...)
	strs = append(strs, m.References...)
	strs = append(strs, m.Problems...)
	for _, s := range strs {
		if !utf8.ValidString(s) {
			t.Errorf("Parse(%q): invalid UTF-8 in %q", name, s)
		}
	}
	for _, p := range m.Problems {
		if strings.HasPrefix(p, "internal error") {
			t.Errorf("Parse(%q): %s", name, p)
		}
	}
	if (m.ParseError() == "") != (len(m.Problems) == 0) {
		t.Errorf("Parse(%q).ParseError() = %q with %d problems", name, m.ParseError(), len(m.Problems))
	}
}

// TestParseLineEndings checks that CRLF and LF versions of each fixture
// give the same result.
func TestParseLineEndings(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.eml")
	for _, f := range files {
		raw, _ := os.ReadFile(f)
		if bytes.IndexByte(raw, 0) >= 0 {
			continue // binary
		}
		lf := bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n"))
		crlf := bytes.ReplaceAll(lf, []byte("\n"), []byte("\r\n"))
		a, b := Parse(lf, nil), Parse(crlf, nil)
		a.Attachments, b.Attachments = nil, nil // sizes differ
		if !reflect.DeepEqual(a, b) {
			t.Errorf("Parse(%q) differs between LF and CRLF:\n%+v\n%+v", f, a, b)
		}
	}
}

func TestParseHeaders(t *testing.T) {
	raw := "Received: from a\r\n by b; Mon, 4 Mar 2024 09:15:00 +0000\r\n" +
		"Subject: =?utf-8?Q?caf=C3=A9?= time\r\n" +
		"X-Empty:\r\n" +
		"Subject: second subject\r\n\r\nbody\r\n"
	m := Parse([]byte(raw), nil)
	want := []Header{
		{"Received", "from a by b; Mon, 4 Mar 2024 09:15:00 +0000"},
		{"Subject", "café time"},
		{"X-Empty", ""},
		{"Subject", "second subject"},
	}
	if fmt.Sprintf("%q", m.Headers) != fmt.Sprintf("%q", want) {
		t.Errorf("Parse(%q).Headers = %q, want %q", raw, m.Headers, want)
	}
	if m.Subject != "café time" {
		t.Errorf("Parse(%q).Subject = %q, want %q", raw, m.Subject, "café time")
	}
}

func TestParseSmallCases(t *testing.T) {
	tests := []struct {
		name, raw string
		text      string // want Text exactly
		problem   string // want a problem containing this; "" means none
	}{
		{"empty", "", "", ""},
		{"header only", "Subject: x\n", "", ""},
		{"body only", "\nhello\n", "hello", ""},
		{"mbox line", "From alice@example.com Mon Mar  4 09:15:00 2024\nSubject: x\n\nhi\n", "hi", ""},
		{"From with blank before colon", "From : a@example.com\n\nhi\n", "hi", ""},
		{"no boundary param", "Content-Type: multipart/mixed\n\nplain\n", "plain", "multipart without boundary"},
		{"boundary not found", "Content-Type: multipart/mixed; boundary=zz\n\nplain\n", "plain", "boundary not found"},
		{"empty multipart", "Content-Type: multipart/mixed; boundary=zz\n\n--zz--\n", "", ""},
		{"longer boundary is not a delimiter",
			"Content-Type: multipart/mixed; boundary=zz\n\n--zz\n\none\n--zzz\ntwo\n--zz--\n", "one\n--zzz\ntwo", ""},
		{"bad content type", "Content-Type: textplain\n\nhi\n", "hi", "invalid content type"},
		{"html fallback for blank plain",
			"Content-Type: multipart/alternative; boundary=b\n\n--b\nContent-Type: text/plain\n\n \n--b\nContent-Type: text/html\n\n<b>bold</b>\n--b--\n",
			"bold", ""},
		{"html only alternative",
			"Content-Type: multipart/alternative; boundary=b\n\n--b\nContent-Type: text/html\n\n<i>it</i>\n--b--\n", "it", ""},
		{"text/html without charset, latin-1 meta",
			"Content-Type: text/html\n\n<meta charset=\"windows-1251\"><p>\xcf\xf0\xe8\xe2\xe5\xf2</p>\n", "Привет", ""},
		{"utf-8 raw body, no charset", "\n\xc3\xa9t\xc3\xa9\n", "été", ""},
		{"latin-1 raw body, no charset", "\n\xe9t\xe9\n", "été", ""},
		{"part without header", "Content-Type: multipart/mixed; boundary=b\n\n--b\nbody line\n--b--\n", "body line", "missing header of part 1"},
		{"qp in multipart", "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Transfer-Encoding: quoted-printable\n\na=3Db\n--b--\n", "a=b", ""},
		{"folded content type", "Content-Type: text/plain;\n charset=\"iso-8859-1\"\n\n\xe9\n", "é", ""},
		{"utf-16 byte order mark", "\n\xff\xfeh\x00\xe9\x00", "hé", ""},
		{"utf-8 byte order mark", "Content-Type: text/plain; charset=iso-8859-1\n\n\xef\xbb\xbfh\xc3\xa9", "hé", ""},
		{"delimiter with trailing blanks", "Content-Type: multipart/mixed; boundary=b\n\n--b  \n\nx\n--b--  \n", "x", ""},
	}
	for _, tt := range tests {
		m := Parse([]byte(tt.raw), nil)
		if m.Text != tt.text {
			t.Errorf("Parse(%q).Text = %q, want %q (%s)", tt.raw, m.Text, tt.text, tt.name)
		}
		switch {
		case tt.problem == "" && len(m.Problems) > 0:
			t.Errorf("Parse(%q).Problems = %q, want none (%s)", tt.raw, m.Problems, tt.name)
		case tt.problem != "" && !strings.Contains(m.ParseError(), tt.problem):
			t.Errorf("Parse(%q).ParseError() = %q, want %q (%s)", tt.raw, m.ParseError(), tt.problem, tt.name)
		}
		checkInvariants(t, tt.raw, m)
	}
}

// nested returns a message with depth nested multiparts, text at each level.
func nested(depth int) []byte {
	var b bytes.Buffer
	b.WriteString("Subject: deep\nContent-Type: multipart/mixed; boundary=b0\n\n")
	for i := 0; i < depth; i++ {
		fmt.Fprintf(&b, "--b%d\nContent-Type: text/plain\n\nlevel %d\n", i, i)
		fmt.Fprintf(&b, "--b%d\nContent-Type: multipart/mixed; boundary=b%d\n\n", i, i+1)
	}
	fmt.Fprintf(&b, "--b%d\nContent-Type: text/plain\n\ninnermost\n--b%d--\n", depth, depth)
	for i := depth - 1; i >= 0; i-- {
		fmt.Fprintf(&b, "--b%d--\n", i)
	}
	return b.Bytes()
}

func TestParseLimits(t *testing.T) {
	t.Run("depth", func(t *testing.T) {
		raw := nested(50)
		m := Parse(raw, nil)
		if !m.LimitHit || !strings.Contains(m.ParseError(), "limit exceeded: depth > 20") {
			t.Errorf("Parse(nested(50)).ParseError() = %q, LimitHit = %v, want depth limit", m.ParseError(), m.LimitHit)
		}
		if !strings.Contains(m.Text, "level 19") || strings.Contains(m.Text, "level 21") || strings.Contains(m.Text, "innermost") {
			t.Errorf("Parse(nested(50)).Text = %q, want levels 0-20 only", m.Text)
		}
		m = Parse(nested(10), nil)
		if m.LimitHit || !strings.Contains(m.Text, "innermost") {
			t.Errorf("Parse(nested(10)): LimitHit = %v, Text = %q, want all levels", m.LimitHit, m.Text)
		}
		m = Parse(nested(10), &Limits{MaxDepth: 3})
		if !m.LimitHit || strings.Contains(m.Text, "level 4") {
			t.Errorf("Parse(nested(10), MaxDepth 3): LimitHit = %v, Text = %q", m.LimitHit, m.Text)
		}
		checkInvariants(t, "nested", m)
	})
	t.Run("rfc822 depth", func(t *testing.T) {
		inner := "Subject: innermost\n\nbottom text\n"
		for i := 0; i < 40; i++ {
			inner = "Subject: level\nContent-Type: message/rfc822\n\n" + inner
		}
		m := Parse([]byte(inner), nil)
		if !m.LimitHit || strings.Contains(m.Text, "bottom text") {
			t.Errorf("Parse(40 nested messages): LimitHit = %v, Text = %q", m.LimitHit, m.Text)
		}
		checkInvariants(t, "nested rfc822", m)
	})
	t.Run("parts", func(t *testing.T) {
		var b bytes.Buffer
		b.WriteString("Content-Type: multipart/mixed; boundary=p\n\n")
		for i := 0; i < 5000; i++ {
			fmt.Fprintf(&b, "--p\nContent-Type: text/plain\n\npart %d\n", i)
		}
		b.WriteString("--p--\n")
		m := Parse(b.Bytes(), nil)
		if !m.LimitHit || m.Parts != 1000 || !strings.Contains(m.ParseError(), "limit exceeded: parts > 1000") {
			t.Errorf("Parse(5000 parts): Parts = %d, ParseError() = %q, want 1000 and a parts limit", m.Parts, m.ParseError())
		}
		if !strings.HasPrefix(m.Text, "part 0\n") || !strings.HasSuffix(m.Text, "\npart 998") {
			t.Errorf("Parse(5000 parts).Text ends %q, want parts 0-998", m.Text[max(0, len(m.Text)-40):])
		}
		checkInvariants(t, "parts", m)
	})
	t.Run("header bytes", func(t *testing.T) {
		var b bytes.Buffer
		b.WriteString("Subject: big header\n")
		for b.Len() < 300<<10 {
			b.WriteString("X-Filler: 0123456789012345678901234567890123456789012345678901234567890123456789\n")
		}
		b.WriteString("From: late@example.com\n\nbody survives\n")
		m := Parse(b.Bytes(), nil)
		if !m.LimitHit || !strings.Contains(m.ParseError(), "limit exceeded: header bytes > 262144") {
			t.Errorf("Parse(300 KiB header).ParseError() = %q, want a header limit", m.ParseError())
		}
		if m.Subject != "big header" || m.Text != "body survives" || len(m.From) != 0 {
			t.Errorf("Parse(300 KiB header): Subject %q, Text %q, From %q", m.Subject, m.Text, m.From)
		}
		checkInvariants(t, "header bytes", m)
	})
	t.Run("one long header line", func(t *testing.T) {
		raw := "Subject: ok\nX-Long: " + strings.Repeat("x", 300<<10) + "\n\nbody\n"
		m := Parse([]byte(raw), nil)
		if !m.LimitHit || m.Subject != "ok" || m.Text != "body" || len(m.Headers) != 1 {
			t.Errorf("Parse(300 KiB header line): LimitHit %v, Subject %q, Text %q, %d headers", m.LimitHit, m.Subject, m.Text, len(m.Headers))
		}
	})
	t.Run("decoded bytes", func(t *testing.T) {
		raw := "Content-Transfer-Encoding: base64\n\n" + strings.Repeat("aGVsbG8gd29ybGQK", 1000)
		m := Parse([]byte(raw), &Limits{MaxDecodedBytes: 100})
		if !m.LimitHit || len(m.Text) > 100 || !strings.HasPrefix(m.Text, "hello world\nhello") {
			t.Errorf("Parse(12 KB base64, MaxDecodedBytes 100): LimitHit %v, Text %q", m.LimitHit, m.Text)
		}
	})
	t.Run("text bytes", func(t *testing.T) {
		raw := "Content-Type: text/plain; charset=utf-8\n\n" + strings.Repeat("ü", 1000)
		m := Parse([]byte(raw), &Limits{MaxTextBytes: 101})
		if !m.LimitHit || m.Text != strings.Repeat("ü", 50) {
			t.Errorf("Parse(2000 bytes, MaxTextBytes 101): LimitHit %v, len(Text) %d", m.LimitHit, len(m.Text))
		}
		checkInvariants(t, "text bytes", m)
	})
}

// TestParseConcurrent lets the race detector check that Parse shares no
// state between calls.
func TestParseConcurrent(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.eml")
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, f := range files {
				raw, _ := os.ReadFile(f)
				Parse(raw, nil)
			}
		}()
	}
	wg.Wait()
}

func BenchmarkParse(b *testing.B) {
	files, _ := filepath.Glob("testdata/*.eml")
	var msgs [][]byte
	var size int64
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		msgs = append(msgs, raw)
		size += int64(len(raw))
	}
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		for _, raw := range msgs {
			Parse(raw, nil)
		}
	}
	b.ReportMetric(float64(len(msgs)*b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// TestParsePathological feeds inputs built to trigger quadratic behaviour;
// each must parse in well under a second.
func TestParsePathological(t *testing.T) {
	const n = 200 << 10
	rep := func(s string) string { return strings.Repeat(s, n/len(s)) }
	tests := map[string]string{
		"angles":        "To: " + rep("<") + "\n\n",
		"angle commas":  "To: " + rep("<a,") + "\n\n",
		"quotes":        "From: " + rep(`"`) + "\n\n",
		"comments":      "From: " + rep("(") + "\n\n",
		"params":        "Content-Type: text/plain; " + rep("a=b c ") + "\n\n",
		"params semis":  "Content-Type: text/plain" + rep(";") + "\n\n",
		"rfc2231":       "Content-Disposition: attachment; " + rep("filename*9*=%41; ") + "\n\n",
		"words":         "Subject: " + rep("=?a?q?") + "\n\n",
		"words closed":  "Subject: " + rep("=?utf-8?q?a?= ") + "\n\n",
		"word prefixes": "Subject: " + rep("=?") + "\n\n",
		"msgids":        "References: " + rep("<") + "\n\n",
		"date":          "Date: " + rep("1 ") + "\n\n",
		"fields":        rep("a:\n") + "\n",
		"bad lines":     rep("x\nb:\n") + "\n",
		"folds":         "Subject: x\n" + rep(" y\n") + "\n",
		"delims":        "Content-Type: multipart/mixed; boundary=b\n\n" + rep("--bx\n"),
		"delims nonl":   "Content-Type: multipart/mixed; boundary=b\n\n" + rep("--b--b"),
		"html":          "Content-Type: text/html\n\n" + rep("<p><b>&amp;"),
		"qp":            "Content-Transfer-Encoding: quoted-printable\n\n" + rep("="),
		"base64":        "Content-Transfer-Encoding: base64\n\n" + rep("="),
		"salvage":       "\n" + rep("\xe9\xc3\xa9"),
		"nul":           rep("\x00"),
	}
	for name, raw := range tests {
		start := time.Now()
		m := Parse([]byte(raw), nil)
		if d := time.Since(start); d > time.Second {
			t.Errorf("Parse(%s, %d bytes) took %v", name, len(raw), d)
		}
		checkInvariants(t, name, m)
	}
}
