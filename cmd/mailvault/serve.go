package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"

	"mailvault/harvest"
	"mailvault/indexer"
	"mailvault/service"
	"mailvault/web"
)

func runServe(ctx context.Context, e *env, args []string) error {
	var data, cfgPath, logFormat, webListen string
	fs := newFlags(e, "serve", &data)
	fs.StringVar(&webListen, "web-listen", "", "web UI and API `ADDRESS` (host:port, or off); overrides web_listen of --config (default "+defaultWebListen+")")
	fs.StringVar(&cfgPath, "config", "", "configuration `FILE` (YAML; see mailvault.example.yaml); without it, serve the archive in --data with no IMAP accounts")
	fs.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	cfg := &config{DataDir: data, WebListen: defaultWebListen}
	var accounts []harvest.Account
	if cfgPath != "" {
		var err error
		if cfg, accounts, err = loadConfig(cfgPath); err != nil {
			return &exitError{code: 2, err: err}
		}
		if flagSet(fs, "data") {
			cfg.DataDir = data
		}
	}
	if webListen != "" {
		cfg.WebListen = webListen
	}
	var handler slog.Handler = slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelInfo})
	if logFormat == "json" {
		handler = slog.NewJSONHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelInfo})
	}
	log := slog.New(handler)
	if len(accounts) == 0 {
		log.Info("archive-only mode: no IMAP accounts configured; serving what is in the archive (mailvault import adds mail while serve runs)",
			"data", cfg.DataDir)
	}
	return serveArchive(ctx, cfg, accounts, log, nil)
}

// defaultWebListen is where the web UI listens unless configured.
const defaultWebListen = "127.0.0.1:8080"

