package service

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"mailvault/indexer"
	"mailvault/indexer/catalog"
)

// The scoping test is differential: a user who sees only account alice
// must get, for every query, exactly what an admin gets from an archive
// that holds only alice's copies of the same mail. Totals, facets, hits and
// occurrences must agree; anything else would tell the user something of
// the other accounts (which of her messages they hold, their mailbox
// names, how many hidden messages match).

// scopeCorpus is generated mail in three accounts: alice's own, some also
// in bob's (in mailboxes of the same and of other names), and some only in
// bob's or carol's, among them a mailbox name that only bob has.
type scopeCopy struct {
	account, mailbox string
	uid              uint32
	raw              []byte
}

func scopeCorpus() []scopeCopy {
	rng := rand.New(rand.NewPCG(7, 11))
	words := []string{"budget", "merger", "invoice", "lunch", "audit", "secret", "quarterly", "offsite"}
	senders := []string{"zed@example.org", "yan@example.com", "xia@example.net", "wu@example.org"}
	uids := map[string]uint32{}
	var out []scopeCopy
	add := func(account, mailbox string, raw []byte) {
		k := account + "/" + mailbox
		uids[k]++
		out = append(out, scopeCopy{account, mailbox, uids[k], raw})
	}
	for i := range 120 {
		w1, w2 := words[rng.IntN(len(words))], words[rng.IntN(len(words))]
		from := senders[rng.IntN(len(senders))]
		month := 1 + rng.IntN(12)
		var raw []byte
		if rng.IntN(4) == 0 {
			raw = fmt.Appendf(nil, "From: %s\r\nTo: team@example.org\r\nSubject: %s %d\r\nDate: Mon, 4 %s 2024 10:00:00 +0000\r\n"+
				"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n%s about %s\r\n"+
				"--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=%s.bin\r\n\r\nxyz\r\n--b--\r\n",
				from, w1, i, monthName(month), w2, w1, w2)
		} else {
			raw = fmt.Appendf(nil, "From: %s\r\nTo: team@example.org\r\nSubject: %s %d\r\nDate: Mon, 4 %s 2024 10:00:00 +0000\r\n\r\n%s about %s\r\n",
				from, w1, i, monthName(month), w2, w1)
		}
		switch r := rng.IntN(10); {
		case r < 4: // alice only
			add("alice", []string{"INBOX", "Shared", "Archive"}[rng.IntN(3)], raw)
		case r < 6: // alice and bob, same mailbox name or not
			add("alice", "INBOX", raw)
			add("bob", []string{"INBOX", "Secret", "Shared"}[rng.IntN(3)], raw)
		case r < 7: // alice twice
			add("alice", "INBOX", raw)
			add("alice", "Archive", raw)
		case r < 9: // bob only, often in the mailbox only bob has
			add("bob", []string{"INBOX", "Secret"}[rng.IntN(2)], raw)
		default: // carol and bob
			add("carol", "INBOX", raw)
			add("bob", "Secret", raw)
		}
	}
	return out
}

func monthName(m int) string {
	return []string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}[m-1]
}

