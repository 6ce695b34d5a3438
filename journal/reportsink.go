package journal

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"sync"
)

// ReportsMailbox is the mailbox of the journal account that keeps the
// journal reports themselves, once their originals are unwrapped.
const ReportsMailbox = "Journal/Reports"

// ReportLinker records that a report carried an original (both archived),
// or, with a zero original and the parse error, that a message claiming
// to be a report did not parse; *indexer.Archive is one.
type ReportLinker interface {
	LinkJournalReport(ctx context.Context, report, original [32]byte, parseErr string) error
}

// UnwrapReports returns a Sink that unwraps Exchange journal reports
// (Unwrap) on their way into inner:
//
//   - The original becomes the delivery in the journal mailbox, under the
//     delivery's UID, with the report's envelope as its envelope: MAIL
//     FROM is the report's Sender and the recipients are every recipient
//     the report lists (Bcc and expanded group members included; their
//     RCPT TO is the same list, as the report stands for the original's
//     envelope). The session's client, HELO, listener, user and time stay.
//   - The report itself is kept byte-exact in ReportsMailbox of the same
//     account, under the same UIDVALIDITY and UID as its original (so the
//     pair is one UID in two mailboxes), with the SMTP envelope that
//     brought it, and linked to the original (the catalog's
//     journal_reports) before StoreJournal returns, so the reply that
//     acknowledges it waits for the link too. A crash between store and
//     link leaves the delivery unacknowledged: the retry is recorded as
//     present (same bytes, same envelope) and links then.
//   - A message that claims to be a report and does not parse is stored
//     as it came in the journal mailbox, with the SMTP envelope, flagged
//     (a journal_reports row with its error and no original: the message
//     page and the coverage report show it), and acknowledged (invariant
//     8: bad input never stops the line; its bytes are durable and a retry
//     would bring the same bytes). The error is logged with its UID.
//   - Anything else passes through unchanged.
//
// OpenJournal opens ReportsMailbox next to the journal mailbox.
func UnwrapReports(inner Sink, links ReportLinker, log *slog.Logger) Sink {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &reportSink{inner: inner, links: links, log: log}
}

type reportSink struct {
	inner Sink
	links ReportLinker
	log   *slog.Logger

	mu       sync.Mutex
	reportUV map[string]uint32 // account → UIDVALIDITY of its ReportsMailbox
}

func (s *reportSink) OpenJournal(ctx context.Context, account, mailbox string) (uint32, uint32, error) {
	uv, next, err := s.inner.OpenJournal(ctx, account, mailbox)
	if err != nil {
		return uv, next, err
	}
	ruv, _, err := s.inner.OpenJournal(ctx, account, ReportsMailbox)
	if err != nil {
		return 0, 0, fmt.Errorf("journal reports mailbox: %w", err)
	}
	s.mu.Lock()
	if s.reportUV == nil {
		s.reportUV = map[string]uint32{}
	}
	s.reportUV[account] = ruv
	s.mu.Unlock()
	return uv, next, nil
}

func (s *reportSink) StoreJournal(ctx context.Context, ds []Delivery) error {
	out := make([]Delivery, 0, len(ds))
	type link struct {
		report, original [32]byte
		err              string
	}
	var links []link
	for _, d := range ds {
		r, ok, err := Unwrap(d.Raw)
		switch {
		case err != nil:
			s.log.Warn("journal: a journal report that does not parse is archived as it came, flagged",
				"uidvalidity", d.UIDValidity, "uid", d.UID, "err", err)
			out = append(out, d)
			links = append(links, link{report: sha256.Sum256(d.Raw), err: err.Error()})
		case ok:
			ruv, err := s.reportsUIDValidity(ctx, d.Account)
			if err != nil {
				return err
			}
			rep := d
			rep.Mailbox, rep.UIDValidity = ReportsMailbox, ruv
			orig := d
			orig.Raw = r.Original
			from, rcpts := r.Envelope()
			orig.Envelope.MailFrom = from
			orig.Envelope.RcptTo = rcpts
			orig.Envelope.Recipients = rcpts
			out = append(out, orig, rep)
			links = append(links, link{report: sha256.Sum256(d.Raw), original: sha256.Sum256(r.Original)})
		default:
			out = append(out, d)
		}
	}
	if err := s.inner.StoreJournal(ctx, out); err != nil {
		return err
	}
	for _, l := range links {
		if err := s.links.LinkJournalReport(ctx, l.report, l.original, l.err); err != nil {
			return err
		}
	}
	return nil
}

func (s *reportSink) reportsUIDValidity(ctx context.Context, account string) (uint32, error) {
	s.mu.Lock()
	uv, ok := s.reportUV[account]
	s.mu.Unlock()
	if ok {
		return uv, nil
	}
	uv, _, err := s.inner.OpenJournal(ctx, account, ReportsMailbox)
	if err != nil {
		return 0, fmt.Errorf("journal reports mailbox: %w", err)
	}
	s.mu.Lock()
	if s.reportUV == nil {
		s.reportUV = map[string]uint32{}
	}
	s.reportUV[account] = uv
	s.mu.Unlock()
	return uv, nil
}
