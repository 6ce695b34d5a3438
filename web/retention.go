package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"

	"mailvault/indexer"
	"mailvault/service"
)

// Retention, disposition and erasure over the JSON API and on the
// /retention page, so that a running serve (which holds the archive) can
// plan, approve, apply and erase, and four eyes can be two web users.
//
// Who may do what is the service's rule (service/retention.go): admin and
// the operator everything, auditor and legal plan and view, a user nothing;
// with retention.four_eyes the approver must be another identity than the
// planner. The web passes the caller on and maps the service's errors; it
// decides nothing itself beyond not linking the page for a role the service
// would refuse. The local socket's handler is the operator, as for every
// other endpoint.
//
// An apply runs as a job of serve (the jobs mechanism: one retention job at
// a time, progress with rate and ETA at GET /api/jobs/ID, cancellable);
// the endpoint answers 202 with the job. Refusals that need no work (WORM,
// an unapproved plan, no such plan) are answered at once, not as a failed
// job.
//
// Destructive forms on the page: apply needs the plan's id typed again
// (checked here and, since the page uses no scripts, nowhere else; the
// service's own checks still apply), erase needs the sha256 and a reason.
// All are POSTs under the server's cross-origin protection (Handler), like
// the holds forms.

// RetentionArchive is what the web needs of the archive for retention
// (implemented by *service.Service).
type RetentionArchive interface {
	Retention(ctx context.Context, c service.Caller) (service.RetentionSettings, error)
	RetentionPlans(ctx context.Context, c service.Caller) ([]*service.RetentionPlan, error)
	PlanRetention(ctx context.Context, c service.Caller) (*service.RetentionPlan, error)
	RetentionPlanByID(ctx context.Context, c service.Caller, id string) (*service.RetentionPlan, error)
	ApproveRetention(ctx context.Context, c service.Caller, id string) (*service.RetentionPlan, error)
	StartRetention(c service.Caller, req service.ApplyRequest) (service.JobInfo, error)
	Erase(ctx context.Context, c service.Caller, sha, reason string) (indexer.Tombstone, error)
}

// routeRetentionAPI adds the retention endpoints:
//
//	GET  /api/retention                   the config in force (policies, WORM, four eyes)
//	GET  /api/retention/plans             saved plans, newest first, without their items
//	POST /api/retention/plans             make a plan (201, the plan)
//	GET  /api/retention/plans/:id         one plan with its items
//	POST /api/retention/plans/:id/approve approve it (four eyes)
//	POST /api/retention/plans/:id/apply   apply it as a job (202, the job)
//	POST /api/retention/apply             apply the interrupted plan, or a new one (not with four eyes)
//	POST /api/erase                       {"sha256", "reason"}: erase one message (the tombstone)
func (s *Server) routeRetentionAPI(g *gin.RouterGroup) {
	g.GET("/retention", s.apiRetention)
	g.GET("/retention/plans", s.apiRetentionPlans)
	g.POST("/retention/plans", s.apiMakePlan)
	g.GET("/retention/plans/:id", s.apiRetentionPlan)
	g.POST("/retention/plans/:id/approve", s.apiApprovePlan)
	g.POST("/retention/plans/:id/apply", func(c *gin.Context) { s.apiApply(c, c.Param("id")) })
	g.POST("/retention/apply", func(c *gin.Context) { s.apiApply(c, "") })
	g.POST("/erase", s.apiErase)
}

func (s *Server) apiRetention(c *gin.Context) {
	rs, err := s.opts.Archive.Retention(c.Request.Context(), caller(c))
	if err != nil {
		s.failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, rs)
}

// plansAnswer is the body of GET /api/retention/plans.
type plansAnswer struct {
	Plans []*service.RetentionPlan `json:"plans"`
}

func (s *Server) apiRetentionPlans(c *gin.Context) {
	list, err := s.opts.Archive.RetentionPlans(c.Request.Context(), caller(c))
	if err != nil {
		s.failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, plansAnswer{Plans: list})
}

func (s *Server) apiMakePlan(c *gin.Context) {
	p, err := s.opts.Archive.PlanRetention(c.Request.Context(), caller(c))
	if err != nil {
		s.failErr(c, err)
		return
	}
	c.JSON(http.StatusCreated, p)
}

func (s *Server) apiRetentionPlan(c *gin.Context) {
	p, err := s.opts.Archive.RetentionPlanByID(c.Request.Context(), caller(c), c.Param("id"))
	if err != nil {
		s.failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, p)
}

func (s *Server) apiApprovePlan(c *gin.Context) {
	p, err := s.opts.Archive.ApproveRetention(c.Request.Context(), caller(c), c.Param("id"))
	if err != nil {
		s.failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, p)
}

func (s *Server) apiApply(c *gin.Context, id string) {
	j, err := s.opts.Archive.StartRetention(caller(c), service.ApplyRequest{PlanID: id})
	if err != nil {
		s.failErr(c, err)
		return
	}
	c.JSON(http.StatusAccepted, j)
}

// eraseRequest is the body of POST /api/erase.
type eraseRequest struct {
	SHA256 string `json:"sha256"`
	Reason string `json:"reason"`
}

