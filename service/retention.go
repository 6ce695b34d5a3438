package service

// Retention and disposition (docs/compliance.md, "Retention"):
//
//   - Policies come from the serve config. A message matches a policy when
//     one of its places is in the policy's accounts (any when empty) and
//     mailboxes (any when empty), and the policy's query (human syntax;
//     none: everything) finds it. Of the policies a message matches, the
//     one that keeps longest wins; a message no policy matches is kept
//     forever (the default). Age is counted from the sent date (Date:) or
//     the archive date (when the archive first stored it), as the policy
//     says; a message without a valid Date: is aged from its archive date.
//   - Plan decides, per message, the winning policy and whether it has
//     expired, and asks the holds (HeldBy) which expired messages a legal
//     hold keeps. A plan is saved (<data>/retention/<id>.json, written to a
//     temporary name, fsynced, renamed) before anything is deleted, so that
//     an apply killed at any point resumes the same plan: it deletes only
//     what the plan lists, never anything else.
//   - Apply deletes the plan's messages one by one through
//     indexer.Dispose, asking HeldBy again for each right before its
//     tombstone is made (a hold made after the plan, or mail that came
//     under a hold since, is kept). Progress is the tombstones: a message
//     with a done tombstone is skipped on resume, a pending one finished.
//   - WORM (retention.worm, true unless the config says false): apply and
//     erase refuse; plan still shows what would go.
//   - Four eyes (retention.four_eyes): apply needs the plan id, and the
//     plan approved (ApproveRetention) by an identity other than the one
//     that made it; the scheduled job then only makes plans.
//   - Erase deletes one message for a legal erasure request (rule
//     "erasure"), refused under a hold or in WORM mode.
//
// Roles: admin and the operator plan, approve, apply and erase; auditor
// and legal may plan, list and show plans (read-only towards the mail;
// their plan is saved like any other, so that an admin can approve and
// apply exactly what they saw); users may do none, and each refusal is
// audited as denied. Every plan, list, show, approve, apply, deletion and
// erase is audited before it takes effect or is answered (fail closed).
// The front doors (CLI offline, the local socket, the JSON API and the
// /retention page, web/retention.go) all call these methods and decide
// nothing themselves.

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"mailvault/indexer"
	"mailvault/indexer/catalog"
	"mailvault/indexer/mime"
	"mailvault/indexer/store"
)

// JobRetention is a retention apply run as a job (the scheduled one too).
const JobRetention JobKind = "retention"

// RetentionPolicy is one retention rule of the config.
type RetentionPolicy struct {
	Name      string   `json:"name"`
	Accounts  []string `json:"accounts,omitempty"`
	Mailboxes []string `json:"mailboxes,omitempty"`
	Query     string   `json:"query,omitempty"` // human syntax
	Keep      Period   `json:"keep"`
	From      string   `json:"from"` // AgeSent or AgeArchived
}

// The dates a policy counts age from.
const (
	AgeSent     = "sent"
	AgeArchived = "archived"
)

// RetentionConfig is the retention section of the config. The zero value
// is not the default: DefaultRetention is (WORM on).
type RetentionConfig struct {
	WORM     bool
	FourEyes bool
	Policies []RetentionPolicy
	// Schedule, when positive, runs a retention apply every Schedule while
	// the service runs (off by default).
	Schedule time.Duration
}

// DefaultRetention is the retention of an archive whose config says
// nothing: WORM, no policy, nothing ever deleted.
func DefaultRetention() *RetentionConfig { return &RetentionConfig{WORM: true} }

// Period is a retention period: years, months and days ("6y", "18m",
// "90d", "1y6m"), counted on the calendar.
type Period struct {
	Years, Months, Days int
}

var periodRE = regexp.MustCompile(`^(?:(\d+)y)?(?:(\d+)m)?(?:(\d+)w)?(?:(\d+)d)?$`)

// ParsePeriod parses "6y", "90d", "12w", "18m", "1y6m".
func ParsePeriod(s string) (Period, error) {
	m := periodRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil || strings.TrimSpace(s) == "" {
		return Period{}, fmt.Errorf("%q: want a period like 6y, 18m, 12w or 90d", s)
	}
	n := func(i int) int { v, _ := strconv.Atoi(m[i]); return v }
	p := Period{Years: n(1), Months: n(2), Days: 7*n(3) + n(4)}
	if p == (Period{}) {
		return Period{}, fmt.Errorf("%q: a period of zero would delete mail at once; want at least 1d", s)
	}
	return p, nil
}

func (p Period) String() string {
	var b strings.Builder
	if p.Years > 0 {
		fmt.Fprintf(&b, "%dy", p.Years)
	}
	if p.Months > 0 {
		fmt.Fprintf(&b, "%dm", p.Months)
	}
	if p.Days > 0 {
		fmt.Fprintf(&b, "%dd", p.Days)
	}
	return b.String()
}

// MarshalJSON writes the period as its text ("6y").
func (p Period) MarshalJSON() ([]byte, error) { return json.Marshal(p.String()) }

// UnmarshalJSON reads a period's text.
func (p *Period) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := ParsePeriod(s)
	*p = v
	return err
}

// cutoff is the instant before which a date is past the period at now.
func (p Period) cutoff(now time.Time) time.Time { return now.AddDate(-p.Years, -p.Months, -p.Days) }

// PlanItem is one message a plan deletes.
type PlanItem struct {
	SHA256 string    `json:"sha256"`
	Size   int64     `json:"size"`
	Policy string    `json:"policy"`
	From   string    `json:"from"` // the date counted: sent or archived
	Date   time.Time `json:"date"` // that date
	Days   int       `json:"age_days"`
}

// PolicyCount is what a plan says about one policy.
type PolicyCount struct {
	Name    string `json:"name"`
	Keep    Period `json:"keep"`
	From    string `json:"from"`
	Matched int    `json:"matched"` // messages this policy won
	Expired int    `json:"expired"` // of those, past their period
	Delete  int    `json:"delete"`  // of those, not held: to delete
	Held    int    `json:"held"`    // expired but kept by a hold
}

// HoldCount is how many expired messages a hold keeps.
type HoldCount struct {
	Hold     string `json:"hold"`
	Messages int    `json:"messages"`
}

// Plan states.
const (
	PlanPlanned  = "planned"
	PlanApplying = "applying"
	PlanApplied  = "applied"
)

