// Package web is mailvault's HTTP side, served by `mailvault serve` in the
// process that holds the archive: the JSON API under /api/ and the ops
// endpoints (/healthz, /readyz, /metrics), and the HTML pages (ui.go).
//
// Every API request is authenticated (a bearer token from `mailvault user
// token`) and scoped by role: an admin or auditor sees every account; a
// user sees only their accounts, and a message outside them is answered
// exactly as a message that does not exist (404), so that nothing, not even
// existence, leaks across accounts. Searches, message reads and downloads
// are recorded in the audit trail with who, when and what.
package web

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"mailvault/indexer"
	"mailvault/service"
)

// Archive is what the web needs of the running archive: the service API,
// scoped by the caller passed to each method (implemented by
// *service.Service). The web filters nothing itself.
type Archive interface {
	Search(ctx context.Context, c service.Caller, req service.SearchRequest) (*service.SearchResult, error)
	Message(ctx context.Context, c service.Caller, id string) (*service.Hit, error)
	Raw(ctx context.Context, c service.Caller, id, action string) (*service.Hit, []byte, error)
	AttachmentTexts(ctx context.Context, c service.Caller, id string) (*service.AttachmentTexts, error)
	FlagHistory(ctx context.Context, c service.Caller, id string) ([]indexer.FlagHistory, error)
	Gmail(ctx context.Context, c service.Caller, id string) ([]service.GmailLabels, error)
	Peek(ctx context.Context, c service.Caller, id string) ([]byte, error)
	Thread(ctx context.Context, c service.Caller, refs []string) ([]service.ThreadEntry, error)
	Replies(ctx context.Context, c service.Caller, id string, limit int) ([]service.Hit, error)
	Accounts(ctx context.Context, c service.Caller) ([]string, error)
	Status(ctx context.Context, c service.Caller) (*service.Status, error)
	Jobs(c service.Caller) []service.JobInfo
	Job(c service.Caller, id string) (service.JobInfo, error)
	StartImport(c service.Caller, req service.ImportRequest) (service.JobInfo, error)
	StartVerify(c service.Caller) (service.JobInfo, error)
	StartReindex(c service.Caller) (service.JobInfo, error)
	StartCheck(c service.Caller, accounts []string) (service.JobInfo, error)
	StartExport(c service.Caller, req service.ExportRequest) (service.JobInfo, error)
	CancelJob(c service.Caller, id string) error
	Ready(ctx context.Context) error
	Audit(ctx context.Context, c service.Caller, action, detail string) error
	HoldArchive
	AuditArchive
	JournalArchive
	LedgerArchive
	RetentionArchive
}

// Users is what the web needs of the user store (*service.Users).
type Users interface {
	Login(ctx context.Context, name, password string) (*service.User, error)
	TokenUser(ctx context.Context, token string) (*service.User, error)
	NewSession(ctx context.Context, name string, ttl time.Duration) (string, error)
	SessionUser(ctx context.Context, secret string) (*service.User, error)
	EndSession(ctx context.Context, secret string) error
}

// Options are what a Server needs from its process.
type Options struct {
	Archive Archive
	Users   Users
	// DataDir is the archive's directory (the session key lives there).
	DataDir string
	// Metrics serves /metrics on the local socket's handler; the web
	// listener does not serve it (it names every account).
	Metrics http.Handler
	Logger  *slog.Logger
	// TrustedProxies are the addresses (IPs or CIDRs) whose
	// X-Forwarded-For is believed; none by default, so the recorded and
	// rate-limited address is the connection's.
	TrustedProxies []string
	// Hosts are the Host header values accepted (host or host:port), against
	// DNS rebinding: a page of another site whose name resolves to this
	// server must not reach it. Empty: only loopback names and addresses
	// (localhost, 127.0.0.0/8, ::1) when listening on loopback; anything
	// otherwise.
	Hosts []string
	// Loopback says the web listener is on a loopback address (see Hosts).
	Loopback bool
	// Guard is the process's login guard (lockouts, check and audit
	// budgets), shared with the other front doors that check passwords so
	// that they all apply the same lockout. Nil: the server makes its own
	// (service.NewLoginGuard), which is right only if nothing else in the
	// process checks passwords.
	Guard *service.LoginGuard
}

// Server is the HTTP handler.
type Server struct {
	opts   Options
	log    *slog.Logger
	engine *gin.Engine
	local  *gin.Engine
	guard  *service.LoginGuard
}

