package gmailtest

import (
	"fmt"
	"slices"
	"strings"
)

// The commands of the selected state: FETCH, STORE, SEARCH (each also as
// UID ...), EXPUNGE, CLOSE, UNSELECT.

const dateLayout = "02-Jan-2006 15:04:05 -0700"

// fetchItems are the FETCH items the server answers.
var fetchItems = map[string]bool{
	"UID": true, "FLAGS": true, "INTERNALDATE": true, "RFC822.SIZE": true,
	"X-GM-MSGID": true, "X-GM-THRID": true, "X-GM-LABELS": true,
	"BODY[]": true, "BODY.PEEK[]": true,
}

// resolve turns a set into indexes of the view, ascending. A sequence
// number beyond the view (or any, in an empty folder) is BAD, as RFC 3501
// asks; a UID set matches the UIDs it covers ("*" is the highest UID the
// client knows, so "n:*" always covers the last message).
func (ss *session) resolve(set numSet, uid bool) ([]int, string) {
	n := len(ss.view)
	var in []bool
	if !uid {
		in = make([]bool, n)
		for _, r := range set {
			a, b := r.a, r.b
			if a == 0 {
				a = uint32(n)
			}
			if b == 0 {
				b = uint32(n)
			}
			a, b = min(a, b), max(a, b)
			if a == 0 || int64(b) > int64(n) {
				return nil, "BAD [CLIENTBUG] Invalid sequence set (Failure)"
			}
			for i := a; i <= b; i++ {
				in[i-1] = true
			}
		}
	} else if n > 0 {
		in = make([]bool, n)
		last := ss.view[n-1].uid
		for _, r := range set {
			a, b := r.a, r.b
			if a == 0 {
				a = last
			}
			if b == 0 {
				b = last
			}
			a, b = min(a, b), max(a, b)
			for i, e := range ss.view {
				if e.uid >= a && e.uid <= b {
					in[i] = true
				}
			}
		}
	}
	var idx []int
	for i, ok := range in {
		if ok {
			idx = append(idx, i)
		}
	}
	return idx, ""
}

func (ss *session) cmdFetch(p *parser, uid bool) string {
	p.xsp()
	set := p.xnumSet()
	p.xsp()
	var items []string
	if p.take('(') {
		for !p.take(')') {
			if len(items) > 0 {
				p.xsp()
			}
			items = append(items, p.xfetchAtt())
		}
	} else {
		items = append(items, p.xfetchAtt())
	}
	if p.take(' ') {
		p.xerrorf("FETCH modifiers (CHANGEDSINCE) are not offered")
	}
	p.xend()
	if len(items) == 0 {
		p.xerrorf("FETCH needs at least one item")
	}
	for _, it := range items {
		if !fetchItems[it] {
			p.xerrorf("FETCH item %s is not offered by this test server", it)
		}
	}
	idx, bad := ss.resolve(set, uid)
	if bad != "" {
		return bad
	}
	if uid && !slices.Contains(items, "UID") {
		items = append([]string{"UID"}, items...)
	}
	s := ss.s
	s.mu.Lock()
	defer s.mu.Unlock()
	changed := false
	for _, i := range idx {
		e := &ss.view[i]
		m := e.m
		// BODY[] sets \Seen (RFC 3501 section 6.4.5), before the items are
		// written, so a FLAGS item shows it; without one, FLAGS is added.
		seen := false
		if !ss.readOnly && slices.Contains(items, "BODY[]") && m.flags[`\seen`] == "" {
			m.flags[`\seen`] = `\Seen`
			m.flagGen++
			seen, changed = true, true
		}
		ss.printf("* %d FETCH (", i+1)
		for j, it := range items {
			if j > 0 {
				ss.printf(" ")
			}
			switch it {
			case "UID":
				ss.printf("UID %d", e.uid)
			case "FLAGS":
				ss.printf("FLAGS (%s)", strings.Join(sortedFlags(m), " "))
			case "INTERNALDATE":
				ss.printf("INTERNALDATE \"%s\"", m.date.Format(dateLayout))
			case "RFC822.SIZE":
				ss.printf("RFC822.SIZE %d", len(m.raw))
			case "X-GM-MSGID":
				ss.printf("X-GM-MSGID %d", m.msgid)
			case "X-GM-THRID":
				ss.printf("X-GM-THRID %d", m.thrid)
			case "X-GM-LABELS":
				ss.printf("X-GM-LABELS %s", s.gmLabelsLocked(m, ss.sel))
			case "BODY[]", "BODY.PEEK[]":
				ss.printf("BODY[] {%d}\r\n", len(m.raw))
				ss.o.raw(m.raw)
				s.bodyFetches++
			}
		}
		if seen && !slices.Contains(items, "FLAGS") {
			ss.printf(" FLAGS (%s)", strings.Join(sortedFlags(m), " "))
		}
		ss.printf(")\r\n")
		if seen {
			e.gen = m.flagGen
		}
	}
	if changed {
		s.wakeLocked()
	}
	return "OK Success"
}

