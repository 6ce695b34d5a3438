package harvest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
)

func (h *Harvester) dial(ctx context.Context, o *imapclient.Options) (*imapclient.Client, *timeoutConn, error) {
	addr := net.JoinHostPort(h.acct.Host, strconv.Itoa(h.port()))
	o.Dialer = &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 60 * time.Second}
	if h.acct.tlsMode() != "none" {
		cfg, err := h.tlsConfig()
		if err != nil {
			return nil, nil, err
		}
		o.TLSConfig = cfg
	}
	// Dial and greet under ctx: a server that accepts the connection and
	// then says nothing must not hold up a shutdown.
	raw, err := o.Dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("account %q: connect %s: %w", h.acct.Name, addr, err)
	}
	tc := &timeoutConn{Conn: raw, command: h.opts.CommandTimeout}
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()
	raw.SetDeadline(time.Now().Add(greetingTimeout))
	var c *imapclient.Client
	switch h.acct.tlsMode() {
	case "implicit":
		tlc := tls.Client(tc, o.TLSConfig)
		if err = tlc.HandshakeContext(ctx); err == nil {
			c = imapclient.New(&guardConn{Conn: tlc, onBye: h.noteBye}, o)
		}
	case "starttls":
		c, err = imapclient.NewStartTLS(tc, o)
	case "none":
		c = imapclient.New(&guardConn{Conn: tc, onBye: h.noteBye}, o)
	default:
		raw.Close()
		return nil, nil, fmt.Errorf("account %q: tls %q: want implicit, starttls or none", h.acct.Name, h.acct.TLS)
	}
	if err == nil {
		err = c.WaitGreeting()
	}
	if err != nil {
		raw.Close()
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		var verr *tls.CertificateVerificationError
		if errors.As(err, &verr) {
			hint := "set tls_ca_file to the CA that signed it"
			var herr x509.HostnameError
			if errors.As(err, &herr) {
				names := slices.Clone(herr.Certificate.DNSNames)
				for _, ip := range herr.Certificate.IPAddresses {
					names = append(names, ip.String())
				}
				hint = fmt.Sprintf("host must be a name the certificate is for: %s", strings.Join(names, ", "))
			}
			return nil, nil, fmt.Errorf("account %q: connect %s: %w: %v (%s; insecure_skip_verify turns checking off)", h.acct.Name, addr, ErrCertificate, verr.Err, hint)
		}
		var rerr tls.RecordHeaderError
		switch {
		case errors.As(err, &rerr):
			err = fmt.Errorf("%w (the server does not speak TLS on this port: for port 143 use tls: starttls)", err)
		case strings.Contains(err.Error(), "before greeting"):
			err = fmt.Errorf("%w (no IMAP greeting: is %s the server's IMAP port, and tls: %s right for it?)", err, addr, h.acct.tlsMode())
		}
		return nil, nil, fmt.Errorf("account %q: connect %s: %w", h.acct.Name, addr, err)
	}
	raw.SetDeadline(time.Time{})
	tc.setTimeout(h.opts.ReadTimeout)
	return c, tc, nil
}

// tlsConfig is the TLS configuration of the account's connections.
func (h *Harvester) tlsConfig() (*tls.Config, error) {
	cfg := &tls.Config{ServerName: h.acct.Host, InsecureSkipVerify: h.acct.InsecureSkipVerify}
	if h.acct.TLSCAFile != "" {
		pem, err := os.ReadFile(h.acct.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("account %q: tls_ca_file: %w", h.acct.Name, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("account %q: tls_ca_file %s: no PEM certificates in it", h.acct.Name, h.acct.TLSCAFile)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// timeoutConn is the connection under the IMAP client (and TLS). Once a
// timeout is set, every read must see data within it, and the deadline is
// moved at each read: the client's reader goroutine is always reading, so
// the timeout is how long the server may stay silent. setTimeout also moves
// the deadline of a read in progress.
// While the harvester works on what it fetched (pause to resume), the
// server owes it nothing and there is no deadline.
// A server that keeps talking but never completes a command (untagged
// responses without end) is cut off by the command timeout: reads fail
// once more than max(command, timeout) has passed since the client last
// wrote (or resumed).
type timeoutConn struct {
	net.Conn
	mu      sync.Mutex
	timeout time.Duration // 0 until the greeting is read
	command time.Duration // 0: no command timeout
	since   time.Time     // the client's last write, or resume
	paused  bool
}

func (c *timeoutConn) setTimeout(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.timeout = d
	if !c.paused {
		c.Conn.SetReadDeadline(c.deadline())
	}
}

// deadline is the read deadline from now; c.mu is held.
func (c *timeoutConn) deadline() time.Time {
	dl := time.Now().Add(c.timeout)
	if c.command > 0 && !c.since.IsZero() {
		if cd := c.since.Add(max(c.command, c.timeout)); cd.Before(dl) {
			dl = cd
		}
	}
	return dl
}

func (c *timeoutConn) pause() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.paused = true
	c.Conn.SetReadDeadline(time.Time{})
}

func (c *timeoutConn) resume() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.paused = false
	c.since = time.Now()
	if c.timeout > 0 {
		c.Conn.SetReadDeadline(c.deadline())
	}
}

func (c *timeoutConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.since = time.Now()
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *timeoutConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	d, busy := c.timeout, time.Duration(0)
	if d > 0 && !c.paused {
		if c.command > 0 && !c.since.IsZero() {
			busy = max(c.command, d)
			if time.Since(c.since) > busy {
				c.mu.Unlock()
				return 0, fmt.Errorf("%w: the server has not completed a command in %v, though it keeps sending", ErrHostile, busy)
			}
		}
		c.Conn.SetReadDeadline(c.deadline())
	}
	c.mu.Unlock()
	n, err := c.Conn.Read(p)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() && d > 0 {
		if busy > 0 && n == 0 {
			c.mu.Lock()
			over := time.Since(c.since) >= busy
			c.mu.Unlock()
			if over {
				return n, fmt.Errorf("%w: the server has not completed a command in %v: %v", ErrHostile, busy, err)
			}
		}
		err = fmt.Errorf("the server sent nothing for %v: %w", d, err)
	}
	return n, err
}

// greetingTimeout bounds the TCP connect, TLS handshake and greeting.
const greetingTimeout = 60 * time.Second

func (h *Harvester) port() int {
	if h.acct.Port != 0 {
		return h.acct.Port
	}
	if h.acct.tlsMode() == "implicit" {
		return 993
	}
	return 143
}
