package service

// Legal holds as matters.
//
// A hold names custodians (archive accounts) and optionally a query in
// either syntax. It covers every message with an occurrence (expunged or
// not) in one of its custodians' accounts — and, with a query, only those
// the query matches when asked as a user who sees exactly those accounts
// would ask it (Caller.restrict: account: and mailbox: terms cannot reach
// outside them). What a hold covers is evaluated each time it is asked,
// never stored as a list, so mail that arrives after the hold was created,
// or in a custodian's account that did not exist yet, is covered the moment
// it is archived. A hold is released, never deleted (the catalog's triggers
// refuse a DELETE); a released hold covers nothing.
//
// HeldBy is the check every deletion path makes (retention, erasure). It
// errs on the side of keeping: a message in a query hold's custodians'
// accounts that the index has not caught up with yet (indexed_gen < gen)
// is held, because the query cannot be asked about it; any error (a hold
// row that cannot be read, a search that fails or times out) is returned,
// never "not held".
//
// Who: admins, the operator and the legal role manage holds (create,
// release); auditors may list and show them; users may not see them at all
// (ErrForbidden). Every create, release, list and show is audited, fail
// closed, with the hold's name and scope; a create or release is recorded
// before it is made, so the trail never lacks a change that happened (a
// change that then fails is followed by a "…-failed" row).

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"mailvault/indexer"
	"mailvault/indexer/store"
	"mailvault/query"
)

// HoldRequest asks for a new legal hold.
type HoldRequest struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Custodians  []string `json:"custodians"`
	// Query narrows the hold to what it matches in the custodians'
	// accounts; "" holds all of their mail.
	Query  string `json:"query,omitempty"`
	Syntax Syntax `json:"syntax,omitempty"` // "" is SyntaxHuman
}

// HoldCounts is what a hold covers at the moment it is asked.
type HoldCounts struct {
	// Messages is how many unique messages the hold covers; Occurrences
	// how many copies of them its custodians' accounts hold.
	Messages    int `json:"messages"`
	Occurrences int `json:"occurrences"`
	// Unindexed: messages of the custodians the index has not caught up
	// with; a query hold keeps them too until they are indexed and the
	// query can be asked (not counted in Messages).
	Unindexed int `json:"unindexed,omitempty"`
}

// HoldInfo is one legal hold.
type HoldInfo struct {
	Name          string      `json:"name"`
	Description   string      `json:"description"`
	CreatedBy     string      `json:"created_by"`
	CreatedAt     string      `json:"created_at"`
	Custodians    []string    `json:"custodians"`
	Query         string      `json:"query,omitempty"`
	Syntax        Syntax      `json:"syntax,omitempty"`
	Active        bool        `json:"active"`
	ReleasedAt    string      `json:"released_at,omitempty"`
	ReleasedBy    string      `json:"released_by,omitempty"`
	ReleaseReason string      `json:"release_reason,omitempty"`
	Counts        *HoldCounts `json:"counts,omitempty"` // active holds only
	// UnknownCustodians are custodians with no mail in the archive (yet):
	// a hold on them is valid (it covers their mail when it arrives), but
	// it may be a misspelt account name.
	UnknownCustodians []string `json:"unknown_custodians,omitempty"`
}

// Bounds of a hold's fields.
const (
	MaxHoldNameBytes        = 100
	MaxHoldDescriptionBytes = 4000
	MaxHoldCustodians       = 1000
)

// ManagesHolds reports whether c may create and release legal holds.
func (c Caller) ManagesHolds() bool {
	return c.Role == RoleAdmin || c.Role == RoleOperator || c.Role == RoleLegal
}

// SeesHolds reports whether c may list and show legal holds.
func (c Caller) SeesHolds() bool { return c.ManagesHolds() || c.Role == RoleAuditor }

func (s *Service) holdForbidden(ctx context.Context, c Caller, action, what string) error {
	if err := s.audit(ctx, c, "denied", action+" "+what); err != nil {
		return err
	}
	verb := "manage"
	if action == "hold-list" || action == "hold-show" {
		verb = "see"
	}
	return errorf(ErrForbidden, "user %s (%s) may not %s legal holds: admins and the legal role may (auditors may see them)", c.Name, c.Role, verb)
}

