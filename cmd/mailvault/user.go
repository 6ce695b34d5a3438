package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"mailvault/indexer"
	"mailvault/service"
)

// runUser is `mailvault user add|passwd|remove|list|token|tokens|revoke|audit`:
// the users of the web UI and API, kept in <data>/users.db. It works beside
// a running serve (SQLite in WAL mode). Every change is itself recorded in
// the audit trail, as done by the operator.
func runUser(ctx context.Context, e *env, args []string) error {
	var data, role string
	var accounts stringList
	var asJSON bool
	var last int
	var expires time.Duration
	fs := newFlags(e, "user", &data)
	fs.StringVar(&role, "role", "user", "with add: `ROLE`, admin (everything), auditor (reads every account), legal (reads every account, manages legal holds) or user (only --account)")
	fs.Var(&accounts, "account", "with add: an archive account `NAME` the user may see (repeatable; role user)")
	fs.BoolVar(&asJSON, "json", false, "with list and audit: JSON, one object per line")
	fs.IntVar(&last, "last", 50, "with audit: the last `N` entries")
	fs.DurationVar(&expires, "expires", service.DefaultTokenTTL, "with token: the token expires after this `DURATION`")
	words, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(words) == 0 || (words[0] != "list" && words[0] != "audit" && words[0] != "tokens" && len(words) != 2) || len(words) > 2 {
		fmt.Fprintln(e.stderr, "mailvault user: want add NAME, passwd NAME, remove NAME, token NAME, tokens [NAME], revoke ID, list or audit")
		fs.Usage()
		return errUsage
	}
	if err := os.MkdirAll(data, indexer.DirMode); err != nil {
		return err
	}
	users, err := service.OpenUsers(data)
	if err != nil {
		return err
	}
	defer users.Close()
	// Every change is made as the operator: it and its audit row are one
	// transaction, so a change that cannot be audited is not made.
	by := users.As(service.Operator())
	switch words[0] {
	case "add":
		pw, err := readPassword(e, "password for "+words[1])
		if err != nil {
			return err
		}
		if err := by.Add(ctx, service.User{Name: words[1], Role: service.Role(role), Accounts: accounts}, pw); err != nil {
			return userError(err)
		}
		fmt.Fprintf(e.stderr, "user %s added (%s)\n", words[1], role)
	case "passwd":
		pw, err := readPassword(e, "new password for "+words[1])
		if err != nil {
			return err
		}
		if err := by.SetPassword(ctx, words[1], pw); err != nil {
			return userError(err)
		}
		fmt.Fprintf(e.stderr, "password of %s changed; their sessions and API tokens are ended\n", words[1])
	case "remove":
		if err := by.Remove(ctx, words[1]); err != nil {
			return userError(err)
		}
		fmt.Fprintf(e.stderr, "user %s removed, with their sessions and API tokens\n", words[1])
	case "token":
		tok, info, err := by.NewToken(ctx, words[1], expires)
		if err != nil {
			return userError(err)
		}
		fmt.Fprintln(e.stdout, tok)
		fmt.Fprintf(e.stderr, "API token %s made for %s, expires %s; it is shown this once. Use it as: Authorization: Bearer <token>\n",
			info.ID, info.User, info.Expires)
	case "tokens":
		name := ""
		if len(words) == 2 {
			name = words[1]
		}
		list, err := users.Tokens(ctx, name)
		if err != nil {
			return err
		}
		if asJSON {
			enc := json.NewEncoder(e.stdout)
			for _, t := range list {
				enc.Encode(t)
			}
			return nil
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tUSER\tCREATED\tEXPIRES")
		for _, t := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.ID, t.User, t.Created, cmp.Or(t.Expires, "never"))
		}
		return tw.Flush()
	case "revoke":
		t, err := by.RevokeToken(ctx, words[1])
		if err != nil {
			return userError(err)
		}
		fmt.Fprintf(e.stderr, "token %s of %s revoked\n", t.ID, t.User)
	case "list":
		list, err := users.List(ctx)
		if err != nil {
			return err
		}
		if asJSON {
			enc := json.NewEncoder(e.stdout)
			for _, u := range list {
				enc.Encode(u)
			}
			return nil
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "USER\tROLE\tACCOUNTS")
		for _, u := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", u.Name, u.Role, strings.Join(u.Accounts, ","))
		}
		return tw.Flush()
	case "audit":
		// The last N, oldest first, as before `mailvault audit`, which
		// filters and pages; read through the same rule and audited alike.
		trail, err := service.ReadAuditTrail(ctx, users, service.Operator(), service.AuditFilter{Limit: min(max(last, 1), service.MaxAuditLimit)})
		if err != nil {
			return cliError(err)
		}
		slices.Reverse(trail)
		enc := json.NewEncoder(e.stdout)
		for _, a := range trail {
			if asJSON {
				enc.Encode(a)
			} else {
				// Fields are stored on one line (service.Users.Audit); rows
				// older than that are escaped here so that none can forge a
				// line.
				fmt.Fprintf(e.stdout, "%s  %-10s %-12s %-15s %s\n", oneLine(a.At), oneLine(a.User), oneLine(a.Action), oneLine(a.Remote), oneLine(a.Detail))
			}
		}
	default:
		fmt.Fprintf(e.stderr, "mailvault user: unknown action %q (add, passwd, remove, token, tokens, revoke, list, audit)\n", words[0])
		return errUsage
	}
	return nil
}

// readPassword reads a password: the first line of standard input (for
// scripts: echo "$PW" | mailvault user add ...), or from the terminal.
func readPassword(e *env, prompt string) (string, error) {
	fmt.Fprintf(e.stderr, "%s: ", prompt)
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		b, err := term.ReadPassword(int(f.Fd())) // no echo
		fmt.Fprintln(e.stderr)
		if err != nil {
			return "", err
		}
		if len(b) == 0 {
			return "", &exitError{code: 2, err: errors.New("no password given")}
		}
		return string(b), nil
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", &exitError{code: 2, err: errors.New("no password given on standard input")}
	}
	return pw, nil
}

// stdin is standard input; tests replace it.
var stdin io.Reader = os.Stdin

// oneLine escapes control characters (newlines above all) for a text line.
func oneLine(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return s
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

// userError gives a refused change exit code 2 (the command line must
// change), and a failed one (the audit trail, the database) exit code 1.
func userError(err error) error {
	if strings.Contains(err.Error(), "audit trail") {
		return err
	}
	return &exitError{code: 2, err: err}
}
