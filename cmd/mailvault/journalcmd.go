package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"text/tabwriter"

	"mailvault/indexer/catalog"
	"mailvault/service"
)

// journalHelp is `mailvault journal --help`'s longer text.
const journalHelp = `coverage reports, per account, the mail only the journal saw (the mailbox lost
it, or it was never harvested), only the account's mailboxes hold (the
journal missed it), and both saw: a journal copy and a mailbox copy are the
same mail when their Message-ID and normalised content (docs/design.md,
"Journal and mailbox") agree. A journal message belongs to the accounts its
envelope's sender or recipients are: an account's addresses are its
accounts[].addresses in the configuration, and its username when that is an
address. Mailbox mail dated before the journal's first delivery is counted
apart (before_journal), not as missed.

With serve running the report comes from it (its configuration's
addresses); otherwise the archive is opened here and --config names the
configuration to take the addresses from. Messages archived before
fingerprints existed are fingerprinted first (once).
`

func init() { helpText["journal"] = journalHelp }

// runJournal is `mailvault journal coverage`.
func runJournal(ctx context.Context, e *env, args []string) error {
	var data, account, cfgPath string
	var asJSON bool
	fs := newFlags(e, "journal", &data)
	fs.StringVar(&account, "account", "", "report this archive `ACCOUNT` only (default: every account)")
	fs.StringVar(&cfgPath, "config", "", "take data_dir and the accounts' addresses from this configuration `FILE` (without serve running)")
	fs.BoolVar(&asJSON, "json", false, "print the report as one JSON object")
	words, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(words) != 1 || words[0] != "coverage" {
		fmt.Fprintln(e.stderr, "mailvault journal: want coverage")
		fs.Usage()
		return errUsage
	}
	var cov *catalog.Coverage
	if d, derr := dialDaemon(ctx, data); derr == nil {
		var c catalog.Coverage
		params := url.Values{}
		if account != "" {
			params.Set("account", account)
		}
		if err := d.do(ctx, "GET", "/api/journal/coverage", params, nil, &c); err != nil {
			return cliError(err)
		}
		cov = &c
	} else {
		if data, err = dataDir(fs, data, cfgPath); err != nil {
			return err
		}
		addrs := map[string][]string{}
		if cfgPath != "" {
			cfg, _, err := loadConfig(cfgPath)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			addrs = cfg.accountAddresses()
		}
		svc, closeFn, err := openLocal(e, data, false)
		if err != nil {
			return err
		}
		defer closeFn()
		svc.SetAccountAddresses(addrs)
		if cov, err = svc.JournalCoverage(ctx, service.Operator(), account); err != nil {
			return cliError(err)
		}
	}
	if asJSON {
		return json.NewEncoder(e.stdout).Encode(cov)
	}
	if cov.JournalSince == "" {
		fmt.Fprintln(e.stdout, "no journal mail in the archive")
	} else {
		fmt.Fprintf(e.stdout, "journal since %s\n", cov.JournalSince)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ACCOUNT\tJOURNAL ONLY\tMAILBOX ONLY\tBOTH\tBEFORE JOURNAL")
	for _, a := range cov.Accounts {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\n", a.Account, a.JournalOnly, a.MailboxOnly, a.Both, a.BeforeJournal)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if cov.Unmapped > 0 {
		fmt.Fprintf(e.stdout, "%d journal messages name no account's address (set accounts[].addresses)\n", cov.Unmapped)
	}
	return nil
}

// accountAddresses maps each account to its addresses: its addresses: list
// and its username when that is an address (the service adds the latter
// too, for the accounts it harvests).
func (c *config) accountAddresses() map[string][]string {
	out := map[string][]string{}
	for _, a := range c.Accounts {
		out[a.Name] = append(out[a.Name], a.Addresses...)
		if strings.Contains(a.Username, "@") {
			out[a.Name] = append(out[a.Name], a.Username)
		}
	}
	return out
}
