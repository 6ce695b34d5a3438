package harvest

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
)

// QRESYNC (RFC 7162) over a connection of its own.
//
// go-imap v2 beta.8's client cannot take QRESYNC: Enable refuses it,
// SelectOptions has no QRESYNC parameter, and a VANISHED response is an
// "unsupported response type" that closes the connection. Rather than
// fork the client, a resync with QRESYNC runs on a short connection of its
// own, spoken by the small client in this file: log in, ENABLE QRESYNC,
// EXAMINE mailbox (QRESYNC (uidvalidity modseq known-uids)), read the
// VANISHED (EARLIER) and FETCH (UID FLAGS MODSEQ) responses, LOGOUT.
//
// What that costs and leaves out:
//   - A connection and a login per resync that has something to find (a
//     quiet poll still costs one STATUS). When the server refuses the
//     second connection (a per-user limit) the resync falls back to
//     CHANGEDSINCE on the main one.
//   - IDLE stays on go-imap, without QRESYNC: an EXPUNGE or FETCH during
//     IDLE wakes the watch, and the resync that follows asks here.
//   - Not spoken: STARTTLS (tls: starttls accounts use CHANGEDSINCE),
//     AUTHENTICATE without SASL-IR, credentials or mailbox names that are
//     not printable ASCII (no literals, no modified UTF-7 here). Each of
//     those uses CHANGEDSINCE, which is as exact, and nearly as cheap
//     unless the mailbox's UIDs are much fragmented.
//
// The reader is strict and bounded. A response (a line with its literals)
// is at most maxLineBytes and nests lists at most maxNesting deep; FETCH
// responses are at most EXISTS + extraFetchResponses, VANISHED ranges at
// most maxVanishedRanges, the flags held at most maxFlagBytes. UIDs are
// nz-numbers below 2^32, mod-sequences below 2^63; "*" in a VANISHED set,
// an EXPUNGE (which RFC 7162 forbids once QRESYNC is enabled), a FETCH
// without a UID, an EXAMINE answer without HIGHESTMODSEQ: each is
// ErrHostile, and nothing of that resync is recorded. Items of a response
// that the resync does not need are skipped by their syntax, never held.
const (
	maxVanishedRanges = 1 << 20  // 8 MiB of ranges
	maxFlagBytes      = 32 << 20 // of flag names, over all FETCH responses
	maxFlagsPerMsg    = 1000
)

// errNoQResync: this account or mailbox cannot use the QRESYNC connection
// (see above); the resync uses CHANGEDSINCE.
var errNoQResync = errors.New("qresync not possible here")

// errBye: the server ended the QRESYNC connection with BYE (a refusal, as
// a greeting or at login, or a shutdown); the resync uses CHANGEDSINCE.
var errBye = errors.New("qresync: the server said BYE")

// canQResync reports whether the resync may try QRESYNC: the server
// offers it and the account's connections are ones this file can make.
func (h *Harvester) canQResync(cn *conn) bool {
	if !cn.c.Caps().Has(imap.CapQResync) {
		return false
	}
	switch h.acct.tlsMode() {
	case "implicit", "none":
	default:
		return false
	}
	return quotable(h.acct.Username) && (h.acct.Auth == "xoauth2" || quotable(h.acct.Password))
}

// qresync asks a connection of its own what changed in mailbox mb (epoch
// uidvalidity) since modseq: the UIDs below uidNext expunged since, and
// the flags changed since.
func (h *Harvester) qresync(ctx context.Context, mb string, uidvalidity uint32, modseq uint64, uidNext imap.UID) (Changes, error) {
	if !quotable(mb) || strings.Contains(mb, "&") { // "&" starts modified UTF-7
		return Changes{}, errNoQResync
	}
	q, err := h.qdial(ctx)
	if err != nil {
		return Changes{}, err
	}
	defer q.close()
	if err := q.login(h); err != nil {
		return Changes{}, err
	}
	if _, err := q.command("ENABLE QRESYNC"); err != nil {
		return Changes{}, err
	}
	if !q.res.enabled {
		return Changes{}, fmt.Errorf("%w: ENABLE QRESYNC not confirmed", errNoQResync)
	}
	params := fmt.Sprintf("%d %d", uidvalidity, modseq)
	if uidNext > 1 {
		params += fmt.Sprintf(" 1:%d", uidNext-1)
	}
	if _, err := q.command(fmt.Sprintf("EXAMINE %s (QRESYNC (%s))", quote(mb), params)); err != nil {
		return Changes{}, fmt.Errorf("examine %q: %w", mb, err)
	}
	r := &q.res
	switch {
	case r.uidValidity != uidvalidity:
		// A new epoch since the main connection's EXAMINE: the next sync
		// finds it there. Nothing here is about the epoch asked for.
		return Changes{}, fmt.Errorf("examine %q: UIDVALIDITY is %d, not %d", mb, r.uidValidity, uidvalidity)
	case r.noModSeq:
		return Changes{}, fmt.Errorf("examine %q: %w: the mailbox has no mod-sequences now", mb, errNoQResync)
	case r.highestModSeq == 0:
		return Changes{}, fmt.Errorf("examine %q: %w: no HIGHESTMODSEQ in a QRESYNC answer", mb, ErrHostile)
	}
	ch := Changes{Flags: r.flags, Vanished: r.vanished, ModSeq: r.highestModSeq, Via: ViaQResync}
	q.logout()
	return ch, nil
}

