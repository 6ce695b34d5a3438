package web

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"

	"mailvault/ledger"
	"mailvault/service"
)

// LedgerArchive is what the web needs of the service for the ledger.
type LedgerArchive interface {
	LedgerStatus(ctx context.Context, c service.Caller) (*service.LedgerStatus, error)
	Prove(ctx context.Context, c service.Caller, id string) (*ledger.Bundle, error)
	LedgerCheckpoint(ctx context.Context, c service.Caller) (*ledger.Checkpoint, error)
	StartLedgerVerify(c service.Caller, req service.LedgerVerifyRequest) (service.JobInfo, error)
}

// routeLedgerAPI: GET /api/ledger (status), POST /api/ledger/checkpoint,
// GET /api/ledger/prove/:id (the proof bundle, as a download). Verification
// is a job: POST /api/jobs {"kind": "ledger-verify", "ledger": {...}}.
func (s *Server) routeLedgerAPI(g *gin.RouterGroup) {
	g.GET("/ledger", func(c *gin.Context) {
		st, err := s.opts.Archive.LedgerStatus(c.Request.Context(), caller(c))
		if err != nil {
			s.failErr(c, err)
			return
		}
		c.JSON(http.StatusOK, st)
	})
	g.POST("/ledger/checkpoint", func(c *gin.Context) {
		cp, err := s.opts.Archive.LedgerCheckpoint(c.Request.Context(), caller(c))
		if err != nil {
			s.failErr(c, err)
			return
		}
		c.JSON(http.StatusOK, gin.H{"origin": cp.Origin, "size": cp.Size, "root": cp.Root})
	})
	g.GET("/ledger/prove/:id", func(c *gin.Context) {
		b, err := s.opts.Archive.Prove(c.Request.Context(), caller(c), c.Param("id"))
		if err != nil {
			s.failErr(c, err)
			return
		}
		if c.Query("download") != "" {
			c.Header("Content-Disposition", `attachment; filename="proof-`+safeName(c.Param("id"))+`.json"`)
		}
		c.IndentedJSON(http.StatusOK, b)
	})
}

// safeName keeps the hex digits of an id, for a file name (at most 64).
func safeName(id string) string {
	out := make([]byte, 0, 64)
	for i := 0; i < len(id) && len(out) < 64; i++ {
		if c := id[i]; c >= '0' && c <= '9' || c >= 'a' && c <= 'f' {
			out = append(out, c)
		}
	}
	return string(out)
}
