package imapview

import (
	"context"
	"errors"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"mailvault/indexer"
	"mailvault/service"
)

// session is one client connection. go-imap calls its methods from the
// connection's own goroutine, one at a time, so it needs no lock.
type session struct {
	s      *Server
	conn   *imapserver.Conn
	remote string
	caller *service.Caller // nil until LOGIN
	token  string          // the API token the session logged in with, if it did
	sel    *selected
	// checked is when the user was last checked (recheck).
	checked time.Time
}

// selected is the folder a session has open: its messages as of the last
// poll, in UID order (sequence number i+1 is msgs[i]).
type selected struct {
	name string
	f    indexer.FolderEpoch
	msgs []indexer.FolderMessage
	gen  int64
}

// cmdTimeout bounds the service calls of one command.
const cmdTimeout = 2 * time.Minute

func (s *Server) newSession(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
	return &session{s: s, conn: c, remote: "imap " + hostOf(c.NetConn().RemoteAddr())}, nil, nil
}

func (ss *session) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), cmdTimeout)
}

func (ss *session) Close() error { return nil }

// Errors the view answers with.
var (
	errReadOnly = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNoPerm,
		Text: "the archive is read-only: nothing can be added, changed or removed over IMAP"}
	errNoSubscriptions = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot,
		Text: "subscriptions are not kept: every folder is listed as subscribed"}
	errNoFolder = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNonExistent,
		Text: "no such folder (LIST shows the folders you may read)"}
)

// serviceError turns a service error into the answer a client gets: what
// it may know (not found, a bad search) in words, anything else as a server
// fault, logged here.
func (ss *session) serviceError(op string, err error) error {
	if ie, ok := errors.AsType[*imap.Error](err); ok {
		return ie // already an answer (recheck's)
	}
	switch {
	case errors.Is(err, service.ErrNotFound):
		return errNoFolder
	case errors.Is(err, service.ErrBadRequest):
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeLimit, Text: clip(err.Error(), 300)}
	}
	user := ""
	if ss.caller != nil {
		user = ss.caller.Name
	}
	ss.s.log.Error("imap "+op, "user", user, "remote", ss.remote, "err", err)
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeServerBug,
		Text: "the archive could not answer (logged)"}
}

func clip(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < ' ' {
			return ' '
		}
		return r
	}, s)
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// Login checks the name and password (or an API token as the password)
// through the service, which applies the web's lockout rules and audits.
func (ss *session) Login(username, password string) error {
	ctx, cancel := ss.ctx()
	defer cancel()
	c, err := ss.s.opts.Archive.ViewLogin(ctx, username, password, ss.remote)
	if err != nil {
		if r, ok := errors.AsType[*service.LoginRefused](err); ok {
			ss.s.metrics.logins.WithLabelValues("refused").Inc()
			return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable,
				Text: "refused: " + r.Error()}
		}
		if errors.Is(err, service.ErrBadLogin) {
			ss.s.metrics.logins.WithLabelValues("failed").Inc()
			return imapserver.ErrAuthFailed
		}
		return ss.serviceError("login", err)
	}
	ss.caller = &c
	ss.checked = time.Now()
	if strings.HasPrefix(password, "mvt_") { // as ViewLogin tells a token
		ss.token = password
	}
	ss.s.metrics.logins.WithLabelValues("ok").Inc()
	ss.s.log.Info("imap login", "user", c.Name, "remote", ss.remote)
	return nil
}

// errLoginGone answers a command of a session whose user was removed, or
// whose token was revoked, since it logged in (the connection is closed).
var errLoginGone = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAuthorizationFailed,
	Text: "this login is no longer valid"}

