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
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"mailvault/service"
)

// Archive is what the web needs of the running archive: the service API,
// scoped by the caller passed to each method (implemented by
// *service.Service). The web filters nothing itself.
type Archive interface {
	Search(ctx context.Context, c service.Caller, req service.SearchRequest) (*service.SearchResult, error)
	Message(ctx context.Context, c service.Caller, id string) (*service.Hit, error)
	Raw(ctx context.Context, c service.Caller, id, action string) (*service.Hit, []byte, error)
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
	CancelJob(c service.Caller, id string) error
	Ready(ctx context.Context) error
	Audit(ctx context.Context, c service.Caller, action, detail string) error
}

// Users is what the web needs of the user store (*service.Users).
type Users interface {
	Login(ctx context.Context, name, password string) (*service.User, error)
	TokenUser(ctx context.Context, token string) (*service.User, error)
	Get(ctx context.Context, name string) (*service.User, error)
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
}

// Server is the HTTP handler.
type Server struct {
	opts   Options
	log    *slog.Logger
	engine *gin.Engine
	local  *gin.Engine
}

// New returns a Server.
func New(opts Options) (*Server, error) {
	gin.SetMode(gin.ReleaseMode)
	s := &Server{opts: opts, log: opts.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	e := s.newEngine()
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
	l.GET("/healthz", func(c *gin.Context) { c.String(http.StatusOK, "ok\n") })
	l.GET("/readyz", s.ready)
	if opts.Metrics != nil {
		l.GET("/metrics", gin.WrapH(opts.Metrics))
	}
	s.routeAPI(l.Group("/api", func(c *gin.Context) {
		c.Set(callerKey, service.Operator())
		c.Next()
	}), true)
	s.local = l
	return s, nil
}

func (s *Server) newEngine() *gin.Engine {
	e := gin.New()
	e.Use(s.accessLog, s.recover)
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
		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
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
		s.opts.Archive.Audit(c.Request.Context(), service.Caller{Remote: c.ClientIP()}, "login-failed", "bad token")
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
