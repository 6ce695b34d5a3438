package query

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// This file parses IMAP SEARCH criteria (RFC 9051 §6.4.4, with the RFC 3501
// keys) into the AST the human syntax produces, so that one planner answers
// both. What a key means for an archive, where that differs from a server
// session, is in the package doc.

// Header matches messages whose top-level header has a field Name whose
// decoded value contains Value as a case-insensitive substring (IMAP
// HEADER); an empty Value tests that the field is present.
type Header struct {
	Name  string
	Value string
}

// Flag matches occurrences that have the flag or keyword Name (`\Seen`,
// `$Forwarded`, ...). System flags are compared case-insensitively,
// keywords too, as servers do.
type Flag struct{ Name string }

// UIDRange is Start:Stop of UIDs or sequence numbers, both inclusive, in
// either order; 0 stands for "*", the largest number in use.
type UIDRange struct{ Start, Stop uint32 }

// UIDs matches occurrences whose UID is in Set (IMAP UID set).
type UIDs struct{ Set []UIDRange }

// Seqs matches occurrences by message sequence number (IMAP sequence set):
// the position, counting from 1, of the occurrence among the mailbox's
// messages that are still on the server (not expunged), in UID order. That
// is the number a server session that had just selected the mailbox would
// use, as of the archive's last sync.
type Seqs struct{ Set []UIDRange }

// Recent matches occurrences with the session flag \Recent. An archive has
// no session: it matches nothing (see the package doc).
type Recent struct{}

func (Header) node() {}
func (Flag) node()   {}
func (UIDs) node()   {}
func (Seqs) node()   {}
func (Recent) node() {}

func (n Header) String() string { return "HEADER " + imapString(n.Name) + " " + imapString(n.Value) }

// String prints the human syntax's is: term for the flags it has
// (is:read, is:flagged, is:answered; see humanFlags) and the IMAP form
// (DRAFT, KEYWORD $Work), which does not parse as human syntax, otherwise.
func (n Flag) String() string {
	for name, f := range humanFlags {
		if f.flag == n.Name && !f.without {
			return "is:" + name
		}
	}
	return imapFlag(n)
}

func imapFlag(n Flag) string {
	switch strings.ToLower(n.Name) {
	case `\answered`, `\deleted`, `\draft`, `\flagged`, `\seen`:
		return strings.ToUpper(n.Name[1:])
	}
	return "KEYWORD " + n.Name
}
func (n UIDs) String() string   { return "UID " + setString(n.Set) }
func (n Seqs) String() string   { return setString(n.Set) }
func (n Recent) String() string { return "RECENT" }

func setString(set []UIDRange) string {
	num := func(n uint32) string {
		if n == 0 {
			return "*"
		}
		return strconv.FormatUint(uint64(n), 10)
	}
	parts := make([]string, len(set))
	for i, r := range set {
		if r.Start == r.Stop {
			parts[i] = num(r.Start)
		} else {
			parts[i] = num(r.Start) + ":" + num(r.Stop)
		}
	}
	return strings.Join(parts, ",")
}

// imapString writes s as an IMAP atom when it can be one, else quoted.
func imapString(s string) string {
	if s != "" && !strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r >= 0x7f || strings.ContainsRune(`(){%*"\]`, r) }) {
		return s
	}
	return strconv.Quote(s)
}

// imapParser is the state of one ParseIMAP.
type imapParser struct {
	q     string
	pos   int
	depth int
}

// ParseIMAP parses IMAP SEARCH criteria, optionally starting with CHARSET
// (UTF-8 and US-ASCII are accepted): the part of a `UID SEARCH` command
// after the command name. Keys are case-insensitive; strings are atoms,
// quoted strings or literals ({n} then CRLF or LF, then n bytes). The
// result is a tree of And, Or, Not, Text (MatchSubstring), Header, Flag,
// Date, Size, UIDs, Seqs, Recent and All.
func ParseIMAP(q string) (n Node, err error) {
	p := &imapParser{q: q}
	defer func() {
		if r := recover(); r != nil {
			pe, ok := r.(*ParseError)
			if !ok {
				panic(r)
			}
			n, err = nil, pe
		}
	}()
	p.space()
	if p.peekKeyword("CHARSET") {
		p.keyword()
		p.sp()
		at := p.pos
		cs := strings.ToUpper(p.astring("CHARSET"))
		switch cs {
		case "UTF-8", "UTF8", "US-ASCII", "ASCII":
		default:
			p.errorf(at, "[BADCHARSET (UTF-8 US-ASCII)] charset %q is not supported; send the criteria in UTF-8", cs)
		}
	}
	var keys []Node
	for {
		p.space()
		if p.pos >= len(p.q) {
			break
		}
		keys = append(keys, p.key())
	}
	if len(keys) == 0 {
		p.errorf(p.pos, "no search criteria (ALL matches every message)")
	}
	if len(keys) == 1 {
		return keys[0], nil
	}
	return And{Nodes: keys}, nil
}

