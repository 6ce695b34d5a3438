package web

import (
	"archive/zip"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/microcosm-cc/bluemonday"

	"mailvault/export"
	"mailvault/harvest"
	"mailvault/indexer"
	"mailvault/indexer/catalog"
	"mailvault/indexer/mime"
	"mailvault/service"
	"mailvault/templates"
)

// The HTML pages. They use no scripts: the Content-Security-Policy forbids
// them, and everything is a link or a form. A message's HTML is sanitized
// (bluemonday) and shown in a sandboxed iframe whose own policy allows no
// scripts, no forms, and remote content only when asked for.

const pageCSP = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-src 'self'; frame-ancestors 'none'; base-uri 'none'"

type ui struct {
	s      *Server
	pages  map[string]*template.Template
	guard  *service.LoginGuard
	policy *bluemonday.Policy
}

// pageData is what every page gets.
type pageData struct {
	Title string
	User  *service.User
	Error string
}

func (s *Server) routeUI(e *gin.Engine) error {
	pages, err := templates.Pages(template.FuncMap{
		// day shows an RFC 3339 time as "2024-03-04 10:00" (the message's own zone).
		"day": func(s string) string {
			if len(s) >= 16 {
				return s[:10] + " " + s[11:16]
			}
			return s
		},
	})
	if err != nil {
		return err
	}
	u := &ui{s: s, pages: pages, guard: s.guard, policy: bluemonday.UGCPolicy()}
	e.GET("/static/*file", staticFiles())
	e.GET("/login", u.loginPage)
	e.POST("/login", u.login)
	e.POST("/logout", u.logout)
	g := e.Group("/", u.session)
	g.GET("/", u.search)
	g.GET("/message/:id", u.message)
	g.GET("/message/:id/raw", u.raw)
	g.GET("/message/:id/html", u.html)
	g.GET("/message/:id/attachment/:n", u.attachment)
	g.GET("/status", u.status)
	g.POST("/export", u.startExport)
	g.GET("/exports/:file", u.downloadExport)
	u.routeHolds(g)
	u.routeRetention(g)
	g.GET("/audit", u.auditUI)
	return nil
}

func (u *ui) render(c *gin.Context, status int, page string, data any) {
	c.Header("Content-Security-Policy", pageCSP)
	c.Header("X-Content-Type-Options", "nosniff")
	c.Header("Referrer-Policy", "no-referrer")
	c.Header("Cache-Control", "no-store") // pages show mail: no copy in caches
	c.Header("Content-Type", "text/html; charset=utf-8")
	c.Status(status)
	if err := u.pages[page].ExecuteTemplate(c.Writer, "layout", data); err != nil {
		u.s.log.Error("render page", "page", page, "err", err)
	}
}

func (u *ui) errorPage(c *gin.Context, status int, title, msg string) {
	usr, _ := c.Get("user")
	pu, _ := usr.(*service.User)
	if status >= 500 {
		msg += " (request " + c.GetString(requestIDKey) + ")"
	}
	u.render(c, status, "error", pageData{Title: title, User: pu, Error: msg})
	c.Abort()
}

// session requires a valid session cookie; without one a page redirects to
// the login page, coming back afterwards.
func (u *ui) session(c *gin.Context) {
	if v, err := c.Cookie(sessionCookie); err == nil && v != "" {
		usr, err := u.s.opts.Users.SessionUser(c.Request.Context(), v)
		if err == nil {
			c.Set("user", usr)
			c.Set(callerKey, usr.Caller(c.ClientIP()))
			c.Next()
			return
		}
		if !errors.Is(err, service.ErrBadLogin) {
			u.s.log.Error("session lookup", "err", err)
			u.errorPage(c, http.StatusInternalServerError, "Session check failed", "Your session could not be checked (logged).")
			return
		}
	}
	c.Redirect(http.StatusSeeOther, "/login?next="+url.QueryEscape(c.Request.URL.RequestURI()))
	c.Abort()
}

type loginData struct {
	pageData
	Name, Next string
}

func (u *ui) loginPage(c *gin.Context) {
	u.render(c, http.StatusOK, "login", loginData{pageData: pageData{Title: "Log in"}, Next: safeNext(c.Query("next"))})
}

