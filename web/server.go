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
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"mailvault/indexer"
)

// Options are what a Server needs from its process.
type Options struct {
	Archive *indexer.Archive
	Users   *Users
	// DataDir is the archive's directory (status reads its catalog).
	DataDir string
	// Status returns the live harvest state for /api/status; nil shows the
	// catalog only.
	Status func(ctx context.Context) ([]StatusLine, error)
	// Metrics serves /metrics (Prometheus text format); nil: 404.
	Metrics http.Handler
	// Ready reports whether the archive is ready to answer (the index
	// caught up); nil means always.
	Ready  func() error
	Logger *slog.Logger
}

// StatusLine is one mailbox's state, as `mailvault status --json` prints it.
type StatusLine = map[string]any

// Server is the HTTP handler.
type Server struct {
	opts   Options
	log    *slog.Logger
	engine *gin.Engine
}

// New returns a Server.
func New(opts Options) (*Server, error) {
	gin.SetMode(gin.ReleaseMode)
	s := &Server{opts: opts, log: opts.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	e := gin.New()
	e.Use(s.recover)
	e.HandleMethodNotAllowed = true
	e.NoRoute(func(c *gin.Context) { s.fail(c, http.StatusNotFound, "no such page or endpoint") })
	e.NoMethod(func(c *gin.Context) { s.fail(c, http.StatusMethodNotAllowed, "method not allowed") })
	e.GET("/healthz", func(c *gin.Context) { c.String(http.StatusOK, "ok\n") })
	e.GET("/readyz", s.ready)
	if opts.Metrics != nil {
		e.GET("/metrics", gin.WrapH(opts.Metrics))
	}
	api := e.Group("/api", s.authenticate)
	api.GET("/search", s.apiSearch)
	api.GET("/messages/:id", s.apiMessage)
	api.GET("/messages/:id/raw", s.apiRaw)
	api.GET("/status", s.apiStatus)
	api.GET("/whoami", func(c *gin.Context) { c.JSON(http.StatusOK, user(c)) })
	if err := s.routeUI(e); err != nil {
		return nil, err
	}
	s.engine = e
	return s, nil
}

// Handler returns the server as an http.Handler, refusing cross-origin
// state-changing requests (CSRF).
func (s *Server) Handler() http.Handler {
	return http.NewCrossOriginProtection().Handler(s.engine)
}

// ListenAndServe serves on addr until ctx is done.
func (s *Server) ListenAndServe(ctx context.Context, addr string, ready func(net string)) error {
	srv := &http.Server{Addr: addr, Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	ln, err := listen(addr)
	if err != nil {
		return err
	}
	if ready != nil {
		ready(ln.Addr().String())
	}
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
	Error string `json:"error"`
}

func (s *Server) fail(c *gin.Context, status int, msg string) {
	c.AbortWithStatusJSON(status, apiError{Error: msg})
}

// recover turns a panic into a 500 without a stack trace for the client.
func (s *Server) recover(c *gin.Context) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic serving a request", "path", c.Request.URL.Path, "panic", r)
			s.fail(c, http.StatusInternalServerError, "internal error (logged)")
		}
	}()
	c.Next()
}

func (s *Server) ready(c *gin.Context) {
	if s.opts.Ready != nil {
		if err := s.opts.Ready(); err != nil {
			c.String(http.StatusServiceUnavailable, "not ready: %v\n", err)
			return
		}
	}
	c.String(http.StatusOK, "ready\n")
}

// authenticate requires a bearer token and puts its user in the context.
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
		if !errors.Is(err, ErrBadLogin) {
			s.log.Error("token lookup", "err", err)
		}
		s.audit(c, "", "login-failed", "bad token")
		c.Header("WWW-Authenticate", `Bearer realm="mailvault", error="invalid_token"`)
		s.fail(c, http.StatusUnauthorized, "unknown or revoked token")
		return
	}
	c.Set("user", u)
	c.Next()
}

func user(c *gin.Context) *User {
	u, _ := c.Get("user")
	return u.(*User)
}

// audit records an action; a failure to record is logged, and does not
// fail the request (the request's own answer says nothing of it).
func (s *Server) audit(c *gin.Context, name, action, detail string) {
	if u, ok := c.Get("user"); ok && name == "" {
		name = u.(*User).Name
	}
	if err := s.opts.Users.Audit(c.Request.Context(), AuditEntry{User: name, Action: action, Detail: detail, Remote: c.ClientIP()}); err != nil {
		s.log.Error("audit trail: cannot record", "user", name, "action", action, "err", err)
	}
}
