package service

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"mailvault/indexer"
	"mailvault/query"
)

// Syntax is a query language.
type Syntax string

const (
	// SyntaxHuman is the archive's own language (query.ParseHuman).
	SyntaxHuman Syntax = "human"
	// SyntaxIMAP is IMAP SEARCH criteria (query.ParseIMAP), answered like
	// UID SEARCH in each mailbox in scope.
	SyntaxIMAP Syntax = "imap"
)

// MaxLimit is the most hits one page may hold.
const MaxLimit = 1000

// MaxQueryBytes bounds a query's text.
const MaxQueryBytes = 16 << 10

// SearchRequest is one search, in either syntax, over any set of accounts
// and mailboxes.
type SearchRequest struct {
	Query  string `json:"query"`
	Syntax Syntax `json:"syntax"` // "" is SyntaxHuman
	// Accounts and Mailboxes narrow the search (empty: everything the
	// caller may see). An account the caller may not see is ErrNotFound.
	Accounts  []string `json:"accounts,omitempty"`
	Mailboxes []string `json:"mailboxes,omitempty"`
	// Limit is the page size (default 50, at most MaxLimit); Offset skips.
	Limit  int `json:"limit,omitempty"`
	Offset int `json:"offset,omitempty"`
	// After continues a date-ordered human search after the hit whose sort
	// key this is (SearchResult.After), instead of Offset.
	After       []string `json:"after,omitempty"`
	ByRelevance bool     `json:"by_relevance,omitempty"`
	// Sort names the order: "" is the syntax's default (human: newest
	// first, or by score with ByRelevance; IMAP: the answer's own order,
	// mailbox by mailbox, UIDs ascending); otherwise one of indexer.Sorts:
	// newest (also "date"), oldest, largest, smallest, sender (first From:
	// address A to Z, then newest), relevance (by score; the IMAP syntax
	// has no scores and keeps its answer's order). It applies to both
	// syntaxes: the IMAP syntax sorts all its occurrences before the page
	// is cut.
	Sort string `json:"sort,omitempty"`
	// Facets asks for counts over all matches (human syntax).
	Facets bool `json:"facets,omitempty"`
	// IncludeExpunged searches the copies a server has expunged too (IMAP
	// syntax; the human syntax always includes them).
	IncludeExpunged bool `json:"include_expunged,omitempty"`
}

// Hit is one message and the occurrences of it the caller may see.
type Hit struct {
	SHA256      string               `json:"sha256"`
	Date        string               `json:"date"` // RFC 3339 in the message's own zone; "" without a valid Date:
	From        string               `json:"from"`
	Subject     string               `json:"subject"`
	Size        int64                `json:"size"`
	ParseError  string               `json:"parse_error,omitempty"`
	Occurrences []indexer.Occurrence `json:"occurrences"`
}

// MailboxAnswer is the answer of an IMAP-syntax search in one mailbox: what
// `UID SEARCH` would say, and how it was found.
type MailboxAnswer struct {
	Account     string           `json:"account"`
	Mailbox     string           `json:"mailbox"`
	UIDValidity uint32           `json:"uidvalidity"`
	UIDs        []uint32         `json:"uids"`
	Plan        indexer.IMAPPlan `json:"plan"`
}

// SearchResult is one page of a search.
type SearchResult struct {
	// Total counts matching messages (human syntax) or matching
	// occurrences (IMAP syntax), over all pages, within the caller's scope.
	Total uint64 `json:"total"`
	Hits  []Hit  `json:"hits"`
	// After is the sort key of the last hit (date-ordered human syntax),
	// for SearchRequest.After.
	After  []string        `json:"after,omitempty"`
	Facets *indexer.Facets `json:"facets,omitempty"`
	// Mailboxes holds, for the IMAP syntax, each mailbox's own answer.
	Mailboxes []MailboxAnswer `json:"mailboxes,omitempty"`
	Query     string          `json:"query"` // the query as understood
	Syntax    Syntax          `json:"syntax"`
	TookMS    float64         `json:"took_ms"`
}

