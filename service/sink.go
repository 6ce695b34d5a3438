package service

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"mailvault/harvest"
	"mailvault/indexer"
	"mailvault/indexer/catalog"
)

// Sink is harvest.Sink over the archive: what the harvesters fetch goes
// straight into indexer.Ingest (harvest.Message is indexer.Item), and the
// mailbox bookkeeping into the catalog through the archive.
type Sink struct {
	a     *indexer.Archive
	stats sinkStats
	// unreadable: the Gmail messages (account, X-GM-MSGID) whose bytes
	// GmailRaw could not give (a blob corrupt or gone, a tombstone since
	// GmailKnown). GmailKnown leaves them out from then on, so that the
	// harvester downloads them: the store that failed moved no
	// checkpoint, and the next one must not fail the same way for ever.
	// Kept in memory only: after a restart one store fails once more.
	mu         sync.Mutex
	unreadable map[gmailKey]bool
}

type gmailKey struct {
	account string
	msgid   uint64
}

// sinkStats count what the harvesters asked the archive to do, for metrics.
type sinkStats struct {
	batches, messages, errors atomic.Int64
	storeNanos                atomic.Int64
}

// NewSink returns a Sink over a.
func NewSink(a *indexer.Archive) *Sink { return &Sink{a: a} }

func (s *Sink) Checkpoint(ctx context.Context, account, accountURL, mailbox string, uidvalidity uint32) (uint32, error) {
	next, _, err := s.a.OpenEpoch(ctx, account, accountURL, mailbox, uidvalidity)
	return next, err
}

func (s *Sink) Store(ctx context.Context, msgs []harvest.Message) error {
	items := make([]indexer.Item, len(msgs))
	known := map[string][]uint64{} // per account, the X-GM-MSGIDs not downloaded
	for i, m := range msgs {
		items[i] = indexer.Item{Account: m.Account, Mailbox: m.Mailbox, UIDValidity: m.UIDValidity, UID: m.UID,
			Flags: m.Flags, InternalDate: m.InternalDate, Raw: m.Raw}
		if g := m.Gmail; g != nil {
			items[i].Gmail = &catalog.Gmail{MsgID: g.MsgID, ThrID: g.ThrID, Labels: g.Labels}
			if m.Raw == nil {
				known[m.Account] = append(known[m.Account], g.MsgID)
			}
		}
	}
	// Known by X-GM-MSGID and not downloaded (harvest/gmail.go): the
	// occurrences are of the messages the archive holds, read in one
	// look-up per account.
	for acct, ids := range known {
		raws, failed, err := s.a.GmailRaws(ctx, acct, ids)
		if err == nil && len(failed) > 0 && ctx.Err() == nil {
			s.mu.Lock()
			if s.unreadable == nil {
				s.unreadable = map[gmailKey]bool{}
			}
			for id := range failed {
				s.unreadable[gmailKey{acct, id}] = true
			}
			s.mu.Unlock()
		}
		for i, m := range msgs {
			if m.Account != acct || m.Raw != nil || m.Gmail == nil {
				continue
			}
			if ferr := failed[m.Gmail.MsgID]; err == nil && ferr != nil {
				err = fmt.Errorf("gmail: X-GM-MSGID %d, %s UID %d: %w (it will be downloaded)", m.Gmail.MsgID, m.Mailbox, m.UID, ferr)
			}
			items[i].Raw = raws[m.Gmail.MsgID]
		}
		if err != nil {
			s.stats.errors.Add(1)
			return err
		}
	}
	begin := time.Now()
	_, err := s.a.Ingest(ctx, items)
	s.stats.storeNanos.Add(int64(time.Since(begin)))
	if err != nil {
		s.stats.errors.Add(1)
		return err
	}
	s.stats.batches.Add(1)
	s.stats.messages.Add(int64(len(msgs)))
	return nil
}

// GmailKnown is harvest.GmailSink's: the X-GM-MSGIDs of account the
// archive holds, but those whose bytes could not be read (unreadable).
func (s *Sink) GmailKnown(ctx context.Context, account string, msgids []uint64) (map[uint64]int64, error) {
	known, err := s.a.GmailKnown(ctx, account, msgids)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id := range known {
		if s.unreadable[gmailKey{account, id}] {
			delete(known, id)
		}
	}
	return known, nil
}

func (s *Sink) Reconcile(ctx context.Context, account, mailbox string, uidvalidity uint32, flags map[uint32][]string) error {
	_, _, err := s.a.Reconcile(ctx, account, mailbox, uidvalidity, flags)
	return err
}

func (s *Sink) Epoch(ctx context.Context, account, mailbox string, uidvalidity uint32) (harvest.EpochState, error) {
	modseq, live, err := s.a.EpochModSeq(ctx, account, mailbox, uidvalidity)
	return harvest.EpochState{ModSeq: modseq, Live: live}, err
}

func (s *Sink) Changes(ctx context.Context, account, mailbox string, uidvalidity uint32, ch harvest.Changes) error {
	ranges := func(rs []harvest.UIDRange) []catalog.UIDRange {
		out := make([]catalog.UIDRange, len(rs))
		for i, r := range rs {
			out[i] = catalog.UIDRange{Start: r.Start, Stop: r.Stop}
		}
		return out
	}
	_, _, err := s.a.Changes(ctx, account, mailbox, uidvalidity, catalog.EpochChanges{
		Flags: ch.Flags, Vanished: ranges(ch.Vanished), Listed: ch.Listed, Present: ranges(ch.Present), ModSeq: ch.ModSeq, Source: ch.Via})
	return err
}

func (s *Sink) Skip(ctx context.Context, account, mailbox string, uidvalidity, uid uint32, reason string) error {
	return s.a.Skip(ctx, account, mailbox, uidvalidity, uid, reason)
}

func (s *Sink) MailboxesGone(ctx context.Context, account string, onServer []string) (map[string]int, error) {
	return s.a.MailboxesGone(ctx, account, onServer)
}

var (
	_ harvest.ChangeSink = (*Sink)(nil)
	_ harvest.GmailSink  = (*Sink)(nil)
)
