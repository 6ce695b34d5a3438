package web

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"mailvault/indexer"
	"mailvault/query"
)

func listen(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }

// searchAnswer is the body of GET /api/search.
type searchAnswer struct {
	Total      uint64   `json:"total"` // messages matching (human syntax) or occurrences (IMAP)
	Hits       []apiHit `json:"hits"`
	NextCursor string   `json:"next_cursor,omitempty"` // pass as cursor= for the next page
	TookMS     float64  `json:"took_ms"`
	Query      string   `json:"query"`  // the query as understood
	Syntax     string   `json:"syntax"` // human or imap
}

// apiHit is one message and where it lives (the occurrences the caller may see).
type apiHit struct {
	SHA256      string               `json:"sha256"`
	Date        string               `json:"date"`
	From        string               `json:"from"`
	Subject     string               `json:"subject"`
	Size        int64                `json:"size"`
	Occurrences []indexer.Occurrence `json:"occurrences"`
	Snippet     template.HTML        `json:"-"` // the search page's, escaped with the matches marked
}

// pagePos is where the next page starts: an offset, and for date-ordered
// searches of the human syntax also the sort key of the last hit, so that a
// deep page costs what the first does (Bleve's SearchAfter). Clients see it
// as an opaque cursor.
type pagePos struct {
	Offset int      `json:"o"`
	After  []string `json:"a,omitempty"`
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
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil && json.Unmarshal(b, &p) == nil && p.Offset >= 0 && (p.After == nil || len(p.After) == 2) {
		return p, nil
	}
	return pagePos{}, errors.New("bad cursor: pass next_cursor of the previous page as it is")
}

