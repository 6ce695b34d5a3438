package harvest

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"mime"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-message/charset"
	"github.com/emersion/go-sasl"
	"golang.org/x/sync/semaphore"
)

// ErrAuth marks a login the server refused: the account is parked and
// retried slowly instead of hammering the server with a wrong password.
var ErrAuth = errors.New("authentication failed")

// ErrCertificate marks a server certificate that failed verification. Like
// ErrAuth it is a problem of configuration (or an attack), not of the
// network: the account is parked and retried slowly.
var ErrCertificate = errors.New("server certificate not trusted")

// Account is one IMAP account to harvest.
type Account struct {
	Name string // unique; used in URLs and output
	Host string
	Port int
	// TLS is "implicit" (default, port 993), "starttls" or "none" (only for
	// loopback test servers: credentials travel in clear text).
	TLS                string
	TLSCAFile          string // extra CA for the server certificate; certificates are always verified unless
	InsecureSkipVerify bool   // this is set
	Username           string
	Password           string
	// Auth is how to log in: "plain" (default: AUTHENTICATE PLAIN, with
	// SASL-IR when offered, or the LOGIN command on servers without
	// AUTH=PLAIN), "login" (the LOGIN command) or "xoauth2" (AUTHENTICATE
	// XOAUTH2 with an OAuth 2 access token).
	Auth string
	// TokenFile holds the XOAUTH2 access token. It is read at every
	// connection, so that whatever refreshes the token can rewrite it;
	// without it the token is Password.
	TokenFile string
	// Mailboxes are include patterns (path.Match syntax on the decoded name,
	// "*" for all); Exclude patterns remove from them.
	Mailboxes []string
	Exclude   []string
	// Idle names the mailbox watched with IDLE (a name or a special-use
	// attribute such as `\Sent`); the first one that exists is used. The
	// others are polled every PollInterval.
	Idle         []string
	PollInterval time.Duration
	// MaxConnections caps the connections to the account (default 1): one
	// per IDLE mailbox. Servers limit connections per user and IP (Dovecot
	// 10, Gmail 15, Exchange 16).
	MaxConnections int
}

// URL is the account's RFC 5092 base, imap://user@host[:port].
func (a *Account) URL() string {
	host := a.Host
	if a.Port != 0 && !(a.Port == 993 && a.tlsMode() == "implicit") && !(a.Port == 143 && a.tlsMode() != "implicit") {
		host = net.JoinHostPort(a.Host, strconv.Itoa(a.Port))
	}
	return (&url.URL{Scheme: "imap", User: url.User(a.Username), Host: host}).String()
}

func (a *Account) tlsMode() string {
	if a.TLS == "" {
		return "implicit"
	}
	return a.TLS
}

// Message is one message fetched from a server, with where it lives.
type Message struct {
	Account      string
	Mailbox      string
	UIDValidity  uint32
	UID          uint32
	Flags        []string
	InternalDate time.Time
	Raw          []byte // BODY[] exactly as the server sent it
}

// Sink is where harvested mail goes (implemented over indexer.Archive).
type Sink interface {
	// Checkpoint returns the first UID of mailbox not yet archived in the
	// epoch uidvalidity; a UIDVALIDITY the Sink has not seen starts a new
	// epoch at 1.
	Checkpoint(ctx context.Context, account, accountURL, mailbox string, uidvalidity uint32) (uint32, error)
	// Store archives msgs durably before it returns; it advances the
	// checkpoint past them. Storing a message twice changes nothing.
	Store(ctx context.Context, msgs []Message) error
	// Reconcile gives the server's current UIDs of an epoch with their
	// flags: archived copies whose UID is gone are marked expunged (never
	// removed), changed flags are updated.
	Reconcile(ctx context.Context, account, mailbox string, uidvalidity uint32, flags map[uint32][]string) error
	// Skip records that a message could not be fetched after repeated tries
	// and moves the checkpoint past it, so that one bad message never stalls
	// its mailbox. The record says what failed; nothing is silently lost.
	Skip(ctx context.Context, account, mailbox string, uidvalidity, uid uint32, reason string) error
	// MailboxesGone is told every mailbox the server LISTs (harvested or
	// not): what was archived from any other mailbox of the account is
	// gone from the server (deleted, or renamed) and is marked expunged,
	// never removed. It returns those mailboxes, with how many messages.
	MailboxesGone(ctx context.Context, account string, onServer []string) (map[string]int, error)
}

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
}

// Budget is a process-wide bound on the bytes of fetched messages waiting
// to be stored: a harvester takes a chunk's size from it (by the sizes the
// server gives) before fetching the chunk and gives it back once the chunk
// is stored. Many accounts catching up at once then wait for each other
// instead of each holding FetchBytes.
type Budget struct {
	sem  *semaphore.Weighted
	size int64
}

// NewBudget returns a Budget of n bytes.
func NewBudget(n int64) *Budget { return &Budget{sem: semaphore.NewWeighted(n), size: n} }

// acquire takes n bytes (at most the whole budget: one message larger than
// the budget waits for all of it, and then goes alone).
func (b *Budget) acquire(ctx context.Context, n int64) (release func(), err error) {
	if b == nil {
		return func() {}, nil
	}
	n = max(1, min(n, b.size))
	if err := b.sem.Acquire(ctx, n); err != nil {
		return nil, err
	}
	return func() { b.sem.Release(n) }, nil
}