// safeNext keeps a redirect target on this site: a path, never a scheme
// or a host, however spelled (//evil, /\\evil, /%09/evil and control
// characters that browsers strip are all refused).
func safeNext(next string) string {
	if len(next) > 2048 || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") ||
		strings.ContainsFunc(next, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' }) {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/"
	}
	// The decoded path must not turn into a scheme-relative URL either.
	if p := u.Path; !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") ||
		strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' }) {
		return "/"
	}
	return next
}

// Bounds of the login form: what the fields of a real login can hold.
const (
	maxLoginName     = service.MaxNameBytes
	maxLoginPassword = 72 // bcrypt's limit; no password is longer
	maxLoginBody     = 8 << 10
)

func (u *ui) login(c *gin.Context) {
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, maxLoginBody)
	if err := c.Request.ParseForm(); err != nil {
		u.s.fail(c, http.StatusRequestEntityTooLarge, "login form too large")
		return
	}
	name, pw, next := c.PostForm("name"), c.PostForm("password"), safeNext(c.PostForm("next"))
	data := loginData{pageData: pageData{Title: "Log in"}, Next: next}
	if len(name) > maxLoginName || len(pw) > maxLoginPassword {
		// No such user or password can exist: answer at once, keep nothing.
		data.Error = "Wrong user name or password."
		u.render(c, http.StatusUnauthorized, "login", data)
		return
	}
	data.Name = name
	addr, now := c.ClientIP(), time.Now()
	who := service.Caller{Name: name, Remote: addr}
	if ok, why, retry := u.guard.Allow(addr, name, now); !ok {
		u.s.auditUnauthenticated(c, who, "login-refused", why)
		c.Header("Retry-After", strconv.Itoa(int(retry.Seconds()+1)))
		data.Error = fmt.Sprintf("Refused: %s. Try again in %v.", why, retry.Round(time.Second))
		u.render(c, http.StatusTooManyRequests, "login", data)
		return
	}
	var usr *service.User
	var err error
	u.guard.Check(func() { usr, err = u.s.opts.Users.Login(c.Request.Context(), name, pw) })
	if err != nil {
		u.guard.Failed(addr, name, now)
		u.s.auditUnauthenticated(c, who, "login-failed", "")
		data.Error = "Wrong user name or password."
		if !errors.Is(err, service.ErrBadLogin) {
			u.s.log.Error("login", "err", err)
			data.Error = "Login failed (logged)."
		}
		u.render(c, http.StatusUnauthorized, "login", data)
		return
	}
	u.guard.Succeeded(addr, name)
	if err := u.s.opts.Archive.Audit(c.Request.Context(), usr.Caller(addr), "login", ""); err != nil {
		data.Error = "Login failed: the audit trail cannot be written (logged)."
		u.render(c, http.StatusInternalServerError, "login", data)
		return
	}
	secret, err := u.s.opts.Users.NewSession(c.Request.Context(), usr.Name, sessionTTL)
	if err != nil {
		u.s.log.Error("new session", "err", err)
		data.Error = "Login failed (logged)."
		u.render(c, http.StatusInternalServerError, "login", data)
		return
	}
	c.SetSameSite(http.SameSiteStrictMode)
	c.SetCookie(sessionCookie, secret, int(sessionTTL.Seconds()), "/", "", c.Request.TLS != nil, true)
	c.Redirect(http.StatusSeeOther, next)
}

func (u *ui) logout(c *gin.Context) {
	if v, err := c.Cookie(sessionCookie); err == nil && v != "" {
		if usr, err := u.s.opts.Users.SessionUser(c.Request.Context(), v); err == nil {
			u.s.opts.Archive.Audit(c.Request.Context(), usr.Caller(c.ClientIP()), "logout", "")
		}
		if err := u.s.opts.Users.EndSession(c.Request.Context(), v); err != nil {
			u.s.log.Error("end session", "err", err)
		}
	}
	c.SetSameSite(http.SameSiteStrictMode)
	c.SetCookie(sessionCookie, "", -1, "/", "", c.Request.TLS != nil, true)
	c.Redirect(http.StatusSeeOther, "/login")
}

type searchPage struct {
	pageData
	searchState
	Accounts    []string
	Sorts       []sortChoice
	Syntaxes    []syntaxChoice
	SyntaxName  string // the syntax the page used, in words
	Searched    bool
	Total       uint64
	Took        string
	Hits        []apiHit
	Prev, Next  string
	Narrowed    []facetLink // the account / mailbox narrowing in force; Href removes it
	Places      []facetLink // account / mailbox facet
	Attachments *facetLink
	Senders     []facetLink
	AllPlaces   string // removes the account / mailbox narrowing
	Timeline    *timeline
	CanExport   bool   // the user may export these results
	OtherSyntax string // after an error: the same search in the other syntax
	Permalink   string // this page's own address, to share
}

