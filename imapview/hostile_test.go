package imapview

// A hostile review of the IMAP view (issue 18): what a user with a valid
// login to one account, or a client with none, could do that they should
// not. Each test names the attack it replays and asserts the bound or the
// refusal; each failed before the fix that comes with it.

import (
	"context"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapserver"

	"mailvault/indexer"
)

// allocated returns what f allocated in the whole process (the server
// runs in it) and how long it took.
func allocated(f func()) (bytes uint64, took time.Duration) {
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	t0 := time.Now()
	f()
	took = time.Since(t0)
	runtime.ReadMemStats(&m1)
	return m1.TotalAlloc - m0.TotalAlloc, took
}

func (s *rawSession) login(user, pass string) {
	s.t.Helper()
	if _, ok := s.cmd("LOGIN %s %s", user, pass); !strings.HasPrefix(ok, "OK") {
		s.t.Fatalf("login %s: %s", user, ok)
	}
}

// addFolder archives n messages into account's mailbox at UIDs 1, 3, 5 ...
// (odd UIDs, so that no two are consecutive and a UID set of them is as
// long as it can be).
func (f *fixture) addFolder(t *testing.T, account, mailbox string, uv uint32, n int, raw func(i int) []byte) []uint32 {
	t.Helper()
	ctx := context.Background()
	if _, err := f.a.EnsureMailbox(ctx, account, mailbox, "imap", uv); err != nil {
		t.Fatal(err)
	}
	var items []indexer.Item
	var uids []uint32
	for i := 0; i < n; i++ {
		uid := uint32(2*i + 1)
		items = append(items, indexer.Item{Account: account, Mailbox: mailbox, UIDValidity: uv, UID: uid,
			InternalDate: time.Date(2023, 3, 1, 0, 0, 0, 0, time.UTC), Raw: raw(i)})
		uids = append(uids, uid)
	}
	if _, err := f.a.Ingest(ctx, items); err != nil {
		t.Fatal(err)
	}
	if err := f.a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	return uids
}

// TestHostileListPattern: go-imap's LIST matcher backtracks, so
// LIST "" "******...z" took exponential time per folder name (14 "*":
// 24 s on one name; 30: for good). The view's matcher must answer at once
// and agree with go-imap's on every pattern go-imap can answer.
func TestHostileListPattern(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	word := func(alphabet string, n int) string {
		b := make([]byte, rng.IntN(n+1))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return string(b)
	}
	for i := 0; i < 20000; i++ {
		name, ref, pattern := word("ab/", 7), word("a/", 3), word("ab/*%", 6)
		if got, want := matchList(name, ref, pattern), imapserver.MatchList(name, '/', ref, pattern); got != want {
			t.Fatalf("matchList(%q, ref %q, %q) = %v, imapserver.MatchList: %v", name, ref, pattern, got, want)
		}
	}

	f := newFixture(t)
	s := dialRaw(t, f.addr)
	s.login("alice", "alice-password-1")
	var un []string
	var ans string
	_, took := allocated(func() { un, ans = s.cmd(`LIST "" "%s"`, strings.Repeat("*", 40)+"z") })
	if !strings.HasPrefix(ans, "OK") || len(un) != 0 || took > 2*time.Second {
		t.Errorf(`LIST "" "*...*z" (40 stars): %q %q after %v, want OK, nothing listed, at once`, un, ans, took)
	}
	if un, _ := s.cmd(`LIST "" "%s"`, strings.Repeat("*%", 20)+"2024"); len(un) != 1 || !strings.Contains(un[0], `"alice/Archive/2024"`) {
		t.Errorf(`LIST "" "*%%*%%...2024": %q, want alice/Archive/2024`, un)
	}
	if un, _ := s.cmd(`LIST alice/ %%`); len(un) != 3 {
		t.Errorf(`LIST alice/ %%: %q, want alice/Archive, alice/INBOX and its epoch`, un)
	}
}
