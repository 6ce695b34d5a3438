package indexer

import (
	"context"
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
	// A catalog whose creation was interrupted (the schema is made in one
	// transaction) holds no tables yet: nothing is archived.
	var tables int
	if err := cat.DB().QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'skipped'`).Scan(&tables); err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	if tables == 0 {
		return nil, nil
	}
	rows, err := cat.DB().QueryContext(ctx, `SELECT a.name, m.name, m.source, m.uidvalidity, m.uidnext, m.last_sync,
		count(o.id), count(DISTINCT o.message_id),
		count(DISTINCT CASE WHEN msg.parse_error != '' THEN msg.id END),
		count(DISTINCT CASE WHEN msg.indexed_gen < msg.gen THEN msg.id END),
		coalesce(sum(o.expunged_at != ''), 0),
		(SELECT count(*) FROM skipped s WHERE s.mailbox_id = m.id)
		FROM mailboxes m JOIN accounts a ON a.id = m.account_id
		LEFT JOIN occurrences o ON o.mailbox_id = m.id
		LEFT JOIN messages msg ON msg.id = o.message_id
		GROUP BY m.id ORDER BY a.name, m.name`)
	if err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	defer rows.Close()
	var out []MailboxStatus
	for rows.Next() {
		var s MailboxStatus
		if err := rows.Scan(&s.Account, &s.Mailbox, &s.Source, &s.UIDValidity, &s.UIDNext, &s.LastSync,
			&s.Occurrences, &s.Unique, &s.ParseErrors, &s.Unindexed, &s.Expunged, &s.Skipped); err != nil {
			return nil, fmt.Errorf("status: %w", err)
		}
		s.Indexed = s.Unique - s.Unindexed
		out = append(out, s)
	}
	return out, rows.Err()
}

// Problem is one disagreement found by Verify.
type Problem struct {
	Kind   string `json:"kind"` // blob-missing, blob-corrupt, blob-orphan, stray-file, index-missing, index-extra, not-indexed
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
	// Orphans are blobs no message references: left by a crash between the
	// blob write and the catalog commit. Harmless, and re-linked if the same
	// content is ingested again; not counted as problems.
	Orphans int `json:"orphan_blobs"`
}

// Verify re-hashes every blob and checks that store, catalog and index agree.
// progress, when not nil, is called with the blobs checked so far and the total.
func (a *Archive) Verify(ctx context.Context, progress func(done, total int)) (*VerifyReport, error) {
	rep := &VerifyReport{}
	var mu sync.Mutex
	problem := func(p Problem) {
		mu.Lock()
		rep.Problems = append(rep.Problems, p)
		mu.Unlock()
	}

	// Catalog: every message with its index state.
	type catMsg struct{ indexed bool }
	msgs := map[store.Key]catMsg{}
	rows, err := a.cat.DB().QueryContext(ctx, `SELECT sha256, indexed_gen >= gen FROM messages`)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	for rows.Next() {
		var b []byte
		var m catMsg
		if err := rows.Scan(&b, &m.indexed); err != nil {
			rows.Close()
			return nil, fmt.Errorf("verify: %w", err)
		}
		var k store.Key
		copy(k[:], b)
		msgs[k] = m
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	rep.Messages = len(msgs)

	// Store: re-hash every blob, in parallel.
	var blobs []store.Key
	err = a.store.Walk(func(k store.Key, path string, ok bool) error {
		if !ok {
			problem(Problem{Kind: "stray-file", Detail: path + " is not a blob"})
			return nil
		}
		blobs = append(blobs, k)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("verify: walk blob store: %w", err)
	}
	rep.Blobs = len(blobs)
	var done atomic.Int64
	var wg sync.WaitGroup
	next := make(chan store.Key)
	for range a.opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range next {
				if err := a.store.Verify(k); err != nil {
					problem(Problem{Kind: "blob-corrupt", SHA256: k.String(), Detail: err.Error()})
				}
				if n := done.Add(1); progress != nil {
					progress(int(n), len(blobs))
				}
			}
		}()
	}
	present := make(map[store.Key]bool, len(blobs))
	for _, k := range blobs {
		present[k] = true
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
	for k := range present {
		if _, ok := msgs[k]; !ok {
			rep.Orphans++
		}
	}
	for k := range msgs {
		if !present[k] {
			problem(Problem{Kind: "blob-missing", SHA256: k.String(), Detail: "the catalog has this message but the store has no blob"})
		}
	}

	// Index: every indexed message has its document, and nothing else is there.
	inIndex := map[store.Key]bool{}
	req := bleve.NewSearchRequestOptions(bleve.NewMatchAllQuery(), 5000, 0, false)
	req.SortBy([]string{"_id"})
	for {
		res, err := a.idx.SearchInContext(ctx, req)
		if err != nil {
			return nil, fmt.Errorf("verify: list index documents: %w", err)
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
	unindexed := 0
	for k, m := range msgs {
		switch {
		case !m.indexed:
			unindexed++
		case !inIndex[k]:
			problem(Problem{Kind: "index-missing", SHA256: k.String(), Detail: "the catalog says indexed but the index has no document"})
		}
	}
	if unindexed > 0 {
		problem(Problem{Kind: "not-indexed", Detail: fmt.Sprintf("%d messages are not indexed yet (a writer catches up on start; `mailvault reindex` rebuilds)", unindexed)})
	}
	for k := range inIndex {
		if _, ok := msgs[k]; !ok {
			problem(Problem{Kind: "index-extra", SHA256: k.String(), Detail: "the index has a document the catalog does not know"})
		}
	}
	sort.Slice(rep.Problems, func(i, j int) bool {
		if rep.Problems[i].Kind != rep.Problems[j].Kind {
			return rep.Problems[i].Kind < rep.Problems[j].Kind
		}
		return rep.Problems[i].SHA256 < rep.Problems[j].SHA256
	})
	return rep, nil
}
