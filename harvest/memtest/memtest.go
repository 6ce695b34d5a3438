// Package memtest starts go-imap's in-process IMAP server (imapmemserver) for
// fast tests of the harvester: one user, alice / secret, with an INBOX, on a
// free loopback port, clear text. Tests against a real server use
// harvest/dovecottest.
package memtest

import (
	"net"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

// User and Password are the one account of the server.
const (
	User     = "alice"
	Password = "secret"
)

// Start starts a server that stops when the test ends, and returns its address.
func Start(t testing.TB) string {
	t.Helper()
	mem := imapmemserver.New()
	u := imapmemserver.NewUser(User, Password)
	if err := u.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	mem.AddUser(u)
	addr, stop, err := Serve(mem)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return addr.String()
}

// Append adds raw to mailbox (created when missing) as the user.
func Append(t testing.TB, addr, mailbox string, raw []byte) {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(User, Password).Wait(); err != nil {
		t.Fatal(err)
	}
	c.Create(mailbox, nil).Wait() // may exist
	cmd := c.Append(mailbox, int64(len(raw)), nil)
	cmd.Write(raw)
	cmd.Close()
	if _, err := cmd.Wait(); err != nil {
		t.Fatalf("append to %s: %v", mailbox, err)
	}
}

// Serve serves mem on a free loopback port, clear text, until stop is
// called (the tests' server, and `mailvault demo`'s).
func Serve(mem *imapmemserver.Server) (addr *net.TCPAddr, stop func(), err error) {
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}},
		InsecureAuth: true,
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	go srv.Serve(ln)
	return ln.Addr().(*net.TCPAddr), func() { srv.Close() }, nil
}
