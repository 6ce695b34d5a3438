package imapview

import (
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

// extractEnvelope is go-imap's ExtractEnvelope with the address lists parsed
// here instead. go-imap parses each list with net/mail in one piece, so
//
//   - a group ("To: team: a@x, b@y;", and the everyday
//     "undisclosed-recipients:;") loses its name and markers, or, empty, the
//     whole field;
//   - an obsolete source route ("<@relay:user@host>") fails net/mail, which
//     drops the whole field;
//   - one address net/mail refuses drops every other address of the field.
//
// RFC 3501 section 7.4.2 (RFC 9051 7.5.2) says what ENVELOPE holds instead:
// a group is a start marker (NIL NIL "name" NIL), its members, and an end
// marker (NIL NIL NIL NIL); a route goes in the second field (adl). These
// are what Dovecot answers (imapview/envelope_test.go compares the two). An
// address that still cannot be parsed is left out alone, the rest of its
// field kept.
func extractEnvelope(h textproto.Header) *imap.Envelope {
	env := imapserver.ExtractEnvelope(h)
	mh := mail.Header{Header: message.Header{Header: h}}
	for _, f := range []struct {
		key string
		to  *[]imap.Address
	}{
		{"From", &env.From}, {"Sender", &env.Sender}, {"Reply-To", &env.ReplyTo},
		{"To", &env.To}, {"Cc", &env.Cc}, {"Bcc", &env.Bcc},
	} {
		*f.to = envelopeAddresses(mh.Get(f.key))
	}
	return env
}

// envelopeAddresses parses an address-list field's value (RFC 5322 section
// 3.4, with the obsolete forms of section 4.4) into ENVELOPE's addresses.
//
// The list is split at the commas, colons and semicolons that stand outside
// quoted strings, comments and angle brackets: a colon opens a group (what
// came before it is the group's name), a semicolon closes it, a comma ends an
// address. Each address is then parsed alone by net/mail (go-message's parser,
// which decodes encoded words in any charset go-message knows), its source
// route, if any, taken out first. A group left open at the end of the field
// is closed, as Dovecot does. Empty list elements (obs-addr-list's and
// obs-group-list's ",,") are skipped: RFC 5322 section 4.4 makes them
// nothing. Dovecot answers one in the middle of a list with a placeholder
// address (MISSING_MAILBOX@MISSING_DOMAIN), which names no one.
func envelopeAddresses(v string) []imap.Address {
	var (
		out          []imap.Address
		start        int
		quoted       bool
		comment      int // nesting depth
		angle, group bool
	)
	end := func(i int) {
		if a, ok := envelopeAddress(v[start:i]); ok {
			out = append(out, a)
		}
		start = i + 1
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case quoted:
			if c == '\\' {
				i++
			} else if c == '"' {
				quoted = false
			}
		case comment > 0:
			if c == '\\' {
				i++
			} else if c == '(' {
				comment++
			} else if c == ')' {
				comment--
			}
		case c == '"':
			quoted = true
		case c == '(':
			comment++
		case angle:
			if c == '>' {
				angle = false
			}
		case c == '<':
			angle = true
		case c == ',':
			end(i)
		case c == ':' && !group:
			out = append(out, imap.Address{Mailbox: groupName(v[start:i])})
			group, start = true, i+1
		case c == ';' && group:
			end(i)
			out = append(out, imap.Address{})
			group = false
		}
	}
	end(len(v))
	if group {
		out = append(out, imap.Address{})
	}
	return out
}

// envelopeAddress parses one mailbox (name-addr or addr-spec) of a list.
func envelopeAddress(s string) (imap.Address, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return imap.Address{}, false
	}
	var route string
	// obs-angle-addr: "<" obs-route addr-spec ">", obs-route being
	// "@a.example,@b.example:". net/mail knows no routes.
	if lt := strings.IndexByte(s, '<'); lt >= 0 {
		rest := strings.TrimLeft(s[lt+1:], " \t")
		if strings.HasPrefix(rest, "@") {
			if colon := strings.IndexByte(rest, ':'); colon > 0 {
				route = strings.Join(strings.Fields(rest[:colon]), "")
				s = s[:lt+1] + rest[colon+1:]
			}
		}
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return imap.Address{}, false
	}
	at := strings.LastIndexByte(a.Address, '@')
	if at < 0 {
		return imap.Address{}, false
	}
	return imap.Address{Name: a.Name, Route: route, Mailbox: a.Address[:at], Host: a.Address[at+1:]}, true
}

// groupName is a group's display name (a phrase of atoms, quoted strings
// and comments) as written: quotes and comments taken away, white space
// collapsed, encoded words left encoded. The name goes in the mailbox field
// of the start marker, which clients do not decode as a phrase, and a
// decoded non-ASCII name could not be sent to a client that has not enabled
// UTF8=ACCEPT; Dovecot sends it so too.
func groupName(phrase string) string {
	var b strings.Builder
	space := false
	word := func(c byte) {
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteByte(c)
	}
	for i := 0; i < len(phrase); i++ {
		switch c := phrase[i]; c {
		case ' ', '\t', '\r', '\n':
			space = true
		case '"':
			for i++; i < len(phrase) && phrase[i] != '"'; i++ {
				if phrase[i] == '\\' && i+1 < len(phrase) {
					i++
				}
				word(phrase[i])
			}
		case '(':
			for depth := 1; depth > 0 && i+1 < len(phrase); {
				i++
				switch phrase[i] {
				case '\\':
					i++
				case '(':
					depth++
				case ')':
					depth--
				}
			}
			space = true
		default:
			word(c)
		}
	}
	return b.String()
}
