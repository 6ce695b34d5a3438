package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"mailvault/harvest"
	"mailvault/indexer"
	"mailvault/indexer/extract"
	"mailvault/journal"
	"mailvault/service"
)

// config is the YAML configuration of `mailvault serve` (see
// mailvault.example.yaml for every field, annotated).
type config struct {
	DataDir       string `yaml:"data_dir"`
	MetricsListen string `yaml:"metrics_listen"`
	WebListen     string `yaml:"web_listen"`
	// WebTLSCert and WebTLSKey make serve speak HTTPS on web_listen itself
	// (PEM files; both or neither). Session cookies are then Secure.
	WebTLSCert string `yaml:"web_tls_cert"`
	WebTLSKey  string `yaml:"web_tls_key"`
	// WebHosts are the host names the web UI is reached by (Host header
	// check against DNS rebinding); empty: loopback names only when
	// web_listen is a loopback address, anything otherwise.
	WebHosts []string `yaml:"web_hosts"`
	// WebTrustedProxies are the reverse proxies (IPs or CIDRs) whose
	// X-Forwarded-For is believed; none by default.
	WebTrustedProxies []string `yaml:"web_trusted_proxies"`
	// MaxMessageBytes: a message larger than this is recorded as skipped
	// without being downloaded (0: the harvester's default, 256 MiB).
	MaxMessageBytes int64 `yaml:"max_message_bytes"`
	// GapCheck is how often serve compares each harvested mailbox's UIDs
	// on the server with the archive (harvest/gaps.go): a Go duration of
	// at least 1s, like 6h; "0" or "off": never, but on demand (`status
	// --check`); unset: the harvester's default, 6 hours.
	GapCheck string `yaml:"gap_check"`
	// Ledger: the signing key, checkpoint cadence and copy (ledger.go).
	Ledger   ledgerConfig    `yaml:"ledger"`
	Accounts []accountConfig `yaml:"accounts"`
	// Retention: policies, WORM, four eyes, the schedule (retention.go;
	// absent: WORM, nothing ever deleted).
	Retention retentionConfig `yaml:"retention"`
	// Attachments: text extraction from attachments (absent: on, with
	// package extract's limits).
	Attachments attachmentsConfig `yaml:"attachments"`
	// Journal: the SMTP/LMTP journal listener (journalconf.go; absent:
	// none).
	Journal journalConfig `yaml:"journal"`
	// IMAP: the read-only IMAP view of the archive (imapconf.go; absent:
	// none).
	IMAP imapConfig `yaml:"imap"`

	// retention is Retention checked and parsed by loadConfig.
	retention *service.RetentionConfig
	// journal is Journal checked by loadConfig (nil: no listener).
	journal *journal.Options
	// gapCheck is GapCheck parsed by loadConfig, as harvest.Options.GapCheck
	// takes it (0: the default, negative: off).
	gapCheck time.Duration
}

// attachmentsConfig is the attachments: section. Every limit is per
// attachment, its archive members and embedded files included; 0 or unset
// is the default (docs/design.md, "Attachment text").
type attachmentsConfig struct {
	Extract          *bool  `yaml:"extract"`            // default true; false leaves extraction queued
	Timeout          string `yaml:"timeout"`            // default 10s (60s with ocr: true)
	MaxInputBytes    int64  `yaml:"max_input_bytes"`    // default 64 MiB
	MaxTextBytes     int    `yaml:"max_text_bytes"`     // default 4 MiB
	MaxExpandedBytes int64  `yaml:"max_expanded_bytes"` // default 256 MiB
	MaxDepth         int    `yaml:"max_depth"`          // default 5
	MaxMembers       int    `yaml:"max_members"`        // default 10000
	// OCR reads images and scanned PDFs with Debian's tesseract (and
	// pdftoppm), when installed; default false.
	OCR bool `yaml:"ocr"`
}

// ocrTimeout is an attachment's time limit when OCR is on and the
// configuration sets none.
const ocrTimeout = 60 * time.Second

// archiveOptions sets what the configuration says about the archive in o.
func (c *config) archiveOptions(o *indexer.Options) *indexer.Options {
	at := c.Attachments
	o.NoExtract = at.Extract != nil && !*at.Extract
	timeout, _ := time.ParseDuration(at.Timeout) // checked by loadConfig
	if at.OCR && timeout == 0 {
		// A dense scanned page takes tesseract 3–7 s on a busy 2-core
		// machine (docs/benchmarks.md, OCR): 10 s would cut many.
		timeout = ocrTimeout
	}
	o.Extract = &extract.Limits{Timeout: timeout, MaxInput: at.MaxInputBytes, MaxText: at.MaxTextBytes,
		MaxExpanded: at.MaxExpandedBytes, MaxDepth: at.MaxDepth, MaxMembers: at.MaxMembers, OCR: at.OCR}
	return o
}

