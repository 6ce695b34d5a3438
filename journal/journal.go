package journal

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Mailbox is the name of the journal mailbox in the journal account.
const Mailbox = "Journal"

// Envelope is what the sending server said around a message.
type Envelope struct {
	MailFrom string
	// RcptTo are the RCPT TO addresses as sent; Recipients the recipients
	// they stand for (an encoded address decoded), one per RCPT TO.
	RcptTo     []string
	Recipients []string
	Client     string // remote address, ip:port
	Helo       string
	Listener   string // "smtp" or "lmtp"
	AuthUser   string
	ReceivedAt time.Time
}

// Delivery is one accepted message, ready to archive.
type Delivery struct {
	Account     string
	Mailbox     string
	UIDValidity uint32
	UID         uint32
	Raw         []byte
	Envelope    Envelope
}

// Sink is where the journal stores mail; the service layer implements it
// over the archive.
type Sink interface {
	// OpenJournal creates the journal mailbox of account if needed and
	// returns its UIDVALIDITY and the next UID to assign (its checkpoint).
	OpenJournal(ctx context.Context, account, mailbox string) (uidvalidity, uidnext uint32, err error)
	// StoreJournal archives the deliveries durably, all or none: when it
	// returns nil, every one's blob, occurrence and envelope are committed.
	StoreJournal(ctx context.Context, ds []Delivery) error
}

// ErrNoSpace is what a Sink's error wraps when the disk is full
// (syscall.ENOSPC is recognised too): the reply is 452, retry later.
var ErrNoSpace = syscall.ENOSPC

// Options configure a Server. A nil *Options is equivalent to a zero Options.
type Options struct {
	// SMTP and LMTP are the listeners (nil: that protocol is off); the
	// server closes them when Run returns.
	SMTP, LMTP net.Listener
	// Account is the journal account (default "journal").
	Account string
	// Domain is the name in the greeting (default "mailvault").
	Domain string
	// TLS, when set, offers STARTTLS.
	TLS *tls.Config
	// Users, when set, requires AUTH PLAIN: name → bcrypt hash
	// (LoadUsers). Nil: no authentication (the allow-list alone).
	Users *Users
	// Allow are the client networks allowed to connect (default: loopback
	// only, 127.0.0.0/8 and ::1).
	Allow []*net.IPNet
	// MaxMessageBytes is the largest message accepted (SIZE; default 64 MiB).
	MaxMessageBytes int64
	// MaxInflightBytes bounds the message bytes all sessions together hold
	// in memory, from DATA until the reply (default 1 GiB, at least
	// MaxMessageBytes). A message that would pass it gets 452 4.3.1 and is
	// retried by its sender; see inflight.
	MaxInflightBytes int64
	// MaxRecipients per message (default 1000).
	MaxRecipients int
	// MaxSessions is the limit on concurrent sessions over both listeners
	// (default 100); a client over it gets 421.
	MaxSessions int
	// Timeout is the read and write timeout of a session (default 5 min,
	// RFC 5321 section 4.5.3.2's data block timeout is 3 min).
	Timeout time.Duration
	// BatchWindow is how long the committer waits for more messages after
	// the first of a batch (default 0: it takes what is waiting, which is
	// everything that arrived while the previous batch committed).
	BatchWindow time.Duration
	// MaxBatch is the most messages in one Store (default 256).
	MaxBatch int
	// ShutdownGrace is how long Run lets transactions in DATA finish after
	// ctx is done (default 10 s); after it, connections are closed and the
	// sending servers retry.
	ShutdownGrace time.Duration
	// EncodedPrefix: a RCPT TO PREFIX+local=domain@host stands for
	// local@domain ("" off).
	EncodedPrefix string
	Logger        *slog.Logger
}

// Server is the journal listener. Run serves until its context ends.
type Server struct {
	opts    Options
	log     *slog.Logger
	sink    Sink
	metrics *metrics

	queue    chan *request
	stopped  chan struct{} // closed when the committer has returned
	sessions atomic.Int64
	inflight inflight
	inData   sync.WaitGroup
	closing  atomic.Bool

	servers []*smtp.Server
}

