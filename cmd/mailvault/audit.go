package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"text/tabwriter"
	"time"

	"mailvault/service"
)

// `mailvault audit`: read the audit trail, filtered, as the operator
// ("operator:" and the OS user; the read is itself a row of the trail).
// With a serve running it asks it over the local socket (GET /api/audit);
// without one it opens <data>/users.db itself. Either way the service's
// rule (service.ReadAuditTrail) is the one applied.

func init() {
	helpText["audit"] = `The audit trail records who did what, when and from where: logins (and
failed ones), searches with the accounts they ran in, reads, downloads,
exports with their manifest's sha256, jobs, holds, retention, user and
token changes, and one-shot commands run on the host. It is written
before an action's result is returned; when it cannot be written the
action is refused. Entries are listed newest first.

Times (--since, --until) are RFC 3339 (2024-03-04T10:00:00Z), or
2024-03-04T10:00 or a date 2024-03-04, both in UTC. --since is inclusive,
--until exclusive. Page with --before: the id of the last entry shown.

--csv writes RFC 4180 CSV with a header row (id,at,user,action,detail,
remote); a cell that begins with = + - @ (a spreadsheet formula) gets a
leading ' so that no spreadsheet runs it. Without --limit, --csv writes
the whole filtered trail.

Examples:
  mailvault audit --action search --since 2024-03-01
  mailvault audit --user ann --csv > ann.csv
`
}

func runAudit(ctx context.Context, e *env, args []string) error {
	var data, user, action, since, until string
	var limit int
	var before int64
	var asJSON, asCSV bool
	fs := newFlags(e, "audit", &data)
	fs.StringVar(&user, "user", "", "only the entries of this user `NAME` (operator:root for the operator as root)")
	fs.StringVar(&action, "action", "", "only this `ACTION` (login, search, read, download, export, ...)")
	fs.StringVar(&since, "since", "", "only entries at or after `TIME`")
	fs.StringVar(&until, "until", "", "only entries before `TIME`")
	fs.IntVar(&limit, "limit", 0, fmt.Sprintf("at most `N` entries (default %d; with --csv, all)", service.DefaultAuditLimit))
	fs.Int64Var(&before, "before", 0, "only entries older than the one of this `ID` (the next page)")
	fs.BoolVar(&asJSON, "json", false, "one JSON object per entry per line")
	fs.BoolVar(&asCSV, "csv", false, "CSV with a header row")
	words, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(words) > 0 || asJSON && asCSV || limit < 0 || before < 0 {
		fmt.Fprintln(e.stderr, "mailvault audit: takes flags only, and at most one of --json and --csv")
		fs.Usage()
		return errUsage
	}
	f := service.AuditFilter{User: user, Action: action, Limit: limit, Before: before}
	for _, t := range []struct {
		v   string
		out *time.Time
	}{{since, &f.Since}, {until, &f.Until}} {
		if t.v == "" {
			continue
		}
		if *t.out, err = service.ParseAuditTime(t.v); err != nil {
			return &exitError{code: 2, err: err}
		}
	}
	read, closeFn, err := auditReader(ctx, data)
	if err != nil {
		return err
	}
	defer closeFn()
	var entries []service.AuditEntry
	all := asCSV && limit == 0
	if all {
		f.Limit = service.MaxAuditLimit
	}
	for {
		page, err := read(ctx, f)
		if err != nil {
			return cliError(err)
		}
		entries = append(entries, page...)
		if !all || len(page) < f.Limit {
			break
		}
		f.Before = page[len(page)-1].ID
	}
	switch {
	case asCSV:
		return service.WriteAuditCSV(e.stdout, entries)
	case asJSON:
		enc := json.NewEncoder(e.stdout)
		enc.SetEscapeHTML(false)
		for _, a := range entries {
			enc.Encode(a)
		}
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tAT\tUSER\tACTION\tFROM\tDETAIL")
	for _, a := range entries {
		// Rows are stored on one line (service.Users.Audit); escaped again
		// here so that no older row can forge one.
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", a.ID, oneLine(a.At), oneLine(a.User), oneLine(a.Action), oneLine(a.Remote), oneLine(a.Detail))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(entries) > 0 && len(entries) == cmpLimit(limit) {
		fmt.Fprintf(e.stderr, "more: mailvault audit --before %d (with the same filters)\n", entries[len(entries)-1].ID)
	}
	return nil
}

func cmpLimit(limit int) int {
	if limit == 0 {
		return service.DefaultAuditLimit
	}
	return limit
}

// auditReader reads pages of the trail: from the running serve, or from
// data's users.db.
func auditReader(ctx context.Context, data string) (func(context.Context, service.AuditFilter) ([]service.AuditEntry, error), func(), error) {
	if d, err := dialDaemon(ctx, data); err == nil {
		return d.audit, func() {}, nil
	}
	if _, err := os.Stat(filepath.Join(data, service.UsersFile)); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil, &exitError{code: 1, err: fmt.Errorf("no audit trail in %s (check --data)", data)}
		}
		return nil, nil, err
	}
	users, err := service.OpenUsers(data)
	if err != nil {
		return nil, nil, err
	}
	return func(ctx context.Context, f service.AuditFilter) ([]service.AuditEntry, error) {
		return service.ReadAuditTrail(ctx, users, service.Operator(), f)
	}, func() { users.Close() }, nil
}

// audit is GET /api/audit.
func (d *daemon) audit(ctx context.Context, f service.AuditFilter) ([]service.AuditEntry, error) {
	v := url.Values{}
	set := func(k, val string) {
		if val != "" {
			v.Set(k, val)
		}
	}
	set("user", f.User)
	set("action", f.Action)
	if !f.Since.IsZero() {
		v.Set("since", f.Since.UTC().Format(time.RFC3339Nano))
	}
	if !f.Until.IsZero() {
		v.Set("until", f.Until.UTC().Format(time.RFC3339Nano))
	}
	if f.Limit > 0 {
		v.Set("limit", strconv.Itoa(f.Limit))
	}
	if f.Before > 0 {
		v.Set("before", strconv.FormatInt(f.Before, 10))
	}
	var out struct {
		Entries []service.AuditEntry `json:"entries"`
	}
	err := d.do(ctx, "GET", "/api/audit", v, nil, &out)
	return out.Entries, err
}