// State is where an account's or a mailbox's harvest stands. The values are
// shown to users as they are (status page, `mailvault status`).
type State string

// Account states.
const (
	StateConnecting State = "connecting"
	StateHarvesting State = "harvesting"
	StateBackingOff State = "backing off"
	StateError      State = "error" // parked: a refused login or an untrusted certificate
)

// Mailbox states, while the account is harvesting.
const (
	StateCatchingUp State = "catching up"
	StateIdle       State = "idle"
	StatePolling    State = "polling"
)

// MailboxState is what a Harvester knows of one mailbox, for status.
type MailboxState struct {
	Mailbox        string
	UIDValidity    uint32
	ServerMessages uint32
	State          State // StateCatchingUp, StateIdle, StatePolling
	LastSync       time.Time
	// While catching up: messages this catch-up has to fetch, how many it
	// has fetched, and since when.
	ToFetch, Fetched int       `json:",omitempty"`
	CatchUpSince     time.Time `json:",omitzero"`
}

// Status is the state of one account's harvest.
type Status struct {
	Account   string
	State     State // StateConnecting, StateHarvesting, StateBackingOff, StateError
	Error     string
	Mailboxes map[string]MailboxState
	Counters  Counters
}

// Counters count since the Harvester was made, for metrics.
type Counters struct {
	Logins   int64 // successful logins (one per connection)
	Failures int64 // sessions ended by an error (then a reconnect)
	Messages int64 // messages fetched and handed to the Sink
	Bytes    int64 // their bytes
	Skipped  int64 // messages recorded as skipped
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
}

// stamp is a mailbox's state on the server as EXAMINE or STATUS report it.
type stamp struct {
	uidValidity, uidNext, messages uint32
	modSeq                         uint64 // 0 without CONDSTORE
	reconciled                     time.Time
}

// same reports whether nothing was added, expunged or (with CONDSTORE)
// changed between s and t.
func (s stamp) same(t stamp) bool {
	return s.uidValidity == t.uidValidity && s.uidNext == t.uidNext && s.messages == t.messages && s.modSeq == t.modSeq
}

// Fetch failures before a chunk is fetched one message at a time, and before
// a single message is skipped (and recorded).
const (
	strikesToSplit = 2
	strikesToSkip  = 3
)

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

// Status returns a copy of the harvester's current state.
func (h *Harvester) Status() Status {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.status
	s.Mailboxes = make(map[string]MailboxState, len(h.status.Mailboxes))
	for k, v := range h.status.Mailboxes {
		s.Mailboxes[k] = v
	}
	return s
}

func (h *Harvester) count(f func(c *Counters)) {
	h.mu.Lock()
	f(&h.status.Counters)
	h.mu.Unlock()
}

func (h *Harvester) setState(state State, errText string) {
	h.mu.Lock()
	h.status.State, h.status.Error = state, errText
	h.mu.Unlock()
}

func (h *Harvester) setMailbox(ms MailboxState) {
	h.mu.Lock()
	h.status.Mailboxes[ms.Mailbox] = ms
	h.mu.Unlock()
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

// conn is one logged-in connection and the signals of its unilateral data.
type conn struct {
	c        *imapclient.Client
	tc       *timeoutConn
	changed  chan struct{} // EXISTS, EXPUNGE or FETCH arrived; buffered, never blocks the reader
	expunged atomic.Bool
	flagged  atomic.Bool // a FETCH the client did not ask for: flags changed
}

// connect dials and logs in. The returned func ends the session: politely
// (LOGOUT) when ctx is done, and the connection is closed outright if ctx is
// done and the polite way takes too long.
func (h *Harvester) connect(ctx context.Context) (*conn, func(), error) {
	cn := &conn{changed: make(chan struct{}, 1)}
	signal := func() {
		select {
		case cn.changed <- struct{}{}:
		default:
		}
	}
	c, tc, err := h.dial(ctx, &imapclient.Options{
		WordDecoder: &mime.WordDecoder{CharsetReader: charset.Reader},
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			// Runs on the client's reader goroutine: only signal.
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil {
					signal()
				}
			},
			Expunge: func(uint32) {
				cn.expunged.Store(true)
				signal()
			},
			// Runs on a goroutine of its own, and must consume msg.
			Fetch: func(msg *imapclient.FetchMessageData) {
				msg.Collect()
				cn.flagged.Store(true)
				signal()
			},
		},
	})
	if err != nil {
		return nil, nil, err
	}
	cn.c, cn.tc = c, tc
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(3*time.Second, func() { c.Close() }) })
	end := func() {
		stop()
		if ctx.Err() != nil {
			c.Logout().Wait()
		}
		c.Close()
	}
	if err := h.login(c); err != nil {
		var ie *imap.Error
		if !errors.As(err, &ie) && !errors.Is(err, ErrAuth) {
			// Not an answer: the connection broke. When the client's reader
			// gave up on the server's data, that is the error worth
			// reporting, not the failed write that followed it.
			select {
			case <-c.Closed():
				if rerr := c.Close(); rerr != nil && !errors.Is(rerr, net.ErrClosed) {
					err = fmt.Errorf("bad response from the server: %w", rerr)
				}
			case <-time.After(time.Second):
			}
		}
		end()
		what := "the password"
		if h.acct.Auth == "xoauth2" {
			what = "the access token"
		}
		if errors.Is(err, ErrAuth) {
			return nil, nil, fmt.Errorf("account %q: login as %q: %w (check %s)", h.acct.Name, h.acct.Username, err, what)
		}
		// Only a refusal of the credentials parks the account. A NO with
		// another code (LIMIT: too many connections, UNAVAILABLE, ...) is
		// temporary; a bare NO is what servers without response codes
		// answer to a wrong password.
		if errors.As(err, &ie) && (ie.Code == imap.ResponseCodeAuthenticationFailed ||
			ie.Code == imap.ResponseCodeAuthorizationFailed || ie.Code == imap.ResponseCodeExpired ||
			(ie.Type == imap.StatusResponseTypeNo && ie.Code == "")) {
			return nil, nil, fmt.Errorf("account %q: login as %q: %w: %v (check %s)", h.acct.Name, h.acct.Username, ErrAuth, err, what)
		}
		return nil, nil, fmt.Errorf("account %q: login at %s: %w", h.acct.Name, net.JoinHostPort(h.acct.Host, strconv.Itoa(h.port())), err)
	}
	h.count(func(c *Counters) { c.Logins++ })
	return cn, end, nil
}