// Parse parses a query in syntax (for a front door that wants the tree, to
// mark the words in snippets, say).
func Parse(syntax Syntax, q string) (query.Node, error) {
	var n query.Node
	var err error
	switch syntax {
	case SyntaxHuman, "":
		n, err = query.ParseHuman(q)
	case SyntaxIMAP:
		n, err = query.ParseIMAP(q)
	default:
		return nil, errorf(ErrBadRequest, "syntax %q: want human or imap", syntax)
	}
	if err != nil {
		return nil, errorf(ErrBadRequest, "%v", err)
	}
	return n, nil
}

// Search answers req for c. The caller's scope is applied before the query
// runs: accounts narrowed, account: and mailbox: terms rewritten (see
// Caller.restrict), so that totals, facets and hits count nothing c may not
// see. Every search is recorded in the audit trail.
func (s *Service) Search(ctx context.Context, c Caller, req SearchRequest) (*SearchResult, error) {
	return s.search(ctx, c, req, false)
}

// searchAll answers req with every hit at once (Limit, Offset and After are
// ignored), unaudited: for an export, which audits its scope itself.
func (s *Service) searchAll(ctx context.Context, c Caller, req SearchRequest) ([]Hit, error) {
	var hits []Hit
	err := s.eachHit(ctx, c, req, func(h Hit) error {
		hits = append(hits, h)
		return nil
	})
	return hits, err
}

// eachHit calls fn with every hit of req, unaudited (the caller audits
// what it does with them), in no particular order. A search in the human
// syntax is streamed from the index (indexer.Selection: no sort, one batch
// in memory), where paging it would sort every match again for each page;
// the IMAP syntax answers everything at once.
func (s *Service) eachHit(ctx context.Context, c Caller, req SearchRequest, fn func(Hit) error) error {
	if req.Syntax == "" || req.Syntax == SyntaxHuman {
		sel, err := s.selection(ctx, c, req)
		if err != nil {
			return err
		}
		err = sel.Each(ctx, func(batch []indexer.Hit) error {
			for _, ih := range batch {
				if h, ok := scopedHit(c, ih); ok {
					if err := fn(h); err != nil {
						return err
					}
				}
			}
			return nil
		})
		return classify(err)
	}
	req.Limit, req.Offset, req.After, req.Facets, req.ByRelevance, req.Sort = MaxLimit, 0, nil, false, false, ""
	res, err := s.search(ctx, c, req, true)
	if err != nil {
		return err
	}
	for _, h := range res.Hits {
		if err := fn(h); err != nil {
			return err
		}
	}
	return nil
}

// search is Search; all (searchAll) skips the audit row and, for the IMAP
// syntax, the page cut.
func (s *Service) search(ctx context.Context, c Caller, req SearchRequest, all bool) (*SearchResult, error) {
	begin := time.Now()
	if req.Syntax == "" {
		req.Syntax = SyntaxHuman
	}
	if req.Limit == 0 {
		req.Limit = 50
	}
	if req.Limit < 1 || req.Limit > MaxLimit {
		return nil, errorf(ErrBadRequest, "limit %d: want 1 to %d", req.Limit, MaxLimit)
	}
	if all && req.Syntax == SyntaxIMAP {
		req.Limit = math.MaxInt32
	}
	if req.Offset < 0 || req.Offset > maxOffset {
		return nil, errorf(ErrBadRequest, "offset %d: want 0 to %d (page by the cursor instead)", req.Offset, maxOffset)
	}
	if req.Sort == "date" {
		req.Sort = string(indexer.SortNewest)
	}
	sort, err := indexer.ParseSort(req.Sort)
	if err != nil {
		return nil, errorf(ErrBadRequest, "%v (date is newest)", err)
	}
	if req.ByRelevance {
		sort = indexer.SortRelevance
	}
	if req.Sort == "" && req.Syntax == SyntaxIMAP {
		sort = "" // the answer's own order
	}
	n, accounts, err := s.parseScoped(ctx, c, req)
	if err != nil {
		return nil, err
	}
	if !all {
		if err := s.audit(ctx, c, ActionSearch, searchScope(accounts, req.Mailboxes)+": "+string(req.Syntax)+": "+req.Query); err != nil {
			return nil, err
		}
	}
	var res *SearchResult
	if req.Syntax == SyntaxIMAP {
		res, err = s.searchIMAP(ctx, c, n, accounts, req, sort)
	} else {
		res, err = s.searchHuman(ctx, c, n, accounts, req, sort)
	}
	if err != nil {
		return nil, classify(err)
	}
	res.Query, res.Syntax = req.Query, req.Syntax
	res.TookMS = float64(time.Since(begin).Microseconds()) / 1000
	return res, nil
}

