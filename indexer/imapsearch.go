package indexer

import (
	"cmp"
	"container/list"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"mailvault/indexer/catalog"
	"mailvault/indexer/mime"
	"mailvault/indexer/store"
	"mailvault/query"
)

// IMAP SEARCH execution. The answer is what `UID SEARCH` would give for one
// mailbox as of the archive's last sync: the UIDs of the messages still on
// the server (not expunged) that match.
//
// Plan: the occurrences of the mailbox's current epoch come from the
// catalog with their UID, flags, INTERNALDATE, size and the Date: header's
// day, so occurrence keys (UID, sequence numbers, flags, keywords, dates,
// sizes) cost no message reads. Content keys (FROM ... TEXT, HEADER) are
// first narrowed by the prefilter on disk (ngram.go: a trigram signature
// per message, built at ingest from the same folded mime.View): one pass
// over the mailbox's signatures, before the evaluation, marks for each
// content key the messages that may hold its string. A message the
// prefilter rules out for a key makes that key false without a read; the
// others are verified against the decoded, case-folded message (mime.View),
// built from the blob and kept in a cache bounded by bytes (viewCache, 64
// MB, whatever the mailbox size: nothing per mailbox pins decoded views).
// AND, OR and NOT are evaluated per message after that, cheap keys first;
// the prefilter only answers "false" for a positive key that is false, so
// NOT and OR are exact. Keys the prefilter cannot narrow are verified on
// every message they reach, as before it: a string of fewer than 3 bytes
// once folded (BODY "ab"), HEADER name "" (presence), a message whose
// signature is missing, torn or of other content (unknown: a candidate),
// and every key when the archive has no usable signature file or
// IMAPSearchOptions.NoPrefilter is set. A message decoded because its
// signature was unknown gets one then (the backfill of archives made
// before the prefilter). Keys of the human syntax (words, phrases,
// has:attachment) are answered by the Bleve index for the mailbox, once
// per query.

// IMAPSearchOptions bound one SearchIMAP.
type IMAPSearchOptions struct {
	// Timeout is the search's deadline (default 10 s).
	Timeout time.Duration
	// MaxVerify caps the messages whose content is read to verify a content
	// key (default 200,000); a search that would read more fails.
	MaxVerify int
	// IncludeExpunged searches the copies the server has expunged too (an
	// archive keeps them); UIDs of both kinds are returned.
	IncludeExpunged bool
	// UIDValidity, when not 0, searches that epoch of the mailbox (the
	// copies archived under an earlier UIDVALIDITY) instead of the current
	// one: a legal hold's IMAP query covers every epoch (service/holds.go).
	UIDValidity uint32
	// NoPrefilter verifies content keys on every message, without the
	// signatures (tests compare the two; --explain can show the cost).
	NoPrefilter bool
}

// IMAPResult is the answer of SearchIMAP.
type IMAPResult struct {
	Account     string
	Mailbox     string
	UIDValidity uint32
	AccountURL  string
	UIDs        []uint32
	Hits        []*catalog.MailboxOccurrence // the matching occurrences, in UID order; shared, read-only
	Plan        IMAPPlan
}

// IMAPPlan says how a search was answered, for --explain.
type IMAPPlan struct {
	Messages      int           // occurrences in scope
	ContentKeys   int           // content keys in the query (verified per message)
	OccurrenceKey int           // keys answered from the catalog
	IndexKeys     int           // keys answered by the Bleve index
	Verified      int           // messages whose decoded content was examined (at most one read each)
	CacheHits     int           // of those, found decoded in the cache
	Prefiltered   int           // content keys with a usable signature pass (0: all scanned)
	RuledOut      int           // (message, key) tests the signatures answered false without a read
	Unknown       int           // messages without a usable signature (verified when reached)
	ColumnHits    int           // (message, key) tests a header column answered without a view (imapcolumns.go)
	Took          time.Duration // wall time
}

