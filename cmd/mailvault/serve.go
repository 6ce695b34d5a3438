package main

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"

	"mailvault/harvest"
	"mailvault/indexer"
	"mailvault/web"
)

// harvestStatusFile is where a running serve publishes its harvesters'
// state every second, for `mailvault status` in another process (which reads
// the catalog itself, so status works whether serve runs or not).
const harvestStatusFile = "harvest-status.json"

func runServe(ctx context.Context, e *env, args []string) error {
	var data, cfgPath, logFormat string
	fs := newFlags(e, "serve", &data)
	fs.StringVar(&cfgPath, "config", "", "configuration `FILE` (YAML; see mailvault.example.yaml)")
	fs.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if cfgPath == "" {
		fmt.Fprintln(e.stderr, "mailvault serve: --config is required. To make one:\n\n  cp mailvault.example.yaml mailvault.yaml   # then set host, username, password_file\n  mailvault serve --config mailvault.yaml\n\nThe example file documents every field.")
		return errUsage
	}
	cfg, accounts, err := loadConfig(cfgPath)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	dataSet := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "data" {
			dataSet = true
		}
	})
	if !dataSet {
		data = cfg.DataDir
	}
	var handler slog.Handler = slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelInfo})
	if logFormat == "json" {
		handler = slog.NewJSONHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelInfo})
	}
	log := slog.New(handler)
	return serveArchive(ctx, data, cfg, accounts, log, nil)
}

// serveArchive runs what serve runs: the harvesters of accounts, the local
// API and the web server, over the archive in data, until ctx is done.
// onWeb, when not nil, is called with the web server's address once it
// listens (the demo prints it).
func serveArchive(ctx context.Context, data string, cfg *config, accounts []harvest.Account, log *slog.Logger, onWeb func(addr string)) error {
	for _, a := range accounts {
		if a.InsecureSkipVerify {
			log.Warn("certificate verification is off for this account", "account", a.Name)
		}
		if a.TLS == "none" {
			log.Warn("clear-text IMAP: the password crosses the network unencrypted (loopback only)", "account", a.Name)
		}
	}

	a, err := indexer.Open(data, &indexer.Options{Logger: log})
	if err != nil {
		return err
	}
	defer a.Close()
	if err := a.CatchUp(ctx, nil); err != nil && ctx.Err() == nil {
		log.Error("catching up the index", "err", err)
	}
	sink := &archiveSink{a: a}
	// Memory: all harvesters together hold at most serveFetchBudget of
	// fetched mail; the index writer's queue is bounded by bytes too; and
	// the Go heap has a soft limit so that garbage does not double the
	// resident size (docs/benchmarks.md has the figures).
	limitServeMemory()
	opts := serveHarvestOptions(log, len(accounts))
	harvesters := make([]*harvest.Harvester, len(accounts))
	var wg sync.WaitGroup
	for i, acct := range accounts {
		harvesters[i] = harvest.New(acct, sink, opts)
		wg.Add(1)
		go func() {
			defer wg.Done()
			harvesters[i].Run(ctx)
		}()
	}
	metrics := metricsHandler(harvesters, sink)
	if cfg.MetricsListen != "" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := serveMetrics(ctx, cfg.MetricsListen, metrics); err != nil {
				log.Error("metrics endpoint stopped", "err", err)
			}
		}()
	}
	if cfg.WebListen != "off" {
		users, err := web.OpenUsers(data)
		if err != nil {
			return err
		}
		defer users.Close()
		if list, err := users.List(ctx); err == nil && len(list) == 0 {
			log.Warn("no web users yet: the API answers nobody until one is made", "how", "mailvault user add NAME --role admin --data "+data)
		}
		srv, err := web.New(web.Options{Archive: a, Users: users, DataDir: data, Metrics: metrics, Logger: log,
			// Ready while the index is less than readyLag messages behind the
			// catalog: searches then miss at most a moment's mail.
			Ready: func() error {
				n, err := a.Catalog().CountUnindexed(context.Background())
				if err != nil {
					return err
				}
				if n > readyLag {
					return fmt.Errorf("the index is %d messages behind the catalog (catching up)", n)
				}
				return nil
			},
			Status: func(ctx context.Context) ([]web.StatusLine, error) {
				lines, err := statusLines(ctx, data)
				if err != nil {
					return nil, err
				}
				out := make([]web.StatusLine, len(lines))
				for i, l := range lines {
					b, _ := json.Marshal(l)
					json.Unmarshal(b, &out[i])
				}
				return out, nil
			}})
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := srv.ListenAndServe(ctx, cfg.WebListen, func(addr string) {
				log.Info("web UI and API listening", "url", "http://"+addr+"/", "api", "http://"+addr+"/api/search?q=...")
				if onWeb != nil {
					onWeb(addr)
				}
			})
			if err != nil {
				log.Error("web API stopped; harvesting goes on", "listen", cfg.WebListen, "err", err)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := serveLocalAPI(ctx, data, a, metrics, log); err != nil {
			log.Error("local API stopped; search and status from other processes will not see this serve", "err", err)
		}
	}()
	log.Info("serving", "data", data, "accounts", len(accounts), "metrics", cmp.Or(cfg.MetricsListen, "local socket only"))
	publish := func() {
		if err := writeHarvestStatus(data, harvesters); err != nil {
			log.Warn("publish harvest status", "err", err)
		}
	}
	publish()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case <-tick.C:
			publish()
		case <-ctx.Done():
			done = true
		}
	}
	// Ordered shutdown: harvesters log out (their Run returns), then the
	// index writer flushes and everything closes (deferred a.Close).
	log.Info("shutting down")
	wg.Wait()
	os.Remove(filepath.Join(data, harvestStatusFile))
	if err := a.Flush(context.Background()); err != nil {
		log.Error("flush index", "err", err)
	}
	return nil
}