// parseScoped parses a search's query and resolves the accounts it may
// run in (c's, or those asked for that c sees; a denial is audited): the
// prelude of every search, paged (search) or streamed (an export's
// selection).
func (s *Service) parseScoped(ctx context.Context, c Caller, req SearchRequest) (query.Node, []string, error) {
	if len(req.Query) > MaxQueryBytes {
		return nil, nil, errorf(ErrBadRequest, "query of %d bytes: at most %d", len(req.Query), MaxQueryBytes)
	}
	n, err := Parse(req.Syntax, req.Query)
	if err != nil {
		return nil, nil, err
	}
	if req.Syntax == SyntaxHuman {
		// What the index cannot be asked (nesting too deep, say) is the
		// query's fault: say so before anything runs.
		if _, err := query.Bleve(n); err != nil {
			return nil, nil, errorf(ErrBadRequest, "%v", err)
		}
	}
	accounts, err := c.scopeAccounts(req.Accounts)
	if err != nil {
		return nil, nil, s.denied(ctx, c, "search", fmt.Sprintf("accounts %v: %s", req.Accounts, req.Query), err)
	}
	return n, accounts, nil
}

// maxOffset bounds offset paging: past it, a page costs a sort of that many
// hits; the cursor (After) pages deep at the cost of the first page.
const maxOffset = 100_000

// classify turns the archive's caller-fixable errors into ErrBadRequest.
func classify(err error) error {
	if errors.Is(err, indexer.ErrTooBroad) || errors.Is(err, indexer.ErrNoMailbox) || errors.Is(err, indexer.ErrBadCursor) {
		return errorf(ErrBadRequest, "%v", err)
	}
	return err
}

func (s *Service) searchHuman(ctx context.Context, c Caller, n query.Node, accounts []string, req SearchRequest, sort indexer.Sort) (*SearchResult, error) {
	o := &indexer.SearchOptions{Accounts: accounts, Mailboxes: req.Mailboxes, Limit: req.Limit, Offset: req.Offset,
		Sort: sort, Facets: req.Facets}
	if sort != indexer.SortRelevance && len(req.After) > 0 {
		o.Offset, o.After = 0, req.After // the indexer checks that it fits the sort (ErrBadCursor)
	}
	r, err := s.a.Search(ctx, c.restrict(n), o)
	if err != nil {
		return nil, err
	}
	out := &SearchResult{Total: r.Total, Hits: make([]Hit, 0, len(r.Hits)), After: r.After, Facets: r.Facets}
	for _, h := range r.Hits {
		if hit, ok := scopedHit(c, h); ok {
			out.Hits = append(out.Hits, hit)
		}
	}
	if f := out.Facets; f != nil {
		f.Places = slices.DeleteFunc(f.Places, func(p indexer.PlaceCount) bool { return !c.Sees(p.Account) })
	}
	return out, nil
}

// imapAnswer is an IMAP-syntax search's whole answer (every mailbox's
// UIDs and every hit, sorted), before the page is cut. An IMAP search has
// no cursor: each page of the answer would run the whole search again (22
// times for the 22,000 hits of one word over a 200,000-message account, a
// CLI --json listing). So the service keeps the last whole answer, for
// the same caller, request and sort, while the archive's generation is
// unchanged (no message, flag or expunge recorded since: the answer is
// the same), and pages from it. One answer, of at most maxCachedIMAPHits
// hits: memory stays bounded.
type imapAnswer struct {
	key       string
	gen       int64
	mailboxes []MailboxAnswer
	hits      []Hit
}

