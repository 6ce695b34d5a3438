package gmailtest

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Bounds on what a client may send. A line or literal over them, or a
// command over maxCommand in all, is answered BAD and the connection
// closed: the server never buffers without limit and never waits for bytes
// it will not use.
const (
	maxLine      = 64 << 10
	maxLiteral   = 64 << 10
	maxCommand   = 256 << 10
	writeTimeout = 10 * time.Second
)

const (
	capsCommon   = "IMAP4rev1 UNSELECT IDLE NAMESPACE ID CHILDREN X-GM-EXT-1 SPECIAL-USE"
	capsPreLogin = capsCommon + " SASL-IR AUTH=PLAIN"
)

// errTooBig is a command over the bounds; its text is the BAD answer.
type errTooBig string

func (e errTooBig) Error() string { return string(e) }

// session is one connection. Only its goroutine touches it (the IDLE
// reader goroutine only reads br while the session waits for it), except
// wake, on which the server signals changes.
type session struct {
	s    *Server
	conn net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	wake chan struct{}
	o    out
	quit bool

	authed   bool
	sel      *folder
	readOnly bool
	view     []viewEntry // the client's sequence numbers: view[i] is seq i+1
	maxUID   uint32      // the highest UID the view has taken in
}

// viewEntry is one message as the client knows it: under uid, with the
// flags of generation gen last reported (or given at SELECT).
type viewEntry struct {
	uid uint32
	m   *message
	gen uint64
}

// out collects a command's answer. Text is copied; message bodies are
// referenced (they never change), so an answer can be built under the
// server's lock and written after it is released.
type out struct {
	parts [][]byte
	cur   []byte
}

func (o *out) printf(format string, args ...any) { o.cur = fmt.Appendf(o.cur, format, args...) }

func (o *out) raw(b []byte) {
	o.parts = append(o.parts, o.cur, b)
	o.cur = nil
}

func (ss *session) printf(format string, args ...any) { ss.o.printf(format, args...) }

func (ss *session) flush() error {
	ss.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	for _, p := range append(ss.o.parts, ss.o.cur) {
		if _, err := ss.bw.Write(p); err != nil {
			return err
		}
	}
	ss.o = out{}
	return ss.bw.Flush()
}

func (s *Server) serve(c net.Conn, n int) {
	defer s.wg.Done()
	ss := &session{s: s, conn: c, br: bufio.NewReader(c), bw: bufio.NewWriter(c), wake: make(chan struct{}, 1)}
	s.mu.Lock()
	s.sessions[ss] = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.sessions, ss)
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
	ss.printf("* OK Gimap ready for requests from %s gmailtest%d\r\n", host, n)
	if ss.flush() != nil {
		return
	}
	for !ss.quit {
		cmd, err := ss.readCommand()
		if err != nil {
			var big errTooBig
			if errors.As(err, &big) {
				ss.printf("%s BAD %s\r\n* BYE closing the connection\r\n", tagOf(cmd), big)
				ss.flush()
			}
			return
		}
		ss.handle(cmd)
		if ss.flush() != nil {
			return
		}
	}
}

// readLine reads one line of at most maxLine bytes, without its CRLF (a
// bare LF is taken as well). A longer line is not read further.
func (ss *session) readLine() ([]byte, error) {
	var line []byte
	for {
		chunk, err := ss.br.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > maxLine+2 {
			return line[:min(len(line), 128)], errTooBig(fmt.Sprintf("line longer than %d bytes", maxLine))
		}
		if err == nil {
			break
		}
		if err != bufio.ErrBufferFull {
			return line, err
		}
	}
	line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
	if len(line) > maxLine {
		return line[:128], errTooBig(fmt.Sprintf("line longer than %d bytes", maxLine))
	}
	return line, nil
}

// readCommand reads a command line and the literals it announces ("{n}",
// answered "+ go ahead", or LITERAL+'s "{n+}"), assembled as they came:
// "{n}" CRLF and n bytes, which the parser reads as a string.
func (ss *session) readCommand() ([]byte, error) {
	var buf []byte
	for {
		line, err := ss.readLine()
		buf = append(buf, line...)
		if err != nil {
			return buf, err
		}
		n, sync, ok := literalSuffix(line)
		if !ok {
			return buf, nil
		}
		if n > maxLiteral {
			return buf, errTooBig(fmt.Sprintf("literal of more than %d bytes", maxLiteral))
		}
		if len(buf)+int(n) > maxCommand {
			return buf, errTooBig(fmt.Sprintf("command longer than %d bytes", maxCommand))
		}
		if sync {
			ss.printf("+ go ahead\r\n")
			if err := ss.flush(); err != nil {
				return buf, err
			}
		}
		buf = append(buf, '\r', '\n')
		start := len(buf)
		buf = append(buf, make([]byte, n)...)
		if _, err := io.ReadFull(ss.br, buf[start:]); err != nil {
			return buf, err
		}
	}
}