// RetentionPlan is what a retention apply would (or did) delete and why.
type RetentionPlan struct {
	ID       string    `json:"id"`
	By       string    `json:"by"`
	Created  time.Time `json:"created"`
	WORM     bool      `json:"worm"`
	FourEyes bool      `json:"four_eyes"`
	// ByRole is the planner's role; with four eyes a plan made by a role
	// that may not delete (auditor, legal) or by the scheduler needs two
	// admins besides: the first to approve it endorses it (EndorsedBy, the
	// planner of record) and a second, different one approves it.
	ByRole     Role      `json:"by_role,omitempty"`
	EndorsedBy string    `json:"endorsed_by,omitempty"`
	EndorsedAt time.Time `json:"endorsed_at,omitzero"`
	ApprovedBy string    `json:"approved_by,omitempty"`
	ApprovedAt time.Time `json:"approved_at,omitzero"`
	// DeleteSHA256 is the sha256 (hex) of the Delete list as JSON
	// (planDigest); the plan's and the approval's audit rows carry it, and
	// apply refuses a file whose list no longer hashes to it.
	DeleteSHA256 string `json:"delete_sha256"`
	// Truncated counts the expired, unheld messages beyond MaxPlanDelete
	// that this plan does not list (a later plan takes them).
	Truncated int           `json:"truncated,omitempty"`
	State     string        `json:"state"`
	Messages  int           `json:"messages"`  // messages weighed
	NoPolicy  int           `json:"no_policy"` // matched no policy: kept forever
	Policies  []PolicyCount `json:"policies"`
	Holds     []HoldCount   `json:"holds"`
	HeldTotal int           `json:"held"`
	Delete    []PlanItem    `json:"delete"`
	// Set by apply.
	Deleted  int `json:"deleted"`
	KeptHeld int `json:"kept_at_apply"` // planned, but held when its turn came
	// Skipped lists what apply did not delete because, weighed again under
	// the config in force and the message's own Date header, it is not
	// expired now (or cannot be shown to be): sha256 and why.
	Skipped []PlanSkip `json:"skipped,omitempty"`
	// Parked lists pending tombstones apply found and did not finish
	// (indexer.FinishPending: never started, held now, or new copies).
	Parked      []indexer.Parked `json:"parked,omitempty"`
	AppliedBy   string           `json:"applied_by,omitempty"`
	AppliedAt   time.Time        `json:"applied_at,omitzero"`
	DeleteBytes int64            `json:"delete_bytes"`
	// ToDelete is len(Delete), also in a listing, which leaves Delete out.
	ToDelete int `json:"to_delete"`
}

// PlanSkip is a planned message apply did not delete, and why.
type PlanSkip struct {
	SHA256 string `json:"sha256"`
	Why    string `json:"why"`
}

// Bounds of the saved plans (the hostile review: plans piled up).
const (
	// MaxPlans is how many plans are kept in <data>/retention. Saving one
	// more prunes the oldest applied plan, else the oldest unapproved
	// planned one (audited as retention-prune); approved or applying plans
	// are never pruned: with MaxPlans of those, a new plan is refused.
	MaxPlans = 100
	// MaxReadOnlyPlans is how many unapproved plans made by read-only
	// roles (auditor, legal) are kept; the oldest goes when one more is
	// made, so a read-only user cannot fill the directory.
	MaxReadOnlyPlans = 10
	// MaxPlanDelete bounds a plan's list (a plan file of ~200 bytes per
	// message): the rest is counted in Truncated and left to a later plan.
	MaxPlanDelete = 50_000
)

func (s *Service) retention() *RetentionConfig {
	if s.opts.Retention == nil {
		return DefaultRetention()
	}
	return s.opts.Retention
}

// PlansRetention reports whether c may see the retention policies and
// plans and make plans (the web links the /retention page for them).
func (c Caller) PlansRetention() bool {
	switch c.Role {
	case RoleAdmin, RoleOperator, RoleAuditor, RoleLegal:
		return true
	}
	return false
}

// Disposes reports whether c may approve and apply plans and erase.
func (c Caller) Disposes() bool { return c.Role == RoleAdmin || c.Role == RoleOperator }

// mayPlan refuses, audited as denied, a caller who may not see retention.
func (s *Service) mayPlan(ctx context.Context, c Caller, action, what string) error {
	if c.PlansRetention() {
		return nil
	}
	if err := s.audit(ctx, c, ActionDenied, strings.TrimSpace(action+" "+what)); err != nil {
		return err
	}
	return errorf(ErrForbidden, "user %s (%s) may not see retention plans: an admin, auditor, legal or the operator may", c.Name, c.Role)
}

// mayDispose refuses, audited as denied, a caller who may not delete.
func (s *Service) mayDispose(ctx context.Context, c Caller, action, what string) error {
	if c.Disposes() {
		return nil
	}
	if err := s.audit(ctx, c, ActionDenied, strings.TrimSpace(action+" "+what)); err != nil {
		return err
	}
	return errorf(ErrForbidden, "user %s (%s) may not delete mail: an admin or the operator may", c.Name, c.Role)
}

func (s *Service) wormError(st indexer.WORMState) error {
	if st.Recorded && st.WORM {
		return errorf(ErrForbidden, "the archive is in WORM mode (recorded in its catalog on %s by %s): nothing can be deleted; an admin or the operator turns it off with `mailvault retention worm off --reason R` (audited); the config cannot",
			st.At.Format(time.DateOnly), st.Actor)
	}
	return errorf(ErrForbidden, "the archive is in WORM mode (retention.worm is true, the default): nothing can be deleted; `mailvault retention worm off --reason R` turns it off")
}

// WORM is a property of the archive, not of a config file (the hostile
// review: any offline run with `worm: false` deleted). The catalog keeps
// its state (worm_log, append-only); the config's retention.worm can only
// turn it ON:
//
//   - a service whose config says worm (the default) records WORM on in
//     the archive the first time it looks (serve's start, every retention
//     plan, list, apply, erase), audited as worm-on;
//   - only SetWORM (`mailvault retention worm off --reason R`, the API)
//     turns it off: an admin or the operator, with a reason, audited
//     before it is recorded; turning it off while a legal hold is active
//     is allowed (every deletion path checks the holds anyway) and the
//     audit row names the active holds;
//   - an archive whose state was never recorded (made before this, and
//     never opened by a service whose config says worm) follows its
//     config, as before; `mailvault retention worm on` records it.
//
// The effective state is config OR archive: a config with worm: false
// over a WORM archive is refused, with a warning in the log.
func (s *Service) wormState(ctx context.Context) (on bool, st indexer.WORMState, err error) {
	st, err = s.a.WORM(ctx)
	if err != nil {
		return true, st, err // cannot tell: refuse deletion
	}
	cfg := s.retention()
	if cfg.WORM && !(st.Recorded && st.WORM) && s.a.Writable() {
		c := Caller{Name: "config", Role: RoleOperator, Remote: "local"}
		if err := s.audit(ctx, c, "worm-on", "retention.worm in the config turns WORM on for the archive"); err != nil {
			return true, st, err
		}
		if st, err = s.a.SetWORM(ctx, true, c.Name, "retention.worm in the config"); err != nil {
			return true, st, err
		}
	}
	if !cfg.WORM && st.Recorded && st.WORM {
		s.log.Warn("the config says retention.worm: false, but the archive is WORM (recorded in its catalog): nothing is deleted; `mailvault retention worm off --reason R` turns it off")
	}
	return cfg.WORM || (st.Recorded && st.WORM), st, nil
}

