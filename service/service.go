package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"mailvault/harvest"
	"mailvault/indexer"
)

// Options configure a Service. A nil *Options is equivalent to a zero Options.
type Options struct {
	// Accounts are harvested from IMAP while Run runs; none is fine (an
	// archive of imported mail).
	Accounts []harvest.Account
	// Harvest are the harvesters' options (logger, fetch budget, jitter);
	// Logger is filled in when nil.
	Harvest *harvest.Options
	// Users is the user, token and audit store. Without one the service
	// refuses everything it must audit (searches, reads, downloads,
	// exports, jobs): an archive's accesses are never unrecorded. The CLI
	// opens the data directory's users.db for it, users or none.
	Users *Users
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
	// Ledger, when set, follows the catalog and the audit trail
	// (ledger.go): every audit entry is in it before the audited result
	// is returned.
	Ledger *Ledger
	// Retention is the retention config (retention.go); nil is
	// DefaultRetention: WORM, nothing ever deleted.
	Retention *RetentionConfig
	// ReadyLag is the index backlog (messages) above which Ready reports
	// not ready (default 5000).
	ReadyLag int
	// AccountAddresses are each account's mail addresses (the config's
	// accounts[].addresses): the journal coverage report counts a journal
	// message for the accounts its envelope names (provenance.go). An
	// account's IMAP username counts too when it is an address.
	AccountAddresses map[string][]string
}

// Service is the archive as a service. Its methods are safe for concurrent
// use. Run runs its harvesters and jobs; the query methods work whether Run
// runs or not (a one-shot command opens the archive, makes a Service and
// calls them).
type Service struct {
	a    *indexer.Archive
	opts Options
	log  *slog.Logger
	sink *Sink

	harvesters []*harvest.Harvester
	jobs       *jobs

	mu      sync.Mutex
	running bool

	imapMu   sync.Mutex
	imapLast *imapAnswer // searchIMAP's last whole answer (search.go)

	// guard is the login guard of every front door that checks passwords
	// (the IMAP view's ViewLogin; serve gives the web the same one through
	// LoginGuard), so that failures count once whichever door they use.
	guard *LoginGuard
}

// New returns a Service over the open archive a. The archive stays the
// caller's to close, after Run has returned.
func New(a *indexer.Archive, opts *Options) *Service {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.ReadyLag <= 0 {
		o.ReadyLag = 5000
	}
	s := &Service{a: a, opts: o, log: o.Logger, sink: NewSink(a), guard: NewLoginGuard()}
	hopts := harvest.Options{}
	if o.Harvest != nil {
		hopts = *o.Harvest
	}
	if hopts.Logger == nil {
		hopts.Logger = o.Logger
	}
	for _, acct := range o.Accounts {
		s.harvesters = append(s.harvesters, harvest.New(acct, gapSink{s.sink, s}, &hopts))
	}
	s.jobs = newJobs(s)
	return s
}

// Archive returns the archive the service runs over.
func (s *Service) Archive() *indexer.Archive { return s.a }

// Run runs the harvesters until ctx is done, then waits for them to log out
// and for running jobs to stop, and flushes the index. It first catches the
// index up with the catalog (what a crash left unindexed).
//
// Harvesters are started only by Run, so a process does every fallible
// step of its setup before it calls Run, and nothing writes to the archive
// before then.
func (s *Service) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return errors.New("service: Run called twice")
	}
	s.running = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.running = false
		s.mu.Unlock()
	}()

	if err := s.a.CatchUp(ctx, nil); err != nil && ctx.Err() == nil {
		// The archive is usable; the messages stay unindexed and the next
		// start or a reindex retries them. `verify` names them.
		s.log.Error("catching up the index", "err", err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.runRetentionSchedule(ctx) // off by default
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.backfillFingerprints(ctx) // provenance.go: rows from before fingerprints, once
	}()
	for _, h := range s.harvesters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.Run(ctx)
		}()
	}
	<-ctx.Done()
	// Ordered shutdown: the harvesters send DONE and LOGOUT (their Run
	// returns), jobs see the cancelled context and stop at a safe point,
	// then the index writer commits what is queued.
	wg.Wait()
	s.jobs.wait()
	fctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.a.Flush(fctx); err != nil {
		return fmt.Errorf("flush the index: %w", err)
	}
	return nil
}

// Ready reports whether the archive answers searches with at most a moment's
// mail missing: the index is less than ReadyLag messages behind the catalog.
func (s *Service) Ready(ctx context.Context) error {
	n, err := s.a.CountUnindexed(ctx)
	if err != nil {
		return err
	}
	if n > s.opts.ReadyLag {
		return fmt.Errorf("the index is %d messages behind the catalog (catching up)", n)
	}
	return nil
}

// audit records what c did. It fails closed: an error means the access
// must not go ahead, and a service without a user store has no trail to
// write to (errNoAuditStore).
func (s *Service) audit(ctx context.Context, c Caller, action, detail string) error {
	return s.record(ctx, c, action, detail, false)
}

// auditRead is audit for the reads that come in bulk (Users.AuditRead):
// the IMAP view's SELECT, SEARCH and FETCH, one row per command.
func (s *Service) auditRead(ctx context.Context, c Caller, action, detail string) error {
	return s.record(ctx, c, action, detail, true)
}

func (s *Service) record(ctx context.Context, c Caller, action, detail string, bulkRead bool) error {
	if s.opts.Users == nil {
		s.log.Error("audit trail: no audit store; refusing the request", "user", c.Name, "action", action)
		return errNoAuditStore
	}
	e := AuditEntry{User: c.Name, Action: action, Detail: auditText(detail), Remote: c.Remote}
	write := s.opts.Users.Audit
	if bulkRead {
		write = s.opts.Users.AuditRead
	}
	if err := write(ctx, e); err != nil {
		s.log.Error("audit trail: cannot record; refusing the request", "user", c.Name, "action", action, "err", err)
		return fmt.Errorf("the audit trail cannot be written, so nothing is served (logged): %w", err)
	}
	return nil
}

// Audit records an action that happens outside the service's own methods
// (a login at a front door, a user added). It fails closed like the rest.
func (s *Service) Audit(ctx context.Context, c Caller, action, detail string) error {
	return s.audit(ctx, c, action, detail)
}