// validHoldName: a name that reads well in a URL path, a shell and a file
// name, bounded.
func validHoldName(name string) error {
	ok := name != "" && len(name) <= MaxHoldNameBytes && name == strings.TrimSpace(name)
	for i, r := range name {
		alnum := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
		if !alnum && (i == 0 || !strings.ContainsRune(" ._-", r)) {
			ok = false
		}
	}
	if !ok {
		return errorf(ErrBadRequest, "hold name %q: want 1 to %d letters, digits, spaces, dots, dashes or underscores, starting with a letter or digit",
			auditText(name), MaxHoldNameBytes)
	}
	return nil
}

// holdQuery parses a hold's query, as a search would.
func holdQuery(syntax Syntax, q string) (query.Node, error) {
	if len(q) > MaxQueryBytes {
		return nil, errorf(ErrBadRequest, "hold query of %d bytes: at most %d", len(q), MaxQueryBytes)
	}
	n, err := Parse(syntax, q)
	if err != nil {
		return nil, errorf(ErrBadRequest, "hold query: %v", err)
	}
	if syntax == SyntaxHuman || syntax == "" {
		if _, err := query.Bleve(n); err != nil {
			return nil, errorf(ErrBadRequest, "hold query: %v", err)
		}
		if key := driftingKey(n); key != "" {
			return nil, errorf(ErrBadRequest, "hold query: %s changes what it matches as time passes or the server's flags change, "+
				"so held mail could fall out of the hold: name fixed days (after:, before:) or leave it out", key)
		}
	}
	return n, nil
}

// DriftingKey returns the first key of the human-syntax query q whose
// matches change without the mail changing: newer_than:/older_than:
// (relative to now) and is: (the server's flags, followed at each sync;
// the custodian's to change). "" when none, or when q does not parse. A
// hold must keep what it named, and a retention policy's query must not
// let a mailbox owner's flags or the clock decide what is deleted (its
// keep: and from: say the age), so neither may hold them
// (docs/compliance.md).
func DriftingKey(q string) string {
	n, err := query.ParseHuman(q)
	if err != nil {
		return ""
	}
	return driftingKey(n)
}

func driftingKey(n query.Node) string {
	switch n := n.(type) {
	case query.Age:
		if n.Newer {
			return "newer_than:"
		}
		return "older_than:"
	case query.Flag:
		return "is:"
	case query.Not:
		return driftingKey(n.Node)
	case query.And:
		for _, c := range n.Nodes {
			if k := driftingKey(c); k != "" {
				return k
			}
		}
	case query.Or:
		for _, c := range n.Nodes {
			if k := driftingKey(c); k != "" {
				return k
			}
		}
	}
	return ""
}

// holdScope is the hold's scope for the audit trail.
func holdScope(h indexer.Hold) string {
	s := "custodians=" + strings.Join(h.Custodians, ",")
	if h.Query != "" {
		s += " query(" + h.Syntax + ")=" + h.Query
	}
	return s
}

// CreateHold creates a legal hold for c (admin, operator, legal). The name
// is unique for ever, also after release, whatever its case.
func (s *Service) CreateHold(ctx context.Context, c Caller, req HoldRequest) (HoldInfo, error) {
	if !c.ManagesHolds() {
		return HoldInfo{}, s.holdForbidden(ctx, c, "hold-create", req.Name)
	}
	if err := validHoldName(req.Name); err != nil {
		return HoldInfo{}, err
	}
	if len(req.Description) > MaxHoldDescriptionBytes {
		return HoldInfo{}, errorf(ErrBadRequest, "hold description of %d bytes: at most %d", len(req.Description), MaxHoldDescriptionBytes)
	}
	if len(req.Custodians) == 0 {
		return HoldInfo{}, errorf(ErrBadRequest, "hold %s: name at least one custodian (an account whose mail it keeps)", req.Name)
	}
	if len(req.Custodians) > MaxHoldCustodians {
		return HoldInfo{}, errorf(ErrBadRequest, "hold %s: %d custodians, at most %d", req.Name, len(req.Custodians), MaxHoldCustodians)
	}
	var cust []string
	for _, a := range req.Custodians {
		a = strings.TrimSpace(a)
		if a == "" || len(a) > 255 || strings.ContainsFunc(a, func(r rune) bool { return r < 0x20 || r == 0x7f || r == ',' }) {
			return HoldInfo{}, errorf(ErrBadRequest, "custodian %q: want an archive account name (`mailvault status` lists them)", auditText(a))
		}
		cust = append(cust, a)
	}
	slices.Sort(cust)
	cust = slices.Compact(cust)
	syntax := req.Syntax
	if syntax == "" {
		syntax = SyntaxHuman
	}
	req.Query = strings.TrimSpace(req.Query)
	if req.Query != "" {
		if _, err := holdQuery(syntax, req.Query); err != nil {
			return HoldInfo{}, err
		}
	} else {
		syntax = ""
	}
	h := indexer.Hold{Name: req.Name, Description: req.Description, CreatedBy: c.Name, Custodians: cust,
		Query: req.Query, Syntax: string(syntax)}
	if old, err := s.a.HoldByName(ctx, req.Name); err == nil {
		return HoldInfo{}, errorf(ErrBadRequest, "a hold named %q exists (created %s by %s); hold names are never reused, pick another",
			old.Name, old.CreatedAt, old.CreatedBy)
	} else if !errors.Is(err, indexer.ErrNoHold) {
		return HoldInfo{}, err
	}
	if err := s.audit(ctx, c, "hold-create", h.Name+" "+holdScope(h)+" description="+h.Description); err != nil {
		return HoldInfo{}, err
	}
	h, err := s.a.CreateHold(ctx, h)
	if err != nil {
		s.audit(ctx, c, "hold-create-failed", req.Name+": "+err.Error())
		if errors.Is(err, indexer.ErrHoldExists) {
			return HoldInfo{}, errorf(ErrBadRequest, "a hold named %q exists; hold names are never reused, pick another", req.Name)
		}
		return HoldInfo{}, err
	}
	if err := s.ledgerHolds(ctx); err != nil {
		return HoldInfo{}, err
	}
	info, err := s.holdInfo(ctx, h)
	if err != nil {
		// The hold is made and holds; only its counts are missing.
		s.log.Error("hold created, counting it failed", "hold", h.Name, "err", err)
		info = toHoldInfo(h)
	}
	return info, nil
}

