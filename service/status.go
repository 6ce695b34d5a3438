package service

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"mailvault/harvest"
	"mailvault/indexer"
	"mailvault/indexer/catalog"
)

// State is where a mailbox stands, as users read it: a harvester's state
// (harvest.State) while one runs, or one of these.
type State string

const (
	// StateArchived: imported mail, which has no server to follow.
	StateArchived State = "archived"
	// StateNotRunning: harvested mail with no harvester running for its
	// account (serve stopped, or the account left the configuration).
	StateNotRunning State = "not running"
)

// MailboxStatus is one mailbox: what the catalog holds and, while its
// account is harvested, what the harvester reports. It is the one status
// model: the status page, /api/status, `mailvault status [--json]` and the
// metrics all read it.
type MailboxStatus struct {
	indexer.MailboxStatus
	ServerMessages *uint32 `json:"server_messages"` // null when no harvester reports it
	State          State   `json:"state"`
	Error          string  `json:"error"`
	// RetryAt: while the account waits to reconnect (backing off,
	// throttled by its server, parked), when it tries again.
	RetryAt *time.Time `json:"retry_at,omitempty"`
	// While catching up: messages to fetch in this catch-up, fetched so far,
	// rate (messages per second) and estimated seconds left.
	ToFetch    int     `json:"to_fetch,omitempty"`
	Fetched    int     `json:"fetched,omitempty"`
	Rate       float64 `json:"rate,omitempty"`
	ETASeconds float64 `json:"eta_seconds,omitempty"`
}

// ProgressText is "1200/6046 fetched, 350 msg/s, ETA 14s", or "" when the
// mailbox is not catching up.
func (m MailboxStatus) ProgressText() string {
	if m.ToFetch == 0 {
		return ""
	}
	s := fmt.Sprintf("%d/%d fetched", m.Fetched, m.ToFetch)
	if m.Rate > 0 {
		s += fmt.Sprintf(", %.0f msg/s, ETA %s", m.Rate, (time.Duration(m.ETASeconds) * time.Second).String())
	}
	return s
}

// Status is the state of the archive as one caller may see it.
type Status struct {
	Mailboxes []MailboxStatus `json:"mailboxes"`
	// Harvesting is true while this process runs harvesters (serve); false
	// for an archive of imported mail or a one-shot command.
	Harvesting bool `json:"harvesting"`
	// Unindexed counts messages the index has not caught up with (all
	// accounts: the index backlog is not per account). Zero for callers who
	// do not see every account.
	Unindexed int       `json:"unindexed"`
	Jobs      []JobInfo `json:"jobs"`
	// Attachments counts attachment text (all accounts, like Unindexed;
	// nil for callers who do not see every account).
	Attachments *AttachmentStatus `json:"attachments,omitempty"`
	// Ledger is the ledger's state, for those who check the archive
	// (ledgerapi.go), when it has one.
	Ledger *LedgerStatus `json:"ledger,omitempty"`
	// Completeness is the last gap check of each harvested mailbox in
	// scope (gaps.go).
	Completeness *Completeness `json:"completeness"`
}