// literalSuffix reads a "{n}" or "{n+}" at the end of line.
func literalSuffix(line []byte) (n uint64, sync, ok bool) {
	if !bytes.HasSuffix(line, []byte("}")) {
		return 0, false, false
	}
	i := bytes.LastIndexByte(line, '{')
	if i < 0 {
		return 0, false, false
	}
	digits := string(line[i+1 : len(line)-1])
	sync = !strings.HasSuffix(digits, "+")
	digits = strings.TrimSuffix(digits, "+")
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return 0, false, false
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	if err != nil {
		n = maxLiteral + 1 // too many digits: too big
	}
	return n, sync, true
}

// tagOf returns the tag a command line starts with, "*" if none.
func tagOf(cmd []byte) string {
	i := 0
	for i < len(cmd) && isAstringChar(cmd[i]) && cmd[i] != '+' {
		i++
	}
	if i == 0 || i > 64 {
		return "*"
	}
	return string(cmd[:i])
}

// commands maps each command to the state it needs: 0 any, 1 not
// authenticated, 2 authenticated, 3 selected.
var commands = map[string]int{
	"CAPABILITY": 0, "NOOP": 0, "LOGOUT": 0, "ID": 0,
	"LOGIN": 1, "AUTHENTICATE": 1,
	"NAMESPACE": 2, "LIST": 2, "STATUS": 2, "SELECT": 2, "EXAMINE": 2, "IDLE": 2,
	"CHECK": 3, "FETCH": 3, "UID FETCH": 3, "STORE": 3, "UID STORE": 3, "SEARCH": 3, "UID SEARCH": 3,
	"EXPUNGE": 3, "CLOSE": 3, "UNSELECT": 3,
}

// handle answers one command. The handlers parse all their arguments
// before they change anything, so a parse error (a parseError panic) is
// answered BAD with nothing done.
func (ss *session) handle(cmd []byte) {
	tag := tagOf(cmd)
	if tag == "*" || len(cmd) <= len(tag) || cmd[len(tag)] != ' ' {
		ss.printf("* BAD Invalid tag\r\n")
		return
	}
	p := &parser{b: cmd, pos: len(tag) + 1}
	defer func() {
		if x := recover(); x != nil {
			perr, ok := x.(parseError)
			if !ok {
				panic(x)
			}
			ss.o = out{}
			ss.printf("%s BAD %s\r\n", tag, perr)
		}
	}()
	name := strings.ToUpper(p.xatom())
	if name == "UID" {
		p.xsp()
		name += " " + strings.ToUpper(p.xatom())
	}
	state, ok := commands[name]
	switch {
	case !ok:
		ss.printf("%s BAD Unknown command\r\n", tag)
		return
	case state == 1 && ss.authed:
		ss.printf("%s BAD Already authenticated\r\n", tag)
		return
	case state >= 2 && !ss.authed, state == 3 && ss.sel == nil:
		ss.printf("%s BAD Command not valid in this state\r\n", tag)
		return
	}
	var status string
	switch name {
	case "CAPABILITY":
		p.xend()
		caps := capsPreLogin
		if ss.authed {
			caps = capsCommon
		}
		ss.printf("* CAPABILITY %s\r\n", caps)
		status = "OK Success"
	case "NOOP", "CHECK":
		p.xend()
		status = "OK Success"
	case "LOGOUT":
		p.xend()
		ss.printf("* BYE LOGOUT Requested\r\n")
		ss.quit = true
		status = "OK 73 good day (Success)"
	case "ID":
		status = ss.cmdID(p)
	case "LOGIN":
		status = ss.cmdLogin(p)
	case "AUTHENTICATE":
		status = ss.cmdAuthenticate(p)
	case "NAMESPACE":
		p.xend()
		ss.printf("* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n")
		status = "OK Success"
	case "LIST":
		status = ss.cmdList(p)
	case "STATUS":
		status = ss.cmdStatus(p)
	case "SELECT", "EXAMINE":
		status = ss.cmdSelect(p, name == "EXAMINE")
	case "IDLE":
		status = ss.cmdIdle(p)
	case "FETCH", "UID FETCH":
		status = ss.cmdFetch(p, name == "UID FETCH")
	case "STORE", "UID STORE":
		status = ss.cmdStore(p, name == "UID STORE")
	case "SEARCH", "UID SEARCH":
		status = ss.cmdSearch(p, name == "UID SEARCH")
	case "EXPUNGE":
		status = ss.cmdExpunge(p)
	case "CLOSE", "UNSELECT":
		status = ss.cmdClose(p, name == "CLOSE")
	}
	if status == "" { // the connection is gone
		ss.quit = true
		return
	}
	if ss.sel != nil && name != "LOGOUT" {
		// RFC 3501 section 7.4.1: no EXPUNGE while answering FETCH, STORE
		// or SEARCH (sequence numbers would shift under the client).
		ss.s.mu.Lock()
		ss.syncLocked(name != "FETCH" && name != "STORE" && name != "SEARCH")
		ss.s.mu.Unlock()
	}
	ss.printf("%s %s\r\n", tag, status)
}

