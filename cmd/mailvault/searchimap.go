package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"mailvault/indexer"
	"mailvault/query"
)

// imapSearchRequest is what `search --imap` sends to a running serve.
type imapSearchRequest struct {
	Criteria        string   `json:"criteria"`
	Accounts        []string `json:"accounts"`
	Mailboxes       []string `json:"mailboxes"`
	IncludeExpunged bool     `json:"include_expunged"`
}

// searchIMAPAll answers q in every mailbox in scope: the accounts and
// mailboxes of req (all when empty).
func searchIMAPAll(ctx context.Context, a *indexer.Archive, q query.Node, req imapSearchRequest) ([]*indexer.IMAPResult, error) {
	st, err := a.Catalog().AllMailboxes(ctx)
	if err != nil {
		return nil, err
	}
	wantMailbox := func(mb string) bool {
		return len(req.Mailboxes) == 0 || slices.ContainsFunc(req.Mailboxes, func(m string) bool { return query.CanonicalMailbox(m) == mb })
	}
	var out []*indexer.IMAPResult
	for _, s := range st {
		if len(req.Accounts) > 0 && !slices.Contains(req.Accounts, s.Account) || !wantMailbox(s.Mailbox) {
			continue
		}
		res, err := a.SearchIMAP(ctx, s.Account, s.Mailbox, q, &indexer.IMAPSearchOptions{IncludeExpunged: req.IncludeExpunged})
		if err != nil {
			return nil, err
		}
		out = append(out, res)
	}
	if len(out) == 0 {
		return nil, &exitError{code: 2, err: fmt.Errorf("no mailbox in the archive matches --account %v --mailbox %v (`mailvault status` lists them)", req.Accounts, req.Mailboxes)}
	}
	return out, nil
}

// runSearchIMAP is `search --imap`.
func runSearchIMAP(ctx context.Context, e *env, data string, req imapSearchRequest, asJSON, explain bool) error {
	q, err := query.ParseIMAP(req.Criteria)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	var res []*indexer.IMAPResult
	err = askDaemon(ctx, data, "/search-imap", req, &res)
	if errors.Is(err, errNoDaemon) {
		var a *indexer.Archive
		if a, err = indexer.Open(data, &indexer.Options{Logger: e.log, ReadOnly: true}); err != nil {
			return err
		}
		defer a.Close()
		res, err = searchIMAPAll(ctx, a, q, req)
	}
	if err != nil {
		return err
	}
	if !asJSON && len(res) > 1 {
		return &exitError{code: 2, err: fmt.Errorf("%d mailboxes in scope; `* SEARCH` answers for one: give --account and --mailbox, or use --json", len(res))}
	}
	if explain {
		writeIMAPPlan(e.stderr, q, res)
	}
	if !asJSON {
		var b strings.Builder
		b.WriteString("* SEARCH")
		for _, uid := range res[0].UIDs {
			b.WriteByte(' ')
			b.WriteString(strconv.FormatUint(uint64(uid), 10))
		}
		fmt.Fprintln(e.stdout, b.String())
		return nil
	}
	enc := json.NewEncoder(e.stdout)
	enc.SetEscapeHTML(false)
	for _, r := range res {
		for _, h := range r.Hits {
			flags := strings.Fields(h.Flags)
			if flags == nil {
				flags = []string{}
			}
			enc.Encode(searchLine{
				Account: r.Account, Mailbox: r.Mailbox, UIDValidity: r.UIDValidity, UID: h.UID,
				SHA256: fmt.Sprintf("%x", h.SHA256), Date: h.Date, From: h.From, Subject: h.Subject, Size: h.Size,
				Flags: flags, URL: indexer.MessageURL(r.AccountURL, r.Account, r.Mailbox, r.UIDValidity, h.UID),
				Expunged: h.Expunged, ParseError: h.ParseError,
			})
		}
	}
	return nil
}

// writeIMAPPlan prints how each mailbox's search was answered.
func writeIMAPPlan(w io.Writer, q query.Node, res []*indexer.IMAPResult) {
	fmt.Fprintf(w, "query: %s\n", q)
	for _, r := range res {
		p := r.Plan
		fmt.Fprintf(w, "%s/%s (UIDVALIDITY %d): %d messages; keys: %d from the catalog (UID, flags, dates, size), %d from the index, %d verified on decoded content; %d messages decoded (%d from the cache); %d matches in %s\n",
			r.Account, r.Mailbox, r.UIDValidity, p.Messages, p.OccurrenceKey, p.IndexKeys, p.ContentKeys,
			p.Verified, p.CacheHits, len(r.UIDs), p.Took.Round(time.Microsecond))
	}
}
