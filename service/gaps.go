package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"mailvault/harvest"
	"mailvault/indexer"
	"mailvault/indexer/catalog"
)

// Completeness: the gap checks of the harvesters (harvest/gaps.go) as
// users read them. A check compares each harvested mailbox's UIDs on the
// server with the archive, fetches what is missing below the checkpoint
// and reports the numbers; the catalog keeps the last check per mailbox.
//
// Decisions:
//   - A check on demand (`mailvault status --check`, POST /api/jobs
//     {"kind": "check"}) is a job of serve when serve runs: serve holds the
//     archive (the index admits one writer), and a check stores what it
//     finds missing. Without serve the CLI opens the archive itself and
//     runs the same Service.CheckGaps over the configured accounts: a
//     compliance officer can check an archive whose daemon is stopped.
//   - Only those who run jobs (admin, operator) start checks: a check logs
//     in to every server. Those who see every account read the reports;
//     a user sees the reports of their accounts.
//   - A report is anchored in the audit trail: its SHA-256 (over the report
//     with the digest field empty) is audited as gap-check-report, and the
//     ledger, when there is one, holds every audit entry. The kept file
//     (`--out`) can then be shown unaltered: hash it the same way, find
//     the entry (`mailvault audit`), and `mailvault ledger verify` checks
//     the trail against the ledger (there is no per-entry proof command).
//   - Messages found missing are audited too (gap-found, by "harvester"),
//     beside the log line and the metric: the record that they were
//     missing and when outlives the last-check row.
//   - A report is scoped like Status: a user gets the rows of their
//     accounts only, and an archive identity without the data directory
//     and the ledger's figures. Those are archive-wide (the ledger grows
//     with every account's mail), which Status keeps from users too
//     (Ledger, Unindexed, jobs).

// Audit actions of gap checks.
const (
	ActionGapCheck  = "gap-check"        // a check on demand started (detail: the accounts)
	ActionGapReport = "gap-check-report" // a completeness report made (detail: its sha256)
	ActionGapFound  = "gap-found"        // a check found messages missing (detail: mailbox, UIDs)
)

// JobCheck is a gap check on demand; its result is a Completeness.
const JobCheck JobKind = "check"

// harvesterCaller is who records what the harvesters find by themselves.
var harvesterCaller = Caller{Name: "harvester", Role: RoleOperator, Remote: "serve"}

// gapSink is the harvesters' Sink: the archive's, plus the audit record of
// what a gap check found.
type gapSink struct {
	*Sink
	s *Service
}

func (g gapSink) GapChecked(ctx context.Context, r harvest.GapReport) error {
	if r.Missing > 0 {
		detail := fmt.Sprintf("account %s mailbox %s uidvalidity %d: %d missing below checkpoint %d (UIDs %s), %d fetched",
			r.Account, r.Mailbox, r.UIDValidity, r.Missing, r.Checkpoint, r.MissingUIDs, r.Fetched)
		if err := g.s.audit(ctx, harvesterCaller, ActionGapFound, detail); err != nil {
			return err
		}
	}
	return g.Sink.GapChecked(ctx, r)
}

func (s *Sink) Held(ctx context.Context, account, mailbox string, uidvalidity uint32, fn func(uid uint32, h harvest.Holding) error) error {
	return s.a.HeldUIDs(ctx, account, mailbox, uidvalidity, func(uid uint32, held int) error {
		h := harvest.HeldLive
		switch held {
		case catalog.HeldExpunged:
			h = harvest.HeldExpunged
		case catalog.HeldSkipped:
			h = harvest.HeldSkipped
		}
		return fn(uid, h)
	})
}

func (s *Sink) GapChecked(ctx context.Context, r harvest.GapReport) error {
	_, err := s.a.RecordGapCheck(ctx, gapCheck(r))
	return err
}

func (s *Sink) LastGapCheck(ctx context.Context, account, mailbox string) (time.Time, error) {
	return s.a.LastGapCheck(ctx, account, mailbox)
}

func gapCheck(r harvest.GapReport) catalog.GapCheck {
	return catalog.GapCheck{Account: r.Account, Mailbox: r.Mailbox, UIDValidity: r.UIDValidity, At: r.At,
		Checkpoint: r.Checkpoint, OnServer: r.OnServer, Archived: r.Archived, Skipped: r.Skipped, Pending: r.Pending,
		Missing: r.Missing, MissingUIDs: r.MissingUIDs, MissingTruncated: r.MissingTruncated, Fetched: r.Fetched,
		ExpungedPresent: r.ExpungedPresent, Error: r.Error}
}

// ArchiveIdentity names the archive a report is of. A caller who does not
// see every account gets Host only (see the decisions above).
type ArchiveIdentity struct {
	DataDir string `json:"data_dir"`
	Host    string `json:"host"`
	// The ledger's origin and size when the report was made, when the
	// archive has a ledger: the report's audit entry follows.
	LedgerOrigin   string `json:"ledger_origin,omitempty"`
	LedgerLeaves   int64  `json:"ledger_leaves,omitempty"`
	CheckpointRoot string `json:"ledger_checkpoint_root,omitempty"`
}

// Completeness is the completeness report: per harvested mailbox, its last
// gap check. It is what `status --check` prints and `--out` keeps.
type Completeness struct {
	Archive     ArchiveIdentity `json:"archive"`
	GeneratedAt time.Time       `json:"generated_at"`
	GeneratedBy string          `json:"generated_by"`
	// Checked: the checks ran for this report (else these are the last
	// recorded ones).
	Checked   bool               `json:"checked"`
	Mailboxes []catalog.GapCheck `json:"mailboxes"`
	// Errors are accounts whose check could not run (a login refused,
	// the server down), with why.
	Errors []string `json:"errors"`
	// SHA256 is the digest of this report with SHA256 empty, audited as
	// gap-check-report (see the decisions above).
	SHA256 string `json:"sha256"`
}