func (p *imapParser) errorf(at int, format string, args ...any) {
	panic(&ParseError{Query: p.q, Offset: at, Msg: fmt.Sprintf(format, args...)})
}

// space skips spaces. IMAP wants exactly one between keys; people typing
// criteria on a command line do not, and nothing is ambiguous.
func (p *imapParser) space() {
	for p.pos < len(p.q) && (p.q[p.pos] == ' ' || p.q[p.pos] == '\t') {
		p.pos++
	}
}

// sp requires at least one space before an argument.
func (p *imapParser) sp() {
	if p.pos >= len(p.q) || (p.q[p.pos] != ' ' && p.q[p.pos] != '\t') {
		return // the argument's own parser reports what is missing
	}
	p.space()
}

func (p *imapParser) peekKeyword(k string) bool {
	end := p.pos
	for end < len(p.q) && isAtomChar(p.q[end]) {
		end++
	}
	return strings.EqualFold(p.q[p.pos:end], k)
}

// keyword reads an atom (a search key's name).
func (p *imapParser) keyword() string {
	start := p.pos
	for p.pos < len(p.q) && isAtomChar(p.q[p.pos]) {
		p.pos++
	}
	return p.q[start:p.pos]
}

func isAtomChar(c byte) bool {
	return c > ' ' && c < 0x7f && !strings.ContainsRune(`(){%*"\]`, rune(c))
}

// isAStringChar: ASTRING-CHAR is ATOM-CHAR or "]".
func isAStringChar(c byte) bool { return isAtomChar(c) || c == ']' }

