package indexer

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/search"
	bleveq "github.com/blevesearch/bleve/v2/search/query"

	"mailvault/indexer/catalog"
	"mailvault/indexer/store"
	"mailvault/query"
)

// SearchOptions narrow and shape a search. A nil *SearchOptions is equivalent
// to a zero SearchOptions.
type SearchOptions struct {
	// Accounts and Mailboxes restrict the search to messages with an
	// occurrence in one of these accounts / mailbox names, and the occurrences
	// listed with each hit to those in them. Empty means no restriction.
	Accounts  []string
	Mailboxes []string
	// Limit is the most messages returned (default 50); Offset skips that many first.
	Limit  int
	Offset int
	// Sort orders the hits (default SortNewest). ByRelevance is SortRelevance.
	Sort        Sort
	ByRelevance bool
	// Timeout bounds the search (default 10s).
	Timeout time.Duration
	// Facets asks for counts over all matching messages (SearchResult.Facets).
	Facets bool
	// After continues a search in a field order (every Sort but
	// relevance) after the hit whose sort key this is (SearchResult.After
	// of the previous page, in the same Sort), instead of Offset: deep
	// pages then cost what the first does.
	After []string
	// IDs restricts the search to these messages (sha256 hex), when not
	// empty: a legal hold's query asked about a batch of messages costs
	// the batch, not the hold's whole scope.
	IDs []string
}

// Sort is an order of search hits.
type Sort string

// The orders of hits. Each field order breaks ties by the next key and
// finally by the message id, so that pages never overlap or skip;
// messages without the key (no valid Date:, no From: address) come last.
const (
	SortNewest   Sort = "newest"   // sent date, newest first (the default)
	SortOldest   Sort = "oldest"   // sent date, oldest first
	SortLargest  Sort = "largest"  // raw size, largest first
	SortSmallest Sort = "smallest" // raw size, smallest first
	SortSender   Sort = "sender"   // first From: address A to Z, then newest first
	// SortRelevance: best match first, by Bleve's score (TF-IDF over the
	// fields the query names: more of the query's words, more often, in
	// shorter fields scores higher). Pages by offset.
	SortRelevance Sort = "relevance"
)

// Sorts lists the orders, default first, for help texts and errors.
var Sorts = []Sort{SortNewest, SortOldest, SortLargest, SortSmallest, SortSender, SortRelevance}

// ParseSort returns the Sort named s ("" is SortNewest).
func ParseSort(s string) (Sort, error) {
	if s == "" {
		return SortNewest, nil
	}
	for _, o := range Sorts {
		if string(o) == s {
			return o, nil
		}
	}
	names := make([]string, len(Sorts))
	for i, o := range Sorts {
		names[i] = string(o)
	}
	return "", fmt.Errorf("unknown sort %q (known: %s)", s, strings.Join(names, ", "))
}

// sortKeys returns Bleve's sort of o; nil for relevance.
func sortKeys(o Sort) ([]string, error) {
	switch o {
	case SortNewest, "":
		return []string{"-" + fieldSortTime, "_id"}, nil
	case SortOldest:
		return []string{fieldSortTime, "_id"}, nil
	case SortLargest:
		return []string{"-" + fieldSortSize, "_id"}, nil
	case SortSmallest:
		return []string{fieldSortSize, "_id"}, nil
	case SortSender:
		return []string{fieldSender, "-" + fieldSortTime, "_id"}, nil
	case SortRelevance:
		return nil, nil
	}
	_, err := ParseSort(string(o))
	return nil, err
}

// Facets are counts over every message a search matched, not just a page.
type Facets struct {
	// Places counts messages per account and mailbox; a message in several
	// places counts in each.
	Places []PlaceCount
	// Months counts messages per month of their sent date ("2024-03"),
	// oldest first; messages without a date are not counted.
	Months []MonthCount
	// WithAttachments counts the messages that have at least one.
	WithAttachments int
	// Senders are the most frequent first From: addresses, most first.
	Senders []SenderCount
}

// SenderCount is a sender and how many matches are from them.
type SenderCount struct {
	Address string
	Count   int
}

// PlaceCount is one account and mailbox and how many matches it holds.
type PlaceCount struct {
	Account, Mailbox string
	Count            int
}

// MonthCount is one month and how many matches were sent in it.
type MonthCount struct {
	Month string // YYYY-MM
	Count int
}