// login authenticates as the account's Auth says.
func (h *Harvester) login(c *imapclient.Client) error {
	switch h.acct.Auth {
	case "login":
		return c.Login(h.acct.Username, h.acct.Password).Wait()
	case "xoauth2":
		token := h.acct.Password
		if h.acct.TokenFile != "" {
			b, err := os.ReadFile(h.acct.TokenFile)
			if err != nil {
				return fmt.Errorf("%w: token_file: %v", ErrAuth, err)
			}
			token = strings.TrimSpace(string(b))
		}
		if !c.Caps().Has(imap.AuthCap("XOAUTH2")) {
			return fmt.Errorf("%w: the server does not offer AUTH=XOAUTH2", ErrAuth)
		}
		return c.Authenticate(&xoauth2{user: h.acct.Username, token: token})
	default:
		if c.Caps().Has(imap.AuthCap(sasl.Plain)) {
			return c.Authenticate(sasl.NewPlainClient("", h.acct.Username, h.acct.Password))
		}
		return c.Login(h.acct.Username, h.acct.Password).Wait()
	}
}

// xoauth2 is the SASL XOAUTH2 mechanism of Google and Microsoft: one
// message, "user=U^Aauth=Bearer T^A^A". A refusal comes as a challenge with
// a JSON status, which the client must answer with an empty response; the
// exchange is instead ended here with that status as the error, and the
// connection is dropped.
type xoauth2 struct{ user, token string }

func (x *xoauth2) Start() (string, []byte, error) {
	return "XOAUTH2", []byte("user=" + x.user + "\x01auth=Bearer " + x.token + "\x01\x01"), nil
}

func (x *xoauth2) Next(challenge []byte) ([]byte, error) {
	return nil, fmt.Errorf("%w: the server refused the token: %s", ErrAuth, challenge)
}

// session is one connection's life: connect, log in, catch every mailbox
// up, then watch until something fails. Mailboxes to IDLE on beyond the
// first get a connection each (up to MaxConnections in all), with their own
// goroutine; a failure of any ends the session, and Run reconnects them all.
func (h *Harvester) session(ctx context.Context) error {
	h.setState(StateConnecting, "")
	cn, end, err := h.connect(ctx)
	if err != nil {
		return err
	}
	defer end()
	h.setState(StateHarvesting, "")
	boxes, idles, err := h.mailboxes(ctx, cn.c)
	if err != nil {
		return err
	}
	for _, mb := range boxes {
		if err := h.syncMailbox(ctx, cn, mb, true); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	wctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, len(idles))
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	for _, mb := range idles[min(1, len(idles)):] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errc <- h.idleWorker(wctx, mb)
		}()
	}
	idle := ""
	if len(idles) > 0 {
		idle = idles[0]
	}
	return h.watch(ctx, cn, idle, true, errc)
}

// idleWorker keeps one more mailbox current over its own connection.
func (h *Harvester) idleWorker(ctx context.Context, mb string) error {
	cn, end, err := h.connect(ctx)
	if err != nil {
		return err
	}
	defer end()
	if err := h.syncMailbox(ctx, cn, mb, true); err != nil {
		return err
	}
	return h.watch(ctx, cn, mb, false, nil)
}

