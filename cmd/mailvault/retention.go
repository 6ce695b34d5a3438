package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

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

func runRetention(ctx context.Context, e *env, args []string) error {
	var data, cfgPath, planID string
	var asJSON bool
	fs := newFlags(e, "retention", &data)
	fs.StringVar(&cfgPath, "config", "", "config `FILE` with the retention section (policies, worm, four_eyes); without it the archive is WORM with no policy")
	fs.StringVar(&planID, "plan", "", "apply: the saved plan `ID` to apply (required with four_eyes)")
	fs.BoolVar(&asJSON, "json", false, "print the plan as JSON")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		fs.Usage()
		return errUsage
	}
	if data, err = dataDir(fs, data, cfgPath); err != nil {
		return err
	}
	svc, closeFn, err := openRetention(e, data, cfgPath)
	if err != nil {
		return err
	}
	defer closeFn()
	c := service.Operator()
	var p *service.RetentionPlan
	switch pos[0] {
	case "plan":
		p, err = svc.PlanRetention(ctx, c)
	case "show":
		if len(pos) != 2 {
			return &exitError{code: 2, err: fmt.Errorf("show takes a plan ID")}
		}
		p, err = svc.RetentionPlanByID(ctx, c, pos[1])
	case "approve":
		if len(pos) != 2 {
			return &exitError{code: 2, err: fmt.Errorf("approve takes a plan ID")}
		}
		p, err = svc.ApproveRetention(ctx, c, pos[1])
	case "apply":
		prog := newProgress(e.stderr, "deleting")
		p, err = svc.ApplyRetention(ctx, c, service.ApplyRequest{PlanID: planID}, prog.update)
		prog.done()
	default:
		return &exitError{code: 2, err: fmt.Errorf("unknown retention command %q: want plan, show, approve or apply", pos[0])}
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

func printPlan(e *env, p *service.RetentionPlan) {
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "plan %s by %s at %s (%s)\n", p.ID, p.By, p.Created.Format(time.RFC3339), p.State)
	if p.WORM {
		fmt.Fprintf(w, "WORM mode: nothing can be deleted (retention.worm)\n")
	}
	if p.FourEyes {
		approved := "not approved"
		if p.ApprovedBy != "" {
			approved = "approved by " + p.ApprovedBy
		}
		fmt.Fprintf(w, "four eyes: %s\n", approved)
	}
	fmt.Fprintf(w, "%d messages weighed, %d under no policy (kept forever)\n", p.Messages, p.NoPolicy)
	fmt.Fprintf(w, "POLICY\tKEEP\tFROM\tMATCHED\tEXPIRED\tHELD\tDELETE\n")
	for _, pc := range p.Policies {
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%d\t%d\n", pc.Name, pc.Keep, pc.From, pc.Matched, pc.Expired, pc.Held, pc.Delete)
	}
	for _, h := range p.Holds {
		fmt.Fprintf(w, "hold %s keeps %d expired messages\n", h.Hold, h.Messages)
	}
	fmt.Fprintf(w, "to delete: %d messages, %d bytes\n", len(p.Delete), p.DeleteBytes)
	if p.State == service.PlanApplied {
		fmt.Fprintf(w, "deleted: %d; kept because held at apply time: %d\n", p.Deleted, p.KeptHeld)
	}
	w.Flush()
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
	svc, closeFn, err := openRetention(e, data, cfgPath)
	if err != nil {
		return err
	}
	defer closeFn()
	t, err := svc.Erase(ctx, service.Operator(), pos[0], reason)
	if err != nil {
		return cliError(err)
	}
	if asJSON {
		return json.NewEncoder(e.stdout).Encode(t)
	}
	fmt.Fprintf(e.stdout, "erased %s (tombstone %d, rule %s, %s)\n", t.SHA256, t.ID, t.Rule, t.At.Format(time.RFC3339))
	return nil
}
