package imapview

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"mime"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-message/charset"

	"mailvault/harvest/dovecottest"
	"mailvault/service"
)

// The ENVELOPE address lists of generated messages, asked of the view and of
// Dovecot 2.3 holding the same messages, must be the same: groups with their
// markers, source routes in the adl field, display names as quoted strings,
// encoded words (compared decoded: Dovecot returns them as written, go-imap
// re-encodes what it decoded), comments as names, quoted local parts,
// folded fields. The generator writes only well-formed RFC 5322 (with its
// obsolete forms) and no empty list elements: where the two differ on
// purpose, TestEnvelopeAddressesMalformed tests the view alone. Dovecot
// answers an address it cannot parse, and an empty element (",,") in the
// middle of a list, with a placeholder (MISSING_MAILBOX@MISSING_DOMAIN and
// the like); the view leaves either out (RFC 5322 section 4.4 makes an
// empty element nothing, and a placeholder names no one).
//
// MAILVAULT_ENVGEN_SEED and MAILVAULT_ENVGEN_N change the seed (default 18)
// and the number of messages (default 150).

type envGen struct{ rng *rand.Rand }

func (g *envGen) pick(s ...string) string { return s[g.rng.IntN(len(s))] }

func (g *envGen) addrSpec() string {
	local := g.pick("jm", "anna.berg", "x+tag", "o'neil", "first_last", "a-b", "postmaster", "ZOE")
	if g.rng.IntN(8) == 0 {
		local = g.pick(`"john doe"`, `"a,b"`, `"semi;colon"`)
	}
	return local + "@" + g.pick("example.org", "mail.example.com", "EXAMPLE.NET", "sub.d-1.example", "[192.0.2.1]", "[IPv6:2001:db8::1]")
}

func (g *envGen) name() string {
	switch g.rng.IntN(6) {
	case 0:
		return g.pick("Anna", "Jim Morris", "Dr Who")
	case 1:
		return g.pick(`"Berg, Anna"`, `"Team: Sales"`, `"a;b"`, `"quote \"inner\""`, `"Müller"`, `"<@foo:bar"`)
	case 2:
		return g.pick("=?UTF-8?Q?J=C3=BCrgen_Gro=C3=9F?=", "=?ISO-8859-1?Q?Andr=E9?= Pirard", "=?UTF-8?B?5pel5pys?=")
	case 3:
		return "Anna (the boss) Berg"
	default:
		return ""
	}
}

func (g *envGen) mailbox() string {
	switch g.rng.IntN(7) {
	case 0:
		return g.addrSpec()
	case 1:
		return g.addrSpec() + " (" + g.pick("Real Name", "Jim", "nested (comment) here") + ")"
	case 2:
		return g.name() + " <@" + g.pick("relay.example", "a.example,@b.example", "r1.example, @r2.example", "c.example(a comment)") + ":" + g.addrSpec() + ">"
	default:
		n := g.name()
		if n == "" {
			return "<" + g.addrSpec() + ">"
		}
		return n + " <" + g.addrSpec() + ">"
	}
}

func (g *envGen) mailboxes(max int) string {
	var l []string
	for n := g.rng.IntN(max + 1); n > 0; n-- {
		l = append(l, g.mailbox())
	}
	return strings.Join(l, ", ")
}

func (g *envGen) addressList() string {
	var l []string
	for n := 1 + g.rng.IntN(4); n > 0; n-- {
		if g.rng.IntN(3) == 0 {
			name := g.pick("group", "undisclosed-recipients", "Team A", `"The: Group"`, "=?UTF-8?Q?Gr=C3=BCppe?=")
			l = append(l, name+":"+g.pick("", " ")+g.mailboxes(3)+";")
		} else {
			l = append(l, g.mailbox())
		}
	}
	return strings.Join(l, ", ")
}