// watch IDLEs on idle (when the server has IDLE) and syncs it on every
// change; every PollInterval it reconciles idle and, on the main connection,
// re-lists the mailboxes and syncs all the others but those watched by
// other connections. It returns on the first error, or one from errc.
func (h *Harvester) watch(ctx context.Context, cn *conn, idle string, main bool, errc <-chan error) error {
	c := cn.c
	nextPoll := time.Now().Add(h.acct.PollInterval)
	var lastUIDNext imap.UID
	for {
		if idle != "" && c.Caps().Has(imap.CapIdle) {
			sel, err := c.Select(idle, &imap.SelectOptions{ReadOnly: true}).Wait()
			if err != nil {
				return fmt.Errorf("examine %q: %w", idle, err)
			}
			// Mail that arrived while the last sync was storing is counted
			// in this EXAMINE's answer, and IDLE will not announce it again:
			// sync first if the mailbox has grown since (once per UIDNEXT, so
			// that a UID the server expunged cannot make this spin).
			if sel.UIDNext != 0 && sel.UIDNext != lastUIDNext {
				lastUIDNext = sel.UIDNext
				next, err := h.sink.Checkpoint(ctx, h.acct.Name, h.acct.URL(), idle, sel.UIDValidity)
				if err != nil {
					return err
				}
				if uint32(sel.UIDNext) > next {
					if err := h.syncMailbox(ctx, cn, idle, false); err != nil {
						return err
					}
					continue
				}
			}
			cmd, err := c.Idle()
			if err != nil {
				return fmt.Errorf("idle %q: %w", idle, err)
			}
			h.markIdle(idle)
			wait := min(h.opts.IdleRestart, time.Until(nextPoll))
			cn.tc.setTimeout(wait + h.opts.ReadTimeout)
			timer := time.NewTimer(wait)
			var werr error
			select {
			case <-cn.changed:
			case <-timer.C:
			case <-ctx.Done():
			case <-c.Closed():
			case werr = <-errc:
			}
			timer.Stop()
			cn.tc.setTimeout(h.opts.ReadTimeout)
			if err := cmd.Close(); err != nil {
				return fmt.Errorf("idle %q: %w", idle, err)
			}
			if err := cmd.Wait(); err != nil {
				return fmt.Errorf("idle %q: %w", idle, err)
			}
			if werr != nil {
				return werr
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			changed := cn.expunged.Swap(false)
			changed = cn.flagged.Swap(false) || changed
			if err := h.syncMailbox(ctx, cn, idle, changed); err != nil {
				return err
			}
		} else {
			cn.tc.setTimeout(time.Until(nextPoll) + h.opts.ReadTimeout)
			select {
			case <-time.After(time.Until(nextPoll)):
			case <-ctx.Done():
				return ctx.Err()
			case err := <-errc:
				return err
			}
			cn.tc.setTimeout(h.opts.ReadTimeout)
		}
		if time.Now().Before(nextPoll) {
			continue
		}
		if idle != "" {
			if err := h.syncMailbox(ctx, cn, idle, true); err != nil {
				return err
			}
		}
		if main {
			// Mailboxes created, renamed or deleted on the server since the
			// last look: re-list them.
			boxes, idles, err := h.mailboxes(ctx, c)
			if err != nil {
				return err
			}
			h.forget(boxes)
			for _, mb := range boxes {
				if slices.Contains(idles, mb) {
					continue
				}
				if err := h.pollMailbox(ctx, cn, mb); err != nil {
					return err
				}
			}
		}
		nextPoll = time.Now().Add(h.acct.PollInterval)
	}
}

func (h *Harvester) dial(ctx context.Context, o *imapclient.Options) (*imapclient.Client, *timeoutConn, error) {
	addr := net.JoinHostPort(h.acct.Host, strconv.Itoa(h.port()))
	o.Dialer = &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 60 * time.Second}
	if h.acct.tlsMode() != "none" {
		cfg := &tls.Config{ServerName: h.acct.Host, InsecureSkipVerify: h.acct.InsecureSkipVerify}
		if h.acct.TLSCAFile != "" {
			pem, err := os.ReadFile(h.acct.TLSCAFile)
			if err != nil {
				return nil, nil, fmt.Errorf("account %q: tls_ca_file: %w", h.acct.Name, err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, nil, fmt.Errorf("account %q: tls_ca_file %s: no PEM certificates in it", h.acct.Name, h.acct.TLSCAFile)
			}
			cfg.RootCAs = pool
		}
		o.TLSConfig = cfg
	}
	// Dial and greet under ctx: a server that accepts the connection and
	// then says nothing must not hold up a shutdown.
	raw, err := o.Dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("account %q: connect %s: %w", h.acct.Name, addr, err)
	}
	tc := &timeoutConn{Conn: raw}
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()
	raw.SetDeadline(time.Now().Add(greetingTimeout))
	var c *imapclient.Client
	switch h.acct.tlsMode() {
	case "implicit":
		tlc := tls.Client(tc, o.TLSConfig)
		if err = tlc.HandshakeContext(ctx); err == nil {
			c = imapclient.New(tlc, o)
		}
	case "starttls":
		c, err = imapclient.NewStartTLS(tc, o)
	case "none":
		c = imapclient.New(tc, o)
	default:
		raw.Close()
		return nil, nil, fmt.Errorf("account %q: tls %q: want implicit, starttls or none", h.acct.Name, h.acct.TLS)
	}
	if err == nil {
		err = c.WaitGreeting()
	}
	if err != nil {
		raw.Close()
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		var verr *tls.CertificateVerificationError
		if errors.As(err, &verr) {
			hint := "set tls_ca_file to the CA that signed it"
			var herr x509.HostnameError
			if errors.As(err, &herr) {
				names := slices.Clone(herr.Certificate.DNSNames)
				for _, ip := range herr.Certificate.IPAddresses {
					names = append(names, ip.String())
				}
				hint = fmt.Sprintf("host must be a name the certificate is for: %s", strings.Join(names, ", "))
			}
			return nil, nil, fmt.Errorf("account %q: connect %s: %w: %v (%s; insecure_skip_verify turns checking off)", h.acct.Name, addr, ErrCertificate, verr.Err, hint)
		}
		var rerr tls.RecordHeaderError
		switch {
		case errors.As(err, &rerr):
			err = fmt.Errorf("%w (the server does not speak TLS on this port: for port 143 use tls: starttls)", err)
		case strings.Contains(err.Error(), "before greeting"):
			err = fmt.Errorf("%w (no IMAP greeting: is %s the server's IMAP port, and tls: %s right for it?)", err, addr, h.acct.tlsMode())
		}
		return nil, nil, fmt.Errorf("account %q: connect %s: %w", h.acct.Name, addr, err)
	}
	raw.SetDeadline(time.Time{})
	tc.setTimeout(h.opts.ReadTimeout)
	return c, tc, nil
}

