package harvest

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

// ErrAuth marks a login the server refused: the account is parked and
// retried slowly instead of hammering the server with a wrong password.
var ErrAuth = errors.New("authentication failed")

// ErrCertificate marks a server certificate that failed verification. Like
// ErrAuth it is a problem of configuration (or an attack), not of the
// network: the account is parked and retried slowly.
var ErrCertificate = errors.New("server certificate not trusted")

// Options tune a Harvester. A nil *Options is equivalent to a zero Options.
type Options struct {
	Logger *slog.Logger
	// FetchChunk is the most messages one UID FETCH asks for (default 100);
	// FetchBytes caps the bytes of one such chunk, by the sizes the server
	// gives (default 16 MiB; a larger message goes in a chunk of its own).
	FetchChunk int
	FetchBytes int
	// IdleRestart re-issues IDLE this often, well before servers drop idle
	// clients (default 9 minutes).
	IdleRestart time.Duration
	// ReadTimeout drops a connection on which the server has sent nothing
	// for this long while a command waits for it, such as a server that
	// stops in the middle of a message body (default 2 minutes). In IDLE
	// and between polls the wait allowed is that much longer than the
	// silence expected.
	ReadTimeout time.Duration
	// CommandTimeout drops a connection on which the server keeps sending
	// but has not completed a command for this long since the harvester
	// last sent one, such as a hostile server answering one FETCH with
	// untagged responses without end (default 10 minutes; it is never
	// shorter than the wait a command such as IDLE expects).
	CommandTimeout time.Duration
	// Backoff bounds between reconnects (defaults 1s and 5m); AuthBackoff is
	// the wait after a refused login (default 15m).
	MinBackoff, MaxBackoff, AuthBackoff time.Duration
	// StartJitter: the first connection waits a random time up to this
	// (default 0; serve sets it for many accounts).
	StartJitter time.Duration
	// FlagSweep is how often a polled mailbox's flags and UIDs are fetched
	// whole to notice flag changes and expunges when the server has no
	// CONDSTORE (default 10 minutes). With CONDSTORE, a change of
	// HIGHESTMODSEQ says when; a poll that finds MESSAGES, UIDNEXT,
	// UIDVALIDITY and HIGHESTMODSEQ unchanged costs one STATUS.
	FlagSweep time.Duration
	// Budget, shared by the harvesters of one process, bounds the bytes of
	// fetched messages held in memory by all of them at once (nil: no
	// bound beyond each harvester's FetchBytes).
	Budget *Budget
	// MaxMessageBytes: a larger message is recorded as skipped (default 256 MiB).
	MaxMessageBytes int64
	// GapCheck is how often each mailbox's UIDs are compared with the
	// archive's, to fetch what is missing below the checkpoint (gaps.go;
	// default 6 hours, negative: never, but on demand).
	GapCheck time.Duration
}

// Harvester harvests one account. Run it with Run; Status may be called from
// any goroutine.
type Harvester struct {
	acct Account
	sink Sink
	opts Options
	log  *slog.Logger

	mu     sync.Mutex
	status Status // its Counters too are guarded by mu

	// strikes counts failed fetches per "mailbox/uidvalidity/size/first UID
	// of the chunk", across reconnects; guarded by mu (IDLE workers fetch too).
	strikes map[string]int
	// splitUntil: per "mailbox/uidvalidity", fetch one message at a time up
	// to this UID (a chunk ending there failed repeatedly).
	splitUntil map[string]uint32
	// synced: per mailbox, what the server said at its last complete sync
	// (guarded by mu).
	synced map[string]stamp
	gaps   gapState // gaps.go
}

// New returns a Harvester for acct writing to sink.
func New(acct Account, sink Sink, opts *Options) *Harvester {
	h := &Harvester{acct: acct, sink: sink, strikes: map[string]int{}, splitUntil: map[string]uint32{}, synced: map[string]stamp{}}
	if opts != nil {
		h.opts = *opts
	}
	o := &h.opts
	if o.FetchChunk <= 0 {
		o.FetchChunk = 100
	}
	if o.FetchBytes <= 0 {
		o.FetchBytes = 16 << 20
	}
	if o.IdleRestart <= 0 {
		o.IdleRestart = 9 * time.Minute
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 2 * time.Minute
	}
	if o.CommandTimeout <= 0 {
		o.CommandTimeout = 10 * time.Minute
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Minute
	}
	if o.AuthBackoff <= 0 {
		o.AuthBackoff = 15 * time.Minute
	}
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = 256 << 20
	}
	if o.FlagSweep <= 0 {
		o.FlagSweep = 10 * time.Minute
	}
	if h.acct.PollInterval <= 0 {
		h.acct.PollInterval = time.Minute
	}
	if h.acct.MaxConnections <= 0 {
		h.acct.MaxConnections = 1
	}
	if len(h.acct.Mailboxes) == 0 {
		h.acct.Mailboxes = []string{"*"}
	}
	h.log = o.Logger
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.log = h.log.With("account", acct.Name)
	h.status = Status{Account: acct.Name, State: StateConnecting, Mailboxes: map[string]MailboxState{}}
	return h
}

// Run harvests until ctx is done, reconnecting after any failure with
// exponential backoff and jitter. It returns nil when ctx is cancelled.
func (h *Harvester) Run(ctx context.Context) error {
	// Spread the first connections of many accounts over a moment, so that
	// a process starting with hundreds of them does not knock on the server
	// all at once (Dovecot serves 100 logins at a time by default).
	select {
	case <-ctx.Done():
		return nil
	case <-time.After(rand.N(h.opts.StartJitter + 1)):
	}
	backoff := h.opts.MinBackoff
	for {
		start := time.Now()
		err := h.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		h.count(func(c *Counters) { c.Failures++ })
		wait := backoff
		switch {
		case errors.Is(err, ErrAuth), errors.Is(err, ErrCertificate):
			wait = h.opts.AuthBackoff
			h.setState(StateError, err.Error())
			h.log.Error("account parked until its configuration is fixed", "err", err, "retry_in", wait)
		default:
			if time.Since(start) > 2*h.opts.MaxBackoff {
				backoff = h.opts.MinBackoff // it worked for a while: start over
				wait = backoff
			}
			h.setState(StateBackingOff, err.Error())
			h.log.Warn("connection lost; reconnecting", "err", err, "retry_in", wait)
			backoff = min(backoff*2, h.opts.MaxBackoff)
		}
		// Full jitter around the wait so that many accounts of one server
		// do not reconnect in step.
		wait = wait/2 + rand.N(wait/2+1)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}
