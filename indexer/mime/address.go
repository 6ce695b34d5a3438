package mime

import (
	"strings"
)

// parseAddressList parses an RFC 5322 address list from s (unfolded, valid
// UTF-8, encoded words not yet decoded). It never fails: each mailbox is
// salvaged as well as it can be, and ok is false when one had to be.
// Group names are dropped and group members kept.
func (p *parser) parseAddressList(s, where string) (list []Address, ok bool) {
	ok = true
	var mb mailbox
	for i := 0; i < len(s); {
		c := s[i]
		switch c {
		case ' ', '\t', '\r', '\n':
			mb.space = true
			i++
		case '"':
			q, next, closed := quotedString(s, i)
			if !closed {
				// Read on as if the stray quote were not there.
				ok = false
				i++
				continue
			}
			mb.word(q, true)
			i = next
		case '(':
			var cm string
			var closed bool
			cm, i, closed = comment(s, i)
			if !closed {
				ok = false
			}
			if mb.comment == "" {
				mb.comment = trimWSP(cm)
			}
			mb.space = true
		case '<':
			// The address ends at ">"; a "," first means it is
			// unterminated: "<a@b, c <d@e>".
			j := i + 1
			for j < len(s) && s[j] != '>' && s[j] != ',' {
				j++
			}
			a := s[i+1 : j]
			if j < len(s) && s[j] == '>' {
				i = j + 1
			} else {
				ok = false
				i = j
			}
			if mb.angle {
				ok = false
			} else {
				mb.angle, mb.addr = true, a
			}
			mb.space = true
		case ',', ';':
			if !p.flushMailbox(&mb, &list, where) {
				ok = false
			}
			i++
		case ':':
			// "group: a, b;" — drop the group name, unless the colon sits
			// in an address.
			if !mb.angle && len(mb.words) > 0 && !mb.hasAt() {
				mb = mailbox{}
			} else {
				mb.word(":", false)
			}
			i++
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\r\n\"(<,;:", rune(s[j])) {
				j++
			}
			mb.word(s[i:j], false)
			i = j
		}
	}
	if !p.flushMailbox(&mb, &list, where) {
		ok = false
	}
	return list, ok
}

// mailbox collects the tokens of one mailbox.
type mailbox struct {
	words   []string // phrase words and, without angle brackets, addr-spec parts
	quoted  []bool
	glued   []bool // the word directly follows the previous one, no blank between
	space   bool   // a blank was seen since the last word
	angle   bool
	addr    string
	comment string
}

func (mb *mailbox) word(w string, quoted bool) {
	mb.glued = append(mb.glued, len(mb.words) > 0 && !mb.space)
	mb.words = append(mb.words, w)
	mb.quoted = append(mb.quoted, quoted)
	mb.space = false
}

func (mb *mailbox) hasAt() bool {
	for k, w := range mb.words {
		if !mb.quoted[k] && strings.IndexByte(w, '@') >= 0 {
			return true
		}
	}
	return false
}

// flushMailbox turns the collected tokens into an Address appended to list
// and resets mb. It returns false when the mailbox was malformed.
func (p *parser) flushMailbox(mb *mailbox, list *[]Address, where string) bool {
	defer func() { *mb = mailbox{} }()
	if !mb.angle && len(mb.words) == 0 {
		if mb.comment != "" {
			*list = append(*list, Address{Name: p.decodeWords(mb.comment, where)})
			return false
		}
		return true // empty element: ",," or a trailing comma
	}
	if mb.angle {
		a := Address{Addr: cleanAddr(mb.addr)}
		a.Name = p.phrase(where, mb.words, mb.quoted, 0, len(mb.words))
		if a.Name == "" && mb.comment != "" {
			a.Name = p.decodeWords(mb.comment, where)
		}
		if a.Addr == "" && a.Name == "" {
			return mb.addr == "" // "<>" is the null address
		}
		*list = append(*list, a)
		return strings.IndexByte(a.Addr, '@') > 0 || a.Addr == "" && mb.addr == ""
	}
	// No angle brackets: an addr-spec, possibly glued from several tokens
	// ("john.doe"@example.com), with the name in a comment.
	at := -1
	for k, w := range mb.words {
		if !mb.quoted[k] && strings.IndexByte(w, '@') >= 0 {
			at = k
			break
		}
	}
	if at < 0 {
		*list = append(*list, Address{Name: p.phrase(where, mb.words, mb.quoted, 0, len(mb.words))})
		return false
	}
	from, to := at, at+1
	for from > 0 && mb.glued[from] {
		from--
	}
	for to < len(mb.words) && mb.glued[to] {
		to++
	}
	var addr strings.Builder
	for k := from; k < to; k++ {
		if mb.quoted[k] {
			addr.WriteByte('"')
			addr.WriteString(mb.words[k])
			addr.WriteByte('"')
		} else {
			addr.WriteString(mb.words[k])
		}
	}
	a := Address{Addr: cleanAddr(addr.String())}
	name := p.phrase(where, mb.words, mb.quoted, 0, from)
	if after := p.phrase(where, mb.words, mb.quoted, to, len(mb.words)); after != "" {
		if name != "" {
			name += " "
		}
		name += after
	}
	good := name == "" && strings.IndexByte(a.Addr, '@') > 0
	if name == "" && mb.comment != "" {
		name = p.decodeWords(mb.comment, where)
	}
	a.Name = name
	*list = append(*list, a)
	return good
}

// phrase joins words[from:to] with single blanks and decodes encoded words,
// also inside quoted strings.
func (p *parser) phrase(where string, words []string, quoted []bool, from, to int) string {
	if from >= to {
		return ""
	}
	if to-from == 1 {
		return trimWSP(p.decodeWords(words[from], where))
	}
	var b strings.Builder
	for k := from; k < to; k++ {
		if k > from {
			b.WriteByte(' ')
		}
		b.WriteString(words[k])
	}
	return trimWSP(p.decodeWords(b.String(), where))
}

// cleanAddr removes blanks and an obsolete source route ("@a,@b:x@y").
func cleanAddr(a string) string {
	a = trimWSP(a)
	if strings.HasPrefix(a, "@") {
		if i := strings.IndexByte(a, ':'); i >= 0 {
			a = a[i+1:]
		}
	}
	if strings.ContainsAny(a, " \t\r\n") {
		a = strings.Map(func(r rune) rune {
			if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
				return -1
			}
			return r
		}, a)
	}
	return strings.TrimPrefix(strings.TrimSuffix(a, ">"), "<")
}

// comment reads a possibly nested comment starting at s[i] == '('.
func comment(s string, i int) (string, int, bool) {
	depth := 0
	start := i + 1
	for ; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return s[start:i], i + 1, true
			}
		}
	}
	return s[start:], len(s), false
}
