package web

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"mailvault/indexer/catalog"
	"mailvault/service"
)

// JournalArchive is what the web needs of the archive for journal and
// mailbox together (issue 16 item 3; implemented by *service.Service,
// scoped and audited there).
type JournalArchive interface {
	Provenance(ctx context.Context, c service.Caller, id string) (*service.Provenance, error)
	JournalCoverage(ctx context.Context, c service.Caller, account string) (*catalog.Coverage, error)
}

// apiMessageProvenance is GET /api/messages/:id/provenance: which sources
// saw the message (journal, mailbox, both) and its copies the caller may
// see, linked ones (the same mail, other bytes) included.
func (s *Server) apiMessageProvenance(c *gin.Context) {
	p, err := s.opts.Archive.Provenance(c.Request.Context(), caller(c), c.Param("id"))
	if err != nil {
		s.failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, p)
}

// apiJournalCoverage is GET /api/journal/coverage?account=A: per account,
// mail only the journal saw, only the mailbox holds, and both.
func (s *Server) apiJournalCoverage(c *gin.Context) {
	cov, err := s.opts.Archive.JournalCoverage(c.Request.Context(), caller(c), c.Query("account"))
	if err != nil {
		s.failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, cov)
}

// provenanceView is the message page's "seen by" block: the other copies
// (not the page's own message), split by source.
type provenanceView struct {
	Kind        string
	Journal     []catalog.Copy // journal copies of other bytes, or of these bytes
	Mailbox     []catalog.Copy // mailbox copies of other bytes
	ReportError string
}

// provenance reads the page's provenance; a failure is logged and the page
// renders without it.
func (u *ui) provenance(c *gin.Context, h *service.Hit) *provenanceView {
	p, err := u.s.opts.Archive.Provenance(c.Request.Context(), caller(c), h.SHA256)
	if err != nil {
		u.s.log.Warn("provenance", "sha256", h.SHA256, "err", err)
		return nil
	}
	v := &provenanceView{Kind: p.Kind, ReportError: p.ReportError}
	for _, cp := range p.Copies {
		switch {
		case cp.Journal:
			v.Journal = append(v.Journal, cp)
		case cp.SHA256 != h.SHA256:
			v.Mailbox = append(v.Mailbox, cp)
		}
	}
	return v
}

// statusCoverageTimeout bounds the coverage section of the status page: the
// report reads the whole catalog, and the page must not wait for it on a
// large archive (the CLI and the API have no such bound).
const statusCoverageTimeout = 3 * time.Second

// coverage is the status page's journal coverage section: nil without
// journal mail, a note when it could not be computed in time.
func (u *ui) coverage(c *gin.Context) (*catalog.Coverage, string) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), statusCoverageTimeout)
	defer cancel()
	cov, err := u.s.opts.Archive.JournalCoverage(ctx, caller(c), "")
	switch {
	case err == nil && cov.JournalSince == "":
		return nil, ""
	case err == nil:
		return cov, ""
	case errors.Is(err, context.DeadlineExceeded):
		return nil, "Journal coverage was not computed within " + statusCoverageTimeout.String() + ": run `mailvault journal coverage` or GET /api/journal/coverage."
	case errors.Is(err, service.ErrNotFound):
		return nil, "" // a user without accounts
	default:
		u.s.log.Warn("journal coverage", "err", err)
		return nil, "Journal coverage could not be read (logged)."
	}
}