// readyLag is the index backlog above which /readyz says not ready.
const readyLag = 5000

const (
	serveFetchBudget = 64 << 20  // bytes of fetched mail held by all harvesters at once
	serveMemoryLimit = 256 << 20 // the Go heap's soft limit in serve, unless GOMEMLIMIT is set
)

// limitServeMemory sets serve's soft heap limit unless GOMEMLIMIT is set.
func limitServeMemory() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(serveMemoryLimit)
	}
}

// serveHarvestOptions are the options of serve's harvesters (the harvest
// benchmarks use them too), sharing one fetch budget.
func serveHarvestOptions(log *slog.Logger, accounts int) *harvest.Options {
	return &harvest.Options{Logger: log, Budget: harvest.NewBudget(serveFetchBudget),
		// 10 ms per account, at most 5 s: hundreds of accounts do not
		// all log in to one server in the same instant.
		StartJitter: min(time.Duration(accounts)*10*time.Millisecond, 5*time.Second)}
}

// archiveSink is harvest.Sink over the archive.
type archiveSink struct {
	a     *indexer.Archive
	stats sinkStats
}

func (s *archiveSink) Checkpoint(ctx context.Context, account, accountURL, mailbox string, uidvalidity uint32) (uint32, error) {
	next, _, err := s.a.OpenEpoch(ctx, account, accountURL, mailbox, uidvalidity)
	return next, err
}

func (s *archiveSink) Store(ctx context.Context, msgs []harvest.Message) error {
	items := make([]indexer.Item, len(msgs))
	for i, m := range msgs {
		items[i] = indexer.Item{Account: m.Account, Mailbox: m.Mailbox, UIDValidity: m.UIDValidity, UID: m.UID,
			Flags: m.Flags, InternalDate: m.InternalDate, Raw: m.Raw}
	}
	begin := time.Now()
	_, err := s.a.Ingest(ctx, items)
	s.stats.storeNanos.Add(int64(time.Since(begin)))
	if err != nil {
		s.stats.errors.Add(1)
		return err
	}
	s.stats.batches.Add(1)
	s.stats.messages.Add(int64(len(msgs)))
	return nil
}

func (s *archiveSink) Reconcile(ctx context.Context, account, mailbox string, uidvalidity uint32, flags map[uint32][]string) error {
	_, _, err := s.a.Reconcile(ctx, account, mailbox, uidvalidity, flags)
	return err
}

func (s *archiveSink) Skip(ctx context.Context, account, mailbox string, uidvalidity, uid uint32, reason string) error {
	return s.a.Skip(ctx, account, mailbox, uidvalidity, uid, reason)
}

func (s *archiveSink) MailboxesGone(ctx context.Context, account string, onServer []string) (map[string]int, error) {
	return s.a.MailboxesGone(ctx, account, onServer)
}

var _ harvest.Sink = (*archiveSink)(nil)

// harvestStatus is the published state: per account, and when it was written.
type harvestStatus struct {
	Written  time.Time                 `json:"written"`
	Accounts map[string]harvest.Status `json:"accounts"`
}

func writeHarvestStatus(dir string, hs []*harvest.Harvester) error {
	st := harvestStatus{Written: time.Now(), Accounts: map[string]harvest.Status{}}
	for _, h := range hs {
		s := h.Status()
		st.Accounts[s.Account] = s
	}
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, harvestStatusFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o640); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, harvestStatusFile))
}

// readHarvestStatus returns a running serve's published state, or nil when
// there is none or it is stale (serve is not running).
func readHarvestStatus(dir string) *harvestStatus {
	b, err := os.ReadFile(filepath.Join(dir, harvestStatusFile))
	if err != nil {
		return nil
	}
	var st harvestStatus
	if err := json.Unmarshal(b, &st); err != nil || time.Since(st.Written) > 30*time.Second {
		return nil
	}
	return &st
}
