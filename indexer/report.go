package indexer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/blevesearch/bleve/v2"

	"mailvault/indexer/catalog"
	"mailvault/indexer/store"
)

// MailboxStatus is the state of one archived mailbox.
type MailboxStatus struct {
	Account     string `json:"account"`
	Mailbox     string `json:"mailbox"`
	Source      string `json:"source"`
	UIDValidity uint32 `json:"uidvalidity"`
	UIDNext     uint32 `json:"uidnext"`
	Occurrences int    `json:"archived"`
	Unique      int    `json:"unique_messages"`
	ParseErrors int    `json:"parse_errors"`
	Unindexed   int    `json:"not_indexed"`
	Indexed     int    `json:"indexed"`
	Expunged    int    `json:"expunged"`
	Skipped     int    `json:"skipped"` // messages the server would not deliver (see the catalog's skipped table)
	LastSync    string `json:"last_sync,omitempty"`
}

// Status returns the state of every mailbox, by account and mailbox name. It
// reads only the catalog, so it works while another process writes.
func Status(ctx context.Context, dir string) ([]MailboxStatus, error) {
	path := filepath.Join(dir, "catalog.db")
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("status: no archive in %s (import or harvest mail first, or pass --data)", dir)
	}
	cat, err := catalog.OpenReadOnly(path)
	if err != nil {
		return nil, err
	}
	defer cat.Close()
	return status(ctx, cat)
}

// Status returns the state of every mailbox, as the package function Status
// does, through the archive's open catalog.
func (a *Archive) Status(ctx context.Context) ([]MailboxStatus, error) { return status(ctx, a.cat) }

func status(ctx context.Context, cat statusCatalog) ([]MailboxStatus, error) {
	stats, err := cat.MailboxStats(ctx)
	if err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	out := make([]MailboxStatus, 0, len(stats))
	for _, s := range stats {
		out = append(out, MailboxStatus{
			Account: s.Account, Mailbox: s.Mailbox, Source: s.Source, UIDValidity: s.UIDValidity,
			UIDNext: s.UIDNext, Occurrences: s.Occurrences, Unique: s.Unique, ParseErrors: s.ParseErrors,
			Unindexed: s.Unindexed, Indexed: s.Unique - s.Unindexed, Expunged: s.Expunged,
			Skipped: s.Skipped, LastSync: s.LastSync,
		})
	}
	return out, nil
}

// Problem is one disagreement found by Verify.
type Problem struct {
	// Kind is one of: catalog-corrupt (SQLite's integrity_check or
	// foreign_key_check found damage), blob-missing, blob-corrupt,
	// blob-unreferenced (the store holds a message the catalog does not
	// reference: `mailvault recover` catalogs it), stray-file,
	// index-missing, index-extra, not-indexed.
	Kind   string `json:"kind"`
	SHA256 string `json:"sha256,omitempty"`
	Detail string `json:"detail"`
}

func (p Problem) String() string {
	if p.SHA256 == "" {
		return p.Kind + ": " + p.Detail
	}
	return p.Kind + " " + p.SHA256 + ": " + p.Detail
}

// VerifyReport is the outcome of Verify.
type VerifyReport struct {
	Blobs    int       `json:"blobs"`
	Messages int       `json:"messages"`
	Indexed  uint64    `json:"index_documents"`
	Problems []Problem `json:"problems"`
	// Orphans counts the blobs no message references. Each one not
	// Interrupted is a blob-unreferenced problem: mail the catalog lost,
	// unreachable until `mailvault recover` catalogs it (recover.go).
	Orphans int `json:"orphan_blobs"`
	// Interrupted counts the unreferenced blobs that the ingest journal
	// names as published by an ingest a crash interrupted before its catalog
	// commit (journal.go): not lost, since their source delivers them again
	// and ingest links them, so not problems; `mailvault recover` catalogs
	// them now if their source will not.
	Interrupted int `json:"interrupted_blobs"`
	// Disposed counts the messages deleted by disposition (retention,
	// erasure): their catalog rows and tombstones stay, their blobs and
	// documents are gone on purpose, so they are not checked.
	Disposed int `json:"disposed"`
}