// searchState is the question a search page answers: the query and every
// narrowing of it. It lives in the URL and nowhere else (no cookie, no
// session): a link to a page, shared or bookmarked, opens the same
// search in any browser, and every link on the page (facets, timeline
// bars, pages, sorts) is made from it by href, so that no narrowing is
// lost on the way. The form carries the parts it does not show as fields
// (the mailbox) as hidden inputs, so that refining the query keeps them;
// each is also shown as a chip with a link that removes it.
//
// Facets that narrow by content (a sender, attachments, a month of the
// timeline) add their terms to the query itself, where the user sees and
// can edit them; the human syntax's OR binds tighter than the implicit
// AND, so an appended term narrows the whole query.
type searchState struct {
	Query   string
	Syntax  string // "human" or "imap"; what the URL says, else "human"
	Account string
	Mailbox string
	Sort    string // as in the URL ("" is the default order)
	Offset  int
}

// searchStateOf reads the state from a page's query parameters.
func searchStateOf(v url.Values) searchState {
	s := searchState{Query: v.Get("q"), Syntax: v.Get("syntax"), Account: v.Get("account"), Mailbox: v.Get("mailbox"), Sort: v.Get("sort")}
	if s.Syntax != string(service.SyntaxIMAP) {
		s.Syntax = string(service.SyntaxHuman)
	}
	if n, err := strconv.Atoi(v.Get("offset")); err == nil && n > 0 {
		s.Offset = n
	}
	return s
}

// href is the address of the page showing s; searchStateOf(href) is s.
func (s searchState) href() string {
	v := url.Values{"q": {s.Query}, "syntax": {s.Syntax}}
	for k, x := range map[string]string{"account": s.Account, "mailbox": s.Mailbox, "sort": s.Sort} {
		if x != "" {
			v.Set(k, x)
		}
	}
	if s.Offset > 0 {
		v.Set("offset", strconv.Itoa(s.Offset))
	}
	return "/?" + v.Encode()
}

// refine is s with terms added to the query, from the first page.
func (s searchState) refine(terms string) searchState {
	s.Query, s.Offset = strings.TrimSpace(s.Query)+" "+terms, 0
	return s
}

// sortChoice is one option of the sort selector.
type sortChoice struct {
	Value, Label string
	Selected     bool
}

// pageSorts are the orders the page offers; the first is the default.
// In the IMAP syntax, "date" orders the occurrences newest first and
// "relevance" keeps the answer's own order (mailbox, then UID: IMAP
// criteria have no scores).
// The service knows these (indexer.Sorts; date is newest).
var pageSorts = []sortChoice{{Value: "date", Label: "newest first"}, {Value: "oldest", Label: "oldest first"},
	{Value: "largest", Label: "largest first"}, {Value: "smallest", Label: "smallest first"},
	{Value: "sender", Label: "sender"}, {Value: "relevance", Label: "relevance"}}

// syntaxChoice is one option of the syntax switch.
type syntaxChoice struct {
	Value, Label string
	Checked      bool
}

var syntaxNames = map[string]string{string(service.SyntaxHuman): "mailvault syntax", string(service.SyntaxIMAP): "IMAP SEARCH syntax"}

// facetLink narrows the search.
type facetLink struct {
	Label  string
	Count  int
	Href   string
	Active bool
}

// timeline is the SVG bar chart of matches per month.
type timeline struct {
	Width, Height int
	Bars          []timelineBar
	First, Last   string
}

type timelineBar struct {
	X, Y, W, H int
	Label      string
	Count      int
	Href       string
}

const pageSize = 50