// worm refuses (wormError) when the archive is WORM; nil when it may delete.
func (s *Service) worm(ctx context.Context) error {
	on, st, err := s.wormState(ctx)
	if err != nil {
		return fmt.Errorf("WORM state cannot be read, so nothing is deleted: %w", err)
	}
	if on {
		return s.wormError(st)
	}
	return nil
}

// WORMStatus is the archive's WORM state as SetWORM and the status show it.
type WORMStatus struct {
	WORM     bool              `json:"worm"`   // in force: config or archive
	Config   bool              `json:"config"` // what the config says
	Archive  indexer.WORMState `json:"archive"`
	Warnings []string          `json:"warnings,omitempty"`
}

// WORM returns the WORM state in force, for who may plan.
func (s *Service) WORM(ctx context.Context, c Caller) (WORMStatus, error) {
	if err := s.mayPlan(ctx, c, "worm-show", ""); err != nil {
		return WORMStatus{}, err
	}
	on, st, err := s.wormState(ctx)
	if err != nil {
		return WORMStatus{}, err
	}
	if err := s.audit(ctx, c, "worm-show", fmt.Sprintf("worm=%v", on)); err != nil {
		return WORMStatus{}, err
	}
	out := WORMStatus{WORM: on, Config: s.retention().WORM, Archive: st}
	if !out.Config && st.Recorded && st.WORM {
		out.Warnings = append(out.Warnings, "the config says worm: false, but the archive is WORM: the archive's state is in force")
	}
	if !st.Recorded {
		out.Warnings = append(out.Warnings, "the archive's WORM state was never recorded: the config decides; `mailvault retention worm on` records it")
	}
	return out, nil
}

// SetWORM records the archive's WORM state: on for anyone who may
// delete; off for an admin or the operator with a reason. Audited first.
func (s *Service) SetWORM(ctx context.Context, c Caller, on bool, reason string) (WORMStatus, error) {
	action := "worm-off"
	if on {
		action = "worm-on"
	}
	if err := s.mayDispose(ctx, c, action, ""); err != nil {
		return WORMStatus{}, err
	}
	reason = strings.TrimSpace(reason)
	if !on && reason == "" {
		return WORMStatus{}, errorf(ErrBadRequest, "worm off: --reason is required (why the archive may delete from now on)")
	}
	if len(reason) > MaxHoldDescriptionBytes {
		return WORMStatus{}, errorf(ErrBadRequest, "reason of %d bytes: at most %d", len(reason), MaxHoldDescriptionBytes)
	}
	if !s.a.Writable() {
		return WORMStatus{}, errorf(ErrBadRequest, "the archive is open read-only")
	}
	if reason == "" {
		reason = "turned on"
	}
	detail := "reason=" + reason
	if !on {
		holds, err := s.a.Holds(ctx)
		if err != nil {
			return WORMStatus{}, err
		}
		var active []string
		for _, h := range holds {
			if h.Active() {
				active = append(active, h.Name)
			}
		}
		detail += fmt.Sprintf(" active_holds=%d(%s)", len(active), strings.Join(active, ","))
	}
	if err := s.audit(ctx, c, action, detail); err != nil {
		return WORMStatus{}, err
	}
	st, err := s.a.SetWORM(ctx, on, c.Name, reason)
	if err != nil {
		s.audit(ctx, c, action+"-failed", err.Error())
		return WORMStatus{}, err
	}
	out := WORMStatus{WORM: s.retention().WORM || st.WORM, Config: s.retention().WORM, Archive: st}
	if !on && out.Config {
		out.Warnings = append(out.Warnings, "the config's retention.worm is true (the default): it turns WORM on again at the next look; set worm: false in the config too")
	}
	return out, nil
}

// SetRetention replaces the retention config (a one-shot command that read
// it from --config); call it before Run.
func (s *Service) SetRetention(cfg *RetentionConfig) { s.opts.Retention = cfg }

// planDir is where plans are saved.
func (s *Service) planDir() string { return filepath.Join(s.a.Dir(), "retention") }

// PlanRetention weighs every message against the policies, saves the plan
// and returns it. The plan's Delete lists what an apply of it would delete.
func (s *Service) PlanRetention(ctx context.Context, c Caller) (*RetentionPlan, error) {
	if err := s.mayPlan(ctx, c, "retention-plan", ""); err != nil {
		return nil, err
	}
	on, _, err := s.wormState(ctx)
	if err != nil {
		return nil, err
	}
	p, err := s.makePlan(ctx, c, retentionNow())
	if err != nil {
		return nil, err
	}
	p.WORM = on // the state in force, the archive's included
	if err := s.saveNewPlan(ctx, c, p); err != nil {
		return nil, err
	}
	return p, nil
}

// retentionNow is the clock of plans and applies (tests move it).
var retentionNow = time.Now

// saveNewPlan audits p (with its digest) and saves it, pruning old plans
// to stay within MaxPlans and MaxReadOnlyPlans.
func (s *Service) saveNewPlan(ctx context.Context, c Caller, p *RetentionPlan) error {
	return s.withPlanLock(func() error {
		if err := s.prunePlans(ctx, c, p); err != nil {
			return err
		}
		if err := s.audit(ctx, c, "retention-plan", p.summary()); err != nil {
			return err
		}
		return s.savePlan(p)
	})
}

// readOnlyPlanner: a role that may plan but not delete.
func readOnlyPlanner(r Role) bool { return r == RoleAuditor || r == RoleLegal }