// timeoutConn is the connection under the IMAP client (and TLS). Once a
// timeout is set, every read must see data within it, and the deadline is
// moved at each read: the client's reader goroutine is always reading, so
// the timeout is how long the server may stay silent. setTimeout also moves
// the deadline of a read in progress.
// While the harvester works on what it fetched (pause to resume), the
// server owes it nothing and there is no deadline.
type timeoutConn struct {
	net.Conn
	mu      sync.Mutex
	timeout time.Duration // 0 until the greeting is read
	paused  bool
}

func (c *timeoutConn) setTimeout(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.timeout = d
	if !c.paused {
		c.Conn.SetReadDeadline(time.Now().Add(d))
	}
}

func (c *timeoutConn) pause() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.paused = true
	c.Conn.SetReadDeadline(time.Time{})
}

func (c *timeoutConn) resume() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.paused = false
	if c.timeout > 0 {
		c.Conn.SetReadDeadline(time.Now().Add(c.timeout))
	}
}

func (c *timeoutConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	d := c.timeout
	if d > 0 && !c.paused {
		c.Conn.SetReadDeadline(time.Now().Add(d))
	}
	c.mu.Unlock()
	n, err := c.Conn.Read(p)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() && d > 0 {
		err = fmt.Errorf("the server sent nothing for %v: %w", d, err)
	}
	return n, err
}

// greetingTimeout bounds the TCP connect, TLS handshake and greeting.
const greetingTimeout = 60 * time.Second

func (h *Harvester) port() int {
	if h.acct.Port != 0 {
		return h.acct.Port
	}
	if h.acct.tlsMode() == "implicit" {
		return 993
	}
	return 143
}

// mailboxes lists the account's mailboxes to harvest and picks the ones to
// IDLE on: the configured Idle entries that exist, at most MaxConnections.
func (h *Harvester) mailboxes(ctx context.Context, c *imapclient.Client) (boxes, idles []string, err error) {
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		return nil, nil, fmt.Errorf("account %q: list: %w", h.acct.Name, err)
	}
	attrs := map[string][]imap.MailboxAttr{}
	var all []string
	for _, l := range list {
		if hasAttr(l.Attrs, imap.MailboxAttrNoSelect) || hasAttr(l.Attrs, imap.MailboxAttrNonExistent) {
			continue
		}
		all = append(all, l.Mailbox)
		if !matchAny(h.acct.Mailboxes, l.Mailbox) || matchAny(h.acct.Exclude, l.Mailbox) {
			continue
		}
		boxes = append(boxes, l.Mailbox)
		attrs[l.Mailbox] = l.Attrs
	}
	for _, want := range h.acct.Idle {
		for _, b := range boxes {
			if len(idles) < h.acct.MaxConnections && !slices.Contains(idles, b) &&
				(b == want || hasAttr(attrs[b], imap.MailboxAttr(want))) {
				idles = append(idles, b)
			}
		}
	}
	gone, err := h.sink.MailboxesGone(ctx, h.acct.Name, all)
	if err != nil {
		return nil, nil, fmt.Errorf("account %q: mailboxes gone from the server: %w", h.acct.Name, err)
	}
	for mb, n := range gone {
		h.log.Warn("mailbox deleted or renamed on the server; its archived messages are kept, marked expunged", "mailbox", mb, "messages", n)
	}
	return boxes, idles, nil
}

func hasAttr(attrs []imap.MailboxAttr, a imap.MailboxAttr) bool {
	for _, x := range attrs {
		if string(x) == string(a) || (len(x) == len(a) && equalFold(string(x), string(a))) {
			return true
		}
	}
	return false
}

func equalFold(a, b string) bool {
	for i := 0; i < len(a); i++ {
		ca, cb := a[i], b[i]
		if 'A' <= ca && ca <= 'Z' {
			ca += 'a' - 'A'
		}
		if 'A' <= cb && cb <= 'Z' {
			cb += 'a' - 'A'
		}
		if ca != cb {
			return false
		}
	}
	return true
}

// matchAny reports whether name matches one of the patterns, which use IMAP
// LIST wildcards (RFC 9051 section 6.3.9): "*" matches anything, hierarchy
// separators included ("*" is every mailbox, "Lists/*" every mailbox below
// Lists), "%" anything but the separator "/".
func matchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if matchWildcard(p, name) {
			return true
		}
	}
	return false
}

func matchWildcard(p, name string) bool {
	for len(p) > 0 {
		switch p[0] {
		case '*', '%':
			for i := len(name); i >= 0; i-- {
				if p[0] == '%' && strings.Contains(name[:i], "/") {
					continue
				}
				if matchWildcard(p[1:], name[i:]) {
					return true
				}
			}
			return false
		default:
			if name == "" || name[0] != p[0] {
				return false
			}
			p, name = p[1:], name[1:]
		}
	}
	return name == ""
}

// forget drops the status of mailboxes that are no longer listed (deleted or
// renamed on the server; their archived mail stays).
func (h *Harvester) forget(boxes []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for name := range h.status.Mailboxes {
		if !slices.Contains(boxes, name) {
			h.log.Info("mailbox gone from the server; its archived mail stays", "mailbox", name)
			delete(h.status.Mailboxes, name)
			delete(h.synced, name)
		}
	}
}

