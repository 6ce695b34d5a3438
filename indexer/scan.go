package indexer

import (
	"context"
	"fmt"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/search"
	bleveq "github.com/blevesearch/bleve/v2/search/query"

	"mailvault/indexer/store"
	"mailvault/query"
)

// A Selection is every message a search matches, for work that takes all
// of them (an export) rather than a page. Search pages by its sort: each
// page of 1,000 collects and sorts every match again, so reading an
// archive's million matches that way costs a thousand sorts of a million.
// A Selection streams the index's matches instead (no sort, no score, no
// stored fields; memory is one batch whatever their number), and gives the
// hits of any keys later, so that a caller can keep only each match's key
// and date and look the rest up when it gets there.
type Selection struct {
	a     *Archive
	bq    bleveq.Query
	scope searchScope
}

// Select is the selection of q, narrowed by opts as Search narrows it
// (Accounts, Mailboxes, IDs; the paging and sort fields are not used).
func (a *Archive) Select(ctx context.Context, q query.Node, opts *SearchOptions) (*Selection, error) {
	var o SearchOptions
	if opts != nil {
		o = *opts
	}
	bq, scope, err := a.searchQuery(ctx, q, &o)
	if err != nil {
		return nil, err
	}
	return &Selection{a: a, bq: bq, scope: scope}, nil
}

// scanBatch is how many matches Each hands over at a time (one catalog
// lookup each).
const scanBatch = 512

// scanLookahead is how many batches Each looks up at once.
const scanLookahead = 2

// Each calls fn with the selection's hits, a batch at a time, in no
// particular order; a hit lists its occurrences in scope, as Search's do.
// The index is read from one snapshot.
func (s *Selection) Each(ctx context.Context, fn func([]Hit) error) error {
	ctx = context.WithValue(ctx, search.MaxTermSearchersKey, maxTermExpansion)
	ctx = search.ContextWithTermSearchersCounter(ctx)
	return s.a.withIndex(func(idx bleve.Index) error {
		ii, err := idx.Advanced()
		if err != nil {
			return fmt.Errorf("search: %w", err)
		}
		r, err := ii.Reader()
		if err != nil {
			return fmt.Errorf("search: %w", err)
		}
		defer r.Close()
		sr, err := s.bq.Searcher(ctx, r, idx.Mapping(), search.SearcherOptions{Score: "none"})
		if err != nil {
			return fmt.Errorf("search: %w", err)
		}
		defer sr.Close()
		sctx := &search.SearchContext{DocumentMatchPool: search.NewDocumentMatchPool(sr.DocumentMatchPoolSize(), 0), IndexReader: r}
		// The catalog lookup of a batch, not the scan, is most of the
		// time (0.14 s of an export scope of the corpus's 6,046 messages,
		// on one connection at a time). So scanLookahead batches are
		// looked up at once, on connections of their own (the catalog has
		// four), while fn takes the oldest: fn still sees one batch at a
		// time, in scan order, and memory stays a few batches.
		type lookup struct {
			done chan struct{}
			hits []Hit
			err  error
		}
		var inflight []*lookup
		defer func() { // an error returns early: let the lookups end first
			for _, l := range inflight {
				<-l.done
			}
		}()
		deliver := func() error {
			l := inflight[0]
			inflight = inflight[1:]
			<-l.done
			if l.err != nil {
				return l.err
			}
			return fn(l.hits)
		}
		keys := make([][32]byte, 0, scanBatch)
		flush := func() error {
			if len(keys) == 0 {
				return nil
			}
			l := &lookup{done: make(chan struct{})}
			go func(keys [][32]byte) {
				defer close(l.done)
				l.hits, l.err = s.Hits(ctx, keys)
			}(keys)
			inflight = append(inflight, l)
			keys = make([][32]byte, 0, scanBatch)
			if len(inflight) < scanLookahead {
				return nil
			}
			return deliver()
		}
		for {
			if err := ctx.Err(); err != nil {
				return err
			}
			dm, err := sr.Next(sctx)
			if err != nil {
				return fmt.Errorf("search: %w", err)
			}
			if dm == nil {
				break
			}
			id, err := r.ExternalID(dm.IndexInternalID)
			sctx.DocumentMatchPool.Put(dm)
			if err != nil {
				return fmt.Errorf("search: %w", err)
			}
			k, err := store.ParseKey(id)
			if err != nil {
				return fmt.Errorf("search: index holds a document with a bad id %q (run `mailvault reindex`)", id)
			}
			if keys = append(keys, k); len(keys) == scanBatch {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if err := flush(); err != nil {
			return err
		}
		for len(inflight) > 0 {
			if err := deliver(); err != nil {
				return err
			}
		}
		return nil
	})
}

// Hits are the hits of keys (matches of the selection handed out by Each
// before), in their order, looked up in the catalog now: a key the catalog
// no longer has (disposed of meanwhile), or none of whose occurrences is
// in scope any more, is left out.
func (s *Selection) Hits(ctx context.Context, keys [][32]byte) ([]Hit, error) {
	located, err := s.a.cat.Locate(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	out := make([]Hit, 0, len(keys))
	for _, k := range keys {
		l := located[k]
		if l == nil {
			continue // the index is a cache and may be ahead of the catalog
		}
		if h, ok := s.scope.hit(store.Key(k).String(), l); ok {
			out = append(out, h)
		}
	}
	return out, nil
}
