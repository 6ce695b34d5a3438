package gmailtest

import (
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// User and Password are the one account of the server.
const (
	User     = "alice@gmail.test"
	Password = "secret"
)

// The system folders, by the names Gmail gives them.
const (
	Inbox     = "INBOX"
	AllMail   = "[Gmail]/All Mail"
	SentMail  = "[Gmail]/Sent Mail"
	Drafts    = "[Gmail]/Drafts"
	Important = "[Gmail]/Important"
	Starred   = "[Gmail]/Starred"
	Spam      = "[Gmail]/Spam"
	Trash     = "[Gmail]/Trash"
	gmailRoot = "[Gmail]"
)

// systemLabels maps the system labels, as X-GM-LABELS and Add spell them,
// to their folders and special-use attributes. The order is the order of
// X-GM-LABELS answers.
var systemLabels = []struct{ label, folder, attr string }{
	{`\Inbox`, Inbox, ""},
	{`\Sent`, SentMail, `\Sent`},
	{`\Draft`, Drafts, `\Drafts`},
	{`\Important`, Important, `\Important`},
	{`\Starred`, Starred, `\Flagged`},
	{`\Spam`, Spam, `\Junk`},
	{`\Trash`, Trash, `\Trash`},
}

// systemFlags are the flags of RFC 3501 a client may store; \Recent is not
// one.
var systemFlags = []string{`\Answered`, `\Flagged`, `\Deleted`, `\Seen`, `\Draft`}

// Options change the server's answers. A nil *Options is the zero value.
type Options struct {
	// OmitSelectedLabel leaves the selected folder's own label out of
	// X-GM-LABELS: \Inbox when INBOX is selected, "foo" in folder foo. By
	// default it is listed (see the package doc).
	OmitSelectedLabel bool
}

// Server is one Gmail-like account on a loopback port. All its state (the
// messages, the folders with their UIDs, the sessions) is guarded by mu;
// the API methods may be called from any goroutine, and each change wakes
// the sessions, which report it as Gmail does (EXISTS, EXPUNGE, FETCH
// FLAGS). A bad argument (an unknown label or message) fails the test with
// t.Fatalf, which works only on the test's goroutine. A session's view of
// its selected folder (sequence numbers) is its own, touched only by its
// goroutine.
type Server struct {
	tb   testing.TB
	ln   net.Listener
	opts Options
	wg   sync.WaitGroup

	mu          sync.Mutex
	closed      bool
	conns       map[net.Conn]bool
	sessions    map[*session]bool
	folders     map[string]*folder
	msgs        map[uint64]*message
	threads     map[string]uint64 // Message-ID → X-GM-THRID, kept after Delete
	lastMsgID   uint64
	validity    uint32 // the last UIDVALIDITY given to a folder
	connCount   int
	bodyFetches int
}

// folder is a label's view (or All Mail's, Spam's, Trash's): the messages
// with the label, each under the UID it got when it entered, ascending.
type folder struct {
	name     string // UTF-8
	label    string // X-GM-LABELS spelling; "" for All Mail and [Gmail]
	attr     string // special-use attribute, or ""
	noselect bool
	validity uint32
	uidNext  uint32
	uids     []uint32
	msgs     []*message
	index    map[*message]uint32
}

func (f *folder) add(m *message) {
	uid := f.uidNext
	f.uidNext++
	f.uids = append(f.uids, uid)
	f.msgs = append(f.msgs, m)
	f.index[m] = uid
}

func (f *folder) remove(m *message) {
	uid, ok := f.index[m]
	if !ok {
		return
	}
	i, _ := slices.BinarySearch(f.uids, uid)
	f.uids = slices.Delete(f.uids, i, i+1)
	f.msgs = slices.Delete(f.msgs, i, i+1)
	delete(f.index, m)
}

// message is one Gmail message: its flags are the message's own and the
// same in every folder it is in (Gmail keeps them so); its labels are
// folder names.
type message struct {
	msgid, thrid uint64
	raw          []byte // never changed after Add
	date         time.Time
	messageID    string
	flags        map[string]string // lower case → spelling
	labels       map[string]bool   // folder names, All Mail not among them
	flagGen      uint64            // counts flag changes, for the sessions' FLAGS reports
	gone         bool
}

// Start starts a server with default options; it stops when the test ends.
func Start(t testing.TB) *Server { return StartWith(t, nil) }

// StartWith starts a server with opts on a free loopback port, clear text;
// it stops (every connection closed, every goroutine ended) when the test
// ends.
func StartWith(t testing.TB, opts *Options) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("gmailtest: listen: %v", err)
	}
	s := &Server{
		tb:       t,
		ln:       ln,
		conns:    map[net.Conn]bool{},
		sessions: map[*session]bool{},
		folders:  map[string]*folder{},
		msgs:     map[uint64]*message{},
		threads:  map[string]uint64{},
		// Like Dovecot, UIDVALIDITY from the clock: a server started
		// again later does not repeat the last one's values.
		validity: uint32(time.Now().Unix()) & 0x3fffffff,
	}
	if opts != nil {
		s.opts = *opts
	}
	s.newFolder(Inbox, `\Inbox`, "")
	s.newFolder(gmailRoot, "", "").noselect = true
	s.newFolder(AllMail, "", `\All`)
	for _, sl := range systemLabels[1:] {
		s.newFolder(sl.folder, sl.label, sl.attr)
	}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(s.stop)
	return s
}

