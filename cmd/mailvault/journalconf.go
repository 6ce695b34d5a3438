package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"mailvault/journal"
	"mailvault/service"
)

// journalConfig is the journal: section (package journal; docs/design.md,
// "Journaling (issue 16)"). Absent or without a listen address, serve
// runs no journal listener.
type journalConfig struct {
	SMTPListen string `yaml:"smtp_listen"` // host:port of the SMTP listener
	LMTPListen string `yaml:"lmtp_listen"` // host:port of the LMTP listener
	Account    string `yaml:"account"`     // default "journal"
	// TLSCert and TLSKey offer STARTTLS (PEM files; both or neither).
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// AuthUsersFile requires AUTH PLAIN with the name:bcrypt-hash lines
	// of this file (htpasswd -B); unset: no AUTH, the allow-list alone.
	AuthUsersFile string `yaml:"auth_users_file"`
	// Allow: client networks (CIDRs or IPs); default loopback only.
	Allow []string `yaml:"allow"`
	// MaxMessageBytes (default 64 MiB) and MaxRecipients (default 1000)
	// per message; MaxSessions concurrent sessions (default 100).
	MaxMessageBytes int64 `yaml:"max_message_bytes"`
	MaxRecipients   int   `yaml:"max_recipients"`
	MaxSessions     int   `yaml:"max_sessions"`
	// MaxInflightBytes: the message bytes all sessions together hold in
	// memory (default 1 GiB, at least max_message_bytes); over it, 452.
	MaxInflightBytes int64 `yaml:"max_inflight_bytes"`
	// Timeout of a session's reads and writes (default 5m).
	Timeout string `yaml:"timeout"`
	// BatchWindow: how long a batch waits for more messages (default 0:
	// it takes what is waiting).
	BatchWindow string `yaml:"batch_window"`
	// EncodedRecipients: RCPT TO PREFIX+local=domain@host stands for
	// local@domain (the Postfix recipient_bcc_maps recipe in the README).
	EncodedRecipients string `yaml:"encoded_recipients"`
}

// checked is the section validated: journal.Options without listeners,
// or nil when no listener is configured.
func (j journalConfig) check(bad func(at, format string, args ...any)) *journal.Options {
	if j.SMTPListen == "" && j.LMTPListen == "" {
		if j.Account != "" || j.TLSCert != "" || len(j.Allow) > 0 || j.AuthUsersFile != "" {
			bad("journal", "smtp_listen or lmtp_listen is required for the journal section to do anything")
		}
		return nil
	}
	o := &journal.Options{Account: j.Account, MaxMessageBytes: j.MaxMessageBytes, MaxRecipients: j.MaxRecipients,
		MaxSessions: j.MaxSessions, MaxInflightBytes: j.MaxInflightBytes, EncodedPrefix: j.EncodedRecipients}
	for _, l := range []struct{ key, v string }{{"smtp_listen", j.SMTPListen}, {"lmtp_listen", j.LMTPListen}} {
		if l.v == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(l.v); err != nil {
			bad("journal."+l.key, "%q: want host:port, like 127.0.0.1:2525", l.v)
		}
	}
	if j.SMTPListen != "" && j.SMTPListen == j.LMTPListen {
		bad("journal.lmtp_listen", "the same address as smtp_listen")
	}
	if strings.ContainsAny(j.Account, "/\x00") {
		bad("journal.account", "%q: no / in account names", j.Account)
	}
	if (j.TLSCert == "") != (j.TLSKey == "") {
		bad("journal.tls_cert", "tls_cert and tls_key go together")
	} else if j.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(j.TLSCert, j.TLSKey)
		if err != nil {
			bad("journal.tls_cert", "%v", err)
		} else {
			o.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		}
	}
	if j.AuthUsersFile != "" {
		users, err := journal.LoadUsers(j.AuthUsersFile)
		if err != nil {
			bad("journal.auth_users_file", "%v", err)
		}
		o.Users = users
	}
	for i, a := range j.Allow {
		n, err := parseNet(a)
		if err != nil {
			bad(fmt.Sprintf("journal.allow[%d]", i), "%q: want a CIDR range (10.0.0.0/8) or an IP address", a)
			continue
		}
		o.Allow = append(o.Allow, n)
	}
	if j.MaxMessageBytes < 0 || j.MaxRecipients < 0 || j.MaxSessions < 0 || j.MaxInflightBytes < 0 {
		bad("journal", "max_message_bytes, max_recipients, max_sessions and max_inflight_bytes must not be negative (0 or unset: the default)")
	}
	for _, d := range []struct {
		key, v string
		to     *time.Duration
	}{{"timeout", j.Timeout, &o.Timeout}, {"batch_window", j.BatchWindow, &o.BatchWindow}} {
		if d.v == "" {
			continue
		}
		v, err := time.ParseDuration(d.v)
		if err != nil || v < 0 {
			bad("journal."+d.key, "%q: want a duration, like 5m or 2ms", d.v)
		}
		*d.to = v
	}
	if j.EncodedRecipients != "" && strings.ContainsAny(j.EncodedRecipients, "@+= ") {
		bad("journal.encoded_recipients", "%q: a local-part prefix without @, +, = or spaces, like journal", j.EncodedRecipients)
	}
	return o
}

func parseNet(s string) (*net.IPNet, error) {
	if ip := net.ParseIP(s); ip != nil {
		bits := 128
		if ip.To4() != nil {
			ip, bits = ip.To4(), 32
		}
		return &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)}, nil
	}
	_, n, err := net.ParseCIDR(s)
	return n, err
}

// journalServer binds the configured journal listeners and returns the
// server, or nil when none is configured. A listener that cannot bind is
// an error at start, like the web UI's.
func journalServer(cfg *config, a *service.JournalSink, log *slog.Logger) (*journal.Server, error) {
	if cfg.journal == nil {
		return nil, nil
	}
	o := *cfg.journal
	o.Logger = log
	var err error
	if cfg.Journal.SMTPListen != "" {
		if o.SMTP, err = net.Listen("tcp", cfg.Journal.SMTPListen); err != nil {
			return nil, fmt.Errorf("journal.smtp_listen: %w", err)
		}
	}
	if cfg.Journal.LMTPListen != "" {
		if o.LMTP, err = net.Listen("tcp", cfg.Journal.LMTPListen); err != nil {
			if o.SMTP != nil {
				o.SMTP.Close()
			}
			return nil, fmt.Errorf("journal.lmtp_listen: %w", err)
		}
	}
	if o.Users == nil {
		log.Info("journal: no AUTH (journal.auth_users_file unset); the allow-list alone admits clients")
	}
	return journal.New(a, &o), nil
}
