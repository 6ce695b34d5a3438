package web

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"mailvault/indexer"
	"mailvault/service"
)

// searchAnswer is the body of GET /api/search.
type searchAnswer struct {
	Total      uint64   `json:"total"` // messages matching (human syntax) or occurrences (IMAP)
	Hits       []apiHit `json:"hits"`
	NextCursor string   `json:"next_cursor,omitempty"` // pass as cursor= for the next page
	// After is the last hit's sort key (every order but relevance; three
	// values for sort=sender): after=..&after=.. with the same sort= is the
	// next page too, for clients that page by their own offsets.
	After     []string                `json:"after,omitempty"`
	TookMS    float64                 `json:"took_ms"`
	Query     string                  `json:"query"`  // the query as understood
	Syntax    service.Syntax          `json:"syntax"` // human or imap
	Mailboxes []service.MailboxAnswer `json:"mailboxes,omitempty"`
}

// apiHit is one message and where it lives (the occurrences the caller may
// see), and for the search page its snippet.
type apiHit struct {
	service.Hit
	Snippet template.HTML `json:"-"` // escaped, with the matches marked
}

func wrapHits(hs []service.Hit) []apiHit {
	out := make([]apiHit, len(hs))
	for i, h := range hs {
		out[i] = apiHit{Hit: h}
	}
	return out
}

// pagePos is where the next page starts: an offset, and for date-ordered
// searches of the human syntax also the sort key of the last hit, so that a
// deep page costs what the first does (Bleve's SearchAfter). Clients see it
// as an opaque cursor.
type pagePos struct {
	Offset int      `json:"o"`
	After  []string `json:"a,omitempty"` // 2 keys, 3 for sort=sender (indexer's sort keys)
	// Sort is the sort= the cursor was made for: a cursor holds that
	// order's keys, so one of another order is refused, not misread.
	Sort string `json:"s,omitempty"`
}

func encodeCursor(p pagePos) string {
	b, _ := json.Marshal(p)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (pagePos, error) {
	var p pagePos
	if s == "" {
		return p, nil
	}
	if len(s) > 4096 {
		return pagePos{}, errors.New("bad cursor: pass next_cursor of the previous page as it is")
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil && json.Unmarshal(b, &p) == nil && p.Offset >= 0 && (p.After == nil || len(p.After) == 2 || len(p.After) == 3) {
		return p, nil
	}
	return pagePos{}, errors.New("bad cursor: pass next_cursor of the previous page as it is")
}

// routeAPI adds the JSON API to g. local is the local socket's API, whose
// caller is the operator: it may start imports (paths on the host).
func (s *Server) routeAPI(g *gin.RouterGroup, local bool) {
	g.GET("/search", s.apiSearch)
	g.GET("/messages/:id", s.apiMessage)
	g.GET("/messages/:id/raw", s.apiRaw)
	g.GET("/messages/:id/attachments", s.apiAttachments)
	g.GET("/messages/:id/flags", s.apiFlags)
	g.GET("/messages/:id/provenance", s.apiMessageProvenance)
	g.GET("/journal/coverage", s.apiJournalCoverage)
	g.GET("/status", s.apiStatus)
	g.GET("/whoami", func(c *gin.Context) { c.JSON(http.StatusOK, caller(c)) })
	g.GET("/jobs", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"jobs": s.opts.Archive.Jobs(caller(c))}) })
	g.GET("/jobs/:id", s.apiJob)
	s.routeHoldsAPI(g)
	s.routeRetentionAPI(g)
	s.routeLedgerAPI(g)
	g.GET("/audit", s.apiAudit)
	g.POST("/jobs", func(c *gin.Context) { s.apiStartJob(c, local) })
	g.DELETE("/jobs/:id", func(c *gin.Context) {
		if err := s.opts.Archive.CancelJob(caller(c), c.Param("id")); err != nil {
			s.failErr(c, err)
			return
		}
		s.apiJob(c)
	})
}