func (h *Harvester) markIdle(mb string) {
	h.mu.Lock()
	ms := h.status.Mailboxes[mb]
	ms.Mailbox, ms.State = mb, StateIdle
	h.status.Mailboxes[mb] = ms
	h.mu.Unlock()
}

// pollMailbox asks for a polled mailbox's STATUS and syncs it when the
// answer differs from the last sync's, or when its flags are due for a
// sweep (servers without CONDSTORE).
func (h *Harvester) pollMailbox(ctx context.Context, cn *conn, mb string) error {
	condstore := cn.c.Caps().Has(imap.CapCondStore)
	st, err := cn.c.Status(mb, &imap.StatusOptions{NumMessages: true, UIDNext: true, UIDValidity: true, HighestModSeq: condstore}).Wait()
	if err != nil {
		return fmt.Errorf("status %q: %w", mb, err)
	}
	now := stamp{uidValidity: st.UIDValidity, uidNext: uint32(st.UIDNext), modSeq: st.HighestModSeq}
	if st.NumMessages != nil {
		now.messages = *st.NumMessages
	}
	h.mu.Lock()
	last, ok := h.synced[mb]
	h.mu.Unlock()
	if ok && last.same(now) && (now.modSeq != 0 || time.Since(last.reconciled) < h.opts.FlagSweep) {
		ms := h.mailboxState(mb)
		ms.Mailbox, ms.State, ms.LastSync = mb, StatePolling, time.Now()
		h.setMailbox(ms)
		return nil
	}
	return h.syncMailbox(ctx, cn, mb, true)
}

// progress records how far a catch-up of mb has come.
func (h *Harvester) progress(mb string, toFetch, fetched int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ms := h.status.Mailboxes[mb]
	if fetched == 0 {
		ms.CatchUpSince = time.Now()
	}
	ms.ToFetch, ms.Fetched = toFetch, fetched
	h.status.Mailboxes[mb] = ms
}

func (h *Harvester) mailboxState(mb string) MailboxState {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.status.Mailboxes[mb]
}

// syncMailbox catches mailbox mb up from its checkpoint: EXAMINE (with
// CONDSTORE when the server has it), compare UIDVALIDITY, list the UIDs at
// or above the checkpoint, then UID FETCH them in chunks, each chunk stored
// before the next is fetched. With reconcile it then fetches every
// message's flags and hands them to the Sink, which marks vanished UIDs
// expunged and records flag changes; with CONDSTORE that is skipped when
// HIGHESTMODSEQ and the message count say nothing changed since the last
// time.
func (h *Harvester) syncMailbox(ctx context.Context, cn *conn, mb string, reconcile bool) error {
	c := cn.c
	condstore := c.Caps().Has(imap.CapCondStore)
	sel, err := c.Select(mb, &imap.SelectOptions{ReadOnly: true, CondStore: condstore}).Wait()
	if err != nil {
		return fmt.Errorf("examine %q: %w", mb, err)
	}
	next, err := h.sink.Checkpoint(ctx, h.acct.Name, h.acct.URL(), mb, sel.UIDValidity)
	if err != nil {
		return err
	}
	ms := MailboxState{Mailbox: mb, UIDValidity: sel.UIDValidity, ServerMessages: sel.NumMessages, State: StateCatchingUp}
	h.setMailbox(ms)
	if sel.NumMessages > 0 && (sel.UIDNext == 0 || uint32(sel.UIDNext) > next) {
		if err := h.catchUp(ctx, cn, mb, sel.UIDValidity, next); err != nil {
			return err
		}
	}
	// The stamp records a state whose flags and expunges the archive has
	// seen, so it moves only with a reconcile (or when CONDSTORE shows
	// there was nothing to reconcile).
	now := stamp{uidValidity: sel.UIDValidity, uidNext: uint32(sel.UIDNext), messages: sel.NumMessages, modSeq: sel.HighestModSeq}
	h.mu.Lock()
	last, seen := h.synced[mb]
	h.mu.Unlock()
	if reconcile && seen && now.modSeq != 0 && last.modSeq == now.modSeq && last.messages == now.messages && last.uidValidity == now.uidValidity {
		now.reconciled = last.reconciled // CONDSTORE: no flag changed, nothing expunged
	} else if reconcile {
		if err := h.reconcile(ctx, cn, mb, sel); err != nil {
			return err
		}
		now.reconciled = time.Now()
	}
	if reconcile {
		h.mu.Lock()
		h.synced[mb] = now
		h.mu.Unlock()
	}
	ms.State, ms.LastSync = StatePolling, time.Now()
	h.setMailbox(ms)
	return nil
}

// reconcile fetches the UID and flags of every message of the selected
// mailbox and gives them to the Sink.
func (h *Harvester) reconcile(ctx context.Context, cn *conn, mb string, sel *imap.SelectData) error {
	c := cn.c
	flags := make(map[uint32][]string, sel.NumMessages)
	if sel.NumMessages > 0 {
		err := fetchEach(c, imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, Flags: true},
			func(buf *imapclient.FetchMessageBuffer) {
				if buf.UID != 0 {
					flags[uint32(buf.UID)] = flagStrings(buf.Flags)
				}
			})
		if err != nil {
			return fmt.Errorf("fetch flags %q: %w", mb, err)
		}
	}
	cn.tc.pause()
	err := h.sink.Reconcile(ctx, h.acct.Name, mb, sel.UIDValidity, flags)
	cn.tc.resume()
	if err != nil {
		return fmt.Errorf("reconcile %q: %w", mb, err)
	}
	return nil
}