const maxCachedIMAPHits = 100_000

func imapAnswerKey(c Caller, req SearchRequest, sort indexer.Sort, accounts []string) string {
	return fmt.Sprintf("%q %q %q %q %q %q %v %q", c.Name, c.Role, c.Accounts, accounts, req.Mailboxes, req.Query, req.IncludeExpunged, sort)
}

func (s *Service) searchIMAP(ctx context.Context, c Caller, n query.Node, accounts []string, req SearchRequest, sort indexer.Sort) (*SearchResult, error) {
	key, gen := imapAnswerKey(c, req, sort, accounts), s.a.Generation()
	s.imapMu.Lock()
	last := s.imapLast
	s.imapMu.Unlock()
	if last == nil || last.key != key || last.gen != gen {
		ans, err := s.imapAnswer(ctx, c, n, accounts, req, sort)
		if err != nil {
			return nil, err
		}
		ans.key, ans.gen = key, gen
		last = ans
		// Keys answered by the index (the human syntax inside IMAP) are
		// not cached: the index catches up with the catalog after it, and
		// the generation counts the catalog's writes.
		if len(ans.hits) <= maxCachedIMAPHits && !slices.ContainsFunc(ans.mailboxes, func(m MailboxAnswer) bool { return m.Plan.IndexKeys > 0 }) {
			s.imapMu.Lock()
			s.imapLast = ans
			s.imapMu.Unlock()
		}
	}
	out := &SearchResult{Hits: []Hit{}, Mailboxes: last.mailboxes, Total: uint64(len(last.hits))}
	if req.Offset < len(last.hits) {
		out.Hits = last.hits[req.Offset:min(len(last.hits), req.Offset+req.Limit)]
	}
	return out, nil
}

// imapAnswer computes an IMAP-syntax search's whole answer.
func (s *Service) imapAnswer(ctx context.Context, c Caller, n query.Node, accounts []string, req SearchRequest, sort indexer.Sort) (*imapAnswer, error) {
	all, err := s.a.Mailboxes(ctx)
	if err != nil {
		return nil, err
	}
	out := &SearchResult{Hits: []Hit{}}
	var hits []Hit
	for _, mb := range all {
		if accounts != nil && !slices.Contains(accounts, mb.Account) || !c.Sees(mb.Account) ||
			len(req.Mailboxes) > 0 && !slices.ContainsFunc(req.Mailboxes, func(m string) bool {
				return query.CanonicalMailbox(m) == query.CanonicalMailbox(mb.Mailbox)
			}) {
			continue
		}
		r, err := s.a.SearchIMAP(ctx, mb.Account, mb.Mailbox, n, &indexer.IMAPSearchOptions{IncludeExpunged: req.IncludeExpunged})
		if err != nil {
			return nil, err
		}
		out.Mailboxes = append(out.Mailboxes, MailboxAnswer{Account: r.Account, Mailbox: r.Mailbox,
			UIDValidity: r.UIDValidity, UIDs: r.UIDs, Plan: r.Plan})
		for _, h := range r.Hits {
			flags := strings.Fields(h.Flags)
			if flags == nil {
				flags = []string{}
			}
			hits = append(hits, Hit{SHA256: fmt.Sprintf("%x", h.SHA256), Date: h.Date, From: h.From, Subject: h.Subject,
				Size: h.Size, ParseError: h.ParseError,
				Occurrences: []indexer.Occurrence{{Account: r.Account, Mailbox: r.Mailbox, UIDValidity: r.UIDValidity, UID: h.UID,
					Flags: flags, Expunged: h.Expunged,
					URL: indexer.MessageURL(r.AccountURL, r.Account, r.Mailbox, r.UIDValidity, h.UID)}}})
		}
	}
	if len(out.Mailboxes) == 0 {
		return nil, errorf(ErrNotFound, "no mailbox in the archive matches accounts %v and mailboxes %v (`mailvault status` lists them)", req.Accounts, req.Mailboxes)
	}
	sortHits(hits, sort)
	return &imapAnswer{mailboxes: out.Mailboxes, hits: hits}, nil
}