type request struct {
	d    Delivery
	done chan error
}

// New returns a Server over sink.
func New(sink Sink, opts *Options) *Server {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Account == "" {
		o.Account = "journal"
	}
	if o.Domain == "" {
		o.Domain = "mailvault"
	}
	if o.Allow == nil {
		o.Allow = LoopbackOnly()
	}
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = 64 << 20
	}
	if o.MaxInflightBytes <= 0 {
		o.MaxInflightBytes = 1 << 30
	}
	o.MaxInflightBytes = max(o.MaxInflightBytes, o.MaxMessageBytes)
	if o.MaxRecipients <= 0 {
		o.MaxRecipients = 1000
	}
	if o.MaxSessions <= 0 {
		o.MaxSessions = 100
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Minute
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 256
	}
	if o.ShutdownGrace <= 0 {
		o.ShutdownGrace = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if l, ok := sink.(ReportLinker); ok { // a sink that can link unwraps Exchange journal reports (reportsink.go)
		sink = UnwrapReports(sink, l, o.Logger.With("component", "journal"))
	}
	return &Server{opts: o, log: o.Logger.With("component", "journal"), sink: sink, metrics: newMetrics(),
		inflight: inflight{max: o.MaxInflightBytes},
		queue:    make(chan *request, o.MaxSessions), stopped: make(chan struct{})}
}

// LoopbackOnly returns the default allow-list.
func LoopbackOnly() []*net.IPNet {
	_, v4, _ := net.ParseCIDR("127.0.0.0/8")
	_, v6, _ := net.ParseCIDR("::1/128")
	return []*net.IPNet{v4, v6}
}

// Run serves the listeners until ctx is done, then shuts down: no new
// connection or transaction is accepted (MAIL gets 421), transactions in
// DATA get ShutdownGrace to be stored and acknowledged, then every
// connection is closed. It returns an error when the journal mailbox
// cannot be opened or a listener fails.
func (s *Server) Run(ctx context.Context) error {
	uidvalidity, uidnext, err := s.sink.OpenJournal(ctx, s.opts.Account, Mailbox)
	if err != nil {
		return fmt.Errorf("journal: open mailbox %s/%s: %w", s.opts.Account, Mailbox, err)
	}
	s.log.Info("journal mailbox", "account", s.opts.Account, "mailbox", Mailbox, "uidvalidity", uidvalidity, "uidnext", uidnext)
	commitCtx, stopCommit := context.WithCancel(context.Background())
	committed := make(chan struct{})
	go func() {
		defer close(committed)
		defer close(s.stopped)
		s.commit(commitCtx, uidvalidity, uidnext)
	}()

	errc := make(chan error, 2)
	n := 0
	for _, l := range []struct {
		ln   net.Listener
		lmtp bool
	}{{s.opts.SMTP, false}, {s.opts.LMTP, true}} {
		if l.ln == nil {
			continue
		}
		srv := s.newSMTPServer(l.lmtp, isLoopback(l.ln.Addr()))
		s.servers = append(s.servers, srv)
		n++
		ln := &gate{Listener: l.ln, s: s, lmtp: l.lmtp}
		go func() {
			err := srv.Serve(ln)
			if err != nil && !errors.Is(err, smtp.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
				errc <- fmt.Errorf("journal %s listener: %w", protoName(l.lmtp), err)
				return
			}
			errc <- nil
		}()
		s.log.Info("journal listening", "listener", protoName(l.lmtp), "addr", l.ln.Addr().String())
	}
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
		n--
	}
	// Shutdown: refuse new work, let DATA in flight finish.
	s.closing.Store(true)
	for _, l := range []net.Listener{s.opts.SMTP, s.opts.LMTP} {
		if l != nil {
			l.Close()
		}
	}
	inData := make(chan struct{})
	go func() { s.inData.Wait(); close(inData) }()
	select {
	case <-inData:
	case <-time.After(s.opts.ShutdownGrace):
		s.log.Warn("journal shutdown: transactions still in DATA after the grace period; closing them (the senders retry)")
	}
	for _, srv := range s.servers {
		srv.Close()
	}
	stopCommit()
	<-committed
	for ; n > 0; n-- {
		if err := <-errc; err != nil && runErr == nil {
			runErr = err
		}
	}
	s.log.Info("journal stopped")
	return runErr
}