// SearchIMAP answers n, parsed by query.ParseIMAP (or query.ParseHuman),
// for account's mailbox.
func (a *Archive) SearchIMAP(ctx context.Context, account, mailbox string, n query.Node, opts *IMAPSearchOptions) (res *IMAPResult, err error) {
	begin := time.Now()
	defer func() {
		if err != nil && errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, ErrTooBroad) {
			res, err = nil, fmt.Errorf("search: no answer within the deadline of %v (%w): %w", time.Since(begin).Round(time.Millisecond), ErrTooBroad, err)
		}
	}()
	var o IMAPSearchOptions
	if opts != nil {
		o = *opts
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.MaxVerify <= 0 {
		o.MaxVerify = 200_000
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	mb, err := a.mailbox(ctx, account, query.CanonicalMailbox(mailbox))
	if errors.Is(err, catalog.ErrNotFound) {
		return nil, fmt.Errorf("search: account %q has no mailbox %q in the archive (`mailvault status` lists them): %w", account, mailbox, ErrNoMailbox)
	}
	if err != nil {
		return nil, err
	}
	if o.UIDValidity != 0 {
		mb.UIDValidity = o.UIDValidity
	}
	entry, err := a.mailboxOccurrences(ctx, mb, o.IncludeExpunged)
	if err != nil {
		return nil, err
	}
	occs := entry.occs
	ev := &imapEval{a: a, ctx: ctx, opts: o, account: account, mailbox: mb.Name, occs: occs, cols: &entry.cols, epoch: -1}
	ev.countKeys(n)
	ev.plan.Messages = len(occs)
	for i := range occs {
		if occs[i].UID > ev.maxUID {
			ev.maxUID = occs[i].UID
		}
		if occs[i].Expunged == "" {
			ev.live++
		}
	}
	ev.shared = &imapShared{}
	if _, err := ev.compile(n); err != nil {
		return nil, err
	}
	if err := ev.prefilter(); err != nil {
		return nil, err
	}
	// The evaluation runs on contiguous ranges of the mailbox in parallel
	// when content keys will decode messages (the decode is the cost of a
	// first search: 2 cores halve it); each range has its own evaluator and
	// compiled predicates over the shared prefilter bits, caches and
	// counters, and the answers are joined in UID order.
	parts := 1
	if ev.plan.ContentKeys > 0 && len(occs) >= 256 {
		parts = min(runtime.GOMAXPROCS(0), 4)
	}
	type part struct {
		ev   *imapEval
		uids []uint32
		hits []*catalog.MailboxOccurrence
		err  error
	}
	ps := make([]part, parts)
	var wg sync.WaitGroup
	var stop atomic.Bool
	seq := uint32(0)
	for p := range ps {
		lo, hi := p*len(occs)/parts, (p+1)*len(occs)/parts
		w := ev.fork()
		match, err := w.compile(n)
		if err != nil {
			return nil, err
		}
		ps[p].ev = w
		first := seq
		for i := lo; i < hi; i++ {
			if occs[i].Expunged == "" {
				seq++
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			pp := &ps[p]
			seq := first
			for i := lo; i < hi; i++ {
				if (i-lo)%256 == 0 {
					if err := ctx.Err(); err != nil {
						pp.err = fmt.Errorf("search: stopped after %v with %d of %d messages examined (%w); %w", o.Timeout, i-lo, hi-lo, err, ErrTooBroad)
						return
					}
					if stop.Load() {
						return
					}
				}
				oc := &occs[i]
				w.at = i
				if oc.Expunged == "" {
					seq++
					w.seq = seq
				} else {
					w.seq = 0
				}
				ok, err := match(oc)
				if err != nil {
					pp.err = err
					stop.Store(true)
					return
				}
				if ok {
					pp.uids = append(pp.uids, oc.UID)
					pp.hits = append(pp.hits, oc)
				}
			}
		}()
	}
	wg.Wait()
	res = &IMAPResult{Account: account, Mailbox: mb.Name, UIDValidity: mb.UIDValidity, AccountURL: mb.AccountURL,
		UIDs: make([]uint32, 0, 64)}
	res.Plan = ev.plan
	for p := range ps {
		if ps[p].err != nil {
			return nil, ps[p].err
		}
		res.UIDs = append(res.UIDs, ps[p].uids...)
		res.Hits = append(res.Hits, ps[p].hits...)
		res.Plan.Verified += ps[p].ev.plan.Verified
		res.Plan.CacheHits += ps[p].ev.plan.CacheHits
		res.Plan.RuledOut += ps[p].ev.plan.RuledOut
		res.Plan.ColumnHits += ps[p].ev.plan.ColumnHits
	}
	res.Plan.Took = time.Since(begin)
	a.completeColumns(entry, ev.shared.columns)
	return res, nil
}

// imapShared is what the evaluators of one search share: the human-syntax
// keys' answers (computed once, under mu) and the count of messages read,
// for MaxVerify.
type imapShared struct {
	mu       sync.Mutex
	index    map[query.Node]map[string]bool
	verified atomic.Int64
	needleOf []int     // e.needle's answers in the first compile, in call order (forks read them)
	columns  []*column // the header columns the first compile used
}

// fork returns an evaluator for another range of the same search: the
// same occurrences, prefilter bits and shared state, its own position and
// plan counters. Its predicates must be compiled again (they close over
// it); compile registers the needles in the same order, so needle k is
// the same key in every evaluator.
func (e *imapEval) fork() *imapEval {
	return &imapEval{a: e.a, ctx: e.ctx, opts: e.opts, account: e.account, mailbox: e.mailbox, occs: e.occs, cols: e.cols,
		maxUID: e.maxUID, live: e.live, shared: e.shared, maybe: e.maybe, unknown: e.unknown, epoch: e.epoch, forked: true}
}

// imapEval evaluates one query over the occurrences of one mailbox.
type imapEval struct {
	a       *Archive
	ctx     context.Context
	opts    IMAPSearchOptions
	account string
	mailbox string
	occs    []catalog.MailboxOccurrence
	cols    *columns // the header columns of occs' cache entry (imapcolumns.go)
	maxUID  uint32
	live    uint32
	seq     uint32                         // sequence number of the occurrence being evaluated (0: expunged)
	at      int                            // index in occs of the occurrence being evaluated
	shared  *imapShared                    // what the evaluators of this search share
	index   map[query.Node]map[string]bool // this evaluator's copy of shared.index
	forked  bool                           // a second evaluator (fork): its compile registers no new needles
	plan    IMAPPlan

	// The prefilter (ngram.go): needles[k] is content key k's test; after
	// the pass, maybe[k] has bit i set when occs[i] may match key k, and
	// unknown bit i when occs[i] had no usable signature. epoch is the
	// signature file's disposal count before the pass (-1: no pass).
	needles []*sigNeedle
	nforked int // needles registered by a fork's compile
	maybe   [][]uint64
	unknown []uint64
	epoch   int64
}

func (e *imapEval) countKeys(n query.Node) {
	switch n := n.(type) {
	case query.And:
		for _, c := range n.Nodes {
			e.countKeys(c)
		}
	case query.Or:
		for _, c := range n.Nodes {
			e.countKeys(c)
		}
	case query.Not:
		e.countKeys(n.Node)
	case query.Text:
		if n.Match == query.MatchSubstring {
			e.plan.ContentKeys++
		} else {
			e.plan.IndexKeys++
		}
	case query.Header:
		e.plan.ContentKeys++
	case query.HasAttachment:
		e.plan.IndexKeys++
	case query.All:
	default:
		e.plan.OccurrenceKey++
	}
}

// cost orders the keys of an AND: occurrence keys first, then index keys,
// then content keys (which read the message).
func cost(n query.Node) int {
	switch n := n.(type) {
	case query.Text:
		if n.Match == query.MatchSubstring {
			return 2
		}
		return 1
	case query.Header:
		return 2
	case query.HasAttachment:
		return 1
	case query.And:
		c := 0
		for _, x := range n.Nodes {
			c = max(c, cost(x))
		}
		return c
	case query.Or:
		c := 0
		for _, x := range n.Nodes {
			c = max(c, cost(x))
		}
		return c
	case query.Not:
		return cost(n.Node)
	}
	return 0
}

// pred is a compiled key: does the occurrence match?
type pred func(oc *catalog.MailboxOccurrence) (bool, error)

// compile turns n into a predicate once per query: AND and OR members
// sorted cheap first, needles folded, days formatted.
func (e *imapEval) compile(n query.Node) (pred, error) {
	switch n := n.(type) {
	case query.All:
		return func(*catalog.MailboxOccurrence) (bool, error) { return true, nil }, nil
	case query.And, query.Or:
		var nodes []query.Node
		isAnd := false
		if and, ok := n.(query.And); ok {
			nodes, isAnd = slices.Clone(and.Nodes), true
		} else {
			nodes = slices.Clone(n.(query.Or).Nodes)
		}
		slices.SortStableFunc(nodes, func(x, y query.Node) int { return cost(x) - cost(y) })
		preds := make([]pred, len(nodes))
		for i, c := range nodes {
			p, err := e.compile(c)
			if err != nil {
				return nil, err
			}
			preds[i] = p
		}
		if isAnd {
			return func(oc *catalog.MailboxOccurrence) (bool, error) {
				for _, p := range preds {
					if ok, err := p(oc); err != nil || !ok {
						return false, err
					}
				}
				return true, nil
			}, nil
		}
		return func(oc *catalog.MailboxOccurrence) (bool, error) {
			for _, p := range preds {
				if ok, err := p(oc); err != nil || ok {
					return ok, err
				}
			}
			return false, nil
		}, nil
	case query.Not:
		p, err := e.compile(n.Node)
		if err != nil {
			return nil, err
		}
		return func(oc *catalog.MailboxOccurrence) (bool, error) {
			ok, err := p(oc)
			return !ok, err
		}, nil
	case query.Flag:
		name := n.Name
		return func(oc *catalog.MailboxOccurrence) (bool, error) {
			for f := range strings.FieldsSeq(oc.Flags) {
				if strings.EqualFold(f, name) {
					return true, nil
				}
			}
			return false, nil
		}, nil
	case query.Recent:
		return func(*catalog.MailboxOccurrence) (bool, error) { return false, nil }, nil
	case query.UIDs:
		return func(oc *catalog.MailboxOccurrence) (bool, error) {
			for _, r := range n.Set {
				if r.Contains(oc.UID, e.maxUID) {
					return true, nil
				}
			}
			return false, nil
		}, nil
	case query.Seqs:
		set := seqSet(n.Set, e.live)
		return func(oc *catalog.MailboxOccurrence) (bool, error) {
			if e.seq == 0 {
				return false, nil
			}
			for _, r := range set {
				if e.seq >= r[0] && e.seq <= r[1] {
					return true, nil
				}
			}
			return false, nil
		}, nil
	case query.Size:
		return func(oc *catalog.MailboxOccurrence) (bool, error) {
			if n.Larger {
				return oc.Size > n.Bytes, nil
			}
			return oc.Size < n.Bytes, nil
		}, nil
	case query.Date:
		want := fmt.Sprintf("%04d-%02d-%02d", n.Year, n.Month, n.Day)
		return func(oc *catalog.MailboxOccurrence) (bool, error) {
			day := oc.SentDay
			if n.Internal {
				day = oc.InternalDay
			}
			if day == "" {
				return false, nil
			}
			switch n.Op {
			case query.DateBefore:
				return day < want, nil
			case query.DateOn:
				return day == want, nil
			default:
				return day >= want, nil
			}
		}, nil
	case query.Account:
		ok := n.Name == e.account
		return func(*catalog.MailboxOccurrence) (bool, error) { return ok, nil }, nil
	case query.Mailbox:
		ok := query.CanonicalMailbox(n.Name) == e.mailbox
		return func(*catalog.MailboxOccurrence) (bool, error) { return ok, nil }, nil
	case query.Text:
		if n.Match != query.MatchSubstring {
			return func(oc *catalog.MailboxOccurrence) (bool, error) { return e.indexed(n, oc) }, nil
		}
		needle := mime.Fold(n.Value)
		var col *column // header fields only (imapcolumns.go)
		key, ok := columnKey(n.Field)
		if ok {
			col = e.column(key, needle)
		}
		k := e.needle(needle, col.complete(), textRegions(n.Field)...)
		return func(oc *catalog.MailboxOccurrence) (bool, error) {
			if e.ruledOut(k) {
				return false, nil
			}
			if m, known := col.match(e.at, needle); known {
				e.plan.ColumnHits++
				return m, nil
			}
			v, err := e.view(oc)
			if err != nil {
				return false, err
			}
			if col != nil {
				col.keep(e.at, joinedValues(v, key))
			}
			return textMatch(v, n.Field, needle), nil
		}, nil
	case query.Header:
		needle := mime.Fold(n.Value)
		key := "h:" + n.Name
		col := e.column(key, needle)
		k := e.needle(needle, col.complete(), regionHeader)
		return func(oc *catalog.MailboxOccurrence) (bool, error) {
			if e.ruledOut(k) {
				return false, nil
			}
			if m, known := col.match(e.at, needle); known {
				e.plan.ColumnHits++
				return m, nil
			}
			v, err := e.view(oc)
			if err != nil {
				return false, err
			}
			if col != nil {
				col.keep(e.at, joinedValues(v, key))
			}
			for _, h := range v.Headers {
				if strings.EqualFold(h.Key, n.Name) && strings.Contains(h.Value, needle) {
					return true, nil
				}
			}
			return false, nil
		}, nil
	case query.HasAttachment:
		return func(oc *catalog.MailboxOccurrence) (bool, error) { return e.indexed(n, oc) }, nil
	}
	return nil, fmt.Errorf("search: %T is not supported here", n)
}

// seqSet resolves a message sequence set as Dovecot does (found by the
// generated queries, issue 13): "*" is infinity, a:b and b:a are the same
// range, overlapping ranges merge, a range that is "*" alone (or "*:*")
// after merging is the last message, and everything is then cut at count.
// So with 12 messages "13:*" and "*:13" hold nothing, "12:*" holds 12, "*"
// holds 12, and "12:*,*" nothing with 10 messages (the "*" merged into
// 12:*). UID sets differ: "UID 13:*" holds the largest UID (RFC 9051), as
// UIDRange.Contains has it.
func seqSet(set []query.UIDRange, count uint32) [][2]uint32 {
	const inf = ^uint32(0)
	rs := make([][2]uint32, 0, len(set))
	for _, r := range set {
		lo, hi := r.Start, r.Stop
		if lo == 0 {
			lo = inf
		}
		if hi == 0 {
			hi = inf
		}
		if lo > hi {
			lo, hi = hi, lo
		}
		rs = append(rs, [2]uint32{lo, hi})
	}
	slices.SortFunc(rs, func(a, b [2]uint32) int { return int(int64(a[0]) - int64(b[0])) })
	var merged [][2]uint32
	for _, r := range rs {
		if k := len(merged) - 1; k >= 0 && r[0] <= merged[k][1] {
			merged[k][1] = max(merged[k][1], r[1])
			continue
		}
		merged = append(merged, r)
	}
	out := merged[:0]
	for _, r := range merged {
		if r[0] == inf {
			r = [2]uint32{count, count}
		}
		r[1] = min(r[1], count)
		if r[0] <= r[1] && r[0] > 0 {
			out = append(out, r)
		}
	}
	return out
}

// textMatch tests a folded needle against a field of v.
func textMatch(v *mime.View, f query.Field, needle string) bool {
	address := func(name string) bool {
		for _, h := range v.Addresses {
			if strings.EqualFold(h.Key, name) && strings.Contains(h.Value, needle) {
				return true
			}
		}
		return false
	}
	switch f {
	case query.FieldFrom:
		return address("From")
	case query.FieldTo:
		return address("To")
	case query.FieldCc:
		return address("Cc")
	case query.FieldBcc:
		return address("Bcc")
	case query.FieldSubject:
		for _, s := range v.Subjects {
			if strings.Contains(s, needle) {
				return true
			}
		}
		return false
	case query.FieldBody:
		return strings.Contains(v.Body, needle)
	default: // FieldText
		return v.TextContains(needle)
	}
}

// textRegions are the signature regions a string key searches (ngram.go):
// TEXT is the header block or the body (a match never spans the two).
func textRegions(f query.Field) []sigRegion {
	switch f {
	case query.FieldFrom:
		return []sigRegion{regionFrom}
	case query.FieldTo, query.FieldCc, query.FieldBcc:
		return []sigRegion{regionRcpt}
	case query.FieldSubject:
		return []sigRegion{regionSubject}
	case query.FieldBody:
		return []sigRegion{regionBody}
	default: // FieldText
		return []sigRegion{regionHeader, regionBody}
	}
}

// needle registers a content key's folded needle with the prefilter and
// returns its number, or -1 when the prefilter cannot narrow it or is not
// needed (complete: the key's column answers every message).
func (e *imapEval) needle(folded string, complete bool, regions ...sigRegion) int {
	if e.opts.NoPrefilter || e.a.sigs == nil {
		return -1
	}
	if len(folded) < 3 {
		return -1
	}
	if e.forked {
		// What the first evaluator's compile decided, in its order.
		e.nforked++
		return e.shared.needleOf[e.nforked-1]
	}
	// A key whose column knows every message does not need the pass
	// (imapcolumns.go): reading the column is cheaper than the signatures.
	k := -1
	if !complete {
		e.needles = append(e.needles, newSigNeedle(folded, regions...))
		k = len(e.needles) - 1
	}
	e.shared.needleOf = append(e.shared.needleOf, k)
	return k
}

// ruledOut reports whether the prefilter says the occurrence being
// evaluated cannot match content key k.
func (e *imapEval) ruledOut(k int) bool {
	if k < 0 || e.maybe == nil || e.maybe[k][e.at>>6]&(1<<(e.at&63)) != 0 {
		return false
	}
	e.plan.RuledOut++
	return true
}

// prefilter is the one pass over the mailbox's signatures, in row id order
// (the file's order), a run of slots per read: memory is one bit per
// occurrence and key plus a read buffer, whatever the mailbox size.
func (e *imapEval) prefilter() error {
	if len(e.needles) == 0 || len(e.occs) == 0 {
		return nil
	}
	e.epoch = int64(e.a.sigs.epoch())
	words := (len(e.occs) + 63) / 64
	e.maybe = make([][]uint64, len(e.needles))
	for k := range e.maybe {
		e.maybe[k] = make([]uint64, words)
	}
	e.unknown = make([]uint64, words)
	order := make([]int, len(e.occs))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(x, y int) int { return cmp.Compare(e.occs[x].MessageID, e.occs[y].MessageID) })
	ids := make([]int64, len(order))
	for j, i := range order {
		ids[j] = e.occs[i].MessageID
	}
	sha := func(j int) [32]byte { return e.occs[order[j]].SHA256 }
	err := e.a.sigs.scan(ids, sha, func(j int, slot []byte) {
		i := order[j]
		w, bit := i>>6, uint64(1)<<(i&63)
		if slot == nil {
			e.unknown[w] |= bit
			e.plan.Unknown++
			for k := range e.maybe {
				e.maybe[k][w] |= bit
			}
			return
		}
		for k, sn := range e.needles {
			if sn.may(slot) {
				e.maybe[k][w] |= bit
			}
		}
	})
	if err != nil {
		// A cache: without it the keys are verified on every message.
		e.a.log.Warn("IMAP SEARCH prefilter unreadable; scanning", "err", err)
		e.maybe, e.unknown, e.epoch = nil, nil, -1
		return nil
	}
	e.plan.Prefiltered = len(e.needles)
	return nil
}

// view returns the decoded, folded message of oc.
func (e *imapEval) view(oc *catalog.MailboxOccurrence) (*mime.View, error) {
	e.plan.Verified++
	if e.shared.verified.Add(1) > int64(e.opts.MaxVerify) {
		return nil, fmt.Errorf("search: more than %d messages to verify; %w (a mailbox, dates, flags)", e.opts.MaxVerify, ErrTooBroad)
	}
	if err := e.ctx.Err(); err != nil {
		return nil, fmt.Errorf("search: stopped after %v with %d messages verified (%w); %w", e.opts.Timeout, e.plan.Verified, err, ErrTooBroad)
	}
	v, hit := e.a.views.get(oc.MessageID)
	if hit {
		e.plan.CacheHits++
		return v, nil
	}
	raw, err := e.a.readBlob(e.ctx, store.Key(oc.SHA256))
	disposed := errors.Is(err, ErrDisposed)
	if disposed {
		// Deleted by disposition: its occurrence stays (the server
		// may still have the UID), its content matches nothing.
		raw, err = nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("search: message %x (UID %d): %w", oc.SHA256[:6], oc.UID, err)
	}
	v = mime.NewView(raw)
	e.a.views.put(oc.MessageID, v)
	if !disposed && e.epoch >= 0 && e.unknown[e.at>>6]&(1<<(e.at&63)) != 0 {
		// Backfill: the next search need not read it (ngram.go).
		if err := e.a.sigs.put(oc.MessageID, signature(oc.SHA256, v), e.epoch); err != nil {
			e.a.log.Warn("IMAP SEARCH signature", "uid", oc.UID, "err", err)
		}
	}
	return v, nil
}

// indexed answers a human-syntax key with the Bleve index, once per query
// for the whole mailbox.
func (e *imapEval) indexed(n query.Node, oc *catalog.MailboxOccurrence) (bool, error) {
	set, ok := e.index[n]
	if !ok {
		var err error
		if set, err = e.shared.indexSet(e, n); err != nil {
			return false, err
		}
		if e.index == nil {
			e.index = map[query.Node]map[string]bool{}
		}
		e.index[n] = set
	}
	return set[fmt.Sprintf("%x", oc.SHA256)], nil
}

// indexSet is the set of sha256s the index answers n with in e's mailbox,
// asked once per search whatever the evaluators.
func (s *imapShared) indexSet(e *imapEval, n query.Node) (map[string]bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if set, ok := s.index[n]; ok {
		return set, nil
	}
	const max = 100_000
	res, err := e.a.Search(e.ctx, n, &SearchOptions{Accounts: []string{e.account}, Mailboxes: []string{e.mailbox}, Limit: max})
	if err != nil {
		return nil, err
	}
	if res.Total > max {
		return nil, fmt.Errorf("search: %q matches %d messages in the mailbox, more than %d; %w", n, res.Total, max, ErrTooBroad)
	}
	set := make(map[string]bool, len(res.Hits))
	for _, h := range res.Hits {
		set[h.SHA256] = true
	}
	if s.index == nil {
		s.index = map[query.Node]map[string]bool{}
	}
	s.index[n] = set
	return set, nil
}

// viewCache keeps decoded message views, least recently used out first,
// within a byte budget.
type viewCache struct {
	mu    sync.Mutex
	max   int
	size  int
	ll    *list.List // of *viewEntry, most recent first
	items map[int64]*list.Element
}

type viewEntry struct {
	id int64
	v  *mime.View
}

func newViewCache(max int) *viewCache {
	return &viewCache{max: max, ll: list.New(), items: map[int64]*list.Element{}}
}

func (c *viewCache) get(id int64) (*mime.View, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[id]; ok {
		c.ll.MoveToFront(el)
		return el.Value.(*viewEntry).v, true
	}
	return nil, false
}

func (c *viewCache) put(id int64, v *mime.View) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.items[id]; ok || v.Size > c.max/4 {
		return
	}
	c.items[id] = c.ll.PushFront(&viewEntry{id: id, v: v})
	c.size += v.Size
	for c.size > c.max {
		el := c.ll.Back()
		ent := el.Value.(*viewEntry)
		c.ll.Remove(el)
		delete(c.items, ent.id)
		c.size -= ent.v.Size
	}
}

