package harvest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
)

// Limits on what a server may send, so that a hostile or broken server
// costs bounded memory and time (see the package doc).
const (
	// maxLineBytes bounds one response line outside BODY[] literals,
	// other literals on it included (a mailbox name, a flag, a quoted
	// string): go-imap buffers those whole.
	maxLineBytes = 1 << 20
	// maxNesting bounds how deep parenthesised lists nest on one line.
	// go-imap's BODYSTRUCTURE parser recurses without a limit and wraps its
	// error once per level: 100,000 "(" cost it minutes and gigabytes.
	// Real answers nest a few levels (a BODYSTRUCTURE one per MIME level).
	maxNesting = 100
	// maxMailboxes bounds the mailboxes one LIST may answer.
	maxMailboxes = 100_000
	// extraFetchResponses is how many more FETCH responses than the
	// mailbox has messages (by EXISTS) one FETCH may answer: mail arriving
	// meanwhile, announced late.
	extraFetchResponses = 1000
)

// ErrHostile marks a server that broke one of the limits above, or
// answered something it cannot have meant (a UID above UIDNEXT, a body
// larger than its RFC822.SIZE by more than the harvester will hold). The
// session is ended and retried with backoff, like a network failure.
var ErrHostile = errors.New("server broke the protocol")

// guardConn sits between the IMAP client and the (plaintext) connection
// and follows the server's bytes just enough to bound what go-imap would
// buffer: a line (outside BODY[] literals) longer than maxLineBytes, or a
// literal elsewhere that would make it so, ends the connection with an
// error instead of growing a buffer without end. BODY[] literals
// of FETCH responses pass uncounted: fetch bounds them itself, by their
// announced size, and the unilateral handler discards them.
//
// Only the client's reader goroutine calls Read.
type guardConn struct {
	net.Conn
	err     error
	litLeft int64  // bytes of a literal still to pass through
	line    int64  // bytes of the current line so far
	head    []byte // its first bytes
	tail    []byte // its last bytes
	depth   int    // of parentheses on the line, outside quoted strings
	quoted  bool   // in a quoted string
	escaped bool   // after a backslash in a quoted string
	// onBye, when set, is given the first maxByeBytes of each "* BYE"
	// line: go-imap's client drops a BYE's code and text, and a server
	// that ends a session under load says why there (throttle.go). Once
	// the client has sent LOGOUT, a BYE is the answer to it, not the
	// server's reason for ending the session, and is not given: the
	// session's end logs its other connections out, and their "* BYE
	// Logging out" must not stand for the BYE that ended it.
	onBye      func(line string)
	bye        []byte      // the BYE line so far; nil when not in one
	loggingOut atomic.Bool // the client sent LOGOUT (Write, any goroutine)
}

// maxByeBytes is how much of a BYE line is kept for onBye.
const maxByeBytes = 512

func (g *guardConn) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	n, err := g.Conn.Read(p)
	if gerr := g.scan(p[:n]); gerr != nil {
		g.err = gerr
		g.Conn.Close()
		return 0, gerr
	}
	return n, err
}

// Write notes a LOGOUT command (see onBye). go-imap writes each command
// line in one Write.
func (g *guardConn) Write(p []byte) (int, error) {
	if g.onBye != nil && !g.loggingOut.Load() && isLogout(p) {
		g.loggingOut.Store(true)
	}
	return g.Conn.Write(p)
}

// isLogout reports whether p ends with a command line "<tag> LOGOUT".
func isLogout(p []byte) bool {
	line, ok := bytes.CutSuffix(p, []byte("\r\n"))
	if !ok {
		return false
	}
	if i := bytes.LastIndex(line, []byte("\r\n")); i >= 0 {
		line = line[i+2:]
	}
	tag, cmd, ok := bytes.Cut(line, []byte(" "))
	return ok && len(tag) > 0 && bytes.EqualFold(cmd, []byte("LOGOUT"))
}