func (ss *session) cmdID(p *parser) string {
	p.xsp()
	if !p.takeFold("NIL") {
		p.xtake('(')
		for n := 0; !p.take(')'); n++ {
			if n > 0 {
				p.xsp()
			}
			if n == 30 {
				p.xerrorf("more than 30 ID fields")
			}
			p.xstring()
			p.xsp()
			p.xnstring()
		}
	}
	p.xend()
	ss.printf("* ID (\"name\" \"GImap\" \"vendor\" \"mailvault harvest/gmailtest\" \"support-url\" \"https://developers.google.com/gmail/imap/imap-extensions\")\r\n")
	return "OK Success"
}

// login checks a user name and password and returns the tagged answer;
// Gmail's user names are case-insensitive.
func (ss *session) login(user, pass string) string {
	if !strings.EqualFold(user, User) || pass != Password {
		return "NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)"
	}
	ss.authed = true
	ss.printf("* CAPABILITY %s\r\n", capsCommon)
	return "OK " + User + " authenticated (Success)"
}

func (ss *session) cmdLogin(p *parser) string {
	p.xsp()
	user := p.xastring()
	p.xsp()
	pass := p.xastring()
	p.xend()
	return ss.login(user, pass)
}

// cmdAuthenticate does SASL PLAIN (RFC 4616), with the initial response on
// the command line (SASL-IR) or after an empty "+ " challenge.
func (ss *session) cmdAuthenticate(p *parser) string {
	p.xsp()
	mech := strings.ToUpper(p.xatom())
	var resp string
	hasIR := p.take(' ')
	if hasIR {
		resp = p.xatom()
	}
	p.xend()
	if mech != "PLAIN" {
		return "NO [CANNOT] Unsupported mechanism (Failure)"
	}
	if !hasIR {
		ss.printf("+ \r\n")
		if ss.flush() != nil {
			return ""
		}
		line, err := ss.readLine()
		if err != nil {
			var big errTooBig
			if errors.As(err, &big) {
				return "BAD " + string(big)
			}
			return ""
		}
		resp = string(line)
	}
	if resp == "*" {
		return "BAD AUTHENTICATE cancelled"
	}
	var dec []byte
	if resp != "=" {
		var err error
		if dec, err = base64.StdEncoding.DecodeString(resp); err != nil {
			return "BAD Invalid SASL response: not base64"
		}
	}
	parts := strings.Split(string(dec), "\x00")
	if len(parts) != 3 {
		return "BAD Invalid SASL PLAIN response"
	}
	if parts[0] != "" && !strings.EqualFold(parts[0], parts[1]) {
		return "NO [AUTHORIZATIONFAILED] Invalid credentials (Failure)"
	}
	return ss.login(parts[1], parts[2])
}

