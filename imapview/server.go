package imapview

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"mailvault/indexer"
	"mailvault/query"
	"mailvault/service"
)

// Archive is what the view needs of the service layer (service.Service
// implements it). Every method applies the caller's scope; the view
// filters nothing itself.
type Archive interface {
	ViewLogin(ctx context.Context, name, secret, remote string) (service.Caller, error)
	ViewRecheck(ctx context.Context, c service.Caller, token string) (service.Caller, error)
	ViewFolders(ctx context.Context, c service.Caller) ([]indexer.FolderEpoch, error)
	ViewSelect(ctx context.Context, c service.Caller, f indexer.FolderEpoch) ([]indexer.FolderMessage, error)
	ViewMessages(ctx context.Context, c service.Caller, f indexer.FolderEpoch) ([]indexer.FolderMessage, error)
	ViewFetch(ctx context.Context, c service.Caller, f indexer.FolderEpoch, uids, what string) error
	ViewRaw(ctx context.Context, c service.Caller, f indexer.FolderEpoch, sha [32]byte) ([]byte, error)
	ViewSearch(ctx context.Context, c service.Caller, f indexer.FolderEpoch, n query.Node, criteria string) ([]uint32, error)
	ViewGeneration(f indexer.FolderEpoch) int64
}

// Options configure a Server.
type Options struct {
	Archive Archive
	Logger  *slog.Logger
	// TLS, when set, is offered by STARTTLS on a plain listener (Serve);
	// ServeTLS listeners use it for implicit TLS.
	TLS *tls.Config
	// InsecureAuth allows LOGIN without TLS. Only for loopback listeners:
	// cmd refuses it elsewhere and logs a warning when it is used.
	InsecureAuth bool
	// PollInterval is how often a selected session looks for changes while
	// it idles (default 1 s).
	PollInterval time.Duration
	// RecheckInterval is how often at most a session checks its user again
	// before a command that reads (session.recheck; default 1 s; negative:
	// before every such command).
	RecheckInterval time.Duration
	// MaxConns bounds the connections open at once (default 256), and
	// MaxConnsPerAddr those from one address (default 32). Past either, a
	// connection is greeted with BYE and closed.
	MaxConns        int
	MaxConnsPerAddr int
}

// ExpungedKeyword is the keyword added to the flags of a copy that the
// source server expunged after it was archived.
const ExpungedKeyword = "$Expunged"

// Server is the IMAP view.
type Server struct {
	opts    Options
	log     *slog.Logger
	imap    *imapserver.Server
	metrics *metrics

	mu     sync.Mutex
	conns  int
	byAddr map[string]int
}

// New returns a server; Serve or ServeTLS start it.
func New(opts Options) *Server {
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Second
	}
	if opts.RecheckInterval == 0 {
		opts.RecheckInterval = time.Second
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = 256
	}
	if opts.MaxConnsPerAddr <= 0 {
		opts.MaxConnsPerAddr = 32
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Server{opts: opts, log: log.With("component", "imapview"), byAddr: map[string]int{}, metrics: newMetrics()}
	s.imap = imapserver.New(&imapserver.Options{
		NewSession: s.newSession,
		Caps: imap.CapSet{
			imap.CapIMAP4rev1: {},
			imap.CapNamespace: {},
			imap.CapESearch:   {},
			imap.CapChildren:  {},
		},
		Logger:       slogLogger{s.log},
		TLSConfig:    opts.TLS,
		InsecureAuth: opts.InsecureAuth,
	})
	return s
}

// Serve answers IMAP on ln (plain, with STARTTLS when Options.TLS is set).
func (s *Server) Serve(ln net.Listener) error {
	return s.serve(&limitListener{Listener: ln, s: s})
}

// ServeTLS answers IMAP with implicit TLS (port 993 style) on ln.
func (s *Server) ServeTLS(ln net.Listener) error {
	if s.opts.TLS == nil {
		return errors.New("imapview: implicit TLS needs a TLS configuration")
	}
	// The limit sits below TLS: go-imap tells a TLS connection by its type.
	return s.serve(tls.NewListener(&limitListener{Listener: ln, s: s}, s.opts.TLS))
}

func (s *Server) serve(ln net.Listener) error {
	err := s.imap.Serve(ln)
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// Close closes the listeners and every connection.
func (s *Server) Close() error { return s.imap.Close() }

// Run serves ln until ctx ends.
func (s *Server) Run(ctx context.Context, ln net.Listener, implicitTLS bool) error {
	errc := make(chan error, 1)
	go func() {
		if implicitTLS {
			errc <- s.ServeTLS(ln)
		} else {
			errc <- s.Serve(ln)
		}
	}()
	select {
	case <-ctx.Done():
		s.Close()
		<-errc
		return nil
	case err := <-errc:
		return err
	}
}

// limitListener closes connections past MaxConns or MaxConnsPerAddr after
// a BYE, before go-imap sees them.
type limitListener struct {
	net.Listener
	s *Server
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		addr := hostOf(c.RemoteAddr())
		if why := l.s.admit(addr); why != "" {
			c.SetWriteDeadline(time.Now().Add(time.Second))
			fmt.Fprintf(c, "* BYE [UNAVAILABLE] %s\r\n", why)
			c.Close()
			l.s.log.Warn("connection refused", "remote", addr, "why", why)
			continue
		}
		return &countedConn{Conn: c, release: func() { l.s.release(addr) }}, nil
	}
}

func (s *Server) admit(addr string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.conns >= s.opts.MaxConns:
		s.metrics.refused.WithLabelValues("connections").Inc()
		return "too many connections"
	case s.byAddr[addr] >= s.opts.MaxConnsPerAddr:
		s.metrics.refused.WithLabelValues("address").Inc()
		return "too many connections from this address"
	}
	s.metrics.conns.Inc()
	s.conns++
	s.byAddr[addr]++
	return ""
}

func (s *Server) release(addr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conns--
	s.metrics.conns.Dec()
	if s.byAddr[addr]--; s.byAddr[addr] <= 0 {
		delete(s.byAddr, addr)
	}
}

type countedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *countedConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}

func hostOf(a net.Addr) string {
	h, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return h
}

// slogLogger passes go-imap's messages (failed reads of a command, mostly
// clients going away) to the structured log.
type slogLogger struct{ l *slog.Logger }

func (l slogLogger) Printf(format string, args ...any) {
	l.l.Debug(fmt.Sprintf(format, args...))
}
