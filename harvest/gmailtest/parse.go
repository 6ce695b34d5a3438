package gmailtest

import (
	"fmt"
	"strconv"
	"strings"
)

// parser reads the arguments of one command: the bytes the client sent,
// literals included ("{n}" CRLF and n bytes, as assembled by readCommand).
// Its x-prefixed helpers panic with a parseError, which the command loop
// turns into "tag BAD"; no panic leaves the package.
type parser struct {
	b   []byte
	pos int
}

// parseError is the panic value of the x-helpers.
type parseError string

func (p *parser) xerrorf(format string, args ...any) {
	panic(parseError(fmt.Sprintf(format, args...) + fmt.Sprintf(" (at offset %d)", p.pos)))
}

func (p *parser) empty() bool { return p.pos >= len(p.b) }

func (p *parser) peek() byte {
	if p.empty() {
		return 0
	}
	return p.b[p.pos]
}

func (p *parser) take(c byte) bool {
	if p.peek() == c && !p.empty() {
		p.pos++
		return true
	}
	return false
}

func (p *parser) xtake(c byte) {
	if !p.take(c) {
		p.xerrorf("expected %q", c)
	}
}

func (p *parser) xsp() { p.xtake(' ') }

// xend fails unless every byte has been read.
func (p *parser) xend() {
	if !p.empty() {
		p.xerrorf("unexpected %q", p.rest(16))
	}
}

func (p *parser) rest(n int) string {
	r := p.b[p.pos:]
	if len(r) > n {
		r = r[:n]
	}
	return string(r)
}

// takeFold takes s, ignoring ASCII case.
func (p *parser) takeFold(s string) bool {
	if len(p.b)-p.pos >= len(s) && strings.EqualFold(string(p.b[p.pos:p.pos+len(s)]), s) {
		p.pos += len(s)
		return true
	}
	return false
}

// isAtomChar is RFC 3501's ATOM-CHAR: any CHAR but atom-specials.
func isAtomChar(c byte) bool {
	if c <= 0x1f || c >= 0x7f {
		return false
	}
	switch c {
	case '(', ')', '{', ' ', '%', '*', '"', '\\', ']':
		return false
	}
	return true
}

// isAstringChar is ASTRING-CHAR: ATOM-CHAR or "]".
func isAstringChar(c byte) bool { return isAtomChar(c) || c == ']' }

func (p *parser) xatom() string {
	start := p.pos
	for !p.empty() && isAtomChar(p.peek()) {
		p.pos++
	}
	if p.pos == start {
		p.xerrorf("expected an atom")
	}
	return string(p.b[start:p.pos])
}

// xastring reads an atom of ASTRING-CHARs, a quoted string or a literal.
func (p *parser) xastring() string {
	switch p.peek() {
	case '"', '{':
		return p.xstring()
	}
	start := p.pos
	for !p.empty() && isAstringChar(p.peek()) {
		p.pos++
	}
	if p.pos == start {
		p.xerrorf("expected an astring")
	}
	return string(p.b[start:p.pos])
}

// xstring reads a quoted string or a literal.
func (p *parser) xstring() string {
	if p.take('"') {
		var b strings.Builder
		for {
			if p.empty() {
				p.xerrorf("unterminated quoted string")
			}
			c := p.b[p.pos]
			p.pos++
			switch {
			case c == '"':
				return b.String()
			case c == '\\':
				e := p.peek()
				if e != '"' && e != '\\' {
					p.xerrorf("bad escape in quoted string")
				}
				p.pos++
				b.WriteByte(e)
			case c == 0 || c == '\r' || c == '\n' || c >= 0x80:
				p.pos--
				p.xerrorf("byte %#x in a quoted string (send a literal)", c)
			default:
				b.WriteByte(c)
			}
		}
	}
	if !p.take('{') {
		p.xerrorf("expected a string")
	}
	n := p.xnumber()
	p.take('+')
	p.xtake('}')
	p.xtake('\r')
	p.xtake('\n')
	if uint64(len(p.b)-p.pos) < uint64(n) {
		p.xerrorf("literal of %d bytes cut short", n)
	}
	s := string(p.b[p.pos : p.pos+int(n)])
	p.pos += int(n)
	return s
}

// xnstring reads a string or NIL (nil = false).
func (p *parser) xnstring() (string, bool) {
	if p.takeFold("NIL") {
		return "", false
	}
	return p.xstring(), true
}

