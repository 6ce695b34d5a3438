package service

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"mailvault/indexer"
	"mailvault/query"
)

// The IMAP view's service API (imapview serves the archive read-only over
// IMAP). A folder of the view is one epoch of one archived mailbox
// (indexer.FolderEpoch); the view's UIDs and UIDVALIDITY are the source
// server's, so that a message fetched over the view and its
// imap://...;UIDVALIDITY=v/;UID=u URL name the same copy.
//
// Every method checks that the caller sees the folder's account before it
// reads anything, and a folder of an account the caller may not see
// answers exactly like one that does not exist (ErrNotFound, audited as
// denied). What is audited: opening a folder ("imap-select"), every SEARCH
// ("search", with the folder and the criteria), and every FETCH that reads
// message content ("imap-fetch", one row per command naming the folder,
// the UIDs and what was read, or more when its UIDs do not fit one row),
// before anything is sent. Reads of flags,
// sizes and dates of a folder already opened are not audited again: the
// select was.

// ViewFolders returns the folders c may see: every epoch of every mailbox
// of c's accounts.
func (s *Service) ViewFolders(ctx context.Context, c Caller) ([]indexer.FolderEpoch, error) {
	accounts, err := s.Accounts(ctx, c)
	if err != nil {
		return nil, err
	}
	if len(accounts) == 0 {
		return nil, nil
	}
	return s.a.FolderEpochs(ctx, accounts)
}

// ViewSelect opens folder f for c and returns its messages, expunged ones
// included, in UID order. It audits the opening.
func (s *Service) ViewSelect(ctx context.Context, c Caller, f indexer.FolderEpoch) ([]indexer.FolderMessage, error) {
	msgs, err := s.viewMessages(ctx, c, f)
	if err != nil {
		return nil, s.denied(ctx, c, "imap-select", folderText(f), err)
	}
	// Through the bulk-read journal, as FETCH: a client selects and
	// searches folder after folder (Users.AuditRead, auditjournal.go).
	if err := s.auditRead(ctx, c, "imap-select", folderText(f)); err != nil {
		return nil, err
	}
	return msgs, nil
}

// ViewMessages returns the messages of folder f again (the view's poll
// for new mail, flag changes and removals), unaudited: f was opened with
// ViewSelect.
func (s *Service) ViewMessages(ctx context.Context, c Caller, f indexer.FolderEpoch) ([]indexer.FolderMessage, error) {
	return s.viewMessages(ctx, c, f)
}

func (s *Service) viewMessages(ctx context.Context, c Caller, f indexer.FolderEpoch) ([]indexer.FolderMessage, error) {
	if !c.Sees(f.Account) {
		return nil, errorf(ErrNotFound, "no such folder")
	}
	msgs, err := s.a.FolderMessages(ctx, f.Account, f.Mailbox, f.UIDValidity)
	if errors.Is(err, indexer.ErrNoMailbox) {
		return nil, errorf(ErrNotFound, "no such folder")
	}
	return msgs, err
}

// ViewFetch records that c is about to read the content of the messages
// uids (an IMAP sequence set of UIDs, as text) of folder f; what says what
// ("BODY[]", "ENVELOPE" ...). A FETCH is served only after this returned
// nil: the audit trail fails closed.
//
// The row is "folder UID set what". An audit row holds maxAuditText
// bytes, and the UID set of a FETCH of many messages whose UIDs are not
// consecutive is longer (FETCH 1:* of 300 such messages): cut, the row
// named neither all the UIDs read nor what was read, so that a user could
// read a folder's content with a row that did not say which. A set that
// does not fit is written over as many rows as it needs, each with the
// folder, its part of the set, "(i of n)" and what.
func (s *Service) ViewFetch(ctx context.Context, c Caller, f indexer.FolderEpoch, uids, what string) error {
	if !c.Sees(f.Account) {
		return s.denied(ctx, c, "imap-fetch", folderText(f), errorf(ErrNotFound, "no such folder"))
	}
	head := folderText(f) + " UID "
	room := max(200, maxAuditText-len(head)-len(" (99999 of 99999) ")-len(what))
	parts := splitUIDSet(uids, room)
	for i, part := range parts {
		detail := head + part + " " + what
		if len(parts) > 1 {
			detail = fmt.Sprintf("%s%s (%d of %d) %s", head, part, i+1, len(parts), what)
		}
		if err := s.auditRead(ctx, c, "imap-fetch", detail); err != nil {
			return err
		}
	}
	return nil
}

