package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"mailvault/indexer"
	"mailvault/service"
)

func runStatus(ctx context.Context, e *env, args []string) error {
	var data, cfgPath string
	var asJSON bool
	fs := newFlags(e, "status", &data)
	fs.StringVar(&cfgPath, "config", "", "read data_dir from this configuration `FILE` (--data wins)")
	fs.BoolVar(&asJSON, "json", false, "one JSON object per mailbox per line (with --check: the completeness report as one JSON object)")
	var check bool
	var out string
	fs.BoolVar(&check, "check", false, "run a gap check of the --config accounts now (through serve when it runs) and print the completeness report")
	fs.StringVar(&out, "out", "", "with --check: also write the report (JSON, with the archive's identity, a timestamp and its audited sha256) to `FILE`")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	data, err := dataDir(fs, data, cfgPath)
	if err != nil {
		return err
	}
	if check {
		return runStatusCheck(ctx, e, fs, data, cfgPath, out, asJSON)
	}
	var st *service.Status
	if d, derr := dialDaemon(ctx, data); derr == nil {
		st, err = d.status(ctx)
	} else {
		st, err = service.OfflineStatus(ctx, data)
	}
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(e.stdout)
		for _, l := range st.Mailboxes {
			enc.Encode(l)
		}
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ACCOUNT\tMAILBOX\tSERVER\tARCHIVED\tUNIQUE\tINDEXED\tPARSE ERRORS\tEXPUNGED\tLAST SYNC\tSTATE")
	var tot indexer.MailboxStatus
	for _, l := range st.Mailboxes {
		server := "-"
		if l.ServerMessages != nil {
			server = fmt.Sprint(*l.ServerMessages)
		}
		state := string(l.State)
		if p := l.ProgressText(); p != "" {
			state += " " + p
		}
		if l.Error != "" {
			state += ": " + l.Error
		}
		if l.RetryAt != nil {
			state += fmt.Sprintf(" (retries at %s)", l.RetryAt.Local().Format("15:04:05"))
		}
		if l.Skipped > 0 {
			state += fmt.Sprintf(" (%d skipped: the server would not deliver them, or over max_message_bytes)", l.Skipped)
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
		tot.Expunged += l.Expunged
	}
	fmt.Fprintf(tw, "total\t%d mailboxes\t\t%d\t\t%d\t%d\t%d\t\t\n", len(st.Mailboxes), tot.Occurrences, tot.Indexed, tot.ParseErrors, tot.Expunged)
	if err := tw.Flush(); err != nil {
		return err
	}
	if s := st.Attachments.Summary(); s != "" {
		fmt.Fprintln(e.stdout, s)
	}
	for _, j := range st.Jobs {
		if j.State == service.JobRunning || j.State == service.JobQueued {
			fmt.Fprintf(e.stdout, "job %s: %s %s, %s\n", j.ID, j.Kind, j.State, jobProgress(j))
		}
	}
	return nil
}

func runVerify(ctx context.Context, e *env, args []string) error {
	var data string
	var asJSON bool
	fs := newFlags(e, "verify", &data)
	fs.BoolVar(&asJSON, "json", false, "print the report as one JSON object")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	var rep *indexer.VerifyReport
	prog := newProgress(e.stderr, "verifying blobs")
	if d, err := dialDaemon(ctx, data); err == nil {
		// Online: serve verifies its own archive as a job, harvest going on.
		j, err := runDaemonJob(ctx, d, jobStart{Kind: service.JobVerify}, prog)
		if err != nil {
			return err
		}
		rep = &indexer.VerifyReport{}
		if err := json.Unmarshal(j.Result, rep); err != nil {
			return fmt.Errorf("verify: bad report from serve: %w", err)
		}
	} else {
		a, err := indexer.Open(data, &indexer.Options{Logger: e.log, ReadOnly: true})
		if err != nil {
			return err
		}
		defer a.Close()
		if err := auditLocal(ctx, data, service.ActionVerify, "offline, the whole archive in "+data); err != nil {
			return err
		}
		rep, err = a.Verify(ctx, prog.update)
		prog.done()
		if err != nil {
			return err
		}
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
	prog := newProgress(e.stderr, "reindexing")
	var sum service.ReindexSummary
	if d, err := dialDaemon(ctx, data); err == nil {
		// Online: a new index is built beside the live one and swapped in;
		// searches go on meanwhile.
		j, err := runDaemonJob(ctx, d, jobStart{Kind: service.JobReindex}, prog)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(j.Result, &sum); err != nil {
			return fmt.Errorf("reindex: bad summary from serve: %w", err)
		}
	} else {
		if _, err := os.Stat(filepath.Join(data, "catalog.db")); err != nil {
			return fmt.Errorf("no archive in %s to reindex (check --data)", data)
		}
		if err := auditLocal(ctx, data, service.ActionReindex, "offline, the whole index in "+data); err != nil {
			return err
		}
		limitMemory()
		a, err := indexer.Open(data, &indexer.Options{Logger: e.log, DiscardIndex: true})
		if err != nil {
			return err
		}
		err = a.CatchUp(ctx, prog.update)
		prog.done()
		if err == nil {
			err = a.Compact(ctx)
		}
		if err == nil {
			var st []indexer.MailboxStatus
			if st, err = a.Status(ctx); err == nil {
				sum.Mailboxes = len(st)
				for _, s := range st {
					sum.Occurrences += s.Occurrences
				}
			}
		}
		if cerr := a.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	fmt.Fprintf(e.stdout, "index rebuilt: %d mailboxes, %d occurrences\n", sum.Mailboxes, sum.Occurrences)
	return nil
}

// runDaemonJob starts a job in the running serve and follows it to its
// end, drawing progress; Ctrl-C cancels the job. It returns the job when it
// is done, and an error when it failed or was cancelled.
func runDaemonJob(ctx context.Context, d *daemon, req jobStart, prog *progress) (service.JobInfo, error) {
	kind := req.Kind
	j, err := d.startJob(ctx, req)
	if err != nil {
		return j, cliError(err)
	}
	fmt.Fprintf(prog.out, "%s runs in the running serve as job %s (`mailvault jobs` lists it)\n", kind, j.ID)
	j, err = d.follow(ctx, j.ID, prog)
	if errors.Is(err, context.Canceled) {
		return j, &exitError{code: 130, err: fmt.Errorf("interrupted; job %s cancelled, what it did so far is kept", j.ID)}
	}
	if err != nil {
		return j, err
	}
	switch j.State {
	case service.JobDone:
		return j, nil
	case service.JobCancelled:
		return j, &exitError{code: 130, err: fmt.Errorf("job %s was cancelled; what it did so far is kept", j.ID)}
	}
	return j, fmt.Errorf("job %s failed: %s", j.ID, j.Error)
}

// runJobs is `mailvault jobs`: the jobs of the running serve.
func runJobs(ctx context.Context, e *env, args []string) error {
	var data, cancelID string
	var asJSON bool
	fs := newFlags(e, "jobs", &data)
	fs.BoolVar(&asJSON, "json", false, "one JSON object per job per line")
	fs.StringVar(&cancelID, "cancel", "", "cancel job `ID` (what it did so far is kept)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	d, err := dialDaemon(ctx, data)
	if err != nil {
		return &exitError{code: 1, err: fmt.Errorf("no serve runs on %s: jobs are long work done by a running serve; without one, import, verify and reindex run in the foreground", data)}
	}
	if cancelID != "" {
		if err := d.cancelJob(ctx, cancelID); err != nil {
			return cliError(err)
		}
		fmt.Fprintf(e.stderr, "job %s: cancel requested\n", cancelID)
		return nil
	}
	list, err := d.jobs(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetEscapeHTML(false)
		for _, j := range list {
			enc.Encode(j)
		}
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tKIND\tSTATE\tSTARTED\tBY\tPROGRESS\tWHAT")
	for _, j := range list {
		state := string(j.State)
		if j.Error != "" {
			state += ": " + j.Error
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", j.ID, j.Kind, state, j.Started.Format(time.DateTime), j.By, jobProgress(j), j.What)
	}
	return tw.Flush()
}

// jobProgress is "1200/6046 (350/s, ETA 14s)".
func jobProgress(j service.JobInfo) string {
	s := fmt.Sprintf("%d/%d", j.Done, j.Total)
	if j.Rate > 0 {
		s += fmt.Sprintf(" (%.0f/s, ETA %s)", j.Rate, time.Duration(j.ETASeconds)*time.Second)
	}
	return s
}
