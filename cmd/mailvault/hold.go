package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"strings"
	"text/tabwriter"

	"mailvault/service"
)

// `mailvault hold create|list|show|release`: legal holds. While serve runs
// the command asks it over the local socket (/api/holds), as the operator;
// otherwise it opens the archive itself (read-only for list and show). The
// rules and the audit rows are the service's either way.

func init() {
	helpText["hold"] = `A legal hold keeps every message of its custodians (archive accounts),
expunged on the server or not, and, with --query, only what the query matches
in those accounts (either syntax, as search takes it; account: and mailbox:
terms cannot reach other accounts). It covers mail that arrives later too,
until it is released; nothing a hold covers can be deleted by retention or an
erasure. Holds are released, never deleted, and a name is never reused.

  mailvault hold create --name N --custodian A [--custodian B]... [--query Q [--imap]] [--description D]
  mailvault hold list [--json]
  mailvault hold show NAME [--json]
  mailvault hold release NAME --reason R

list and show give what each active hold covers now: messages, and copies
(occurrences) in the custodians' accounts. Every create, list, show and
release is recorded in the audit trail. 'mailvault hold SUBCOMMAND --help'
describes one subcommand. Exit 2 for a refused request (a name in use, a bad
query, no such hold).
`
}

var holdUsage = map[string]string{
	"create":  "--name N --custodian A [--custodian B]... [--query Q [--imap]] [--description D] [--json]",
	"list":    "[--json]",
	"show":    "NAME [--json]",
	"release": "NAME --reason R [--json]",
}

var holdSummary = map[string]string{
	"create":  "create a legal hold on the mail of custodians, optionally narrowed by a query",
	"list":    "list every legal hold, active or released, with what each covers now",
	"show":    "show one legal hold and what it covers now",
	"release": "release a legal hold (it is kept, released, with who, when and why)",
}

// holdClient is where a hold command goes: the running serve, or the
// archive opened here.
type holdClient interface {
	create(ctx context.Context, req service.HoldRequest) (service.HoldInfo, error)
	list(ctx context.Context) ([]service.HoldInfo, error)
	show(ctx context.Context, name string) (service.HoldInfo, error)
	release(ctx context.Context, name, reason string) (service.HoldInfo, error)
}

func runHold(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || holdUsage[args[0]] == "" {
		var data string
		fs := newFlags(e, "hold", &data)
		if len(args) > 0 && helpAsked(args[:1]) {
			fs.SetOutput(e.stdout)
			fs.Usage()
			return flag.ErrHelp
		}
		fmt.Fprintln(e.stderr, "mailvault hold: want create, list, show or release")
		fs.Usage()
		return errUsage
	}
	sub := args[0]
	var data, name, query, description, reason string
	var custodians stringList
	var imapSyntax, asJSON bool
	fs := newFlags(e, "hold", &data)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: mailvault hold %s %s\n\n%s.\n\nFlags:\n", sub, holdUsage[sub], upperFirst(holdSummary[sub]))
		fs.PrintDefaults()
	}
	fs.BoolVar(&asJSON, "json", false, "print the hold(s) as JSON, one object per line")
	switch sub {
	case "create":
		fs.StringVar(&name, "name", "", "the hold's `NAME` (letters, digits, spaces, . _ -; unique for ever)")
		fs.Var(&custodians, "custodian", "an archive `ACCOUNT` whose mail the hold keeps (repeatable, at least one)")
		fs.StringVar(&query, "query", "", "keep only what this `QUERY` matches in the custodians' accounts (default: all their mail)")
		fs.BoolVar(&imapSyntax, "imap", false, "the query is IMAP SEARCH criteria, not the human syntax")
		fs.StringVar(&description, "description", "", "what the matter is (`TEXT`)")
	case "release":
		fs.StringVar(&reason, "reason", "", "why the hold is released (`TEXT`, required, kept with the hold)")
	}
	words, err := parse(fs, args[1:])
	if err != nil {
		return err
	}
	wantWords := map[string]int{"create": 0, "list": 0, "show": 1, "release": 1}[sub]
	if len(words) != wantWords {
		fmt.Fprintf(e.stderr, "mailvault hold %s: want %s\n", sub, holdUsage[sub])
		fs.Usage()
		return errUsage
	}
	if sub == "create" && (name == "" || len(custodians) == 0) {
		fmt.Fprintln(e.stderr, "mailvault hold create: --name and at least one --custodian are required")
		fs.Usage()
		return errUsage
	}
	var cl holdClient
	if d, derr := dialDaemon(ctx, data); derr == nil {
		cl = daemonHolds{d}
	} else {
		svc, done, err := openLocal(e, data, sub == "list" || sub == "show")
		if err != nil {
			return err
		}
		defer done()
		cl = localHolds{svc: svc, c: service.Operator()}
	}
	var out []service.HoldInfo
	switch sub {
	case "create":
		req := service.HoldRequest{Name: name, Custodians: custodians, Query: query, Description: description}
		if imapSyntax {
			req.Syntax = service.SyntaxIMAP
		}
		h, err := cl.create(ctx, req)
		if err != nil {
			return cliError(err)
		}
		out = []service.HoldInfo{h}
	case "list":
		if out, err = cl.list(ctx); err != nil {
			return cliError(err)
		}
	case "show":
		h, err := cl.show(ctx, words[0])
		if err != nil {
			return cliError(err)
		}
		out = []service.HoldInfo{h}
	case "release":
		h, err := cl.release(ctx, words[0], reason)
		if err != nil {
			return cliError(err)
		}
		out = []service.HoldInfo{h}
	}
	if asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetEscapeHTML(false)
		for _, h := range out {
			enc.Encode(h)
		}
		return nil
	}
	switch sub {
	case "list":
		tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tSTATE\tCUSTODIANS\tQUERY\tMESSAGES\tCOPIES\tCREATED")
		for _, h := range out {
			state, msgs, occs := "active", "-", "-"
			if !h.Active {
				state = "released " + h.ReleasedAt
			}
			if h.Counts != nil {
				msgs, occs = fmt.Sprint(h.Counts.Messages), fmt.Sprint(h.Counts.Occurrences)
			}
			q := h.Query
			if q == "" {
				q = "(all their mail)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s by %s\n", h.Name, state, strings.Join(h.Custodians, ","), q, msgs, occs, h.CreatedAt, h.CreatedBy)
		}
		return tw.Flush()
	default:
		printHold(e, out[0])
		switch sub {
		case "create":
			fmt.Fprintf(e.stderr, "hold %s created\n", out[0].Name)
		case "release":
			fmt.Fprintf(e.stderr, "hold %s released\n", out[0].Name)
		}
	}
	return nil
}