// apiSearch is GET /api/search?q=...&syntax=human|imap&account=..&mailbox=..&limit=..&cursor=..
func (s *Server) apiSearch(c *gin.Context) {
	u := user(c)
	q := c.Query("q")
	syntax := c.DefaultQuery("syntax", "human")
	limit, err := strconv.Atoi(c.DefaultQuery("limit", "50"))
	if err != nil || limit < 1 || limit > 1000 {
		s.fail(c, http.StatusBadRequest, "limit: want a number from 1 to 1000")
		return
	}
	pos, err := decodeCursor(c.Query("cursor"))
	if err != nil {
		s.fail(c, http.StatusBadRequest, err.Error())
		return
	}
	accounts, ok := u.Scope(c.QueryArray("account"))
	if !ok {
		// Not "forbidden": that would confirm the account exists.
		s.fail(c, http.StatusNotFound, "no such account")
		return
	}
	if u.Role == RoleUser && len(accounts) == 0 {
		s.fail(c, http.StatusNotFound, "no such account")
		return
	}
	mailboxes := c.QueryArray("mailbox")
	var n query.Node
	switch syntax {
	case "human":
		n, err = query.ParseHuman(q)
	case "imap":
		n, err = query.ParseIMAP(q)
	default:
		s.fail(c, http.StatusBadRequest, fmt.Sprintf("syntax %q: want human or imap", syntax))
		return
	}
	if err != nil {
		s.fail(c, http.StatusUnprocessableEntity, err.Error())
		return
	}
	s.audit(c, "", "search", syntax+": "+q)
	begin := time.Now()
	ans := searchAnswer{Hits: []apiHit{}, Query: q, Syntax: syntax}
	byRelevance := c.Query("sort") == "relevance"
	out, err := s.search(c, u, n, syntax, accounts, mailboxes, limit, pos, byRelevance, false)
	if err != nil {
		s.searchFailed(c, err)
		return
	}
	ans.Hits, ans.Total = append(ans.Hits, out.hits...), out.total
	if next := pos.Offset + len(out.hits); uint64(next) < out.total && len(out.hits) > 0 {
		ans.NextCursor = encodeCursor(pagePos{Offset: next, After: out.after})
	}
	ans.TookMS = float64(time.Since(begin).Microseconds()) / 1000
	c.JSON(http.StatusOK, ans)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func containsMailbox(list []string, mb string) bool {
	for _, x := range list {
		if query.CanonicalMailbox(x) == mb {
			return true
		}
	}
	return false
}

// searchOut is one page of a search.
type searchOut struct {
	hits   []apiHit
	total  uint64 // messages (human syntax) or occurrences (IMAP) matching
	facets *indexer.Facets
	after  []string // the sort key of the last hit, for the next page (date order, human syntax)
}

// search answers n (human syntax or IMAP) in the accounts and mailboxes
// given (nil: all u may see), from page position pos, with facets for the
// human syntax when asked. Facet places outside u's accounts are dropped:
// a message held in two accounts must not reveal the other one's mailboxes.
func (s *Server) search(c *gin.Context, u *User, n query.Node, syntax string, accounts, mailboxes []string, limit int, pos pagePos, byRelevance, withFacets bool) (searchOut, error) {
	var hits []apiHit
	if syntax == "human" {
		o := &indexer.SearchOptions{Accounts: accounts, Mailboxes: mailboxes, Limit: limit, Offset: pos.Offset,
			ByRelevance: byRelevance, Facets: withFacets}
		if !byRelevance && pos.After != nil {
			o.Offset, o.After = 0, pos.After
		}
		res, err := s.opts.Archive.Search(c.Request.Context(), n, o)
		if err != nil {
			return searchOut{}, err
		}
		for _, h := range res.Hits {
			hits = append(hits, s.hit(u, h))
		}
		if f := res.Facets; f != nil {
			kept := f.Places[:0]
			for _, p := range f.Places {
				if u.Sees(p.Account) {
					kept = append(kept, p)
				}
			}
			f.Places = kept
		}
		return searchOut{hits: hits, total: res.Total, facets: res.Facets, after: res.After}, nil
	}
	st, err := s.opts.Archive.Catalog().AllMailboxes(c.Request.Context())
	if err != nil {
		return searchOut{}, err
	}
	var all []apiHit
	for _, mb := range st {
		if accounts != nil && !contains(accounts, mb.Account) || !u.Sees(mb.Account) ||
			len(mailboxes) > 0 && !containsMailbox(mailboxes, mb.Mailbox) {
			continue
		}
		res, err := s.opts.Archive.SearchIMAP(c.Request.Context(), mb.Account, mb.Mailbox, n, nil)
		if err != nil {
			return searchOut{}, err
		}
		for _, h := range res.Hits {
			all = append(all, apiHit{SHA256: fmt.Sprintf("%x", h.SHA256), Date: h.Date, From: h.From, Subject: h.Subject, Size: h.Size,
				Occurrences: []indexer.Occurrence{{Account: res.Account, Mailbox: res.Mailbox, UIDValidity: res.UIDValidity, UID: h.UID,
					Flags: strings.Fields(h.Flags), Expunged: h.Expunged,
					URL: indexer.MessageURL(res.AccountURL, res.Account, res.Mailbox, res.UIDValidity, h.UID)}}})
		}
	}
	if pos.Offset < len(all) {
		hits = all[pos.Offset:min(len(all), pos.Offset+limit)]
	}
	return searchOut{hits: hits, total: uint64(len(all))}, nil
}

// searchFailed answers a search error: a deadline or a limit is the
// caller's to fix (422), anything else is ours (500, logged).
func (s *Server) searchFailed(c *gin.Context, err error) {
	if strings.Contains(err.Error(), "narrow the search") || strings.Contains(err.Error(), "has no mailbox") {
		s.fail(c, http.StatusUnprocessableEntity, err.Error())
		return
	}
	s.log.Error("search", "err", err)
	s.fail(c, http.StatusInternalServerError, "search failed (logged)")
}

// hit keeps the occurrences u may see.
func (s *Server) hit(u *User, h indexer.Hit) apiHit {
	out := apiHit{SHA256: h.SHA256, From: h.From, Subject: h.Subject, Size: h.Size, Occurrences: []indexer.Occurrence{}}
	if !h.Date.IsZero() {
		out.Date = h.Date.Format(time.RFC3339)
	}
	for _, o := range h.Occurrences {
		if u.Sees(o.Account) {
			out.Occurrences = append(out.Occurrences, o)
		}
	}
	return out
}

// message returns the message :id if u may see it (some occurrence in
// their accounts); otherwise it answers 404 itself and returns nil.
func (s *Server) message(c *gin.Context) *apiHit {
	id := strings.ToLower(c.Param("id"))
	h, err := s.opts.Archive.Message(c.Request.Context(), id)
	if err != nil && !errors.Is(err, indexer.ErrNoMessage) {
		s.log.Error("message", "id", id, "err", err)
		s.fail(c, http.StatusInternalServerError, "internal error (logged)")
		return nil
	}
	if err == nil {
		ah := s.hit(user(c), *h)
		if len(ah.Occurrences) > 0 {
			return &ah
		}
	}
	s.fail(c, http.StatusNotFound, "no such message: "+id)
	return nil
}

// apiMessage is GET /api/messages/:id (the sha256 of the message).
func (s *Server) apiMessage(c *gin.Context) {
	h := s.message(c)
	if h == nil {
		return
	}
	s.audit(c, "", "read", h.SHA256)
	c.JSON(http.StatusOK, h)
}

// apiRaw is GET /api/messages/:id/raw: the message byte-exact.
func (s *Server) apiRaw(c *gin.Context) {
	h := s.message(c)
	if h == nil {
		return
	}
	raw, err := s.opts.Archive.Raw(h.SHA256)
	if err != nil {
		s.log.Error("raw message", "id", h.SHA256, "err", err)
		s.fail(c, http.StatusInternalServerError, "cannot read the message (logged; `mailvault verify` checks the store)")
		return
	}
	s.audit(c, "", "download", h.SHA256)
	c.Header("Content-Disposition", `attachment; filename="`+h.SHA256+`.eml"`)
	c.Header("X-Content-SHA256", h.SHA256)
	c.Data(http.StatusOK, "message/rfc822", raw)
}

// apiStatus is GET /api/status: one object per mailbox the caller may see.
func (s *Server) apiStatus(c *gin.Context) {
	u := user(c)
	var lines []StatusLine
	if s.opts.Status != nil {
		all, err := s.opts.Status(c.Request.Context())
		if err != nil {
			s.log.Error("status", "err", err)
			s.fail(c, http.StatusInternalServerError, "status failed (logged)")
			return
		}
		for _, l := range all {
			if acct, _ := l["account"].(string); u.Sees(acct) {
				lines = append(lines, l)
			}
		}
	}
	if lines == nil {
		lines = []StatusLine{}
	}
	c.JSON(http.StatusOK, gin.H{"mailboxes": lines})
}
