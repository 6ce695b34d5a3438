package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"

	"mailvault/indexer"
)

func runStatus(ctx context.Context, e *env, args []string) error {
	var data string
	var asJSON bool
	fs := newFlags(e, "status", &data)
	fs.BoolVar(&asJSON, "json", false, "one JSON object per mailbox per line")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	st, err := indexer.Status(ctx, data)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(e.stdout)
		for _, s := range st {
			enc.Encode(s)
		}
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "ACCOUNT\tMAILBOX\tSOURCE\tARCHIVED\tUNIQUE\tPARSE ERRORS\tNOT INDEXED\tEXPUNGED\t")
	var tot indexer.MailboxStatus
	for _, s := range st {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t\n", s.Account, s.Mailbox, s.Source,
			s.Occurrences, s.Unique, s.ParseErrors, s.Unindexed, s.Expunged)
		tot.Occurrences += s.Occurrences
		tot.ParseErrors += s.ParseErrors
		tot.Unindexed += s.Unindexed
		tot.Expunged += s.Expunged
	}
	fmt.Fprintf(tw, "total\t%d mailboxes\t\t%d\t\t%d\t%d\t%d\t\n", len(st), tot.Occurrences, tot.ParseErrors, tot.Unindexed, tot.Expunged)
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
