package harvest

import (
	"context"
	"errors"
	"fmt"
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
	// ThrottleBackoff is the first wait after the server throttled the
	// account (ErrThrottled; default 1m). It doubles while throttling
	// repeats, up to MaxBackoff (or itself, if larger); a longer wait the
	// server suggests is waited instead.
	ThrottleBackoff time.Duration
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
	// bye is the last BYE line a connection of the session read (guarded
	// by mu; throttle.go's withBye).
	bye string
	// polled: mailboxes of this session whose IDLE connection the server
	// refused as one too many, polled by the main connection instead
	// (guarded by mu; session.go's idleWorker).
	polled map[string]bool
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
	if o.ThrottleBackoff <= 0 {
		o.ThrottleBackoff = time.Minute
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
//
// There are three waits. A refused login or an untrusted certificate parks
// the account for AuthBackoff. A server's "slow down" (ErrThrottled) waits
// ThrottleBackoff, doubling while it repeats, or what the server suggests
// when that is longer: a throttled account is never parked, and retrying
// sooner would only be throttled again. Any other failure waits MinBackoff,
// doubling up to MaxBackoff. A session that worked for a while (longer than
// twice MaxBackoff) starts both doublings over.
func (h *Harvester) Run(ctx context.Context) error {
	// Spread the first connections of many accounts over a moment, so that
	// a process starting with hundreds of them does not knock on the server
	// all at once (Dovecot serves 100 logins at a time by default).
	select {
	case <-ctx.Done():
		return nil
	case <-time.After(rand.N(h.opts.StartJitter + 1)):
	}
	backoff, throttled := h.opts.MinBackoff, h.opts.ThrottleBackoff
	for {
		start := time.Now()
		h.mu.Lock()
		h.bye = ""
		h.mu.Unlock()
		err := h.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		err = h.withBye(err)
		if time.Since(start) > 2*h.opts.MaxBackoff {
			backoff, throttled = h.opts.MinBackoff, h.opts.ThrottleBackoff // it worked for a while: start over
		}
		suggested, isThrottle := throttle(err)
		var wait time.Duration
		switch {
		case errors.Is(err, ErrAuth), errors.Is(err, ErrCertificate):
			h.count(func(c *Counters) { c.Failures++ })
			wait = jitter(h.opts.AuthBackoff)
			h.setWaiting(StateError, err.Error(), time.Now().Add(wait))
			h.log.Error("account parked until its configuration is fixed", "err", err, "retry_in", wait)
		case isThrottle:
			if !errors.Is(err, ErrThrottled) {
				err = fmt.Errorf("%w: %w", ErrThrottled, err)
			}
			h.count(func(c *Counters) { c.Failures++; c.Throttled++ })
			wait = jitter(throttled)
			if suggested > wait {
				// Not less than the server asked for; a little more, so
				// that accounts told the same do not come back in step.
				wait = suggested + rand.N(suggested/4+1)
			}
			throttled = min(throttled*2, max(h.opts.MaxBackoff, h.opts.ThrottleBackoff))
			h.setWaiting(StateThrottled, err.Error(), time.Now().Add(wait))
			h.log.Warn("the server asks to slow down; reconnecting later", "err", err, "retry_in", wait)
		default:
			h.count(func(c *Counters) { c.Failures++ })
			wait = jitter(backoff)
			backoff = min(backoff*2, h.opts.MaxBackoff)
			h.setWaiting(StateBackingOff, err.Error(), time.Now().Add(wait))
			h.log.Warn("connection lost; reconnecting", "err", err, "retry_in", wait)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// jitter is a random wait between d/2 and d ("full jitter" around d), so
// that many accounts of one server do not reconnect in step.
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}
