package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"mailvault/indexer"
	"mailvault/query"
)

// The local API: while `serve` holds the archive (and so its index), other
// mailvault commands on the same machine ask it instead of opening the
// archive themselves. It listens on a Unix socket in the data directory, so
// only users who can read the archive's directory can reach it; the web UI
// and its authenticated JSON API come separately.
const localSocket = "mailvault.sock"

// searchRequest is what `search` sends to a running serve.
type searchRequest struct {
	Query       string   `json:"query"`
	Accounts    []string `json:"accounts"`
	Mailboxes   []string `json:"mailboxes"`
	Limit       int      `json:"limit"`
	Offset      int      `json:"offset"`
	ByRelevance bool     `json:"by_relevance"`
}

// serveLocalAPI answers local requests until ctx is done.
func serveLocalAPI(ctx context.Context, dir string, a *indexer.Archive, metrics http.Handler, log *slog.Logger) error {
	path := filepath.Join(dir, localSocket)
	os.Remove(path) // a stale socket of a crashed serve; the data dir lock is ours
	ln, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("local API: %w", err)
	}
	os.Chmod(path, 0o660)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics)
	mux.HandleFunc("POST /search", func(w http.ResponseWriter, r *http.Request) {
		var req searchRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
			http.Error(w, "bad request: "+err.Error(), http.StatusBadRequest)
			return
		}
		q, err := query.ParseHuman(req.Query)
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnprocessableEntity)
			return
		}
		res, err := a.Search(r.Context(), q, &indexer.SearchOptions{Accounts: req.Accounts, Mailboxes: req.Mailboxes,
			Limit: req.Limit, Offset: req.Offset, ByRelevance: req.ByRelevance})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(res)
	})
	mux.HandleFunc("POST /search-imap", func(w http.ResponseWriter, r *http.Request) {
		var req imapSearchRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
			http.Error(w, "bad request: "+err.Error(), http.StatusBadRequest)
			return
		}
		q, err := query.ParseIMAP(req.Criteria)
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnprocessableEntity)
			return
		}
		res, err := searchIMAPAll(r.Context(), a, q, req)
		if err != nil {
			var ee *exitError
			if errors.As(err, &ee) && ee.code == 2 {
				http.Error(w, err.Error(), http.StatusUnprocessableEntity)
				return
			}
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(res)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	err = srv.Serve(ln)
	os.Remove(path)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// errNoDaemon means no serve answers on the data directory's socket.
var errNoDaemon = errors.New("no running serve")

// searchViaDaemon asks a running serve to search. It returns errNoDaemon when
// there is none, and the caller opens the archive itself.
func searchViaDaemon(ctx context.Context, dir string, req searchRequest) (*indexer.SearchResult, error) {
	var res indexer.SearchResult
	if err := askDaemon(ctx, dir, "/search", req, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// askDaemon posts req as JSON to endpoint of the serve running on dir and
// decodes its answer into out. It returns errNoDaemon when none answers; a
// 422 answer (a bad query) is an exitError with code 2.
func askDaemon(ctx context.Context, dir, endpoint string, req, out any) error {
	path := filepath.Join(dir, localSocket)
	if _, err := os.Stat(path); err != nil {
		return errNoDaemon
	}
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		},
	}}
	body, _ := json.Marshal(req)
	hreq, err := http.NewRequestWithContext(ctx, "POST", "http://mailvault"+endpoint, bytesReader(body))
	if err != nil {
		return err
	}
	resp, err := client.Do(hreq)
	if err != nil {
		var ne *net.OpError
		if errors.As(err, &ne) {
			return errNoDaemon // stale socket: serve is gone
		}
		return fmt.Errorf("ask the running serve: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		err := errors.New(string(trimNewline(msg)))
		if resp.StatusCode == http.StatusUnprocessableEntity {
			return &exitError{code: 2, err: err}
		}
		return fmt.Errorf("running serve: %w", err)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("running serve: bad answer: %w", err)
	}
	return nil
}

func trimNewline(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