func protoName(lmtp bool) string {
	if lmtp {
		return "lmtp"
	}
	return "smtp"
}

func isLoopback(a net.Addr) bool {
	ip := remoteIP(a)
	return ip != nil && ip.IsLoopback()
}

// newSMTPServer configures go-smtp for one listener. AUTH in clear text
// is allowed only on a loopback listener (no one on the wire to read it).
func (s *Server) newSMTPServer(lmtp, loopback bool) *smtp.Server {
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{s: s, c: c, lmtp: lmtp}, nil
	}))
	srv.LMTP = lmtp
	srv.Network = "tcp"
	srv.Domain = s.opts.Domain
	srv.TLSConfig = s.opts.TLS
	srv.MaxMessageBytes = s.opts.MaxMessageBytes
	// MaxRecipients is checked in Rcpt, not by go-smtp, which refuses
	// before the session hears of it: nothing logged or counted (review
	// of issue 16). go-smtp then does not announce LIMITS RCPTMAX, which
	// the MTAs that journal (Postfix, Exchange) do not read.
	srv.MaxRecipients = 0
	srv.ReadTimeout = s.opts.Timeout
	srv.WriteTimeout = s.opts.Timeout
	srv.EnableSMTPUTF8 = true
	srv.AllowInsecureAuth = loopback
	srv.ErrorLog = slogLogger{s.log}
	return srv
}

// slogLogger is go-smtp's Logger over slog (connection errors: debug).
type slogLogger struct{ l *slog.Logger }

func (l slogLogger) Printf(format string, v ...any) { l.l.Debug(fmt.Sprintf(format, v...)) }
func (l slogLogger) Println(v ...any)               { l.l.Debug(fmt.Sprint(v...)) }

// gate is a listener that applies the allow-list and the session limit
// before go-smtp sees a connection: a refused client gets its reply
// before the greeting, and the connection is closed.
type gate struct {
	net.Listener
	s    *Server
	lmtp bool
}

func (g *gate) Accept() (net.Conn, error) {
	for {
		c, err := g.Listener.Accept()
		if err != nil {
			return nil, err
		}
		s := g.s
		ip := remoteIP(c.RemoteAddr())
		switch {
		case !s.allowed(ip):
			s.refuse(c, g.lmtp, "network", "554 5.7.1 mailvault journal: your address is not in the allow-list of this listener\r\n")
			continue
		case s.sessions.Add(1) > int64(s.opts.MaxSessions):
			s.sessions.Add(-1)
			s.refuse(c, g.lmtp, "sessions", "421 4.7.0 mailvault journal: too many sessions, try again later\r\n")
			continue
		}
		s.metrics.sessions.Inc()
		return &sessionConn{Conn: c, release: func() { s.sessions.Add(-1); s.metrics.sessions.Dec() }}, nil
	}
}

// refuse writes reply to c and closes it, without holding up Accept.
func (s *Server) refuse(c net.Conn, lmtp bool, reason, reply string) {
	s.metrics.refused.WithLabelValues(reason).Inc()
	s.log.Warn("journal connection refused", "listener", protoName(lmtp), "client", c.RemoteAddr().String(), "reason", reason,
		"reply", strings.TrimSpace(reply))
	go func() {
		c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, reply)
		c.Close()
	}()
}

type sessionConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *sessionConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}

func remoteIP(a net.Addr) net.IP {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return nil
	}
	return net.ParseIP(host)
}

