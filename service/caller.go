package service

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"mailvault/query"
)

// Role says what a caller may do.
type Role string

const (
	// RoleAdmin sees every account and runs jobs.
	RoleAdmin Role = "admin"
	// RoleAuditor sees every account, read-only.
	RoleAuditor Role = "auditor"
	// RoleLegal sees every account, read-only like an auditor, and
	// manages legal holds (service/holds.go).
	RoleLegal Role = "legal"
	// RoleUser sees only the accounts assigned to them.
	RoleUser Role = "user"
	// RoleOperator is whoever runs the mailvault command on the host, through
	// the local socket or by opening the archive: they can read the data
	// directory anyway, so they see everything and run jobs.
	RoleOperator Role = "operator"
)

// Caller is who asks. Every method of Service that reads mail takes one and
// applies its scope before a query runs: the front doors pass it on and
// filter nothing themselves.
type Caller struct {
	Name     string
	Role     Role
	Accounts []string // for RoleUser: the archive accounts they may see
	// Remote is where the request came from (an address, "local socket"),
	// for the audit trail.
	Remote string
}

// SeesAll reports whether c sees every account.
func (c Caller) SeesAll() bool {
	return c.Role == RoleAdmin || c.Role == RoleAuditor || c.Role == RoleLegal || c.Role == RoleOperator
}

// Sees reports whether c may see mail of account.
func (c Caller) Sees(account string) bool {
	return c.SeesAll() || c.Role == RoleUser && slices.Contains(c.Accounts, account)
}

// RunsJobs reports whether c may start and cancel jobs (imports, verify,
// reindex).
func (c Caller) RunsJobs() bool { return c.Role == RoleAdmin || c.Role == RoleOperator }

// Errors of the service API. Front doors map them to their own answers
// (404, 422, exit code 2) with errors.Is; the message says what to do.
var (
	// ErrNotFound: no such message, account or job — or one the caller may
	// not see, which answers the same, so that existence does not leak.
	ErrNotFound = errors.New("not found")
	// ErrBadRequest: the query or a parameter is malformed, or the search
	// must be narrowed; the message says how.
	ErrBadRequest = errors.New("bad request")
	// ErrForbidden: the caller may not do this at all (a job as a user).
	// Never used for data, which answers ErrNotFound.
	ErrForbidden = errors.New("forbidden")
	// ErrBusy: a job of this kind is already running.
	ErrBusy = errors.New("busy")
)

// userError is an error whose text is for the caller, classified by kind.
type userError struct {
	kind error
	msg  string
}

func (e *userError) Error() string { return e.msg }
func (e *userError) Unwrap() error { return e.kind }

func errorf(kind error, format string, args ...any) error {
	return &userError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// scopeAccounts narrows requested accounts to what c may see. nil means
// every account (c sees all and asked for none). A requested account c may
// not see answers ErrNotFound, as one that does not exist would.
func (c Caller) scopeAccounts(requested []string) ([]string, error) {
	for _, a := range requested {
		if !c.Sees(a) {
			return nil, errorf(ErrNotFound, "no such account: %s", a)
		}
	}
	if len(requested) > 0 {
		return slices.Clone(requested), nil
	}
	if c.SeesAll() {
		return nil, nil
	}
	if len(c.Accounts) == 0 {
		return nil, errorf(ErrNotFound, "no account to search: user %s has none assigned", c.Name)
	}
	return slices.Clone(c.Accounts), nil
}

// restrict rewrites a query for a caller who sees only some accounts, so
// that no term can match through an account outside them:
//
//   - account:X for an account X the caller may not see matches nothing
//     (whether X exists or not), so `account:bob` cannot tell alice which
//     of her messages bob also holds;
//   - mailbox:M becomes "M in one of the caller's accounts" (query.Place),
//     so that it cannot match through another account's mailbox of that
//     name.
//
// Together with the account filter applied by the archive (every hit has an
// occurrence in the caller's accounts), totals and facets then count only
// what the caller may see. Callers who see everything get n unchanged.
func (c Caller) restrict(n query.Node) query.Node {
	if c.SeesAll() {
		return n
	}
	return query.Rewrite(n, func(n query.Node) query.Node {
		switch n := n.(type) {
		case query.Account:
			if c.Sees(n.Name) {
				return n
			}
			return query.Or{} // matches nothing
		case query.Mailbox:
			places := make([]query.Node, 0, len(c.Accounts))
			for _, a := range c.Accounts {
				places = append(places, query.Place{Account: a, Mailbox: n.Name})
			}
			return query.Or{Nodes: places}
		case query.Place:
			if c.Sees(n.Account) {
				return n
			}
			return query.Or{}
		case query.Text:
			// Envelopes are indexed per message, whatever account holds the
			// journaled copy: bcc: and rcpt: search the headers and, by
			// the whole address, only the envelopes of copies in the
			// caller's accounts (query.IndexEnvelope).
			// IMAP keys (substring matches, evaluated per mailbox against
			// the headers) are left alone.
			if n.Match == query.MatchSubstring {
				return n
			}
			switch n.Field {
			case query.FieldBcc, query.FieldRcpt:
				header := n
				header.Field = query.FieldBccHeader
				if n.Field == query.FieldRcpt {
					header.Field = query.FieldRcptHeader
				}
				return query.Or{Nodes: []query.Node{header,
					query.EnvelopeIn{Blind: n.Field == query.FieldBcc, Addr: n.Value, Accounts: c.Accounts}}}
			}
		}
		return n
	})
}

// auditText keeps a user-supplied string on one line of bounded length for
// the audit trail: C0 and C1 controls become spaces, and the bidirectional
// controls that make text display in another order than it is stored
// (U+202A–U+202E, U+2066–U+2069) become U+FFFD, so that what a reader of
// the trail sees is what it says. A longer text is cut at a character
// boundary and ends with its length and sha256, so that the whole of it
// can still be matched against what it was.
func auditText(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r < 0x20 || r >= 0x7f && r < 0xa0:
			return ' '
		case r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069:
			return '\uFFFD'
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	return clip(s, maxAuditText)
}

const maxAuditText = 2000

// clip cuts s to at most max bytes (at a character boundary) plus a suffix
// naming its full length and sha256.
func clip(s string, max int) string {
	if len(s) <= max {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf("…[%d bytes, sha256 %x]", len(s), sum)
}
