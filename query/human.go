package query

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// knownKeys lists the keys of the human syntax, for error messages.
const knownKeys = "from, to, cc, bcc, rcpt, subject, body, attachment, filename, list, " +
	"before, after, on, newer_than, older_than, larger, smaller, has, is, account, mailbox, in"

// humanFlags are the values of is:, each a flag that some occurrence in
// scope has (without: that none has). is:read and is:unread therefore
// split every result in two: a message read in one mailbox in scope and
// unread in another is read (someone has read it), and in:M narrows the
// question to the copies in M.
var humanFlags = map[string]struct {
	flag    string
	without bool
}{
	"read":       {`\Seen`, false},
	"unread":     {`\Seen`, true},
	"flagged":    {`\Flagged`, false},
	"unflagged":  {`\Flagged`, true},
	"answered":   {`\Answered`, false},
	"unanswered": {`\Answered`, true},
}

const knownFlags = "read, unread, flagged, unflagged, answered, unanswered"

var textKeys = map[string]Field{
	"from":       FieldFrom,
	"to":         FieldTo,
	"cc":         FieldCc,
	"bcc":        FieldBcc,
	"subject":    FieldSubject,
	"body":       FieldBody,
	"attachment": FieldAttachment,
	"filename":   FieldFilename,
	"list":       FieldList,
	"rcpt":       FieldRcpt,
}

var dateOps = map[string]DateOp{"before": DateBefore, "on": DateOn, "after": DateSince}

// maxSize is the largest size accepted by larger: and smaller:. Bleve
// compares numbers as float64, which is exact up to 2^53.
const maxSize = 1 << 53

// ParseHuman parses a query in the human syntax described in the package
// documentation. A non-nil error is a *ParseError.
func ParseHuman(s string) (n Node, err error) {
	p := &humanParser{s: s}
	defer func() {
		if x := recover(); x != nil {
			pe, ok := x.(*ParseError)
			if !ok {
				panic(x)
			}
			n, err = nil, pe
		}
	}()
	if !utf8.ValidString(s) {
		i := 0
		for i < len(s) {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				break
			}
			i += size
		}
		p.xerrorf(i, "query is not valid UTF-8")
	}
	return p.xquery(), nil
}

// humanParser is a recursive-descent parser over the bytes of s. Methods
// prefixed with x panic with a *ParseError; ParseHuman recovers it.
type humanParser struct {
	s     string
	pos   int
	depth int
}

func (p *humanParser) xerrorf(off int, format string, args ...any) {
	panic(&ParseError{Query: p.s, Offset: off, Msg: fmt.Sprintf(format, args...)})
}

func (p *humanParser) eof() bool { return p.pos >= len(p.s) }

func (p *humanParser) peek() byte { return p.s[p.pos] }

// delimAt reports whether a bare word ends at offset i: end of input, white
// space or a parenthesis.
func (p *humanParser) delimAt(i int) bool {
	if i >= len(p.s) {
		return true
	}
	r, _ := utf8.DecodeRuneInString(p.s[i:])
	return isDelim(r)
}

func (p *humanParser) skipSpace() {
	for p.pos < len(p.s) {
		r, size := utf8.DecodeRuneInString(p.s[p.pos:])
		if !unicode.IsSpace(r) {
			return
		}
		p.pos += size
	}
}

// bareWord consumes and returns the run of bytes up to the next delimiter.
func (p *humanParser) bareWord() string {
	start := p.pos
	for !p.delimAt(p.pos) {
		_, size := utf8.DecodeRuneInString(p.s[p.pos:])
		p.pos += size
	}
	return p.s[start:p.pos]
}

// operator returns the operator (OR, AND, NOT) that is the whole bare word
// at the current position, if any. Operators are upper case only.
func (p *humanParser) operator() (string, bool) {
	for _, op := range [...]string{"OR", "AND", "NOT"} {
		if strings.HasPrefix(p.s[p.pos:], op) && p.delimAt(p.pos+len(op)) {
			return op, true
		}
	}
	return "", false
}

// termFollows reports whether a term starts at the current position.
func (p *humanParser) termFollows() bool {
	if p.eof() || p.peek() == ')' {
		return false
	}
	op, ok := p.operator()
	return !ok || op == "NOT"
}

func (p *humanParser) enter(off int) {
	p.depth++
	if p.depth > maxDepth {
		p.xerrorf(off, "query nested too deeply (more than %d levels)", maxDepth)
	}
}

func (p *humanParser) leave() { p.depth-- }