// Status returns every mailbox c may see, the live harvest state merged in,
// and the jobs c may see.
func (s *Service) Status(ctx context.Context, c Caller) (*Status, error) {
	cat, err := s.a.Status(ctx)
	if err != nil {
		return nil, err
	}
	running := s.isRunning()
	var live []harvest.Status
	if running {
		live = s.Harvesters()
	}
	out := merge(c, cat, live)
	out.Harvesting, out.Jobs = running && len(s.harvesters) > 0, s.jobs.list(c)
	if out.Completeness, err = s.Completeness(ctx, c); err != nil {
		return nil, err
	}
	if c.SeesAll() {
		if out.Unindexed, err = s.a.CountUnindexed(ctx); err != nil {
			return nil, err
		}
		if out.Attachments, err = s.attachmentStatus(ctx); err != nil {
			return nil, err
		}
	}
	if l := s.opts.Ledger; l != nil && checksArchive(c) {
		if out.Ledger, err = l.status(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// OfflineStatus is the status of the archive in dir when no serve runs:
// the catalog alone, read without taking the archive (it works beside an
// import that holds it).
func OfflineStatus(ctx context.Context, dir string) (*Status, error) {
	cat, err := indexer.Status(ctx, dir)
	if err != nil {
		return nil, err
	}
	out := merge(Operator(), cat, nil)
	for _, m := range out.Mailboxes {
		out.Unindexed += m.Unindexed
	}
	c, err := indexer.ExtractCountsOf(ctx, dir)
	if err != nil {
		return nil, err
	}
	out.Attachments = attachmentStatus(c)
	checks, err := indexer.GapChecksOf(ctx, dir)
	if err != nil {
		return nil, err
	}
	out.Completeness = &Completeness{Archive: ArchiveIdentity{DataDir: dir}, GeneratedAt: time.Now().UTC(),
		GeneratedBy: Operator().Name, Mailboxes: append([]catalog.GapCheck{}, checks...), Errors: []string{}}
	return out, nil
}

// merge is the one status model: the catalog's mailboxes, in c's scope,
// with the live state of the harvesters (none when not harvesting).
func merge(c Caller, cat []indexer.MailboxStatus, live []harvest.Status) *Status {
	byAccount := make(map[string]harvest.Status, len(live))
	for _, st := range live {
		byAccount[st.Account] = st
	}
	now := time.Now()
	out := &Status{Mailboxes: []MailboxStatus{}, Jobs: []JobInfo{}}
	for _, ms := range cat {
		if !c.Sees(ms.Account) {
			continue
		}
		l := MailboxStatus{MailboxStatus: ms, State: StateArchived}
		if ms.Source == "imap" {
			l.State = StateNotRunning
		}
		if acct, ok := byAccount[ms.Account]; ok {
			l.State, l.Error = State(acct.State), acct.Error
			if !acct.RetryAt.IsZero() && acct.State != harvest.StateHarvesting {
				at := acct.RetryAt.UTC()
				l.RetryAt = &at
			}
			if mb, ok := acct.Mailboxes[ms.Mailbox]; ok {
				n := mb.ServerMessages
				l.ServerMessages = &n
				if acct.State == harvest.StateHarvesting {
					l.State = State(mb.State)
				}
				if mb.State == harvest.StateCatchingUp && mb.ToFetch > 0 {
					l.ToFetch, l.Fetched = mb.ToFetch, mb.Fetched
					if el := now.Sub(mb.CatchUpSince).Seconds(); el > 0 && mb.Fetched > 0 {
						l.Rate = float64(mb.Fetched) / el
						l.ETASeconds = math.Round(float64(mb.ToFetch-mb.Fetched) / l.Rate)
					}
				}
				if !mb.LastSync.IsZero() {
					l.LastSync = mb.LastSync.UTC().Format(time.RFC3339)
				}
			}
		}
		out.Mailboxes = append(out.Mailboxes, l)
	}
	// An account being harvested that has no mailbox in the catalog yet (its
	// login fails, its server is down) still gets a line with its error.
	for _, acct := range live {
		if !c.Sees(acct.Account) || slices.ContainsFunc(out.Mailboxes, func(l MailboxStatus) bool { return l.Account == acct.Account }) {
			continue
		}
		l := MailboxStatus{MailboxStatus: indexer.MailboxStatus{Account: acct.Account, Source: "imap"},
			State: State(acct.State), Error: acct.Error}
		if !acct.RetryAt.IsZero() && acct.State != harvest.StateHarvesting {
			at := acct.RetryAt.UTC()
			l.RetryAt = &at
		}
		out.Mailboxes = append(out.Mailboxes, l)
	}
	return out
}

func (s *Service) isRunning() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running
}

// Harvesters returns the live state of every harvester (for metrics).
func (s *Service) Harvesters() []harvest.Status {
	out := make([]harvest.Status, len(s.harvesters))
	for i, h := range s.harvesters {
		out[i] = h.Status()
	}
	return out
}
