package mime

import "strings"

// The address fields as Dovecot 2.3's IMAP SEARCH sees them. FROM, TO, CC
// and BCC do not search the field as written: index-search.c
// (search_header_arg, SEARCH_HEADER_ADDRESS) parses it with
// message_address_parse(..., MESSAGE_ADDRESS_PARSE_FLAG_FILL_MISSING),
// writes the result back with message_address_write, and searches that
// string, encoded words decoded. Dovecot's parser salvages what it can of
// a broken field and writes placeholders for what is missing
// ("MISSING_MAILBOX", "MISSING_DOMAIN", "SYNTAX_ERROR", "INVALID_ROUTE"),
// and those are searchable: FROM "missing_domain" finds `From: alice`.
//
// dovecotAddresses is a port of that parser (src/lib-mail/message-address.c
// and the parts of rfc822-parser.c it calls) and of the writer, branch for
// branch, so that mailvault answers what Dovecot answers on any field,
// valid or not (issue 13: the generated queries found 95 of 1,396 spam-2
// messages whose fields net/mail calls invalid; an earlier approximation
// of the salvage answered some of them differently). Comments name the C
// function each Go function follows. Where the C code reads the byte at
// the end of the input (its NUL terminator), at() returns 0.

type addrParser struct {
	data        string
	pos         int
	lastComment *strings.Builder // nil: comments are not kept
}

// dovecotAddr is struct message_address; nil strings are the C NULLs.
type dovecotAddr struct {
	name, route, mailbox, domain *string
	invalid                      bool
}

func sp(s string) *string { return &s }

func (p *addrParser) at() byte {
	if p.pos < len(p.data) {
		return p.data[p.pos]
	}
	return 0
}

func (p *addrParser) more() bool { return p.pos < len(p.data) }

// rfc822AtextChars is rfc822_atext_chars: atext, and every 8-bit byte.
func isDovecotAtext(c byte) bool {
	if c >= 0x80 {
		return true
	}
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// skipComment is rfc822_skip_comment.
func (p *addrParser) skipComment() int {
	if p.lastComment != nil {
		p.lastComment.Reset()
	}
	level := 1
	p.pos++
	start := p.pos
	for ; p.pos < len(p.data); p.pos++ {
		switch p.data[p.pos] {
		case 0:
			if p.lastComment != nil {
				p.lastComment.WriteString(p.data[start:p.pos])
				p.lastComment.WriteString("\uFFFD")
				start = p.pos + 1
			}
		case '(':
			level++
		case ')':
			level--
			if level == 0 {
				if p.lastComment != nil {
					p.lastComment.WriteString(p.data[start:p.pos])
				}
				p.pos++
				return boolInt(p.more())
			}
		case '\n':
			if p.lastComment == nil {
				break
			}
			seg := p.data[start:p.pos]
			seg = strings.TrimSuffix(seg, "\r")
			p.lastComment.WriteString(seg)
			start = p.pos + 1
		case '\\':
			p.pos++
			if p.pos >= len(p.data) {
				return -1
			}
			if c := p.data[p.pos]; c == '\r' || c == '\n' || c == 0 {
				p.pos--
				break
			}
			if p.lastComment != nil {
				p.lastComment.WriteString(p.data[start : p.pos-1])
			}
			start = p.pos
		}
	}
	return -1
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// skipLWSP is rfc822_skip_lwsp: blanks, line ends and comments.
func (p *addrParser) skipLWSP() int {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\r', '\n':
			p.pos++
			continue
		}
		if p.data[p.pos] != '(' {
			break
		}
		if p.skipComment() < 0 {
			return -1
		}
	}
	return boolInt(p.more())
}

// parseAtom is rfc822_parse_atom.
func (p *addrParser) parseAtom(str *strings.Builder) int {
	if !p.more() || !isDovecotAtext(p.at()) {
		return -1
	}
	start := p.pos
	for p.pos++; p.pos < len(p.data); p.pos++ {
		if isDovecotAtext(p.data[p.pos]) {
			continue
		}
		str.WriteString(p.data[start:p.pos])
		return p.skipLWSP()
	}
	str.WriteString(p.data[start:p.pos])
	return 0
}

// parseDotAtom is rfc822_parse_dot_atom (blanks allowed around dots).
func (p *addrParser) parseDotAtom(str *strings.Builder) int {
	if !p.more() || !isDovecotAtext(p.at()) {
		return -1
	}
	start := p.pos
	for p.pos++; p.pos < len(p.data); {
		if isDovecotAtext(p.data[p.pos]) {
			p.pos++
			continue
		}
		if start == p.pos {
			return -1
		}
		str.WriteString(p.data[start:p.pos])
		if ret := p.skipLWSP(); ret <= 0 {
			return ret
		}
		if p.at() != '.' {
			return 1
		}
		p.pos++
		str.WriteByte('.')
		if p.skipLWSP() <= 0 {
			return -1
		}
		start = p.pos
	}
	str.WriteString(p.data[start:p.pos])
	return 0
}