func (s *Server) allowed(ip net.IP) bool {
	if ip == nil {
		return false
	}
	for _, n := range s.opts.Allow {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// session is one SMTP/LMTP session. go-smtp calls its methods from the
// connection's goroutine only.
type session struct {
	s        *Server
	c        *smtp.Conn
	lmtp     bool
	authUser string
	authFail int // failed AUTH attempts in this session
	from     string
	hasFrom  bool
	rcpts    []string
	// rcptsLogged: this transaction's recipients over the limit are logged
	rcptsLogged bool
}

func (ss *session) Reset()        { ss.from, ss.hasFrom, ss.rcpts, ss.rcptsLogged = "", false, nil, false }
func (ss *session) Logout() error { return nil }

var (
	errShuttingDown = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2},
		Message: "mailvault journal is shutting down, try again later"}
	errTooManyAuthFailures = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0},
		Message: "too many authentication failures"}
	errNeedAuth = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0},
		Message: "authentication required"}
)

func (ss *session) Mail(from string, opts *smtp.MailOptions) error {
	if ss.s.closing.Load() {
		ss.s.metrics.refused.WithLabelValues("shutdown").Inc()
		return errShuttingDown
	}
	if ss.s.opts.Users != nil && ss.authUser == "" {
		ss.s.metrics.refused.WithLabelValues("auth").Inc()
		ss.s.log.Warn("journal MAIL without authentication", "client", ss.c.Conn().RemoteAddr().String())
		return errNeedAuth
	}
	ss.from, ss.hasFrom, ss.rcpts, ss.rcptsLogged = from, true, nil, false
	return nil
}

func (ss *session) Rcpt(to string, opts *smtp.RcptOptions) error {
	if len(ss.rcpts) >= ss.s.opts.MaxRecipients {
		ss.s.metrics.refused.WithLabelValues("recipients").Inc()
		if !ss.rcptsLogged { // once a transaction: a sender may try thousands
			ss.rcptsLogged = true
			ss.s.log.Warn("journal recipient refused for now: over max_recipients; the sender sends the rest in another transaction",
				"client", ss.c.Conn().RemoteAddr().String(), "mail_from", ss.from, "max", ss.s.opts.MaxRecipients)
		}
		return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 5, 3},
			Message: fmt.Sprintf("too many recipients (at most %d a message), send the rest again", ss.s.opts.MaxRecipients)}
	}
	ss.rcpts = append(ss.rcpts, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	s := ss.s
	client := ss.c.Conn().RemoteAddr().String()
	log := s.log.With("listener", protoName(ss.lmtp), "client", client, "mail_from", ss.from, "rcpts", len(ss.rcpts))
	if s.closing.Load() {
		s.metrics.refused.WithLabelValues("shutdown").Inc()
		return errShuttingDown
	}
	s.inData.Add(1)
	defer s.inData.Done()
	var buf bytes.Buffer
	br := &budgetReader{r: r, b: &s.inflight}
	defer func() { s.inflight.give(br.held) }() // after the reply: the committer holds raw until then
	if _, err := buf.ReadFrom(br); err != nil {
		if errors.Is(err, errInflightFull) {
			s.metrics.refused.WithLabelValues("memory").Inc()
			log.Warn("journal message refused for now: the messages in flight hold max_inflight_bytes", "max", s.opts.MaxInflightBytes)
			return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 3, 1},
				Message: "too much mail in flight, try again later"}
		}
		if errors.Is(err, smtp.ErrDataTooLarge) {
			s.metrics.refused.WithLabelValues("size").Inc()
			log.Warn("journal message refused: over max_message_bytes", "max", s.opts.MaxMessageBytes)
			return &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4},
				Message: fmt.Sprintf("message larger than this archive accepts (%d bytes)", s.opts.MaxMessageBytes)}
		}
		s.metrics.refused.WithLabelValues("read").Inc()
		log.Info("journal DATA interrupted", "err", err)
		return err
	}
	raw := buf.Bytes()
	env := Envelope{MailFrom: ss.from, RcptTo: append([]string(nil), ss.rcpts...), Client: client,
		Helo: ss.c.Hostname(), Listener: protoName(ss.lmtp), AuthUser: ss.authUser, ReceivedAt: time.Now().UTC()}
	for _, r := range ss.rcpts {
		env.Recipients = append(env.Recipients, decodeRecipient(r, s.opts.EncodedPrefix))
	}
	begin := time.Now()
	err := s.submit(Delivery{Account: s.opts.Account, Mailbox: Mailbox, Raw: raw, Envelope: env})
	s.metrics.ackSeconds.Observe(time.Since(begin).Seconds())
	if err != nil {
		reply := storeReply(err)
		s.metrics.refused.WithLabelValues(refusalReason(reply)).Inc()
		log.Error("journal message not stored; the sender will retry", "bytes", len(raw), "reply", reply.Code, "err", err)
		return reply
	}
	s.metrics.accepted.Inc()
	s.metrics.bytes.Add(float64(len(raw)))
	log.Debug("journal message stored", "bytes", len(raw))
	return nil
}

