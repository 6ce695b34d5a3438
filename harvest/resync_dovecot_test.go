//go:build unix

package harvest_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"

	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"mailvault/harvest"
	"mailvault/harvest/dovecottest"
	"mailvault/harvest/harvesttest"
	"mailvault/service"
)

// wireProxy relays IMAP connections to a server on loopback and counts
// what crosses it: bytes each way, and the server's FETCH and VANISHED
// responses. It can hide capabilities from the client (hide: e.g.
// "QRESYNC" is sent as "XRESYNC"), so one Dovecot plays a server without
// QRESYNC, or without CONDSTORE.
type wireProxy struct {
	ln     net.Listener
	target string
	hide   []string

	mu                 sync.Mutex
	up, down           int64 // bytes client→server, server→client
	fetches, vanisheds int
	clientText         bytes.Buffer // what clients sent, outside nothing (small tests)
	connections        int
}

var wireFetch = regexp.MustCompile(`^\* \d+ FETCH `)

func startWireProxy(t testing.TB, target string, hide ...string) *wireProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &wireProxy{ln: ln, target: target, hide: hide}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.connections++
			p.mu.Unlock()
			go p.clientToServer(c, s)
			go p.serverToClient(s, c)
		}
	}()
	return p
}

func (p *wireProxy) clientToServer(c, s net.Conn) {
	defer s.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			p.mu.Lock()
			p.up += int64(n)
			if p.clientText.Len() < 8<<20 {
				p.clientText.Write(buf[:n])
			}
			p.mu.Unlock()
			if _, werr := s.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// serverToClient relays line by line (literals pass as lines too: their
// bytes are not changed unless a line of them names a capability, which
// the test messages do not).
func (p *wireProxy) serverToClient(s, c net.Conn) {
	defer c.Close()
	r := bufio.NewReaderSize(s, 64<<10)
	for {
		line, err := r.ReadSlice('\n')
		if len(line) > 0 {
			if len(p.hide) > 0 && bytes.Contains(line, []byte("CAPABILITY")) {
				for _, h := range p.hide {
					line = bytes.ReplaceAll(line, []byte(" "+h), []byte(" X"+h[1:]))
				}
			}
			p.mu.Lock()
			p.down += int64(len(line))
			if wireFetch.Match(line) {
				p.fetches++
			}
			if bytes.HasPrefix(line, []byte("* VANISHED")) {
				p.vanisheds++
			}
			p.mu.Unlock()
			if _, werr := c.Write(line); werr != nil {
				return
			}
		}
		if err != nil && err != bufio.ErrBufferFull {
			return
		}
	}
}

// wireCount is what crossed the proxy from some moment on.
type wireCount struct {
	up, down           int64
	fetches, vanisheds int
	sent               string
}

func (p *wireProxy) mark() wireCount {
	p.mu.Lock()
	defer p.mu.Unlock()
	return wireCount{up: p.up, down: p.down, fetches: p.fetches, vanisheds: p.vanisheds, sent: p.clientText.String()}
}

// since is what crossed since m.
func (p *wireProxy) since(m wireCount) wireCount {
	n := p.mark()
	return wireCount{up: n.up - m.up, down: n.down - m.down, fetches: n.fetches - m.fetches,
		vanisheds: n.vanisheds - m.vanisheds, sent: n.sent[min(len(m.sent), len(n.sent)):]}
}

func (p *wireProxy) account(t testing.TB, srv *dovecottest.Server, name, user string) harvest.Account {
	acct := harvesttest.Account(t, srv, name, user)
	acct.Port = p.ln.Addr().(*net.TCPAddr).Port
	return acct
}

// sweepSent reports whether a full UID+FLAGS sweep was asked for.
func sweepSent(sent string) bool {
	for _, l := range strings.Split(sent, "\n") {
		if strings.Contains(l, "UID FETCH 1:* (UID FLAGS)") && !strings.Contains(l, "CHANGEDSINCE") {
			return true
		}
	}
	return false
}

// TestDovecotResync: on Dovecot, a flag change and an expunge cost what
// changed, not the mailbox size: a flag change the changed message
// (CHANGEDSINCE); an expunge one QRESYNC EXAMINE (VANISHED), or with
// QRESYNC hidden a compact UID SEARCH; without CONDSTORE (hidden) the full
// sweep. The search sees the new flags; a restart of the harvester keeps
// the recorded HIGHESTMODSEQ, so it does not sweep again; IDLE's mailbox
// follows as well as a polled one.
func TestDovecotResync(t *testing.T) {
	const n = 300
	for _, tc := range []struct {
		name string
		hide []string
	}{
		{"qresync", nil},
		{"changedsince", []string{"QRESYNC"}},
		{"sweep", []string{"QRESYNC", "CONDSTORE"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := dovecottest.Start(t, nil)
			srv.LoadMaildir(t, "alice", "INBOX", harvesttest.Maildir(t, harvesttest.Messages("rsin", 5)))
			srv.LoadMaildir(t, "alice", "Big", harvesttest.Maildir(t, harvesttest.Messages("rsbig", n)))
			log := dcLogger(t)
			p := startWireProxy(t, srv.Addr, tc.hide...)
			dir := t.TempDir()
			a := harvesttest.OpenArchive(t, dir)
			acct := p.account(t, srv, "alice", "alice") // IDLE on INBOX, Big polled every second
			opts := dcFastBackoff(log)
			opts.FlagSweep = time.Second // without CONDSTORE, a polled mailbox's flags are swept this often
			h := dcStart(t, context.Background(), acct, service.NewSink(a.Archive), opts)
			dcWaitFor(t, 20*time.Second, "both mailboxes archived", func() (bool, string) {
				return dcArchived(t, a, map[string]int{"alice/INBOX": 5, "alice/Big": n})
			})
			dcWaitFor(t, 5*time.Second, "INBOX idle", func() (bool, string) {
				return h.Status().Mailboxes["INBOX"].State == "idle", fmt.Sprintf("%+v", h.Status())
			})
			time.Sleep(1500 * time.Millisecond) // the first polls are past

			occ := func(mb string, uid uint32) harvesttest.Occ {
				for _, o := range harvesttest.Occurrences(t, a) {
					if o.Mailbox == mb && o.UID == uid {
						return o
					}
				}
				return harvesttest.Occ{}
			}
			// checkCost checks what one change cost on the wire.
			checkCost := func(what string, w wireCount, wantVanished bool) {
				t.Helper()
				t.Logf("%s: %d bytes up, %d down, %d FETCH, %d VANISHED responses", what, w.up, w.down, w.fetches, w.vanisheds)
				switch tc.name {
				case "sweep":
					if w.fetches < n-1 || !sweepSent(w.sent) {
						t.Errorf("%s: %d FETCH responses, sweep sent %v: want the full sweep without CONDSTORE", what, w.fetches, sweepSent(w.sent))
					}
				default:
					if sweepSent(w.sent) || w.fetches > 3 {
						t.Errorf("%s: %d FETCH responses, sweep sent %v: want only what changed\n%s", what, w.fetches, sweepSent(w.sent), w.sent)
					}
				}
				if got := w.vanisheds > 0; got != (wantVanished && tc.name == "qresync") {
					t.Errorf("%s: %d VANISHED responses", what, w.vanisheds)
				}
				if tc.name == "changedsince" && strings.Contains(w.sent, "QRESYNC") {
					t.Errorf("%s: QRESYNC used though hidden:\n%s", what, w.sent)
				}
			}

			m := p.mark()
			srv.SetFlags(t, "alice", "Big", 7, `\Flagged`)
			dcWaitFor(t, 10*time.Second, "the flag change of Big UID 7", func() (bool, string) {
				o := occ("Big", 7)
				return o.Flags == `\Flagged`, fmt.Sprintf("%+v", o)
			})
			checkCost("flag change", p.since(m), false)

			m = p.mark()
			srv.Expunge(t, "alice", "Big", 9)
			dcWaitFor(t, 10*time.Second, "the expunge of Big UID 9", func() (bool, string) {
				o := occ("Big", 9)
				return o.Expunged != "", fmt.Sprintf("%+v", o)
			})
			checkCost("expunge", p.since(m), true)

			srv.SetFlags(t, "alice", "INBOX", 2, `\Answered`, `\Seen`)
			srv.Expunge(t, "alice", "INBOX", 4)
			dcWaitFor(t, 10*time.Second, "INBOX's flag change and expunge (IDLE)", func() (bool, string) {
				o2, o4 := occ("INBOX", 2), occ("INBOX", 4)
				return o2.Flags == `\Answered \Seen` && o4.Expunged != "", fmt.Sprintf("%+v %+v", o2, o4)
			})
			c := h.Status().Counters
			t.Logf("counters: %+v", c)
			switch tc.name {
			case "qresync":
				// Flag changes by CHANGEDSINCE, expunges by QRESYNC (sync.go).
				if c.QResyncs == 0 || c.ChangedSince == 0 {
					t.Errorf("counters %+v: want QRESYNC for the expunges, CHANGEDSINCE for the flags", c)
				}
			case "changedsince":
				if c.ChangedSince == 0 || c.QResyncs != 0 {
					t.Errorf("counters %+v: want CHANGEDSINCE only", c)
				}
			}
			for _, o := range harvesttest.Occurrences(t, a) {
				gone := o.Mailbox == "Big" && o.UID == 9 || o.Mailbox == "INBOX" && o.UID == 4
				if (o.Expunged != "") != gone {
					t.Errorf("%s UID %d: expunged_at %q", o.Mailbox, o.UID, o.Expunged)
				}
			}
			h.stop(t)
			if err := a.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			hits := harvesttest.Search(t, a, "is:flagged")
			if len(hits) != 1 || hits[0].SHA256 != occ("Big", 7).SHA256 {
				t.Errorf("is:flagged after the change: %d hits %+v", len(hits), hits)
			}

			// A restart: the recorded HIGHESTMODSEQ is used; no sweep.
			m = p.mark()
			srv.SetFlags(t, "alice", "Big", 11, "$Later")
			h2 := dcStart(t, context.Background(), acct, service.NewSink(a.Archive), opts)
			dcWaitFor(t, 10*time.Second, "the change made while stopped", func() (bool, string) {
				o := occ("Big", 11)
				return o.Flags == "$Later", fmt.Sprintf("%+v", o)
			})
			w := p.since(m)
			c = h2.Status().Counters
			if tc.name != "sweep" && (c.Sweeps != 0 || sweepSent(w.sent)) {
				t.Errorf("after a restart: counters %+v, sweep sent %v: the recorded HIGHESTMODSEQ was not used", c, sweepSent(w.sent))
			}
			t.Logf("restart: %d bytes down, %d FETCH; counters %+v", w.down, w.fetches, c)
			h2.stop(t)
		})
	}
}

// TestDovecotResyncUIDValidity: a new UIDVALIDITY starts an epoch with
// no HIGHESTMODSEQ recorded. Dovecot 2.3 reports the mailbox without
// mod-sequences after "doveadm mailbox update --uid-validity" (no
// HIGHESTMODSEQ in EXAMINE): its flags are then swept every FlagSweep
// (not every poll), while the other mailbox keeps using CHANGEDSINCE.
func TestDovecotResyncUIDValidity(t *testing.T) {
	srv := dovecottest.Start(t, nil)
	srv.LoadMaildir(t, "alice", "INBOX", harvesttest.Maildir(t, harvesttest.Messages("rsu", 3)))
	srv.LoadMaildir(t, "alice", "Box", harvesttest.Maildir(t, harvesttest.Messages("rsv", 4)))
	log := dcLogger(t)
	a := harvesttest.OpenArchive(t, t.TempDir())
	acct := harvesttest.Account(t, srv, "alice", "alice")
	opts := dcFastBackoff(log)
	opts.FlagSweep = 6 * time.Second
	h := dcStart(t, context.Background(), acct, service.NewSink(a.Archive), opts)
	dcWaitFor(t, 10*time.Second, "archived", func() (bool, string) {
		return dcArchived(t, a, map[string]int{"alice/INBOX": 3, "alice/Box": 4})
	})
	old := srv.UIDValidity(t, "alice", "Box")
	srv.ChangeUIDValidity(t, "alice", "Box", old+100)
	inEpoch := func(uid uint32) harvesttest.Occ {
		for _, o := range harvesttest.Occurrences(t, a) {
			if o.Mailbox == "Box" && o.UIDValidity == old+100 && o.UID == uid {
				return o
			}
		}
		return harvesttest.Occ{}
	}
	dcWaitFor(t, 15*time.Second, "the new epoch archived", func() (bool, string) {
		return inEpoch(4).SHA256 != "", "not yet"
	})
	time.Sleep(500 * time.Millisecond)
	before := h.Status().Counters
	time.Sleep(2500 * time.Millisecond) // two polls: neither may sweep
	if c := h.Status().Counters; c.Sweeps != before.Sweeps {
		t.Errorf("sweeps %d → %d in two quiet polls of a NOMODSEQ mailbox: want a sweep per FlagSweep only", before.Sweeps, c.Sweeps)
	}
	srv.SetFlags(t, "alice", "Box", 2, `\Seen`)
	srv.SetFlags(t, "alice", "INBOX", 1, `\Flagged`)
	dcWaitFor(t, 10*time.Second, "the flag changes", func() (bool, string) {
		var o1 harvesttest.Occ
		for _, o := range harvesttest.Occurrences(t, a) {
			if o.Mailbox == "INBOX" && o.UID == 1 {
				o1 = o
			}
		}
		return inEpoch(2).Flags == `\Seen` && o1.Flags == `\Flagged`, inEpoch(2).Flags + " / " + o1.Flags
	})
	// The counters move after the Sink has recorded the flags (a resync
	// counts itself when it is done): wait for them too, or a loaded
	// machine sees the flags first (a CI run did).
	var after harvest.Counters
	dcWaitFor(t, 10*time.Second, "a sweep (Box) and CHANGEDSINCE (INBOX) counted", func() (bool, string) {
		after = h.Status().Counters
		return after.Sweeps > before.Sweeps && after.ChangedSince > before.ChangedSince, fmt.Sprintf("before %+v, after %+v", before, after)
	})
	for _, o := range harvesttest.Occurrences(t, a) {
		if o.Expunged != "" {
			t.Errorf("%s %d/%d expunged", o.Mailbox, o.UIDValidity, o.UID)
		}
	}
}

// TestDovecotMove: a message MOVEd (RFC 6851) on the server from one
// mailbox to another, polled or watched with IDLE, gains an occurrence in
// the target — the same blob, no second one — and its source occurrence
// is recorded expunged.
func TestDovecotMove(t *testing.T) {
	for _, tc := range []struct{ name, from, to string }{
		{"polled-to-idle", "Archive", "INBOX"},
		{"idle-to-polled", "INBOX", "Archive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := dovecottest.Start(t, nil)
			srv.LoadMaildir(t, "alice", "INBOX", harvesttest.Maildir(t, harvesttest.Messages("mvin", 3)))
			srv.LoadMaildir(t, "alice", "Archive", harvesttest.Maildir(t, harvesttest.Messages("mvar", 3)))
			log := dcLogger(t)
			a := harvesttest.OpenArchive(t, t.TempDir())
			acct := harvesttest.Account(t, srv, "alice", "alice")
			h := dcStart(t, context.Background(), acct, service.NewSink(a.Archive), dcFastBackoff(log))
			dcWaitFor(t, 10*time.Second, "archived", func() (bool, string) {
				return dcArchived(t, a, map[string]int{"alice/INBOX": 3, "alice/Archive": 3})
			})
			blobs := dcBlobCount(t, a)
			var sha string
			for _, o := range harvesttest.Occurrences(t, a) {
				if o.Mailbox == tc.from && o.UID == 2 {
					sha = o.SHA256
				}
			}
			c := srv.Dial(t, "alice")
			if !c.Caps().Has(imap.CapMove) {
				t.Fatalf("Dovecot without MOVE: %v", c.Caps())
			}
			if _, err := c.Select(tc.from, nil).Wait(); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Move(imap.UIDSetNum(2), tc.to).Wait(); err != nil {
				t.Fatal(err)
			}
			c.Logout().Wait()
			dcWaitFor(t, 10*time.Second, "the move in the archive", func() (bool, string) {
				var src, dst []harvesttest.Occ
				for _, o := range harvesttest.Occurrences(t, a) {
					if o.SHA256 != sha {
						continue
					}
					if o.Mailbox == tc.from {
						src = append(src, o)
					} else if o.Mailbox == tc.to {
						dst = append(dst, o)
					}
				}
				ok := len(src) == 1 && src[0].Expunged != "" && len(dst) == 1 && dst[0].Expunged == "" && dst[0].UID == 4
				return ok, fmt.Sprintf("source %+v, target %+v", src, dst)
			})
			if n := dcBlobCount(t, a); n != blobs {
				t.Errorf("%d blobs after the move, %d before: the moved message was stored again", n, blobs)
			}
			h.stop(t)
			dcVerify(t, a, 6, false)
		})
	}
}