// harvestOptions sets what the configuration says about harvesting in o
// (serve's options, which also carry what is not configurable) and returns
// it.
func (c *config) harvestOptions(o *harvest.Options) *harvest.Options {
	if o == nil {
		o = &harvest.Options{}
	}
	if c.MaxMessageBytes > 0 {
		o.MaxMessageBytes = c.MaxMessageBytes
	}
	if c.gapCheck != 0 {
		o.GapCheck = c.gapCheck
	}
	return o
}

type accountConfig struct {
	Name               string   `yaml:"name"`
	Host               string   `yaml:"host"`
	Port               int      `yaml:"port"`
	TLS                string   `yaml:"tls"`
	TLSCAFile          string   `yaml:"tls_ca_file"`
	InsecureSkipVerify bool     `yaml:"insecure_skip_verify"`
	Username           string   `yaml:"username"`
	PasswordFile       string   `yaml:"password_file"`
	PasswordEnv        string   `yaml:"password_env"`
	Auth               string   `yaml:"auth"`
	TokenFile          string   `yaml:"token_file"`
	TokenEnv           string   `yaml:"token_env"`
	Mailboxes          []string `yaml:"mailboxes"`
	Exclude            []string `yaml:"exclude"`
	Idle               []string `yaml:"idle"`
	PollInterval       string   `yaml:"poll_interval"`
	MaxConnections     int      `yaml:"max_connections"`
	// Addresses are the account's mail addresses (its username counts too
	// when it is one): journal mail to or from them is the account's in the
	// journal coverage report (mailvault journal coverage).
	Addresses []string `yaml:"addresses"`
}