// parseQuotedString is rfc822_parse_quoted_string (at the opening quote).
func (p *addrParser) parseQuotedString(str *strings.Builder) int {
	p.pos++
	start := p.pos
	for ; p.pos < len(p.data); p.pos++ {
		switch p.data[p.pos] {
		case 0:
			str.WriteString(p.data[start:p.pos])
			str.WriteString("\uFFFD")
			start = p.pos + 1
		case '"':
			str.WriteString(p.data[start:p.pos])
			p.pos++
			return p.skipLWSP()
		case '\n':
			str.WriteString(strings.TrimSuffix(p.data[start:p.pos], "\r"))
			start = p.pos + 1
		case '\\':
			p.pos++
			if p.pos >= len(p.data) {
				return -1
			}
			if c := p.data[p.pos]; c == '\r' || c == '\n' || c == 0 {
				p.pos--
				break
			}
			str.WriteString(p.data[start : p.pos-1])
			start = p.pos
		}
	}
	return -1
}

// parseAtomOrDot is rfc822_parse_atom_or_dot: possibly empty.
func (p *addrParser) parseAtomOrDot(str *strings.Builder) int {
	start := p.pos
	for ; p.pos < len(p.data); p.pos++ {
		if c := p.data[p.pos]; isDovecotAtext(c) || c == '.' {
			continue
		}
		str.WriteString(p.data[start:p.pos])
		return p.skipLWSP()
	}
	str.WriteString(p.data[start:p.pos])
	return 0
}

// parsePhrase is rfc822_parse_phrase: words joined by one space.
func (p *addrParser) parsePhrase(str *strings.Builder) int {
	if !p.more() {
		return 0
	}
	if p.at() == '.' {
		return -1
	}
	for {
		var ret int
		if p.at() == '"' {
			ret = p.parseQuotedString(str)
		} else {
			ret = p.parseAtomOrDot(str)
		}
		if ret <= 0 {
			return ret
		}
		if c := p.at(); !isDovecotAtext(c) && c != '"' && c != '.' {
			break
		}
		str.WriteByte(' ')
	}
	return p.skipLWSP()
}

// parseDomainLiteral is rfc822_parse_domain_literal (brackets and
// backslashes kept).
func (p *addrParser) parseDomainLiteral(str *strings.Builder) int {
	start := p.pos
	for p.pos++; p.pos < len(p.data); p.pos++ {
		switch p.data[p.pos] {
		case 0:
			str.WriteString(p.data[start:p.pos])
			str.WriteString("\uFFFD")
			start = p.pos + 1
		case '[':
			return -1
		case ']':
			str.WriteString(p.data[start : p.pos+1])
			p.pos++
			return p.skipLWSP()
		case '\n':
			str.WriteString(strings.TrimSuffix(p.data[start:p.pos], "\r"))
			start = p.pos + 1
		case '\\':
			p.pos++
			if p.pos >= len(p.data) {
				return -1
			}
			if c := p.data[p.pos]; c == '\r' || c == '\n' || c == 0 {
				str.WriteString(p.data[start:p.pos])
				start = p.pos
				p.pos--
			}
		}
	}
	return -1
}

// parseDomain is rfc822_parse_domain (at the "@").
func (p *addrParser) parseDomain(str *strings.Builder) int {
	p.pos++
	if p.skipLWSP() <= 0 {
		return -1
	}
	if p.at() == '[' {
		return p.parseDomainLiteral(str)
	}
	return p.parseDotAtom(str)
}

// addrParse is struct message_address_parser_context.
type addrParse struct {
	p    addrParser
	out  []dovecotAddr
	addr dovecotAddr
	str  strings.Builder
}

func (c *addrParse) add() {
	c.out = append(c.out, c.addr)
	c.addr = dovecotAddr{}
}

// parseNonstrictDotAtom is parse_nonstrict_dot_atom.
func (c *addrParse) parseNonstrictDotAtom() int {
	ret := -1
	for {
		for c.p.at() == '.' {
			c.str.WriteByte('.')
			c.p.pos++
			if !c.p.more() {
				return 0
			}
			ret = 1
		}
		if c.p.at() == '@' {
			break
		}
		ret = c.p.parseAtom(&c.str)
		if ret <= 0 || c.p.at() != '.' {
			break
		}
	}
	return ret
}

