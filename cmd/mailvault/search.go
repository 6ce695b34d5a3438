package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"mailvault/indexer"
	"mailvault/service"
)

// searchLine is one occurrence of a hit in --json output.
type searchLine struct {
	Account     string   `json:"account"`
	Mailbox     string   `json:"mailbox"`
	UIDValidity uint32   `json:"uidvalidity"`
	UID         uint32   `json:"uid"`
	SHA256      string   `json:"sha256"`
	Date        string   `json:"date"` // RFC 3339 in the message's own zone; "" when it has no valid Date:
	From        string   `json:"from"`
	Subject     string   `json:"subject"`
	Size        int64    `json:"size"`
	Flags       []string `json:"flags"`
	URL         string   `json:"url"`
	Expunged    string   `json:"expunged_at,omitempty"`
	ParseError  string   `json:"parse_error,omitempty"`
}

func runSearch(ctx context.Context, e *env, args []string) error {
	var data, cfgPath, sortBy string
	var accounts, mailboxes stringList
	var limit, offset int
	var asJSON, imapSyntax, explain, withExpunged bool
	fs := newFlags(e, "search", &data)
	fs.StringVar(&cfgPath, "config", "", "read data_dir from this configuration `FILE` (--data wins)")
	fs.BoolVar(&imapSyntax, "imap", false, "QUERY is IMAP SEARCH criteria (RFC 9051), answered like UID SEARCH: \"* SEARCH uid ...\" for one mailbox")
	fs.BoolVar(&explain, "explain", false, "with --imap: print how the search was answered (to stderr)")
	fs.BoolVar(&withExpunged, "include-expunged", false, "with --imap: search the copies the server has expunged too")
	fs.Var(&accounts, "account", "only mail in account `NAME` (repeatable)")
	fs.Var(&mailboxes, "mailbox", "only mail in mailbox `NAME` (repeatable)")
	fs.IntVar(&limit, "limit", 50, "at most `N` messages (human syntax; IMAP answers are complete)")
	fs.IntVar(&offset, "offset", 0, "skip the first `N` messages")
	fs.StringVar(&sortBy, "sort", "date", "`ORDER` of the hits: newest (or date), oldest, largest, smallest, sender (A to Z) or relevance; with --imap it orders the hits, not the UIDs")
	fs.BoolVar(&asJSON, "json", false, "one JSON object per line")
	words, err := parse(fs, args)
	if err != nil {
		return err
	}
	if data, err = dataDir(fs, data, cfgPath); err != nil {
		return err
	}
	if len(words) == 0 {
		fmt.Fprintln(e.stderr, "mailvault search: a QUERY is required")
		fs.Usage()
		return errUsage
	}
	if limit <= 0 || offset < 0 {
		fmt.Fprintln(e.stderr, "mailvault search: --limit must be positive and --offset not negative")
		return errUsage
	}
	if sortBy == "date" {
		sortBy = string(indexer.SortNewest)
	}
	if _, err := indexer.ParseSort(sortBy); err != nil {
		return &exitError{code: 2, err: fmt.Errorf("--sort: %v", err)}
	}
	req := service.SearchRequest{Query: strings.Join(words, " "), Syntax: service.SyntaxHuman, Accounts: accounts,
		Mailboxes: mailboxes, Limit: min(limit, service.MaxLimit), Offset: offset, Sort: sortBy, IncludeExpunged: withExpunged}
	if imapSyntax {
		// Every matching occurrence: IMAP answers are not paged.
		req.Syntax, req.Limit, req.Offset = service.SyntaxIMAP, service.MaxLimit, 0
		// The answer's own order (mailbox, UID) unless --sort is given.
		sortGiven := false
		fs.Visit(func(f *flag.Flag) { sortGiven = sortGiven || f.Name == "sort" })
		if !sortGiven {
			req.Sort = ""
		}
	} else if explain || withExpunged {
		return &exitError{code: 2, err: errors.New("--explain and --include-expunged go with --imap")}
	}
	// Parse here too, so that a bad query is reported the same way with or
	// without a running serve, before anything is opened.
	if _, err := service.Parse(req.Syntax, req.Query); err != nil {
		return &exitError{code: 2, err: err}
	}
	search, closeFn, err := searcher(ctx, e, data)
	if err != nil {
		return err
	}
	defer closeFn()
	res, err := search(ctx, req)
	// More than a page: fetch the next pages (IMAP answers are never cut;
	// a human-syntax --limit over 1000 takes pages of 1000, date order by
	// the sort key so that deep pages stay cheap).
	// `* SEARCH` prints the mailbox's UIDs, which the first answer holds
	// whole: no pages.
	for err == nil && !(imapSyntax && !asJSON) && uint64(offset+len(res.Hits)) < res.Total && (imapSyntax || len(res.Hits) < limit) {
		if imapSyntax || req.Sort == string(indexer.SortRelevance) {
			req.Offset = offset + len(res.Hits)
		} else {
			req.Offset, req.After = 0, res.After
		}
		if !imapSyntax {
			req.Limit = min(limit-len(res.Hits), service.MaxLimit)
		}
		var more *service.SearchResult
		if more, err = search(ctx, req); err == nil {
			if len(more.Hits) == 0 {
				break
			}
			res.Hits, res.After = append(res.Hits, more.Hits...), more.After
		}
	}
	if err != nil {
		return cliError(err)
	}
	if imapSyntax {
		return printIMAPSearch(e, res, asJSON, explain)
	}
	enc := json.NewEncoder(e.stdout)
	enc.SetEscapeHTML(false)
	for _, h := range res.Hits {
		for _, o := range h.Occurrences {
			if asJSON {
				enc.Encode(lineOf(h, o))
				continue
			}
			day := "          "
			if len(h.Date) >= 10 {
				day = h.Date[:10]
			}
			fmt.Fprintf(e.stdout, "%s  %-28s  %-50s  %s/%s uid %d\n", day, clip(h.From, 28), clip(h.Subject, 50),
				o.Account, o.Mailbox, o.UID)
		}
	}
	// The count goes to stderr in both formats, so that a script reading
	// --json knows when it got only a page.
	shown := offset + len(res.Hits)
	fmt.Fprintf(e.stderr, "%d of %d matching messages (%.0f ms)\n", len(res.Hits), res.Total, res.TookMS)
	if uint64(shown) < res.Total {
		fmt.Fprintf(e.stderr, "more: --offset %d (or a larger --limit, up to 1000)\n", shown)
	}
	return nil
}

