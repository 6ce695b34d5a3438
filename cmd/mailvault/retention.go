package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"mailvault/indexer"
	"mailvault/query"
	"mailvault/service"
)

// retentionConfig is the retention section of the config file.
type retentionConfig struct {
	// WORM is a pointer so that absent means true: new archives are WORM.
	WORM     *bool          `yaml:"worm"`
	FourEyes bool           `yaml:"four_eyes"`
	Schedule string         `yaml:"schedule"`
	Policies []policyConfig `yaml:"policies"`
}

type policyConfig struct {
	Name      string   `yaml:"name"`
	Accounts  []string `yaml:"accounts"`
	Mailboxes []string `yaml:"mailboxes"`
	Query     string   `yaml:"query"`
	Keep      string   `yaml:"keep"`
	From      string   `yaml:"from"`
}

// check validates the section, reporting each problem with its path, and
// returns it parsed.
func (r retentionConfig) check(bad func(at, format string, args ...any)) *service.RetentionConfig {
	out := &service.RetentionConfig{WORM: r.WORM == nil || *r.WORM, FourEyes: r.FourEyes}
	if r.Schedule != "" {
		d, err := time.ParseDuration(r.Schedule)
		if err != nil || d < time.Minute {
			bad("retention.schedule", "%q: want a duration of at least 1m, like 24h (empty: no scheduled job)", r.Schedule)
		}
		out.Schedule = d
	}
	names := map[string]bool{}
	for i, p := range r.Policies {
		at := fmt.Sprintf("retention.policies[%d]", i)
		switch {
		case p.Name == "":
			bad(at+".name", "required")
		case names[p.Name]:
			bad(at+".name", "%q is used by another policy", p.Name)
		case strings.ContainsAny(p.Name, " \t\n:"):
			bad(at+".name", "%q: no blanks or colons (it names the rule in tombstones)", p.Name)
		}
		names[p.Name] = true
		keep, err := service.ParsePeriod(p.Keep)
		if err != nil {
			bad(at+".keep", "%v", err)
		}
		from := p.From
		switch from {
		case "":
			from = service.AgeSent
		case service.AgeSent, service.AgeArchived:
		default:
			bad(at+".from", "%q: want sent or archived", p.From)
		}
		if p.Query != "" {
			if _, err := query.ParseHuman(p.Query); err != nil {
				bad(at+".query", "%v", err)
			} else if key := service.DriftingKey(p.Query); key != "" {
				bad(at+".query", "%s changes what it matches as time passes or the mailbox's flags change: "+
					"keep: and from: give the age, and the owner's flags must not decide what is deleted", key)
			}
		}
		out.Policies = append(out.Policies, service.RetentionPolicy{Name: p.Name, Accounts: p.Accounts, Mailboxes: p.Mailboxes,
			Query: p.Query, Keep: keep, From: from})
	}
	return out
}

// openRetention opens the archive for a retention command with the config's
// retention section (none: WORM, no policy).
func openRetention(e *env, data, cfgPath string) (*service.Service, func(), error) {
	rc := service.DefaultRetention()
	if cfgPath != "" {
		cfg, _, err := loadConfig(cfgPath)
		if err != nil {
			return nil, nil, &exitError{code: 2, err: err}
		}
		rc = cfg.retention
	}
	svc, closeFn, err := openLocal(e, data, false)
	if err != nil {
		return nil, nil, err
	}
	svc.SetRetention(rc)
	return svc, closeFn, nil
}

// `mailvault retention plan|list|show|approve|apply` and `mailvault erase`:
// while serve runs they ask it over the local socket (web/retention.go's
// API, as the operator), and serve's own config decides the policies, WORM
// and four eyes; otherwise they open the archive themselves with the
// --config given. An apply through serve is a job of serve: the command
// draws its progress (rate, ETA) as verify does, and Ctrl-C cancels the
// job (what was deleted stays deleted; applying the plan again resumes it).
// The rules and the audit rows are the service's either way.

// retentionClient is where a retention command goes: the running serve, or
// the archive opened here.
type retentionClient interface {
	plan(ctx context.Context) (*service.RetentionPlan, error)
	list(ctx context.Context) ([]*service.RetentionPlan, error)
	show(ctx context.Context, id string) (*service.RetentionPlan, error)
	approve(ctx context.Context, id string) (*service.RetentionPlan, error)
	apply(ctx context.Context, id string, prog *progress) (*service.RetentionPlan, error)
	erase(ctx context.Context, sha, reason string) (indexer.Tombstone, error)
}