// Addr is the host:port of the plain IMAP listener.
func (s *Server) Addr() string { return s.ln.Addr().String() }

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = true
		s.connCount++
		n := s.connCount
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serve(c, n)
	}
}

func (s *Server) stop() {
	s.mu.Lock()
	s.closed = true
	s.ln.Close()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *Server) newFolder(name, label, attr string) *folder {
	s.validity++
	f := &folder{name: name, label: label, attr: attr, validity: s.validity, uidNext: 1, index: map[*message]uint32{}}
	s.folders[name] = f
	return f
}

// ensureFolder returns the folder of a user label, making it and its
// parents ("a" for "a/b") on first use, as Gmail makes a label's parents.
func (s *Server) ensureFolder(name string) *folder {
	if f := s.folders[name]; f != nil {
		return f
	}
	if i := strings.LastIndexByte(name, '/'); i > 0 {
		s.ensureFolder(name[:i])
	}
	return s.newFolder(name, name, "")
}

// labelFolder resolves a label as a client or a test names it to a folder
// name: `\Inbox`, `\Sent`, ... (any case) to the system folder, "INBOX" (any
// case) to INBOX, anything else to the user label of that name. Names under
// "[Gmail]", unknown `\` labels, empty path components and control
// characters are refused.
func labelFolder(l string) (string, error) {
	if strings.HasPrefix(l, `\`) {
		for _, sl := range systemLabels {
			if strings.EqualFold(l, sl.label) {
				return sl.folder, nil
			}
		}
		return "", fmt.Errorf("unknown system label %q", l)
	}
	if strings.EqualFold(l, Inbox) {
		return Inbox, nil
	}
	if l == gmailRoot || strings.HasPrefix(l, gmailRoot+"/") {
		return "", fmt.Errorf("label %q: names under [Gmail] are Gmail's own", l)
	}
	if l == "" || strings.HasPrefix(l, "/") || strings.HasSuffix(l, "/") || strings.Contains(l, "//") {
		return "", fmt.Errorf("label %q: empty name or path component", l)
	}
	for _, r := range l {
		if r < 0x20 || r == 0x7f {
			return "", fmt.Errorf("label %q: control character", l)
		}
	}
	return l, nil
}

// canonFlag returns a flag's spelling to store: a system flag in RFC 3501's
// case, a keyword as given.
func canonFlag(f string) (string, error) {
	if strings.HasPrefix(f, `\`) {
		for _, sf := range systemFlags {
			if strings.EqualFold(f, sf) {
				return sf, nil
			}
		}
		return "", fmt.Errorf("flag %q cannot be stored", f)
	}
	if f == "" {
		return "", fmt.Errorf("empty flag")
	}
	for i := 0; i < len(f); i++ {
		if !isAtomChar(f[i]) {
			return "", fmt.Errorf("flag %q is not an atom", f)
		}
	}
	return f, nil
}

func canonFlags(flags []string) ([]string, error) {
	out := make([]string, 0, len(flags))
	for _, f := range flags {
		c, err := canonFlag(f)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func labelFolders(labels []string) ([]string, error) {
	out := make([]string, 0, len(labels))
	for _, l := range labels {
		name, err := labelFolder(l)
		if err != nil {
			return nil, err
		}
		out = append(out, name)
	}
	return out, nil
}

// Add delivers raw with flags and labels and returns its X-GM-MSGID. Labels
// are spelled as in X-GM-LABELS: `\Inbox`, `\Sent`, `\Draft`, `\Important`,
// `\Starred`, and `\Spam`, `\Trash` for those folders; user labels by name
// (UTF-8, "/" nesting; the folder is made on first use). No label at all is
// an archived message, in All Mail only. \Flagged and \Starred imply each
// other. The thread (X-GM-THRID) is that of a message already added whose
// Message-ID the In-Reply-To or References field names, else a new one.
func (s *Server) Add(raw []byte, flags []string, labels ...string) uint64 {
	s.tb.Helper()
	fl, err := canonFlags(flags)
	if err != nil {
		s.tb.Fatalf("gmailtest: add: %v", err)
	}
	ls, err := labelFolders(labels)
	if err != nil {
		s.tb.Fatalf("gmailtest: add: %v", err)
	}
	h := parseHeader(raw)
	s.mu.Lock()
	defer s.mu.Unlock()
	id := max(s.lastMsgID+1, uint64(time.Now().UnixMilli())<<20)
	s.lastMsgID = id
	m := &message{
		msgid:     id,
		thrid:     id,
		raw:       slices.Clone(raw),
		date:      time.Now().Truncate(time.Second),
		messageID: h.messageID,
		flags:     map[string]string{},
		labels:    map[string]bool{},
	}
	for _, ref := range h.refs {
		if thrid, ok := s.threads[ref]; ok {
			m.thrid = thrid
			break
		}
	}
	for _, f := range fl {
		m.flags[strings.ToLower(f)] = f
	}
	for _, l := range ls {
		s.ensureFolder(l)
		m.labels[l] = true
	}
	if m.labels[Starred] || m.flags[`\flagged`] != "" {
		m.labels[Starred] = true
		m.flags[`\flagged`] = `\Flagged`
	}
	s.msgs[id] = m
	if _, ok := s.threads[m.messageID]; m.messageID != "" && !ok {
		s.threads[m.messageID] = m.thrid
	}
	s.placeLocked(m)
	return id
}

// SetLabels adds and removes labels of the message msgid (spelled as for
// Add), as STORE +X-GM-LABELS and -X-GM-LABELS do: the message enters the
// folders of the added labels under new UIDs and leaves the others.
func (s *Server) SetLabels(msgid uint64, add, remove []string) {
	s.tb.Helper()
	a, err := labelFolders(add)
	if err != nil {
		s.tb.Fatalf("gmailtest: set labels of %d: %v", msgid, err)
	}
	r, err := labelFolders(remove)
	if err != nil {
		s.tb.Fatalf("gmailtest: set labels of %d: %v", msgid, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.msgs[msgid]
	if m == nil {
		s.tb.Fatalf("gmailtest: set labels: no message %d", msgid)
	}
	s.changeLabelsLocked(m, a, r, false)
	s.placeLocked(m)
}

// SetFlags replaces the flags of the message msgid (in every folder).
func (s *Server) SetFlags(msgid uint64, flags []string) {
	s.tb.Helper()
	fl, err := canonFlags(flags)
	if err != nil {
		s.tb.Fatalf("gmailtest: set flags of %d: %v", msgid, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.msgs[msgid]
	if m == nil {
		s.tb.Fatalf("gmailtest: set flags: no message %d", msgid)
	}
	s.changeFlagsLocked(m, fl, nil, true)
	s.placeLocked(m)
}

// Delete removes the message msgid from every folder, as deleting it forever
// from Trash does.
func (s *Server) Delete(msgid uint64) {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.msgs[msgid]
	if m == nil {
		s.tb.Fatalf("gmailtest: delete: no message %d", msgid)
	}
	s.deleteLocked(m)
}

func (s *Server) deleteLocked(m *message) {
	m.gone = true
	delete(s.msgs, m.msgid)
	s.placeLocked(m)
}

// BodyFetches is how many BODY[] and BODY.PEEK[] items the server has
// answered, over all sessions.
func (s *Server) BodyFetches() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bodyFetches
}

// Mailboxes lists the selectable folders in LIST order (so not "[Gmail]"
// itself), names in UTF-8.
func (s *Server) Mailboxes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, f := range s.sortedFoldersLocked() {
		if !f.noselect {
			out = append(out, f.name)
		}
	}
	return out
}

// UID is the UID of message msgid in mailbox, 0 if it is not there.
func (s *Server) UID(mailbox string, msgid uint64) uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, m := s.folders[mailbox], s.msgs[msgid]
	if f == nil || m == nil {
		return 0
	}
	return f.index[m]
}

// UIDValidity is the UIDVALIDITY of mailbox, 0 if there is no such mailbox.
func (s *Server) UIDValidity(mailbox string) uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f := s.folders[mailbox]; f != nil && !f.noselect {
		return f.validity
	}
	return 0
}

// sortedFoldersLocked returns the folders in LIST order: INBOX, then by
// name.
func (s *Server) sortedFoldersLocked() []*folder {
	out := make([]*folder, 0, len(s.folders))
	for _, f := range s.folders {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].name, out[j].name
		if (a == Inbox) != (b == Inbox) {
			return a == Inbox
		}
		return a < b
	})
	return out
}

// memberLocked says whether m belongs in f: All Mail holds every message
// outside Spam and Trash, any other folder the messages with its label.
func memberLocked(f *folder, m *message) bool {
	switch {
	case m.gone || f.noselect:
		return false
	case f.name == AllMail:
		return !m.labels[Spam] && !m.labels[Trash]
	default:
		return m.labels[f.name]
	}
}

// placeLocked puts m in the folders it belongs in (a new UID in each it
// enters) and out of the others, then wakes the sessions.
func (s *Server) placeLocked(m *message) {
	for _, f := range s.folders {
		_, have := f.index[m]
		switch want := memberLocked(f, m); {
		case want && !have:
			f.add(m)
		case !want && have:
			f.remove(m)
		}
	}
	s.wakeLocked()
}

// changeLabelsLocked adds and removes labels (folder names); replace drops
// every other label first. Starred and \Flagged follow each other.
func (s *Server) changeLabelsLocked(m *message, add, remove []string, replace bool) {
	if replace {
		clear(m.labels)
	}
	for _, l := range remove {
		delete(m.labels, l)
	}
	for _, l := range add {
		s.ensureFolder(l)
		m.labels[l] = true
	}
	if flagged := m.flags[`\flagged`] != ""; flagged != m.labels[Starred] {
		if m.labels[Starred] {
			m.flags[`\flagged`] = `\Flagged`
		} else {
			delete(m.flags, `\flagged`)
		}
		m.flagGen++
	}
}

// changeFlagsLocked adds and removes flags (canonical spellings); replace
// drops every other flag first. Starred and \Flagged follow each other.
// It reports whether the flags changed.
func (s *Server) changeFlagsLocked(m *message, add, remove []string, replace bool) bool {
	before := fmt.Sprint(sortedFlags(m))
	if replace {
		clear(m.flags)
	}
	for _, f := range remove {
		delete(m.flags, strings.ToLower(f))
	}
	for _, f := range add {
		m.flags[strings.ToLower(f)] = f
	}
	if before == fmt.Sprint(sortedFlags(m)) {
		return false
	}
	m.flagGen++
	if m.flags[`\flagged`] != "" {
		m.labels[Starred] = true
	} else {
		delete(m.labels, Starred)
	}
	return true
}

// sortedFlags lists m's flags: system flags in RFC 3501's order, then
// keywords by name.
func sortedFlags(m *message) []string {
	var out []string
	for _, sf := range systemFlags {
		if m.flags[strings.ToLower(sf)] != "" {
			out = append(out, sf)
		}
	}
	var kw []string
	for k, v := range m.flags {
		if !strings.HasPrefix(k, `\`) {
			kw = append(kw, v)
		}
	}
	sort.Strings(kw)
	return append(out, kw...)
}

func (s *Server) wakeLocked() {
	for ss := range s.sessions {
		select {
		case ss.wake <- struct{}{}:
		default:
		}
	}
}

// header is what Add reads of a message's header: its Message-ID and the
// Message-IDs it refers to (In-Reply-To, then References, last first).
type header struct {
	messageID string
	refs      []string
}

// parseHeader reads the header fields up to the first empty line, unfolded,
// names in any case; a message without one has none.
func parseHeader(raw []byte) header {
	var h header
	var fields []string
	for _, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" {
			break
		}
		if (line[0] == ' ' || line[0] == '\t') && len(fields) > 0 {
			fields[len(fields)-1] += " " + strings.TrimSpace(line)
			continue
		}
		fields = append(fields, line)
	}
	var inReplyTo, references []string
	for _, f := range fields {
		name, value, ok := strings.Cut(f, ":")
		if !ok {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "message-id":
			if ids := msgIDs(value); len(ids) > 0 && h.messageID == "" {
				h.messageID = ids[0]
			}
		case "in-reply-to":
			inReplyTo = append(inReplyTo, msgIDs(value)...)
		case "references":
			references = append(references, msgIDs(value)...)
		}
	}
	slices.Reverse(references)
	h.refs = append(inReplyTo, references...)
	return h
}

// msgIDs returns the <...> tokens of a field value, brackets included.
func msgIDs(v string) []string {
	var ids []string
	for {
		i := strings.IndexByte(v, '<')
		if i < 0 {
			return ids
		}
		j := strings.IndexByte(v[i:], '>')
		if j < 0 {
			return ids
		}
		if id := v[i : i+j+1]; len(id) > 2 && !strings.ContainsAny(id, " \t") {
			ids = append(ids, id)
		}
		v = v[i+j+1:]
	}
}
