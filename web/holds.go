package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"

	"mailvault/service"
)

// Legal holds over the JSON API and on the /holds page. Who may do what is
// the service's rule (service/holds.go): the web passes the caller and maps
// ErrForbidden to 403; it decides nothing itself, beyond not linking the
// page for a role the service would refuse. State-changing requests are
// POSTs, under the server's cross-origin protection (Handler) like every
// other form.

// HoldArchive is what the web needs of the archive for holds (implemented
// by *service.Service).
type HoldArchive interface {
	CreateHold(ctx context.Context, c service.Caller, req service.HoldRequest) (service.HoldInfo, error)
	Holds(ctx context.Context, c service.Caller) ([]service.HoldInfo, error)
	Hold(ctx context.Context, c service.Caller, name string) (service.HoldInfo, error)
	ReleaseHold(ctx context.Context, c service.Caller, name, reason string) (service.HoldInfo, error)
}

// routeHoldsAPI adds GET/POST /api/holds, GET /api/holds/:name and POST
// /api/holds/:name/release.
func (s *Server) routeHoldsAPI(g *gin.RouterGroup) {
	g.GET("/holds", s.apiHolds)
	g.POST("/holds", s.apiCreateHold)
	g.GET("/holds/:name", s.apiHold)
	g.POST("/holds/:name/release", s.apiReleaseHold)
}

// holdsAnswer is the body of GET /api/holds.
type holdsAnswer struct {
	Holds []service.HoldInfo `json:"holds"`
}

func (s *Server) apiHolds(c *gin.Context) {
	list, err := s.opts.Archive.Holds(c.Request.Context(), caller(c))
	if err != nil {
		s.failErr(c, err)
		return
	}
	if list == nil {
		list = []service.HoldInfo{}
	}
	c.JSON(http.StatusOK, holdsAnswer{Holds: list})
}

// apiCreateHold is POST /api/holds with a service.HoldRequest as JSON.
func (s *Server) apiCreateHold(c *gin.Context) {
	var req service.HoldRequest
	if err := c.ShouldBindJSON(&req); err != nil {
		s.fail(c, http.StatusBadRequest, `bad request body: want {"name": "...", "custodians": ["account", ...], "query": "...", "syntax": "human"|"imap", "description": "..."}`)
		return
	}
	h, err := s.opts.Archive.CreateHold(c.Request.Context(), caller(c), req)
	if err != nil {
		s.failErr(c, err)
		return
	}
	c.JSON(http.StatusCreated, h)
}

func (s *Server) apiHold(c *gin.Context) {
	h, err := s.opts.Archive.Hold(c.Request.Context(), caller(c), c.Param("name"))
	if err != nil {
		s.failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, h)
}

// releaseRequest is the body of POST /api/holds/:name/release.
type releaseRequest struct {
	Reason string `json:"reason"`
}

func (s *Server) apiReleaseHold(c *gin.Context) {
	var req releaseRequest
	if err := c.ShouldBindJSON(&req); err != nil {
		s.fail(c, http.StatusBadRequest, `bad request body: want {"reason": "why the hold is released"}`)
		return
	}
	h, err := s.opts.Archive.ReleaseHold(c.Request.Context(), caller(c), c.Param("name"), req.Reason)
	if err != nil {
		s.failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, h)
}

// holdsPage is the /holds page.
type holdsPage struct {
	pageData
	Holds   []service.HoldInfo
	Manages bool   // the caller may create and release
	Notice  string // what the last action did
	// The create form as sent, when it was refused.
	Form struct{ Name, Description, Custodians, Query, Syntax string }
}

func (u *ui) routeHolds(g *gin.RouterGroup) {
	g.GET("/holds", u.holds)
	g.POST("/holds", u.createHold)
	g.POST("/holds/:name/release", u.releaseHold)
}

func (u *ui) holds(c *gin.Context) {
	p := holdsPage{pageData: pageData{Title: "Legal holds", User: user(c)}, Notice: clip(c.Query("done"), 200)}
	u.renderHolds(c, http.StatusOK, p)
}

// renderHolds lists the holds into p and renders it; a caller the service
// refuses gets its answer as an error page.
func (u *ui) renderHolds(c *gin.Context, status int, p holdsPage) {
	who := caller(c)
	list, err := u.s.opts.Archive.Holds(c.Request.Context(), who)
	if err != nil {
		st, msg := u.s.serviceStatus(c, err)
		u.errorPage(c, st, "Legal holds", msg)
		return
	}
	p.Holds, p.Manages = list, who.ManagesHolds()
	u.render(c, status, "holds", p)
}

func (u *ui) createHold(c *gin.Context) {
	p := holdsPage{pageData: pageData{Title: "Legal holds", User: user(c)}}
	p.Form.Name, p.Form.Description = c.PostForm("name"), c.PostForm("description")
	p.Form.Custodians, p.Form.Query, p.Form.Syntax = c.PostForm("custodians"), c.PostForm("query"), c.PostForm("syntax")
	req := service.HoldRequest{Name: strings.TrimSpace(p.Form.Name), Description: p.Form.Description,
		Custodians: strings.FieldsFunc(p.Form.Custodians, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' }),
		Query:      p.Form.Query, Syntax: service.Syntax(p.Form.Syntax)}
	h, err := u.s.opts.Archive.CreateHold(c.Request.Context(), caller(c), req)
	if err != nil {
		st, msg := u.s.serviceStatus(c, err)
		if st == http.StatusForbidden || st >= 500 {
			u.errorPage(c, st, "Hold not created", msg)
			return
		}
		p.Error = msg
		u.renderHolds(c, st, p)
		return
	}
	c.Redirect(http.StatusSeeOther, "/holds?done="+url.QueryEscape("hold "+h.Name+" created"))
}

func (u *ui) releaseHold(c *gin.Context) {
	h, err := u.s.opts.Archive.ReleaseHold(c.Request.Context(), caller(c), c.Param("name"), c.PostForm("reason"))
	if err != nil {
		st, msg := u.s.serviceStatus(c, err)
		if st == http.StatusForbidden || st >= 500 {
			u.errorPage(c, st, "Hold not released", msg)
			return
		}
		p := holdsPage{pageData: pageData{Title: "Legal holds", User: user(c), Error: msg}}
		u.renderHolds(c, st, p)
		return
	}
	c.Redirect(http.StatusSeeOther, "/holds?done="+url.QueryEscape("hold "+h.Name+" released"))
}