func toHoldInfo(h indexer.Hold) HoldInfo {
	return HoldInfo{Name: h.Name, Description: h.Description, CreatedBy: h.CreatedBy, CreatedAt: h.CreatedAt,
		Custodians: h.Custodians, Query: h.Query, Syntax: Syntax(h.Syntax), Active: h.Active(),
		ReleasedAt: h.ReleasedAt, ReleasedBy: h.ReleasedBy, ReleaseReason: h.ReleaseReason}
}

// holdInfo is h with what it covers now (active holds) and the custodians
// the archive does not know.
func (s *Service) holdInfo(ctx context.Context, h indexer.Hold) (HoldInfo, error) {
	info := toHoldInfo(h)
	if !h.Active() {
		return info, nil
	}
	known, err := s.a.Accounts(ctx)
	if err != nil {
		return info, err
	}
	for _, a := range h.Custodians {
		if !slices.Contains(known, a) {
			info.UnknownCustodians = append(info.UnknownCustodians, a)
		}
	}
	counts, err := s.holdCounts(ctx, h)
	if err != nil {
		return info, err
	}
	info.Counts = counts
	return info, nil
}

// holdCaller is the hold's query asker: a user who sees exactly the
// custodians' accounts, so that the service's one scoping (restrict and
// the accounts filter) also bounds what a hold covers.
func holdCaller(h indexer.Hold) Caller {
	return Caller{Name: "hold " + h.Name, Role: RoleUser, Accounts: h.Custodians, Remote: "hold"}
}

func (s *Service) holdCounts(ctx context.Context, h indexer.Hold) (*HoldCounts, error) {
	msgs, occs, unindexed, err := s.a.AccountCounts(ctx, h.Custodians)
	if err != nil {
		return nil, err
	}
	if h.Query == "" {
		return &HoldCounts{Messages: msgs, Occurrences: occs}, nil
	}
	out := &HoldCounts{Unindexed: unindexed}
	if Syntax(h.Syntax) == SyntaxIMAP {
		n, err := holdQuery(SyntaxIMAP, h.Query)
		if err != nil {
			return nil, fmt.Errorf("hold %s: its query no longer parses: %w", h.Name, err)
		}
		seen := map[string]bool{}
		err = s.eachIMAPHoldHit(ctx, h, holdCaller(h).restrict(n), func(k string) bool {
			out.Occurrences++
			if !seen[k] {
				seen[k] = true
				out.Messages++
			}
			return true
		})
		if err != nil {
			return nil, fmt.Errorf("hold %s: count what its query matches: %w", h.Name, err)
		}
		return out, nil
	}
	seen := map[string]bool{}
	err = s.eachHit(ctx, holdCaller(h), SearchRequest{Query: h.Query, Syntax: Syntax(h.Syntax),
		Accounts: h.Custodians, IncludeExpunged: true}, func(hit Hit) error {
		out.Occurrences += len(hit.Occurrences)
		if !seen[hit.SHA256] {
			seen[hit.SHA256] = true
			out.Messages++
		}
		return nil
	})
	if errors.Is(err, ErrNotFound) { // no mailbox of the custodians yet
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("hold %s: count what its query matches: %w", h.Name, err)
	}
	return out, nil
}