// parseLocalPart is parse_local_part.
func (c *addrParse) parseLocalPart() int {
	c.str.Reset()
	var ret int
	if c.p.at() == '"' {
		ret = c.p.parseQuotedString(&c.str)
	} else {
		ret = c.parseNonstrictDotAtom()
	}
	if ret < 0 {
		return -1
	}
	c.addr.mailbox = sp(c.str.String())
	return ret
}

// parseDomain is parse_domain.
func (c *addrParse) parseDomain() int {
	c.str.Reset()
	ret := c.p.parseDomain(&c.str)
	if ret < 0 {
		return -1
	}
	c.addr.domain = sp(c.str.String())
	return ret
}

// parseDomainList is parse_domain_list (a route).
func (c *addrParse) parseDomainList() int {
	c.str.Reset()
	for {
		if !c.p.more() {
			return 0
		}
		if c.p.at() != '@' {
			break
		}
		if c.str.Len() > 0 {
			c.str.WriteByte(',')
		}
		c.str.WriteByte('@')
		if ret := c.p.parseDomain(&c.str); ret <= 0 {
			return ret
		}
		for c.p.skipLWSP() > 0 && c.p.at() == ',' {
			c.p.pos++
		}
	}
	c.addr.route = sp(c.str.String())
	return 1
}

// parseAngleAddr is parse_angle_addr (not parsing a path).
func (c *addrParse) parseAngleAddr() int {
	c.p.pos++
	if c.p.skipLWSP() <= 0 {
		return -1
	}
	if c.p.at() == '@' {
		if c.parseDomainList() > 0 && c.p.at() == ':' {
			c.p.pos++
		} else {
			c.addr.route = sp("INVALID_ROUTE")
			if !c.p.more() {
				return -1
			}
		}
		if c.p.skipLWSP() <= 0 {
			return -1
		}
	}
	if c.p.at() != '>' {
		if c.parseLocalPart() <= 0 {
			return -1
		}
		if c.p.at() == '@' {
			if c.parseDomain() <= 0 {
				return -1
			}
		}
	}
	if c.p.at() != '>' {
		return -1
	}
	c.p.pos++
	return c.p.skipLWSP()
}

// parseNameAddr is parse_name_addr.
func (c *addrParse) parseNameAddr() int {
	c.str.Reset()
	if c.p.parsePhrase(&c.str) <= 0 || c.p.at() != '<' {
		return -1
	}
	c.addr.name = sp(c.str.String())
	if *c.addr.name == "" {
		c.addr.name = nil
	}
	if c.parseAngleAddr() < 0 {
		c.addr.domain = sp("SYNTAX_ERROR")
		c.addr.invalid = true
	}
	return boolInt(c.p.more())
}

// parseAddrSpec is parse_addr_spec.
func (c *addrParse) parseAddrSpec() int {
	ret2 := -2
	if c.p.lastComment != nil {
		c.p.lastComment.Reset()
	}
	quoted := c.p.at() == '"'
	ret := c.parseLocalPart()
	if ret <= 0 {
		c.addr.invalid = true
	}
	if ret != 0 && c.p.more() && c.p.at() == '@' {
		ret2 = c.parseDomain()
		if ret2 <= 0 {
			ret = ret2
		}
	}
	if c.p.lastComment != nil && c.p.lastComment.Len() > 0 {
		c.addr.name = sp(c.p.lastComment.String())
	} else if ret2 == -2 {
		// A user without @domain and without a comment: a mailbox if
		// alone, else the start of a display name.
		c.str.WriteByte(' ')
		n := c.str.Len()
		c.p.parsePhrase(&c.str)
		if c.str.Len() != n {
			c.addr.mailbox = nil
			c.addr.name = sp(c.str.String())
		} else if !quoted {
			c.addr.domain = sp("")
		}
		c.addr.invalid = true
		ret = -1
	}
	return ret
}

// addFixed is add_fixed_address with fill_missing.
func (c *addrParse) addFixed() {
	if c.addr.mailbox == nil {
		c.addr.mailbox = sp("MISSING_MAILBOX")
		c.addr.invalid = true
	}
	if c.addr.domain == nil || *c.addr.domain == "" {
		c.addr.domain = sp("MISSING_DOMAIN")
		c.addr.invalid = true
	}
	c.add()
}

// parseMailbox is parse_mailbox.
func (c *addrParse) parseMailbox() int {
	start := c.p.pos
	ret := c.parseNameAddr()
	if ret < 0 {
		c.p.pos = start
		ret = c.parseAddrSpec()
		if c.addr.invalid && c.addr.name == nil && c.addr.mailbox != nil && c.addr.domain == nil {
			c.addr.name, c.addr.mailbox = c.addr.mailbox, nil
		}
	}
	if ret < 0 {
		c.addr.invalid = true
	}
	c.addFixed()
	return ret
}

