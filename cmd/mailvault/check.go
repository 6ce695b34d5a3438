package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"text/tabwriter"

	"mailvault/indexer"
	"mailvault/service"
)

// runStatusCheck is `status --check`: a gap check of the configured
// accounts now. When serve runs it is serve's job (serve holds the
// archive, and the check stores what it finds missing); otherwise this
// command opens the archive and runs the same check itself, so an archive
// whose daemon is stopped can be checked too (service/gaps.go).
func runStatusCheck(ctx context.Context, e *env, _ *flag.FlagSet, data, cfgPath, out string, asJSON bool) error {
	if cfgPath == "" {
		return &exitError{code: 2, err: errors.New("status --check needs --config: the check logs in to the configured accounts' servers")}
	}
	var rep *service.Completeness
	if d, derr := dialDaemon(ctx, data); derr == nil {
		j, err := runDaemonJob(ctx, d, jobStart{Kind: service.JobCheck}, newProgress(e.stderr, "checking accounts"))
		if err != nil {
			return err
		}
		rep = &service.Completeness{}
		if err := json.Unmarshal(j.Result, rep); err != nil {
			return fmt.Errorf("status --check: bad report from serve: %w", err)
		}
	} else {
		cfg, accounts, err := loadConfig(cfgPath)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		// The configuration's archive options, as serve's: what the
		// check fetches is stored and extracted as serve would.
		svc, closeFn, err := openLocalService(e, data, *cfg.archiveOptions(&indexer.Options{}),
			service.Options{Accounts: accounts, Harvest: cfg.harvestOptions(nil)})
		if err != nil {
			return err
		}
		defer closeFn()
		if rep, err = svc.CheckGaps(ctx, service.Operator(), nil); err != nil {
			return cliError(err)
		}
		if err := svc.Archive().Flush(ctx); err != nil {
			return err
		}
	}
	if out != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(out, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("status --check: write the report: %w", err)
		}
	}
	if asJSON {
		json.NewEncoder(e.stdout).Encode(rep)
	} else {
		tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ACCOUNT\tMAILBOX\tUIDVALIDITY\tON SERVER\tARCHIVED\tINDEXED\tSKIPPED\tPENDING\tMISSING\tMISSING UIDS\tFETCHED NOW\tCHECKED")
		for _, m := range rep.Mailboxes {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%d\t%s\n", m.Account, m.Mailbox, m.UIDValidity, m.OnServer,
				m.Archived, m.Indexed, m.Skipped, m.Pending, m.Missing, m.MissingUIDs, m.Fetched, m.At.Format("2006-01-02T15:04:05Z07:00"))
		}
		tw.Flush()
		for _, er := range rep.Errors {
			fmt.Fprintln(e.stdout, "error:", er)
		}
		fmt.Fprintf(e.stdout, "report sha256 %s (audited as gap-check-report)\n", rep.SHA256)
	}
	if left := rep.Missing(); left > 0 || len(rep.Errors) > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d messages still missing, %d accounts not checked", left, len(rep.Errors))}
	}
	return nil
}
