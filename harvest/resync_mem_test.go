package harvest_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"mailvault/harvest"
	"mailvault/harvest/harvesttest"
	"mailvault/harvest/memtest"
	"mailvault/service"
)

// TestResyncWithoutCondstore: go-imap's imapmemserver has no CONDSTORE,
// so flag changes and expunges, in the IDLE mailbox and in a polled one,
// reach the archive by the full sweep (every FlagSweep for the polled
// one), never by CHANGEDSINCE or QRESYNC.
func TestResyncWithoutCondstore(t *testing.T) {
	addr := memtest.Start(t)
	for i := range 4 {
		memtest.Append(t, addr, "INBOX", harvesttest.Message("nci", i+1))
		memtest.Append(t, addr, "Archive", harvesttest.Message("nca", i+1))
	}
	a := harvesttest.OpenArchive(t, t.TempDir())
	host, port, _ := net.SplitHostPort(addr)
	var p int
	fmt.Sscan(port, &p)
	acct := harvest.Account{Name: "alice", Host: host, Port: p, TLS: "none", Username: memtest.User, Password: memtest.Password,
		Idle: []string{"INBOX"}, PollInterval: 200 * time.Millisecond}
	h := harvest.New(acct, service.NewSink(a.Archive), &harvest.Options{FlagSweep: 300 * time.Millisecond,
		MinBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	occ := func(mb string, uid uint32) harvesttest.Occ {
		for _, o := range harvesttest.Occurrences(t, a) {
			if o.Mailbox == mb && o.UID == uid {
				return o
			}
		}
		return harvesttest.Occ{}
	}
	harvesttest.WaitFor(t, 10*time.Second, "archived", func() (bool, string) {
		return occ("INBOX", 4).SHA256 != "" && occ("Archive", 4).SHA256 != "", fmt.Sprintf("%+v", h.Status())
	})
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(memtest.User, memtest.Password).Wait(); err != nil {
		t.Fatal(err)
	}
	if c.Caps().Has(imap.CapCondStore) {
		t.Fatal("imapmemserver offers CONDSTORE now: this test needs a server without it")
	}
	for _, mb := range []string{"INBOX", "Archive"} {
		if _, err := c.Select(mb, nil).Wait(); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Store(imap.UIDSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsSet, Flags: []imap.Flag{imap.FlagFlagged}}, nil).Collect(); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Store(imap.UIDSetNum(3), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Collect(); err != nil {
			t.Fatal(err)
		}
		if err := c.UIDExpunge(imap.UIDSetNum(3)).Close(); err != nil {
			t.Fatal(err)
		}
	}
	harvesttest.WaitFor(t, 10*time.Second, "the changes in both mailboxes", func() (bool, string) {
		ok := true
		for _, mb := range []string{"INBOX", "Archive"} {
			ok = ok && occ(mb, 2).Flags == `\Flagged` && occ(mb, 3).Expunged != "" && occ(mb, 1).Expunged == ""
		}
		return ok, fmt.Sprintf("%+v", harvesttest.Occurrences(t, a))
	})
	if c := h.Status().Counters; c.Sweeps == 0 || c.ChangedSince != 0 || c.QResyncs != 0 {
		t.Errorf("counters %+v: want sweeps only", c)
	}
}