func (p *imapParser) key() Node {
	start := p.pos
	if p.pos < len(p.q) && p.q[p.pos] == '(' {
		p.depth++
		if p.depth > maxDepth {
			p.errorf(start, "nested deeper than %d", maxDepth)
		}
		p.pos++
		var keys []Node
		for {
			p.space()
			if p.pos >= len(p.q) {
				p.errorf(start, "unclosed parenthesis")
			}
			if p.q[p.pos] == ')' {
				p.pos++
				break
			}
			keys = append(keys, p.key())
		}
		p.depth--
		switch len(keys) {
		case 0:
			p.errorf(start, "empty parentheses: a list needs at least one search key")
		case 1:
			return keys[0]
		}
		return And{Nodes: keys}
	}
	if p.pos < len(p.q) && (p.q[p.pos] >= '0' && p.q[p.pos] <= '9' || p.q[p.pos] == '*') {
		return Seqs{Set: p.set("sequence set")}
	}
	if p.pos < len(p.q) && p.q[p.pos] == '$' {
		p.errorf(start, "$ (the saved result of an earlier SEARCH in a session) is not supported: there is no session")
	}
	if p.pos < len(p.q) && p.q[p.pos] == ')' {
		p.errorf(start, "unexpected )")
	}
	name := p.keyword()
	if name == "" {
		p.errorf(start, "expected a search key, found %q", p.q[start:start+1])
	}
	text := func(f Field) Node {
		p.sp()
		return Text{Field: f, Value: p.astring(strings.ToUpper(name)), Match: MatchSubstring}
	}
	date := func(op DateOp, internal bool) Node {
		p.sp()
		y, m, d := p.date(strings.ToUpper(name))
		return Date{Op: op, Year: y, Month: m, Day: d, Internal: internal}
	}
	flag := func(f string, set bool) Node {
		if set {
			return Flag{Name: f}
		}
		return Not{Node: Flag{Name: f}}
	}
	switch strings.ToUpper(name) {
	case "ALL":
		return All{}
	case "ANSWERED", "UNANSWERED":
		return flag(`\Answered`, !strings.HasPrefix(strings.ToUpper(name), "UN"))
	case "DELETED", "UNDELETED":
		return flag(`\Deleted`, !strings.HasPrefix(strings.ToUpper(name), "UN"))
	case "DRAFT", "UNDRAFT":
		return flag(`\Draft`, !strings.HasPrefix(strings.ToUpper(name), "UN"))
	case "FLAGGED", "UNFLAGGED":
		return flag(`\Flagged`, !strings.HasPrefix(strings.ToUpper(name), "UN"))
	case "SEEN", "UNSEEN":
		return flag(`\Seen`, !strings.HasPrefix(strings.ToUpper(name), "UN"))
	case "KEYWORD", "UNKEYWORD":
		p.sp()
		at := p.pos
		kw := p.keyword()
		if kw == "" || strings.HasPrefix(kw, `\`) {
			p.errorf(at, "%s needs a keyword (an atom such as $Forwarded; system flags have keys of their own)", strings.ToUpper(name))
		}
		return flag(kw, strings.ToUpper(name) == "KEYWORD")
	case "NEW": // RECENT UNSEEN
		return And{Nodes: []Node{Recent{}, Not{Node: Flag{Name: `\Seen`}}}}
	case "OLD":
		return Not{Node: Recent{}}
	case "RECENT":
		return Recent{}
	case "BCC":
		return text(FieldBcc)
	case "CC":
		return text(FieldCc)
	case "FROM":
		return text(FieldFrom)
	case "TO":
		return text(FieldTo)
	case "SUBJECT":
		return text(FieldSubject)
	case "BODY":
		return text(FieldBody)
	case "TEXT":
		return text(FieldText)
	case "HEADER":
		p.sp()
		at := p.pos
		field := p.astring("HEADER")
		if field == "" || strings.ContainsAny(field, ": \t") {
			p.errorf(at, "HEADER needs a field name (like X-Mailer), then a string")
		}
		p.sp()
		return Header{Name: field, Value: p.astring("HEADER " + field)}
	case "BEFORE":
		return date(DateBefore, true)
	case "ON":
		return date(DateOn, true)
	case "SINCE":
		return date(DateSince, true)
	case "SENTBEFORE":
		return date(DateBefore, false)
	case "SENTON":
		return date(DateOn, false)
	case "SENTSINCE":
		return date(DateSince, false)
	case "LARGER", "SMALLER":
		p.sp()
		return Size{Larger: strings.ToUpper(name) == "LARGER", Bytes: int64(p.number(strings.ToUpper(name)))}
	case "UID":
		p.sp()
		return UIDs{Set: p.set("UID set")}
	case "NOT":
		p.sp()
		if p.pos >= len(p.q) {
			p.errorf(p.pos, "NOT needs a search key")
		}
		p.depth++
		if p.depth > maxDepth {
			p.errorf(start, "nested deeper than %d", maxDepth)
		}
		k := p.key()
		p.depth--
		return Not{Node: k}
	case "OR":
		p.depth++
		if p.depth > maxDepth {
			p.errorf(start, "nested deeper than %d", maxDepth)
		}
		var two [2]Node
		for i := range two {
			p.space()
			if p.pos >= len(p.q) || p.q[p.pos] == ')' {
				p.errorf(p.pos, "OR needs two search keys")
			}
			two[i] = p.key()
		}
		p.depth--
		return Or{Nodes: two[:]}
	case "MODSEQ":
		p.errorf(start, "MODSEQ is not supported: the archive does not keep mod-sequences")
	case "CHARSET":
		p.errorf(start, "CHARSET must come first")
	}
	p.errorf(start, "unknown search key %q", name)
	panic("unreachable")
}

// astring reads an atom, a quoted string or a literal, the argument of key.
func (p *imapParser) astring(key string) string {
	if p.pos >= len(p.q) || p.q[p.pos] == ')' {
		p.errorf(p.pos, "%s needs a string", key)
	}
	switch c := p.q[p.pos]; c {
	case '"':
		start := p.pos
		p.pos++
		var b strings.Builder
		for {
			if p.pos >= len(p.q) {
				p.errorf(start, "unterminated quoted string")
			}
			c := p.q[p.pos]
			switch c {
			case '"':
				p.pos++
				return b.String()
			case '\\':
				if p.pos+1 >= len(p.q) || (p.q[p.pos+1] != '"' && p.q[p.pos+1] != '\\') {
					p.errorf(p.pos, `in a quoted string, \ may only escape " and \`)
				}
				b.WriteByte(p.q[p.pos+1])
				p.pos += 2
			case '\r', '\n':
				p.errorf(p.pos, "a quoted string cannot span lines (use a literal)")
			default:
				b.WriteByte(c)
				p.pos++
			}
		}
	case '{':
		start := p.pos
		end := strings.IndexByte(p.q[p.pos:], '}')
		if end < 0 {
			p.errorf(start, "unterminated literal: {n} then CRLF and n bytes")
		}
		spec := strings.TrimSuffix(p.q[p.pos+1:p.pos+end], "+")
		n, err := strconv.ParseUint(spec, 10, 31)
		if err != nil {
			p.errorf(start, "bad literal length %q", spec)
		}
		p.pos += end + 1
		switch {
		case strings.HasPrefix(p.q[p.pos:], "\r\n"):
			p.pos += 2
		case strings.HasPrefix(p.q[p.pos:], "\n"):
			p.pos++
		default:
			p.errorf(p.pos, "a literal's {n} must be followed by a line break")
		}
		if uint64(len(p.q)-p.pos) < n {
			p.errorf(start, "literal of %d bytes, but only %d follow", n, len(p.q)-p.pos)
		}
		s := p.q[p.pos : p.pos+int(n)]
		p.pos += int(n)
		return s
	default:
		start := p.pos
		for p.pos < len(p.q) && (isAStringChar(p.q[p.pos]) || p.q[p.pos] >= 0x80) {
			p.pos++
		}
		if p.pos == start {
			p.errorf(start, "%s needs a string, found %q", key, p.q[start:start+1])
		}
		return p.q[start:p.pos]
	}
}