// query = expr EOF
func (p *humanParser) xquery() Node {
	n := p.xexpr()
	if !p.eof() {
		// xexpr stops only at the end or at a ")".
		p.xerrorf(p.pos, `unmatched ")"`)
	}
	if n == nil {
		p.xerrorf(0, "empty query")
	}
	return n
}

// expr = or { ["AND"] or }, up to the end or a ")". It returns nil for no
// terms at all.
func (p *humanParser) xexpr() Node {
	var nodes []Node
	for {
		p.skipSpace()
		if p.eof() || p.peek() == ')' {
			break
		}
		if op, ok := p.operator(); ok && op == "AND" {
			opPos := p.pos
			if len(nodes) == 0 {
				p.xerrorf(opPos, "AND needs a term on each side")
			}
			p.pos += len(op)
			p.skipSpace()
			if !p.termFollows() {
				p.xerrorf(opPos, "AND needs a term on each side")
			}
		}
		n := p.xor()
		if a, ok := n.(And); ok {
			nodes = append(nodes, a.Nodes...)
		} else {
			nodes = append(nodes, n)
		}
	}
	switch len(nodes) {
	case 0:
		return nil
	case 1:
		return nodes[0]
	}
	return And{Nodes: nodes}
}

// or = unary { "OR" unary }
func (p *humanParser) xor() Node {
	if op, ok := p.operator(); ok && op != "NOT" {
		p.xerrorf(p.pos, "%s needs a term on each side", op)
	}
	var nodes []Node
	add := func(n Node) {
		if o, ok := n.(Or); ok {
			nodes = append(nodes, o.Nodes...)
		} else {
			nodes = append(nodes, n)
		}
	}
	add(p.xunary())
	for {
		save := p.pos
		p.skipSpace()
		if op, ok := p.operator(); !ok || op != "OR" {
			p.pos = save
			break
		}
		opPos := p.pos
		p.pos += len("OR")
		p.skipSpace()
		if !p.termFollows() {
			p.xerrorf(opPos, "OR needs a term on each side")
		}
		add(p.xunary())
	}
	if len(nodes) == 1 {
		return nodes[0]
	}
	return Or{Nodes: nodes}
}

// unary = "-" unary | "NOT" unary | primary; the "-" sticks to its term.
func (p *humanParser) xunary() Node {
	start := p.pos
	if p.peek() == '-' {
		p.pos++
		if p.delimAt(p.pos) && (p.eof() || p.peek() != '(') {
			p.xerrorf(start, `"-" needs a term right after it`)
		}
		if op, ok := p.operator(); ok && op != "NOT" {
			p.xerrorf(start, `"-" needs a term right after it, not %s`, op)
		}
		p.enter(start)
		n := p.xunary()
		p.leave()
		return Not{Node: n}
	}
	if op, ok := p.operator(); ok && op == "NOT" {
		p.pos += len(op)
		p.skipSpace()
		if !p.termFollows() {
			p.xerrorf(start, "NOT needs a term after it")
		}
		p.enter(start)
		n := p.xunary()
		p.leave()
		return Not{Node: n}
	}
	return p.xprimary()
}

// primary = "(" expr ")" | quoted | key ":" value | word
func (p *humanParser) xprimary() Node {
	start := p.pos
	switch p.peek() {
	case '(':
		p.pos++
		p.enter(start)
		n := p.xexpr()
		if p.eof() {
			p.xerrorf(start, `unclosed "("`)
		}
		if n == nil {
			p.xerrorf(start, "empty parentheses")
		}
		p.pos++ // ")"
		p.leave()
		return n
	case '"':
		v := p.xquoted()
		p.xphraseValue(v, start)
		return Text{Field: FieldText, Value: v, Match: MatchPhrase}
	}
	if k := keyLen(p.s[p.pos:]); k > 0 {
		key := strings.ToLower(p.s[p.pos : p.pos+k-1])
		p.pos += k
		return p.xkeyed(key, start)
	}
	return p.xtextWord(FieldText, p.bareWord(), start)
}

// keyLen returns the length of "key:" at the start of s: an ASCII letter,
// more ASCII letters or underscores (newer_than), and a colon, not followed
// by "//" (so that URLs stay words). It returns 0 if s does not start with
// a key.
func keyLen(s string) int {
	i := 0
	for i < len(s) && ('a' <= s[i] && s[i] <= 'z' || 'A' <= s[i] && s[i] <= 'Z' || i > 0 && s[i] == '_') {
		i++
	}
	if i == 0 || i == len(s) || s[i] != ':' || strings.HasPrefix(s[i+1:], "//") {
		return 0
	}
	return i + 1
}