func (s *Server) apiErase(c *gin.Context) {
	var req eraseRequest
	if err := c.ShouldBindJSON(&req); err != nil {
		s.fail(c, http.StatusBadRequest, `bad request body: want {"sha256": "64 hex digits", "reason": "the erasure request's reference"}`)
		return
	}
	t, err := s.opts.Archive.Erase(c.Request.Context(), caller(c), strings.TrimSpace(req.SHA256), req.Reason)
	if err != nil {
		s.failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, t)
}

// retentionPage is the /retention page.
type retentionPage struct {
	pageData
	Settings service.RetentionSettings
	Plans    []*service.RetentionPlan
	Disposes bool   // the caller may approve, apply and erase
	Me       string // the caller's name (four eyes: not the planner's)
	Notice   string // what the last action did
	Job      string // the apply job started, linked to /status
}

func (u *ui) routeRetention(g *gin.RouterGroup) {
	g.GET("/retention", u.retention)
	g.POST("/retention/plans", u.makePlan)
	g.POST("/retention/plans/:id/approve", u.approvePlan)
	g.POST("/retention/plans/:id/apply", u.applyPlan)
	g.POST("/retention/erase", u.erase)
}

func (u *ui) retention(c *gin.Context) {
	p := retentionPage{pageData: pageData{Title: "Retention", User: user(c)}, Notice: clip(c.Query("done"), 200),
		Job: clip(c.Query("job"), 40)}
	u.renderRetention(c, http.StatusOK, p)
}

// renderRetention fills p with the config and the plans and renders it; a
// caller the service refuses gets its answer as an error page.
func (u *ui) renderRetention(c *gin.Context, status int, p retentionPage) {
	who := caller(c)
	ctx := c.Request.Context()
	rs, err := u.s.opts.Archive.Retention(ctx, who)
	if err == nil {
		p.Plans, err = u.s.opts.Archive.RetentionPlans(ctx, who)
	}
	if err != nil {
		st, msg := u.s.serviceStatus(c, err)
		u.errorPage(c, st, "Retention", msg)
		return
	}
	p.Settings, p.Disposes, p.Me = rs, who.Disposes(), who.Name
	u.render(c, status, "retention", p)
}

// retentionDone answers a form that worked: back to the page, saying so.
func retentionDone(c *gin.Context, notice, job string) {
	q := url.Values{"done": {notice}}
	if job != "" {
		q.Set("job", job)
	}
	c.Redirect(http.StatusSeeOther, "/retention?"+q.Encode())
}

// retentionRefused answers a form the service refused: a 403 or a 5xx as
// an error page, anything else on the page with its message.
func (u *ui) retentionRefused(c *gin.Context, title string, err error) {
	st, msg := u.s.serviceStatus(c, err)
	if st == http.StatusForbidden || st >= 500 {
		u.errorPage(c, st, title, msg)
		return
	}
	u.renderRetention(c, st, retentionPage{pageData: pageData{Title: "Retention", User: user(c), Error: msg}})
}

func (u *ui) makePlan(c *gin.Context) {
	p, err := u.s.opts.Archive.PlanRetention(c.Request.Context(), caller(c))
	if err != nil {
		u.retentionRefused(c, "Plan not made", err)
		return
	}
	retentionDone(c, fmt.Sprintf("plan %s made: %d messages to delete, %d kept by holds", p.ID, p.ToDelete, p.HeldTotal), "")
}

func (u *ui) approvePlan(c *gin.Context) {
	p, err := u.s.opts.Archive.ApproveRetention(c.Request.Context(), caller(c), c.Param("id"))
	if err != nil {
		u.retentionRefused(c, "Plan not approved", err)
		return
	}
	retentionDone(c, "plan "+p.ID+" approved by "+p.ApprovedBy, "")
}

func (u *ui) applyPlan(c *gin.Context) {
	id := c.Param("id")
	if strings.TrimSpace(c.PostForm("confirm")) != id {
		// Typing the id again is what stands between a stray click and
		// deletion; the service is not asked at all without it.
		u.renderRetention(c, http.StatusUnprocessableEntity, retentionPage{pageData: pageData{Title: "Retention", User: user(c),
			Error: "plan " + clip(id, 40) + " not applied: type the plan's id in the confirmation field to apply it"}})
		return
	}
	j, err := u.s.opts.Archive.StartRetention(caller(c), service.ApplyRequest{PlanID: id})
	if err != nil {
		u.retentionRefused(c, "Plan not applied", err)
		return
	}
	retentionDone(c, "plan "+id+" is being applied as job "+j.ID, j.ID)
}

func (u *ui) erase(c *gin.Context) {
	t, err := u.s.opts.Archive.Erase(c.Request.Context(), caller(c), strings.TrimSpace(c.PostForm("sha256")), c.PostForm("reason"))
	if err != nil {
		u.retentionRefused(c, "Message not erased", err)
		return
	}
	retentionDone(c, fmt.Sprintf("message %s erased (tombstone %d, rule %s)", t.SHA256, t.ID, t.Rule), "")
}

var _ RetentionArchive = (*service.Service)(nil)
