//go:build linux

package harvest_test

// The same integration tests against every seed server: Dovecot
// (harvest/dovecottest), Cyrus and Courier (harvest/chroottest, each in a
// debootstrap root of its own). Behaviour that differs between them is
// written down in docs/servers.md; here each test states what must hold on
// all three: a cold harvest byte-equal to the BODY[] each server serves,
// append → searchable while idle, flag changes, expunges, a new
// UIDVALIDITY and a server restart in the middle of a catch-up.

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"mailvault/harvest"
	"mailvault/harvest/chroottest"
	"mailvault/harvest/dovecottest"
	"mailvault/harvest/harvesttest"
	"mailvault/indexer/mailfile/corpustest"
	"mailvault/service"
)

// seedServer is what these tests need of a server, whatever its kind.
type seedServer interface {
	harvesttest.Server
	// Mailbox is the server's name of a personal folder ("a" or "INBOX.a").
	Mailbox(folder string) string
	Append(t testing.TB, user, mailbox string, raw []byte, flags ...string) uint32
	SetFlags(t testing.TB, user, mailbox string, uid uint32, flags ...string)
	Expunge(t testing.TB, user, mailbox string, uid uint32)
	UIDValidity(t testing.TB, user, mailbox string) uint32
	// RenewUIDValidity gives the mailbox a new UIDVALIDITY and returns it.
	RenewUIDValidity(t testing.TB, user, mailbox string) uint32
	LoadMaildir(t testing.TB, user, mailbox, dir string) int
	Restart() error
}

// dovecotSeed adapts dovecottest's Server: folders keep their names
// (separator "/"), and a new UIDVALIDITY is set with doveadm (UIDs kept).
type dovecotSeed struct{ *dovecottest.Server }

func (d dovecotSeed) Mailbox(folder string) string { return folder }

func (d dovecotSeed) RenewUIDValidity(t testing.TB, user, mailbox string) uint32 {
	v := d.UIDValidity(t, user, mailbox) + 1000
	d.ChangeUIDValidity(t, user, mailbox, v)
	return v
}

var (
	_ seedServer = dovecotSeed{}
	_ seedServer = (*chroottest.Server)(nil)
)

var seedKinds = []string{"dovecot", "cyrus", "courier"}

func startSeed(t *testing.T, kind string) seedServer {
	t.Helper()
	switch kind {
	case "dovecot":
		return dovecotSeed{dovecottest.Start(t, nil)}
	case "cyrus":
		return chroottest.StartCyrus(t, nil)
	default:
		return chroottest.StartCourier(t, nil)
	}
}

// TestSeedCorpusColdHarvest harvests the SpamAssassin corpus (5 folders,
// 6,046 messages) from Cyrus and from Courier: every folder ends with the server's
// count, every occurrence hashes to the BODY[] the server serves for its
// UID, every blob is that BODY[] byte for byte, and verify passes.
func TestSeedCorpusColdHarvest(t *testing.T) {
	root := corpustest.Maildir(t)
	folders := []string{"easy-ham-1", "easy-ham-2", "hard-ham-1", "spam-1", "spam-2"}
	// Dovecot's corpus harvest is TestDovecotCorpusColdHarvest (with the
	// progress and status checks): not run twice.
	for _, kind := range []string{"cyrus", "courier"} {
		t.Run(kind, func(t *testing.T) {
			srv := startSeed(t, kind)
			log := dcLogger(t)
			begin := time.Now()
			want := map[string]int{}
			total := 0
			for _, f := range folders {
				n := srv.LoadMaildir(t, "alice", srv.Mailbox(f), filepath.Join(root, "."+f))
				want["alice/"+srv.Mailbox(f)] = n
				total += n
			}
			t.Logf("%s: loaded %d corpus messages in %v", kind, total, time.Since(begin).Round(time.Millisecond))
			a := harvesttest.OpenArchive(t, t.TempDir())
			h := dcStart(t, context.Background(), harvesttest.Account(t, srv, "alice", "alice"), service.NewSink(a.Archive), &harvest.Options{Logger: log})
			took := dcWaitFor(t, 120*time.Second, "the archive to hold every message", func() (bool, string) {
				return dcArchived(t, a, want)
			})
			t.Logf("%s: cold harvest of %d messages: %v (%.0f msg/s)", kind, total, took.Round(time.Millisecond), float64(total)/took.Seconds())
			h.stop(t)
			st := harvesttest.Status(t, a)
			occs := harvesttest.Occurrences(t, a)
			distinct := map[string]bool{}
			for _, f := range folders {
				mb := srv.Mailbox(f)
				server := harvesttest.CheckAgainstServer(t, srv, a, occs, "alice", "alice", mb, st["alice/"+mb].UIDValidity, true)
				for _, body := range server {
					distinct[shaHex(body)] = true
				}
			}
			seen := 0
			for _, o := range occs {
				if slices.Contains(strings.Fields(o.Flags), `\Seen`) {
					seen++
				}
			}
			if len(occs) != total || seen != total {
				t.Errorf("catalog: %d occurrences, %d with \\Seen; want %d, all \\Seen", len(occs), seen, total)
			}
			dcVerify(t, a, len(distinct), false)
		})
	}
}