// Missing is how many messages the report's mailboxes miss in all.
func (c *Completeness) Missing() int {
	n := 0
	for _, m := range c.Mailboxes {
		n += m.Missing - m.Fetched
	}
	return n
}

// Digest returns the report's SHA-256 as Completeness.SHA256 says.
func (c Completeness) Digest() string {
	c.SHA256 = ""
	b, _ := json.Marshal(c)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// StartCheck starts a gap check of every configured account (or those
// named) as a job; its result is a Completeness.
func (s *Service) StartCheck(c Caller, accounts []string) (JobInfo, error) {
	if err := mayRun(c); err != nil {
		return JobInfo{}, err
	}
	hs, err := s.checkHarvesters(accounts)
	if err != nil {
		return JobInfo{}, err
	}
	return s.jobs.start(c, JobCheck, "gap check of "+accountList(hs), func(ctx context.Context, progress func(int, int)) (any, error) {
		return s.runCheck(ctx, c, hs, progress)
	})
}

// CheckGaps runs a gap check of every configured account (or those named)
// now and returns the completeness report. It needs no Run: the CLI calls
// it over an archive it opened itself.
func (s *Service) CheckGaps(ctx context.Context, c Caller, accounts []string) (*Completeness, error) {
	if err := mayRun(c); err != nil {
		return nil, err
	}
	hs, err := s.checkHarvesters(accounts)
	if err != nil {
		return nil, err
	}
	if err := s.audit(ctx, c, ActionGapCheck, accountList(hs)); err != nil {
		return nil, err
	}
	return s.runCheck(ctx, c, hs, nil)
}

func (s *Service) checkHarvesters(accounts []string) ([]*harvest.Harvester, error) {
	if len(s.harvesters) == 0 {
		return nil, errorf(ErrBadRequest, "no accounts are configured to check (accounts: in the configuration)")
	}
	var hs []*harvest.Harvester
	for i, h := range s.harvesters {
		if len(accounts) == 0 || slices.Contains(accounts, s.opts.Accounts[i].Name) {
			hs = append(hs, h)
		}
	}
	for _, a := range accounts {
		if !slices.ContainsFunc(s.opts.Accounts, func(acct harvest.Account) bool { return acct.Name == a }) {
			return nil, errorf(ErrNotFound, "no configured account %q", a)
		}
	}
	return hs, nil
}

func accountList(hs []*harvest.Harvester) string {
	names := make([]string, len(hs))
	for i, h := range hs {
		names[i] = h.Status().Account
	}
	return "accounts " + strings.Join(names, ", ")
}

func (s *Service) runCheck(ctx context.Context, c Caller, hs []*harvest.Harvester, progress func(int, int)) (*Completeness, error) {
	var errs []string
	names := map[string]bool{}
	for i, h := range hs {
		if progress != nil {
			progress(i, len(hs))
		}
		name := h.Status().Account
		names[name] = true
		if _, err := h.CheckGaps(ctx); err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			errs = append(errs, fmt.Sprintf("account %s: %v", name, err))
		}
	}
	if progress != nil {
		progress(len(hs), len(hs))
	}
	rep, err := s.completeness(ctx, c, func(account string) bool { return names[account] })
	if err != nil {
		return nil, err
	}
	rep.Checked, rep.Errors = true, append(rep.Errors, errs...)
	return rep, s.anchor(ctx, c, rep)
}

// Completeness returns the last recorded check of every mailbox c may see,
// as a report (not anchored: nothing was checked).
func (s *Service) Completeness(ctx context.Context, c Caller) (*Completeness, error) {
	return s.completeness(ctx, c, c.Sees)
}

func (s *Service) completeness(ctx context.Context, c Caller, keep func(account string) bool) (*Completeness, error) {
	checks, err := s.a.GapChecks(ctx)
	if err != nil && !errors.Is(err, indexer.ErrNoGapChecks) {
		return nil, err
	}
	rep := &Completeness{Archive: s.identity(c), GeneratedAt: time.Now().UTC(), GeneratedBy: c.Name,
		Mailboxes: []catalog.GapCheck{}, Errors: []string{}}
	for _, g := range checks {
		if c.Sees(g.Account) && keep(g.Account) {
			rep.Mailboxes = append(rep.Mailboxes, g)
		}
	}
	return rep, nil
}

func (s *Service) identity(c Caller) ArchiveIdentity {
	var id ArchiveIdentity
	id.Host, _ = os.Hostname()
	if !c.SeesAll() {
		return id
	}
	id.DataDir = s.a.Dir()
	if l := s.opts.Ledger; l != nil {
		if st, err := l.status(); err == nil {
			id.LedgerOrigin, id.LedgerLeaves, id.CheckpointRoot = st.Origin, st.Leaves, st.CheckpointRoot
		}
	}
	return id
}

// anchor sets the report's digest and audits it.
func (s *Service) anchor(ctx context.Context, c Caller, rep *Completeness) error {
	rep.SHA256 = rep.Digest()
	return s.audit(ctx, c, ActionGapReport, fmt.Sprintf("sha256 %s: %d mailboxes, %d missing", rep.SHA256, len(rep.Mailboxes), rep.Missing()))
}

var _ harvest.GapSink = gapSink{}