// openScopeArchive ingests the copies keep selects into a new archive.
func openScopeArchive(t *testing.T, copies []scopeCopy, keep func(scopeCopy) bool) *Service {
	t.Helper()
	a, err := indexer.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	ctx := context.Background()
	var items []indexer.Item
	for _, c := range copies {
		if !keep(c) {
			continue
		}
		if _, err := a.EnsureMailbox(ctx, c.account, c.mailbox, catalog.SourceImport, 9); err != nil {
			t.Fatal(err)
		}
		items = append(items, indexer.Item{Account: c.account, Mailbox: c.mailbox, UIDValidity: 9, UID: c.uid, Raw: c.raw})
	}
	if _, err := a.Ingest(ctx, items); err != nil {
		t.Fatal(err)
	}
	// The attachments' text too: an export made while it is pending says
	// so (an exclusion), and the tests compare exports made one after
	// the other.
	if err := a.WaitExtracts(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	users, err := OpenUsers(a.Dir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { users.Close() })
	return New(a, &Options{Users: users})
}

// scopeQueries are human-syntax queries built from every account and
// mailbox name (real and unknown), alone, negated, combined with words and
// with each other.
func scopeQueries() []string {
	accounts := []string{"alice", "bob", "carol", "nosuch"}
	mailboxes := []string{"INBOX", "Secret", "Shared", "Archive", "nosuch"}
	var qs []string
	for _, a := range accounts {
		qs = append(qs, "account:"+a, "-account:"+a, "budget account:"+a, "budget OR account:"+a, "-account:"+a+" merger")
		for _, m := range mailboxes {
			qs = append(qs, "account:"+a+" mailbox:"+m, "account:"+a+" -mailbox:"+m, "(account:"+a+" OR mailbox:"+m+") invoice")
		}
	}
	for _, m := range mailboxes {
		qs = append(qs, "mailbox:"+m, "-mailbox:"+m, "audit mailbox:"+m, "mailbox:"+m+" OR secret", "-mailbox:"+m+" -lunch")
	}
	return append(qs, "budget", "-budget", "has:attachment", "from:example.org", "secret OR merger", "-account:bob -account:carol")
}

func TestScopeIsTheArchiveOfOnlyTheirAccounts(t *testing.T) {
	copies := scopeCorpus()
	full := openScopeArchive(t, copies, func(scopeCopy) bool { return true })
	alone := openScopeArchive(t, copies, func(c scopeCopy) bool { return c.account == "alice" })
	alice := Caller{Name: "ann", Role: RoleUser, Accounts: []string{"alice"}}
	admin := Caller{Name: "root", Role: RoleAdmin}
	ctx := context.Background()
	nonEmpty := 0
	for _, q := range scopeQueries() {
		for _, sort := range []bool{false, true} {
			req := SearchRequest{Query: q, Limit: 1000, Facets: true, ByRelevance: sort}
			got, err := full.Search(ctx, alice, req)
			if err != nil {
				t.Fatalf("alice: %q: %v", q, err)
			}
			want, err := alone.Search(ctx, admin, req)
			if err != nil {
				t.Fatalf("admin of alice's archive: %q: %v", q, err)
			}
			if got.Total > 0 {
				nonEmpty++
			}
			if got.Total != want.Total {
				t.Errorf("%q: alice's total %d, want %d (the matches in her accounts alone)", q, got.Total, want.Total)
			}
			if !reflect.DeepEqual(sortedFacets(got.Facets), sortedFacets(want.Facets)) {
				t.Errorf("%q: alice's facets\n%+v\nwant\n%+v", q, got.Facets, want.Facets)
			}
			if g, w := hitPlaces(got.Hits), hitPlaces(want.Hits); !slices.Equal(g, w) {
				t.Errorf("%q: alice's hits %v, want %v", q, g, w)
			}
		}
	}
	if nonEmpty < 40 {
		t.Errorf("only %d queries matched anything: the corpus does not exercise scoping", nonEmpty)
	}
	// The IMAP syntax: the mailboxes in scope are alice's, and their answers
	// are those of her archive alone.
	for _, q := range []string{"ALL", `BODY "budget"`, `OR SUBJECT "merger" FROM "zed"`, `NOT BODY "lunch"`} {
		req := SearchRequest{Query: q, Syntax: SyntaxIMAP, Limit: 1000}
		got, err := full.Search(ctx, alice, req)
		if err != nil {
			t.Fatal(err)
		}
		want, err := alone.Search(ctx, admin, req)
		if err != nil {
			t.Fatal(err)
		}
		if got.Total != want.Total || !slices.Equal(hitPlaces(got.Hits), hitPlaces(want.Hits)) {
			t.Errorf("IMAP %q: alice %d %v, want %d %v", q, got.Total, hitPlaces(got.Hits), want.Total, hitPlaces(want.Hits))
		}
	}
	// Asking for another account answers as if it did not exist.
	for _, acct := range []string{"bob", "nosuch"} {
		_, err := full.Search(ctx, alice, SearchRequest{Query: "budget", Accounts: []string{acct}})
		if err == nil || !errorIs(err, ErrNotFound) || err.Error() != "no such account: "+acct {
			t.Errorf("alice asks for account %s: %v, want ErrNotFound no such account", acct, err)
		}
	}
}

func errorIs(err, target error) bool {
	for ; err != nil; err = unwrap(err) {
		if err == target {
			return true
		}
	}
	return false
}

func unwrap(err error) error {
	u, ok := err.(interface{ Unwrap() error })
	if !ok {
		return nil
	}
	return u.Unwrap()
}

// hitPlaces is "sha256 account/mailbox/uid" for every occurrence of every hit, sorted.
func hitPlaces(hits []Hit) []string {
	var out []string
	for _, h := range hits {
		for _, o := range h.Occurrences {
			out = append(out, fmt.Sprintf("%.12s %s/%s/%d", h.SHA256, o.Account, o.Mailbox, o.UID))
		}
	}
	slices.Sort(out)
	return out
}

func sortedFacets(f *indexer.Facets) *indexer.Facets {
	if f == nil {
		return nil
	}
	g := *f
	g.Places = slices.Clone(f.Places)
	slices.SortFunc(g.Places, func(a, b indexer.PlaceCount) int {
		return cmpStrings(a.Account+"\x00"+a.Mailbox, b.Account+"\x00"+b.Mailbox)
	})
	if len(g.Places) == 0 {
		g.Places = nil
	}
	return &g
}

func cmpStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// TestNotFoundTakesTheSameTime: "no such message" for a message of another
// account and for one that does not exist both take at least notFoundFloor,
// so that timing does not tell them apart (the review measured a 55 µs gap).
func TestNotFoundTakesTheSameTime(t *testing.T) {
	copies := scopeCorpus()
	full := openScopeArchive(t, copies, func(scopeCopy) bool { return true })
	alice := Caller{Name: "ann", Role: RoleUser, Accounts: []string{"alice"}}
	var foreign string
	for _, c := range copies {
		if c.account == "carol" {
			foreign = fmt.Sprintf("%x", sha256.Sum256(c.raw))
			break
		}
	}
	ctx := context.Background()
	for name, id := range map[string]string{"foreign": foreign, "missing": strings.Repeat("ab", 32), "malformed": "zz"} {
		for range 5 {
			begin := time.Now()
			_, err := full.Message(ctx, alice, id)
			if d := time.Since(begin); !errorIs(err, ErrNotFound) || d < notFoundFloor {
				t.Errorf("%s message: %v after %v; want ErrNotFound after at least %v", name, err, d, notFoundFloor)
			}
		}
	}
}