func (u *ui) search(c *gin.Context) {
	usr, who := user(c), caller(c)
	st := searchStateOf(c.Request.URL.Query())
	p := searchPage{pageData: pageData{Title: "Search", User: usr}, searchState: st, CanExport: who.CanExport(),
		SyntaxName: syntaxNames[st.Syntax], Permalink: st.href()}
	// The syntax was once remembered in a cookie, which made a shared link
	// or a plain query fail in a browser that had once used IMAP mode: the
	// URL alone says it now, and an old cookie is cleared.
	if _, err := c.Cookie("mv_syntax"); err == nil {
		c.SetSameSite(http.SameSiteStrictMode)
		c.SetCookie("mv_syntax", "", -1, "/", "", c.Request.TLS != nil, true)
	}
	for _, v := range []string{string(service.SyntaxHuman), string(service.SyntaxIMAP)} {
		p.Syntaxes = append(p.Syntaxes, syntaxChoice{Value: v, Label: syntaxNames[v], Checked: v == st.Syntax})
	}
	// The page's order is the selector's: a URL without sort= is its
	// first choice, in either syntax, so that the page never shows one
	// order and answers in another.
	order := cmp.Or(st.Sort, pageSorts[0].Value)
	known := false
	for _, o := range pageSorts {
		o.Selected = o.Value == order
		known = known || o.Selected
		p.Sorts = append(p.Sorts, o)
	}
	if st.Sort != "" && !known {
		// An order this page does not list (from the API's vocabulary) is
		// kept, not silently replaced by the default.
		p.Sorts = append(p.Sorts, sortChoice{Value: st.Sort, Label: st.Sort, Selected: true})
	}
	if accts, err := u.s.opts.Archive.Accounts(c.Request.Context(), who); err == nil {
		p.Accounts = accts
	}
	if st.Account != "" && !slices.Contains(p.Accounts, st.Account) {
		// Kept in the selector, so that refining does not drop it; the
		// search itself says whether the user may see it.
		p.Accounts = append(p.Accounts, st.Account)
	}
	if st.Account != "" {
		p.Narrowed = append(p.Narrowed, facetLink{Label: "account " + st.Account, Href: searchState{Query: st.Query, Syntax: st.Syntax,
			Mailbox: st.Mailbox, Sort: st.Sort}.href()})
	}
	if st.Mailbox != "" {
		p.Narrowed = append(p.Narrowed, facetLink{Label: "mailbox " + st.Mailbox, Href: searchState{Query: st.Query, Syntax: st.Syntax,
			Account: st.Account, Sort: st.Sort}.href()})
	}
	if strings.TrimSpace(st.Query) == "" {
		u.render(c, http.StatusOK, "search", p)
		return
	}
	req := service.SearchRequest{Query: st.Query, Syntax: service.Syntax(st.Syntax), Limit: pageSize, Offset: st.Offset,
		Sort: order, Facets: true}
	if st.Account != "" {
		req.Accounts = []string{st.Account}
	}
	if st.Mailbox != "" {
		req.Mailboxes = []string{st.Mailbox}
	}
	begin := time.Now()
	res, err := u.s.opts.Archive.Search(c.Request.Context(), who, req)
	if err != nil {
		status, msg := u.s.serviceStatus(c, err)
		p.Error = msg
		if errors.Is(err, service.ErrBadRequest) {
			// Say which syntax read the query, and offer the other one:
			// "unknown search key" means little to someone who did not
			// know IMAP mode was on.
			other := searchState{Query: st.Query, Syntax: string(service.SyntaxIMAP), Account: st.Account, Mailbox: st.Mailbox, Sort: st.Sort}
			if st.Syntax == string(service.SyntaxIMAP) {
				other.Syntax = string(service.SyntaxHuman)
			}
			p.Error = "The query was read in " + syntaxNames[st.Syntax] + ": " + msg
			p.OtherSyntax = other.href()
		}
		u.render(c, status, "search", p)
		return
	}
	hits, total, facets := wrapHits(res.Hits), res.Total, res.Facets
	n, _ := service.Parse(req.Syntax, st.Query) // parsed already by Search
	var terms []string
	snippetTerms(n, false, &terms)
	u.snippets(c.Request.Context(), who, hits, terms)
	p.Searched, p.Hits, p.Total = true, hits, total
	p.Took = time.Since(begin).Round(time.Millisecond).String()
	first := st
	first.Offset = 0
	if st.Account != "" || st.Mailbox != "" {
		all := first
		all.Account, all.Mailbox = "", ""
		p.AllPlaces = all.href()
	}
	if facets != nil {
		for _, pl := range facets.Places {
			at := first
			at.Account, at.Mailbox = pl.Account, pl.Mailbox
			p.Places = append(p.Places, facetLink{Label: pl.Account + " / " + pl.Mailbox, Count: pl.Count,
				Href: at.href(), Active: pl.Account == st.Account && pl.Mailbox == st.Mailbox})
		}
		for _, sd := range facets.Senders {
			p.Senders = append(p.Senders, facetLink{Label: sd.Address, Count: sd.Count, Href: first.refine("from:" + sd.Address).href()})
		}
		if facets.WithAttachments > 0 && !strings.Contains(st.Query, "has:attachment") {
			p.Attachments = &facetLink{Label: "with attachments", Count: facets.WithAttachments, Href: first.refine("has:attachment").href()}
		}
		p.Timeline = makeTimeline(facets.Months, func(month string) string { return first.refine(monthRange(month)).href() })
	}
	if st.Offset > 0 {
		prev := st
		prev.Offset = max(0, st.Offset-pageSize)
		p.Prev = prev.href()
	}
	if uint64(st.Offset+len(hits)) < total {
		next := st
		next.Offset = st.Offset + len(hits)
		p.Next = next.href()
	}
	u.render(c, http.StatusOK, "search", p)
}

