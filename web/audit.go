package web

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/gin-gonic/gin"

	"mailvault/service"
)

// The audit trail, for those who may read it (service.Caller.ReadsAudit:
// admins, auditors, the legal role, the operator on the local socket): the
// page /audit with a filter form and paging, and the API GET /api/audit.
// Both answer JSON or, with format=csv, CSV (service.WriteAuditCSV: RFC
// 4180 with a header row, formula cells defused). The role check and the
// audit of the read are the service's; a user gets 403 and no rows.

// AuditArchive is what the audit pages need of the archive.
type AuditArchive interface {
	AuditTrail(ctx context.Context, c service.Caller, f service.AuditFilter) ([]service.AuditEntry, error)
}

// auditAnswer is the body of GET /api/audit.
type auditAnswer struct {
	Entries []service.AuditEntry `json:"entries"` // newest first
	// NextBefore is before= for the next (older) page; absent on the last.
	NextBefore int64 `json:"next_before,omitempty"`
}

// auditFilter reads a filter from a request's query: user, action,
// since, until (RFC 3339, a datetime-local value or a date, UTC), limit,
// before (an entry's id). Empty fields filter nothing.
func auditFilter(c *gin.Context) (service.AuditFilter, error) {
	f := service.AuditFilter{User: c.Query("user"), Action: c.Query("action")}
	var err error
	if v := c.Query("since"); v != "" {
		if f.Since, err = service.ParseAuditTime(v); err != nil {
			return f, err
		}
	}
	if v := c.Query("until"); v != "" {
		if f.Until, err = service.ParseAuditTime(v); err != nil {
			return f, err
		}
	}
	if v := c.Query("limit"); v != "" {
		if f.Limit, err = strconv.Atoi(v); err != nil || f.Limit < 1 {
			return f, &badParam{"limit: want a number from 1 to " + strconv.Itoa(service.MaxAuditLimit)}
		}
	}
	if v := c.Query("before"); v != "" {
		if f.Before, err = strconv.ParseInt(v, 10, 64); err != nil || f.Before < 1 {
			return f, &badParam{"before: want the id of an entry (next_before of the previous page)"}
		}
	}
	return f, nil
}

// badParam is a malformed query parameter (400).
type badParam struct{ msg string }

func (e *badParam) Error() string { return e.msg }
func (e *badParam) Unwrap() error { return service.ErrBadRequest }

// auditCSV answers the trail f selects as a CSV download. Without a limit
// it is the whole filtered trail, read a page of MaxAuditLimit at a time
// (each page read is a row of the trail); with one, that many.
func (s *Server) auditCSV(c *gin.Context, f service.AuditFilter) error {
	all := f.Limit == 0
	if all {
		f.Limit = service.MaxAuditLimit
	}
	var entries []service.AuditEntry
	for {
		page, err := s.opts.Archive.AuditTrail(c.Request.Context(), caller(c), f)
		if err != nil {
			return err
		}
		entries = append(entries, page...)
		if !all || len(page) < f.Limit {
			break
		}
		f.Before = page[len(page)-1].ID
	}
	c.Header("Content-Type", "text/csv; charset=utf-8; header=present")
	c.Header("Content-Disposition", `attachment; filename="mailvault-audit.csv"`)
	c.Header("Cache-Control", "no-store")
	c.Header("X-Content-Type-Options", "nosniff")
	c.Status(http.StatusOK)
	if err := service.WriteAuditCSV(c.Writer, entries); err != nil {
		s.log.Error("audit csv", "request_id", c.GetString(requestIDKey), "err", err)
	}
	return nil
}

// apiAudit is GET /api/audit?user=&action=&since=&until=&limit=&before=[&format=csv].
func (s *Server) apiAudit(c *gin.Context) {
	f, err := auditFilter(c)
	if err != nil {
		s.fail(c, http.StatusBadRequest, err.Error())
		return
	}
	if c.Query("format") == "csv" {
		if err := s.auditCSV(c, f); err != nil {
			s.failErr(c, err)
		}
		return
	}
	entries, err := s.opts.Archive.AuditTrail(c.Request.Context(), caller(c), f)
	if err != nil {
		s.failErr(c, err)
		return
	}
	ans := auditAnswer{Entries: entries}
	limit := f.Limit
	if limit == 0 {
		limit = service.DefaultAuditLimit
	}
	if len(entries) == limit {
		ans.NextBefore = entries[len(entries)-1].ID
	}
	c.JSON(http.StatusOK, ans)
}

// auditPage is the view model of /audit.
type auditPage struct {
	pageData
	Form               auditForm // the filter form, as given
	Entries            []service.AuditEntry
	Older, Newest, CSV string // links
}

// auditForm is the filter form of /audit.
type auditForm struct{ User, Action, Since, Until string }

// auditPageSize is how many entries a page of /audit shows.
const auditPageSize = 100

// auditUI is GET /audit: the filter form, a page of entries, links to the
// older page and to the CSV of the whole filtered trail.
func (u *ui) auditUI(c *gin.Context) {
	f, err := auditFilter(c)
	p := auditPage{pageData: pageData{Title: "Audit trail", User: user(c)},
		Form: auditForm{User: c.Query("user"), Action: c.Query("action"), Since: c.Query("since"), Until: c.Query("until")}}
	if err != nil {
		p.Error = err.Error()
		u.render(c, http.StatusBadRequest, "audit", p)
		return
	}
	if c.Query("format") == "csv" {
		if err := u.s.auditCSV(c, f); err != nil {
			status, msg := u.s.serviceStatus(c, err)
			u.errorPage(c, status, "Audit trail not exported", msg)
		}
		return
	}
	if f.Limit == 0 {
		f.Limit = auditPageSize
	}
	p.Entries, err = u.s.opts.Archive.AuditTrail(c.Request.Context(), caller(c), f)
	if err != nil {
		status, msg := u.s.serviceStatus(c, err)
		u.errorPage(c, status, "Audit trail not shown", msg)
		return
	}
	q := url.Values{}
	for _, k := range []string{"user", "action", "since", "until"} {
		if v := c.Query(k); v != "" {
			q.Set(k, v)
		}
	}
	if f.Before > 0 {
		p.Newest = "/audit?" + q.Encode()
	}
	csv := url.Values{"format": {"csv"}}
	for k, v := range q {
		csv[k] = v
	}
	p.CSV = "/audit?" + csv.Encode()
	if len(p.Entries) == f.Limit {
		q.Set("before", strconv.FormatInt(p.Entries[len(p.Entries)-1].ID, 10))
		p.Older = "/audit?" + q.Encode()
	}
	u.render(c, http.StatusOK, "audit", p)
}

var _ AuditArchive = (*service.Service)(nil)