// splitUIDSet cuts a UID set's text ("1:3,7,9") at commas into parts of
// at most room bytes (a single range longer than room, which no UID set
// has, is a part of its own).
func splitUIDSet(set string, room int) []string {
	var parts []string
	for len(set) > room {
		cut := strings.LastIndexByte(set[:room+1], ',')
		if cut <= 0 {
			cut = strings.IndexByte(set, ',')
			if cut < 0 {
				break
			}
		}
		parts = append(parts, set[:cut])
		set = set[cut+1:]
	}
	return append(parts, set)
}

// ViewRaw returns the bytes of message sha of folder f, verified against
// their sha256 by the store. The FETCH it serves was audited with
// ViewFetch. A folder c may not see answers ErrNotFound, and so does a
// message removed from the archive (retention, erasure). That sha is a
// message of f is not checked here (it would cost a catalog read per
// message): the view passes only the shas of f's own list, as ViewSelect
// and ViewMessages returned it.
func (s *Service) ViewRaw(ctx context.Context, c Caller, f indexer.FolderEpoch, sha [32]byte) ([]byte, error) {
	if !c.Sees(f.Account) {
		return nil, errorf(ErrNotFound, "no such folder")
	}
	raw, err := s.a.Raw(fmt.Sprintf("%x", sha))
	if err != nil {
		if _, ok := errors.AsType[*indexer.DisposedError](err); ok {
			return nil, errorf(ErrNotFound, "%v", err)
		}
		return nil, fmt.Errorf("read message %x from the store (`mailvault verify` checks the store): %w", sha, err)
	}
	return raw, nil
}

// ViewSearch answers IMAP SEARCH criteria n (query.ParseIMAP's tree, with
// sequence numbers already turned into UIDs by the view) in folder f,
// expunged copies included (the view shows them), through the same
// executor as `mailvault search --imap`. It returns the matching UIDs in
// ascending order and audits the search.
func (s *Service) ViewSearch(ctx context.Context, c Caller, f indexer.FolderEpoch, n query.Node, criteria string) ([]uint32, error) {
	if !c.Sees(f.Account) {
		return nil, s.denied(ctx, c, "search", folderText(f), errorf(ErrNotFound, "no such folder"))
	}
	if err := s.auditRead(ctx, c, "search", fmt.Sprintf("imap %s: %s", folderText(f), criteria)); err != nil {
		return nil, err
	}
	r, err := s.a.SearchIMAP(ctx, f.Account, f.Mailbox, c.restrict(n), &indexer.IMAPSearchOptions{
		UIDValidity: f.UIDValidity, IncludeExpunged: true})
	if err != nil {
		if errors.Is(err, indexer.ErrNoMailbox) {
			return nil, errorf(ErrNotFound, "no such folder")
		}
		if errors.Is(err, indexer.ErrTooBroad) {
			return nil, errorf(ErrBadRequest, "%v", err)
		}
		return nil, err
	}
	return r.UIDs, nil
}

// folderText names a folder in the audit trail the way the message URLs
// do: account, mailbox, UIDVALIDITY.
func folderText(f indexer.FolderEpoch) string {
	return fmt.Sprintf("%s/%s;UIDVALIDITY=%d", f.Account, f.Mailbox, f.UIDValidity)
}

// LoginGuard is the service's login guard, for a front door that checks
// passwords itself (the web's login form): one guard for every door.
func (s *Service) LoginGuard() *LoginGuard { return s.guard }

// ViewGeneration moves with every change to folder f's mailbox (new
// mail, flags, expunges, removals); the view polls it, cheaply, to know
// when to read the folder again. It reads nothing of the folder, so it
// needs no scope check.
func (s *Service) ViewGeneration(f indexer.FolderEpoch) int64 {
	return s.a.FolderGeneration(f.Account, f.Mailbox)
}

// LoginRefused is ViewLogin's error when the login guard refuses to check
// a password now (too many failures for the name from the address, or too
// many attempts from the address).
type LoginRefused struct {
	Why   string
	Retry time.Duration
}