// listPattern compiles a LIST pattern: "*" matches anything, "%" anything
// but the hierarchy delimiter "/".
func listPattern(pat string, fold bool) (*regexp.Regexp, error) {
	var b strings.Builder
	if fold {
		b.WriteString("(?i)")
	}
	b.WriteString("^(?s:")
	for _, r := range pat {
		switch r {
		case '*':
			b.WriteString(".*")
		case '%':
			b.WriteString("[^/]*")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString(")$")
	return regexp.Compile(b.String())
}

// quoteName writes a mailbox name as LIST and STATUS answer it: modified
// UTF-7, quoted.
func quoteName(name string) string {
	return quote(utf7Encode(name))
}

func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

func (ss *session) cmdList(p *parser) string {
	p.xsp()
	if p.peek() == '(' {
		p.xerrorf("LIST selection options need LIST-EXTENDED, which is not offered")
	}
	ref, err := utf7Decode(p.xastring())
	if err != nil {
		p.xerrorf("reference: %v", err)
	}
	p.xsp()
	pat, err := utf7Decode(p.xlistMailbox())
	if err != nil {
		p.xerrorf("pattern: %v", err)
	}
	if p.take(' ') {
		p.xerrorf("LIST RETURN options need LIST-EXTENDED, which is not offered")
	}
	p.xend()
	if pat == "" {
		ss.printf("* LIST (\\Noselect) \"/\" \"\"\r\n")
		return "OK Success"
	}
	exact, err := listPattern(ref+pat, false)
	if err != nil {
		return "BAD Pattern too complex"
	}
	folded, err := listPattern(ref+pat, true)
	if err != nil {
		return "BAD Pattern too complex"
	}
	ss.s.mu.Lock()
	defer ss.s.mu.Unlock()
	folders := ss.s.sortedFoldersLocked()
	for _, f := range folders {
		if !exact.MatchString(f.name) && !(f.name == Inbox && folded.MatchString(f.name)) {
			continue
		}
		var attrs []string
		children := `\HasNoChildren`
		for _, g := range folders {
			if strings.HasPrefix(g.name, f.name+"/") {
				children = `\HasChildren`
				break
			}
		}
		attrs = append(attrs, children)
		if f.noselect {
			attrs = append(attrs, `\Noselect`)
		}
		if f.attr != "" {
			attrs = append(attrs, f.attr)
		}
		ss.printf("* LIST (%s) \"/\" %s\r\n", strings.Join(attrs, " "), quoteName(f.name))
	}
	return "OK Success"
}

// selectable returns the folder name names, or nil and the NO answer.
func (ss *session) selectable(name string) (*folder, string) {
	f := ss.s.folders[name]
	if f == nil || f.noselect {
		return nil, fmt.Sprintf("NO [NONEXISTENT] Unknown Mailbox: %s (Failure)", utf7Encode(name))
	}
	return f, ""
}

func (ss *session) cmdStatus(p *parser) string {
	p.xsp()
	name := p.xmailbox()
	p.xsp()
	p.xtake('(')
	var items []string
	for !p.take(')') {
		if len(items) > 0 {
			p.xsp()
		}
		it := strings.ToUpper(p.xatom())
		switch it {
		case "MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "RECENT":
		default:
			p.xerrorf("STATUS item %q is not offered", it)
		}
		items = append(items, it)
	}
	if len(items) == 0 {
		p.xerrorf("STATUS needs at least one item")
	}
	p.xend()
	ss.s.mu.Lock()
	defer ss.s.mu.Unlock()
	f, no := ss.selectable(name)
	if f == nil {
		return no
	}
	var vals []string
	for _, it := range items {
		var v uint32
		switch it {
		case "MESSAGES":
			v = uint32(len(f.msgs))
		case "UIDNEXT":
			v = f.uidNext
		case "UIDVALIDITY":
			v = f.validity
		case "UNSEEN":
			for _, m := range f.msgs {
				if m.flags[`\seen`] == "" {
					v++
				}
			}
		}
		vals = append(vals, fmt.Sprintf("%s %d", it, v))
	}
	ss.printf("* STATUS %s (%s)\r\n", quoteName(f.name), strings.Join(vals, " "))
	return "OK Success"
}

func (ss *session) cmdSelect(p *parser, examine bool) string {
	p.xsp()
	name := p.xmailbox()
	if p.take(' ') {
		p.xerrorf("SELECT parameters (CONDSTORE, QRESYNC) are not offered")
	}
	p.xend()
	ss.sel, ss.view, ss.maxUID = nil, nil, 0
	ss.s.mu.Lock()
	defer ss.s.mu.Unlock()
	f, no := ss.selectable(name)
	if f == nil {
		return no
	}
	ss.sel, ss.readOnly = f, examine
	for i, m := range f.msgs {
		ss.view = append(ss.view, viewEntry{uid: f.uids[i], m: m, gen: m.flagGen})
	}
	if n := len(f.uids); n > 0 {
		ss.maxUID = f.uids[n-1]
	}
	flags := strings.Join(folderFlags(f), " ")
	ss.printf("* FLAGS (%s)\r\n", flags)
	if examine {
		ss.printf("* OK [PERMANENTFLAGS ()] Flags permitted.\r\n")
	} else {
		ss.printf("* OK [PERMANENTFLAGS (%s \\*)] Flags permitted.\r\n", flags)
	}
	ss.printf("* OK [UIDVALIDITY %d] UIDs valid.\r\n", f.validity)
	ss.printf("* %d EXISTS\r\n* 0 RECENT\r\n", len(ss.view))
	ss.printf("* OK [UIDNEXT %d] Predicted next UID.\r\n", f.uidNext)
	if examine {
		return fmt.Sprintf("OK [READ-ONLY] %s selected. (Success)", utf7Encode(f.name))
	}
	return fmt.Sprintf("OK [READ-WRITE] %s selected. (Success)", utf7Encode(f.name))
}

// folderFlags are the FLAGS of a folder: the system flags and the keywords
// its messages have.
func folderFlags(f *folder) []string {
	out := append([]string(nil), systemFlags...)
	seen := map[string]bool{}
	var kw []string
	for _, m := range f.msgs {
		for k, v := range m.flags {
			if !strings.HasPrefix(k, `\`) && !seen[k] {
				seen[k] = true
				kw = append(kw, v)
			}
		}
	}
	slices.Sort(kw)
	return append(out, kw...)
}

// cmdIdle reports changes as they happen until the client sends DONE.
func (ss *session) cmdIdle(p *parser) string {
	p.xend()
	ss.printf("+ idling\r\n")
	type result struct {
		line []byte
		err  error
	}
	done := make(chan result, 1)
	ss.s.wg.Add(1)
	go func() {
		defer ss.s.wg.Done()
		line, err := ss.readLine()
		done <- result{line, err}
	}()
	for {
		if ss.sel != nil {
			ss.s.mu.Lock()
			ss.syncLocked(true)
			ss.s.mu.Unlock()
		}
		if ss.flush() != nil {
			ss.conn.Close()
			<-done
			return ""
		}
		select {
		case <-ss.wake:
		case r := <-done:
			if r.err != nil {
				var big errTooBig
				if errors.As(r.err, &big) {
					ss.printf("* BAD %s\r\n* BYE closing the connection\r\n", big)
					ss.flush()
				}
				return ""
			}
			if !strings.EqualFold(string(r.line), "DONE") {
				return "BAD Expected DONE"
			}
			return "OK IDLE terminated (Success)"
		}
	}
}

// syncLocked tells the client what changed in its folder since it last
// heard: EXPUNGE for each message that left (if allowed now; from the
// highest sequence number down, so each number is right when sent),
// EXISTS for new ones, FETCH (UID FLAGS) for flag changes.
func (ss *session) syncLocked(expunge bool) {
	f := ss.sel
	if expunge {
		for i := len(ss.view) - 1; i >= 0; i-- {
			e := ss.view[i]
			if uid, ok := f.index[e.m]; !ok || uid != e.uid {
				ss.printf("* %d EXPUNGE\r\n", i+1)
				ss.view = append(ss.view[:i], ss.view[i+1:]...)
			}
		}
	}
	n := len(ss.view)
	start, _ := slices.BinarySearch(f.uids, ss.maxUID+1)
	for i := start; i < len(f.uids); i++ {
		ss.view = append(ss.view, viewEntry{uid: f.uids[i], m: f.msgs[i], gen: f.msgs[i].flagGen})
		ss.maxUID = f.uids[i]
	}
	if len(ss.view) > n {
		ss.printf("* %d EXISTS\r\n", len(ss.view))
	}
	for i := range ss.view {
		e := &ss.view[i]
		if uid, ok := f.index[e.m]; ok && uid == e.uid && e.gen != e.m.flagGen {
			ss.printf("* %d FETCH (UID %d FLAGS (%s))\r\n", i+1, e.uid, strings.Join(sortedFlags(e.m), " "))
			e.gen = e.m.flagGen
		}
	}
}
