package imapview

import (
	"strings"

	"github.com/emersion/go-imap/v2"
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
//
// The other fields are read as go-imap's ExtractEnvelope reads them; that
// function is not called, since it would parse every address list once
// more only for this to throw the result away.
func extractEnvelope(h textproto.Header) *imap.Envelope {
	mh := mail.Header{Header: message.Header{Header: h}}
	env := &imap.Envelope{}
	env.Date, _ = mh.Date()
	env.Subject, _ = mh.Subject()
	env.InReplyTo, _ = mh.MsgIDList("In-Reply-To")
	env.MessageID, _ = mh.MessageID()
	env.From = envelopeAddresses(mh.Get("From"))
	env.Sender = envelopeAddresses(mh.Get("Sender"))
	env.ReplyTo = envelopeAddresses(mh.Get("Reply-To"))
	env.To = envelopeAddresses(mh.Get("To"))
	env.Cc = envelopeAddresses(mh.Get("Cc"))
	env.Bcc = envelopeAddresses(mh.Get("Bcc"))
	return env
}

// envelopeAddresses parses an address-list field's value (RFC 5322 section
// 3.4, with the obsolete forms of section 4.4) into ENVELOPE's addresses.
//
// The list is split at the commas, colons and semicolons that stand outside
// quoted strings, comments, angle brackets and domain literals ("[IPv6:…]"):
// a colon opens a group (what came before it is the group's name), a
// semicolon closes it, a comma ends an address. Each address is then parsed
// alone by net/mail (go-message's parser, which decodes encoded words in any
// charset go-message knows), its source route, if any, taken out first. A
// group left open at the end of the field is closed, as Dovecot does. A group
// without a name (": a@x;") gets no markers, its members kept: a start
// marker with no name would read as an end marker. Empty list elements
// (obs-addr-list's and obs-group-list's ",,") are skipped: RFC 5322 section
// 4.4 makes them nothing. Dovecot answers one in the middle of a list with a
// placeholder address (MISSING_MAILBOX@MISSING_DOMAIN), which names no one.
func envelopeAddresses(v string) []imap.Address {
	const (
		noGroup = iota
		inGroup
		inUnnamedGroup
	)
	var (
		out            []imap.Address
		start          int
		lt             = -1 // where the item's angle-addr begins
		quoted         bool
		comment        int // nesting depth
		angle, literal bool
		group          = noGroup
	)
	end := func(i int) {
		at := -1
		if lt >= 0 {
			at = lt - start
		}
		if a, ok := envelopeAddress(v[start:i], at); ok {
			out = append(out, a)
		}
		start, lt = i+1, -1
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
		case literal:
			if c == '\\' {
				i++
			} else if c == ']' {
				literal = false
			}
		case c == '<':
			angle = true
			if lt < 0 {
				lt = i
			}
		case c == '[':
			literal = true
		case c == ',':
			end(i)
		case c == ':' && group == noGroup:
			if name := groupName(v[start:i]); name != "" {
				out = append(out, imap.Address{Mailbox: name})
				group = inGroup
			} else {
				group = inUnnamedGroup
			}
			start, lt = i+1, -1
		case c == ';' && group != noGroup:
			end(i)
			if group == inGroup {
				out = append(out, imap.Address{})
			}
			group = noGroup
		}
	}
	end(len(v))
	if group == inGroup {
		out = append(out, imap.Address{})
	}
	return out
}

// envelopeAddress parses one mailbox (name-addr or addr-spec) of a list; lt
// is where its angle-addr's "<" is in s (outside quotes and comments), or -1.
func envelopeAddress(s string, lt int) (imap.Address, bool) {
	if strings.TrimSpace(s) == "" {
		return imap.Address{}, false
	}
	var route string
	// obs-angle-addr: "<" obs-route addr-spec ">", obs-route being
	// "@a.example,@b.example:" (comments and spaces allowed between).
	// net/mail knows no routes.
	if lt >= 0 {
		rest := s[lt+1:]
		if r := strings.TrimLeft(stripComments(rest), " \t"); strings.HasPrefix(r, "@") {
			if colon := indexOutsideComments(rest, ':'); colon > 0 && colon < indexOutsideComments(rest, '>') {
				route = strings.Join(strings.Fields(stripComments(rest[:colon])), "")
				s = s[:lt+1] + rest[colon+1:]
			}
		}
	}
	// A domain literal ("u@[IPv6:2001:db8::1]") is kept as written; net/mail
	// takes only a bare IP address between the brackets, so it parses a
	// stand-in domain instead.
	var literal string
	if i := strings.LastIndex(s, "@["); i >= 0 {
		if j := strings.IndexByte(s[i:], ']'); j > 0 {
			literal = s[i+1 : i+j+1]
			s = s[:i+1] + literalStandIn + s[i+j+1:]
		}
	}
	a, err := mail.ParseAddress(strings.TrimSpace(s))
	if err != nil {
		return imap.Address{}, false
	}
	at := strings.LastIndexByte(a.Address, '@')
	if at < 0 {
		return imap.Address{}, false
	}
	host := a.Address[at+1:]
	if literal != "" && host == literalStandIn {
		host = literal
	}
	return imap.Address{Name: a.Name, Route: route, Mailbox: a.Address[:at], Host: host}, true
}

const literalStandIn = "domain-literal.invalid"

// indexOutsideComments is the index of the first c in s outside comments,
// or -1. (A route holds no quoted strings.)
func indexOutsideComments(s string, c byte) int {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if depth > 0 {
				i++
			}
		case '(':
			depth++
		case ')':
			if depth > 0 {
				depth--
			}
		case c:
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// stripComments is s without its comments, each replaced by a space;
// quoted strings are kept as they are, parentheses in them included.
func stripComments(s string) string {
	if strings.IndexByte(s, '(') < 0 {
		return s
	}
	var b strings.Builder
	depth, quoted := 0, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case depth == 0 && quoted:
			b.WriteByte(c)
			if c == '\\' && i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			} else if c == '"' {
				quoted = false
			}
		case c == '\\' && depth > 0:
			i++
		case c == '(':
			if depth == 0 {
				b.WriteByte(' ')
			}
			depth++
		case c == ')' && depth > 0:
			depth--
		case depth == 0:
			quoted = c == '"'
			b.WriteByte(c)
		}
	}
	return b.String()
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
	phrase = stripComments(phrase)
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
		default:
			word(c)
		}
	}
	return b.String()
}