type messagePage struct {
	pageData
	Thread      []service.ThreadEntry // the messages this one replies to, oldest first
	Replies     []service.Hit         // the messages that reply to this one (that the user may see)
	Msg         *service.Hit
	Headers     []mime.Header
	Text        string
	Attachments []attachmentView
	// AttachmentsPending: the attachments' text is still to be extracted.
	AttachmentsPending bool
	HasHTML            bool
	Remote             bool
	Provenance         *provenanceView // journal.go; nil when it could not be read
	// FlagHistory is the flag history of each occurrence the user may
	// see; nil when it could not be read (logged; the page still renders).
	FlagHistory []indexer.FlagHistory
	// Gmail is what Gmail said of the message per account (its labels).
	Gmail []service.GmailLabels
}

// thread finds the messages m refers to (References, In-Reply-To) that the
// user may see.
func (u *ui) thread(c *gin.Context, m *mime.Message) []service.ThreadEntry {
	refs := slices.Clone(m.References)
	for _, r := range m.InReplyTo {
		if !slices.Contains(refs, r) {
			refs = append(refs, r)
		}
	}
	out, err := u.s.opts.Archive.Thread(c.Request.Context(), caller(c), refs)
	if err != nil {
		u.s.log.Error("thread", "err", err)
	}
	return out
}

// replies lists the messages replying to Message-ID id that the user may see.
func (u *ui) replies(c *gin.Context, id string) []service.Hit {
	out, err := u.s.opts.Archive.Replies(c.Request.Context(), caller(c), id, 50)
	if err != nil {
		u.s.log.Error("replies", "err", err)
	}
	return out
}