// New returns a Server.
func New(opts Options) (*Server, error) {
	gin.SetMode(gin.ReleaseMode)
	s := &Server{opts: opts, log: opts.Logger, guard: opts.Guard}
	if s.guard == nil {
		s.guard = service.NewLoginGuard()
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	e := s.newEngine()
	if err := e.SetTrustedProxies(opts.TrustedProxies); err != nil {
		return nil, fmt.Errorf("web_trusted_proxies: %w", err)
	}
	e.Use(s.checkHost)
	e.GET("/healthz", func(c *gin.Context) { c.String(http.StatusOK, "ok\n") })
	e.GET("/readyz", s.ready)
	s.routeAPI(e.Group("/api", s.authenticate), false)
	if err := s.routeUI(e); err != nil {
		return nil, err
	}
	s.engine = e

	// The local socket: the same API, one router and one wire format, for
	// the operator (whoever can reach the socket can read the data
	// directory anyway), plus metrics and job control.
	l := s.newEngine()
	l.SetTrustedProxies(nil)
	l.GET("/healthz", func(c *gin.Context) { c.String(http.StatusOK, "ok\n") })
	l.GET("/readyz", s.ready)
	if opts.Metrics != nil {
		l.GET("/metrics", gin.WrapH(opts.Metrics))
	}
	s.routeAPI(l.Group("/api", func(c *gin.Context) {
		// The operator, named by the OS user of the process on the other
		// end of the socket (peerUser), for the audit trail.
		op := service.Operator()
		if name, _ := c.Request.Context().Value(peerKey{}).(string); name != "" {
			op = service.OperatorAs(name)
		}
		c.Set(callerKey, op)
		c.Next()
	}), true)
	s.local = l
	return s, nil
}

func (s *Server) newEngine() *gin.Engine {
	e := gin.New()
	e.Use(s.accessLog, s.recover, limitBody)
	e.HandleMethodNotAllowed = true
	e.NoRoute(func(c *gin.Context) { s.fail(c, http.StatusNotFound, "no such page or endpoint") })
	e.NoMethod(func(c *gin.Context) { s.fail(c, http.StatusMethodNotAllowed, "method not allowed") })
	return e
}

// Handler returns the server as an http.Handler, refusing cross-origin
// state-changing requests (CSRF).
func (s *Server) Handler() http.Handler {
	return http.NewCrossOriginProtection().Handler(s.engine)
}

// LocalHandler is the handler of the local socket: the API as the operator.
func (s *Server) LocalHandler() http.Handler { return s.local }

// Serve serves h on ln until ctx is done, then shuts down gracefully:
// it stops accepting, and waits up to 5 s for requests in flight.
// Request bodies, headers and idle connections have time limits so that a
// slow client cannot hold a connection forever.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute,
		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if name := peerUser(c); name != "" {
				return context.WithValue(ctx, peerKey{}, name)
			}
			return ctx
		}}
	stop := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	})
	defer stop()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// peerKey is the request context's key of the local socket peer's OS user.
type peerKey struct{}

// apiError is the body of every error answer.
type apiError struct {
	Error     string `json:"error"`
	RequestID string `json:"request_id,omitempty"` // as in the log, for a report
}

func (s *Server) fail(c *gin.Context, status int, msg string) {
	c.AbortWithStatusJSON(status, apiError{Error: msg, RequestID: c.GetString(requestIDKey)})
}

// requestIDKey is where a request's id is kept in the gin context.
const requestIDKey = "request_id"

// accessLog gives every request an id (X-Request-ID, in error answers and
// in the log) and logs it when done: method, path (never the query, which
// holds search terms), status, duration, caller and address. Expected
// answers log at info, server errors at error.
func (s *Server) accessLog(c *gin.Context) {
	var b [8]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	c.Set(requestIDKey, id)
	c.Header("X-Request-ID", id)
	begin := time.Now()
	c.Next()
	level := slog.LevelInfo
	if c.Writer.Status() >= 500 {
		level = slog.LevelError
	}
	who := ""
	if v, ok := c.Get(callerKey); ok {
		who = v.(service.Caller).Name
	}
	s.log.Log(c.Request.Context(), level, "http", "request_id", id, "method", c.Request.Method, "path", c.Request.URL.Path,
		"status", c.Writer.Status(), "ms", time.Since(begin).Milliseconds(), "user", who, "remote", c.ClientIP())
}

// recover turns a panic into a 500 without a stack trace for the client.
func (s *Server) recover(c *gin.Context) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic serving a request", "request_id", c.GetString(requestIDKey), "path", c.Request.URL.Path, "panic", r)
			s.fail(c, http.StatusInternalServerError, "internal error (logged)")
		}
	}()
	c.Next()
}

func (s *Server) ready(c *gin.Context) {
	if err := s.opts.Archive.Ready(c.Request.Context()); err != nil {
		c.String(http.StatusServiceUnavailable, "not ready: %v\n", err)
		return
	}
	c.String(http.StatusOK, "ready\n")
}

