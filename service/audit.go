package service

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The audit trail: who did what, when, from where. It lives in the audit
// table of users.db (Users), is append-only (no code path updates or
// deletes a row; the ledger tails it by id), and every action below is
// recorded before its result is returned: a failed write refuses the action
// (fail closed). docs/compliance.md ("Audit trail") is the operator's
// description of the same.
//
// The vocabulary of actions. Front doors and the other parts of the
// service use these names, and only these, so that a filter by action
// finds every row of a kind:
const (
	ActionLogin        = "login"         // a web login that succeeded
	ActionLoginFailed  = "login-failed"  // wrong name or password, or a bad API token
	ActionLoginRefused = "login-refused" // refused by the login guard before the password was checked
	ActionLogout       = "logout"
	ActionSearch       = "search" // detail: syntax, query, and the scope it ran in
	ActionRead         = "read"   // a message shown (detail: its sha256)
	// ActionReadAttachments: the text extracted from a message's
	// attachments read (detail: its sha256).
	ActionReadAttachments = "read-attachments"
	ActionDownload        = "download" // a message's bytes or an export handed out
	ActionDenied          = "denied"   // an access answered "not found" for being out of scope
	ActionExport          = "export"   // an export's scope resolved, before a file is written
	// ActionExportDone is an export finished; detail: the sha256 of its
	// manifest.json (what custody.txt and SHA256SUMS state too).
	ActionExportDone = "export-done"
	ActionJobStart   = "job-start"  // a job of serve queued (import, verify, reindex, export)
	ActionJobCancel  = "job-cancel" //
	// One-shot commands on the host that open the archive themselves.
	ActionImport  = "import"
	ActionVerify  = "verify"
	ActionReindex = "reindex"
	ActionRecover = "recover"
	// User and token management (mailvault user), recorded in the same
	// transaction as the change (Users.As).
	ActionUserAdd     = "user-add"
	ActionUserPasswd  = "user-passwd"
	ActionUserRemove  = "user-remove"
	ActionTokenAdd    = "token-add"
	ActionTokenRevoke = "token-revoke"
	// ActionAudit is a read of the audit trail itself (detail: the filter).
	ActionAudit = "audit"
	// Holds (service/holds.go) use hold-create, hold-create-failed,
	// hold-list, hold-show, hold-release, hold-release-failed; retention
	// and disposition (service/retention.go) retention-plan,
	// retention-list, retention-show, retention-endorse,
	// retention-approve, retention-apply, retention-applied,
	// retention-prune, dispose, erase, erase-refused, worm-on, worm-off
	// (and …-failed), worm-show. docs/compliance.md lists them all.
)

// AuditFilter selects entries of the audit trail. Its zero value selects
// every entry (up to DefaultAuditLimit of them).
type AuditFilter struct {
	User   string    `json:"user,omitempty"`   // exactly this user name
	Action string    `json:"action,omitempty"` // exactly this action
	Since  time.Time `json:"since,omitzero"`   // at or after
	Until  time.Time `json:"until,omitzero"`   // before
	// Limit is how many entries at most (0: DefaultAuditLimit; at most
	// MaxAuditLimit).
	Limit int `json:"limit,omitempty"`
	// Before pages: only entries whose id is below it (the last id of the
	// previous page). 0: from the newest.
	Before int64 `json:"before,omitempty"`
}

// Bounds of one page of the audit trail.
const (
	DefaultAuditLimit = 100
	MaxAuditLimit     = 10_000
)

// check validates f and fills in its default limit.
func (f *AuditFilter) check() error {
	switch {
	case f.Limit < 0 || f.Limit > MaxAuditLimit:
		return errorf(ErrBadRequest, "limit %d: want 1 to %d", f.Limit, MaxAuditLimit)
	case f.Before < 0:
		return errorf(ErrBadRequest, "before %d: want the id of an entry", f.Before)
	case !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since):
		return errorf(ErrBadRequest, "until %s is not after since %s", f.Until.Format(time.RFC3339), f.Since.Format(time.RFC3339))
	case len(f.User) > 2000 || len(f.Action) > 2000:
		return errorf(ErrBadRequest, "user or action filter too long")
	}
	if f.Limit == 0 {
		f.Limit = DefaultAuditLimit
	}
	return nil
}

// String is the filter as recorded in the trail when it is read.
func (f AuditFilter) String() string {
	var parts []string
	add := func(k, v string) { parts = append(parts, k+"="+strconv.Quote(v)) }
	if f.User != "" {
		add("user", f.User)
	}
	if f.Action != "" {
		add("action", f.Action)
	}
	if !f.Since.IsZero() {
		add("since", f.Since.UTC().Format(time.RFC3339Nano))
	}
	if !f.Until.IsZero() {
		add("until", f.Until.UTC().Format(time.RFC3339Nano))
	}
	if f.Before > 0 {
		parts = append(parts, fmt.Sprintf("before=%d", f.Before))
	}
	parts = append(parts, fmt.Sprintf("limit=%d", f.Limit))
	return strings.Join(parts, " ")
}

// ParseAuditTime reads a time of a filter: RFC 3339 (with or without
// fractions), "2006-01-02T15:04" or "2006-01-02 15:04" in UTC (what an HTML
// datetime-local field sends), or a date "2006-01-02" (its midnight, UTC).
func ParseAuditTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04", time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errorf(ErrBadRequest, "time %q: want RFC 3339 (2024-03-04T10:00:00Z) or a date (2024-03-04)", auditText(s))
}