// qconn is one QRESYNC connection; only qresync uses it, one goroutine.
type qconn struct {
	c    net.Conn
	tc   *timeoutConn
	r    *bufio.Reader
	tag  int
	caps map[string]bool
	res  qresult
	stop func() bool
	// bye: the server said BYE (byeText), the connection is ending.
	bye     bool
	byeText string
	// gmail: the connection asks for Gmail's X-GM items (gmail.go);
	// FETCH responses go to res.gmail. gmailAsked is how many UIDs the
	// command asked for: its FETCH responses are bounded by that, plus
	// extraFetchResponses, not by the EXISTS the server chose.
	gmail      bool
	gmailAsked int
}

// qresult is what the responses of a command said (reset per command but
// for caps).
type qresult struct {
	enabled       bool // ENABLED QRESYNC
	noModSeq      bool // OK [NOMODSEQ]
	uidValidity   uint32
	highestModSeq uint64
	exists        int
	existsSeen    bool
	fetches       int
	flagBytes     int
	flags         map[uint32][]string
	vanished      []UIDRange
	gmail         map[uint32]*gmailInfo
}

func (h *Harvester) qdial(ctx context.Context) (*qconn, error) {
	addr := net.JoinHostPort(h.acct.Host, strconv.Itoa(h.port()))
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 60 * time.Second}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("qresync: connect %s: %w", addr, err)
	}
	tc := &timeoutConn{Conn: raw, command: h.opts.CommandTimeout}
	tc.setTimeout(h.opts.ReadTimeout)
	var c net.Conn = tc
	if h.acct.tlsMode() == "implicit" {
		cfg, err := h.tlsConfig()
		if err != nil {
			raw.Close()
			return nil, err
		}
		tlc := tls.Client(tc, cfg)
		if err := tlc.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, fmt.Errorf("qresync: connect %s: %w", addr, err)
		}
		c = tlc
	}
	q := &qconn{c: c, tc: tc, r: bufio.NewReaderSize(c, 32<<10), caps: map[string]bool{}, res: qresult{flags: map[uint32][]string{}}}
	q.stop = context.AfterFunc(ctx, func() { raw.Close() })
	line, err := readResponse(q.r)
	if err == nil {
		err = q.untagged(line)
		if err == nil && !hasPrefixFold(line, "* OK") {
			err = fmt.Errorf("greeting %q", clip(line))
		}
	}
	if err != nil {
		q.close()
		return nil, fmt.Errorf("qresync: connect %s: %w", addr, err)
	}
	return q, nil
}

func (q *qconn) close() {
	q.stop()
	q.c.Close()
}

// logout says goodbye without waiting long for the answer.
func (q *qconn) logout() {
	q.tc.setTimeout(2 * time.Second)
	q.command("LOGOUT")
}

