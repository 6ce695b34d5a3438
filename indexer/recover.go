package indexer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"mailvault/indexer/catalog"
	"mailvault/indexer/store"
)

// Recovery of mail the catalog lost.
//
// A blob no catalog row references is a message the archive holds but
// cannot show: no search finds it, no status counts it, and the next index
// rebuild drops its last trace (its old index document). Two things leave
// one:
//
//   - the catalog lost rows: a truncated or deleted catalog.db-wal, a
//     restore of an older catalog.db, a disk fault. This is data loss;
//   - a crash (or a failed catalog commit) between Publish of a batch's
//     blobs and its catalog transaction (ingest.go). Invariant 1 holds: the
//     checkpoint did not advance, so the source delivers the message again
//     and ingest links the existing blob. Only a message gone from the
//     source before that re-delivery stays unreferenced.
//
// The blob alone cannot tell them apart (its mtime says when it was stored,
// not whether a transaction committed after that), so the ingest journal
// does (journal.go): Commit names a batch's new blobs in a small fsynced file
// before publishing them and clears it after the catalog commit, so an
// unreferenced blob the journal names was left by an interrupted ingest,
// and any other was committed once and lost by the catalog. The latter is
// data loss: Verify reports it as a problem (blob-unreferenced), Reindex and
// the offline rebuild (Options.DiscardIndex) refuse to run while one exists
// (ErrUnreferencedBlobs), and Recover catalogs it. The former is counted by
// Verify (VerifyReport.Interrupted), is not a problem and no reason to
// refuse a reindex (it was never indexed); Recover catalogs it too, for a
// source that will not deliver it again. Recovering one costs nothing: when
// its source delivers it again, ingest links it in its real place beside
// the recovered occurrence.
//
// Where a recovered message lived is unknown, and the catalog says so: its
// occurrence is in account RecoveredAccount, mailbox LostAndFound, source
// catalog.SourceRecovered, UIDVALIDITY 1, with UIDs given in the order of
// recovery, no flags and no INTERNALDATE. Everything the blob itself tells
// (content, headers, parse result) is recorded and indexed as for any
// message, so it is found by search (account:_recovered finds all of them),
// listed by status, and served byte-exact. The account name is reserved:
// EnsureMailbox and OpenEpoch refuse it, so no harvested or imported
// account can collide with it (and Recover refuses an archive where a real
// account of that name exists from before the reservation).

// RecoveredAccount and LostAndFound are the account and mailbox of the
// messages Recover catalogs.
const (
	RecoveredAccount = "_recovered"
	LostAndFound     = "lost+found"
	// recoveredUIDValidity is lost+found's one epoch.
	recoveredUIDValidity = 1
)

// ErrUnreferencedBlobs is (wrapped in) the error of Reindex and of Open with
// DiscardIndex while the store holds blobs the catalog does not reference.
var ErrUnreferencedBlobs = errors.New("the store holds messages the catalog does not reference")

// ErrCatalogCorrupt is returned by Recover when SQLite's own check of the
// catalog fails: recovering into a damaged database could make it worse.
var ErrCatalogCorrupt = errors.New("the catalog database is damaged")

func unreferencedError(action string, n int) error {
	return fmt.Errorf("%s: %w: %d blobs, mail the catalog lost (or a crash left between its blob write and its catalog commit); "+
		"run `mailvault recover` first, which catalogs them in %s/%s, or a rebuilt index would no longer show them at all",
		action, ErrUnreferencedBlobs, n, RecoveredAccount, LostAndFound)
}

func checkAccountName(account string) error {
	if account == RecoveredAccount {
		return fmt.Errorf("account name %q is reserved for the mail `mailvault recover` finds without a place; choose another", account)
	}
	return nil
}