// retentionClientFor dials the serve running on data, or else opens the
// archive with the config's retention section. A --config given while
// serve runs is used for --data only: serve's config is the one in force.
func retentionClientFor(ctx context.Context, e *env, data, cfgPath string) (retentionClient, func(), error) {
	if d, err := dialDaemon(ctx, data); err == nil {
		if cfgPath != "" {
			fmt.Fprintln(e.stderr, "note: serve runs on "+data+": the retention section of serve's config is in force, not --config's")
		}
		return daemonRetention{d}, func() {}, nil
	}
	svc, closeFn, err := openRetention(e, data, cfgPath)
	if err != nil {
		return nil, nil, err
	}
	return localRetention{svc: svc, c: service.Operator()}, closeFn, nil
}

var retentionWords = map[string]int{"plan": 0, "list": 0, "show": 1, "approve": 1, "apply": 0, "worm": 1}

func runRetention(ctx context.Context, e *env, args []string) error {
	var data, cfgPath, planID, reason string
	var asJSON bool
	fs := newFlags(e, "retention", &data)
	fs.StringVar(&reason, "reason", "", "worm off: why the archive may delete from now on (required; kept in the catalog and the audit trail)")
	fs.StringVar(&cfgPath, "config", "", "config `FILE` with the retention section (policies, worm, four_eyes); without it the archive is WORM with no policy (while serve runs, serve's config is in force)")
	fs.StringVar(&planID, "plan", "", "apply: the saved plan `ID` to apply (required with four_eyes)")
	fs.BoolVar(&asJSON, "json", false, "print the plan (list: the plans) as JSON")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		fs.Usage()
		return errUsage
	}
	want, ok := retentionWords[pos[0]]
	if !ok {
		return &exitError{code: 2, err: fmt.Errorf("unknown retention command %q: want plan, list, show, approve, apply or worm", pos[0])}
	}
	if len(pos) != want+1 {
		if pos[0] == "worm" {
			return &exitError{code: 2, err: errors.New("worm takes on, off or status")}
		}
		return &exitError{code: 2, err: fmt.Errorf("%s takes a plan ID", pos[0])}
	}
	if data, err = dataDir(fs, data, cfgPath); err != nil {
		return err
	}
	if pos[0] == "worm" {
		return runWORM(ctx, e, data, cfgPath, pos[1], reason, asJSON)
	}
	cl, closeFn, err := retentionClientFor(ctx, e, data, cfgPath)
	if err != nil {
		return err
	}
	defer closeFn()
	var p *service.RetentionPlan
	switch pos[0] {
	case "plan":
		p, err = cl.plan(ctx)
	case "list":
		var list []*service.RetentionPlan
		if list, err = cl.list(ctx); err != nil {
			return cliError(err)
		}
		if asJSON {
			enc := json.NewEncoder(e.stdout)
			for _, p := range list {
				enc.Encode(p)
			}
			return nil
		}
		w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintf(w, "PLAN\tSTATE\tBY\tCREATED\tTO DELETE\tHELD\tAPPROVED BY\tDELETED\n")
		for _, p := range list {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%d\t%s\t%d\n", p.ID, p.State, p.By, p.Created.Format(time.RFC3339), p.ToDelete, p.HeldTotal,
				cmp.Or(p.ApprovedBy, "-"), p.Deleted)
		}
		return w.Flush()
	case "show":
		p, err = cl.show(ctx, pos[1])
	case "approve":
		p, err = cl.approve(ctx, pos[1])
	case "apply":
		p, err = cl.apply(ctx, planID, newProgress(e.stderr, "deleting"))
	}
	if err != nil {
		return cliError(err)
	}
	if asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(p)
	}
	printPlan(e, p)
	return nil
}

// localRetention asks the service opened here.
type localRetention struct {
	svc *service.Service
	c   service.Caller
}

func (l localRetention) plan(ctx context.Context) (*service.RetentionPlan, error) {
	return l.svc.PlanRetention(ctx, l.c)
}
func (l localRetention) list(ctx context.Context) ([]*service.RetentionPlan, error) {
	return l.svc.RetentionPlans(ctx, l.c)
}
func (l localRetention) show(ctx context.Context, id string) (*service.RetentionPlan, error) {
	return l.svc.RetentionPlanByID(ctx, l.c, id)
}
func (l localRetention) approve(ctx context.Context, id string) (*service.RetentionPlan, error) {
	return l.svc.ApproveRetention(ctx, l.c, id)
}
func (l localRetention) apply(ctx context.Context, id string, prog *progress) (*service.RetentionPlan, error) {
	p, err := l.svc.ApplyRetention(ctx, l.c, service.ApplyRequest{PlanID: id}, prog.update)
	prog.done()
	return p, err
}
func (l localRetention) erase(ctx context.Context, sha, reason string) (indexer.Tombstone, error) {
	return l.svc.Erase(ctx, l.c, sha, reason)
}