func (g *envGen) message(i int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\n", g.mailbox())
	for _, f := range []string{"Sender", "Reply-To", "To", "Cc", "Bcc"} {
		if g.rng.IntN(3) > 0 {
			v := g.addressList()
			if f == "Sender" {
				v = g.mailbox()
			}
			if len(v) > 60 && g.rng.IntN(2) == 0 { // a folded field
				if cut := strings.Index(v[30:], ", "); cut >= 0 {
					v = v[:30+cut+1] + "\r\n\t" + v[30+cut+2:]
				}
			}
			fmt.Fprintf(&b, "%s: %s\r\n", f, v)
		}
	}
	fmt.Fprintf(&b, "Subject: envelope %d\r\nDate: Mon, 2 Jan 2023 10:%02d:00 +0100\r\nMessage-ID: <env%d@example.org>\r\n\r\nbody %d\r\n", i, i%60, i, i)
	return []byte(b.String())
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func TestEnvelopeMatchesDovecot(t *testing.T) {
	seed, n := envInt("MAILVAULT_ENVGEN_SEED", 18), envInt("MAILVAULT_ENVGEN_N", 150)
	g := &envGen{rng: rand.New(rand.NewPCG(uint64(seed), 18))}
	var msgs [][]byte
	for i := range n {
		msgs = append(msgs, g.message(i))
	}
	a, u := aliceInbox(t, msgs...)
	view := serveView(t, Options{Archive: service.New(a, &service.Options{Users: u}), InsecureAuth: true})
	dc := dovecottest.Start(t, &dovecottest.Options{Users: []string{"alice"}, Password: "alice-password-1"})
	for i, m := range msgs {
		if uid := dc.Append(t, "alice", "INBOX", m); uid != uint32(i+1) {
			t.Fatalf("dovecot gave message %d UID %d", i, uid)
		}
	}
	got := fetchEnvelopes(t, view, "alice/INBOX", n)
	want := fetchEnvelopes(t, dc.Addr, "INBOX", n)
	fields := []string{"from", "sender", "reply-to", "to", "cc", "bcc"}
	bad := 0
	for uid := 1; uid <= n; uid++ {
		for f, name := range fields {
			if !slices.Equal(got[uid][f], want[uid][f]) {
				bad++
				if bad <= 10 {
					hdr, _, _ := strings.Cut(string(msgs[uid-1]), "\r\n\r\n")
					t.Errorf("seed %d, UID %d, %s:\n view:    %q\n dovecot: %q\nheader:\n%s", seed, uid, name, got[uid][f], want[uid][f], hdr)
				}
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d address lists of %d differ", bad, n*len(fields))
	}
	// The generator must have produced what the test is about.
	var groups, routes int
	for uid := 1; uid <= n; uid++ {
		for _, l := range got[uid] {
			for _, a := range l {
				if strings.HasPrefix(a, "group-start ") {
					groups++
				}
				if strings.Contains(a, " adl=@") {
					routes++
				}
			}
		}
	}
	if groups < n/4 || routes < n/8 {
		t.Fatalf("the generated messages hold %d groups and %d routes: too few to test", groups, routes)
	}
	t.Logf("%d messages, %d address lists equal; %d groups, %d routes", n, n*len(fields), groups, routes)
}

// fetchEnvelopes logs in as alice, selects folder and returns, by UID, the
// six address lists of each ENVELOPE, each address as one comparable string.
func fetchEnvelopes(t *testing.T, addr, folder string, n int) map[int][][]string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := &rawIMAP{t: t, conn: conn, r: bufio.NewReader(conn)}
	c.answer() // greeting
	c.send("a LOGIN alice alice-password-1\r\nb SELECT " + folder + "\r\nc UID FETCH 1:* (UID ENVELOPE)\r\n")
	out := map[int][][]string{}
	for {
		line, lits := c.answer()
		if strings.HasPrefix(line, "a ") || strings.HasPrefix(line, "b ") {
			if !strings.Contains(line, " OK") {
				t.Fatalf("%s: %q", addr, line)
			}
			continue
		}
		if strings.HasPrefix(line, "c ") {
			if !strings.HasPrefix(line, "c OK") {
				t.Fatalf("%s: %q", addr, line)
			}
			break
		}
		if !strings.Contains(line, " FETCH ") {
			continue
		}
		p := &sexpParser{s: line[strings.Index(line, "FETCH ")+6:], lits: lits}
		v, err := p.value()
		if err != nil {
			t.Fatalf("%s: %v in %q", addr, err, line)
		}
		items := v.([]any)
		var uid int
		var env []any
		for i := 0; i+1 < len(items); i += 2 {
			switch strings.ToUpper(items[i].(string)) {
			case "UID":
				uid, _ = strconv.Atoi(items[i+1].(string))
			case "ENVELOPE":
				env = items[i+1].([]any)
			}
		}
		if len(env) != 10 {
			t.Fatalf("%s: UID %d: ENVELOPE of %d fields: %q", addr, uid, len(env), line)
		}
		for _, l := range env[2:8] {
			out[uid] = append(out[uid], envAddresses(l))
		}
	}
	if len(out) != n {
		t.Fatalf("%s: %d envelopes, want %d", addr, len(out), n)
	}
	return out
}

var envWords = &mime.WordDecoder{CharsetReader: charset.Reader}

// envAddresses writes an address list as strings; names are decoded.
func envAddresses(l any) []string {
	list, _ := l.([]any)
	var out []string
	for _, a := range list {
		f := a.([]any)
		s := func(i int) string {
			if f[i] == nil {
				return "NIL"
			}
			return f[i].(sexpString).s
		}
		name := s(0)
		if dec, err := envWords.DecodeHeader(name); err == nil {
			name = dec
		}
		switch {
		case f[0] == nil && f[1] == nil && f[2] != nil && f[3] == nil:
			out = append(out, "group-start "+s(2))
		case f[0] == nil && f[1] == nil && f[2] == nil && f[3] == nil:
			out = append(out, "group-end")
		default:
			out = append(out, fmt.Sprintf("name=%q adl=%s mailbox=%q host=%q", name, s(1), s(2), strings.ToLower(s(3))))
		}
	}
	return out
}

// sexpParser reads an IMAP response value: lists, NIL, quoted strings,
// literals (already read: lits, in order) and atoms.
type sexpParser struct {
	s    string
	lits [][]byte
}

type sexpString struct{ s string }

func (p *sexpParser) value() (any, error) {
	p.s = strings.TrimLeft(p.s, " ")
	if p.s == "" {
		return nil, fmt.Errorf("unexpected end")
	}
	switch p.s[0] {
	case '(':
		p.s = p.s[1:]
		var l []any
		for {
			p.s = strings.TrimLeft(p.s, " ")
			if strings.HasPrefix(p.s, ")") {
				p.s = p.s[1:]
				return l, nil
			}
			v, err := p.value()
			if err != nil {
				return nil, err
			}
			l = append(l, v)
		}
	case '"':
		var b strings.Builder
		for i := 1; i < len(p.s); i++ {
			switch p.s[i] {
			case '\\':
				i++
				b.WriteByte(p.s[i])
			case '"':
				p.s = p.s[i+1:]
				return sexpString{b.String()}, nil
			default:
				b.WriteByte(p.s[i])
			}
		}
		return nil, fmt.Errorf("unterminated string")
	case '{':
		end := strings.Index(p.s, "}\r\n")
		if end < 0 || len(p.lits) == 0 {
			return nil, fmt.Errorf("bad literal")
		}
		p.s = p.s[end+3:]
		lit := p.lits[0]
		p.lits = p.lits[1:]
		return sexpString{string(lit)}, nil
	}
	end := strings.IndexAny(p.s, " ()\r\n")
	if end < 0 {
		end = len(p.s)
	}
	atom := p.s[:end]
	p.s = p.s[end:]
	if strings.EqualFold(atom, "NIL") {
		return nil, nil
	}
	return atom, nil
}

// TestEnvelopeAddressesMalformed: an address that cannot be parsed is left
// out alone; the rest of its field stays (go-imap dropped the whole field).
func TestEnvelopeAddressesMalformed(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []imap.Address
	}{
		{"a@example.org, not an address, b@example.org", []imap.Address{{Mailbox: "a", Host: "example.org"}, {Mailbox: "b", Host: "example.org"}}},
		{"undisclosed-recipients:;", []imap.Address{{Mailbox: "undisclosed-recipients"}, {}}},
		{"team: a@example.org", []imap.Address{{Mailbox: "team"}, {Mailbox: "a", Host: "example.org"}, {}}}, // closed at the end
		{"<@relay.example:u@example.org>", []imap.Address{{Route: "@relay.example", Mailbox: "u", Host: "example.org"}}},
		{`"unterminated <a@example.org>`, nil},
		{"", nil},
		{",,,", nil},
		{"b@x.example, a@[IPv6:2001:db8::1], c@y.example", []imap.Address{{Mailbox: "b", Host: "x.example"}, {Mailbox: "a", Host: "[IPv6:2001:db8::1]"}, {Mailbox: "c", Host: "y.example"}}},
		{`"<@foo:bar" <u@h.example>`, []imap.Address{{Name: "<@foo:bar", Mailbox: "u", Host: "h.example"}}},
		{"<@a.example(x):u@h.example>", []imap.Address{{Route: "@a.example", Mailbox: "u", Host: "h.example"}}},
		{": a@b.example;", []imap.Address{{Mailbox: "a", Host: "b.example"}}}, // no name, no markers
		{`"": a@b.example;, (c) :;`, []imap.Address{{Mailbox: "a", Host: "b.example"}}},
		{"g: a@example.org, , ;", []imap.Address{{Mailbox: "g"}, {Mailbox: "a", Host: "example.org"}, {}}},
		{`"The (not a comment)" (a comment) =?UTF-8?Q?x?=:;`, []imap.Address{{Mailbox: "The (not a comment) =?UTF-8?Q?x?="}, {}}},
	} {
		if got := envelopeAddresses(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("%q: %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

// FuzzEnvelopeAddresses: no input panics, and every address comes from the
// input: at most one per input byte, plus the markers of one group.
func FuzzEnvelopeAddresses(f *testing.F) {
	for _, s := range []string{"a@b.c", "g: a@b.c, \"x;y\" <c@d.e>;", "<@r:u@h>", "(((", "\"\\", "a:b:c;;;", "=?UTF-8?Q?x?= <a@b>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		start := time.Now()
		got := envelopeAddresses(s)
		if len(got) > len(s)+2 {
			t.Fatalf("%d addresses from %d bytes", len(got), len(s))
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("%v for %d bytes", d, len(s))
		}
	})
}

// TestEnvelopeEightBitGroupName: a group name is sent as written, and one
// in raw 8-bit that is not UTF-8 (Latin-1 "Équipe") goes as a literal, also
// to a client that enabled UTF8=ACCEPT: a quoted string may then carry
// 8-bit only as valid UTF-8 (RFC 9051, RFC 6855). A valid UTF-8 name is
// quoted for that client.
func TestEnvelopeEightBitGroupName(t *testing.T) {
	raw := []byte("From: a@example.org\r\nTo: \xc9quipe: b@example.org;\r\nCc: \xc3\x89quipe: c@example.org;\r\nSubject: x\r\n\r\nbody\r\n")
	a, u := aliceInbox(t, raw)
	addr := serveView(t, Options{Archive: service.New(a, &service.Options{Users: u}), InsecureAuth: true})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := &rawIMAP{t: t, conn: conn, r: bufio.NewReader(conn)}
	c.answer()
	c.send("a LOGIN alice alice-password-1\r\nb ENABLE UTF8=ACCEPT\r\nc SELECT alice/INBOX\r\nd FETCH 1 (ENVELOPE)\r\n")
	var fetch string
	var lits [][]byte
	for {
		line, l := c.answer()
		if strings.HasPrefix(line, "* ") && strings.Contains(line, " FETCH ") {
			fetch, lits = line, l
		}
		if strings.HasPrefix(line, "b ") && !strings.HasPrefix(line, "b OK") {
			t.Fatalf("ENABLE: %q", line)
		}
		if strings.HasPrefix(line, "d ") {
			break
		}
	}
	if !slices.ContainsFunc(lits, func(b []byte) bool { return string(b) == "\xc9quipe" }) || strings.Contains(fetch, "\"\xc9quipe\"") {
		t.Errorf("the Latin-1 group name is not a literal: %q, literals %q", fetch, lits)
	}
	if !strings.Contains(fetch, "(NIL NIL \"\xc3\x89quipe\" NIL)") {
		t.Errorf("the UTF-8 group name is not quoted for a UTF8=ACCEPT client: %q", fetch)
	}
}