// login authenticates as the account says (see auth.go), with what this
// client can send: AUTHENTICATE with SASL-IR, or LOGIN.
func (q *qconn) login(h *Harvester) error {
	if len(q.caps) == 0 {
		if _, err := q.command("CAPABILITY"); err != nil {
			return err
		}
	}
	user, pass := h.acct.Username, h.acct.Password
	var cmd string
	switch {
	case h.acct.Auth == "xoauth2":
		token := pass
		if h.acct.TokenFile != "" {
			b, err := os.ReadFile(h.acct.TokenFile)
			if err != nil {
				return fmt.Errorf("%w: token_file: %v", ErrAuth, err)
			}
			token = strings.TrimSpace(string(b))
		}
		if !q.caps["SASL-IR"] || !q.caps["AUTH=XOAUTH2"] {
			return errNoQResync
		}
		_, ir, _ := (&xoauth2{user: user, token: token}).Start()
		cmd = "AUTHENTICATE XOAUTH2 " + base64.StdEncoding.EncodeToString(ir)
	case h.acct.Auth != "login" && q.caps["SASL-IR"] && q.caps["AUTH=PLAIN"]:
		cmd = "AUTHENTICATE PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+pass))
	case q.caps["LOGINDISABLED"]:
		return errNoQResync
	default:
		cmd = "LOGIN " + quote(user) + " " + quote(pass)
	}
	if _, err := q.command(cmd); err != nil {
		return fmt.Errorf("qresync: login as %q: %w", user, err)
	}
	return nil
}

// command sends one command and reads the responses up to its tagged
// completion, each through untagged; a NO or BAD is an error (not ErrHostile).
func (q *qconn) command(cmd string) (string, error) {
	q.tag++
	tag := "Q" + strconv.Itoa(q.tag)
	caps := q.caps
	// The selected mailbox's size outlives the command that reported it:
	// a FETCH of its own (gmail.go) is bounded by the EXAMINE's EXISTS.
	exists, existsSeen := q.res.exists, q.res.existsSeen
	q.res = qresult{flags: map[uint32][]string{}, exists: exists, existsSeen: existsSeen}
	if q.gmail {
		q.res.gmail = map[uint32]*gmailInfo{}
	}
	q.caps = caps
	if _, err := io.WriteString(q.c, tag+" "+cmd+"\r\n"); err != nil {
		return "", err
	}
	for {
		line, err := readResponse(q.r)
		if err != nil {
			return "", err
		}
		switch {
		case line[0] == '*':
			if err := q.untagged(line); err != nil {
				return "", err
			}
		case line[0] == '+':
			// A continuation: only AUTHENTICATE's error challenge can
			// ask one here. Cancel (RFC 9051 section 6.2.2).
			if _, err := io.WriteString(q.c, "*\r\n"); err != nil {
				return "", err
			}
		default:
			t, rest, _ := strings.Cut(string(line), " ")
			if t != tag {
				return "", fmt.Errorf("%w: a tagged response %q to command %s", ErrHostile, clip([]byte(t)), tag)
			}
			st, _, _ := strings.Cut(rest, " ")
			switch strings.ToUpper(st) {
			case "OK":
				return rest, nil
			case "NO", "BAD":
				return "", fmt.Errorf("%s", strings.TrimRight(rest, "\r\n"))
			default:
				return "", fmt.Errorf("%w: tagged response %q", ErrHostile, clip(line))
			}
		}
	}
}

// untagged takes one untagged response into q.res (and q.caps).
func (q *qconn) untagged(line []byte) error {
	p := &qparser{b: line}
	if err := p.run(func() { p.untagged(q) }); err != nil {
		return fmt.Errorf("%w: %v", ErrHostile, err)
	}
	if q.bye {
		return fmt.Errorf("%w:%s", errBye, clip([]byte(q.byeText)))
	}
	return nil
}