// recheck takes the session's user as it is now (Archive.ViewRecheck),
// before a command reads: a user removed, or a token revoked, since LOGIN
// ends the session with BYE, and a user whose accounts changed sees the
// new ones. Without it a session kept open by IDLE or NOOP read on for
// good with the rights it had at LOGIN.
//
// At most once per RecheckInterval (1 s): the check is a users.db query,
// and mbsync sends one FETCH per message (0.47 s of CPU in a 6,046-message
// pull, docs/benchmarks.md). A user removed or a token revoked can so read
// on for up to that long, as a web request already under way can.
func (ss *session) recheck(ctx context.Context) error {
	if iv := ss.s.opts.RecheckInterval; iv > 0 && time.Since(ss.checked) < iv {
		return nil
	}
	c, err := ss.s.opts.Archive.ViewRecheck(ctx, *ss.caller, ss.token)
	if errors.Is(err, service.ErrBadLogin) {
		ss.s.log.Info("imap session ended: the user was removed or the token revoked", "user", ss.caller.Name, "remote", ss.remote)
		ss.conn.Bye("this login is no longer valid (user removed or token revoked)")
		return errLoginGone
	}
	if err != nil {
		return ss.serviceError("recheck", err)
	}
	if ss.sel != nil && !c.Sees(ss.sel.f.Account) {
		// The open folder's account is no longer the user's: the session
		// has it selected, and go-imap knows no way back but LOGOUT.
		ss.s.log.Info("imap session ended: the open folder's account was withdrawn", "user", c.Name, "remote", ss.remote)
		ss.conn.Bye("this folder is no longer yours to read")
		return errLoginGone
	}
	ss.caller = &c
	ss.checked = time.Now()
	return nil
}

// tree lists the caller's folders now.
func (ss *session) tree(ctx context.Context) (*tree, error) {
	if err := ss.recheck(ctx); err != nil {
		return nil, err
	}
	eps, err := ss.s.opts.Archive.ViewFolders(ctx, *ss.caller)
	if err != nil {
		return nil, err
	}
	t, collided := newTree(eps)
	if len(collided) > 0 {
		ss.s.log.Warn("imap folders with the same name: the first is listed", "user", ss.caller.Name, "names", collided)
	}
	return t, nil
}

func (ss *session) Select(name string, options *imap.SelectOptions) (*imap.SelectData, error) {
	ss.sel = nil
	ctx, cancel := ss.ctx()
	defer cancel()
	t, err := ss.tree(ctx)
	if err != nil {
		return nil, ss.serviceError("select", err)
	}
	f, ok := t.lookup(name)
	if !ok {
		return nil, errNoFolder
	}
	gen := ss.s.opts.Archive.ViewGeneration(f)
	msgs, err := ss.s.opts.Archive.ViewSelect(ctx, *ss.caller, f)
	if err != nil {
		return nil, ss.serviceError("select", err)
	}
	ss.sel = &selected{name: name, f: f, msgs: msgs, gen: gen}
	options.ReadOnly = true // the patched go-imap answers [READ-ONLY]
	data := &imap.SelectData{
		Flags:          folderFlags(msgs),
		PermanentFlags: []imap.Flag{},
		NumMessages:    uint32(len(msgs)),
		UIDNext:        uidNext(msgs),
		UIDValidity:    f.UIDValidity,
	}
	for i, m := range msgs {
		if !hasFlag(flagsOf(m), imap.FlagSeen) {
			data.FirstUnseenSeqNum = uint32(i + 1)
			break
		}
	}
	return data, nil
}