// loadConfig reads and validates the configuration in full: it reports every
// problem at once, each with its path (accounts[2].host: ...).
func loadConfig(path string) (*config, []harvest.Account, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("config: %w", err)
	}
	var cfg config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		return nil, nil, fmt.Errorf("config %s: %w", path, err)
	}
	var problems []string
	bad := func(at, format string, args ...any) {
		problems = append(problems, at+": "+fmt.Sprintf(format, args...))
	}
	if cfg.DataDir == "" {
		cfg.DataDir = "./mailvault-data"
	}
	if cfg.MetricsListen != "" {
		if _, _, err := net.SplitHostPort(cfg.MetricsListen); err != nil {
			bad("metrics_listen", "%q: want host:port, like 127.0.0.1:9464", cfg.MetricsListen)
		}
	}
	switch cfg.WebListen {
	case "":
		cfg.WebListen = "127.0.0.1:8080"
	case "off":
	default:
		if _, _, err := net.SplitHostPort(cfg.WebListen); err != nil {
			bad("web_listen", "%q: want host:port, like 127.0.0.1:8080, or off", cfg.WebListen)
		}
	}
	cfg.IMAP.check(bad)
	if (cfg.WebTLSCert == "") != (cfg.WebTLSKey == "") {
		bad("web_tls_cert", "web_tls_cert and web_tls_key go together")
	}
	for i, p := range cfg.WebTrustedProxies {
		if net.ParseIP(p) == nil {
			if _, _, err := net.ParseCIDR(p); err != nil {
				bad(fmt.Sprintf("web_trusted_proxies[%d]", i), "%q: want an IP address or a CIDR range", p)
			}
		}
	}
	if cfg.MaxMessageBytes < 0 {
		bad("max_message_bytes", "must not be negative (0 or unset: 256 MiB)")
	}
	// A gap check lists every UID of every mailbox: more often than every
	// second is never meant; the checks run between polls, so the period
	// is in effect at least poll_interval.
	if g := cfg.GapCheck; g != "" {
		d, err := time.ParseDuration(g)
		switch {
		case g == "off" || err == nil && d == 0:
			cfg.gapCheck = -1
		case err != nil || d < time.Second:
			bad("gap_check", "%q: want a duration of at least 1s, like 6h, or off", g)
		default:
			cfg.gapCheck = d
		}
	}
	if t := cfg.Attachments.Timeout; t != "" {
		if d, err := time.ParseDuration(t); err != nil || d <= 0 {
			bad("attachments.timeout", "%q: want a positive duration, like 10s", t)
		}
	}
	if at := cfg.Attachments; at.MaxInputBytes < 0 || at.MaxTextBytes < 0 || at.MaxExpandedBytes < 0 || at.MaxDepth < 0 || at.MaxMembers < 0 {
		bad("attachments", "limits must not be negative (0 or unset: the default)")
	}
	// The catalog reads an attachment's recorded text back with a decoder
	// bounded at 64 MiB (indexer.maxAttachmentText): more is refused here
	// rather than clamped without a word.
	if n := cfg.Attachments.MaxTextBytes; n > 64<<20 {
		bad("attachments.max_text_bytes", "%d: at most 67108864 (64 MiB; the default is 4 MiB)", n)
	}
	// No accounts is archive-only mode: serve serves what was imported.
	seen := map[string]bool{}
	var accounts []harvest.Account
	for i, ac := range cfg.Accounts {
		at := fmt.Sprintf("accounts[%d]", i)
		if ac.Name == "" {
			bad(at+".name", "required")
		} else if seen[ac.Name] {
			bad(at+".name", "%q is used by another account", ac.Name)
		} else if strings.ContainsAny(ac.Name, "/\x00") {
			bad(at+".name", "%q: no / in account names", ac.Name)
		}
		seen[ac.Name] = true
		if ac.Host == "" {
			bad(at+".host", "required")
		}
		if ac.Port < 0 || ac.Port > 65535 {
			bad(at+".port", "%d is not a port", ac.Port)
		}
		switch ac.TLS {
		case "", "implicit", "starttls":
		case "none":
			if ip := net.ParseIP(ac.Host); ac.Host != "localhost" && (ip == nil || !ip.IsLoopback()) {
				bad(at+".tls", "none sends the password in clear text; it is allowed only for a loopback host, not %q", ac.Host)
			}
		default:
			bad(at+".tls", "%q: want implicit, starttls or none", ac.TLS)
		}
		if ac.TLSCAFile != "" {
			if _, err := os.Stat(ac.TLSCAFile); err != nil {
				bad(at+".tls_ca_file", "%v", err)
			}
		}
		if ac.Username == "" {
			bad(at+".username", "required")
		}
		password, tokenFile := "", ""
		switch ac.Auth {
		case "", "plain", "login":
			if ac.TokenFile != "" || ac.TokenEnv != "" {
				bad(at, "token_file and token_env are for auth: xoauth2")
			}
			switch {
			case ac.PasswordFile != "" && ac.PasswordEnv != "":
				bad(at, "set password_file or password_env, not both")
			case ac.PasswordFile != "":
				b, err := os.ReadFile(ac.PasswordFile)
				if err != nil {
					bad(at+".password_file", "%v", err)
				}
				password = strings.TrimRight(string(b), "\r\n")
			case ac.PasswordEnv != "":
				v, ok := os.LookupEnv(ac.PasswordEnv)
				if !ok {
					bad(at+".password_env", "environment variable %s is not set", ac.PasswordEnv)
				}
				password = v
			default:
				bad(at, "password_file or password_env is required")
			}
		case "xoauth2":
			// The token file is read again at every connection, so that a
			// refresher (a sidecar, a cron job) can rotate it under serve.
			if ac.PasswordFile != "" || ac.PasswordEnv != "" {
				bad(at, "auth: xoauth2 takes token_file or token_env, not a password")
			}
			switch {
			case ac.TokenFile != "" && ac.TokenEnv != "":
				bad(at, "set token_file or token_env, not both")
			case ac.TokenFile != "":
				if _, err := os.ReadFile(ac.TokenFile); err != nil {
					bad(at+".token_file", "%v", err)
				}
				tokenFile = ac.TokenFile
			case ac.TokenEnv != "":
				v, ok := os.LookupEnv(ac.TokenEnv)
				if !ok {
					bad(at+".token_env", "environment variable %s is not set", ac.TokenEnv)
				}
				password = strings.TrimSpace(v)
			default:
				bad(at, "auth: xoauth2 needs token_file or token_env")
			}
		default:
			bad(at+".auth", "%q: want plain, login or xoauth2", ac.Auth)
		}
		poll := time.Minute
		if ac.PollInterval != "" {
			d, err := time.ParseDuration(ac.PollInterval)
			if err != nil || d < time.Second {
				bad(at+".poll_interval", "%q: want a duration of at least 1s, like 60s", ac.PollInterval)
			}
			poll = d
		}
		if ac.MaxConnections < 0 {
			bad(at+".max_connections", "must not be negative")
		}
		idle := ac.Idle
		if idle == nil {
			idle = []string{"INBOX"}
		}
		accounts = append(accounts, harvest.Account{
			Name: ac.Name, Host: ac.Host, Port: ac.Port, TLS: ac.TLS, TLSCAFile: ac.TLSCAFile,
			InsecureSkipVerify: ac.InsecureSkipVerify, Username: ac.Username, Password: password,
			Auth: ac.Auth, TokenFile: tokenFile,
			Mailboxes: ac.Mailboxes, Exclude: ac.Exclude, Idle: idle, PollInterval: poll,
			MaxConnections: max(ac.MaxConnections, 1),
		})
	}
	cfg.retention = cfg.Retention.check(bad)
	cfg.journal = cfg.Journal.check(bad)
	if len(problems) > 0 {
		return nil, nil, fmt.Errorf("config %s has %d problems:\n  %s", path, len(problems), strings.Join(problems, "\n  "))
	}
	return &cfg, accounts, nil
}