// scan follows b through lines and literals.
func (g *guardConn) scan(b []byte) error {
	for len(b) > 0 {
		if g.litLeft > 0 {
			k := int64(len(b))
			if k > g.litLeft {
				k = g.litLeft
			}
			g.litLeft -= k
			b = b[k:]
			continue
		}
		c := b[0]
		b = b[1:]
		g.line++
		if g.line > maxLineBytes {
			return fmt.Errorf("%w: a response line longer than %d bytes", ErrHostile, maxLineBytes)
		}
		if len(g.tail) == 32 {
			copy(g.tail, g.tail[1:])
			g.tail = g.tail[:31]
		}
		g.tail = append(g.tail, c)
		if len(g.head) < 24 {
			g.head = append(g.head, c)
		}
		switch {
		case g.bye != nil:
			if len(g.bye) < maxByeBytes {
				g.bye = append(g.bye, c)
			}
		case g.line == 6 && g.onBye != nil && strings.EqualFold(string(g.head), "* BYE ") && !g.loggingOut.Load():
			g.bye = append(make([]byte, 0, 64), g.head...)
		}
		switch {
		case g.escaped:
			g.escaped = false
		case g.quoted:
			g.quoted = c != '"'
			g.escaped = c == '\\'
		case c == '"':
			g.quoted = true
		case c == '(':
			if g.depth++; g.depth > maxNesting {
				return fmt.Errorf("%w: parenthesised lists nested deeper than %d", ErrHostile, maxNesting)
			}
		case c == ')':
			g.depth--
		}
		if c != '\n' {
			continue
		}
		size, body, ok := literalAnnounced(g.tail)
		g.tail = g.tail[:0]
		switch {
		case !ok:
			if g.bye != nil {
				g.onBye(strings.TrimRight(string(g.bye), "\r\n"))
				g.bye = nil
			}
			g.line, g.depth, g.quoted, g.escaped = 0, 0, false, false
			g.head = g.head[:0]
		case body && fetchLine(g.head):
			g.litLeft = size
		default:
			if size > maxLineBytes-g.line {
				return fmt.Errorf("%w: a %d-byte literal in a response line (at most %d bytes outside BODY[])", ErrHostile, size, maxLineBytes)
			}
			g.line += size
			g.litLeft = size
		}
	}
	return nil
}

// fetchLine reports whether a line starts "* <number> FETCH ".
func fetchLine(head []byte) bool {
	if len(head) < 4 || head[0] != '*' || head[1] != ' ' {
		return false
	}
	i := 2
	for i < len(head) && head[i] >= '0' && head[i] <= '9' {
		i++
	}
	rest := string(head[i:])
	return i > 2 && len(rest) >= 7 && (rest[:7] == " FETCH " || rest[:7] == " fetch ")
}

// literalAnnounced reports whether the line ending in tail ends with a
// literal's announcement "{n}\r\n", its size, and whether it is a body
// section's ("BODY[...] {n}" or "BODY[...]<o> {n}").
func literalAnnounced(tail []byte) (size int64, body, ok bool) {
	t := tail
	if len(t) < 4 || t[len(t)-1] != '\n' || t[len(t)-2] != '\r' || t[len(t)-3] != '}' {
		return 0, false, false
	}
	t = t[:len(t)-3]
	i := len(t)
	for i > 0 && t[i-1] >= '0' && t[i-1] <= '9' {
		i--
	}
	if i == len(t) || i == 0 || t[i-1] != '{' {
		return 0, false, false
	}
	for _, d := range t[i:] {
		if size > (1<<62)/10 {
			size = 1 << 62 // absurd: stays absurd
			break
		}
		size = size*10 + int64(d-'0')
	}
	before := t[:i-1]
	body = len(before) >= 2 && before[len(before)-1] == ' ' && (before[len(before)-2] == ']' || before[len(before)-2] == '>')
	return size, body, true
}
