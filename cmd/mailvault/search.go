package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"mailvault/indexer"
	"mailvault/query"
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
	var data, sortBy string
	var accounts, mailboxes stringList
	var limit, offset int
	var asJSON, imapSyntax, explain, withExpunged bool
	fs := newFlags(e, "search", &data)
	fs.BoolVar(&imapSyntax, "imap", false, "QUERY is IMAP SEARCH criteria (RFC 9051), answered like UID SEARCH: `* SEARCH uid ...` for one mailbox")
	fs.BoolVar(&explain, "explain", false, "with --imap: print how the search was answered (to stderr)")
	fs.BoolVar(&withExpunged, "include-expunged", false, "with --imap: search the copies the server has expunged too")
	fs.Var(&accounts, "account", "only mail in account `NAME` (repeatable)")
	fs.Var(&mailboxes, "mailbox", "only mail in mailbox `NAME` (repeatable)")
	fs.IntVar(&limit, "limit", 50, "at most `N` messages")
	fs.IntVar(&offset, "offset", 0, "skip the first `N` messages")
	fs.StringVar(&sortBy, "sort", "date", "order: date (newest first) or relevance")
	fs.BoolVar(&asJSON, "json", false, "one JSON object per line")
	words, err := parse(fs, args)
	if err != nil {
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
	if sortBy != "date" && sortBy != "relevance" {
		return fmt.Errorf("--sort %q: want date or relevance", sortBy)
	}
	text := strings.Join(words, " ")
	if imapSyntax {
		return runSearchIMAP(ctx, e, data, imapSearchRequest{Criteria: text, Accounts: accounts, Mailboxes: mailboxes,
			IncludeExpunged: withExpunged}, asJSON, explain)
	}
	if explain || withExpunged {
		return &exitError{code: 2, err: errors.New("--explain and --include-expunged go with --imap")}
	}
	q, err := query.ParseHuman(text)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	// A running serve holds the index: ask it. Otherwise open the archive.
	res, err := searchViaDaemon(ctx, data, searchRequest{Query: text, Accounts: accounts, Mailboxes: mailboxes,
		Limit: limit, Offset: offset, ByRelevance: sortBy == "relevance"})
	if errors.Is(err, errNoDaemon) {
		var a *indexer.Archive
		if a, err = indexer.Open(data, &indexer.Options{Logger: e.log, ReadOnly: true}); err != nil {
			return err
		}
		defer a.Close()
		res, err = a.Search(ctx, q, &indexer.SearchOptions{
			Accounts: accounts, Mailboxes: mailboxes, Limit: limit, Offset: offset, ByRelevance: sortBy == "relevance",
		})
	}
	if err != nil {
		return err
	}
	enc := json.NewEncoder(e.stdout)
	enc.SetEscapeHTML(false)
	for _, h := range res.Hits {
		date := ""
		if !h.Date.IsZero() {
			date = h.Date.Format(time.RFC3339)
		}
		for _, o := range h.Occurrences {
			if asJSON {
				flags := o.Flags
				if flags == nil {
					flags = []string{}
				}
				enc.Encode(searchLine{
					Account: o.Account, Mailbox: o.Mailbox, UIDValidity: o.UIDValidity, UID: o.UID,
					SHA256: h.SHA256, Date: date, From: h.From, Subject: h.Subject, Size: h.Size,
					Flags: flags, URL: o.URL, Expunged: o.Expunged, ParseError: h.ParseError,
				})
				continue
			}
			day := "          "
			if !h.Date.IsZero() {
				day = h.Date.Format("2006-01-02")
			}
			fmt.Fprintf(e.stdout, "%s  %-28s  %-50s  %s/%s uid %d\n", day, clip(h.From, 28), clip(h.Subject, 50),
				o.Account, o.Mailbox, o.UID)
		}
	}
	if !asJSON {
		shown := offset + len(res.Hits)
		fmt.Fprintf(e.stderr, "%d of %d matching messages (%s)\n", len(res.Hits), res.Total, res.Took.Round(time.Millisecond))
		if uint64(shown) < res.Total {
			fmt.Fprintf(e.stderr, "more: --offset %d\n", shown)
		}
	}
	return nil
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