// apiSearch is GET /api/search?q=...&syntax=human|imap&account=..&mailbox=..&limit=..&cursor=..&sort=newest|date|oldest|largest|smallest|sender|relevance&include_expunged=1
// (offset=N or after=..&after=.. instead of cursor, for clients that page
// themselves).
func (s *Server) apiSearch(c *gin.Context) {
	limit, err := strconv.Atoi(c.DefaultQuery("limit", "50"))
	if err != nil || limit < 1 || limit > service.MaxLimit {
		s.fail(c, http.StatusBadRequest, "limit: want a number from 1 to 1000")
		return
	}
	pos, err := decodeCursor(c.Query("cursor"))
	if err != nil {
		s.fail(c, http.StatusBadRequest, err.Error())
		return
	}
	if c.Query("cursor") != "" && pos.Sort != c.Query("sort") {
		s.fail(c, http.StatusBadRequest, "bad cursor: it was made for sort="+pos.Sort+", not sort="+c.Query("sort"))
		return
	}
	if after := c.QueryArray("after"); len(after) > 0 && c.Query("cursor") == "" {
		if len(after) != 2 && len(after) != 3 {
			s.fail(c, http.StatusBadRequest, "after: want the values of the previous answer's after (two, three for sort=sender)")
			return
		}
		pos.After = after
	}
	if o := c.Query("offset"); o != "" && c.Query("cursor") == "" {
		// offset= is for scripts that page by number (`mailvault search
		// --offset`); the cursor pages deep at the cost of the first page.
		if pos.Offset, err = strconv.Atoi(o); err != nil || pos.Offset < 0 {
			s.fail(c, http.StatusBadRequest, "offset: want a number from 0")
			return
		}
	}
	syntax := service.Syntax(c.DefaultQuery("syntax", "human"))
	if syntax != service.SyntaxHuman && syntax != service.SyntaxIMAP {
		s.fail(c, http.StatusBadRequest, "syntax: want human or imap")
		return
	}
	req := service.SearchRequest{Query: c.Query("q"), Syntax: syntax,
		Accounts: c.QueryArray("account"), Mailboxes: c.QueryArray("mailbox"), Limit: limit, Offset: pos.Offset,
		After: pos.After, ByRelevance: c.Query("sort") == "relevance", Sort: c.Query("sort"), IncludeExpunged: c.Query("include_expunged") == "1"}
	res, err := s.opts.Archive.Search(c.Request.Context(), caller(c), req)
	if err != nil {
		s.failErr(c, err)
		return
	}
	ans := searchAnswer{Total: res.Total, Hits: wrapHits(res.Hits), TookMS: res.TookMS, Query: res.Query, Syntax: res.Syntax,
		Mailboxes: res.Mailboxes, After: res.After}
	if next := pos.Offset + len(res.Hits); uint64(next) < res.Total && len(res.Hits) > 0 {
		np := pagePos{Offset: next, Sort: c.Query("sort")}
		if req.Syntax != service.SyntaxIMAP && !req.ByRelevance {
			np.After = res.After
		}
		ans.NextCursor = encodeCursor(np)
	}
	c.JSON(http.StatusOK, ans)
}

// apiMessage is GET /api/messages/:id (the sha256 of the message).
func (s *Server) apiMessage(c *gin.Context) {
	h, err := s.opts.Archive.Message(c.Request.Context(), caller(c), c.Param("id"))
	if err != nil {
		s.failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, h)
}

// apiAttachments is GET /api/messages/:id/attachments: the text extracted
// from each attachment, or why there is none, and whether extraction is
// still pending.
func (s *Server) apiAttachments(c *gin.Context) {
	at, err := s.opts.Archive.AttachmentTexts(c.Request.Context(), caller(c), c.Param("id"))
	if err != nil {
		s.failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, at)
}

// flagsAnswer is the answer of GET /api/messages/:id/flags.
type flagsAnswer struct {
	Occurrences []indexer.FlagHistory `json:"occurrences"`
	// Gmail: X-GM-MSGID, X-GM-THRID and labels per Gmail account, when
	// the message was harvested from Gmail (harvest/gmail.go).
	Gmail []service.GmailLabels `json:"gmail"`
}

// apiFlags is GET /api/messages/:id/flags: the flag history of each of
// the message's occurrences the caller may see, oldest sighting first,
// and its Gmail labels in the accounts the caller may see.
func (s *Server) apiFlags(c *gin.Context) {
	h, err := s.opts.Archive.FlagHistory(c.Request.Context(), caller(c), c.Param("id"))
	if err != nil {
		s.failErr(c, err)
		return
	}
	g, err := s.opts.Archive.Gmail(c.Request.Context(), caller(c), c.Param("id"))
	if err != nil {
		s.failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, flagsAnswer{Occurrences: h, Gmail: g})
}