// flagStrings returns flags as strings in a stable (sorted) order, so that
// comparing a server's flags with the archive's does not depend on the order
// the server lists them in.
func flagStrings(fs []imap.Flag) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = string(f)
	}
	slices.Sort(out)
	return out
}

// catchUp fetches and stores every message of the selected mailbox with a
// UID at or above next. It first asks for the UIDs and sizes of those
// messages (UID FETCH next:* (RFC822.SIZE)), then fetches their bodies in
// chunks of at most FetchChunk messages and FetchBytes bytes, each chunk
// stored before the next is fetched: a process harvesting many accounts
// holds at most one chunk per connection in memory, however large the
// messages. A message over MaxMessageBytes is recorded as skipped without
// being downloaded.
func (h *Harvester) catchUp(ctx context.Context, cn *conn, mb string, uidvalidity, next uint32) error {
	c := cn.c
	log := h.log.With("mailbox", mb)
	todo, err := h.pending(c, mb, next)
	if err != nil {
		return err
	}
	if len(todo) == 0 {
		return nil
	}
	log.Info("catching up", "uidvalidity", uidvalidity, "from_uid", next, "messages", len(todo))
	h.progress(mb, len(todo), 0)
	epoch := fmt.Sprintf("%s/%d", mb, uidvalidity)
	for i := 0; i < len(todo); {
		if err := ctx.Err(); err != nil {
			return err
		}
		if size := todo[i].size; size > h.opts.MaxMessageBytes {
			if err := h.skip(ctx, cn, mb, uidvalidity, todo[i].uid, fmt.Sprintf(
				"message is %d bytes, over the limit of %d (max_message_bytes)", size, h.opts.MaxMessageBytes)); err != nil {
				return err
			}
			i++
			continue
		}
		h.mu.Lock()
		split := h.splitUntil[epoch]
		h.mu.Unlock()
		end := i + 1
		if uint32(todo[i].uid) > split {
			bytes := todo[i].size
			for end < len(todo) && end-i < h.opts.FetchChunk && todo[end].size <= h.opts.MaxMessageBytes &&
				bytes+todo[end].size <= int64(h.opts.FetchBytes) {
				bytes += todo[end].size
				end++
			}
		} // else a chunk here failed before: go one message at a time through
		// its range to find the message that breaks the connection.
		chunk := make([]imap.UID, 0, end-i)
		for _, p := range todo[i:end] {
			chunk = append(chunk, p.uid)
		}
		strike := fmt.Sprintf("%s/%d/%d", epoch, len(chunk), chunk[0])
		if n := h.strike(strike, 0); len(chunk) == 1 && n >= strikesToSkip {
			if err := h.skip(ctx, cn, mb, uidvalidity, chunk[0], fmt.Sprintf("fetch failed %d times", n)); err != nil {
				return err
			}
			h.strike(strike, -1)
			i = end
			continue
		}
		var chunkBytes int64
		for _, p := range todo[i:end] {
			chunkBytes += p.size
		}
		release, err := h.opts.Budget.acquire(ctx, chunkBytes)
		if err != nil {
			return err
		}
		err = h.storeChunk(ctx, cn, mb, uidvalidity, chunk, strike, epoch)
		release()
		if err != nil {
			return err
		}
		i = end
		h.progress(mb, len(todo), i)
	}
	return nil
}

// storeChunk fetches the messages of chunk and stores them.
func (h *Harvester) storeChunk(ctx context.Context, cn *conn, mb string, uidvalidity uint32, chunk []imap.UID, strike, epoch string) error {
	c, log := cn.c, h.log.With("mailbox", mb)
	msgs, oversize, err := h.fetch(c, mb, uidvalidity, chunk)
	if err != nil {
		if n := h.strike(strike, 1); len(chunk) > 1 && n >= strikesToSplit {
			h.mu.Lock()
			h.splitUntil[epoch] = uint32(chunk[len(chunk)-1])
			h.mu.Unlock()
		}
		return fmt.Errorf("fetch UID %s of %q: %w", imap.UIDSetNum(chunk...), mb, err)
	}
	h.strike(strike, -1)
	// A server that sends UID after the body literal gets its response
	// routed to the unilateral handler: ask once more for what is
	// missing. What is still missing was expunged meanwhile.
	if missing := missingUIDs(chunk, msgs, oversize); len(missing) > 0 {
		again, over, err := h.fetch(c, mb, uidvalidity, missing)
		if err != nil {
			return fmt.Errorf("fetch UID %s of %q: %w", imap.UIDSetNum(missing...), mb, err)
		}
		msgs, oversize = append(msgs, again...), append(oversize, over...)
		if gone := missingUIDs(missing, again, over); len(gone) > 0 {
			log.Info("messages vanished before they could be fetched", "uids", imap.UIDSetNum(gone...).String())
		}
	}
	cn.tc.pause() // the server owes us nothing while the archive works
	err = h.sink.Store(ctx, msgs)
	cn.tc.resume()
	if err != nil {
		return fmt.Errorf("store %d messages of %q: %w", len(msgs), mb, err)
	}
	h.count(func(c *Counters) {
		c.Messages += int64(len(msgs))
		for _, m := range msgs {
			c.Bytes += int64(len(m.Raw))
		}
	})
	for _, uid := range oversize {
		// RFC822.SIZE said less than the body the server then sent.
		if err := h.skip(ctx, cn, mb, uidvalidity, uid, fmt.Sprintf(
			"message body is over the limit of %d bytes (max_message_bytes)", h.opts.MaxMessageBytes)); err != nil {
			return err
		}
	}
	return nil
}