// uiRaw returns the message :id the user may see and its bytes, audited
// as action, or answers the error page itself and returns nil.
func (u *ui) uiRaw(c *gin.Context, action string) (*service.Hit, []byte) {
	h, raw, err := u.s.opts.Archive.Raw(c.Request.Context(), caller(c), c.Param("id"), action)
	if err != nil {
		status, msg := u.s.serviceStatus(c, err)
		switch status {
		case http.StatusNotFound:
			u.errorPage(c, status, "No such message", "There is no message "+clip(c.Param("id"), 64)+" that you may see.")
		case http.StatusInternalServerError:
			u.errorPage(c, status, "Cannot read the message", "The message could not be served (logged; `mailvault verify` checks the store).")
		default:
			u.errorPage(c, status, "Cannot read the message", msg)
		}
		return nil, nil
	}
	return h, raw
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func (u *ui) message(c *gin.Context) {
	h, raw := u.uiRaw(c, "read")
	if h == nil {
		return
	}
	m := mime.Parse(raw, nil)
	_, hasHTML := mime.HTMLBody(raw)
	p := messagePage{pageData: pageData{Title: h.Subject, User: user(c)}, Msg: h, Text: m.Text,
		HasHTML: hasHTML, Remote: c.Query("remote") == "1", Thread: u.thread(c, m), Replies: u.replies(c, m.MessageID)}
	p.Attachments, p.AttachmentsPending = u.attachments(c, h, m)
	p.Provenance = u.provenance(c, h)
	if fh, err := u.s.opts.Archive.FlagHistory(c.Request.Context(), caller(c), h.SHA256); err != nil {
		u.s.log.Warn("flag history", "sha256", h.SHA256, "err", err)
	} else {
		p.FlagHistory = fh
	}
	if g, err := u.s.opts.Archive.Gmail(c.Request.Context(), caller(c), h.SHA256); err != nil {
		u.s.log.Warn("gmail labels", "sha256", h.SHA256, "err", err)
	} else {
		p.Gmail = g
	}
	for _, hd := range m.Headers {
		switch strings.ToLower(hd.Key) {
		case "from", "to", "cc", "bcc", "date", "subject", "reply-to", "message-id", "in-reply-to", "references":
			p.Headers = append(p.Headers, hd)
		}
	}
	u.render(c, http.StatusOK, "message", p)
}

// attachmentView is an attachment on the message page with what
// extraction made of it (Extract nil: not looked at, e.g. an image, or a
// text attachment whose text is the parse's own).
type attachmentView struct {
	mime.Attachment
	Extract *indexer.AttachmentText
}

// attachments pairs m's attachments with their extracted text. A failure to
// read the text is logged and shown as such; the page still renders.
func (u *ui) attachments(c *gin.Context, h *service.Hit, m *mime.Message) ([]attachmentView, bool) {
	out := make([]attachmentView, len(m.Attachments))
	for i, a := range m.Attachments {
		out[i].Attachment = a
	}
	if !m.HasAttachments() {
		return out, false
	}
	at, err := u.s.opts.Archive.AttachmentTexts(c.Request.Context(), caller(c), h.SHA256)
	if err != nil {
		u.s.log.Warn("attachment text", "sha256", h.SHA256, "err", err)
		return out, false
	}
	for i := range at.Attachments {
		x := &at.Attachments[i]
		if x.Part >= 0 && x.Part < len(out) && out[x.Part].Filename == x.Name {
			out[x.Part].Extract = x
		}
	}
	return out, at.Pending
}

func (u *ui) raw(c *gin.Context) {
	h, raw := u.uiRaw(c, "download")
	if h == nil {
		return
	}
	serveRaw(c, h, raw)
}

// attachment serves attachment :n of a message as a download: always
// application/octet-stream with Content-Disposition attachment, so that no
// attachment is ever rendered by the browser in mailvault's origin.
func (u *ui) attachment(c *gin.Context) {
	h, raw := u.uiRaw(c, "download")
	if h == nil {
		return
	}
	n, err := strconv.Atoi(c.Param("n"))
	a, data, ok := mime.AttachmentData(raw, n)
	if err != nil || !ok {
		u.errorPage(c, http.StatusNotFound, "No such attachment", "This message has no attachment "+c.Param("n")+".")
		return
	}
	name := a.Filename
	if name == "" {
		name = fmt.Sprintf("attachment-%d", n)
	}
	c.Header("Content-Disposition", "attachment; filename*=UTF-8''"+url.PathEscape(name))
	c.Header("X-Content-Type-Options", "nosniff")
	c.Header("Content-Security-Policy", "default-src 'none'; sandbox")
	c.Header("Cache-Control", "no-store")
	c.Data(http.StatusOK, "application/octet-stream", data)
}

// html serves a message's HTML body, sanitized, for the sandboxed iframe.
// Its policy forbids scripts, forms, frames and (unless ?remote=1) any
// request to another host.
func (u *ui) html(c *gin.Context) {
	h, raw := u.uiRaw(c, "read")
	if h == nil {
		return
	}
	body, _ := mime.HTMLBody(raw)
	img := "img-src data:"
	if c.Query("remote") == "1" {
		img = "img-src data: https: http:"
	}
	c.Header("Content-Security-Policy", "default-src 'none'; "+img+"; style-src 'unsafe-inline'; sandbox")
	c.Header("Cache-Control", "no-store")
	c.Header("X-Content-Type-Options", "nosniff")
	c.Header("Referrer-Policy", "no-referrer")
	c.Data(http.StatusOK, "text/html; charset=utf-8", []byte(u.policy.Sanitize(body)))
}

type statusRow struct {
	service.MailboxStatus
	Server, ProgressText string
	Progress             int // percent fetched while catching up
}

type statusPage struct {
	Attachments string // the attachment text line (service.AttachmentStatus.Summary); "" without any
	pageData
	Problems []string
	Lines    []statusRow
	Jobs     []service.JobInfo
	Ledger   *service.LedgerStatus // from Status, for those who check the archive
	// Coverage is the journal coverage (journal.go), nil without journal
	// mail; CoverageNote says why it is missing when it should be there.
	Coverage     *catalog.Coverage
	CoverageNote string
	// Completeness is the last gap check of each mailbox (service/gaps.go).
	Completeness *service.Completeness
}

func (u *ui) status(c *gin.Context) {
	p := statusPage{pageData: pageData{Title: "Status", User: user(c)}}
	st, err := u.s.opts.Archive.Status(c.Request.Context(), caller(c))
	if err != nil {
		u.s.log.Error("status", "err", err)
		u.errorPage(c, http.StatusInternalServerError, "Status failed", "The status could not be read (logged).")
		return
	}
	p.Jobs = st.Jobs
	p.Attachments = st.Attachments.Summary()
	for _, l := range st.Mailboxes {
		r := statusRow{MailboxStatus: l, Server: "–"}
		if l.ServerMessages != nil {
			r.Server = strconv.Itoa(int(*l.ServerMessages))
		}
		if l.ToFetch > 0 {
			r.Progress = 100 * l.Fetched / l.ToFetch
			r.ProgressText = l.ProgressText()
		}
		if l.Error != "" {
			p.Problems = append(p.Problems, l.Account+": "+l.Error)
		}
		// A harvested mailbox that has not been synced for an hour is
		// stalled: polls run every minute or so, IDLE re-syncs on change.
		if t, err := time.Parse(time.RFC3339, l.LastSync); err == nil && time.Since(t) > stallAfter &&
			l.State != service.StateNotRunning && l.State != service.StateArchived && l.State != service.State(harvest.StateError) {
			p.Problems = append(p.Problems, fmt.Sprintf("%s/%s: no sync for %v (state %s)", l.Account, l.Mailbox,
				time.Since(t).Round(time.Minute), l.State))
		}
		if l.ParseErrors > 0 {
			p.Problems = append(p.Problems, fmt.Sprintf("%s/%s: %d messages could not be fully parsed (archived byte-exact all the same)", l.Account, l.Mailbox, l.ParseErrors))
		}
		p.Lines = append(p.Lines, r)
	}
	for _, j := range st.Jobs {
		if j.State == service.JobFailed {
			p.Problems = append(p.Problems, fmt.Sprintf("job %s (%s) failed: %s", j.ID, j.Kind, j.Error))
		}
	}
	if st.Ledger != nil && !st.Ledger.Signs {
		p.Problems = append(p.Problems, "ledger: no signing key, so no checkpoint proves the ledger was not rewritten (mailvault key init; ledger.key_file)")
	}
	p.Ledger = st.Ledger
	if cp := st.Completeness; cp != nil && len(cp.Mailboxes) > 0 {
		p.Completeness = cp
		for _, m := range cp.Mailboxes {
			if left := m.Missing - m.Fetched; left > 0 {
				p.Problems = append(p.Problems, fmt.Sprintf("%s/%s: %d messages on the server are not in the archive (UIDs %s; gap check of %s)",
					m.Account, m.Mailbox, left, m.MissingUIDs, m.At.Format(time.RFC3339)))
			}
		}
	}
	p.Coverage, p.CoverageNote = u.coverage(c)
	sort.Strings(p.Problems)
	p.Problems = compactStrings(p.Problems)
	u.render(c, http.StatusOK, "status", p)
}

// stallAfter is how long without a sync makes a harvested mailbox stalled.
const stallAfter = time.Hour

func compactStrings(s []string) []string {
	var out []string
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	return out
}

// monthRange is the human-syntax date range of a month ("2024-03").
func monthRange(month string) string {
	t, err := time.Parse("2006-01", month)
	if err != nil {
		return ""
	}
	return "after:" + t.Format("2006-01-02") + " before:" + t.AddDate(0, 1, 0).Format("2006-01-02")
}

// makeTimeline lays out one bar per month from the first month with
// matches to the last (empty months included), scaled to the busiest.
func makeTimeline(months []indexer.MonthCount, href func(string) string) *timeline {
	if len(months) == 0 {
		return nil
	}
	first, _ := time.Parse("2006-01", months[0].Month)
	last, _ := time.Parse("2006-01", months[len(months)-1].Month)
	counts := map[string]int{}
	peak := 0
	for _, m := range months {
		counts[m.Month] = m.Count
		peak = max(peak, m.Count)
	}
	var keys []string
	for t := first; !t.After(last) && len(keys) < 600; t = t.AddDate(0, 1, 0) {
		keys = append(keys, t.Format("2006-01"))
	}
	const height = 60
	w := max(2, min(24, 720/len(keys)))
	tl := &timeline{Width: w * len(keys), Height: height + 2, First: keys[0], Last: keys[len(keys)-1]}
	for i, k := range keys {
		n := counts[k]
		h := 0
		if n > 0 {
			h = max(1, n*height/peak)
		}
		tl.Bars = append(tl.Bars, timelineBar{X: i * w, Y: height - h + 1, W: max(1, w-1), H: h, Label: k, Count: n, Href: href(k)})
	}
	return tl
}

// snippets fills in the hits' snippets, a few messages at a time.
func (u *ui) snippets(ctx context.Context, who service.Caller, hits []apiHit, terms []string) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for i := range hits {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if raw, err := u.s.opts.Archive.Peek(ctx, who, hits[i].SHA256); err == nil {
				hits[i].Snippet = snippetOf(raw, terms)
			}
		}()
	}
	wg.Wait()
}

