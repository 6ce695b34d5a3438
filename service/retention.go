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
	"context"
	"crypto/rand"
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
	"time"

	"mailvault/indexer"
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
	ID         string        `json:"id"`
	By         string        `json:"by"`
	Created    time.Time     `json:"created"`
	WORM       bool          `json:"worm"`
	FourEyes   bool          `json:"four_eyes"`
	ApprovedBy string        `json:"approved_by,omitempty"`
	ApprovedAt time.Time     `json:"approved_at,omitzero"`
	State      string        `json:"state"`
	Messages   int           `json:"messages"`  // messages weighed
	NoPolicy   int           `json:"no_policy"` // matched no policy: kept forever
	Policies   []PolicyCount `json:"policies"`
	Holds      []HoldCount   `json:"holds"`
	HeldTotal  int           `json:"held"`
	Delete     []PlanItem    `json:"delete"`
	// Set by apply.
	Deleted     int       `json:"deleted"`
	KeptHeld    int       `json:"kept_at_apply"` // planned, but held when its turn came
	AppliedBy   string    `json:"applied_by,omitempty"`
	AppliedAt   time.Time `json:"applied_at,omitzero"`
	DeleteBytes int64     `json:"delete_bytes"`
	// ToDelete is len(Delete), also in a listing, which leaves Delete out.
	ToDelete int `json:"to_delete"`
}

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

func (s *Service) wormError() error {
	return errorf(ErrForbidden, "the archive is in WORM mode (retention.worm is true, the default): nothing can be deleted; set retention: {worm: false} in the config to allow retention apply and erasure")
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
	p, err := s.makePlan(ctx, c, time.Now())
	if err != nil {
		return nil, err
	}
	if err := s.audit(ctx, c, "retention-plan", p.summary()); err != nil {
		return nil, err
	}
	if err := s.savePlan(p); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *RetentionPlan) summary() string {
	var parts []string
	for _, pc := range p.Policies {
		parts = append(parts, fmt.Sprintf("%s: %d expired, %d to delete, %d held", pc.Name, pc.Expired, pc.Delete, pc.Held))
	}
	return fmt.Sprintf("plan %s: %d messages weighed, %d to delete, %d held, %d under no policy (%s)",
		p.ID, p.Messages, len(p.Delete), p.HeldTotal, p.NoPolicy, strings.Join(parts, "; "))
}