// daemonRetention asks the running serve (web/retention.go's API).
type daemonRetention struct{ d *daemon }

func (r daemonRetention) plan(ctx context.Context) (*service.RetentionPlan, error) {
	var p service.RetentionPlan
	err := r.d.do(ctx, "POST", "/api/retention/plans", nil, nil, &p)
	return &p, err
}

func (r daemonRetention) list(ctx context.Context) ([]*service.RetentionPlan, error) {
	var out struct {
		Plans []*service.RetentionPlan `json:"plans"`
	}
	err := r.d.do(ctx, "GET", "/api/retention/plans", nil, nil, &out)
	return out.Plans, err
}

func (r daemonRetention) show(ctx context.Context, id string) (*service.RetentionPlan, error) {
	var p service.RetentionPlan
	err := r.d.do(ctx, "GET", "/api/retention/plans/"+url.PathEscape(id), nil, nil, &p)
	return &p, err
}

func (r daemonRetention) approve(ctx context.Context, id string) (*service.RetentionPlan, error) {
	var p service.RetentionPlan
	err := r.d.do(ctx, "POST", "/api/retention/plans/"+url.PathEscape(id)+"/approve", nil, nil, &p)
	return &p, err
}

// apply starts the apply as a job of serve and follows it to its end.
func (r daemonRetention) apply(ctx context.Context, id string, prog *progress) (*service.RetentionPlan, error) {
	path := "/api/retention/apply"
	if id != "" {
		path = "/api/retention/plans/" + url.PathEscape(id) + "/apply"
	}
	var j service.JobInfo
	if err := r.d.do(ctx, "POST", path, nil, nil, &j); err != nil {
		return nil, err
	}
	fmt.Fprintf(prog.out, "retention apply runs in the running serve as job %s (`mailvault jobs` lists it)\n", j.ID)
	j, err := r.d.follow(ctx, j.ID, prog)
	if errors.Is(err, context.Canceled) {
		return nil, &exitError{code: 130, err: fmt.Errorf("interrupted; job %s cancelled, what it deleted is deleted (apply the plan again to finish it)", j.ID)}
	}
	if err != nil {
		return nil, err
	}
	switch j.State {
	case service.JobDone:
	case service.JobCancelled:
		return nil, &exitError{code: 130, err: fmt.Errorf("job %s was cancelled; what it deleted is deleted (apply the plan again to finish it)", j.ID)}
	default:
		return nil, fmt.Errorf("retention apply: job %s failed: %s", j.ID, j.Error)
	}
	var p service.RetentionPlan
	if err := json.Unmarshal(j.Result, &p); err != nil {
		return nil, fmt.Errorf("retention apply: bad result from serve: %w", err)
	}
	return &p, nil
}

func (r daemonRetention) erase(ctx context.Context, sha, reason string) (indexer.Tombstone, error) {
	var t indexer.Tombstone
	err := r.d.do(ctx, "POST", "/api/erase", nil, map[string]string{"sha256": sha, "reason": reason}, &t)
	return t, err
}

var (
	_ retentionClient = localRetention{}
	_ retentionClient = daemonRetention{}
)