// xquoted consumes a quoted string at the current position and returns its
// value. Inside quotes, \" stands for " and \\ for \; any other backslash
// is itself.
func (p *humanParser) xquoted() string {
	start := p.pos
	p.pos++
	var b strings.Builder
	for {
		if p.eof() {
			p.xerrorf(start, "unterminated quote")
		}
		c := p.s[p.pos]
		if c == '"' {
			p.pos++
			break
		}
		if c == '\\' && p.pos+1 < len(p.s) && (p.s[p.pos+1] == '"' || p.s[p.pos+1] == '\\') {
			p.pos++
			c = p.s[p.pos]
		}
		b.WriteByte(c)
		p.pos++
	}
	if !p.eof() && (p.peek() == '(' || !p.delimAt(p.pos)) {
		p.xerrorf(p.pos, `closing quote must be followed by a space or ")"`)
	}
	return b.String()
}

// xphraseValue checks the value of a quoted phrase starting at off.
func (p *humanParser) xphraseValue(v string, off int) {
	if strings.TrimSpace(v) == "" {
		p.xerrorf(off, "empty phrase")
	}
	if !searchable(v) {
		p.xerrorf(off, "%s has no letters or digits to search for", quote(v))
	}
}

// xtextWord turns a bare word at off into a Text node: a prefix if it ends
// in "*", words otherwise.
func (p *humanParser) xtextWord(f Field, w string, off int) Node {
	if pre, ok := strings.CutSuffix(w, "*"); ok {
		if err := checkPrefix(pre); err != nil {
			p.xerrorf(off, "%v", err)
		}
		return Text{Field: f, Value: pre, Match: MatchPrefix}
	}
	if !searchable(w) {
		p.xerrorf(off, "%q has no letters or digits to search for", w)
	}
	return Text{Field: f, Value: w, Match: MatchWords}
}

// xvalue consumes the value after "key:": a quoted string or a bare word.
func (p *humanParser) xvalue(key string) (v string, quoted bool) {
	if p.delimAt(p.pos) {
		p.xerrorf(p.pos, "%s: needs a value", key)
	}
	if p.peek() == '"' {
		return p.xquoted(), true
	}
	return p.bareWord(), false
}

func (p *humanParser) xkeyed(key string, start int) Node {
	vpos := p.pos
	if f, ok := textKeys[key]; ok {
		v, quoted := p.xvalue(key)
		if quoted {
			p.xphraseValue(v, vpos)
			return Text{Field: f, Value: v, Match: MatchPhrase}
		}
		return p.xtextWord(f, v, vpos)
	}
	if op, ok := dateOps[key]; ok {
		v, _ := p.xvalue(key)
		y, m, d, ok := parseDay(v)
		if !ok {
			p.xerrorf(vpos, "bad date %q, want YYYY-MM-DD", v)
		}
		return Date{Op: op, Year: y, Month: m, Day: d}
	}
	switch key {
	case "larger", "smaller":
		v, _ := p.xvalue(key)
		n, err := parseSize(v)
		if err != nil {
			p.xerrorf(vpos, "%v", err)
		}
		return Size{Larger: key == "larger", Bytes: n}
	case "newer_than", "older_than":
		v, _ := p.xvalue(key)
		n, unit, ok := parseAge(v)
		if !ok {
			p.xerrorf(vpos, "%s: bad age %q, want a count from 1 to %d and a unit d, w, m or y (7d, 2w, 6m, 1y)", key, v, maxAge)
		}
		return Age{Newer: key == "newer_than", Count: n, Unit: unit}
	case "is":
		v, _ := p.xvalue(key)
		f, ok := humanFlags[strings.ToLower(v)]
		if !ok {
			p.xerrorf(vpos, "unknown is: value %q (known: %s)", v, knownFlags)
		}
		if f.without {
			return Not{Node: Flag{Name: f.flag}}
		}
		return Flag{Name: f.flag}
	case "has":
		v, _ := p.xvalue(key)
		if !strings.EqualFold(v, "attachment") {
			p.xerrorf(vpos, "unknown has: value %q (known: attachment)", v)
		}
		return HasAttachment{}
	case "account":
		v, _ := p.xvalue(key)
		if v == "" {
			p.xerrorf(vpos, "%s: needs a value", key)
		}
		return Account{Name: v}
	case "mailbox", "in":
		// in: is Gmail's spelling of mailbox: (in:inbox, in:Sent).
		v, quoted := p.xvalue(key)
		if v == "" {
			p.xerrorf(vpos, "%s: needs a value", key)
		}
		// Bare * and % look like IMAP LIST wildcards, which mailbox: does
		// not expand; quoted, they are taken as part of the name (a
		// mailbox may be called "100%").
		if !quoted && strings.ContainsAny(v, "*%") {
			p.xerrorf(vpos, "%s: takes one exact name, wildcards * and %% are not supported (quote the name if it contains them)", key)
		}
		return Mailbox{Name: CanonicalMailbox(v)}
	}
	p.xerrorf(start, "unknown key %q (known: %s; quote a word that contains a colon)", key, knownKeys)
	panic("unreachable")
}