// readResponse reads one response: a line up to CRLF, with the literals
// announced on it ("{n}" before a CRLF) read into it, at most maxLineBytes
// in all. The CRLF ending the response is dropped.
func readResponse(r *bufio.Reader) ([]byte, error) {
	var b []byte
	for {
		c, err := r.ReadByte()
		if err != nil {
			if err == io.EOF && len(b) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if len(b) >= maxLineBytes {
			return nil, fmt.Errorf("%w: a response longer than %d bytes", ErrHostile, maxLineBytes)
		}
		b = append(b, c)
		if c != '\n' {
			continue
		}
		if len(b) < 2 || b[len(b)-2] != '\r' {
			return nil, fmt.Errorf("%w: a line ending in LF without CR", ErrHostile)
		}
		n, ok := literalAt(b[:len(b)-2])
		if !ok {
			b = b[:len(b)-2]
			if len(b) == 0 {
				return nil, fmt.Errorf("%w: an empty response line", ErrHostile)
			}
			return b, nil
		}
		if n > int64(maxLineBytes-len(b)) {
			return nil, fmt.Errorf("%w: a %d-byte literal in a response (at most %d bytes a response)", ErrHostile, n, maxLineBytes)
		}
		start := len(b)
		b = slices.Grow(b, int(n))[:start+int(n)]
		if _, err := io.ReadFull(r, b[start:]); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
}

// literalAt reports whether b ends with a literal's announcement "{n}",
// and n. An announcement inside a quoted string is not one, but a quoted
// string cannot end a line, so the end of the line decides.
func literalAt(b []byte) (int64, bool) {
	if len(b) < 3 || b[len(b)-1] != '}' {
		return 0, false
	}
	i := len(b) - 2
	for i >= 0 && b[i] >= '0' && b[i] <= '9' {
		i--
	}
	if i < 0 || b[i] != '{' || i == len(b)-2 || len(b)-2-i > 10 {
		return 0, false
	}
	n, err := strconv.ParseInt(string(b[i+1:len(b)-1]), 10, 64)
	return n, err == nil
}

// qparser reads one response. Its x-helpers panic with a qparseError on
// bad input; run turns that into an error with the offset.
type qparser struct {
	b     []byte
	i     int
	depth int
}

type qparseError struct{ msg string }

func (p *qparser) run(fn func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			e, ok := r.(qparseError)
			if !ok {
				panic(r)
			}
			err = fmt.Errorf("response %q: %s (at offset %d)", clip(p.b), e.msg, p.i)
		}
	}()
	fn()
	return nil
}

func (p *qparser) fail(format string, args ...any) {
	panic(qparseError{fmt.Sprintf(format, args...)})
}

func (p *qparser) eof() bool { return p.i >= len(p.b) }

func (p *qparser) peek() byte {
	if p.eof() {
		return 0
	}
	return p.b[p.i]
}

func (p *qparser) xbyte(c byte) {
	if p.peek() != c || p.eof() {
		p.fail("want %q", c)
	}
	p.i++
}