// facetYears bounds the month facet: sent dates outside are not counted.
const facetFirstYear, facetLastYear = 1990, 2035

// dayFacetSize is more than the distinct days an index can hold (years
// 0000-9999), so that the day facet never leaves a day out.
const dayFacetSize = 10000 * 366

// Occurrence is where a hit lives.
type Occurrence struct {
	Account      string   `json:"account"`
	Mailbox      string   `json:"mailbox"`
	UIDValidity  uint32   `json:"uidvalidity"`
	UID          uint32   `json:"uid"`
	Flags        []string `json:"flags"`
	InternalDate string   `json:"internal_date,omitempty"`
	Expunged     string   `json:"expunged_at,omitempty"`
	URL          string   `json:"url"`
	Imported     bool     `json:"imported,omitempty"`
	// Stale marks an occurrence of an old epoch: the server renumbered the
	// mailbox (a new UIDVALIDITY), so URL no longer resolves there.
	Stale     bool      `json:"stale,omitempty"`
	FirstSeen time.Time `json:"-"`
	// Envelope is the SMTP envelope of a journaled copy (nil otherwise):
	// shown with the occurrence, so only to who may see the occurrence.
	Envelope *Envelope `json:"envelope,omitempty"`
}

// Hit is one message matching a search, with its occurrences in scope.
type Hit struct {
	SHA256      string
	Date        time.Time // zero when the message has no valid Date:
	From        string
	Subject     string
	Size        int64
	ParseError  string
	Score       float64
	Occurrences []Occurrence
}

// SearchResult is a page of hits.
type SearchResult struct {
	Total  uint64 // messages matching, over all pages
	Hits   []Hit
	Took   time.Duration
	Facets *Facets `json:",omitempty"` // with SearchOptions.Facets
	// After is the sort key of the last hit, for SearchOptions.After (date
	// order only).
	After []string `json:",omitempty"`
}

// Errors a searcher can fix by asking differently (callers classify them
// with errors.Is: a front door answers them as the caller's, not ours).
var (
	// ErrTooBroad: a search hit a deadline or a limit.
	ErrTooBroad = errors.New("narrow the search")
	// ErrNoMailbox: the account has no such mailbox in the archive.
	ErrNoMailbox = errors.New("no such mailbox")
	// ErrBadCursor: SearchOptions.After does not fit the sort (a cursor of
	// another sort, or edited).
	ErrBadCursor = errors.New("bad page position: pass the previous page's cursor as it is, with the same sort")
)

// maxTermExpansion caps how many terms a prefix query may expand to.
const maxTermExpansion = 10000