// parseDay parses YYYY-MM-DD (or YYYY/MM/DD) into a valid calendar day.
func parseDay(s string) (y int, m time.Month, d int, ok bool) {
	if len(s) != 10 || s[4] != s[7] || (s[4] != '-' && s[4] != '/') {
		return 0, 0, 0, false
	}
	num := func(t string) int {
		n := 0
		for i := 0; i < len(t); i++ {
			if t[i] < '0' || t[i] > '9' {
				return -1
			}
			n = n*10 + int(t[i]-'0')
		}
		return n
	}
	y, mm, d := num(s[0:4]), num(s[5:7]), num(s[8:10])
	if y < 1 || mm < 1 || mm > 12 || d < 1 {
		return 0, 0, 0, false
	}
	m = time.Month(mm)
	if t := time.Date(y, m, d, 12, 0, 0, 0, time.UTC); t.Day() != d {
		return 0, 0, 0, false
	}
	return y, m, d, true
}

// maxAge bounds the count of newer_than: and older_than:.
const maxAge = 9999

// parseAge parses the value of newer_than: and older_than:: a count from 1
// to maxAge and a unit d, w, m or y (upper case too).
func parseAge(s string) (n int, unit byte, ok bool) {
	if len(s) < 2 {
		return 0, 0, false
	}
	unit = lowerASCII(s[len(s)-1])
	if unit != 'd' && unit != 'w' && unit != 'm' && unit != 'y' {
		return 0, 0, false
	}
	for i := 0; i < len(s)-1; i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, 0, false
		}
		n = n*10 + int(c-'0')
		if n > maxAge {
			return 0, 0, false
		}
	}
	return n, unit, n >= 1
}

// parseSize parses a byte count, optionally with a binary suffix
// k/K (1024), m/M (1024²) or g/G (1024³).
func parseSize(s string) (int64, error) {
	digits, mult := s, int64(1)
	if s != "" {
		switch s[len(s)-1] {
		case 'k', 'K':
			mult = 1 << 10
		case 'm', 'M':
			mult = 1 << 20
		case 'g', 'G':
			mult = 1 << 30
		}
		if mult > 1 {
			digits = s[:len(s)-1]
		}
	}
	if digits == "" {
		return 0, fmt.Errorf("bad size %q, want a number of bytes, optionally with suffix k, M or G", s)
	}
	var n int64
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("bad size %q, want a number of bytes, optionally with suffix k, M or G", s)
		}
		n = n*10 + int64(c-'0')
		if n > maxSize {
			return 0, fmt.Errorf("size %q is too large", s)
		}
	}
	if n > maxSize/mult {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return n * mult, nil
}

// searchable reports whether s holds a letter or digit: the TextAnalyzer
// drops everything else, so a word without one could never match.
func searchable(s string) bool {
	for _, r := range s {
		if unicode.IsLetter(r) || unicode.IsNumber(r) {
			return true
		}
	}
	return false
}

// checkPrefix checks the part of a prefix term before its "*". Bleve
// expands a prefix over the terms of the index, one token each: the prefix
// must be a prefix of one token, and at least two characters long so that
// the expansion stays bounded.
func checkPrefix(pre string) error {
	if utf8.RuneCountInString(pre) < 2 {
		return fmt.Errorf("prefix %q is too short, give at least 2 characters before *", pre+"*")
	}
	for i, r := range pre {
		switch {
		case unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul):
			// The unicode tokenizer indexes Han and Hiragana one character
			// at a time, and mv_parts cuts katakana and Hangul runs so.
			return fmt.Errorf("prefix %q: CJK characters are indexed one by one, search without *", pre+"*")
		case unicode.IsLetter(r) || unicode.IsNumber(r):
		case i > 0 && (unicode.IsMark(r) || unicode.Is(unicode.Pc, r) || strings.ContainsRune(".,:;'’", r)):
			// Joiners that the unicode tokenizer keeps inside a word
			// (example.org, 1,000, don't, foo_bar).
		default:
			return fmt.Errorf("prefix %q must be one word, %q splits words (use a phrase or a shorter prefix)", pre+"*", string(r))
		}
	}
	return nil
}