// TestSeedChanges runs the life of one account on each server: append while
// idle (searchable within 5 s, with a poll interval of a minute so that
// only IDLE, or the harvester's own check, can find it), a flag change, an
// expunge, a new UIDVALIDITY on a folder (new epoch, old occurrences kept,
// no second blob), and a restart of the server in the middle of a
// catch-up.
func TestSeedChanges(t *testing.T) {
	for _, kind := range seedKinds {
		t.Run(kind, func(t *testing.T) {
			srv := startSeed(t, kind)
			log := dcLogger(t)
			inbox, arch := "INBOX", srv.Mailbox("Archive")
			for i := 1; i <= 5; i++ {
				srv.Append(t, "alice", arch, harvesttest.Message("sarch", i))
			}
			a := harvesttest.OpenArchive(t, t.TempDir())
			acct := harvesttest.Account(t, srv, "alice", "alice")
			acct.PollInterval = time.Minute
			opts := dcFastBackoff(log)
			h := dcStart(t, context.Background(), acct, service.NewSink(a.Archive), opts)
			dcWaitFor(t, 20*time.Second, "the first harvest", func() (bool, string) {
				return dcArchived(t, a, map[string]int{"alice/" + arch: 5})
			})
			idle := func() {
				dcWaitFor(t, 20*time.Second, "IDLE on INBOX", func() (bool, string) {
					st := h.Status()
					return st.State == "harvesting" && st.Mailboxes["INBOX"].State == "idle", fmt.Sprintf("%+v", st)
				})
			}

			// Append → searchable while idle.
			var latencies []time.Duration
			var uids []uint32
			for i := 1; i <= 3; i++ {
				idle()
				begin := time.Now()
				uids = append(uids, srv.Append(t, "alice", inbox, harvesttest.Message("sidle", i)))
				dcWaitFor(t, 90*time.Second, "the appended message to be searchable", func() (bool, string) {
					n := len(harvesttest.Search(t, a, harvesttest.Marker("sidle", i)))
					return n == 1, fmt.Sprintf("%d hits", n)
				})
				latencies = append(latencies, time.Since(begin))
			}
			t.Logf("%s: APPEND → searchable while idle: %v", kind, latencies)
			// A server whose IDLE only polls (Courier without FAM) is found
			// out by the first mail (the harvester's 15 s learning check,
			// harvest/idlecheck.go); from the second on, its 2 s check.
			// A first mail that the harvester finds in the moment an IDLE
			// restarts (an IDLE shorter than idleMinJudged, or the check
			// before IDLE) is not judged, and then the second mail is the
			// first judged one (about one run in five, on Courier): the
			// third is always within the 2 s check.
			for i, l := range latencies {
				if limit := map[bool]time.Duration{true: 20 * time.Second, false: 5 * time.Second}[i < 2]; l > limit {
					t.Errorf("%s: append %d searchable after %v, want < %v", kind, i+1, l.Round(time.Millisecond), limit)
				}
			}
			// The rest with the usual 1 s poll of the test account: flags
			// on a server without CONDSTORE, and a polled folder, are seen
			// by polls.
			h.stop(t)
			acct.PollInterval = time.Second
			h = dcStart(t, context.Background(), acct, service.NewSink(a.Archive), opts)
			occ := func(mb string, uid uint32) (harvesttest.Occ, bool) {
				for _, o := range harvesttest.Occurrences(t, a) {
					if o.Mailbox == mb && o.UID == uid && o.UIDValidity == srv.UIDValidity(t, "alice", mb) {
						return o, true
					}
				}
				return harvesttest.Occ{}, false
			}

			// A flag change, then an expunge, reach the catalog (the
			// harvester sees them while idling, or at its next check).
			idle()
			srv.SetFlags(t, "alice", inbox, uids[0], `\Flagged`, `\Answered`)
			took := dcWaitFor(t, 90*time.Second, "the flag change in the catalog", func() (bool, string) {
				o, _ := occ(inbox, uids[0])
				f := strings.Fields(o.Flags)
				return slices.Contains(f, `\Flagged`) && slices.Contains(f, `\Answered`), o.Flags
			})
			t.Logf("%s: flag change archived after %v", kind, took.Round(time.Millisecond))
			idle()
			srv.Expunge(t, "alice", inbox, uids[1])
			took = dcWaitFor(t, 90*time.Second, "the expunge in the catalog", func() (bool, string) {
				o, _ := occ(inbox, uids[1])
				return o.Expunged != "", fmt.Sprintf("%+v", o)
			})
			t.Logf("%s: expunge archived after %v", kind, took.Round(time.Millisecond))

			// A new UIDVALIDITY on the polled folder.
			oldV := srv.UIDValidity(t, "alice", arch)
			blobs := dcBlobCount(t, a)
			newV := srv.RenewUIDValidity(t, "alice", arch)
			took = dcWaitFor(t, 90*time.Second, "the new epoch of "+arch, func() (bool, string) {
				s := harvesttest.Status(t, a)["alice/"+arch]
				return s.UIDValidity == newV && s.Occurrences == 10, fmt.Sprintf("uidvalidity %d archived %d", s.UIDValidity, s.Occurrences)
			})
			t.Logf("%s: UIDVALIDITY %d → %d archived after %v", kind, oldV, newV, took.Round(time.Millisecond))
			if got := dcBlobCount(t, a); got != blobs {
				t.Errorf("%s: %d blobs after the new epoch, %d before: identical content stored twice", kind, got, blobs)
			}
			occs := harvesttest.Occurrences(t, a)
			old := 0
			for _, o := range occs {
				if o.Mailbox == arch && o.UIDValidity == oldV {
					old++
				}
			}
			if old != 5 {
				t.Errorf("%s: %d occurrences of the old epoch %d, want 5 (kept)", kind, old, oldV)
			}
			harvesttest.CheckAgainstServer(t, srv, a, occs, "alice", "alice", arch, newV, true)

			// A server restart in the middle of a catch-up of 300 messages.
			h.stop(t)
			big := srv.Mailbox("Big")
			srv.LoadMaildir(t, "alice", big, harvesttest.Maildir(t, harvesttest.Messages("sbig", 300)))
			var stored atomic.Int64
			restarted := make(chan error, 1)
			sink := &seedCountingSink{Sink: service.NewSink(a.Archive), n: &stored, at: 50, hook: func() { restarted <- srv.Restart() }}
			h = dcStart(t, context.Background(), acct, sink, opts)
			select {
			case err := <-restarted:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(60 * time.Second):
				t.Fatal("the catch-up of Big never stored 50 messages")
			}
			took = dcWaitFor(t, 90*time.Second, "Big archived after the restart", func() (bool, string) {
				return dcArchived(t, a, map[string]int{"alice/" + big: 300})
			})
			t.Logf("%s: server restarted once %d messages of the catch-up were stored; Big complete %v after the restart", kind, sink.restartedAt, took.Round(time.Millisecond))
			if sink.restartedAt >= 300 {
				t.Errorf("%s: the restart came after the catch-up (%d stored), not in its middle", kind, sink.restartedAt)
			}
			h.stop(t)
			st := harvesttest.Status(t, a)
			harvesttest.CheckAgainstServer(t, srv, a, harvesttest.Occurrences(t, a), "alice", "alice", big, st["alice/"+big].UIDValidity, true)
			if hs := h.Status(); hs.Counters.Logins < 2 {
				t.Errorf("%s: %d logins, want a reconnect after the restart", kind, hs.Counters.Logins)
			}
		})
	}
}

// seedCountingSink counts the messages stored through it and, once at
// least at are stored, calls hook (the server's restart) from inside Store:
// the harvester is then in the middle of a catch-up, with the next chunk
// still to fetch.
type seedCountingSink struct {
	harvest.Sink
	n           *atomic.Int64
	at          int64
	hook        func()
	restartedAt int64
}

func (s *seedCountingSink) Store(ctx context.Context, msgs []harvest.Message) error {
	err := s.Sink.Store(ctx, msgs)
	if err == nil {
		n := s.n.Add(int64(len(msgs)))
		if s.hook != nil && n >= s.at {
			s.restartedAt = n
			s.hook()
			s.hook = nil
		}
	}
	return err
}