// date reads date-text (1-Feb-2024) or the same in quotes.
func (p *imapParser) date(key string) (int, time.Month, int) {
	start := p.pos
	quoted := p.pos < len(p.q) && p.q[p.pos] == '"'
	if quoted {
		p.pos++
	}
	end := p.pos
	for end < len(p.q) && (isAtomChar(p.q[end])) {
		end++
	}
	s := p.q[p.pos:end]
	p.pos = end
	if quoted {
		if p.pos >= len(p.q) || p.q[p.pos] != '"' {
			p.errorf(start, "unterminated quoted date")
		}
		p.pos++
	}
	parts := strings.Split(s, "-")
	bad := func() {
		p.errorf(start, "%s needs a date like 1-Feb-2024 (day-month-year, English month abbreviation), got %q", key, s)
	}
	if len(parts) != 3 || len(parts[0]) < 1 || len(parts[0]) > 2 || len(parts[2]) != 4 {
		bad()
	}
	d, err1 := strconv.Atoi(parts[0])
	y, err2 := strconv.Atoi(parts[2])
	m := monthAbbrev(parts[1])
	if err1 != nil || err2 != nil || m == 0 || d < 1 || d > 31 {
		bad()
	}
	if d > daysIn(m, y) {
		p.errorf(start, "%s: %s has no day %d in %d", key, m, d, y)
	}
	return y, m, d
}

func monthAbbrev(s string) time.Month {
	for m := time.January; m <= time.December; m++ {
		if strings.EqualFold(s, m.String()[:3]) {
			return m
		}
	}
	return 0
}

func daysIn(m time.Month, y int) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// number reads a number (LARGER, SMALLER): up to 2^63-1.
func (p *imapParser) number(key string) uint64 {
	start := p.pos
	for p.pos < len(p.q) && p.q[p.pos] >= '0' && p.q[p.pos] <= '9' {
		p.pos++
	}
	n, err := strconv.ParseUint(p.q[start:p.pos], 10, 63)
	if err != nil {
		if p.pos == start {
			p.errorf(start, "%s needs a number of bytes", key)
		}
		p.errorf(start, "%s: %q is too large", key, p.q[start:p.pos])
	}
	return n
}

// set reads a sequence set: 1,3:5,7:*.
func (p *imapParser) set(what string) []UIDRange {
	start := p.pos
	num := func() uint32 {
		if p.pos < len(p.q) && p.q[p.pos] == '*' {
			p.pos++
			return 0
		}
		at := p.pos
		for p.pos < len(p.q) && p.q[p.pos] >= '0' && p.q[p.pos] <= '9' {
			p.pos++
		}
		n, err := strconv.ParseUint(p.q[at:p.pos], 10, 32)
		if err != nil || n == 0 {
			p.errorf(at, "bad %s %q: want numbers from 1 (or *), ranges a:b, separated by commas", what, p.q[start:p.end()])
		}
		return uint32(n)
	}
	var out []UIDRange
	for {
		r := UIDRange{Start: num()}
		r.Stop = r.Start
		if p.pos < len(p.q) && p.q[p.pos] == ':' {
			p.pos++
			r.Stop = num()
		}
		out = append(out, r)
		if p.pos < len(p.q) && p.q[p.pos] == ',' {
			p.pos++
			continue
		}
		break
	}
	if p.pos < len(p.q) && p.q[p.pos] != ' ' && p.q[p.pos] != ')' && p.q[p.pos] != '\t' {
		p.errorf(start, "bad %s %q: want numbers from 1 (or *), ranges a:b, separated by commas", what, p.q[start:p.end()])
	}
	return out
}