// prunePlans makes room for the new plan p (see MaxPlans).
func (s *Service) prunePlans(ctx context.Context, c Caller, p *RetentionPlan) error {
	all, err := s.loadPlans(false)
	if err != nil {
		return err
	}
	// Oldest first.
	sort.SliceStable(all, func(i, j int) bool { return all[i].Created.Before(all[j].Created) })
	unapproved := func(q *RetentionPlan) bool { return q.State == PlanPlanned && q.ApprovedBy == "" }
	var victims []*RetentionPlan
	gone := map[string]bool{}
	if readOnlyPlanner(p.ByRole) {
		var ro []*RetentionPlan
		for _, q := range all {
			if readOnlyPlanner(q.ByRole) && unapproved(q) {
				ro = append(ro, q)
			}
		}
		for i := 0; len(ro)-i >= MaxReadOnlyPlans; i++ {
			victims, gone[ro[i].ID] = append(victims, ro[i]), true
		}
	}
	left := len(all) - len(victims)
	for _, pass := range []func(*RetentionPlan) bool{
		func(q *RetentionPlan) bool { return q.State == PlanApplied },
		unapproved,
	} {
		for _, q := range all {
			if left < MaxPlans {
				break
			}
			if !gone[q.ID] && pass(q) {
				victims, gone[q.ID] = append(victims, q), true
				left--
			}
		}
	}
	if left >= MaxPlans {
		return errorf(ErrBadRequest, "%d retention plans are saved and every one is approved or being applied: apply them (or let them finish) before making another", left)
	}
	for _, q := range victims {
		if err := s.audit(ctx, c, "retention-prune", fmt.Sprintf("plan %s (%s, by %s, %s, delete-sha256=%s) removed to keep at most %d plans",
			q.ID, q.State, q.By, q.Created.Format(time.RFC3339), q.DeleteSHA256, MaxPlans)); err != nil {
			return err
		}
		path, _ := s.planPath(q.ID)
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("prune retention plan %s: %w", q.ID, err)
		}
	}
	return nil
}