// gmLabelsLocked is the X-GM-LABELS list of m seen from folder sel: system
// labels as flags (\Inbox, \Sent, ... \Spam, \Trash), user labels by name in
// modified UTF-7, an atom where one will do, else quoted. The selected
// folder's own label is listed unless Options.OmitSelectedLabel.
func (s *Server) gmLabelsLocked(m *message, sel *folder) string {
	omit := ""
	if s.opts.OmitSelectedLabel {
		omit = sel.name
	}
	var out, user []string
	for _, sl := range systemLabels {
		if m.labels[sl.folder] && sl.folder != omit {
			out = append(out, sl.label)
		}
	}
	for l := range m.labels {
		if f := s.folders[l]; f != nil && !strings.HasPrefix(f.label, `\`) && l != omit {
			user = append(user, l)
		}
	}
	slices.Sort(user)
	for _, l := range user {
		out = append(out, labelString(l))
	}
	return "(" + strings.Join(out, " ") + ")"
}

// labelString writes a user label as an astring: an atom if it is all
// ATOM-CHARs (and not NIL), else quoted; never starting with "\", which
// would read as a system label.
func labelString(l string) string {
	enc := utf7Encode(l)
	atom := enc != "" && !strings.EqualFold(enc, "NIL")
	for i := 0; i < len(enc) && atom; i++ {
		atom = isAtomChar(enc[i])
	}
	if atom {
		return enc
	}
	return quote(enc)
}

func (ss *session) cmdStore(p *parser, uid bool) string {
	p.xsp()
	set := p.xnumSet()
	p.xsp()
	item := strings.ToUpper(p.xatom())
	op := item[0]
	if op == '+' || op == '-' {
		item = item[1:]
	} else {
		op = 0
	}
	silent := strings.HasSuffix(item, ".SILENT")
	item = strings.TrimSuffix(item, ".SILENT")
	if item != "FLAGS" && item != "X-GM-LABELS" {
		p.xerrorf("STORE item %q is not offered (FLAGS and X-GM-LABELS are)", item)
	}
	p.xsp()
	var values []string
	var refused error
	if item == "FLAGS" {
		fl, err := canonFlags(p.xflags())
		if err != nil {
			p.xerrorf("%v", err)
		}
		values = fl
	} else {
		for _, l := range p.xlabels() {
			if !strings.HasPrefix(l, `\`) {
				dec, err := utf7Decode(l)
				if err != nil {
					p.xerrorf("label %q: %v", l, err)
				}
				l = dec
			}
			name, err := labelFolder(l)
			if err != nil && refused == nil {
				refused = err
			}
			values = append(values, name)
		}
	}
	p.xend()
	if ss.readOnly {
		return "NO STORE attempt on READ-ONLY folder (Failure)"
	}
	if refused != nil {
		return fmt.Sprintf("NO %v (Failure)", refused)
	}
	idx, bad := ss.resolve(set, uid)
	if bad != "" {
		return bad
	}
	var add, remove []string
	switch op {
	case '+':
		add = values
	case '-':
		remove = values
	default:
		add = values
	}
	s := ss.s
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, i := range idx {
		e := &ss.view[i]
		m := e.m
		if m.gone {
			continue
		}
		if item == "FLAGS" {
			s.changeFlagsLocked(m, add, remove, op == 0)
		} else {
			s.changeLabelsLocked(m, add, remove, op == 0)
		}
		s.placeLocked(m)
		if !silent {
			ss.printf("* %d FETCH (", i+1)
			if uid {
				ss.printf("UID %d ", e.uid)
			}
			if item == "FLAGS" {
				ss.printf("FLAGS (%s))\r\n", strings.Join(sortedFlags(m), " "))
			} else {
				ss.printf("X-GM-LABELS %s)\r\n", s.gmLabelsLocked(m, ss.sel))
			}
		}
		// The client knows the flags it stored (also with .SILENT, which
		// asks not to hear them). A label change that moved \Flagged is
		// reported by syncLocked as FETCH FLAGS.
		if item == "FLAGS" {
			e.gen = m.flagGen
		}
	}
	return "OK Success"
}

// searchKey is one key of the SEARCH subset: ALL, a sequence set, UID set,
// X-GM-MSGID n, X-GM-THRID n. Keys are ANDed.
type searchKey struct {
	kind string // "ALL", "SEQ", "UID", "X-GM-MSGID", "X-GM-THRID"
	set  numSet
	n    uint64
}

func (p *parser) xsearchKey() searchKey {
	if c := p.peek(); c == '*' || (c >= '0' && c <= '9') {
		return searchKey{kind: "SEQ", set: p.xnumSet()}
	}
	k := strings.ToUpper(p.xatom())
	switch k {
	case "ALL":
		return searchKey{kind: k}
	case "UID":
		p.xsp()
		return searchKey{kind: k, set: p.xnumSet()}
	case "X-GM-MSGID", "X-GM-THRID":
		p.xsp()
		return searchKey{kind: k, n: p.xnumber64()}
	}
	p.xerrorf("SEARCH key %s is not offered by this test server (ALL, sequence sets, UID, X-GM-MSGID, X-GM-THRID are)", k)
	return searchKey{}
}

// inSet says whether n is in set, "*" being last.
func inSet(set numSet, n, last uint32) bool {
	for _, r := range set {
		a, b := r.a, r.b
		if a == 0 {
			a = last
		}
		if b == 0 {
			b = last
		}
		if n >= min(a, b) && n <= max(a, b) {
			return true
		}
	}
	return false
}

func (ss *session) cmdSearch(p *parser, uid bool) string {
	p.xsp()
	if p.takeFold("RETURN") {
		p.xerrorf("SEARCH RETURN needs ESEARCH, which is not offered")
	}
	badCharset := false
	if p.takeFold("CHARSET ") {
		cs := p.xastring()
		badCharset = !strings.EqualFold(cs, "US-ASCII") && !strings.EqualFold(cs, "UTF-8")
		p.xsp()
	}
	var keys []searchKey
	for {
		keys = append(keys, p.xsearchKey())
		if !p.take(' ') {
			break
		}
	}
	p.xend()
	if badCharset {
		return "NO [BADCHARSET (US-ASCII UTF-8)] Unsupported charset (Failure)"
	}
	s := ss.s
	s.mu.Lock()
	defer s.mu.Unlock()
	n := uint32(len(ss.view))
	var lastUID uint32
	if n > 0 {
		lastUID = ss.view[n-1].uid
	}
	var hits []string
	for i, e := range ss.view {
		// Messages that left the folder (their EXPUNGE not yet sent) are
		// not found.
		if uid, ok := ss.sel.index[e.m]; !ok || uid != e.uid {
			continue
		}
		match := true
		for _, k := range keys {
			switch k.kind {
			case "SEQ":
				match = inSet(k.set, uint32(i+1), n)
			case "UID":
				match = inSet(k.set, e.uid, lastUID)
			case "X-GM-MSGID":
				match = e.m.msgid == k.n
			case "X-GM-THRID":
				match = e.m.thrid == k.n
			}
			if !match {
				break
			}
		}
		if !match {
			continue
		}
		if uid {
			hits = append(hits, fmt.Sprint(e.uid))
		} else {
			hits = append(hits, fmt.Sprint(i+1))
		}
	}
	ss.printf("* SEARCH")
	for _, h := range hits {
		ss.printf(" %s", h)
	}
	ss.printf("\r\n")
	return "OK SEARCH completed (Success)"
}

func (ss *session) cmdExpunge(p *parser) string {
	p.xend()
	if ss.readOnly {
		return "NO EXPUNGE attempt on READ-ONLY folder (Failure)"
	}
	ss.s.mu.Lock()
	ss.s.expungeLocked(ss.sel)
	ss.s.mu.Unlock()
	return "OK Success"
}

// cmdClose is CLOSE (expunge silently if read-write, then deselect) and
// UNSELECT (deselect).
func (ss *session) cmdClose(p *parser, expunge bool) string {
	p.xend()
	if expunge && !ss.readOnly {
		ss.s.mu.Lock()
		ss.s.expungeLocked(ss.sel)
		ss.s.mu.Unlock()
	}
	ss.sel, ss.view, ss.maxUID = nil, nil, 0
	return "OK Returned to authenticated state. (Success)"
}

// expungeLocked removes f's \Deleted messages from f as Gmail does by
// default ("auto-expunge", "archive the message"): from a label's folder
// the label goes (the message stays in All Mail); from All Mail the message
// goes to Trash (losing its labels); from Spam or Trash it is deleted
// forever. The message's \Deleted flag is cleared.
func (s *Server) expungeLocked(f *folder) {
	for _, m := range slices.Clone(f.msgs) {
		if m.flags[`\deleted`] == "" {
			continue
		}
		delete(m.flags, `\deleted`)
		m.flagGen++
		switch f.name {
		case Spam, Trash:
			s.deleteLocked(m)
			continue
		case AllMail:
			s.changeLabelsLocked(m, []string{Trash}, nil, true)
		default:
			s.changeLabelsLocked(m, nil, []string{f.name}, false)
		}
		s.placeLocked(m)
	}
}