// callerKey is where a request's service.Caller is kept in the gin context.
const callerKey = "caller"

// authenticate requires a bearer token and puts its user's Caller in the
// context.
func (s *Server) authenticate(c *gin.Context) {
	h := c.GetHeader("Authorization")
	token, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || token == "" {
		c.Header("WWW-Authenticate", `Bearer realm="mailvault"`)
		s.fail(c, http.StatusUnauthorized, "authentication required: send Authorization: Bearer <token> (mailvault user token NAME makes one)")
		return
	}
	u, err := s.opts.Users.TokenUser(c.Request.Context(), strings.TrimSpace(token))
	if err != nil {
		if !errors.Is(err, service.ErrBadLogin) {
			s.log.Error("token lookup", "err", err)
		}
		s.auditUnauthenticated(c, service.Caller{Remote: c.ClientIP()}, "login-failed", "bad token")
		c.Header("WWW-Authenticate", `Bearer realm="mailvault", error="invalid_token"`)
		s.fail(c, http.StatusUnauthorized, "unknown or revoked token")
		return
	}
	c.Set(callerKey, u.Caller(c.ClientIP()))
	c.Next()
}

// caller is who makes the request (set by authenticate or the session).
func caller(c *gin.Context) service.Caller {
	v, _ := c.Get(callerKey)
	return v.(service.Caller)
}

// serviceStatus maps a service error to an HTTP status and a message for
// the client; errors that are ours are logged and answered 500.
func (s *Server) serviceStatus(c *gin.Context, err error) (int, string) {
	switch {
	case errors.Is(err, service.ErrNotFound):
		return http.StatusNotFound, err.Error()
	case errors.Is(err, service.ErrBadRequest):
		return http.StatusUnprocessableEntity, err.Error()
	case errors.Is(err, service.ErrForbidden):
		return http.StatusForbidden, err.Error()
	case errors.Is(err, service.ErrBusy):
		return http.StatusConflict, err.Error()
	case errors.Is(err, context.Canceled):
		return 499, "request cancelled"
	}
	s.log.Error("request failed", "request_id", c.GetString(requestIDKey), "path", c.Request.URL.Path, "err", err)
	return http.StatusInternalServerError, "internal error (logged as request " + c.GetString(requestIDKey) + ")"
}

// failErr answers err as JSON.
func (s *Server) failErr(c *gin.Context, err error) {
	status, msg := s.serviceStatus(c, err)
	s.fail(c, status, msg)
}

// user is the logged-in user of a UI request (set by the session).
func user(c *gin.Context) *service.User {
	u, _ := c.Get("user")
	return u.(*service.User)
}

// maxBody bounds every request body (the JSON API's job requests and the
// login form are far smaller; nothing uploads mail over HTTP).
const maxBody = 1 << 20

// limitBody caps the request body before any handler reads it.
func limitBody(c *gin.Context) {
	if c.Request.ContentLength > maxBody {
		c.AbortWithStatusJSON(http.StatusRequestEntityTooLarge, apiError{Error: "request body too large", RequestID: c.GetString(requestIDKey)})
		return
	}
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, maxBody)
	c.Next()
}

// checkHost refuses a Host header this server does not answer to (DNS
// rebinding), before anything else runs.
func (s *Server) checkHost(c *gin.Context) {
	host := c.Request.Host
	ok := false
	if len(s.opts.Hosts) > 0 {
		h, _, err := net.SplitHostPort(host)
		if err != nil {
			h = host
		}
		ok = slices.ContainsFunc(s.opts.Hosts, func(a string) bool { return strings.EqualFold(a, host) || strings.EqualFold(a, h) })
	} else if s.opts.Loopback {
		ok = loopbackHost(host)
	} else {
		ok = true
	}
	if !ok {
		s.fail(c, http.StatusMisdirectedRequest, "this server does not answer to host "+clip(host, 100)+" (set web_hosts to the names it is reached by)")
		return
	}
	c.Next()
}

// loopbackHost: localhost, a loopback IP, with or without a port.
func loopbackHost(host string) bool {
	h, _, err := net.SplitHostPort(host)
	if err != nil {
		h = host
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// auditUnauthenticated records a refused login or a bad token, within the
// address's audit budget (service.LoginGuard): past it the row is counted and the
// count goes into the address's next row.
func (s *Server) auditUnauthenticated(c *gin.Context, who service.Caller, action, detail string) {
	detail, ok := s.guard.AuditDetail(who.Remote, detail, time.Now())
	if !ok {
		return
	}
	s.opts.Archive.Audit(c.Request.Context(), who, action, detail)
}