// ReadsAudit reports whether c may read the audit trail: admins, auditors,
// the operator and the legal role (read-only, like auditors). A user may
// not read it at all, not even their own rows: the trail names other
// accounts' searches and messages.
func (c Caller) ReadsAudit() bool {
	switch c.Role {
	case RoleAdmin, RoleAuditor, RoleOperator, RoleLegal:
		return true
	}
	return false
}

// ReadsAudit reports whether u may read the audit trail (the web's nav).
func (u *User) ReadsAudit() bool { return u.Caller("").ReadsAudit() }

// AuditTrail returns the entries of the audit trail f selects, newest
// first, if c may read it (Caller.ReadsAudit); the read is itself recorded
// before the entries are returned.
func (s *Service) AuditTrail(ctx context.Context, c Caller, f AuditFilter) ([]AuditEntry, error) {
	if s.opts.Users == nil {
		return nil, errNoAuditStore
	}
	return ReadAuditTrail(ctx, s.opts.Users, c, f)
}

// ReadAuditTrail is Service.AuditTrail over a user store alone, for the
// CLI on a data directory that holds users.db but no archive yet. The role
// rule is the same one: this is where it is applied.
func ReadAuditTrail(ctx context.Context, users *Users, c Caller, f AuditFilter) ([]AuditEntry, error) {
	if !c.ReadsAudit() {
		// The attempt is evidence too; without its row, no answer.
		if err := users.Audit(ctx, AuditEntry{User: c.Name, Action: ActionDenied, Detail: ActionAudit + " " + f.String(), Remote: c.Remote}); err != nil {
			return nil, fmt.Errorf("the audit trail cannot be written: %w", err)
		}
		return nil, errorf(ErrForbidden, "user %s (%s) may not read the audit trail: admins, auditors and the legal role may", c.Name, c.Role)
	}
	if err := f.check(); err != nil {
		return nil, err
	}
	out, err := users.AuditQuery(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("read the audit trail: %w", err)
	}
	if err := users.Audit(ctx, AuditEntry{User: c.Name, Action: ActionAudit, Detail: f.String(), Remote: c.Remote}); err != nil {
		return nil, fmt.Errorf("the audit trail cannot be written, so it is not shown: %w", err)
	}
	return out, nil
}

// errNoAuditStore: a Service made without a user store audits nothing, so
// it serves nothing that must be audited (fail closed).
var errNoAuditStore = fmt.Errorf("the service has no audit store (Options.Users), so nothing audited is served")

// AuditCSVHeader is the header row of WriteAuditCSV.
var AuditCSVHeader = []string{"id", "at", "user", "action", "detail", "remote"}

// WriteAuditCSV writes entries as CSV (RFC 4180: CRLF line ends, fields
// quoted when they hold a comma, quote or line break) with a header row.
//
// Against CSV formula injection (a spreadsheet runs a cell that starts
// with = + - @, or a tab or carriage return, as a formula; a search for
// "=HYPERLINK(...)" would otherwise be one in the auditor's spreadsheet):
// such a cell gets a leading apostrophe ('), which spreadsheets show and do
// not evaluate. A cell that starts with an apostrophe gets one too, so that
// the rule is reversible: a reader of the CSV that wants the stored text
// strips one leading apostrophe from every cell that starts with one.
// Every column is treated alike, the id too (it never starts with one).
func WriteAuditCSV(w io.Writer, entries []AuditEntry) error {
	cw := csv.NewWriter(w)
	cw.UseCRLF = true
	if err := cw.Write(AuditCSVHeader); err != nil {
		return err
	}
	for _, e := range entries {
		row := []string{strconv.FormatInt(e.ID, 10), e.At, e.User, e.Action, e.Detail, e.Remote}
		for i := range row {
			row[i] = CSVCell(row[i])
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// CSVCell makes s safe as a spreadsheet cell (see WriteAuditCSV).
func CSVCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r'", rune(s[0])) {
		return "'" + s
	}
	return s
}

// Operator is the local operator (the CLI on the host, or a process on the
// local socket): its name is "operator:" and the OS user the process runs
// as, so that the trail tells root's commands from a service account's.
func Operator() Caller { return OperatorAs(osUser()) }

// OperatorAs is the operator acting as OS user name (the local socket
// learns its peer's from the kernel). An empty name is "operator".
func OperatorAs(name string) Caller {
	c := Caller{Name: "operator", Role: RoleOperator, Remote: "local"}
	if name != "" {
		c.Name += ":" + auditText(name)
	}
	return c
}

// osUser is the name of the user this process runs as: the user name of
// its uid's passwd entry, else "uid<N>". Never the environment: $USER (or
// $LOGNAME) is whatever the caller set, and user.Current falls back to it
// when the uid has no passwd entry, so one person could approve her own
// retention plan under a second name (four eyes). user.LookupId reads the
// passwd database (cgo's getpwuid_r or /etc/passwd) and nothing else.
var osUser = sync.OnceValue(func() string { return osUserOf(os.Getuid(), user.LookupId) })

// osUserOf is osUser for uid, with the passwd lookup given (tests).
func osUserOf(uid int, lookup func(string) (*user.User, error)) string {
	id := strconv.Itoa(uid)
	if u, err := lookup(id); err == nil && u.Username != "" && u.Uid == id {
		return u.Username
	}
	return "uid" + id
}