// sortHits orders the hits of an IMAP-syntax search (all of them, before
// the page is cut) as the index orders a human search's: by sent date as
// an instant (the dates are RFC 3339 in each message's own zone), size or
// the first From: address (then newest); hits without the key come last,
// and equal keys keep the answer's order (mailbox, UID). "" and relevance
// keep the answer's order: IMAP SEARCH has no scores.
func sortHits(hits []Hit, sort indexer.Sort) {
	at := make(map[string]int64, len(hits))
	for _, h := range hits {
		if t, err := time.Parse(time.RFC3339, h.Date); err == nil {
			at[h.Date] = t.Unix()
		}
	}
	// byDate compares newest first (desc) or oldest first, missing last.
	byDate := func(x, y Hit, desc bool) int {
		tx, okx := at[x.Date]
		ty, oky := at[y.Date]
		switch {
		case okx && oky && desc:
			return cmp.Compare(ty, tx)
		case okx && oky:
			return cmp.Compare(tx, ty)
		case okx:
			return -1
		case oky:
			return 1
		}
		return 0
	}
	var key func(x, y Hit) int
	switch sort {
	case indexer.SortNewest, indexer.SortOldest:
		key = func(x, y Hit) int { return byDate(x, y, sort == indexer.SortNewest) }
	case indexer.SortLargest:
		key = func(x, y Hit) int { return cmp.Compare(y.Size, x.Size) }
	case indexer.SortSmallest:
		key = func(x, y Hit) int { return cmp.Compare(x.Size, y.Size) }
	case indexer.SortSender:
		key = func(x, y Hit) int {
			sx, sy := senderKey(x.From), senderKey(y.From)
			switch {
			case sx == sy:
				return byDate(x, y, true)
			case sx == "":
				return 1
			case sy == "":
				return -1
			}
			return strings.Compare(sx, sy)
		}
	default:
		return
	}
	slices.SortStableFunc(hits, key)
}

// senderKey is the sender sort key of a From: as the catalog lists it
// ("Name <addr>" or "addr"): the address in lower case, as the index's
// sender field holds it.
func senderKey(from string) string {
	if i := strings.LastIndexByte(from, '<'); i >= 0 && strings.HasSuffix(from, ">") {
		from = from[i+1 : len(from)-1]
	}
	return strings.ToLower(strings.TrimSpace(from))
}

// scopedHit keeps the occurrences of h that c may see; ok is false when
// none is left.
func scopedHit(c Caller, h indexer.Hit) (Hit, bool) {
	out := Hit{SHA256: h.SHA256, From: h.From, Subject: h.Subject, Size: h.Size, ParseError: h.ParseError,
		Occurrences: []indexer.Occurrence{}}
	if !h.Date.IsZero() {
		out.Date = h.Date.Format(time.RFC3339)
	}
	for _, o := range h.Occurrences {
		if c.Sees(o.Account) {
			if o.Flags == nil {
				o.Flags = []string{}
			}
			out.Occurrences = append(out.Occurrences, o)
		}
	}
	return out, len(out.Occurrences) > 0
}

// searchScope is the scope a search ran in, for its audit row: the
// accounts (the caller's, or those asked for) and the mailboxes asked for.
// The query follows it in the row, last, so that no query text can pass
// for a scope.
func searchScope(accounts, mailboxes []string) string {
	scope := "in all accounts"
	if accounts != nil {
		scope = "in accounts " + strings.Join(accounts, ",")
	}
	if len(mailboxes) > 0 {
		scope += " mailboxes " + strings.Join(mailboxes, ",")
	}
	// Bounded on its own, so that a long list of mailboxes cannot push
	// the query out of the row (the hostile review's F11): a longer scope
	// is cut and named by its sha256.
	return clip(scope, maxScopeAudit)
}

// maxScopeAudit bounds the scope part of a search's audit row; the query
// keeps the rest of auditText's room.
const maxScopeAudit = 600