// staticFiles serves the embedded stylesheet and images; a directory (or
// anything missing) is a 404, never a listing.
func staticFiles() gin.HandlerFunc {
	fsys := templates.Static()
	return func(c *gin.Context) {
		name := strings.TrimPrefix(c.Param("file"), "/")
		st, err := fs.Stat(fsys, name)
		if name == "" || err != nil || st.IsDir() {
			c.AbortWithStatusJSON(http.StatusNotFound, apiError{Error: "no such page or endpoint"})
			return
		}
		c.Header("X-Content-Type-Options", "nosniff")
		c.FileFromFS(name, http.FS(fsys))
	}
}

// startExport is POST /export from the search page: the results of that
// search exported as a job, into the archive's exports directory.
func (u *ui) startExport(c *gin.Context) {
	req := service.ExportRequest{Format: export.Format(c.PostForm("format")), Dedup: export.Dedup(c.PostForm("dedup")),
		Search: &service.SearchRequest{Query: c.PostForm("q"), Syntax: service.Syntax(c.PostForm("syntax"))}}
	if a := c.PostForm("account"); a != "" {
		req.Search.Accounts = []string{a}
	}
	if m := c.PostForm("mailbox"); m != "" {
		req.Search.Mailboxes = []string{m}
	}
	if _, err := u.s.opts.Archive.StartExport(caller(c), req); err != nil {
		status, msg := u.s.serviceStatus(c, err)
		u.errorPage(c, status, "Export refused", msg)
		return
	}
	c.Redirect(http.StatusSeeOther, "/status")
}