// inflight is the memory budget of the messages in DATA and waiting for
// their reply (review of issue 16: MaxSessions × MaxMessageBytes, 6.4 GiB
// by default, plus the buffers' growth, could be held at once by clients
// of an allowed network). It counts the bytes read; a buffer's growth by
// doubling can hold up to as much again, so the memory bound is about
// twice MaxInflightBytes. A session that cannot take more fails at once
// (452, the sender retries) rather than waiting: sessions waiting for each
// other's budget would deadlock.
type inflight struct {
	mu        sync.Mutex
	used, max int64
}

var errInflightFull = errors.New("journal: messages in flight hold the memory budget")

func (b *inflight) take(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.max {
		return false
	}
	b.used += n
	return true
}

func (b *inflight) give(n int64) {
	b.mu.Lock()
	b.used -= n
	b.mu.Unlock()
}

// budgetReader takes budget for every byte it reads; held is what it took.
type budgetReader struct {
	r    io.Reader
	b    *inflight
	held int64
}

func (br *budgetReader) Read(p []byte) (int, error) {
	n, err := br.r.Read(p)
	if n > 0 {
		if !br.b.take(int64(n)) {
			return 0, errInflightFull
		}
		br.held += int64(n)
	}
	return n, err
}

// storeReply is the reply to a message the archive could not store: all
// are temporary (the message is fine; the archive is not, now).
func storeReply(err error) *smtp.SMTPError {
	// SQLite reports a full disk as SQLITE_FULL, not as an errno: its
	// message is the only sign that crosses the catalog's errors.
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || strings.Contains(err.Error(), "disk is full") {
		return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 3, 1},
			Message: "archive storage is full, try again later"}
	}
	if errors.Is(err, errStopped) {
		return errShuttingDown
	}
	return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0},
		Message: "archive could not store the message durably, try again later"}
}

func refusalReason(e *smtp.SMTPError) string {
	switch e.Code {
	case 452:
		return "disk_full"
	case 421:
		return "shutdown"
	}
	return "store_error"
}

// decodeRecipient returns the recipient a RCPT TO stands for: with prefix
// "journal", journal+bob=example.org@archive stands for bob@example.org
// (the last "=" splits: a domain has none). Anything else is itself.
func decodeRecipient(rcpt, prefix string) string {
	if prefix == "" {
		return rcpt
	}
	at := strings.LastIndexByte(rcpt, '@')
	if at < 0 {
		return rcpt
	}
	local := rcpt[:at]
	if len(local) <= len(prefix)+1 || !strings.EqualFold(local[:len(prefix)], prefix) || local[len(prefix)] != '+' {
		return rcpt
	}
	enc := local[len(prefix)+1:]
	eq := strings.LastIndexByte(enc, '=')
	if eq <= 0 || eq == len(enc)-1 {
		return rcpt
	}
	return enc[:eq] + "@" + strings.ToLower(enc[eq+1:])
}

var errStopped = errors.New("journal committer stopped")

// submit hands d to the committer and waits until it is durable or failed.
// It does not take the session's context: once handed over, the outcome
// is awaited (the reply depends on it), and the committer runs until
// every handed-over message has its answer.
func (s *Server) submit(d Delivery) error {
	req := &request{d: d, done: make(chan error, 1)}
	select {
	case s.queue <- req:
	case <-s.stopped:
		return errStopped
	}
	select {
	case err := <-req.done:
		return err
	case <-s.stopped:
		// A request queued after the committer's last drain (a session
		// that finished DATA as shutdown closed it) is never stored.
		select {
		case err := <-req.done:
			return err
		default:
			return errStopped
		}
	}
}