// folderFlags are the system flags and every keyword in use in msgs.
func folderFlags(msgs []indexer.FolderMessage) []imap.Flag {
	flags := []imap.Flag{imap.FlagSeen, imap.FlagAnswered, imap.FlagFlagged, imap.FlagDeleted, imap.FlagDraft, ExpungedKeyword}
	seen := map[imap.Flag]bool{}
	for _, f := range flags {
		seen[f] = true
	}
	for _, m := range msgs {
		for _, f := range strings.Fields(m.Flags) {
			if fl := imap.Flag(f); !seen[fl] && !strings.HasPrefix(f, `\`) && writableFlag(f) {
				seen[fl] = true
				flags = append(flags, fl)
			}
		}
	}
	return flags
}

func uidNext(msgs []indexer.FolderMessage) imap.UID {
	if len(msgs) == 0 {
		return 1
	}
	return imap.UID(msgs[len(msgs)-1].UID + 1)
}

// flagsOf is a message's flags as the view shows them: as harvested, with
// \Recent dropped (an archive has no sessions of its own to be new to) and
// ExpungedKeyword for a copy the server has expunged.
func flagsOf(m indexer.FolderMessage) []imap.Flag {
	fields := strings.Fields(m.Flags)
	out := make([]imap.Flag, 0, len(fields)+1)
	for _, f := range fields {
		if strings.EqualFold(f, `\Recent`) || !writableFlag(f) {
			continue
		}
		out = append(out, imap.Flag(f))
	}
	if m.Expunged != "" {
		out = append(out, ExpungedKeyword)
	}
	return out
}

// writableFlag says whether go-imap can send flag f: a leading backslash
// and then atom characters (its imapwire.IsAtomChar: none of ( ) { % * "
// ] or a backslash, no space or control character, the bytes 0x80 to
// 0x9f counting as controls). A stored flag is
// whatever its source had (a harvested server, a Maildir's
// dovecot-keywords file), and go-imap, given one it cannot write, stopped
// the FLAGS line half-way and put the command's NO on the same line: the
// folder could not be selected and the client lost the thread. Such a
// flag is not shown.
func writableFlag(f string) bool {
	for i := 0; i < len(f); i++ {
		c := f[i]
		switch {
		case c == '\\' && i == 0:
		case c <= ' ' || c == 0x7f || c >= 0x80 && c <= 0x9f || strings.IndexByte(`(){%*"\]`, c) >= 0:
			return false
		}
	}
	return f != ""
}

func hasFlag(flags []imap.Flag, f imap.Flag) bool {
	return slices.ContainsFunc(flags, func(g imap.Flag) bool { return strings.EqualFold(string(g), string(f)) })
}

func (ss *session) Create(string, *imap.CreateOptions) error              { return errReadOnly }
func (ss *session) Delete(string) error                                   { return errReadOnly }
func (ss *session) Rename(string, string, *imap.RenameOptions) error      { return errReadOnly }
func (ss *session) Subscribe(string) error                                { return errNoSubscriptions }
func (ss *session) Unsubscribe(string) error                              { return errNoSubscriptions }
func (ss *session) Expunge(*imapserver.ExpungeWriter, *imap.UIDSet) error { return errReadOnly }
func (ss *session) Copy(imap.NumSet, string) (*imap.CopyData, error)      { return nil, errReadOnly }
func (ss *session) Move(*imapserver.MoveWriter, imap.NumSet, string) error {
	return errReadOnly
}
func (ss *session) Store(*imapserver.FetchWriter, imap.NumSet, *imap.StoreFlags, *imap.StoreOptions) error {
	return errReadOnly
}

// Append refuses without reading the message: go-imap discards the
// literal, so nothing of it is kept.
func (ss *session) Append(string, imap.LiteralReader, *imap.AppendOptions) (*imap.AppendData, error) {
	return nil, errReadOnly
}

func (ss *session) Unselect() error {
	ss.sel = nil
	return nil
}

func (ss *session) Namespace() (*imap.NamespaceData, error) {
	return &imap.NamespaceData{Personal: []imap.NamespaceDescriptor{{Prefix: "", Delim: delim}}}, nil
}

func (ss *session) List(w *imapserver.ListWriter, ref string, patterns []string, options *imap.ListOptions) error {
	if len(patterns) == 0 || len(patterns) == 1 && patterns[0] == "" {
		// LIST "" "": the hierarchy delimiter.
		return w.WriteList(&imap.ListData{Attrs: []imap.MailboxAttr{imap.MailboxAttrNoSelect}, Delim: delim})
	}
	ctx, cancel := ss.ctx()
	defer cancel()
	t, err := ss.tree(ctx)
	if err != nil {
		return ss.serviceError("list", err)
	}
	for _, name := range t.names {
		if !slices.ContainsFunc(patterns, func(p string) bool { return matchList(name, ref, p) }) {
			continue
		}
		data := &imap.ListData{Mailbox: name, Delim: delim}
		if t.parents[name] {
			if options.SelectSubscribed {
				continue
			}
			data.Attrs = append(data.Attrs, imap.MailboxAttrNoSelect)
		} else {
			data.Attrs = append(data.Attrs, imap.MailboxAttrSubscribed)
		}
		if t.children[name] {
			data.Attrs = append(data.Attrs, imap.MailboxAttrHasChildren)
		} else {
			data.Attrs = append(data.Attrs, imap.MailboxAttrHasNoChildren)
		}
		if options.ReturnStatus != nil && !t.parents[name] {
			st, err := ss.status(ctx, t, name, options.ReturnStatus)
			if err != nil {
				return err
			}
			data.Status = st
		}
		if err := w.WriteList(data); err != nil {
			return err
		}
	}
	return nil
}

func (ss *session) Status(name string, options *imap.StatusOptions) (*imap.StatusData, error) {
	ctx, cancel := ss.ctx()
	defer cancel()
	t, err := ss.tree(ctx)
	if err != nil {
		return nil, ss.serviceError("status", err)
	}
	return ss.status(ctx, t, name, options)
}

func (ss *session) status(ctx context.Context, t *tree, name string, options *imap.StatusOptions) (*imap.StatusData, error) {
	f, ok := t.lookup(name)
	if !ok {
		return nil, errNoFolder
	}
	msgs, err := ss.s.opts.Archive.ViewMessages(ctx, *ss.caller, f)
	if err != nil {
		return nil, ss.serviceError("status", err)
	}
	data := &imap.StatusData{Mailbox: name}
	if options.NumMessages {
		n := uint32(len(msgs))
		data.NumMessages = &n
	}
	if options.UIDNext {
		data.UIDNext = uidNext(msgs)
	}
	if options.UIDValidity {
		data.UIDValidity = f.UIDValidity
	}
	if options.NumUnseen {
		var n uint32
		for _, m := range msgs {
			if !hasFlag(flagsOf(m), imap.FlagSeen) {
				n++
			}
		}
		data.NumUnseen = &n
	}
	if options.NumRecent {
		var n uint32
		data.NumRecent = &n
	}
	if options.Size {
		var n int64
		for _, m := range msgs {
			n += m.Size
		}
		data.Size = &n
	}
	return data, nil
}

// Poll reports what changed in the open folder since the last poll.
func (ss *session) Poll(w *imapserver.UpdateWriter, allowExpunge bool) error {
	if ss.sel == nil {
		return nil
	}
	return ss.refresh(w, allowExpunge)
}

// Idle polls every PollInterval until the client ends the IDLE.
func (ss *session) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	if ss.sel == nil {
		<-stop
		return nil
	}
	tick := time.NewTicker(ss.s.opts.PollInterval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return nil
		case <-tick.C:
			if err := ss.refresh(w, true); err != nil {
				return err
			}
		}
	}
}