// serveArchive runs what serve runs over the archive in cfg.DataDir: the
// harvesters of accounts (none: archive-only), the web UI and API, the
// local socket and the metrics endpoint, until ctx is done. onWeb, when not
// nil, is called with the web server's address once it listens (the demo
// prints it).
//
// Lifecycle: every step that can fail (opening the archive and the user
// store, building the web server, binding every listener) is done before
// anything runs, so a failure returns before a harvester has written
// anything. Then the actors run under one errgroup: the service (harvesters
// and jobs), the web server, the local socket, the metrics listener. The
// failure policy is Prometheus's run.Group's: the first actor to fail stops
// all, and serve exits non-zero for its supervisor to restart it; a
// listener that cannot bind is a failure at start (a serve without its UI
// or socket would look healthy and be unreachable). Shutdown on ctx: the
// listeners stop accepting and drain (5 s), the harvesters send DONE and
// LOGOUT, jobs stop at a safe point, the index writer flushes, and the
// archive closes last. A second signal forces exit (main).
func serveArchive(ctx context.Context, cfg *config, accounts []harvest.Account, log *slog.Logger, onWeb func(addr string)) error {
	data := cfg.DataDir
	for _, a := range accounts {
		if a.InsecureSkipVerify {
			log.Warn("certificate verification is off for this account", "account", a.Name)
		}
		if a.TLS == "none" {
			log.Warn("clear-text IMAP: the password crosses the network unencrypted (loopback only)", "account", a.Name)
		}
	}

	a, err := indexer.Open(data, cfg.archiveOptions(&indexer.Options{Logger: log}))
	if err != nil {
		return err
	}
	defer a.Close()
	users, err := service.OpenUsers(data)
	if err != nil {
		return err
	}
	defer users.Close()
	if list, err := users.List(ctx); err == nil && len(list) == 0 && cfg.WebListen != "off" {
		log.Warn("no web users yet: the web UI and API let nobody in until one is made", "how", "mailvault user add NAME --role admin --data "+data)
	}
	lopts, what, err := ledgerOptions(&cfg.Ledger)
	if err != nil {
		return err
	}
	lopts.Logger = log
	lg, err := service.OpenLedger(ctx, a, users, lopts)
	if err != nil {
		return err
	}
	defer lg.Close()
	log.Info("ledger", "leaves", lg.Log.Size(), "signing", what)
	svc := service.New(a, &service.Options{Accounts: accounts, Harvest: cfg.harvestOptions(service.ServeHarvestOptions(log, len(accounts))),
		Users: users, Logger: log, ReadyLag: readyLag, Ledger: lg, Retention: cfg.retention, AccountAddresses: cfg.accountAddresses()})
	jsrv, err := journalServer(cfg, service.NewJournalSink(a), log)
	if err != nil {
		return err
	}
	imapSrv, imapLn, err := imapView(&cfg.IMAP, svc, log)
	if err != nil {
		return err
	}
	if imapLn != nil {
		defer imapLn.Close()
	}
	metrics := svc.MetricsHandlerWith(append(jsrv.Collectors(), imapSrv.Collectors()...)...)
	var webLn, metricsLn net.Listener
	loopback := false
	if cfg.WebListen != "off" {
		if webLn, err = net.Listen("tcp", cfg.WebListen); err != nil {
			return fmt.Errorf("web UI: %w (another program, or another mailvault, uses that address: set web_listen (demo: --listen), or web_listen: off)", err)
		}
		defer webLn.Close()
		if ta, ok := webLn.Addr().(*net.TCPAddr); ok {
			loopback = ta.IP.IsLoopback()
		}
		if cfg.WebTLSCert != "" {
			cert, err := tls.LoadX509KeyPair(cfg.WebTLSCert, cfg.WebTLSKey)
			if err != nil {
				return fmt.Errorf("web_tls_cert / web_tls_key: %w", err)
			}
			webLn = tls.NewListener(webLn, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
		}
	}
	srv, err := web.New(web.Options{Archive: svc, Users: users, Guard: svc.LoginGuard(), DataDir: data, Metrics: metrics, Logger: log,
		TrustedProxies: cfg.WebTrustedProxies, Hosts: cfg.WebHosts, Loopback: loopback})
	if err != nil {
		return err
	}
	if cfg.MetricsListen != "" {
		if metricsLn, err = net.Listen("tcp", cfg.MetricsListen); err != nil {
			return fmt.Errorf("metrics_listen: %w", err)
		}
		defer metricsLn.Close()
	}
	localLn, err := listenLocal(data)
	if err != nil {
		return err
	}
	defer localLn.Close()

	// Memory: all harvesters together hold at most serveFetchBudget of
	// fetched mail; the index writer's queue is bounded by bytes too; and
	// the Go heap has a soft limit so that garbage does not double the
	// resident size (docs/benchmarks.md has the figures).
	service.LimitServeMemory()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return svc.Run(gctx) })
	if jsrv != nil {
		// The journal stops accepting at shutdown, lets DATA in flight be
		// stored and acknowledged (journal.Options.ShutdownGrace), then
		// returns; the archive closes after it (deferred above).
		g.Go(func() error { return jsrv.Run(gctx) })
	}
	g.Go(func() error {
		// The ledger follows the catalog every second; a last follow and
		// checkpoint when serve stops.
		lg.Run(gctx, time.Second, func(err error) { log.Error("ledger", "err", err) })
		return nil
	})
	g.Go(func() error {
		err := web.Serve(gctx, localLn, srv.LocalHandler())
		os.Remove(filepath.Join(data, localSocket))
		if err != nil {
			return fmt.Errorf("local socket: %w", err)
		}
		return nil
	})
	if webLn != nil {
		g.Go(func() error {
			if err := web.Serve(gctx, webLn, srv.Handler()); err != nil {
				return fmt.Errorf("web UI: %w", err)
			}
			return nil
		})
		addr, scheme := webLn.Addr().String(), "http"
		if cfg.WebTLSCert != "" {
			scheme = "https"
		}
		log.Info("web UI and API listening", "url", scheme+"://"+addr+"/", "api", scheme+"://"+addr+"/api/search?q=...")
		if onWeb != nil {
			onWeb(addr)
		}
	}
	if imapSrv != nil {
		g.Go(func() error {
			if err := imapSrv.Run(gctx, imapLn, cfg.IMAP.TLS == "implicit"); err != nil {
				return fmt.Errorf("imap.listen: %w", err)
			}
			return nil
		})
		log.Info("IMAP view listening (read-only)", "addr", imapLn.Addr().String(), "tls", cmp.Or(cfg.IMAP.TLS, "none"))
	}
	if metricsLn != nil {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", metrics)
		g.Go(func() error {
			if err := web.Serve(gctx, metricsLn, mux); err != nil {
				return fmt.Errorf("metrics_listen: %w", err)
			}
			return nil
		})
	}
	log.Info("serving", "data", data, "accounts", len(accounts), "metrics", cmp.Or(cfg.MetricsListen, "local socket only"))
	err = g.Wait()
	log.Info("stopped")
	return err
}

// listenLocal binds the local socket in data. The data directory's lock is
// this process's (indexer.Open took it), so a socket file there is a stale
// one of a serve that died.
func listenLocal(data string) (net.Listener, error) {
	path := filepath.Join(data, localSocket)
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("local socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("local socket %s: %w", path, err)
	}
	return ln, nil
}

// readyLag is the index backlog above which /readyz says not ready.
const readyLag = 5000