// apiRaw is GET /api/messages/:id/raw: the message byte-exact.
func (s *Server) apiRaw(c *gin.Context) {
	h, raw, err := s.opts.Archive.Raw(c.Request.Context(), caller(c), c.Param("id"), "download")
	if err != nil {
		s.failErr(c, err)
		return
	}
	serveRaw(c, h, raw)
}

// serveRaw answers a message's bytes as a download.
func serveRaw(c *gin.Context, h *service.Hit, raw []byte) {
	c.Header("Content-Disposition", `attachment; filename="`+h.SHA256+`.eml"`)
	c.Header("X-Content-SHA256", h.SHA256)
	c.Header("X-Content-Type-Options", "nosniff")
	c.Header("Cache-Control", "no-store")
	c.Data(http.StatusOK, "message/rfc822", raw)
}

// apiStatus is GET /api/status: the mailboxes the caller may see, and jobs.
func (s *Server) apiStatus(c *gin.Context) {
	st, err := s.opts.Archive.Status(c.Request.Context(), caller(c))
	if err != nil {
		s.failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, st)
}

func (s *Server) apiJob(c *gin.Context) {
	j, err := s.opts.Archive.Job(caller(c), c.Param("id"))
	if err != nil {
		s.failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, j)
}

// jobRequest is the body of POST /api/jobs.
type jobRequest struct {
	Kind   service.JobKind              `json:"kind"`
	Import *service.ImportRequest       `json:"import,omitempty"`
	Export *service.ExportRequest       `json:"export,omitempty"`
	Ledger *service.LedgerVerifyRequest `json:"ledger,omitempty"`
	// Accounts narrow a check (gap check) to these accounts.
	Accounts []string `json:"accounts,omitempty"`
}

// apiStartJob is POST /api/jobs {"kind": "verify"|"reindex"|"import", "import": {...}}.
// Imports read paths on the host, so only the local socket starts them.
func (s *Server) apiStartJob(c *gin.Context, local bool) {
	var req jobRequest
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, 1<<20)
	if err := json.NewDecoder(c.Request.Body).Decode(&req); err != nil {
		s.fail(c, http.StatusBadRequest, "bad request body: want {\"kind\": \"verify\"|\"reindex\"|\"import\", ...}")
		return
	}
	var j service.JobInfo
	var err error
	switch req.Kind {
	case service.JobVerify:
		j, err = s.opts.Archive.StartVerify(caller(c))
	case service.JobReindex:
		j, err = s.opts.Archive.StartReindex(caller(c))
	case service.JobCheck:
		j, err = s.opts.Archive.StartCheck(caller(c), req.Accounts)
	case service.JobImport:
		if !local {
			s.fail(c, http.StatusForbidden, "imports read files on the host: start them there with `mailvault import`")
			return
		}
		if req.Import == nil {
			s.fail(c, http.StatusBadRequest, "an import job needs \"import\": {\"account\", \"paths\"}")
			return
		}
		j, err = s.opts.Archive.StartImport(caller(c), *req.Import)
	case service.JobExport:
		if req.Export == nil {
			s.fail(c, http.StatusBadRequest, "an export job needs \"export\": {\"search\": {...}} or {\"ids\": [...]}")
			return
		}
		if !local && req.Export.Dir != "" {
			// A web client does not choose paths on the server: its exports
			// go under the data directory and are downloaded from there.
			s.fail(c, http.StatusForbidden, "an export started over the web API goes to the archive's exports directory: leave dir out")
			return
		}
		j, err = s.opts.Archive.StartExport(caller(c), *req.Export)
	case service.JobLedgerVerify:
		var lr service.LedgerVerifyRequest
		if req.Ledger != nil {
			lr = *req.Ledger
		}
		if !local && lr.CopyDir != "" {
			s.fail(c, http.StatusForbidden, "copy_dir names a path on the host: give it on the host, with `mailvault ledger verify`")
			return
		}
		j, err = s.opts.Archive.StartLedgerVerify(caller(c), lr)
	default:
		s.fail(c, http.StatusBadRequest, "kind: want verify, reindex, import, export or ledger-verify")
		return
	}
	if err != nil {
		s.failErr(c, err)
		return
	}
	c.JSON(http.StatusAccepted, j)
}
