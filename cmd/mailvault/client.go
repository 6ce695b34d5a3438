package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"mailvault/service"
)

// The CLI and a running serve: while serve holds the archive, the other
// commands ask it over the local socket (<data>/mailvault.sock, reachable
// only by who can read the data directory) instead of opening the archive
// themselves. The socket serves the same JSON API as the web listener, as
// the operator (web.Server.LocalHandler): one API, one wire format.

// localSocket is the socket's name in the data directory.
const localSocket = "mailvault.sock"

// errNoDaemon means no serve answers on the data directory's socket.
var errNoDaemon = errors.New("no running serve")

// daemon is a client of the serve running on a data directory.
type daemon struct {
	http *http.Client
}

// dialDaemon returns a client of the serve running on dir, or errNoDaemon.
func dialDaemon(ctx context.Context, dir string) (*daemon, error) {
	path := filepath.Join(dir, localSocket)
	if _, err := os.Stat(path); err != nil {
		return nil, errNoDaemon
	}
	d := &daemon{http: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		},
	}}}
	// A socket file left by a serve that died answers nothing.
	hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(hctx, "GET", "http://mailvault/healthz", nil)
	resp, err := d.http.Do(req)
	if err != nil {
		return nil, errNoDaemon
	}
	resp.Body.Close()
	return d, nil
}

// do sends a request to the daemon's API and decodes its JSON answer into
// out. An error answer becomes an error of the service's kinds, so that
// callers classify it as they would a local one.
func (d *daemon) do(ctx context.Context, method, path string, params url.Values, body, out any) error {
	u := "http://mailvault" + path
	if len(params) > 0 {
		u += "?" + params.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := d.http.Do(req)
	if err != nil {
		return fmt.Errorf("ask the running serve: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var e struct {
			Error string `json:"error"`
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = string(bytes.TrimSpace(b))
		}
		return &remoteError{status: resp.StatusCode, msg: e.Error}
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("running serve: bad answer: %w", err)
	}
	return nil
}

// remoteError is an error answer of the daemon.
type remoteError struct {
	status int
	msg    string
}

func (e *remoteError) Error() string { return e.msg }

// Unwrap gives the service error kind of the answer's status.
func (e *remoteError) Unwrap() error {
	switch e.status {
	case http.StatusNotFound:
		return service.ErrNotFound
	case http.StatusUnprocessableEntity, http.StatusBadRequest:
		return service.ErrBadRequest
	case http.StatusForbidden:
		return service.ErrForbidden
	case http.StatusConflict:
		return service.ErrBusy
	}
	return nil
}

// search is GET /api/search.
func (d *daemon) search(ctx context.Context, r service.SearchRequest) (*service.SearchResult, error) {
	v := url.Values{"q": {r.Query}, "syntax": {string(r.Syntax)}, "limit": {strconv.Itoa(r.Limit)},
		"offset": {strconv.Itoa(r.Offset)}, "account": r.Accounts, "mailbox": r.Mailboxes}
	if r.ByRelevance {
		v.Set("sort", "relevance")
	} else if r.Sort != "" {
		v.Set("sort", r.Sort)
	}
	if r.IncludeExpunged {
		v.Set("include_expunged", "1")
	}
	if len(r.After) > 0 {
		v["after"] = r.After
	}
	var res service.SearchResult
	if err := d.do(ctx, "GET", "/api/search", v, nil, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

func (d *daemon) status(ctx context.Context) (*service.Status, error) {
	var st service.Status
	if err := d.do(ctx, "GET", "/api/status", nil, nil, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

func (d *daemon) jobs(ctx context.Context) ([]service.JobInfo, error) {
	var out struct {
		Jobs []service.JobInfo `json:"jobs"`
	}
	err := d.do(ctx, "GET", "/api/jobs", nil, nil, &out)
	return out.Jobs, err
}

func (d *daemon) job(ctx context.Context, id string) (service.JobInfo, error) {
	var j service.JobInfo
	err := d.do(ctx, "GET", "/api/jobs/"+url.PathEscape(id), nil, nil, &j)
	return j, err
}

// jobStart is the body of POST /api/jobs (web's jobRequest).
type jobStart struct {
	Kind   service.JobKind              `json:"kind"`
	Import *service.ImportRequest       `json:"import,omitempty"`
	Export *service.ExportRequest       `json:"export,omitempty"`
	Ledger *service.LedgerVerifyRequest `json:"ledger,omitempty"`
}

func (d *daemon) startJob(ctx context.Context, req jobStart) (service.JobInfo, error) {
	var j service.JobInfo
	err := d.do(ctx, "POST", "/api/jobs", nil, req, &j)
	return j, err
}

func (d *daemon) cancelJob(ctx context.Context, id string) error {
	return d.do(ctx, "DELETE", "/api/jobs/"+url.PathEscape(id), nil, nil, nil)
}

// follow waits for job id to end, drawing its progress on prog, and
// returns its final state. When ctx is done (Ctrl-C) it cancels the job,
// waits for it to stop and returns that state with ctx's error.
func (d *daemon) follow(ctx context.Context, id string, prog *progress) (service.JobInfo, error) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		j, err := d.job(context.WithoutCancel(ctx), id)
		if err != nil {
			return j, err
		}
		if j.State != service.JobQueued && j.State != service.JobRunning {
			prog.done()
			return j, nil
		}
		if j.State == service.JobRunning {
			prog.update(j.Done, j.Total)
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			prog.done()
			wctx := context.WithoutCancel(ctx)
			if err := d.cancelJob(wctx, id); err != nil {
				return j, err
			}
			for j.State == service.JobQueued || j.State == service.JobRunning {
				time.Sleep(100 * time.Millisecond)
				if j, err = d.job(wctx, id); err != nil {
					return j, err
				}
			}
			return j, ctx.Err()
		}
	}
}