func printHold(e *env, h service.HoldInfo) {
	w := e.stdout
	fmt.Fprintf(w, "name:         %s\n", h.Name)
	if h.Description != "" {
		fmt.Fprintf(w, "description:  %s\n", h.Description)
	}
	fmt.Fprintf(w, "created:      %s by %s\n", h.CreatedAt, h.CreatedBy)
	fmt.Fprintf(w, "custodians:   %s\n", strings.Join(h.Custodians, ", "))
	if h.Query != "" {
		fmt.Fprintf(w, "query:        %s (%s)\n", h.Query, h.Syntax)
	} else {
		fmt.Fprintf(w, "query:        none: all of the custodians' mail\n")
	}
	if h.Active {
		fmt.Fprintf(w, "state:        active\n")
	} else {
		fmt.Fprintf(w, "state:        released %s by %s: %s\n", h.ReleasedAt, h.ReleasedBy, h.ReleaseReason)
	}
	if c := h.Counts; c != nil {
		fmt.Fprintf(w, "covers now:   %d messages, %d copies\n", c.Messages, c.Occurrences)
		if c.Unindexed > 0 {
			fmt.Fprintf(w, "              and %d messages not yet indexed, kept until they are\n", c.Unindexed)
		}
	}
	if len(h.UnknownCustodians) > 0 {
		fmt.Fprintf(w, "note:         no mail in the archive yet for %s (covered when it arrives; check the spelling)\n",
			strings.Join(h.UnknownCustodians, ", "))
	}
}

// localHolds asks the service opened here.
type localHolds struct {
	svc *service.Service
	c   service.Caller
}

func (l localHolds) create(ctx context.Context, req service.HoldRequest) (service.HoldInfo, error) {
	return l.svc.CreateHold(ctx, l.c, req)
}
func (l localHolds) list(ctx context.Context) ([]service.HoldInfo, error) {
	return l.svc.Holds(ctx, l.c)
}
func (l localHolds) show(ctx context.Context, name string) (service.HoldInfo, error) {
	return l.svc.Hold(ctx, l.c, name)
}
func (l localHolds) release(ctx context.Context, name, reason string) (service.HoldInfo, error) {
	return l.svc.ReleaseHold(ctx, l.c, name, reason)
}

// daemonHolds asks the running serve (web/holds.go's API).
type daemonHolds struct{ d *daemon }

func (h daemonHolds) create(ctx context.Context, req service.HoldRequest) (service.HoldInfo, error) {
	var out service.HoldInfo
	err := h.d.do(ctx, "POST", "/api/holds", nil, req, &out)
	return out, err
}

func (h daemonHolds) list(ctx context.Context) ([]service.HoldInfo, error) {
	var out struct {
		Holds []service.HoldInfo `json:"holds"`
	}
	err := h.d.do(ctx, "GET", "/api/holds", nil, nil, &out)
	return out.Holds, err
}

func (h daemonHolds) show(ctx context.Context, name string) (service.HoldInfo, error) {
	var out service.HoldInfo
	err := h.d.do(ctx, "GET", "/api/holds/"+url.PathEscape(name), nil, nil, &out)
	return out, err
}

func (h daemonHolds) release(ctx context.Context, name, reason string) (service.HoldInfo, error) {
	var out service.HoldInfo
	err := h.d.do(ctx, "POST", "/api/holds/"+url.PathEscape(name)+"/release", nil, map[string]string{"reason": reason}, &out)
	return out, err
}

var (
	_ holdClient = localHolds{}
	_ holdClient = daemonHolds{}
)