// makePlan is the plan at now, unsaved and unaudited.
func (s *Service) makePlan(ctx context.Context, c Caller, now time.Time) (*RetentionPlan, error) {
	cfg := s.retention()
	var idb [6]byte
	rand.Read(idb[:])
	p := &RetentionPlan{ID: hex.EncodeToString(idb[:]), By: c.Name, Created: now.UTC(), WORM: cfg.WORM,
		FourEyes: cfg.FourEyes, State: PlanPlanned, Policies: []PolicyCount{}, Holds: []HoldCount{}, Delete: []PlanItem{}}
	// Each policy's query, answered once as a set of messages.
	matches := make([]map[string]bool, len(cfg.Policies))
	for i, pol := range cfg.Policies {
		p.Policies = append(p.Policies, PolicyCount{Name: pol.Name, Keep: pol.Keep, From: pol.From})
		if pol.Query == "" {
			continue
		}
		hits, err := s.searchAll(ctx, Operator(), SearchRequest{Query: pol.Query})
		if err != nil {
			return nil, fmt.Errorf("retention policy %s: query %q: %w", pol.Name, pol.Query, err)
		}
		matches[i] = make(map[string]bool, len(hits))
		for _, h := range hits {
			matches[i][h.SHA256] = true
		}
	}
	var expired []PlanItem
	policyOf := map[string]int{}
	err := s.a.Candidates(ctx, func(m indexer.Candidate) error {
		p.Messages++
		hx := store.Key(m.SHA256).String()
		best := -1
		var bestCut time.Time
		for i, pol := range cfg.Policies {
			if !policyMatches(pol, m, matches[i], hx) {
				continue
			}
			// Longest keep wins: the earliest cutoff.
			if cut := pol.Keep.cutoff(now); best < 0 || cut.Before(bestCut) {
				best, bestCut = i, cut
			}
		}
		if best < 0 {
			p.NoPolicy++
			return nil
		}
		pol := cfg.Policies[best]
		p.Policies[best].Matched++
		from, date := pol.From, m.Archived
		if pol.From == AgeSent && !m.Sent.IsZero() {
			date = m.Sent
		} else {
			from = AgeArchived
		}
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
		p.Delete = append(p.Delete, it)
		p.DeleteBytes += it.Size
	}
	for h, n := range perHold {
		p.Holds = append(p.Holds, HoldCount{Hold: h, Messages: n})
	}
	sort.Slice(p.Holds, func(i, j int) bool { return p.Holds[i].Hold < p.Holds[j].Hold })
	p.ToDelete = len(p.Delete)
	return p, nil
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
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("save retention plan: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		var d *os.File
		if d, err = os.Open(s.planDir()); err == nil {
			err = d.Sync()
			d.Close()
		}
	}
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
		p.Delete = nil
		out = append(out, p)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	if err := s.audit(ctx, c, "retention-list", fmt.Sprintf("%d plans", len(out))); err != nil {
		return nil, err
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
	out := RetentionSettings{WORM: cfg.WORM, FourEyes: cfg.FourEyes, Policies: slices.Clone(cfg.Policies)}
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

// ApproveRetention records c's approval of plan id (four eyes): c must be
// an admin or the operator, and not who made the plan.
func (s *Service) ApproveRetention(ctx context.Context, c Caller, id string) (*RetentionPlan, error) {
	if err := s.mayDispose(ctx, c, "retention-approve", clipID(id)); err != nil {
		return nil, err
	}
	p, err := s.loadPlan(id)
	if err != nil {
		return nil, err
	}
	if p.By == c.Name {
		return nil, errorf(ErrForbidden, "plan %s was made by %s: a second, different person approves it", id, p.By)
	}
	if p.State != PlanPlanned {
		return nil, errorf(ErrBadRequest, "plan %s is %s already", id, p.State)
	}
	if err := s.audit(ctx, c, "retention-approve", fmt.Sprintf("plan %s by %s: %d to delete", id, p.By, len(p.Delete))); err != nil {
		return nil, err
	}
	p.ApprovedBy, p.ApprovedAt = c.Name, time.Now().UTC()
	return p, s.savePlan(p)
}

// ApplyRequest is what to apply: a saved plan (ID), or, without one, the
// plan an interrupted apply left, or else a new plan made now.
type ApplyRequest struct {
	PlanID string `json:"plan,omitempty"`
}

// ApplyRetention deletes what the plan lists and no hold keeps, and
// returns the plan with what was done. progress may be nil.
func (s *Service) ApplyRetention(ctx context.Context, c Caller, req ApplyRequest, progress func(done, total int)) (*RetentionPlan, error) {
	if err := s.mayDispose(ctx, c, "retention-apply", clipID(req.PlanID)); err != nil {
		return nil, err
	}
	cfg := s.retention()
	if cfg.WORM {
		return nil, s.wormError()
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
			if p, err = s.makePlan(ctx, c, time.Now()); err == nil {
				if err = s.audit(ctx, c, "retention-plan", p.summary()); err == nil {
					err = s.savePlan(p)
				}
			}
		}
	}
	if err != nil {
		return nil, err
	}
	if cfg.FourEyes && (p.ApprovedBy == "" || p.ApprovedBy == p.By) {
		return nil, errorf(ErrForbidden, "plan %s is not approved: with retention.four_eyes, someone other than %s approves it first (`mailvault retention approve %s`)", p.ID, p.By, p.ID)
	}
	if p.State == PlanApplied {
		return p, nil
	}
	if err := s.audit(ctx, c, "retention-apply", fmt.Sprintf("plan %s (by %s, approved by %s): %d planned", p.ID, p.By, p.ApprovedBy, len(p.Delete))); err != nil {
		return nil, err
	}
	if p.State != PlanApplying {
		p.State, p.AppliedBy = PlanApplying, c.Name
		if err := s.savePlan(p); err != nil {
			return nil, err
		}
	}
	// Whatever a crash left half done, first.
	if _, err := s.a.FinishPending(ctx); err != nil {
		return nil, fmt.Errorf("retention apply: finish interrupted disposals: %w", err)
	}
	p.Deleted, p.KeptHeld = 0, 0
	for i, it := range p.Delete {
		if progress != nil {
			progress(i, len(p.Delete))
		}
		if err := ctx.Err(); err != nil {
			return p, err
		}
		deleted, err := s.disposeOne(ctx, c, it.SHA256, "retention:"+it.Policy,
			fmt.Sprintf("past %s of policy %s since its %s date %s (plan %s)", policyKeep(cfg, it.Policy), it.Policy, it.From, it.Date.Format(time.DateOnly), p.ID))
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
	if err := s.audit(ctx, c, "retention-applied", fmt.Sprintf("plan %s: %d deleted, %d kept by holds made since the plan", p.ID, p.Deleted, p.KeptHeld)); err != nil {
		return p, err
	}
	return p, s.savePlan(p)
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
	if s.retention().WORM {
		return indexer.Tombstone{}, s.wormError()
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
	if cfg.WORM {
		return JobInfo{}, s.wormError()
	}
	// What the job would refuse at once is refused here, before a job is
	// queued, so that the API answers it (404, 403) instead of a job that
	// fails: no such plan, or with four eyes none or an unapproved one.
	if req.PlanID != "" {
		p, err := s.loadPlan(req.PlanID)
		if err != nil {
			return JobInfo{}, err
		}
		if cfg.FourEyes && p.State != PlanApplied && (p.ApprovedBy == "" || p.ApprovedBy == p.By) {
			return JobInfo{}, errorf(ErrForbidden, "plan %s is not approved: with retention.four_eyes, someone other than %s approves it first (`mailvault retention approve %s`)", p.ID, p.By, p.ID)
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
	if cfg.Schedule <= 0 || cfg.WORM {
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