// viewCacheBytes bounds the decoded messages kept for IMAP SEARCH (the
// 6,000-message test corpus decodes to about 30 MB).
const viewCacheBytes = 64 << 20

// ViewCacheBytes is what the decoded-message cache of IMAP SEARCH holds now,
// for benchmarks and metrics.
func (a *Archive) ViewCacheBytes() int {
	a.views.mu.Lock()
	defer a.views.mu.Unlock()
	return a.views.size
}

// DropViewCache empties the decoded-message cache (benchmarks measure cold
// searches with it).
func (a *Archive) DropViewCache() {
	a.views.mu.Lock()
	defer a.views.mu.Unlock()
	a.views.ll.Init()
	clear(a.views.items)
	a.views.size = 0
	a.occMu.Lock()
	for _, e := range a.occMap {
		e.dropped.Store(true)
	}
	clear(a.occMap)
	a.occMu.Unlock()
}

// occKey and occEntry are the IMAP SEARCH cache of a mailbox's occurrences.
type occKey struct {
	mailbox      int64
	uidvalidity  uint32
	withExpunged bool
}

type occEntry struct {
	gen     int64
	occs    []catalog.MailboxOccurrence
	cols    columns
	dropped atomic.Bool // out of the cache: its columns are not filled further
}

// occCacheMailboxes bounds the mailboxes whose occurrences the IMAP SEARCH
// cache keeps. Decoded views are not pinned per mailbox (they were, until
// issue 14: 170 MB for a 10,000-message folder); only viewCache holds them.
const occCacheMailboxes = 4

// mailboxOccurrences returns the occurrences of mb's current epoch, from the
// cache when nothing was written to the catalog since they were read. The
// entry is shared: callers must not modify its occurrences.
func (a *Archive) mailboxOccurrences(ctx context.Context, mb catalog.Mailbox, withExpunged bool) (*occEntry, error) {
	key := occKey{mb.ID, mb.UIDValidity, withExpunged}
	gen := a.gen.Load()
	a.occMu.Lock()
	e, ok := a.occMap[key]
	a.occMu.Unlock()
	if ok && e.gen == gen {
		return e, nil
	}
	occs, err := a.cat.MailboxOccurrences(ctx, mb.ID, mb.UIDValidity, withExpunged)
	if err != nil {
		return nil, err
	}
	e = &occEntry{gen: gen, occs: occs}
	a.occMu.Lock()
	for k, old := range a.occMap {
		if old.gen != gen || len(a.occMap) >= occCacheMailboxes || k == key {
			old.dropped.Store(true) // stale (a write came since), or room
			delete(a.occMap, k)
		}
	}
	a.occMap[key] = e
	a.occMu.Unlock()
	return e, nil
}