func (e *LoginRefused) Error() string {
	return fmt.Sprintf("%s; try again in %v", e.Why, e.Retry.Round(time.Second))
}

// ViewLogin checks a user name and a password, or an API token of that
// user given as the password (mvt_...), for a front door that speaks a
// protocol with passwords (IMAP), under the same LoginGuard rules as the
// web's login form. Every outcome is audited: "login" (with detail
// "imap"), "login-failed", "login-refused" (the refusals within the
// address's audit budget, as the web does), except a name or secret too
// long to be one (256, 1024 bytes), refused at once, counted nowhere and
// not audited, as the web's form does. remote names the door and the
// address ("imap 192.0.2.1").
func (s *Service) ViewLogin(ctx context.Context, name, secret, remote string) (Caller, error) {
	if s.opts.Users == nil {
		return Caller{}, errNoAuditStore
	}
	now := time.Now()
	addr := strings.TrimPrefix(remote, "imap ")
	who := Caller{Name: clipID(name), Remote: remote}
	if len(name) > 256 || len(secret) > 1024 {
		return Caller{}, ErrBadLogin // no such user or password can exist
	}
	if ok, why, retry := s.guard.Allow(addr, name, now); !ok {
		s.auditUnauthenticated(ctx, who, "login-refused", why)
		return Caller{}, &LoginRefused{Why: why, Retry: retry}
	}
	var u *User
	var err error
	if strings.HasPrefix(secret, "mvt_") {
		u, err = s.tokenOf(ctx, name, secret)
	} else {
		s.guard.Check(func() { u, err = s.opts.Users.Login(ctx, name, secret) })
	}
	if err != nil {
		if !errors.Is(err, ErrBadLogin) {
			return Caller{}, err
		}
		s.guard.Failed(addr, name, now)
		s.auditUnauthenticated(ctx, who, "login-failed", "imap")
		return Caller{}, ErrBadLogin
	}
	s.guard.Succeeded(addr, name)
	c := u.Caller(remote)
	if err := s.audit(ctx, c, "login", "imap"); err != nil {
		return Caller{}, err
	}
	return c, nil
}

// ViewRecheck returns the caller that c, logged in with ViewLogin, is
// now: the user as the users table has them (role and accounts as they are
// now), or ErrBadLogin when the user has been removed since, or when
// token, the API token c logged in with ("" for a password), has been
// revoked or has expired. An IMAP session lasts as long as its client
// keeps it (IDLE, NOOP), and the web checks its session at every request:
// so that removing a user or revoking a token ends their IMAP reading too,
// the view calls this before each command that reads. A password change
// does not end an IMAP session logged in with the old password (the web's
// sessions end; the view does not keep passwords to check them again).
func (s *Service) ViewRecheck(ctx context.Context, c Caller, token string) (Caller, error) {
	if s.opts.Users == nil {
		return Caller{}, errNoAuditStore
	}
	var u *User
	var err error
	if token != "" {
		u, err = s.tokenOf(ctx, c.Name, token)
	} else {
		u, err = s.opts.Users.Get(ctx, c.Name)
		if errors.Is(err, ErrNoUser) {
			err = ErrBadLogin
		}
	}
	if err != nil {
		return Caller{}, err
	}
	return u.Caller(c.Remote), nil
}

// tokenOf is the user of an API token given as the password of name: a
// token is its own user's only (ErrBadLogin otherwise).
func (s *Service) tokenOf(ctx context.Context, name, token string) (*User, error) {
	u, err := s.opts.Users.TokenUser(ctx, token)
	if err == nil && u.Name != name {
		return nil, ErrBadLogin
	}
	return u, err
}

// auditUnauthenticated records a refused or failed login within the
// address's audit budget (LoginGuard.AuditAllowed); past it the row is
// counted and the count goes into the address's next row.
func (s *Service) auditUnauthenticated(ctx context.Context, who Caller, action, detail string) {
	detail, ok := s.guard.AuditDetail(strings.TrimPrefix(who.Remote, "imap "), detail, time.Now())
	if !ok {
		return
	}
	if err := s.audit(ctx, who, action, detail); err != nil {
		s.log.Error("audit of an unauthenticated request", "action", action, "err", err)
	}
}