// Verify re-hashes every blob and checks that store, catalog and index agree.
// progress, when not nil, is called with the blobs checked so far and the total.
//
// It works on a live archive (ingest, searches and Reindex going on): the
// catalog's messages are read in one read transaction, a snapshot, and
// checked against the store, which is write-once, so every message of the
// snapshot must have its blob and the blob must hash right. The index is read
// after the snapshot and may be ahead of it; every apparent disagreement is
// checked again against the live catalog and index before it is reported:
// a document for a message that arrived after the snapshot is not
// index-extra, and a message indexed after it is not index-missing or
// not-indexed. On a writable archive the index writer is flushed first, so
// that what the snapshot lists as not indexed yet has had its chance.
func (a *Archive) Verify(ctx context.Context, progress func(done, total int)) (*VerifyReport, error) {
	rep := &VerifyReport{}
	var mu sync.Mutex
	problem := func(p Problem) {
		mu.Lock()
		rep.Problems = append(rep.Problems, p)
		mu.Unlock()
	}

	// The catalog as a database first: SQLite's integrity_check (the
	// thorough one: verify reads every blob anyway, so O(N log N) on the
	// catalog is small beside it) and foreign_key_check.
	found, err := a.cat.Check(ctx, false)
	if err != nil {
		return nil, fmt.Errorf("verify: check catalog: %w", err)
	}
	for _, f := range found {
		problem(Problem{Kind: "catalog-corrupt", Detail: f + " (the catalog database is damaged: restore catalog.db from a backup, keeping this one; then `mailvault verify` and `mailvault recover`)"})
	}

	// Catalog: every message with its index state, as of one snapshot.
	msgs := map[store.Key]catalog.MessageState{}
	err = a.cat.EachMessageState(ctx, func(m catalog.MessageState) error {
		msgs[store.Key(m.SHA256)] = m
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	rep.Messages = len(msgs)
	// Messages disposed of (dispose.go) have neither blob nor document by
	// design: they are counted, not checked. A disposal left pending by a
	// crash is a problem until a writer finishes it; a message being
	// disposed of while verify runs is checked again below.
	keys0 := make([][32]byte, 0, len(msgs))
	for k := range msgs {
		keys0 = append(keys0, k)
	}
	disposed, err := a.cat.Disposed(ctx, keys0)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	for k := range disposed {
		delete(msgs, k)
	}
	rep.Disposed = len(disposed)
	pending, err := a.cat.Tombstones(ctx, 0, 0, catalog.TombstonePending)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	for _, t := range pending {
		detail := fmt.Sprintf("tombstone %d (rule %s, by %s) is not finished: the next `mailvault retention apply` finishes it if no hold covers the message then", t.ID, t.Rule, t.Actor)
		if why, err := a.PendingWhy(ctx, t); err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		} else if why != "" {
			detail = fmt.Sprintf("tombstone %d (rule %s, by %s) is left pending, not finished by anything: %s", t.ID, t.Rule, t.Actor, why)
		}
		problem(Problem{Kind: "disposal-pending", SHA256: t.SHA256, Detail: detail})
		if k, err := t.Key(); err == nil {
			delete(msgs, k)
		}
	}

	// Store: every blob listed, and every message of the snapshot (whose blob
	// was published before the snapshot was taken), re-hashed in parallel.
	walked := map[store.Key]bool{}
	err = a.store.Walk(ctx, func(k store.Key, name string, ok bool) error {
		if !ok {
			problem(Problem{Kind: "stray-file", Detail: name + " is not a blob"})
			return nil
		}
		walked[k] = true
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("verify: walk blob store: %w", err)
	}
	keys := make([]store.Key, 0, len(walked)+len(msgs))
	for k := range walked {
		keys = append(keys, k)
	}
	for k := range msgs {
		if !walked[k] {
			keys = append(keys, k)
		}
	}
	var done, exist atomic.Int64
	var wg sync.WaitGroup
	next := make(chan store.Key)
	for range a.opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range next {
				err := a.store.Verify(ctx, k)
				_, cataloged := msgs[k]
				switch {
				case errors.Is(err, store.ErrNotFound) && cataloged:
					if _, terr := a.cat.TombstoneOf(ctx, k); terr == nil {
						break // disposed of while verify ran
					}
					problem(Problem{Kind: "blob-missing", SHA256: k.String(), Detail: "the catalog has this message but the store has no blob"})
				case errors.Is(err, store.ErrNotFound):
					// Listed, then gone: removed on purpose meanwhile.
				case err != nil && ctx.Err() == nil:
					exist.Add(1)
					problem(Problem{Kind: "blob-corrupt", SHA256: k.String(), Detail: err.Error()})
				default:
					exist.Add(1)
				}
				if n := done.Add(1); progress != nil {
					progress(int(n), len(keys))
				}
			}
		}()
	}
	for _, k := range keys {
		select {
		case next <- k:
		case <-ctx.Done():
		}
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rep.Blobs = int(exist.Load())
	var unknown [][32]byte
	for k := range walked {
		if _, ok := msgs[k]; !ok {
			unknown = append(unknown, k)
		}
	}
	// A blob the snapshot does not reference may belong to a message
	// committed since, or to a Commit in flight (published, its catalog
	// transaction not yet committed: Commit holds commitMu across both, so
	// waiting for it is enough). Only one the live catalog does not know
	// then is unreferenced, and that is a problem (recover.go says why).
	if a.writer != nil && len(unknown) > 0 {
		a.commitMu.Lock()
		a.commitMu.Unlock() //nolint:staticcheck // a barrier
	}
	live, err := a.cat.MessageStates(ctx, unknown)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	for _, k := range unknown {
		if _, ok := live[k]; !ok {
			rep.Orphans++
			if a.interrupted[store.Key(k)] {
				rep.Interrupted++ // journal.go: its source delivers it again
				continue
			}
			problem(Problem{Kind: "blob-unreferenced", SHA256: store.Key(k).String(),
				Detail: "the store holds this message but the catalog does not reference it: mail the catalog lost (or a crash left between its blob write and its catalog commit); run `mailvault recover` to catalog it in " + RecoveredAccount + "/" + LostAndFound})
		}
	}

	if err := a.verifyIndex(ctx, rep, msgs, problem); err != nil {
		return nil, err
	}
	sort.Slice(rep.Problems, func(i, j int) bool {
		if rep.Problems[i].Kind != rep.Problems[j].Kind {
			return rep.Problems[i].Kind < rep.Problems[j].Kind
		}
		if rep.Problems[i].SHA256 != rep.Problems[j].SHA256 {
			return rep.Problems[i].SHA256 < rep.Problems[j].SHA256
		}
		return rep.Problems[i].Detail < rep.Problems[j].Detail
	})
	return rep, nil
}

// verifyIndex checks the index against the snapshot msgs: every indexed
// message has its document, and nothing else is there.
func (a *Archive) verifyIndex(ctx context.Context, rep *VerifyReport, msgs map[store.Key]catalog.MessageState, problem func(Problem)) error {
	inIndex := map[store.Key]bool{}
	req := bleve.NewSearchRequestOptions(bleve.NewMatchAllQuery(), 5000, 0, false)
	req.SortBy([]string{"_id"})
	for {
		var res *bleve.SearchResult
		err := a.withIndex(func(idx bleve.Index) error {
			var err error
			res, err = idx.SearchInContext(ctx, req)
			return err
		})
		if err != nil {
			return fmt.Errorf("verify: list index documents: %w", err)
		}
		for _, h := range res.Hits {
			k, err := store.ParseKey(h.ID)
			if err != nil {
				problem(Problem{Kind: "index-extra", Detail: fmt.Sprintf("index document %q is not a message key", h.ID)})
				continue
			}
			inIndex[k] = true
		}
		if len(res.Hits) < req.Size {
			break
		}
		req.SearchAfter = []string{res.Hits[len(res.Hits)-1].ID}
	}
	rep.Indexed = uint64(len(inIndex))

	// Apparent disagreements, to check again against the live state.
	var missing, unindexed, extra []store.Key
	for k, m := range msgs {
		switch {
		case !m.Indexed():
			unindexed = append(unindexed, k)
		case !inIndex[k]:
			missing = append(missing, k)
		}
	}
	for k := range inIndex {
		if _, ok := msgs[k]; !ok {
			extra = append(extra, k)
		}
	}
	if len(missing)+len(unindexed)+len(extra) == 0 {
		return nil
	}
	if len(unindexed) > 0 && a.writer != nil {
		// Let every Commit whose catalog transaction is in the snapshot hand
		// its documents to the writer (Commits hold commitMu from the
		// catalog commit to the hand-off), then let the writer commit them.
		a.commitMu.Lock()
		a.commitMu.Unlock()
		if err := a.Flush(ctx); err != nil {
			a.log.Warn("verify: index flush", "err", err)
		}
	}
	all := make([][32]byte, 0, len(missing)+len(unindexed)+len(extra))
	for _, ks := range [][]store.Key{missing, unindexed, extra} {
		for _, k := range ks {
			all = append(all, k)
		}
	}
	live, err := a.cat.MessageStates(ctx, all)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	hasDoc := func(k store.Key) (bool, error) {
		var found bool
		err := a.withIndex(func(idx bleve.Index) error {
			d, err := idx.Document(k.String())
			found = d != nil
			return err
		})
		return found, err
	}
	stillUnindexed := 0
	for _, k := range missing {
		if ok, err := hasDoc(k); err != nil {
			return fmt.Errorf("verify: %w", err)
		} else if ok {
			continue
		}
		if m, ok := live[k]; ok && !m.Indexed() {
			stillUnindexed++ // marked for re-indexing since (a rebuilt index could not read it)
			continue
		}
		if _, err := a.cat.TombstoneOf(ctx, k); err == nil {
			continue // disposed of while verify ran
		}
		problem(Problem{Kind: "index-missing", SHA256: k.String(), Detail: "the catalog says indexed but the index has no document"})
	}
	for _, k := range unindexed {
		m, ok := live[k]
		if !ok || m.IndexedGen < msgs[k].Gen {
			stillUnindexed++
			continue
		}
		if ok, err := hasDoc(k); err != nil {
			return fmt.Errorf("verify: %w", err)
		} else if !ok {
			problem(Problem{Kind: "index-missing", SHA256: k.String(), Detail: "the catalog says indexed but the index has no document"})
		}
	}
	if stillUnindexed > 0 {
		problem(Problem{Kind: "not-indexed", Detail: fmt.Sprintf("%d messages are not indexed yet (a writer catches up on start; `mailvault reindex` rebuilds)", stillUnindexed)})
	}
	for _, k := range extra {
		if _, ok := live[k]; !ok {
			problem(Problem{Kind: "index-extra", SHA256: k.String(), Detail: "the index has a document the catalog does not know"})
		}
	}
	return nil
}