func printPlan(e *env, p *service.RetentionPlan) {
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "plan %s by %s at %s (%s)\n", p.ID, p.By, p.Created.Format(time.RFC3339), p.State)
	if p.WORM {
		fmt.Fprintf(w, "WORM mode: nothing can be deleted (retention.worm)\n")
	}
	if p.FourEyes {
		approved := "not approved"
		if p.EndorsedBy != "" {
			approved = "endorsed by " + p.EndorsedBy + ", not approved"
		}
		if p.ApprovedBy != "" {
			approved = "approved by " + p.ApprovedBy
			if p.EndorsedBy != "" {
				approved = "endorsed by " + p.EndorsedBy + ", " + approved
			}
		}
		fmt.Fprintf(w, "four eyes: %s\n", approved)
	}
	fmt.Fprintf(w, "list sha256: %s\n", p.DeleteSHA256)
	fmt.Fprintf(w, "%d messages weighed, %d under no policy (kept forever)\n", p.Messages, p.NoPolicy)
	fmt.Fprintf(w, "POLICY\tKEEP\tFROM\tMATCHED\tEXPIRED\tHELD\tDELETE\n")
	for _, pc := range p.Policies {
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%d\t%d\n", pc.Name, pc.Keep, pc.From, pc.Matched, pc.Expired, pc.Held, pc.Delete)
	}
	for _, h := range p.Holds {
		fmt.Fprintf(w, "hold %s keeps %d expired messages\n", h.Hold, h.Messages)
	}
	fmt.Fprintf(w, "to delete: %d messages, %d bytes\n", len(p.Delete), p.DeleteBytes)
	if p.Truncated > 0 {
		fmt.Fprintf(w, "not in this plan: %d more expired messages beyond its cap of %d (a later plan takes them)\n", p.Truncated, service.MaxPlanDelete)
	}
	if p.State == service.PlanApplied {
		fmt.Fprintf(w, "deleted: %d; kept because held at apply time: %d; not expired now (config or date changed): %d\n", p.Deleted, p.KeptHeld, len(p.Skipped))
	}
	for _, sk := range p.Skipped {
		fmt.Fprintf(w, "  kept %s: %s\n", sk.SHA256, sk.Why)
	}
	for _, pk := range p.Parked {
		fmt.Fprintf(w, "  pending disposal left pending: %s (tombstone %d): %s\n", pk.Tombstone.SHA256, pk.Tombstone.ID, pk.Why)
	}
	w.Flush()
}

// runWORM is `mailvault retention worm on|off|status`: the archive's WORM
// state, kept in its catalog (service.SetWORM says who may and what is
// audited). Offline only: serve holds the archive, and its API has no
// WORM switch yet, so with serve running it refuses (stop serve first).
func runWORM(ctx context.Context, e *env, data, cfgPath, word, reason string, asJSON bool) error {
	switch word {
	case "on", "off", "status":
	default:
		return &exitError{code: 2, err: fmt.Errorf("worm %q: want on, off or status", word)}
	}
	if _, err := dialDaemon(ctx, data); err == nil {
		return &exitError{code: 2, err: errors.New("serve runs on " + data + ": stop it to change or read the archive's WORM state (the API has no WORM switch yet)")}
	}
	svc, closeFn, err := openRetention(e, data, cfgPath)
	if err != nil {
		return err
	}
	defer closeFn()
	c := service.Operator()
	var st service.WORMStatus
	if word == "status" {
		st, err = svc.WORM(ctx, c)
	} else {
		st, err = svc.SetWORM(ctx, c, word == "on", reason)
	}
	if err != nil {
		return cliError(err)
	}
	if asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	state := map[bool]string{true: "on", false: "off"}
	fmt.Fprintf(e.stdout, "WORM %s (config: %s; archive: ", state[st.WORM], state[st.Config])
	if st.Archive.Recorded {
		fmt.Fprintf(e.stdout, "%s since %s by %s: %s)\n", state[st.Archive.WORM], st.Archive.At.Format(time.RFC3339), st.Archive.Actor, st.Archive.Reason)
	} else {
		fmt.Fprintln(e.stdout, "never recorded)")
	}
	for _, w := range st.Warnings {
		fmt.Fprintln(e.stderr, "warning: "+w)
	}
	return nil
}

func runErase(ctx context.Context, e *env, args []string) error {
	var data, cfgPath, reason string
	var asJSON bool
	fs := newFlags(e, "erase", &data)
	fs.StringVar(&cfgPath, "config", "", "config `FILE` with the retention section (worm: false is needed to erase)")
	fs.StringVar(&reason, "reason", "", "the erasure request's reference (required; kept in the tombstone and the audit trail)")
	fs.BoolVar(&asJSON, "json", false, "print the tombstone as JSON")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return errUsage
	}
	if data, err = dataDir(fs, data, cfgPath); err != nil {
		return err
	}
	cl, closeFn, err := retentionClientFor(ctx, e, data, cfgPath)
	if err != nil {
		return err
	}
	defer closeFn()
	t, err := cl.erase(ctx, pos[0], reason)
	if err != nil {
		return cliError(err)
	}
	if asJSON {
		return json.NewEncoder(e.stdout).Encode(t)
	}
	fmt.Fprintf(e.stdout, "erased %s (tombstone %d, rule %s, %s)\n", t.SHA256, t.ID, t.Rule, t.At.Format(time.RFC3339))
	return nil
}