// Holds lists every legal hold, active or released, oldest first, with
// what each active hold covers now.
func (s *Service) Holds(ctx context.Context, c Caller) ([]HoldInfo, error) {
	if !c.SeesHolds() {
		return nil, s.holdForbidden(ctx, c, "hold-list", "")
	}
	holds, err := s.a.Holds(ctx)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(holds))
	for i, h := range holds {
		names[i] = h.Name
	}
	if err := s.audit(ctx, c, "hold-list", fmt.Sprintf("%d holds: %s", len(holds), strings.Join(names, ", "))); err != nil {
		return nil, err
	}
	out := make([]HoldInfo, 0, len(holds))
	for _, h := range holds {
		info, err := s.holdInfo(ctx, h)
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	return out, nil
}

// Hold shows the hold named name (any case), with what it covers now.
func (s *Service) Hold(ctx context.Context, c Caller, name string) (HoldInfo, error) {
	if !c.SeesHolds() {
		return HoldInfo{}, s.holdForbidden(ctx, c, "hold-show", name)
	}
	h, err := s.a.HoldByName(ctx, name)
	if errors.Is(err, indexer.ErrNoHold) {
		return HoldInfo{}, errorf(ErrNotFound, "no hold named %q (`mailvault hold list` lists them)", auditText(name))
	}
	if err != nil {
		return HoldInfo{}, err
	}
	if err := s.audit(ctx, c, "hold-show", h.Name+" "+holdScope(h)); err != nil {
		return HoldInfo{}, err
	}
	return s.holdInfo(ctx, h)
}

// ReleaseHold releases the hold named name for reason: from then on it
// covers nothing (what it kept may be deleted by retention if nothing
// else holds it). A hold is released once and never deleted.
func (s *Service) ReleaseHold(ctx context.Context, c Caller, name, reason string) (HoldInfo, error) {
	if !c.ManagesHolds() {
		return HoldInfo{}, s.holdForbidden(ctx, c, "hold-release", name)
	}
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return HoldInfo{}, errorf(ErrBadRequest, "release hold %s: say why (a reason is required and kept with the hold)", auditText(name))
	}
	if len(reason) > MaxHoldDescriptionBytes {
		return HoldInfo{}, errorf(ErrBadRequest, "release reason of %d bytes: at most %d", len(reason), MaxHoldDescriptionBytes)
	}
	h, err := s.a.HoldByName(ctx, name)
	if errors.Is(err, indexer.ErrNoHold) {
		return HoldInfo{}, errorf(ErrNotFound, "no hold named %q (`mailvault hold list` lists them)", auditText(name))
	}
	if err != nil {
		return HoldInfo{}, err
	}
	if !h.Active() {
		return HoldInfo{}, errorf(ErrBadRequest, "hold %s was released at %s by %s", h.Name, h.ReleasedAt, h.ReleasedBy)
	}
	// Recorded before it is made: a release the trail lacks would be a
	// deletion made possible without a trace.
	if err := s.audit(ctx, c, "hold-release", h.Name+" "+holdScope(h)+" reason="+reason); err != nil {
		return HoldInfo{}, err
	}
	h, err = s.a.ReleaseHold(ctx, h.Name, c.Name, reason)
	if err != nil {
		s.audit(ctx, c, "hold-release-failed", name+": "+err.Error())
		if errors.Is(err, indexer.ErrHoldReleased) {
			return HoldInfo{}, errorf(ErrBadRequest, "%v", err)
		}
		return HoldInfo{}, err
	}
	if err := s.ledgerHolds(ctx); err != nil {
		return HoldInfo{}, err
	}
	return toHoldInfo(h), nil
}

// heldByChunk bounds the messages one search of a hold's query is asked
// about (a Bleve doc-id filter of this many ids).
const heldByChunk = 1000