// fetchEach runs a FETCH without body sections and calls fn with each
// message's data, in the order the server sends them.
func fetchEach(c *imapclient.Client, set imap.NumSet, opts *imap.FetchOptions, fn func(*imapclient.FetchMessageBuffer)) error {
	cmd := c.Fetch(set, opts)
	for {
		md := cmd.Next()
		if md == nil {
			break
		}
		buf, err := md.Collect()
		if err != nil {
			cmd.Close()
			return err
		}
		fn(buf)
	}
	return cmd.Close()
}

// pendingMessage is a message to fetch and the size the server gives it.
type pendingMessage struct {
	uid  imap.UID
	size int64
}

// pending returns the UIDs at or above next, in order, with their sizes.
func (h *Harvester) pending(c *imapclient.Client, mb string, next uint32) ([]pendingMessage, error) {
	var out []pendingMessage
	err := fetchEach(c, imap.UIDSet{imap.UIDRange{Start: imap.UID(next), Stop: 0}}, &imap.FetchOptions{UID: true, RFC822Size: true},
		func(buf *imapclient.FetchMessageBuffer) {
			// "n:*" includes the highest UID even when it is below n: skip
			// it, or the newest message is fetched again on every pass.
			if uint32(buf.UID) >= next {
				out = append(out, pendingMessage{uid: buf.UID, size: buf.RFC822Size})
			}
		})
	if err != nil {
		return nil, fmt.Errorf("list new messages of %q: %w", mb, err)
	}
	slices.SortFunc(out, func(a, b pendingMessage) int { return cmp.Compare(a.uid, b.uid) })
	return out, nil
}

// skip records that the message uid will not be archived, and why, and
// moves the mailbox's checkpoint past it.
func (h *Harvester) skip(ctx context.Context, cn *conn, mb string, uidvalidity uint32, uid imap.UID, reason string) error {
	h.log.Error("message not archived; recorded as skipped", "mailbox", mb, "uidvalidity", uidvalidity, "uid", uid, "reason", reason)
	cn.tc.pause()
	defer cn.tc.resume()
	if err := h.sink.Skip(ctx, h.acct.Name, mb, uidvalidity, uint32(uid), reason); err != nil {
		return err
	}
	h.count(func(c *Counters) { c.Skipped++ })
	return nil
}

// strike adds d to the strikes of key (d < 0 clears them) and returns the count.
func (h *Harvester) strike(key string, d int) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if d < 0 {
		delete(h.strikes, key)
		return 0
	}
	h.strikes[key] += d
	return h.strikes[key]
}

// missingUIDs returns the UIDs of asked that are neither in got nor in also.
func missingUIDs(asked []imap.UID, got []Message, also []imap.UID) []imap.UID {
	have := make(map[uint32]bool, len(got)+len(also))
	for _, m := range got {
		have[m.UID] = true
	}
	for _, u := range also {
		have[uint32(u)] = true
	}
	var missing []imap.UID
	for _, u := range asked {
		if !have[uint32(u)] {
			missing = append(missing, u)
		}
	}
	return missing
}

// fetch reads the given UIDs' bodies, flags, internal dates and sizes. A
// literal is copied out at once; nothing else happens while the connection
// is blocked on it. A body over MaxMessageBytes is read and dropped; its
// UID is returned in oversize.
func (h *Harvester) fetch(c *imapclient.Client, mb string, uidvalidity uint32, uids []imap.UID) (msgs []Message, oversize []imap.UID, err error) {
	cmd := c.Fetch(imap.UIDSetNum(uids...), &imap.FetchOptions{
		UID: true, Flags: true, InternalDate: true,
		BodySection: []*imap.FetchItemBodySection{{Peek: true}},
	})
	defer cmd.Close()
	for {
		md := cmd.Next()
		if md == nil {
			break
		}
		m := Message{Account: h.acct.Name, Mailbox: mb, UIDValidity: uidvalidity}
		over := false
		for {
			item := md.Next()
			if item == nil {
				break
			}
			switch it := item.(type) {
			case imapclient.FetchItemDataUID:
				m.UID = uint32(it.UID)
			case imapclient.FetchItemDataFlags:
				m.Flags = flagStrings(it.Flags)
			case imapclient.FetchItemDataInternalDate:
				m.InternalDate = it.Time
			case imapclient.FetchItemDataBodySection:
				size := it.Literal.Size()
				if size > h.opts.MaxMessageBytes {
					over = true
					if _, err := io.Copy(io.Discard, it.Literal); err != nil {
						return nil, nil, fmt.Errorf("connection lost in the middle of a message body: %w", err)
					}
					continue
				}
				m.Raw = make([]byte, size)
				if _, err := io.ReadFull(it.Literal, m.Raw); err != nil {
					return nil, nil, fmt.Errorf("connection lost in the middle of a %d-byte message body: %w", size, err)
				}
			}
		}
		switch {
		case m.UID == 0:
		case over:
			oversize = append(oversize, imap.UID(m.UID))
		case m.Raw != nil:
			msgs = append(msgs, m)
		}
	}
	if err := cmd.Close(); err != nil {
		return nil, nil, err
	}
	return msgs, oversize, nil
}
