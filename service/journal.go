package service

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"mailvault/indexer"
	"mailvault/indexer/catalog"
	"mailvault/journal"
)

// JournalSink is journal.Sink over the archive: the journal listener's
// batches go into indexer.Ingest, each message with its envelope, so that
// blob, occurrence and envelope are committed together (one catalog
// transaction per batch).
type JournalSink struct {
	a                   *indexer.Archive
	batches, messages   atomic.Int64
	retried, storeFails atomic.Int64
}

// NewJournalSink returns a JournalSink over a.
func NewJournalSink(a *indexer.Archive) *JournalSink { return &JournalSink{a: a} }

// OpenJournal creates the journal mailbox (source journal, UIDVALIDITY the
// time of creation, kept in the catalog ever after) and returns its
// UIDVALIDITY and checkpoint. A mailbox of that name that is harvested or
// imported is refused: journal mail never mixes with another source.
func (j *JournalSink) OpenJournal(ctx context.Context, account, mailbox string) (uint32, uint32, error) {
	mb, err := j.a.EnsureMailbox(ctx, account, mailbox, catalog.SourceJournal, uint32(time.Now().Unix()))
	if err != nil {
		return 0, 0, err
	}
	if mb.Source != catalog.SourceJournal {
		return 0, 0, fmt.Errorf("mailbox %q of account %q holds %s mail, not journal mail: set journal.account to an account of its own", mailbox, account, mb.Source)
	}
	return mb.UIDValidity, max(mb.UIDNext, 1), nil
}

// StoreJournal ingests ds with their envelopes.
func (j *JournalSink) StoreJournal(ctx context.Context, ds []journal.Delivery) error {
	items := make([]indexer.Item, len(ds))
	for i, d := range ds {
		e := d.Envelope
		items[i] = indexer.Item{Account: d.Account, Mailbox: d.Mailbox, UIDValidity: d.UIDValidity, UID: d.UID,
			InternalDate: e.ReceivedAt, Raw: d.Raw,
			Envelope: &indexer.Envelope{MailFrom: e.MailFrom, RcptTo: e.RcptTo, Recipients: e.Recipients,
				Client: e.Client, Helo: e.Helo, Listener: e.Listener, AuthUser: e.AuthUser, ReceivedAt: e.ReceivedAt}}
	}
	res, err := j.a.Ingest(ctx, items)
	if err != nil {
		j.storeFails.Add(1)
		return err
	}
	for _, r := range res {
		if r.Outcome == indexer.Present {
			j.retried.Add(1)
		}
	}
	j.batches.Add(1)
	j.messages.Add(int64(len(ds)))
	return nil
}

var _ journal.Sink = (*JournalSink)(nil)