func (p *qparser) take(c byte) bool {
	if !p.eof() && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// xatom reads an atom (RFC 9051 ATOM-CHAR: no specials, no CTL, no SP); a
// "]" too unless inCode.
func (p *qparser) xatom() string {
	start := p.i
	for !p.eof() && atomChar(p.b[p.i]) {
		p.i++
	}
	if p.i == start {
		p.fail("want an atom")
	}
	return string(p.b[start:p.i])
}

func atomChar(c byte) bool {
	return c > ' ' && c < 0x7f && !strings.ContainsRune(`(){%*"\]`, rune(c))
}

func (p *qparser) xnumber(max uint64) uint64 {
	start := p.i
	for !p.eof() && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	n, err := strconv.ParseUint(string(p.b[start:p.i]), 10, 64)
	if p.i == start || err != nil || n > max {
		p.i = start
		p.fail("want a number up to %d", max)
	}
	return n
}

// xnz reads an nz-number (a UID).
func (p *qparser) xnz() uint32 {
	n := p.xnumber(1<<32 - 1)
	if n == 0 {
		p.fail("want a number above 0")
	}
	return uint32(n)
}

// xmodseq reads a mod-sequence-value (RFC 7162: below 2^63).
func (p *qparser) xmodseq() uint64 { return p.xnumber(1<<63 - 1) }

// rest skips what is left of the response.
func (p *qparser) rest() { p.i = len(p.b) }

func (p *qparser) untagged(q *qconn) {
	p.xbyte('*')
	p.xbyte(' ')
	if c := p.peek(); c >= '0' && c <= '9' {
		n := p.xnumber(1<<32 - 1)
		p.xbyte(' ')
		switch kind := strings.ToUpper(p.xatom()); kind {
		case "EXISTS":
			q.res.exists, q.res.existsSeen = int(n), true
		case "FETCH":
			p.xbyte(' ')
			p.fetch(q)
		case "EXPUNGE":
			p.fail("EXPUNGE after ENABLE QRESYNC (RFC 7162 section 3.2.10 wants VANISHED)")
		}
		p.rest()
		return
	}
	switch kind := strings.ToUpper(p.xatom()); kind {
	case "OK", "NO", "BAD", "PREAUTH":
		if p.take(' ') && p.take('[') {
			p.code(q)
		}
		p.rest()
	case "BYE":
		// A refusal or a shutdown (RFC 9051 section 7.1.5), not a broken
		// protocol: the resync falls back to CHANGEDSINCE.
		q.bye, q.byeText = true, string(p.b[p.i:])
		p.rest()
	case "CAPABILITY":
		p.capabilities(q)
	case "ENABLED":
		for p.take(' ') {
			if strings.EqualFold(p.xatom(), "QRESYNC") {
				q.res.enabled = true
			}
		}
		if !p.eof() {
			p.fail("want capabilities")
		}
	case "VANISHED":
		p.xbyte(' ')
		if p.take('(') {
			if !strings.EqualFold(p.xatom(), "EARLIER") {
				p.fail("want (EARLIER)")
			}
			p.xbyte(')')
			p.xbyte(' ')
		}
		p.uidSet(q)
		if !p.eof() {
			p.fail("want the end of the response after the UID set")
		}
	default:
		p.rest() // FLAGS, LIST, STATUS, ...: nothing a resync needs
	}
}

// code reads a response code after its "[".
func (p *qparser) code(q *qconn) {
	switch strings.ToUpper(p.xatom()) {
	case "HIGHESTMODSEQ":
		p.xbyte(' ')
		q.res.highestModSeq = p.xmodseq()
		if q.res.highestModSeq == 0 {
			p.fail("HIGHESTMODSEQ 0")
		}
		p.xbyte(']')
	case "UIDVALIDITY":
		p.xbyte(' ')
		q.res.uidValidity = p.xnz()
		p.xbyte(']')
	case "CAPABILITY":
		p.capabilities(q)
		p.xbyte(']')
	case "NOMODSEQ":
		q.res.noModSeq = true
		p.xbyte(']')
	default:
		for !p.eof() && p.peek() != ']' {
			p.i++
		}
		p.xbyte(']')
	}
}

// capabilities reads a capability list, keeping only the names login
// asks about: caps live for the connection, and a server may send
// CAPABILITY responses of distinct names until the command timeout.
func (p *qparser) capabilities(q *qconn) {
	for p.take(' ') {
		switch c := strings.ToUpper(p.xatom()); c {
		case "SASL-IR", "AUTH=PLAIN", "AUTH=XOAUTH2", "LOGINDISABLED":
			q.caps[c] = true
		default:
			q.caps["IMAP"] = true // login sends CAPABILITY while caps is empty
		}
	}
}

// uidSet reads a VANISHED set: UIDs and ranges, no "*".
func (p *qparser) uidSet(q *qconn) {
	for {
		r := UIDRange{Start: p.xnz()}
		r.Stop = r.Start
		if p.take(':') {
			r.Stop = p.xnz()
		}
		if r.Start > r.Stop {
			r.Start, r.Stop = r.Stop, r.Start
		}
		if len(q.res.vanished) >= maxVanishedRanges {
			p.fail("more than %d VANISHED ranges", maxVanishedRanges)
		}
		q.res.vanished = append(q.res.vanished, r)
		if !p.take(',') {
			return
		}
	}
}

// fetch reads a FETCH response's list, keeping UID, FLAGS and MODSEQ.
func (p *qparser) fetch(q *qconn) {
	if !q.res.existsSeen {
		p.fail("FETCH before EXISTS")
	}
	if q.res.fetches++; q.res.fetches > q.res.exists+extraFetchResponses {
		p.fail("more than %d FETCH responses for a mailbox of %d messages", q.res.exists+extraFetchResponses, q.res.exists)
	}
	if q.gmail && q.gmailAsked > 0 && q.res.fetches > q.gmailAsked+extraFetchResponses {
		p.fail("more than %d FETCH responses to a FETCH of %d UIDs", q.gmailAsked+extraFetchResponses, q.gmailAsked)
	}
	p.xbyte('(')
	var uid uint32
	var flags []string
	haveFlags := false
	var gm gmailInfo
	for first := true; !p.take(')'); first = false {
		if !first {
			p.xbyte(' ')
		}
		name := strings.ToUpper(p.itemName())
		if q.gmail && p.gmailItem(q, name, &gm) {
			continue
		}
		switch name {
		case "UID":
			p.xbyte(' ')
			uid = p.xnz()
		case "FLAGS":
			p.xbyte(' ')
			flags, haveFlags = p.flagList(q), true
		case "MODSEQ":
			p.xbyte(' ')
			p.xbyte('(')
			p.xmodseq()
			p.xbyte(')')
		default:
			p.xbyte(' ')
			p.skipValue()
		}
	}
	if !p.eof() {
		p.fail("want the end of the response after the FETCH list")
	}
	if uid == 0 {
		p.fail("a FETCH without UID (RFC 7162 section 3.2.4 wants it)")
	}
	if haveFlags {
		slices.Sort(flags)
		q.res.flags[uid] = flags
	}
	if q.gmail {
		gm.flags = flags
		q.res.gmail[uid] = &gm
	}
}

// itemName reads a fetch item's name, a section with it ("BODY[1.MIME]",
// "BODY[HEADER.FIELDS (TO)]<0>").
func (p *qparser) itemName() string {
	start := p.i
	for !p.eof() && atomChar(p.b[p.i]) && p.b[p.i] != '[' {
		p.i++
	}
	if p.i == start {
		p.fail("want a fetch item")
	}
	if p.take('[') {
		for !p.take(']') {
			if p.eof() {
				p.fail("want ]")
			}
			p.i++
		}
		if p.take('<') {
			p.xnumber(1<<32 - 1)
			p.xbyte('>')
		}
	}
	return string(p.b[start:p.i])
}

// flagList reads "(" flag *(SP flag) ")", each flag as go-imap gives it
// on the main connection (canonFlag), so that the ways of asking agree. A
// space after "(" is taken, as go-imap takes it (some servers send one).
func (p *qparser) flagList(q *qconn) []string {
	p.xbyte('(')
	p.take(' ')
	var out []string
	for first := true; !p.take(')'); first = false {
		if !first {
			p.xbyte(' ')
		}
		start := p.i
		p.take('\\')
		p.xatom()
		f := canonFlag(string(p.b[start:p.i]))
		if len(out) >= maxFlagsPerMsg {
			p.fail("more than %d flags on one message", maxFlagsPerMsg)
		}
		if q.res.flagBytes += len(f) + labelOverhead; q.res.flagBytes > maxFlagBytes { // a string header each, as for labels
			p.fail("more than %d bytes of flags", maxFlagBytes)
		}
		out = append(out, f)
	}
	return out
}

// canonFlags maps the lower case of the flags go-imap v2 (beta.8,
// internal.canonicalFlag) writes in a canonical case to that case.
var canonFlags = func() map[string]string {
	m := map[string]string{}
	for _, f := range []imap.Flag{imap.FlagSeen, imap.FlagAnswered, imap.FlagFlagged, imap.FlagDeleted,
		imap.FlagDraft, imap.FlagForwarded, imap.FlagMDNSent, imap.FlagJunk, imap.FlagNotJunk,
		imap.FlagPhishing, imap.FlagImportant} {
		m[strings.ToLower(string(f))] = string(f)
	}
	return m
}()

// canonFlag returns f as go-imap's client gives it: system flags and
// well-known keywords in their canonical case, others as sent.
func canonFlag(f string) string {
	if c, ok := canonFlags[strings.ToLower(f)]; ok {
		return c
	}
	return f
}

// skipValue skips one value: a number, atom, NIL, quoted string, literal
// or parenthesised list of values.
func (p *qparser) skipValue() {
	switch c := p.peek(); {
	case c == '(':
		if p.depth++; p.depth > maxNesting {
			p.fail("lists nested deeper than %d", maxNesting)
		}
		p.i++
		for first := true; !p.take(')'); first = false {
			if !first {
				p.xbyte(' ')
			}
			p.skipValue()
		}
		p.depth--
	case c == '"':
		p.quoted()
	case c == '{':
		p.literal()
	default:
		p.itemName() // an atom, perhaps with a section ("BODY[]")
	}
}

// literal reads "{n}" CRLF and the n bytes readResponse put after it,
// and returns them (a slice of the response, not a copy).
func (p *qparser) literal() []byte {
	p.xbyte('{')
	n := p.xnumber(maxLineBytes)
	p.xbyte('}')
	p.xbyte('\r')
	p.xbyte('\n')
	if uint64(len(p.b)-p.i) < n {
		p.fail("a literal longer than the response")
	}
	b := p.b[p.i : p.i+int(n)]
	p.i += int(n)
	return b
}

// quotable reports whether s can be sent as a quoted string here:
// printable ASCII, no CR, LF or NUL.
func quotable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// quote returns s as a quoted string; s is quotable.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

func hasPrefixFold(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && strings.EqualFold(string(b[:len(prefix)]), prefix)
}

// clip shortens b for an error message.
func clip(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "..."
	}
	return string(b)
}