// commit is the committer: it takes every waiting request into one batch,
// assigns UIDs in order, stores the batch, and answers each request.
func (s *Server) commit(ctx context.Context, uidvalidity, uidnext uint32) {
	for {
		var first *request
		select {
		case first = <-s.queue:
		case <-ctx.Done():
			// Sessions are closed; answer anything that slipped in.
			for {
				select {
				case r := <-s.queue:
					r.done <- errStopped
				default:
					return
				}
			}
		}
		batch := []*request{first}
		var window <-chan time.Time
		if s.opts.BatchWindow > 0 {
			window = time.After(s.opts.BatchWindow)
		}
	gather:
		for len(batch) < s.opts.MaxBatch {
			select {
			case r := <-s.queue:
				batch = append(batch, r)
			default:
				if window == nil {
					break gather
				}
				select {
				case r := <-s.queue:
					batch = append(batch, r)
				case <-window:
					break gather
				}
			}
		}
		ds := make([]Delivery, len(batch))
		for i, r := range batch {
			ds[i] = r.d
			ds[i].UIDValidity, ds[i].UID = uidvalidity, uidnext+uint32(i)
		}
		// The store runs to completion even during shutdown: its answer
		// is what the senders are waiting for.
		err := s.sink.StoreJournal(context.WithoutCancel(ctx), ds)
		s.metrics.batches.Inc()
		if err == nil {
			uidnext += uint32(len(batch))
		} else {
			// Part of a failed Store may be committed (an error after the
			// catalog commit): read the checkpoint back, never reuse a
			// UID that holds a message.
			_, next, rerr := s.sink.OpenJournal(context.WithoutCancel(ctx), s.opts.Account, Mailbox)
			if rerr != nil {
				s.log.Error("journal: cannot read the mailbox checkpoint back; skipping the batch's UIDs", "err", rerr)
				next = uidnext + uint32(len(batch))
			}
			uidnext = max(uidnext, next)
		}
		for _, r := range batch {
			r.done <- err
		}
	}
}

// Interface guards.
var (
	_ smtp.Session     = (*session)(nil)
	_ smtp.AuthSession = (*session)(nil)
)

// AUTH failures are slowed and limited per session (review of issue 16):
// each failed attempt is answered after authFailDelay, and the
// maxAuthFailures-th closes the session with 421, so a client on an allowed
// network tries a few passwords a second per session instead of as many as
// bcrypt can check. There is no lockout of the user: a locked-out MTA would
// stop journaling, which is worse for an archive than a slow guesser the
// allow-list already confines.
const (
	maxAuthFailures = 3
	authFailDelay   = time.Second
)

// AuthMechanisms offers PLAIN when users are configured (go-smtp offers
// AUTH only over TLS unless AllowInsecureAuth).
func (ss *session) AuthMechanisms() []string {
	if ss.s.opts.Users == nil {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	if ss.s.opts.Users == nil || mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if identity != "" && identity != username {
			return errors.New("identity differs from the user name")
		}
		if !ss.s.opts.Users.Check(username, password) {
			ss.authFail++
			ss.s.metrics.refused.WithLabelValues("auth").Inc()
			ss.s.log.Warn("journal authentication failed", "client", ss.c.Conn().RemoteAddr().String(), "user", username,
				"failures", ss.authFail)
			time.Sleep(authFailDelay)
			if ss.authFail >= maxAuthFailures {
				// go-smtp has no way to end a session from AUTH: write the
				// reply on the connection and close it (the reply go-smtp
				// then writes fails, and so does its next read).
				conn := ss.c.Conn()
				conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
				io.WriteString(conn, "421 4.7.0 mailvault journal: too many authentication failures, closing\r\n")
				conn.Close()
				return errTooManyAuthFailures
			}
			return smtp.ErrAuthFailed
		}
		ss.authUser = username
		return nil
	}), nil
}