// lineOf is the --json line of one occurrence of a hit.
func lineOf(h service.Hit, o indexer.Occurrence) searchLine {
	flags := o.Flags
	if flags == nil {
		flags = []string{}
	}
	return searchLine{Account: o.Account, Mailbox: o.Mailbox, UIDValidity: o.UIDValidity, UID: o.UID,
		SHA256: h.SHA256, Date: h.Date, From: h.From, Subject: h.Subject, Size: h.Size,
		Flags: flags, URL: o.URL, Expunged: o.Expunged, ParseError: h.ParseError}
}

// printIMAPSearch prints an IMAP-syntax answer: `* SEARCH` for one mailbox,
// or one JSON line per matching occurrence.
func printIMAPSearch(e *env, res *service.SearchResult, asJSON, explain bool) error {
	if !asJSON && len(res.Mailboxes) > 1 {
		return &exitError{code: 2, err: fmt.Errorf("%d mailboxes in scope; `* SEARCH` answers for one: give --account and --mailbox, or use --json", len(res.Mailboxes))}
	}
	if explain {
		fmt.Fprintf(e.stderr, "query: %s\n", res.Query)
		for _, r := range res.Mailboxes {
			p := r.Plan
			fmt.Fprintf(e.stderr, "%s/%s (UIDVALIDITY %d): %d messages; keys: %d from the catalog (UID, flags, dates, size), %d from the index, %d verified on decoded content (%d narrowed by the prefilter: %d message tests ruled out, %d messages without a signature; %d message tests answered from header columns); %d messages decoded (%d from the cache); %d matches in %s\n",
				r.Account, r.Mailbox, r.UIDValidity, p.Messages, p.OccurrenceKey, p.IndexKeys, p.ContentKeys,
				p.Prefiltered, p.RuledOut, p.Unknown, p.ColumnHits, p.Verified, p.CacheHits, len(r.UIDs), p.Took.Round(time.Microsecond))
		}
	}
	if !asJSON {
		var b strings.Builder
		b.WriteString("* SEARCH")
		for _, uid := range res.Mailboxes[0].UIDs {
			b.WriteByte(' ')
			b.WriteString(strconv.FormatUint(uint64(uid), 10))
		}
		fmt.Fprintln(e.stdout, b.String())
		return nil
	}
	enc := json.NewEncoder(e.stdout)
	enc.SetEscapeHTML(false)
	for _, h := range res.Hits {
		for _, o := range h.Occurrences {
			enc.Encode(lineOf(h, o))
		}
	}
	return nil
}

// searcher returns how to search the archive in data: through the running
// serve when there is one, or by opening the archive read-only.
func searcher(ctx context.Context, e *env, data string) (func(context.Context, service.SearchRequest) (*service.SearchResult, error), func(), error) {
	if d, err := dialDaemon(ctx, data); err == nil {
		return d.search, func() {}, nil
	}
	svc, closeFn, err := openLocal(e, data, true)
	if err != nil {
		return nil, nil, err
	}
	return func(ctx context.Context, r service.SearchRequest) (*service.SearchResult, error) {
		return svc.Search(ctx, service.Operator(), r)
	}, closeFn, nil
}

// clip shortens s to n runes for a column, marking the cut.
func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
