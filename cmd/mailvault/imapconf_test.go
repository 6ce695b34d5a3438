package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"mailvault/harvest/memtest"
	"mailvault/internal/testcert"
)

// TestServeIMAPView: serve with an imap: section harvests an account and
// serves it over implicit TLS to a user made with `mailvault user add`,
// read-only, the fetched bytes the harvested ones.
func TestServeIMAPView(t *testing.T) {
	addr, err := net.ResolveTCPAddr("tcp", memtest.Start(t))
	if err != nil {
		t.Fatal(err)
	}
	raw := "From: bob@example.org\r\nSubject: zeppelin\r\nDate: Mon, 4 Mar 2024 10:00:00 +0100\r\n\r\nhello over the view\r\n"
	memtest.Append(t, addr.String(), "INBOX", []byte(raw))
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "pw"), []byte("secret\n"), 0o600)
	certFile, keyFile, pool := testcert.Files(t, dir, "127.0.0.1")
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	imapAddr := free.Addr().String()
	free.Close()
	data := filepath.Join(dir, "data")
	cfg := fmt.Sprintf(`data_dir: %s
web_listen: "off"
imap:
  listen: %s
  tls_cert: %s
  tls_key: %s
accounts:
  - name: alice
    host: 127.0.0.1
    port: %d
    tls: none
    username: alice
    password_file: %s
    idle: [INBOX]
`, data, imapAddr, certFile, keyFile, addr.Port, filepath.Join(dir, "pw"))
	os.WriteFile(filepath.Join(dir, "mailvault.yaml"), []byte(cfg), 0o600)
	// The user store exists before serve (it is made by `user add`).
	stdin = strings.NewReader("a long password\n")
	defer func() { stdin = os.Stdin }()
	var errb bytes.Buffer
	if code := run(context.Background(), &env{stdout: &bytes.Buffer{}, stderr: &errb}, []string{"user", "add", "--data", data, "--role", "user", "--account", "alice", "ann"}); code != 0 {
		t.Fatalf("user add: exit %d: %s", code, errb.String())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var serveErr bytes.Buffer
	go func() {
		done <- run(ctx, &env{stdout: &bytes.Buffer{}, stderr: &serveErr}, []string{"serve", "--config", filepath.Join(dir, "mailvault.yaml")})
	}()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("serve exited %d: %s", code, serveErr.String())
		}
	}()
	var c *imapclient.Client
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		c, err = imapclient.DialTLS(imapAddr, &imapclient.Options{TLSConfig: &tls.Config{RootCAs: pool}})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the IMAP view does not answer: %v; serve said:\n%s", err, serveErr.String())
		}
	}
	defer c.Close()
	if err := c.Login("ann", "a long password").Wait(); err != nil {
		t.Fatalf("login: %v", err)
	}
	var got []byte
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if sel, err := c.Select("alice/INBOX", nil).Wait(); err == nil && sel.NumMessages == 1 {
			msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
			if err != nil || len(msgs) != 1 {
				t.Fatalf("fetch: %v", err)
			}
			got = msgs[0].FindBodySection(&imap.FetchItemBodySection{Peek: true})
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("alice/INBOX never held the harvested message; serve said:\n%s", serveErr.String())
		}
	}
	if string(got) != raw {
		t.Errorf("fetched %q, harvested %q", got, raw)
	}
	if err := c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err == nil {
		t.Error("STORE was accepted by the read-only view")
	}
	// The view's metrics, on the local socket.
	unix := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", filepath.Join(data, localSocket))
		}}}
	resp, err := unix.Get("http://mailvault/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`mailvault_imap_logins_total{result="ok"} 1`, "mailvault_imap_messages_read_total 1", "mailvault_imap_connections 1"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestIMAPConfigProblems: plain IMAP off loopback, and TLS modes without a
// certificate, are refused.
func TestIMAPConfigProblems(t *testing.T) {
	var problems []string
	bad := func(field, format string, args ...any) {
		problems = append(problems, field+": "+fmt.Sprintf(format, args...))
	}
	for _, c := range []imapConfig{
		{Listen: "nonsense"},
		{Listen: "127.0.0.1:1143", TLS: "starttls"},
		{Listen: "127.0.0.1:1143", TLS: "sometimes", TLSCert: "a", TLSKey: "b"},
		{Listen: "127.0.0.1:1143", TLSCert: "a"},
	} {
		problems = nil
		c.check(bad)
		if len(problems) == 0 {
			t.Errorf("%+v: no problem reported", c)
		}
	}
	problems = nil
	ok := imapConfig{Listen: "127.0.0.1:1143", TLSCert: "a", TLSKey: "b"}
	ok.check(bad)
	if len(problems) != 0 || ok.TLS != "implicit" {
		t.Errorf("a certificate alone: %v, tls %q (want implicit)", problems, ok.TLS)
	}
	_, _, err := imapView(&imapConfig{Listen: "0.0.0.0:0"}, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "loopback address only") {
		t.Errorf("plain IMAP on 0.0.0.0: %v", err)
	}
}
