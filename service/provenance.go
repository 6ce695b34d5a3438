package service

import (
	"context"
	"errors"
	"slices"
	"strings"

	"mailvault/indexer"
	"mailvault/indexer/catalog"
)

// Journal and mailbox together (issue 16 item 3): which sources saw a
// message, and per account which mail only the journal, only the mailbox,
// or both saw. The linking is the catalog's (a normalised-content
// fingerprint, package indexer's fingerprint.go); the scope is applied
// here, once:
//
//   - Provenance names every source that saw the mail (journal, mailbox,
//     both), whoever asks: that the journal also holds a copy says nothing
//     about another account's mail. The copies it lists, with links, are
//     only those in the caller's accounts (a user sees "also seen by the
//     journal" without a link into the journal account).
//   - JournalCoverage reports the caller's accounts only (all of them for
//     the roles that see all). A journal message counts for an account
//     when its envelope's sender or a recipient is one of the account's
//     addresses (Options.AccountAddresses, and the account's IMAP username
//     when it is an address).
//
// Both are audited before they answer (fail closed).

// Provenance says which sources saw a message.
type Provenance struct {
	SHA256 string `json:"sha256"`
	// Kind is "journal", "mailbox" or "both" (catalog.Provenance*): over
	// every copy, in scope or not.
	Kind string `json:"provenance"`
	// Copies are the copies in the caller's accounts, this message's and
	// those of linked messages (the same mail, other bytes).
	Copies []catalog.Copy `json:"copies"`
	// ReportError is set for a message that claimed to be a journal report
	// and did not parse (archived as it came).
	ReportError string `json:"journal_report_error,omitempty"`
}

// Provenance returns the provenance of message id, if c may see it.
func (s *Service) Provenance(ctx context.Context, c Caller, id string) (*Provenance, error) {
	h, err := s.lookup(ctx, c, id)
	if err != nil {
		return nil, s.denied(ctx, c, "provenance", id, err)
	}
	p, err := s.provenance(ctx, c, h.SHA256)
	if err != nil {
		return nil, err
	}
	if err := s.audit(ctx, c, "provenance", h.SHA256); err != nil {
		return nil, err
	}
	return p, nil
}

// provenance is Provenance without the lookup and the audit: for callers
// that audited their access already (the export, which ships PROVENANCE).
func (s *Service) provenance(ctx context.Context, c Caller, sha string) (*Provenance, error) {
	copies, err := s.a.Copies(ctx, sha)
	if err != nil {
		return nil, err
	}
	p := &Provenance{SHA256: sha, Kind: catalog.ProvenanceOf(copies), Copies: []catalog.Copy{}}
	// Copies in accounts the caller does not see are left out, and not
	// counted: a count told a To recipient how many others hold the mail,
	// the Bcc recipients among them (review of issue 16). That the journal
	// saw it is in Kind, which the design shows everyone.
	for _, cp := range copies {
		if !c.Sees(cp.Account) {
			continue
		}
		if !c.SeesAll() {
			cp.Report = "" // the report is the journal account's
		}
		p.Copies = append(p.Copies, cp)
	}
	if p.ReportError, err = s.a.ReportError(ctx, sha); err != nil {
		return nil, err
	}
	return p, nil
}

// JournalCoverage reports, for account (or every account c sees when ""),
// how much mail the journal only, the mailbox only, or both saw. It reads
// the whole catalog once; messages archived before fingerprints existed
// are fingerprinted first (once: a backfill).
func (s *Service) JournalCoverage(ctx context.Context, c Caller, account string) (*catalog.Coverage, error) {
	var req []string
	if account != "" {
		req = []string{account}
	}
	accts, err := c.scopeAccounts(req)
	if err != nil {
		return nil, s.denied(ctx, c, "journal coverage", account, err)
	}
	if err := s.audit(ctx, c, "journal coverage", strings.Join(accts, ",")); err != nil {
		return nil, err
	}
	cov, err := s.a.JournalCoverage(ctx, catalog.CoverageInput{Addresses: s.accountAddresses(), Accounts: accts})
	if err != nil {
		if errors.Is(err, indexer.ErrNoMessage) {
			return nil, errorf(ErrNotFound, "%v", err)
		}
		return nil, err
	}
	if !c.SeesAll() {
		// Unmapped is over all the journal's mail, an archive-wide figure
		// (review of issue 16): who does not see every account is not
		// told it, as she is not told the archive-wide attachment counts.
		cov.Unmapped = 0
	}
	return cov, nil
}

// SetAccountAddresses replaces Options.AccountAddresses (a one-shot
// command that read them from a configuration after opening the service).
// Call it before the service is used.
func (s *Service) SetAccountAddresses(m map[string][]string) { s.opts.AccountAddresses = m }

// accountAddresses maps each lower-cased address to the accounts it is:
// Options.AccountAddresses, and a harvested account's username when it is
// an address.
func (s *Service) accountAddresses() map[string][]string {
	out := map[string][]string{}
	add := func(addr, acct string) {
		addr = strings.ToLower(strings.TrimSpace(addr))
		if addr == "" || !strings.Contains(addr, "@") || slices.Contains(out[addr], acct) {
			return
		}
		out[addr] = append(out[addr], acct)
	}
	for _, a := range s.opts.Accounts {
		add(a.Username, a.Name)
	}
	for acct, addrs := range s.opts.AccountAddresses {
		for _, addr := range addrs {
			add(addr, acct)
		}
	}
	return out
}

// LinkJournalReport records a journal report's link to its original (or
// its parse error): with it JournalSink is a journal.ReportLinker, and the
// listener unwraps Exchange journal reports on their way in
// (journal/reportsink.go).
func (j *JournalSink) LinkJournalReport(ctx context.Context, report, original [32]byte, parseErr string) error {
	return j.a.LinkJournalReport(ctx, report, original, parseErr)
}

// backfillFingerprints fingerprints, once at Run's start and beside the
// harvest, the messages archived before fingerprints existed (or by an
// older version), so that their copies link without waiting for the first
// coverage report. A failure is logged; the report tries again.
func (s *Service) backfillFingerprints(ctx context.Context) {
	n, err := s.a.BackfillFingerprints(ctx)
	switch {
	case err != nil && ctx.Err() == nil:
		s.log.Error("fingerprints of older messages", "err", err)
	case n > 0:
		s.log.Info("fingerprinted older messages", "messages", n)
	}
}