// downloadExport is GET /exports/ID.zip: a finished export job's directory
// as one zip, made as it is sent.
func (u *ui) downloadExport(c *gin.Context) {
	who := caller(c)
	id, ok := strings.CutSuffix(c.Param("file"), ".zip")
	j, err := u.s.opts.Archive.Job(who, id)
	var res service.ExportResult
	if !ok || err != nil || !who.CanExport() || j.Kind != service.JobExport || j.State != service.JobDone || json.Unmarshal(j.Result, &res) != nil || res.Dir == "" {
		u.errorPage(c, http.StatusNotFound, "No such export", "There is no finished export "+clip(c.Param("file"), 40)+" that you may download.")
		return
	}
	if err := u.s.opts.Archive.Audit(c.Request.Context(), who, "download", "export "+id+" "+res.Dir); err != nil {
		u.errorPage(c, http.StatusInternalServerError, "Export not served", "The audit trail cannot be written (logged).")
		return
	}
	c.Header("Content-Type", "application/zip")
	c.Header("Content-Disposition", `attachment; filename="export-`+id+`.zip"`)
	c.Header("Cache-Control", "no-store")
	c.Header("X-Content-Type-Options", "nosniff")
	if st, err := os.Stat(res.Dir); err == nil && !st.IsDir() {
		c.File(res.Dir) // an export written as a zip already
		return
	}
	zw := zip.NewWriter(c.Writer)
	err = filepath.WalkDir(res.Dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(res.Dir, path)
		if err != nil {
			return err
		}
		w, err := zw.Create(filepath.ToSlash(rel))
		if err != nil {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(w, f)
		return err
	})
	if err == nil {
		err = zw.Close()
	}
	if err != nil {
		// The status is sent already: the zip is cut short, and unzip says so.
		u.s.log.Error("export download", "job", id, "err", err)
	}
}