// Search runs q against the index and describes the hits from the catalog.
func (a *Archive) Search(ctx context.Context, q query.Node, opts *SearchOptions) (*SearchResult, error) {
	var o SearchOptions
	if opts != nil {
		o = *opts
	}
	if o.Limit <= 0 {
		o.Limit = 50
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.ByRelevance {
		o.Sort = SortRelevance
	}
	sortBy, err := sortKeys(o.Sort)
	if err != nil {
		return nil, err
	}
	if o.Offset < 0 {
		return nil, fmt.Errorf("search: offset %d is negative", o.Offset)
	}
	bq, scope, err := a.searchQuery(ctx, q, &o)
	if err != nil {
		return nil, err
	}
	req := bleve.NewSearchRequestOptions(bq, o.Limit, o.Offset, false)
	if sortBy != nil {
		a.sortBy(req, sortBy)
		if len(o.After) > 0 {
			if len(o.After) != len(sortBy) {
				return nil, fmt.Errorf("search: %w", ErrBadCursor)
			}
			req.From = 0
			req.SearchAfter = o.After
		}
	} else {
		// Best first; equal scores in id order, so that offset pages are
		// stable.
		req.SortBy([]string{"-_score", "_id"})
	}
	if o.Facets {
		req.AddFacet("place", bleve.NewFacetRequest(fieldPlace, 500))
		req.AddFacet("attachment", bleve.NewFacetRequest(query.IndexHasAttachment, 2))
		req.AddFacet("sender", bleve.NewFacetRequest(fieldSender, 10))
		// The timeline: a count per sent day, summed into months by facets.
		// Not numeric ranges, one per month: Bleve's range facet tries every
		// range for every hit (552 of them, 4.7 µs a hit, most of a search
		// page's time: docs/benchmarks.md), where a terms facet counts each
		// hit's one day key in a map.
		if a.oldMapping != "" {
			req.AddFacet("month", oldMonthFacet())
		} else {
			req.AddFacet("day", bleve.NewFacetRequest(fieldDayKey, dayFacetSize))
		}
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	ctx = context.WithValue(ctx, search.MaxTermSearchersKey, maxTermExpansion)
	var res *bleve.SearchResult
	err = a.withIndex(func(idx bleve.Index) error {
		var err error
		res, err = idx.SearchInContext(ctx, req)
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("search timed out after %s: %w", o.Timeout, ErrTooBroad)
		}
		return nil, fmt.Errorf("search: %w", err)
	}
	keys := make([][32]byte, 0, len(res.Hits))
	for _, h := range res.Hits {
		k, err := store.ParseKey(h.ID)
		if err != nil {
			return nil, fmt.Errorf("search: index holds a document with a bad id %q (run `mailvault reindex`)", h.ID)
		}
		keys = append(keys, k)
	}
	located, err := a.cat.Locate(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	out := &SearchResult{Total: res.Total, Took: res.Took}
	if n := len(res.Hits); n > 0 && sortBy != nil {
		out.After = res.Hits[n-1].Sort
	}
	if o.Facets {
		out.Facets = facets(res.Facets)
	}
	for i, h := range res.Hits {
		l := located[keys[i]]
		if l == nil {
			// The index is a cache and may be ahead of a restored catalog.
			a.log.Warn("index hit unknown to the catalog", "sha256", h.ID)
			continue
		}
		hit, ok := scope.hit(h.ID, l)
		if !ok {
			out.Total--
			continue
		}
		hit.Score = h.Score
		out.Hits = append(out.Hits, hit)
	}
	return out, nil
}

// searchScope is what a search's hits list of each message: its
// occurrences in the query's positive account: and mailbox: terms and in
// the search's narrowing (SearchOptions.Accounts, Mailboxes).
type searchScope struct{ accounts, mailboxes []string }

// occurrences are l's occurrences in scope; none means the message is
// not a hit (account:a mailbox:b matched a message that is in account a
// and in a mailbox b of another account, but not in a/b; the
// --account/--mailbox options use the exact place field).
func (sc searchScope) occurrences(l *catalog.Located) []Occurrence {
	var out []Occurrence
	for _, oc := range l.Occurrences {
		if len(sc.accounts) > 0 && !slices.Contains(sc.accounts, oc.Account) {
			continue
		}
		if len(sc.mailboxes) > 0 && !slices.Contains(sc.mailboxes, query.CanonicalMailbox(oc.Mailbox)) {
			continue
		}
		out = append(out, occurrence(oc))
	}
	return out
}

// hit is the Hit of message id, located l: false when none of its
// occurrences is in scope.
func (sc searchScope) hit(id string, l *catalog.Located) (Hit, bool) {
	h := Hit{SHA256: id, Date: l.Date, From: l.From, Subject: l.Subject, Size: l.Size,
		ParseError: l.ParseError, Occurrences: sc.occurrences(l)}
	return h, len(h.Occurrences) > 0
}

// searchQuery is the index query of a search: q with its flags scoped
// and the options' narrowing added as filters; the one place Search and
// Scan build it.
func (a *Archive) searchQuery(ctx context.Context, q query.Node, o *SearchOptions) (bleveq.Query, searchScope, error) {
	canon := make([]string, len(o.Mailboxes))
	for i, m := range o.Mailboxes {
		canon[i] = query.CanonicalMailbox(m)
	}
	scopeAccounts, scopeMailboxes := query.Scope(q)
	scopeAccounts = append(scopeAccounts, o.Accounts...)
	scopeMailboxes = append(scopeMailboxes, canon...)
	tq := q
	if (len(scopeAccounts) > 0 || len(scopeMailboxes) > 0) && hasFlag(q) {
		var err error
		if tq, err = a.scopeFlags(ctx, q, scopeAccounts, scopeMailboxes); err != nil {
			return nil, searchScope{}, fmt.Errorf("search: %w", err)
		}
	}
	bq, err := query.Bleve(tq)
	if err != nil {
		return nil, searchScope{}, err
	}
	var filters []bleveq.Query
	switch {
	case len(o.Accounts) > 0 && len(canon) > 0:
		var pairs []string
		for _, acct := range o.Accounts {
			for _, mb := range canon {
				pairs = append(pairs, placeKey(acct, mb))
			}
		}
		filters = append(filters, anyTerm(fieldPlace, pairs))
	case len(o.Accounts) > 0:
		filters = append(filters, anyTerm(query.IndexAccount, o.Accounts))
	case len(canon) > 0:
		filters = append(filters, anyTerm(query.IndexMailbox, canon))
	}
	if len(o.IDs) > 0 {
		filters = append(filters, bleveq.NewDocIDQuery(o.IDs))
	}
	if len(filters) > 0 {
		bq = bleveq.NewConjunctionQuery(append([]bleveq.Query{bq}, filters...))
	}
	return bq, searchScope{scopeAccounts, scopeMailboxes}, nil
}

// hasFlag reports whether n holds a Flag node (is:read, ...).
func hasFlag(n query.Node) bool {
	switch n := n.(type) {
	case query.Flag:
		return true
	case query.And:
		return slices.ContainsFunc(n.Nodes, hasFlag)
	case query.Or:
		return slices.ContainsFunc(n.Nodes, hasFlag)
	case query.Not:
		return hasFlag(n.Node)
	}
	return false
}

// scopeFlags writes each Flag of n as a FlagIn over the places of the
// archive in the search's scope: accounts and mailboxes are the same lists
// that choose which occurrences a hit lists (the query's positive account:
// and mailbox: terms, the caller's accounts, the search's narrowing), so
// that is:unread asks about exactly the copies the hit shows. A message
// unread in bob's INBOX and read in alice's is unread for a search in
// bob's account and read for one in alice's or in both (some copy in
// scope was read).
func (a *Archive) scopeFlags(ctx context.Context, n query.Node, accounts, mailboxes []string) (query.Node, error) {
	all, err := a.cat.AllMailboxes(ctx)
	if err != nil {
		return nil, err
	}
	var places []query.Place
	for _, p := range all {
		if len(accounts) > 0 && !slices.Contains(accounts, p.Account) {
			continue
		}
		if len(mailboxes) > 0 && !slices.Contains(mailboxes, query.CanonicalMailbox(p.Mailbox)) {
			continue
		}
		places = append(places, query.Place{Account: p.Account, Mailbox: p.Mailbox})
	}
	return query.Rewrite(n, func(n query.Node) query.Node {
		if f, ok := n.(query.Flag); ok {
			return query.FlagIn{Flag: f.Name, Places: places}
		}
		return n
	}), nil
}

// escapeAuthority percent-encodes everything but RFC 3986 unreserved
// characters, so an account name like "alice@example.org" or "bob:work" stays
// one authority instead of reading as user@host or host:port.
func escapeAuthority(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func anyTerm(field string, values []string) bleveq.Query {
	if len(values) == 0 {
		return nil
	}
	qs := make([]bleveq.Query, len(values))
	for i, v := range values {
		t := bleveq.NewTermQuery(v)
		t.SetField(field)
		qs[i] = t
	}
	return bleveq.NewDisjunctionQuery(qs)
}

func occurrence(o catalog.LocatedOccurrence) Occurrence {
	return Occurrence{
		Account: o.Account, Mailbox: o.Mailbox, UIDValidity: o.UIDValidity, UID: o.UID,
		Flags: o.Flags, InternalDate: o.InternalDate, Expunged: o.ExpungedAt,
		URL:      MessageURL(o.AccountURL, o.Account, o.Mailbox, o.UIDValidity, o.UID),
		Imported: o.Source == catalog.SourceImport,
		Stale:    o.Stale,
		Envelope: o.Envelope,
	}
}

// MessageURL returns the RFC 5092 IMAP URL of an occurrence:
// imap://user@host/Mailbox;UIDVALIDITY=v/;UID=u. accountURL is the account's
// "imap://user@host" base. Mail imported from files has no server to point at;
// it gets the same shape under the "mailvault" scheme with the account name as
// authority (mailvault://account/Mailbox;UIDVALIDITY=v/;UID=u), which names the
// occurrence in this archive unambiguously and which an IMAP client will not
// mistake for a server.
func MessageURL(accountURL, account, mailbox string, uidvalidity, uid uint32) string {
	base := strings.TrimSuffix(accountURL, "/")
	if base == "" {
		base = "mailvault://" + escapeAuthority(account)
	}
	segs := strings.Split(mailbox, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return fmt.Sprintf("%s/%s;UIDVALIDITY=%d/;UID=%d", base, strings.Join(segs, "/"), uidvalidity, uid)
}

// Message returns the message whose sha256 is hex (64 hex digits) with its
// occurrences, or ErrNoMessage.
func (a *Archive) Message(ctx context.Context, hex string) (*Hit, error) {
	k, err := store.ParseKey(hex)
	if err != nil {
		return nil, ErrNoMessage
	}
	found, err := a.cat.Locate(ctx, [][32]byte{k})
	if err != nil {
		return nil, err
	}
	l, ok := found[k]
	if !ok {
		return nil, ErrNoMessage
	}
	h := &Hit{SHA256: hex, Date: l.Date, From: l.From, Subject: l.Subject, Size: l.Size, ParseError: l.ParseError}
	for _, o := range l.Occurrences {
		h.Occurrences = append(h.Occurrences, occurrence(o))
	}
	return h, nil
}

// Raw returns the message's bytes exactly as archived.
func (a *Archive) Raw(hex string) ([]byte, error) {
	k, err := store.ParseKey(hex)
	if err != nil {
		return nil, ErrNoMessage
	}
	return a.readBlob(context.Background(), k)
}

// ErrNoMessage is returned for a message id the archive does not hold.
var ErrNoMessage = errors.New("no such message")

// facets turns Bleve's facet results into Facets.
func facets(fr search.FacetResults) *Facets {
	f := &Facets{}
	if p := fr["place"]; p != nil && p.Terms != nil {
		for _, t := range p.Terms.Terms() {
			acct, mb, _ := strings.Cut(t.Term, "\x00")
			f.Places = append(f.Places, PlaceCount{Account: acct, Mailbox: mb, Count: t.Count})
		}
	}
	if a := fr["attachment"]; a != nil && a.Terms != nil {
		for _, t := range a.Terms.Terms() {
			if t.Term == "T" {
				f.WithAttachments = t.Count
			}
		}
	}
	if sd := fr["sender"]; sd != nil && sd.Terms != nil {
		for _, t := range sd.Terms.Terms() {
			f.Senders = append(f.Senders, SenderCount{Address: t.Term, Count: t.Count})
		}
	}
	if d := fr["day"]; d != nil && d.Terms != nil {
		months := map[int]int{} // YYYYMM
		for _, t := range d.Terms.Terms() {
			day, err := strconv.Atoi(t.Term) // YYYYMMDD
			if err != nil {
				continue
			}
			if y := day / 10000; y >= facetFirstYear && y <= facetLastYear {
				months[day/100] += t.Count
			}
		}
		for m, n := range months {
			f.Months = append(f.Months, MonthCount{Month: fmt.Sprintf("%04d-%02d", m/100, m%100), Count: n})
		}
		slices.SortFunc(f.Months, func(a, b MonthCount) int { return strings.Compare(a.Month, b.Month) })
	}
	if m := fr["month"]; m != nil { // an older mapping's index (oldMonthFacet)
		for _, r := range m.NumericRanges {
			if r.Count > 0 {
				f.Months = append(f.Months, MonthCount{Month: r.Name, Count: r.Count})
			}
		}
		slices.SortFunc(f.Months, func(a, b MonthCount) int { return strings.Compare(a.Month, b.Month) })
	}
	return f
}

// Replies returns the sha256 of the messages that refer to Message-ID id
// (In-Reply-To or References), at most limit.
func (a *Archive) Replies(ctx context.Context, id string, limit int) ([]string, error) {
	if id == "" {
		return nil, nil
	}
	t := bleveq.NewTermQuery(id)
	t.SetField(fieldRefs)
	req := bleve.NewSearchRequestOptions(t, limit, 0, false)
	a.sortBy(req, []string{fieldSortTime, "_id"})
	var res *bleve.SearchResult
	err := a.withIndex(func(idx bleve.Index) error {
		var err error
		res, err = idx.SearchInContext(ctx, req)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("replies: %w", err)
	}
	out := make([]string, len(res.Hits))
	for i, h := range res.Hits {
		out[i] = h.ID
	}
	return out, nil
}