func (p *parser) digits() string {
	start := p.pos
	for !p.empty() && p.peek() >= '0' && p.peek() <= '9' {
		p.pos++
	}
	if p.pos == start {
		p.xerrorf("expected a number")
	}
	return string(p.b[start:p.pos])
}

// xnumber reads a 32-bit unsigned number.
func (p *parser) xnumber() uint32 {
	n, err := strconv.ParseUint(p.digits(), 10, 32)
	if err != nil {
		p.xerrorf("number out of range")
	}
	return uint32(n)
}

// xnumber64 reads a 64-bit unsigned number (X-GM-MSGID, X-GM-THRID).
func (p *parser) xnumber64() uint64 {
	n, err := strconv.ParseUint(p.digits(), 10, 64)
	if err != nil {
		p.xerrorf("number out of range")
	}
	return n
}

// numRange is one element of a sequence set; 0 stands for "*".
type numRange struct{ a, b uint32 }

type numSet []numRange

func (p *parser) xseqNumber() uint32 {
	if p.take('*') {
		return 0
	}
	n := p.xnumber()
	if n == 0 {
		p.xerrorf("0 in a sequence set")
	}
	return n
}

// xnumSet reads RFC 3501's sequence-set (no "$": SEARCHRES is not offered).
func (p *parser) xnumSet() numSet {
	var set numSet
	for {
		a := p.xseqNumber()
		b := a
		if p.take(':') {
			b = p.xseqNumber()
		}
		set = append(set, numRange{a, b})
		if !p.take(',') {
			return set
		}
	}
}

// xflag reads a flag: "\" atom or a keyword atom.
func (p *parser) xflag() string {
	if p.take('\\') {
		return `\` + p.xatom()
	}
	return p.xatom()
}

// xflags reads a parenthesised flag list, or flags separated by spaces up to
// the end (RFC 3501's store-att-flags allows both).
func (p *parser) xflags() []string {
	var flags []string
	if p.take('(') {
		for !p.take(')') {
			if len(flags) > 0 {
				p.xsp()
			}
			flags = append(flags, p.xflag())
		}
		return flags
	}
	for {
		flags = append(flags, p.xflag())
		if !p.take(' ') {
			return flags
		}
	}
}

// xlabel reads one X-GM-LABELS element: a system label written as a flag
// (\Inbox) or an astring.
func (p *parser) xlabel() string {
	if p.take('\\') {
		return `\` + p.xatom()
	}
	return p.xastring()
}

// xlabels reads a parenthesised label list or a single label.
func (p *parser) xlabels() []string {
	if !p.take('(') {
		return []string{p.xlabel()}
	}
	var labels []string
	for !p.take(')') {
		if len(labels) > 0 {
			p.xsp()
		}
		labels = append(labels, p.xlabel())
	}
	return labels
}

// xlistMailbox reads LIST's list-mailbox: a string, or list-chars (ATOM-CHAR,
// "%", "*", "]").
func (p *parser) xlistMailbox() string {
	switch p.peek() {
	case '"', '{':
		return p.xstring()
	}
	start := p.pos
	for !p.empty() && (isAstringChar(p.peek()) || p.peek() == '%' || p.peek() == '*') {
		p.pos++
	}
	if p.pos == start {
		p.xerrorf("expected a mailbox pattern")
	}
	return string(p.b[start:p.pos])
}

// xmailbox reads a mailbox name and decodes it (INBOX in any case is INBOX).
func (p *parser) xmailbox() string {
	s := p.xastring()
	name, err := utf7Decode(s)
	if err != nil {
		p.xerrorf("mailbox %q: %v", s, err)
	}
	if strings.EqualFold(name, Inbox) {
		return Inbox
	}
	return name
}

// xfetchAtt reads one fetch attribute and returns it upper-cased:
// "BODY.PEEK[]", "X-GM-LABELS", or whatever the client wrote, such as
// "BODY[HEADER]<0.10>", for the caller to refuse.
func (p *parser) xfetchAtt() string {
	start := p.pos
	for !p.empty() && isAtomChar(p.peek()) {
		p.pos++
	}
	if strings.Contains(string(p.b[start:p.pos]), "[") && p.take(']') {
		for !p.empty() && isAtomChar(p.peek()) {
			p.pos++
		}
	}
	if p.pos == start {
		p.xerrorf("expected a fetch item")
	}
	return strings.ToUpper(string(p.b[start:p.pos]))
}
