package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"text/tabwriter"
	"time"

	"mailvault/indexer"
)

// statusLine is one mailbox in `status` output: what the catalog holds, and,
// while `serve` runs, what its harvester reports.
type statusLine struct {
	indexer.MailboxStatus
	ServerMessages *uint32 `json:"server_messages"` // null when no harvester reports it
	State          string  `json:"state"`
	Error          string  `json:"error"`
	// While catching up: messages to fetch in this catch-up, fetched so far,
	// rate and estimated seconds left.
	ToFetch    int     `json:"to_fetch,omitempty"`
	Fetched    int     `json:"fetched,omitempty"`
	Rate       float64 `json:"rate,omitempty"`
	ETASeconds float64 `json:"eta_seconds,omitempty"`
}

// progressText is "1200/6046 fetched, 350 msg/s, ETA 14s".
func (l statusLine) progressText() string {
	if l.ToFetch == 0 {
		return ""
	}
	s := fmt.Sprintf(" %d/%d fetched", l.Fetched, l.ToFetch)
	if l.Rate > 0 {
		s += fmt.Sprintf(", %.0f msg/s, ETA %s", l.Rate, (time.Duration(l.ETASeconds) * time.Second).String())
	}
	return s
}

func runStatus(ctx context.Context, e *env, args []string) error {
	var data string
	var asJSON bool
	fs := newFlags(e, "status", &data)
	fs.BoolVar(&asJSON, "json", false, "one JSON object per mailbox per line")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	lines, err := statusLines(ctx, data)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(e.stdout)
		for _, l := range lines {
			enc.Encode(l)
		}
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ACCOUNT\tMAILBOX\tSERVER\tARCHIVED\tUNIQUE\tINDEXED\tPARSE ERRORS\tEXPUNGED\tLAST SYNC\tSTATE")
	var tot indexer.MailboxStatus
	for _, l := range lines {
		server := "-"
		if l.ServerMessages != nil {
			server = fmt.Sprint(*l.ServerMessages)
		}
		state := l.State + l.progressText()
		if l.Error != "" {
			state += ": " + l.Error
		}
		if l.Skipped > 0 {
			state += fmt.Sprintf(" (%d skipped: the server would not deliver them)", l.Skipped)
		}
		lastSync := "-"
		if l.LastSync != "" {
			lastSync = l.LastSync
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", l.Account, l.Mailbox, server,
			l.Occurrences, l.Unique, l.Indexed, l.ParseErrors, l.Expunged, lastSync, state)
		tot.Occurrences += l.Occurrences
		tot.Indexed += l.Indexed
		tot.ParseErrors += l.ParseErrors
		tot.Unindexed += l.Unindexed
		tot.Expunged += l.Expunged
	}
	fmt.Fprintf(tw, "total\t%d mailboxes\t\t%d\t\t%d\t%d\t%d\t\t\n", len(lines), tot.Occurrences, tot.Indexed, tot.ParseErrors, tot.Expunged)
	return tw.Flush()
}

func runVerify(ctx context.Context, e *env, args []string) error {
	var data string
	var asJSON bool
	fs := newFlags(e, "verify", &data)
	fs.BoolVar(&asJSON, "json", false, "print the report as one JSON object")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	a, err := indexer.Open(data, &indexer.Options{Logger: e.log, ReadOnly: true})
	if err != nil {
		return err
	}
	defer a.Close()
	prog := newProgress(e.stderr, "verifying blobs")
	rep, err := a.Verify(ctx, prog.update)
	prog.done()
	if err != nil {
		return err
	}
	if asJSON {
		if rep.Problems == nil {
			rep.Problems = []indexer.Problem{}
		}
		json.NewEncoder(e.stdout).Encode(rep)
	} else {
		for _, p := range rep.Problems {
			fmt.Fprintln(e.stdout, p)
		}
		fmt.Fprintf(e.stdout, "%d blobs re-hashed, %d messages in the catalog, %d index documents, %d unreferenced blobs, %d problems\n",
			rep.Blobs, rep.Messages, rep.Indexed, rep.Orphans, len(rep.Problems))
	}
	if len(rep.Problems) > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d problems found", len(rep.Problems))}
	}
	return nil
}

func runReindex(ctx context.Context, e *env, args []string) error {
	var data string
	fs := newFlags(e, "reindex", &data)
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(data, "catalog.db")); err != nil {
		return fmt.Errorf("no archive in %s to reindex (check --data)", data)
	}
	limitMemory()
	a, err := indexer.Open(data, &indexer.Options{Logger: e.log, DiscardIndex: true})
	if err != nil {
		return err
	}
	prog := newProgress(e.stderr, "reindexing")
	err = a.CatchUp(ctx, prog.update)
	prog.done()
	if err == nil {
		err = a.Compact(ctx)
	}
	if cerr := a.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	st, err := indexer.Status(ctx, data)
	if err != nil {
		return err
	}
	n := 0
	for _, s := range st {
		n += s.Occurrences
	}
	fmt.Fprintf(e.stdout, "index rebuilt: %d mailboxes, %d occurrences\n", len(st), n)
	return nil
}

// statusLines is the state of every mailbox: the catalog's counts merged
// with the live state a running serve publishes.
func statusLines(ctx context.Context, data string) ([]statusLine, error) {
	st, err := indexer.Status(ctx, data)
	if err != nil {
		return nil, err
	}
	live := readHarvestStatus(data)
	lines := make([]statusLine, len(st))
	for i, s := range st {
		l := statusLine{MailboxStatus: s, State: "archived"}
		if s.Source == "imap" {
			l.State = "not running"
		}
		if live != nil {
			if acct, ok := live.Accounts[s.Account]; ok {
				l.State, l.Error = acct.State, acct.Error
				if ms, ok := acct.Mailboxes[s.Mailbox]; ok {
					n := ms.ServerMessages
					l.ServerMessages = &n
					if acct.State == "harvesting" {
						l.State = ms.State
					}
					if ms.State == "catching up" && ms.ToFetch > 0 {
						l.ToFetch, l.Fetched = ms.ToFetch, ms.Fetched
						if el := live.Written.Sub(ms.CatchUpSince).Seconds(); el > 0 && ms.Fetched > 0 {
							l.Rate = float64(ms.Fetched) / el
							l.ETASeconds = math.Round(float64(ms.ToFetch-ms.Fetched) / l.Rate)
						}
					}
					if !ms.LastSync.IsZero() {
						l.LastSync = ms.LastSync.UTC().Format(time.RFC3339)
					}
				}
			}
		}
		lines[i] = l
	}
	// An account serve harvests but that has no mailbox in the catalog yet
	// (its login fails, its server is down) still gets a line with its error.
	if live != nil {
		var names []string
		for name := range live.Accounts {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			if !slices.ContainsFunc(lines, func(l statusLine) bool { return l.Account == name }) {
				acct := live.Accounts[name]
				lines = append(lines, statusLine{MailboxStatus: indexer.MailboxStatus{Account: name, Source: "imap"},
					State: acct.State, Error: acct.Error})
			}
		}
	}
	return lines, nil
}