// parseGroup is parse_group.
func (c *addrParse) parseGroup() int {
	c.str.Reset()
	if c.p.parsePhrase(&c.str) <= 0 || c.p.at() != ':' {
		return -1
	}
	c.p.pos++
	ret := c.p.skipLWSP()
	if ret <= 0 {
		c.addr.invalid = true
	}
	c.addr.mailbox = sp(c.str.String())
	c.add()
	if ret > 0 && c.p.at() != ';' {
		for {
			c.parseMailbox()
			if !c.p.more() || c.p.at() != ',' {
				break
			}
			c.p.pos++
			if c.p.skipLWSP() <= 0 {
				ret = -1
				break
			}
		}
	}
	if ret >= 0 {
		if !c.p.more() || c.p.at() != ';' {
			ret = -1
		} else {
			c.p.pos++
			ret = c.p.skipLWSP()
		}
	}
	if ret < 0 {
		c.addr.invalid = true
	}
	c.add()
	if ret == 0 {
		return 0
	}
	return 1
}

// parseAddress is parse_address.
func (c *addrParse) parseAddress() int {
	start := c.p.pos
	ret := c.parseGroup()
	if ret < 0 {
		c.p.pos = start
		ret = c.parseMailbox()
	}
	return ret
}

// parseAddressList is parse_address_list.
func (c *addrParse) parseAddressList() {
	for {
		if c.parseAddress() == 0 {
			break
		}
		if !c.p.more() || c.p.at() != ',' {
			break
		}
		c.p.pos++
		if ret := c.p.skipLWSP(); ret <= 0 {
			if ret < 0 {
				c.addFixed()
			}
			break
		}
	}
}

// dovecotParseAddresses is message_address_parse with FILL_MISSING.
func dovecotParseAddresses(value string) []dovecotAddr {
	c := &addrParse{p: addrParser{data: value, lastComment: &strings.Builder{}}}
	if c.p.skipLWSP() > 0 {
		c.parseAddressList()
	}
	return c.out
}

// dovecotWriteAddresses is message_address_write.
func dovecotWriteAddresses(addrs []dovecotAddr) string {
	var b strings.Builder
	if len(addrs) == 0 {
		return ""
	}
	if addrs[0].mailbox == nil && addrs[0].domain == nil {
		return "<>"
	}
	first, inGroup := true, false
	for _, a := range addrs {
		if first {
			first = false
		} else {
			b.WriteString(", ")
		}
		if a.domain == nil {
			if !inGroup {
				switch {
				case a.mailbox != nil && *a.mailbox != "" && strings.Contains(*a.mailbox, "=?"):
					b.WriteString(*a.mailbox)
				case a.mailbox != nil && *a.mailbox != "":
					appendMaybeEscape(&b, *a.mailbox, true)
				default:
					b.WriteString(`""`)
				}
				b.WriteString(": ")
				first = true
			} else {
				s := b.String()
				switch {
				case strings.HasSuffix(s, ", "):
					s = s[:len(s)-2]
				case strings.HasSuffix(s, ": "):
					s = s[:len(s)-1]
				}
				b.Reset()
				b.WriteString(s)
				b.WriteByte(';')
			}
			inGroup = !inGroup
			continue
		}
		if a.name != nil {
			if strings.Contains(*a.name, "=?") {
				b.WriteString(*a.name)
			} else {
				appendMaybeEscape(&b, *a.name, true)
			}
		}
		mailbox := ""
		if a.mailbox != nil {
			mailbox = *a.mailbox
		}
		if a.route != nil || mailbox != "" || *a.domain != "" {
			if a.name != nil && *a.name != "" {
				b.WriteByte(' ')
			}
			b.WriteByte('<')
			if a.route != nil {
				b.WriteString(*a.route)
				b.WriteByte(':')
			}
			if mailbox == "" {
				b.WriteString(`""`)
			} else {
				appendMaybeEscape(&b, mailbox, false)
			}
			if *a.domain != "" {
				b.WriteByte('@')
				b.WriteString(*a.domain)
			}
			b.WriteByte('>')
		}
	}
	return b.String()
}

// appendMaybeEscape is str_append_maybe_escape: quoted when not all atext
// (dots allowed unless escapeDot), with \ " and ' escaped.
func appendMaybeEscape(b *strings.Builder, s string, escapeDot bool) {
	plain := true
	for i := 0; i < len(s); i++ {
		if !isDovecotAtext(s[i]) && (escapeDot || s[i] != '.') {
			plain = false
			break
		}
	}
	if plain {
		b.WriteString(s)
		return
	}
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' || c == '\'' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
}