// end is the end of the current token, for error messages.
func (p *imapParser) end() int {
	e := p.pos
	for e < len(p.q) && p.q[e] != ' ' && p.q[e] != ')' {
		e++
	}
	return e
}

// Contains reports whether r holds n, given max, the largest number in use
// (what * stands for).
func (r UIDRange) Contains(n, max uint32) bool {
	lo, hi := r.Start, r.Stop
	if lo == 0 {
		lo = max
	}
	if hi == 0 {
		hi = max
	}
	if lo > hi {
		lo, hi = hi, lo
	}
	return n >= lo && n <= hi
}

// IMAPString prints n as IMAP SEARCH criteria, for every tree ParseIMAP
// returns: ParseIMAP(IMAPString(n)) is n again. Keys of the human syntax
// that IMAP cannot express (words, phrases, has:attachment, account:,
// mailbox:) are printed in the human syntax, marked as such.
func IMAPString(n Node) string {
	switch n := n.(type) {
	case All:
		return "ALL"
	case And:
		parts := make([]string, len(n.Nodes))
		for i, c := range n.Nodes {
			parts[i] = IMAPString(c)
			if _, ok := c.(And); ok {
				parts[i] = "(" + parts[i] + ")"
			}
		}
		return strings.Join(parts, " ")
	case Or:
		if len(n.Nodes) == 0 {
			return "NOT ALL"
		}
		s := imapOperand(n.Nodes[len(n.Nodes)-1])
		for i := len(n.Nodes) - 2; i >= 0; i-- {
			s = "OR " + imapOperand(n.Nodes[i]) + " " + s
		}
		return s
	case Not:
		return "NOT " + imapOperand(n.Node)
	case Flag:
		return imapFlag(n)
	case Header:
		return "HEADER " + imapAString(n.Name) + " " + imapQuoted(n.Value)
	case UIDs:
		return n.String()
	case Seqs:
		return n.String()
	case Recent:
		return "RECENT"
	case Size:
		if n.Larger {
			return "LARGER " + strconv.FormatInt(n.Bytes, 10)
		}
		return "SMALLER " + strconv.FormatInt(n.Bytes, 10)
	case Date:
		key := [...]string{DateBefore: "BEFORE", DateOn: "ON", DateSince: "SINCE"}[n.Op]
		if !n.Internal {
			key = "SENT" + key
		}
		return fmt.Sprintf("%s %d-%s-%04d", key, n.Day, n.Month.String()[:3], n.Year)
	case Text:
		if n.Match == MatchSubstring {
			key := map[Field]string{FieldFrom: "FROM", FieldTo: "TO", FieldCc: "CC", FieldBcc: "BCC",
				FieldSubject: "SUBJECT", FieldBody: "BODY", FieldText: "TEXT"}[n.Field]
			if key != "" {
				return key + " " + imapQuoted(n.Value)
			}
		}
	}
	return "{human: " + n.String() + "}"
}

// imapOperand prints an operand of OR or NOT: a list in parentheses.
func imapOperand(n Node) string {
	if _, ok := n.(And); ok {
		return "(" + IMAPString(n) + ")"
	}
	return IMAPString(n)
}

// imapQuoted writes s as a quoted string, or as a literal when it holds a
// line break or a NUL, which quoted strings cannot.
func imapQuoted(s string) string {
	if strings.ContainsAny(s, "\r\n\x00") {
		return fmt.Sprintf("{%d}\r\n%s", len(s), s)
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// imapAString writes s as an atom when it can be one, else as imapQuoted.
func imapAString(s string) string {
	if s != "" && !strings.ContainsFunc(s, func(r rune) bool { return r >= 0x80 || !isAStringChar(byte(r)) }) {
		return s
	}
	return imapQuoted(s)
}