// refresh re-reads the open folder when its mailbox changed since the
// last read (Archive.ViewGeneration), and tells the client: EXPUNGE for messages the archive no longer
// holds (when allowed; otherwise they stay in the snapshot until the next
// poll that may), FETCH FLAGS for changed flags, EXISTS for new messages
// above the highest UID shown. A message that appeared below it is left
// for the next SELECT (see the package doc).
func (ss *session) refresh(w *imapserver.UpdateWriter, allowExpunge bool) error {
	sel := ss.sel
	gen := ss.s.opts.Archive.ViewGeneration(sel.f)
	if gen == sel.gen {
		return nil
	}
	ctx, cancel := ss.ctx()
	defer cancel()
	if err := ss.recheck(ctx); err != nil {
		return err
	}
	now, err := ss.s.opts.Archive.ViewMessages(ctx, *ss.caller, sel.f)
	if err != nil {
		return ss.serviceError("poll", err)
	}
	byUID := make(map[uint32]int, len(now))
	for i, m := range now {
		byUID[m.UID] = i
	}
	// Removals, from the highest sequence number down so that each
	// number is still right when it is sent.
	kept := sel.msgs
	if allowExpunge {
		kept = make([]indexer.FolderMessage, 0, len(sel.msgs))
		var gone []uint32
		for i, m := range sel.msgs {
			if _, ok := byUID[m.UID]; ok {
				kept = append(kept, m)
			} else {
				gone = append(gone, uint32(i+1))
			}
		}
		for i := len(gone) - 1; i >= 0; i-- {
			if err := w.WriteExpunge(gone[i]); err != nil {
				return err
			}
		}
	}
	for i := range kept {
		j, ok := byUID[kept[i].UID]
		if !ok {
			continue
		}
		if n := now[j]; n.Flags != kept[i].Flags || n.Expunged != kept[i].Expunged {
			kept[i] = n
			if err := w.WriteMessageFlags(uint32(i+1), imap.UID(n.UID), flagsOf(n)); err != nil {
				return err
			}
		}
	}
	var top uint32
	if len(kept) > 0 {
		top = kept[len(kept)-1].UID
	}
	k := sort.Search(len(now), func(i int) bool { return now[i].UID > top })
	added := len(now) - k
	kept = append(kept, now[k:]...)
	if added > 0 {
		if err := w.WriteNumMessages(uint32(len(kept))); err != nil {
			return err
		}
	}
	sel.msgs, sel.gen = kept, gen
	return nil
}