// eachUnreferenced calls fn with every blob of the store that the catalog
// does not reference, in chunks, in no particular order. On a writable
// archive every chunk is checked after waiting for the Commit in flight:
// Commit holds commitMu from its blobs' Publish to its catalog commit, so a
// blob of a batch still committing is not taken for unreferenced.
//
// With lostOnly, blobs of an interrupted ingest (journal.go) are left out:
// only mail the catalog lost is listed.
func (a *Archive) eachUnreferenced(ctx context.Context, lostOnly bool, fn func([]store.Key) error) error {
	var chunk []store.Key
	check := func() error {
		if len(chunk) == 0 {
			return nil
		}
		if a.writer != nil {
			a.commitMu.Lock()
			a.commitMu.Unlock() //nolint:staticcheck // a barrier: wait for the Commit in flight
		}
		keys := make([][32]byte, len(chunk))
		for i, k := range chunk {
			keys[i] = k
		}
		known, err := a.cat.MessageStates(ctx, keys)
		if err != nil {
			return err
		}
		var out []store.Key
		for _, k := range chunk {
			if _, ok := known[k]; !ok && !(lostOnly && a.interrupted[k]) {
				out = append(out, k)
			}
		}
		chunk = chunk[:0]
		if len(out) == 0 {
			return nil
		}
		return fn(out)
	}
	err := a.store.Walk(ctx, func(k store.Key, _ string, ok bool) error {
		if !ok {
			return nil
		}
		chunk = append(chunk, k)
		if len(chunk) == 500 {
			return check()
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list unreferenced blobs: %w", err)
	}
	if err := check(); err != nil {
		return fmt.Errorf("list unreferenced blobs: %w", err)
	}
	return nil
}

func (a *Archive) countUnreferenced(ctx context.Context) (int, error) {
	n := 0
	err := a.eachUnreferenced(ctx, true, func(ks []store.Key) error { n += len(ks); return nil })
	return n, err
}

// RecoveredMessage is one message Recover cataloged.
type RecoveredMessage struct {
	SHA256     string `json:"sha256"`
	UID        uint32 `json:"uid"` // in RecoveredAccount/LostAndFound, UIDVALIDITY 1
	Subject    string `json:"subject,omitempty"`
	ParseError string `json:"parse_error,omitempty"`
}

// RecoverReport is what Recover did.
type RecoverReport struct {
	Account string `json:"account"` // RecoveredAccount
	Mailbox string `json:"mailbox"` // LostAndFound
	// Unreferenced is how many blobs no catalog row referenced.
	Unreferenced int `json:"unreferenced_blobs"`
	// Recovered are the messages cataloged (and indexed) in Account/Mailbox.
	Recovered []RecoveredMessage `json:"recovered"`
	// Linked counts blobs an ingest cataloged while Recover ran (their
	// source delivered them again): nothing to recover.
	Linked int `json:"cataloged_meanwhile"`
	// Failed are the blobs that could not be recovered, as Verify names
	// them (blob-corrupt: their bytes are not their key's message, so they
	// are left where they are for a human to look at).
	Failed []Problem `json:"failed"`
}

// Recover catalogs every blob of the store that the catalog does not
// reference, in RecoveredAccount/LostAndFound (see the comment at the top of
// this file), and indexes it. It is idempotent: a second run finds nothing
// to do. progress, when not nil, is called with the blobs handled so far
// and the total. It first runs SQLite's quick_check of the catalog and
// refuses a damaged one (ErrCatalogCorrupt). It runs on a live archive
// (ingest may go on) but not beside CatchUp, Reindex or Compact, which it
// waits for.
func (a *Archive) Recover(ctx context.Context, progress func(done, total int)) (*RecoverReport, error) {
	if a.writer == nil {
		return nil, fmt.Errorf("recover: archive %s is open read-only", a.dir)
	}
	a.maintMu.Lock()
	defer a.maintMu.Unlock()
	if found, err := a.cat.Check(ctx, true); err != nil {
		return nil, fmt.Errorf("recover: %w", err)
	} else if len(found) > 0 {
		return nil, fmt.Errorf("recover: %w: %s; restore catalog.db from a backup (keep this one) before recovering", ErrCatalogCorrupt, strings.Join(found, "; "))
	}
	var keys []store.Key
	if err := a.eachUnreferenced(ctx, false, func(ks []store.Key) error { keys = append(keys, ks...); return nil }); err != nil {
		return nil, fmt.Errorf("recover: %w", err)
	}
	slices.SortFunc(keys, func(x, y store.Key) int { return strings.Compare(x.String(), y.String()) })
	rep := &RecoverReport{Account: RecoveredAccount, Mailbox: LostAndFound, Unreferenced: len(keys), Recovered: []RecoveredMessage{}, Failed: []Problem{}}
	if len(keys) == 0 {
		return rep, nil
	}
	a.log.Warn("recover: the store holds messages the catalog lost; cataloging them", "blobs", len(keys), "account", RecoveredAccount, "mailbox", LostAndFound)
	mb, err := a.cat.EnsureMailbox(ctx, RecoveredAccount, LostAndFound, catalog.SourceRecovered, recoveredUIDValidity)
	if err != nil {
		return nil, fmt.Errorf("recover: %w", err)
	}
	if mb.Source != catalog.SourceRecovered {
		return nil, fmt.Errorf("recover: account %q mailbox %q exists and holds %s mail, not recovered mail; rename that account before recovering", RecoveredAccount, LostAndFound, mb.Source)
	}
	a.mu.Lock()
	a.mailboxes[[2]string{mb.Account, mb.Name}] = mb
	a.mu.Unlock()
	maxUID, err := a.cat.MaxUID(ctx, mb.ID, mb.UIDValidity)
	if err != nil {
		return nil, fmt.Errorf("recover: %w", err)
	}
	uid := max(mb.UIDNext, maxUID+1)
	done := 0
	for start := 0; start < len(keys); start += 64 {
		chunk := keys[start:min(start+64, len(keys))]
		// Cataloged since the listing (re-delivered by its source)?
		ks := make([][32]byte, len(chunk))
		for i, k := range chunk {
			ks[i] = k
		}
		known, err := a.cat.MessageStates(ctx, ks)
		if err != nil {
			return rep, fmt.Errorf("recover: %w", err)
		}
		var items []Item
		for _, k := range chunk {
			if _, ok := known[k]; ok {
				rep.Linked++
				continue
			}
			raw, err := a.readBlob(ctx, k)
			if err != nil {
				if ctx.Err() != nil {
					return rep, ctx.Err()
				}
				kind := "blob-corrupt"
				if errors.Is(err, store.ErrNotFound) {
					kind = "blob-missing"
				}
				rep.Failed = append(rep.Failed, Problem{Kind: kind, SHA256: k.String(), Detail: err.Error()})
				continue
			}
			items = append(items, Item{Account: RecoveredAccount, Mailbox: LostAndFound, UIDValidity: recoveredUIDValidity, UID: uid, Raw: raw})
			uid++
		}
		if len(items) > 0 {
			res, err := a.Ingest(ctx, items)
			if err != nil {
				return rep, fmt.Errorf("recover: %w", err)
			}
			for i, r := range res {
				if r.Outcome == Present {
					continue
				}
				m := RecoveredMessage{SHA256: r.Key.String(), UID: items[i].UID, ParseError: r.ParseError}
				if p, err := a.cat.Locate(ctx, [][32]byte{r.Key}); err == nil && p[r.Key] != nil {
					m.Subject = p[r.Key].Subject
				}
				rep.Recovered = append(rep.Recovered, m)
				a.log.Info("recover: message cataloged", "sha256", m.SHA256, "account", RecoveredAccount, "mailbox", LostAndFound, "uid", m.UID)
			}
		}
		done += len(chunk)
		if progress != nil {
			progress(done, len(keys))
		}
	}
	if err := a.Flush(ctx); err != nil {
		return rep, fmt.Errorf("recover: index: %w", err)
	}
	a.log.Warn("recover: done", "recovered", len(rep.Recovered), "failed", len(rep.Failed), "cataloged_meanwhile", rep.Linked,
		"account", RecoveredAccount, "mailbox", LostAndFound, "at", time.Now().UTC().Format(time.RFC3339))
	return rep, nil
}