// planDigest is the sha256 (hex) of items as JSON: what the plan's and the
// approval's audit rows bind.
func planDigest(items []PlanItem) string {
	if items == nil {
		items = []PlanItem{}
	}
	b, _ := json.Marshal(items)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// withPlanLock runs fn holding an exclusive flock(2) on the plans'
// directory lock file, so that a plan file's read-modify-write (approve,
// apply's state changes, pruning) is never interleaved with another's,
// in this process or another (the CLI beside serve).
func (s *Service) withPlanLock(fn func() error) error {
	if err := store.MkdirSecure(s.planDir()); err != nil {
		return fmt.Errorf("retention plans: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(s.planDir(), ".lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("retention plans: lock: %w", err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("retention plans: lock: %w", err)
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return fn()
}

// auditedDigests returns the digests the audit rows of action recorded
// for plan id (the first delete-sha256= of each row naming the plan).
func (s *Service) auditedDigests(ctx context.Context, action, id string) ([]string, error) {
	if s.opts.Users == nil {
		return nil, errNoAuditStore
	}
	var out []string
	f := AuditFilter{Action: action, Limit: MaxAuditLimit}
	for {
		page, err := s.opts.Users.AuditQuery(ctx, f)
		if err != nil {
			return nil, fmt.Errorf("read the audit trail: %w", err)
		}
		for _, e := range page {
			if !strings.HasPrefix(e.Detail, "plan "+id+" ") && !strings.HasPrefix(e.Detail, "plan "+id+":") {
				continue
			}
			if _, d, ok := strings.Cut(e.Detail, "delete-sha256="); ok {
				out = append(out, strings.Fields(d)[0])
			}
		}
		if len(page) < f.Limit {
			return out, nil
		}
		f.Before = page[len(page)-1].ID
	}
}

// checkDigest refuses a plan whose list was changed since it was planned
// (and approved): the file's list must hash to its DeleteSHA256, which the
// plan's audit row (and, with four eyes, the approval's) must carry.
func (s *Service) checkDigest(ctx context.Context, p *RetentionPlan, approval bool) error {
	got := planDigest(p.Delete)
	if p.DeleteSHA256 == "" || got != p.DeleteSHA256 {
		return errorf(ErrForbidden, "plan %s: its list of messages was changed since it was made (sha256 %s, planned %s): refused; make a new plan", p.ID, got, cmp.Or(p.DeleteSHA256, "none"))
	}
	for _, action := range []string{"retention-plan", "retention-approve"} {
		if action == "retention-approve" && !approval {
			continue
		}
		ds, err := s.auditedDigests(ctx, action, p.ID)
		if err != nil {
			return err
		}
		if !slices.Contains(ds, got) {
			return errorf(ErrForbidden, "plan %s: the audit trail has no %s row for its list (sha256 %s): the plan file was changed or forged; refused", p.ID, action, got)
		}
	}
	return nil
}

func (p *RetentionPlan) summary() string {
	var parts []string
	for _, pc := range p.Policies {
		parts = append(parts, fmt.Sprintf("%s: %d expired, %d to delete, %d held", pc.Name, pc.Expired, pc.Delete, pc.Held))
	}
	// The digest first: the detail is clipped at 2,000 bytes, and apply
	// reads the first delete-sha256= of the row (auditedDigests).
	return fmt.Sprintf("plan %s: delete-sha256=%s %d messages weighed, %d to delete, %d held, %d under no policy, %d beyond the plan's cap (%s)",
		p.ID, p.DeleteSHA256, p.Messages, len(p.Delete), p.HeldTotal, p.NoPolicy, p.Truncated, strings.Join(parts, "; "))
}

// makePlan is the plan at now, unsaved and unaudited.
func (s *Service) makePlan(ctx context.Context, c Caller, now time.Time) (*RetentionPlan, error) {
	cfg := s.retention()
	var idb [6]byte
	rand.Read(idb[:])
	p := &RetentionPlan{ID: hex.EncodeToString(idb[:]), By: c.Name, ByRole: c.Role, Created: now.UTC(), WORM: cfg.WORM,
		FourEyes: cfg.FourEyes, State: PlanPlanned, Policies: []PolicyCount{}, Holds: []HoldCount{}, Delete: []PlanItem{}}
	for _, pol := range cfg.Policies {
		p.Policies = append(p.Policies, PolicyCount{Name: pol.Name, Keep: pol.Keep, From: pol.From})
	}
	matches, err := s.policyQueryMatches(ctx, cfg)
	if err != nil {
		return nil, err
	}
	var expired []PlanItem
	policyOf := map[string]int{}
	err = s.a.Candidates(ctx, func(m indexer.Candidate) error {
		p.Messages++
		hx := store.Key(m.SHA256).String()
		best, bestCut := winningPolicy(cfg, m, matches, hx, now)
		if best < 0 {
			p.NoPolicy++
			return nil
		}
		pol := cfg.Policies[best]
		p.Policies[best].Matched++
		from, date := ageOf(pol, m.Sent, m.Archived)
		if !date.Before(bestCut) {
			return nil
		}
		p.Policies[best].Expired++
		expired = append(expired, PlanItem{SHA256: hx, Size: m.Size, Policy: pol.Name, From: from, Date: date.UTC(),
			Days: int(now.Sub(date).Hours() / 24)})
		policyOf[hx] = best
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("retention plan: %w", err)
	}
	held, err := s.heldIn(ctx, expired)
	if err != nil {
		return nil, err
	}
	perHold := map[string]int{}
	for _, it := range expired {
		if hs := held[it.SHA256]; len(hs) > 0 {
			p.HeldTotal++
			p.Policies[policyOf[it.SHA256]].Held++
			for _, h := range hs {
				perHold[h]++
			}
			continue
		}
		p.Policies[policyOf[it.SHA256]].Delete++
		if len(p.Delete) >= MaxPlanDelete {
			p.Truncated++
			continue
		}
		p.Delete = append(p.Delete, it)
		p.DeleteBytes += it.Size
	}
	for h, n := range perHold {
		p.Holds = append(p.Holds, HoldCount{Hold: h, Messages: n})
	}
	sort.Slice(p.Holds, func(i, j int) bool { return p.Holds[i].Hold < p.Holds[j].Hold })
	p.ToDelete = len(p.Delete)
	p.DeleteSHA256 = planDigest(p.Delete)
	return p, nil
}

// policyQueryMatches answers each policy's query once, as a set of
// messages (nil for a policy without a query).
func (s *Service) policyQueryMatches(ctx context.Context, cfg *RetentionConfig) ([]map[string]bool, error) {
	matches := make([]map[string]bool, len(cfg.Policies))
	for i, pol := range cfg.Policies {
		if pol.Query == "" {
			continue
		}
		set := map[string]bool{}
		err := s.eachHit(ctx, Operator(), SearchRequest{Query: pol.Query}, func(h Hit) error {
			set[h.SHA256] = true
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("retention policy %s: query %q: %w", pol.Name, pol.Query, err)
		}
		matches[i] = set
	}
	return matches, nil
}

// winningPolicy is the index of the policy m falls under at now (the one
// that keeps longest: the earliest cutoff) and its cutoff; -1 for none.
func winningPolicy(cfg *RetentionConfig, m indexer.Candidate, matches []map[string]bool, hx string, now time.Time) (int, time.Time) {
	best := -1
	var bestCut time.Time
	for i, pol := range cfg.Policies {
		if !policyMatches(pol, m, matches[i], hx) {
			continue
		}
		if cut := pol.Keep.cutoff(now); best < 0 || cut.Before(bestCut) {
			best, bestCut = i, cut
		}
	}
	return best, bestCut
}

// ageOf is the date pol counts age from and its name: the sent date when
// the policy says so and there is one, else the archive date.
func ageOf(pol RetentionPolicy, sent, archived time.Time) (string, time.Time) {
	if pol.From == AgeSent && !sent.IsZero() {
		return AgeSent, sent
	}
	return AgeArchived, archived
}

// rederive weighs one planned message again at apply, under the config in
// force (cfg, matches), from the catalog (places, archive date) and the
// message's own bytes (its Date header: a catalog row edited to an old
// date does not make mail expire). It returns the item as it stands now,
// or why it is not to be deleted.
func (s *Service) rederive(ctx context.Context, cfg *RetentionConfig, matches []map[string]bool, it PlanItem, now time.Time) (PlanItem, string, error) {
	k, err := store.ParseKey(it.SHA256)
	if err != nil {
		return it, "not a message id", nil
	}
	m, err := s.a.CandidateOf(ctx, k)
	switch {
	case errors.Is(err, indexer.ErrNotCataloged):
		return it, "not in the catalog", nil
	case errors.Is(err, catalog.ErrNotFound): // disposed of already
		return it, "", nil
	case err != nil:
		return it, "", err
	}
	raw, err := s.a.Raw(it.SHA256)
	if err != nil {
		return it, fmt.Sprintf("its bytes cannot be read (%v): its age cannot be shown", err), nil
	}
	if store.KeyOf(raw) != k {
		return it, "its bytes do not hash to its id: its age cannot be shown", nil
	}
	hdr := raw
	if i := bytes.Index(raw, []byte("\r\n\r\n")); i >= 0 {
		hdr = raw[:i+4]
	} else if i := bytes.Index(raw, []byte("\n\n")); i >= 0 {
		hdr = raw[:i+2]
	}
	sent := mime.Parse(hdr, nil).Date
	best, cut := winningPolicy(cfg, m, matches, it.SHA256, now)
	if best < 0 {
		return it, "no retention policy in force covers it now: kept forever", nil
	}
	pol := cfg.Policies[best]
	from, date := ageOf(pol, sent, m.Archived)
	if !date.Before(cut) {
		return it, fmt.Sprintf("not expired now: policy %s keeps %s from the %s date, which is %s", pol.Name, pol.Keep, from, date.UTC().Format(time.DateOnly)), nil
	}
	return PlanItem{SHA256: it.SHA256, Size: m.Size, Policy: pol.Name, From: from, Date: date.UTC(),
		Days: int(now.Sub(date).Hours() / 24)}, "", nil
}

// heldIn asks HeldBy about items, 1,000 at a time.
func (s *Service) heldIn(ctx context.Context, items []PlanItem) (map[string][]string, error) {
	out := map[string][]string{}
	for start := 0; start < len(items); start += 1000 {
		var ids []string
		for _, it := range items[start:min(start+1000, len(items))] {
			ids = append(ids, it.SHA256)
		}
		got, err := s.HeldBy(ctx, ids)
		if err != nil {
			return nil, fmt.Errorf("retention: legal holds: %w (nothing is deleted while holds cannot be checked)", err)
		}
		for k, v := range got {
			out[k] = v
		}
	}
	return out, nil
}

func policyMatches(pol RetentionPolicy, m indexer.Candidate, queryHits map[string]bool, hx string) bool {
	if pol.Query != "" && !queryHits[hx] {
		return false
	}
	if len(pol.Accounts) == 0 && len(pol.Mailboxes) == 0 {
		return true
	}
	for _, pl := range m.Places {
		if (len(pol.Accounts) == 0 || slices.Contains(pol.Accounts, pl.Account)) &&
			(len(pol.Mailboxes) == 0 || slices.Contains(pol.Mailboxes, pl.Mailbox)) {
			return true
		}
	}
	return false
}

var planIDRE = regexp.MustCompile(`^[0-9a-f]{12}$`)

func (s *Service) planPath(id string) (string, error) {
	if !planIDRE.MatchString(id) {
		return "", errorf(ErrBadRequest, "plan id %q: want the 12 hex digits `mailvault retention plan` printed", clipID(id))
	}
	return filepath.Join(s.planDir(), id+".json"), nil
}

// savePlan writes p durably (temporary file, fsync, rename, fsync of the
// directory).
func (s *Service) savePlan(p *RetentionPlan) error {
	path, err := s.planPath(p.ID)
	if err != nil {
		return err
	}
	if err := store.MkdirSecure(s.planDir()); err != nil {
		return fmt.Errorf("save retention plan: %w", err)
	}
	b, err := json.MarshalIndent(p, "", " ")
	if err != nil {
		return err
	}
	err = store.WriteFileDurable(path, b, 0o600)
	if err != nil {
		return fmt.Errorf("save retention plan %s: %w", p.ID, err)
	}
	return nil
}

func (s *Service) loadPlan(id string) (*RetentionPlan, error) {
	path, err := s.planPath(id)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, errorf(ErrNotFound, "no such retention plan: %s (`mailvault retention plan` makes one)", id)
	}
	if err != nil {
		return nil, err
	}
	var p RetentionPlan
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("retention plan %s: %w", id, err)
	}
	p.ToDelete = len(p.Delete)
	return &p, nil
}

// RetentionPlanByID returns a saved plan.
func (s *Service) RetentionPlanByID(ctx context.Context, c Caller, id string) (*RetentionPlan, error) {
	if err := s.mayPlan(ctx, c, "retention-show", clipID(id)); err != nil {
		return nil, err
	}
	p, err := s.loadPlan(id)
	if err != nil {
		return nil, err
	}
	if err := s.audit(ctx, c, "retention-show", "plan "+p.ID); err != nil {
		return nil, err
	}
	return p, nil
}

// RetentionPlans lists the saved plans, newest first, without their lists
// of messages (ToDelete counts them; RetentionPlanByID gives one whole).
// A plan file that cannot be read is an error, not skipped: a plan that
// vanishes from the list would hide what was, or will be, deleted.
func (s *Service) RetentionPlans(ctx context.Context, c Caller) ([]*RetentionPlan, error) {
	if err := s.mayPlan(ctx, c, "retention-list", ""); err != nil {
		return nil, err
	}
	out, err := s.loadPlans(true)
	if err != nil {
		return nil, err
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	if err := s.audit(ctx, c, "retention-list", fmt.Sprintf("%d plans", len(out))); err != nil {
		return nil, err
	}
	return out, nil
}

// loadPlans reads every saved plan (at most MaxPlans), without their
// lists when brief.
func (s *Service) loadPlans(brief bool) ([]*RetentionPlan, error) {
	out := []*RetentionPlan{}
	ents, err := os.ReadDir(s.planDir())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("retention plans: %w", err)
	}
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || !planIDRE.MatchString(id) {
			continue
		}
		p, err := s.loadPlan(id)
		if err != nil {
			return nil, err
		}
		if brief {
			p.Delete = nil
		}
		out = append(out, p)
	}
	return out, nil
}

// RetentionSettings is the retention config in force, as the /retention
// page and GET /api/retention show it.
type RetentionSettings struct {
	WORM     bool              `json:"worm"`
	FourEyes bool              `json:"four_eyes"`
	Schedule string            `json:"schedule,omitempty"` // "" : no scheduled job
	Policies []RetentionPolicy `json:"policies"`
}

// Retention returns the retention config in force, for who may plan.
func (s *Service) Retention(ctx context.Context, c Caller) (RetentionSettings, error) {
	if err := s.mayPlan(ctx, c, "retention-list", "policies"); err != nil {
		return RetentionSettings{}, err
	}
	cfg := s.retention()
	on, _, err := s.wormState(ctx)
	if err != nil {
		return RetentionSettings{}, err
	}
	out := RetentionSettings{WORM: on, FourEyes: cfg.FourEyes, Policies: slices.Clone(cfg.Policies)}
	if out.Policies == nil {
		out.Policies = []RetentionPolicy{}
	}
	if cfg.Schedule > 0 {
		out.Schedule = cfg.Schedule.String()
	}
	return out, nil
}

// unfinishedPlan returns the plan an apply was interrupted in, if any.
func (s *Service) unfinishedPlan() (*RetentionPlan, error) {
	ents, err := os.ReadDir(s.planDir())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || !planIDRE.MatchString(id) {
			continue
		}
		p, err := s.loadPlan(id)
		if err != nil {
			return nil, err
		}
		if p.State == PlanApplying {
			return p, nil
		}
	}
	return nil, nil
}

// plannerOfRecord is who counts as the plan's maker for four eyes: its
// planner when that is an identity that may delete (an admin, the
// operator; not the scheduler), else the first admin who endorsed it; ""
// while nobody has. A plan from before by_role was recorded counts its
// planner, unless that is the scheduler.
func (p *RetentionPlan) plannerOfRecord() string {
	switch {
	case p.By == Scheduler().Name, readOnlyPlanner(p.ByRole), p.ByRole == RoleUser:
		return p.EndorsedBy
	}
	return p.By
}

// approved reports whether p has the two distinct deleting identities
// four eyes wants: a planner of record and a different approver.
func (p *RetentionPlan) approved() bool {
	por := p.plannerOfRecord()
	return por != "" && p.ApprovedBy != "" && p.ApprovedBy != por && p.ApprovedBy != p.By
}

// ApproveRetention records c's approval of plan id (four eyes): c must be
// an admin or the operator, and not who made the plan. A plan made by the
// scheduler or by a role that may not delete is first endorsed by one
// admin (who becomes its planner of record) and then approved by another;
// the same call does either, as the plan needs. The plan's list must still
// hash to what was planned; the approval's audit row carries that hash.
// The plan file is read and written under the plans' lock.
func (s *Service) ApproveRetention(ctx context.Context, c Caller, id string) (*RetentionPlan, error) {
	if err := s.mayDispose(ctx, c, "retention-approve", clipID(id)); err != nil {
		return nil, err
	}
	var p *RetentionPlan
	err := s.withPlanLock(func() error {
		var err error
		if p, err = s.loadPlan(id); err != nil {
			return err
		}
		if p.State != PlanPlanned {
			return errorf(ErrBadRequest, "plan %s is %s already", id, p.State)
		}
		if p.ApprovedBy != "" {
			return errorf(ErrBadRequest, "plan %s is approved already (by %s)", id, p.ApprovedBy)
		}
		if err := s.checkDigest(ctx, p, false); err != nil {
			return err
		}
		if p.By == c.Name {
			return errorf(ErrForbidden, "plan %s was made by %s: a second, different person approves it", id, p.By)
		}
		por := p.plannerOfRecord()
		if por == "" {
			if err := s.audit(ctx, c, "retention-endorse", fmt.Sprintf("plan %s delete-sha256=%s by %s (%s): %d to delete; a second admin approves it",
				id, p.DeleteSHA256, p.By, cmp.Or(string(p.ByRole), "?"), len(p.Delete))); err != nil {
				return err
			}
			p.EndorsedBy, p.EndorsedAt = c.Name, time.Now().UTC()
			return s.savePlan(p)
		}
		if por == c.Name {
			return errorf(ErrForbidden, "plan %s: %s is its planner of record: a second, different admin approves it", id, por)
		}
		if err := s.audit(ctx, c, "retention-approve", fmt.Sprintf("plan %s delete-sha256=%s by %s (of record %s): %d to delete",
			id, p.DeleteSHA256, p.By, por, len(p.Delete))); err != nil {
			return err
		}
		p.ApprovedBy, p.ApprovedAt = c.Name, time.Now().UTC()
		return s.savePlan(p)
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// ApplyRequest is what to apply: a saved plan (ID), or, without one, the
// plan an interrupted apply left, or else a new plan made now.
type ApplyRequest struct {
	PlanID string `json:"plan,omitempty"`
}

// ApplyRetention deletes what the plan lists, is still expired under the
// config in force and no hold keeps, and returns the plan with what was
// done. progress may be nil.
//
// The plan file is not trusted (the hostile review's F6): its list must
// hash to the digest its plan's audit row (and, with four eyes, its
// approval's) recorded, and each message is weighed again at its turn —
// the winning policy under the current config, its age from its own
// Date header (from: sent) or its archive date (from: archived) — and
// skipped, listed in Skipped, when it is not expired now. A config that
// keeps longer since the plan therefore deletes less, never more; the
// tombstone's reason is the re-derived one.
func (s *Service) ApplyRetention(ctx context.Context, c Caller, req ApplyRequest, progress func(done, total int)) (*RetentionPlan, error) {
	if err := s.mayDispose(ctx, c, "retention-apply", clipID(req.PlanID)); err != nil {
		return nil, err
	}
	cfg := s.retention()
	if err := s.worm(ctx); err != nil {
		return nil, err
	}
	var p *RetentionPlan
	var err error
	switch {
	case req.PlanID != "":
		p, err = s.loadPlan(req.PlanID)
	case cfg.FourEyes:
		return nil, errorf(ErrBadRequest, "retention.four_eyes is on: apply takes --plan ID, a plan approved by someone other than who made it")
	default:
		if p, err = s.unfinishedPlan(); err == nil && p == nil {
			if p, err = s.makePlan(ctx, c, retentionNow()); err == nil {
				err = s.saveNewPlan(ctx, c, p)
			}
		}
	}
	if err != nil {
		return nil, err
	}
	if p.State == PlanApplied {
		return p, nil
	}
	if cfg.FourEyes && !p.approved() {
		return nil, errorf(ErrForbidden, "plan %s is not approved: with retention.four_eyes, two different admins (or the operator) make or endorse it and approve it first (`mailvault retention approve %s`)", p.ID, p.ID)
	}
	err = s.withPlanLock(func() error {
		q, err := s.loadPlan(p.ID)
		if err != nil {
			return err
		}
		p = q
		if cfg.FourEyes && !p.approved() {
			return errorf(ErrForbidden, "plan %s is not approved", p.ID)
		}
		if err := s.checkDigest(ctx, p, cfg.FourEyes); err != nil {
			return err
		}
		if err := s.audit(ctx, c, "retention-apply", fmt.Sprintf("plan %s delete-sha256=%s (by %s, approved by %s): %d planned",
			p.ID, p.DeleteSHA256, p.By, p.ApprovedBy, len(p.Delete))); err != nil {
			return err
		}
		if p.State != PlanApplying {
			p.State, p.AppliedBy = PlanApplying, c.Name
			return s.savePlan(p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Whatever a crash left half done, first: each one checked again.
	n, parked, err := s.a.FinishPending(ctx, s.pendingCheck(c))
	if err != nil {
		return nil, fmt.Errorf("retention apply: finish interrupted disposals: %w", err)
	}
	if n > 0 || len(parked) > 0 {
		s.log.Info("retention apply: interrupted disposals", "finished", n, "left pending", len(parked))
	}
	p.Parked = parked
	matches, err := s.policyQueryMatches(ctx, cfg)
	if err != nil {
		return p, err
	}
	now := retentionNow()
	p.Deleted, p.KeptHeld, p.Skipped = 0, 0, nil
	for i, it := range p.Delete {
		if progress != nil {
			progress(i, len(p.Delete))
		}
		if err := ctx.Err(); err != nil {
			return p, err
		}
		k, _ := store.ParseKey(it.SHA256)
		if t, err := s.a.TombstoneOf(ctx, k); err == nil && t.State == "done" {
			p.Deleted++ // a resumed apply: done before
			continue
		}
		cur, why, err := s.rederive(ctx, cfg, matches, it, now)
		if err != nil {
			return p, fmt.Errorf("retention apply: weigh %s again: %w", it.SHA256, err)
		}
		if why != "" {
			p.Skipped = append(p.Skipped, PlanSkip{SHA256: it.SHA256, Why: why})
			s.log.Info("retention: planned, not deleted", "sha256", it.SHA256, "why", why)
			continue
		}
		deleted, err := s.disposeOne(ctx, c, it.SHA256, "retention:"+cur.Policy,
			fmt.Sprintf("past %s of policy %s since its %s date %s (plan %s)", policyKeep(cfg, cur.Policy), cur.Policy, cur.From, cur.Date.Format(time.DateOnly), p.ID))
		if err != nil {
			return p, err
		}
		if deleted {
			p.Deleted++
		} else {
			p.KeptHeld++
		}
	}
	if progress != nil {
		progress(len(p.Delete), len(p.Delete))
	}
	p.State, p.AppliedAt = PlanApplied, time.Now().UTC()
	if err := s.audit(ctx, c, "retention-applied", fmt.Sprintf("plan %s: %d deleted, %d kept by holds made since the plan, %d not expired now, %d pending disposals left",
		p.ID, p.Deleted, p.KeptHeld, len(p.Skipped), len(p.Parked))); err != nil {
		return p, err
	}
	return p, s.withPlanLock(func() error { return s.savePlan(p) })
}

// pendingCheck is FinishPending's check of a pending tombstone: no hold
// covers its message now, and the trail gets a dispose row (fail closed)
// before it is finished.
func (s *Service) pendingCheck(c Caller) func(context.Context, indexer.Tombstone) error {
	return func(ctx context.Context, t indexer.Tombstone) error {
		held, err := s.HeldBy(ctx, []string{t.SHA256})
		if err != nil {
			return fmt.Errorf("legal holds cannot be checked, so nothing is deleted: %w", err)
		}
		if hs := held[t.SHA256]; len(hs) > 0 {
			return fmt.Errorf("held by %s: not finished", strings.Join(hs, ", "))
		}
		return s.audit(ctx, c, "dispose", fmt.Sprintf("%s rule %s: %s (finishing tombstone %d, made by %s)", t.SHA256, t.Rule, t.Reason, t.ID, t.Actor))
	}
}

func policyKeep(cfg *RetentionConfig, name string) string {
	for _, p := range cfg.Policies {
		if p.Name == name {
			return p.Keep.String()
		}
	}
	return "?"
}

// errHeld is the MayDelete refusal of a held message.
type errHeld struct{ holds []string }

func (e *errHeld) Error() string { return "held by " + strings.Join(e.holds, ", ") }

// disposeOne deletes one message unless a hold covers it at that moment
// (false, nil then). The deletion is audited before its tombstone is made.
func (s *Service) disposeOne(ctx context.Context, c Caller, sha, rule, reason string) (bool, error) {
	k, err := store.ParseKey(sha)
	if err != nil {
		return false, errorf(ErrBadRequest, "message id %q: want 64 hex digits (a sha256)", clipID(sha))
	}
	if t, err := s.a.TombstoneOf(ctx, k); err == nil && t.State == "done" {
		return true, nil // a resumed apply: done before
	}
	_, err = s.a.Dispose(ctx, indexer.Disposal{Key: k, Reason: reason, Rule: rule, Actor: c.Name,
		MayDelete: func(ctx context.Context) error {
			held, err := s.HeldBy(ctx, []string{sha})
			if err != nil {
				return fmt.Errorf("legal holds cannot be checked, so nothing is deleted: %w", err)
			}
			if hs := held[sha]; len(hs) > 0 {
				return &errHeld{holds: hs}
			}
			return s.audit(ctx, c, "dispose", fmt.Sprintf("%s rule %s: %s", sha, rule, reason))
		}})
	var eh *errHeld
	switch {
	case errors.As(err, &eh):
		s.log.Info("retention: kept, held", "sha256", sha, "holds", eh.holds)
		return false, nil
	case err != nil:
		return false, fmt.Errorf("delete %s: %w", sha, err)
	}
	return true, nil
}

// Erase deletes one message for a legal erasure request: refused in WORM
// mode and under a hold. reason is required (the request's reference).
func (s *Service) Erase(ctx context.Context, c Caller, sha, reason string) (indexer.Tombstone, error) {
	if err := s.mayDispose(ctx, c, "erase", clipID(sha)); err != nil {
		return indexer.Tombstone{}, err
	}
	if strings.TrimSpace(reason) == "" {
		return indexer.Tombstone{}, errorf(ErrBadRequest, "erase: --reason is required (the erasure request's reference)")
	}
	if err := s.worm(ctx); err != nil {
		return indexer.Tombstone{}, err
	}
	h, err := s.lookup(ctx, c, sha)
	if err != nil {
		return indexer.Tombstone{}, s.denied(ctx, c, "erase", sha, err)
	}
	k, _ := store.ParseKey(h.SHA256)
	if t, err := s.a.TombstoneOf(ctx, k); err == nil && t.State == "done" {
		return t, nil
	}
	held, err := s.HeldBy(ctx, []string{h.SHA256})
	if err != nil {
		return indexer.Tombstone{}, fmt.Errorf("erase: legal holds cannot be checked, so nothing is deleted: %w", err)
	}
	if hs := held[h.SHA256]; len(hs) > 0 {
		if aerr := s.audit(ctx, c, "erase-refused", fmt.Sprintf("%s held by %s: %s", h.SHA256, strings.Join(hs, ", "), reason)); aerr != nil {
			return indexer.Tombstone{}, aerr
		}
		return indexer.Tombstone{}, errorf(ErrForbidden, "message %s is under legal hold %s: it cannot be erased until released", h.SHA256, strings.Join(hs, ", "))
	}
	if err := s.audit(ctx, c, "erase", fmt.Sprintf("%s: %s", h.SHA256, reason)); err != nil {
		return indexer.Tombstone{}, err
	}
	ok, err := s.disposeOne(ctx, c, h.SHA256, "erasure", reason)
	if err != nil {
		return indexer.Tombstone{}, err
	}
	if !ok {
		return indexer.Tombstone{}, errorf(ErrForbidden, "message %s came under a legal hold: it cannot be erased until released", h.SHA256)
	}
	return s.a.TombstoneOf(ctx, k)
}

// StartRetention starts a retention apply as a job (what the schedule
// runs, and the API). Its result is the RetentionPlan.
func (s *Service) StartRetention(c Caller, req ApplyRequest) (JobInfo, error) {
	ctx := context.Background()
	if err := s.mayDispose(ctx, c, "retention-apply", clipID(req.PlanID)); err != nil {
		return JobInfo{}, err
	}
	cfg := s.retention()
	if err := s.worm(ctx); err != nil {
		return JobInfo{}, err
	}
	// What the job would refuse at once is refused here, before a job is
	// queued, so that the API answers it (404, 403) instead of a job that
	// fails: no such plan, or with four eyes none or an unapproved one.
	if req.PlanID != "" {
		p, err := s.loadPlan(req.PlanID)
		if err != nil {
			return JobInfo{}, err
		}
		if cfg.FourEyes && p.State != PlanApplied && !p.approved() {
			return JobInfo{}, errorf(ErrForbidden, "plan %s is not approved: with retention.four_eyes, two different admins (or the operator) make or endorse it and approve it first (`mailvault retention approve %s`)", p.ID, p.ID)
		}
	} else if cfg.FourEyes {
		return JobInfo{}, errorf(ErrBadRequest, "retention.four_eyes is on: apply takes a plan ID, a plan approved by someone other than who made it")
	}
	// jobs.start records job-start before the job is queued.
	return s.jobs.start(c, JobRetention, "retention apply "+req.PlanID, func(ctx context.Context, progress func(int, int)) (any, error) {
		return s.ApplyRetention(ctx, c, req, progress)
	})
}

// Scheduler is the caller of the scheduled retention job.
func Scheduler() Caller { return Caller{Name: "scheduler", Role: RoleOperator, Remote: "serve"} }

// runRetentionSchedule runs a retention apply every Schedule until ctx is
// done; off (returns at once) without a schedule or in WORM mode. With
// four eyes it only makes plans, for two people to approve and apply.
func (s *Service) runRetentionSchedule(ctx context.Context) {
	cfg := s.retention()
	on, _, err := s.wormState(ctx) // records WORM on when the config says so
	if err != nil {
		s.log.Error("retention: WORM state", "err", err)
	}
	if cfg.Schedule <= 0 || on || err != nil {
		return
	}
	t := time.NewTicker(cfg.Schedule)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if cfg.FourEyes {
			if p, err := s.PlanRetention(ctx, Scheduler()); err != nil {
				s.log.Error("scheduled retention plan", "err", err)
			} else {
				s.log.Info("scheduled retention plan awaits approval", "plan", p.ID, "delete", len(p.Delete))
			}
			continue
		}
		info, err := s.StartRetention(Scheduler(), ApplyRequest{})
		if err != nil {
			s.log.Error("scheduled retention", "err", err)
			continue
		}
		s.WaitJob(ctx, Scheduler(), info.ID)
	}
}
