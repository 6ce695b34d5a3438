package harvest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"mime"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-message/charset"
)

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
				// Not Collect: that would hold whatever body a hostile
				// server sends. Next reads and drops body literals.
				for msg.Next() != nil {
				}
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
		addr := net.JoinHostPort(h.acct.Host, strconv.Itoa(h.port()))
		switch loginVerdict(err) {
		case ErrThrottled:
			return nil, nil, fmt.Errorf("account %q: login at %s: %w: %w", h.acct.Name, addr, ErrThrottled, err)
		case ErrAuth:
			if errors.Is(err, ErrAuth) {
				return nil, nil, fmt.Errorf("account %q: login as %q: %w (check %s)", h.acct.Name, h.acct.Username, err, what)
			}
			return nil, nil, fmt.Errorf("account %q: login as %q: %w: %v (check %s)", h.acct.Name, h.acct.Username, ErrAuth, err, what)
		}
		return nil, nil, fmt.Errorf("account %q: login at %s: %w", h.acct.Name, addr, err)
	}
	h.count(func(c *Counters) { c.Logins++ })
	return cn, end, nil
}

// loginVerdict says what a failed login means: ErrThrottled, ErrAuth (the
// account is parked) or nil (temporary, like a network failure).
//
// A "slow down" (throttle.go) comes first: Gmail answers a LOGIN over its
// connection limit with "NO [ALERT] Too many simultaneous connections", and
// a server may say it in a bare NO. Then only a refusal of the credentials
// parks the account: AUTHENTICATIONFAILED, AUTHORIZATIONFAILED, EXPIRED, or
// a bare NO, which is what servers without response codes answer to a wrong
// password. A NO with another code is temporary.
func loginVerdict(err error) error {
	if errors.Is(err, ErrAuth) {
		return ErrAuth
	}
	if _, ok := throttle(err); ok {
		return ErrThrottled
	}
	var ie *imap.Error
	if errors.As(err, &ie) {
		switch imap.ResponseCode(strings.ToUpper(string(ie.Code))) {
		case imap.ResponseCodeAuthenticationFailed, imap.ResponseCodeAuthorizationFailed, imap.ResponseCodeExpired:
			return ErrAuth
		case "":
			if strings.EqualFold(string(ie.Type), string(imap.StatusResponseTypeNo)) {
				return ErrAuth
			}
		}
	}
	return nil
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
	boxes, idles, err := h.mailboxes(ctx, cn)
	if err != nil {
		return err
	}
	for _, mb := range boxes {
		if _, err := h.syncMailbox(ctx, cn, mb, true); err != nil {
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
	h.mu.Lock()
	h.polled = map[string]bool{}
	h.mu.Unlock()
	for _, mb := range idles[min(1, len(idles)):] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := h.idleWorker(wctx, mb); !errors.Is(err, errPolled) {
				errc <- err
			}
		}()
	}
	idle := ""
	if len(idles) > 0 {
		idle = idles[0]
	}
	return h.watch(ctx, cn, idle, true, errc)
}

// errPolled: an IDLE worker's connection was refused as one too many
// (throttling); its mailbox is polled by the main connection instead.
var errPolled = errors.New("polled instead")

// idleWorker keeps one more mailbox current over its own connection. When
// the server refuses that connection as one too many (Gmail's "Too many
// simultaneous connections", Dovecot's mail_max_userip_connections), the
// mailbox is polled by the main connection for the rest of the session
// rather than the whole session ending: the next session tries again.
func (h *Harvester) idleWorker(ctx context.Context, mb string) error {
	cn, end, err := h.connect(ctx)
	if _, throttled := throttle(err); throttled && ctx.Err() == nil {
		h.mu.Lock()
		h.polled[mb] = true
		h.mu.Unlock()
		h.count(func(c *Counters) { c.Throttled++ })
		h.log.Warn("a connection to watch a mailbox was refused as one too many; polling it instead", "mailbox", mb, "err", err)
		return errPolled
	}
	if err != nil {
		return err
	}
	defer end()
	if _, err := h.syncMailbox(ctx, cn, mb, true); err != nil {
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
	var probe idleProbe // idlecheck.go: does this server's IDLE announce?
	for {
		if idle != "" && c.Caps().Has(imap.CapIdle) {
			sel, err := c.Select(idle, &imap.SelectOptions{ReadOnly: true}).Wait()
			if err != nil {
				return fmt.Errorf("examine %q: %w", idle, err)
			}
			if sel.UIDValidity == 0 {
				return fmt.Errorf("examine %q: %w: no UIDVALIDITY in the answer", idle, ErrHostile)
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
					if _, err := h.syncMailbox(ctx, cn, idle, false); err != nil {
						return err
					}
					continue
				}
			}
			// A change signalled before IDLE (the EXISTS of the EXAMINE
			// above) still ends this IDLE at once, but is no announcement:
			// the probe must not take it for one.
			stale := false
			select {
			case <-cn.changed:
				stale = true
				select {
				case cn.changed <- struct{}{}:
				default:
				}
			default:
			}
			cmd, err := c.Idle()
			if err != nil {
				return fmt.Errorf("idle %q: %w", idle, err)
			}
			h.markIdle(idle)
			idleSince := time.Now()
			wait := probe.limit(min(h.opts.IdleRestart, time.Until(nextPoll)))
			cn.tc.setTimeout(wait + h.opts.ReadTimeout)
			timer := time.NewTimer(wait)
			var werr error
			announced := false
			select {
			case <-cn.changed:
				announced = !stale
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
			idled := time.Since(idleSince)
			res, err := h.syncMailbox(ctx, cn, idle, changed)
			if err != nil {
				return err
			}
			// New mail, for the probe, is what this sync archived in the
			// epoch the IDLE was on. sel is out of date once the sync has
			// EXAMINEd again: a checkpoint read with its UIDVALIDITY would
			// open the old epoch again after a renumbering the server did
			// not announce (syncMailbox). A renumbering is no new mail.
			probe.saw(h.log, idle, announced, res.grew && res.uidValidity == sel.UIDValidity, idled)
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
			if _, err := h.syncMailbox(ctx, cn, idle, true); err != nil {
				return err
			}
		}
		if main {
			// Mailboxes created, renamed or deleted on the server since the
			// last look: re-list them.
			boxes, idles, err := h.mailboxes(ctx, cn)
			if err != nil {
				return err
			}
			h.forget(boxes)
			h.mu.Lock()
			polled := maps.Clone(h.polled)
			h.mu.Unlock()
			for _, mb := range boxes {
				if slices.Contains(idles, mb) && !polled[mb] {
					continue
				}
				if err := h.pollMailbox(ctx, cn, mb); err != nil {
					return err
				}
			}
			if err := h.checkDue(ctx, cn, boxes); err != nil { // gaps.go
				return err
			}
		}
		nextPoll = time.Now().Add(h.acct.PollInterval)
	}
}
