package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"

	"mailvault/imapview"
	"mailvault/service"
)

// imapConfig is the IMAP view's part of the configuration (imap: in the
// YAML; mailvault.example.yaml has every field, annotated).
type imapConfig struct {
	// Listen is the address of the read-only IMAP view of the archive
	// (host:port); empty or "off": none.
	Listen string `yaml:"listen"`
	// TLSCert and TLSKey are the server's certificate (PEM files; both or
	// neither). Without them the view speaks plain IMAP, which serve
	// allows only on a loopback address, and says so in the log.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// TLS is "implicit" (TLS from the first byte, like port 993; the
	// default with a certificate) or "starttls" (plain until STARTTLS;
	// LOGIN is refused before it).
	TLS string `yaml:"tls"`
	// MaxConnections bounds the view's connections (default 256), and
	// MaxConnectionsPerAddress those from one address (default 32).
	MaxConnections           int `yaml:"max_connections"`
	MaxConnectionsPerAddress int `yaml:"max_connections_per_address"`
}

// check validates c; bad reports a field's problem.
func (c *imapConfig) check(bad func(field, format string, args ...any)) {
	if c.Listen == "" || c.Listen == "off" {
		c.Listen = ""
		return
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("imap.listen", "%q: want host:port, like 127.0.0.1:1143, or off", c.Listen)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		bad("imap.tls_cert", "tls_cert and tls_key go together")
	}
	switch c.TLS {
	case "":
		if c.TLSCert != "" {
			c.TLS = "implicit"
		}
	case "implicit", "starttls":
		if c.TLSCert == "" {
			bad("imap.tls", "%q needs tls_cert and tls_key", c.TLS)
		}
	default:
		bad("imap.tls", "%q: want implicit or starttls", c.TLS)
	}
	if c.MaxConnections < 0 || c.MaxConnectionsPerAddress < 0 {
		bad("imap.max_connections", "must not be negative (0: the default)")
	}
}

// imapView binds the IMAP view's listener and makes its server, or returns
// nil, nil when none is configured. Plain IMAP is refused on an address
// that is not loopback: passwords would cross the network in clear.
func imapView(cfg *imapConfig, svc *service.Service, log *slog.Logger) (*imapview.Server, net.Listener, error) {
	if cfg.Listen == "" {
		return nil, nil, nil
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, nil, fmt.Errorf("imap.listen: %w", err)
	}
	opts := imapview.Options{Archive: svc, Logger: log, MaxConns: cfg.MaxConnections, MaxConnsPerAddr: cfg.MaxConnectionsPerAddress}
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			ln.Close()
			return nil, nil, fmt.Errorf("imap.tls_cert / imap.tls_key: %w", err)
		}
		opts.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	} else {
		ta, ok := ln.Addr().(*net.TCPAddr)
		if !ok || !ta.IP.IsLoopback() {
			ln.Close()
			return nil, nil, fmt.Errorf("imap.listen %s: plain IMAP (no imap.tls_cert) is allowed on a loopback address only: passwords would cross the network in clear", cfg.Listen)
		}
		opts.InsecureAuth = true
		log.Warn("IMAP view without TLS: passwords cross in clear text (loopback only); set imap.tls_cert and imap.tls_key", "listen", ln.Addr().String())
	}
	return imapview.New(opts), ln, nil
}