// HeldBy returns, for each of the messages sha256s (hex) that at least one
// active legal hold covers, the names of the holds covering it, oldest
// hold first; a message absent from the map is not held. Keys are
// lowercase hex. It is the internal check of every deletion path: no
// Caller, not audited (the deletion audits itself). It is evaluated at
// call time: one catalog query per hold (and per 500 messages), plus, for
// a hold with a query, one search per 1,000 messages (human syntax) or one
// per custodian mailbox and UIDVALIDITY epoch (IMAP syntax). A message the index has not caught
// up with is held by every query hold of its account (see the top of this
// file). Any error means "do not delete".
func (s *Service) HeldBy(ctx context.Context, sha256s []string) (map[string][]string, error) {
	out := map[string][]string{}
	if len(sha256s) == 0 {
		return out, nil
	}
	keys := make([]store.Key, 0, len(sha256s))
	seen := make(map[store.Key]bool, len(sha256s))
	for _, h := range sha256s {
		k, err := store.ParseKey(h)
		if err != nil {
			return nil, errorf(ErrBadRequest, "held by: message id %q: want 64 hex digits (a sha256)", clipID(h))
		}
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	holds, err := s.a.Holds(ctx)
	if err != nil {
		return nil, fmt.Errorf("held by: %w", err)
	}
	for _, h := range holds {
		if !h.Active() {
			continue
		}
		held, err := s.heldByHold(ctx, h, keys)
		if err != nil {
			return nil, fmt.Errorf("held by: hold %s: %w", h.Name, err)
		}
		for _, k := range held {
			out[k] = append(out[k], h.Name)
		}
	}
	return out, nil
}

// eachIMAPHoldHit calls fn with the sha256 (hex) of every occurrence the
// IMAP-syntax hold h's query n (restricted) matches, in every epoch of
// every custodian mailbox, until fn returns false.
//
// Every epoch: a server's UIDVALIDITY change starts a new epoch, and the
// copies archived under the old one are still the custodian's mail (the
// hostile review's F5: searching the current epoch alone let them go).
// Sequence numbers and UID sets in the query are those of the epoch
// searched.
func (s *Service) eachIMAPHoldHit(ctx context.Context, h indexer.Hold, n query.Node, fn func(sha string) bool) error {
	mbs, err := s.a.Epochs(ctx, h.Custodians)
	if err != nil {
		return err
	}
	for _, mb := range mbs {
		for _, ep := range mb.Epochs {
			r, err := s.a.SearchIMAP(ctx, mb.Account, mb.Mailbox, n, &indexer.IMAPSearchOptions{IncludeExpunged: true, UIDValidity: ep})
			if err != nil {
				return err
			}
			for _, oc := range r.Hits {
				if !fn(fmt.Sprintf("%x", oc.SHA256)) {
					return nil
				}
			}
		}
	}
	return nil
}

// heldByHold returns which of keys the active hold h covers now.
func (s *Service) heldByHold(ctx context.Context, h indexer.Hold, keys []store.Key) ([]string, error) {
	inAccounts, err := s.a.InAccounts(ctx, h.Custodians, keys)
	if err != nil {
		return nil, err
	}
	var held []string
	if h.Query == "" {
		for k := range inAccounts {
			held = append(held, k)
		}
		return held, nil
	}
	n, err := holdQuery(Syntax(h.Syntax), h.Query)
	if err != nil {
		// It parsed when the hold was made; a parser that changed since
		// must not let the hold's mail go.
		return nil, fmt.Errorf("its query no longer parses: %w", err)
	}
	hc := holdCaller(h)
	n = hc.restrict(n)
	// Candidates: the batch's messages in the custodians' accounts. Those
	// the index lags behind on are held without asking.
	var candidates []string
	for k, unindexed := range inAccounts {
		if unindexed {
			held = append(held, k)
		} else {
			candidates = append(candidates, k)
		}
	}
	if len(candidates) == 0 {
		return held, nil
	}
	slices.Sort(candidates)
	if Syntax(h.Syntax) == SyntaxIMAP {
		want := make(map[string]bool, len(candidates))
		for _, k := range candidates {
			want[k] = true
		}
		err := s.eachIMAPHoldHit(ctx, h, n, func(k string) bool {
			if want[k] {
				held = append(held, k)
				delete(want, k)
			}
			return len(want) > 0
		})
		if err != nil {
			return nil, err
		}
		return held, nil
	}
	for start := 0; start < len(candidates); start += heldByChunk {
		chunk := candidates[start:min(start+heldByChunk, len(candidates))]
		r, err := s.a.Search(ctx, n, &indexer.SearchOptions{Accounts: h.Custodians, IDs: chunk, Limit: len(chunk), ByRelevance: true})
		if err != nil {
			return nil, err
		}
		for _, hit := range r.Hits {
			held = append(held, hit.SHA256)
		}
	}
	return held, nil
}
