package service

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"mailvault/indexer"
	"mailvault/indexer/catalog"
)

// gapScopeArchive is an archive of generated accounts, each with mailboxes
// of names no other account has and a recorded gap check per mailbox whose
// missing UIDs are the account's own (account i's UIDs are i*1000+...), so
// that anything of an account in an answer can be told by its strings. It
// has a ledger, whose figures are archive-wide.
func gapScopeArchive(t *testing.T) (s *Service, accounts []string, secrets map[string][]string, mailboxes int) {
	t.Helper()
	ctx := context.Background()
	a, users := newArchive(t)
	rng := rand.New(rand.NewPCG(17, 4))
	accounts = []string{"kilo", "lima", "mike", "oscar", "papa"}
	secrets = map[string][]string{} // per account: strings only it has
	for i, acct := range accounts {
		secrets[acct] = []string{`"` + acct + `"`}
		for j := range 1 + rng.IntN(3) {
			mb := fmt.Sprintf("%s-Folder%d", strings.ToUpper(acct[:1])+acct[1:], j)
			if _, err := a.EnsureMailbox(ctx, acct, mb, catalog.SourceIMAP, 9); err != nil {
				t.Fatal(err)
			}
			raw := fmt.Appendf(nil, "From: x@example.org\r\nSubject: %s %d\r\n\r\nbody\r\n", acct, j)
			if _, err := a.Ingest(ctx, []indexer.Item{{Account: acct, Mailbox: mb, UIDValidity: 9, UID: 1, Raw: raw}}); err != nil {
				t.Fatal(err)
			}
			g := catalog.GapCheck{Account: acct, Mailbox: mb, UIDValidity: 9, At: time.Now().UTC(), Checkpoint: 9000,
				OnServer: 40, Archived: 40}
			if rng.IntN(3) > 0 {
				lo := (i+1)*1000 + 10*j + 1
				g.Missing, g.MissingUIDs, g.Fetched = 3, fmt.Sprintf("%d:%d", lo, lo+2), rng.IntN(4)
				g.Archived -= 3
				secrets[acct] = append(secrets[acct], g.MissingUIDs)
			}
			if _, err := a.RecordGapCheck(ctx, g); err != nil {
				t.Fatal(err)
			}
			secrets[acct] = append(secrets[acct], mb)
			mailboxes++
		}
	}
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	lg, err := OpenLedger(ctx, a, users, LedgerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lg.Close() })
	return New(a, &Options{Users: users, Ledger: lg}), accounts, secrets, mailboxes
}

// TestCompletenessScope: the completeness report, alone (Completeness) and
// in the status (Status), gives each caller exactly the last checks of the
// mailboxes of the accounts they see: an admin's or an auditor's report is
// every row; a user's is the admin's rows of their accounts, in the same
// order, and its JSON names no other account, none of their mailboxes and
// none of their missing UIDs, nor the archive-wide figures (data directory,
// ledger) that Status keeps from users too. Users are generated: every
// subset of the accounts, none included.
func TestCompletenessScope(t *testing.T) {
	ctx := context.Background()
	s, accounts, secrets, n := gapScopeArchive(t)
	all, err := s.Completeness(ctx, Caller{Name: "root", Role: RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Mailboxes) != n {
		t.Fatalf("the admin's report has %d mailboxes, want %d", len(all.Mailboxes), n)
	}
	if all.Archive.DataDir == "" || all.Archive.LedgerLeaves == 0 {
		t.Errorf("the admin's report names no data directory or ledger: %+v", all.Archive)
	}
	for _, c := range []Caller{{Name: "aud", Role: RoleAuditor}, {Name: "lee", Role: RoleLegal}, Operator()} {
		rep, err := s.Completeness(ctx, c)
		if err != nil || !slices.Equal(rep.Mailboxes, all.Mailboxes) {
			t.Errorf("%s (%s) gets %d mailboxes (%v), want all %d", c.Name, c.Role, len(rep.Mailboxes), err, len(all.Mailboxes))
		}
	}
	for mask := range 1 << len(accounts) {
		var mine []string
		for i, acct := range accounts {
			if mask&(1<<i) != 0 {
				mine = append(mine, acct)
			}
		}
		c := Caller{Name: "ann", Role: RoleUser, Accounts: mine}
		var want []catalog.GapCheck
		for _, g := range all.Mailboxes {
			if slices.Contains(mine, g.Account) {
				want = append(want, g)
			}
		}
		rep, err := s.Completeness(ctx, c)
		if err != nil {
			t.Fatalf("Completeness(user of %v): %v", mine, err)
		}
		st, err := s.Status(ctx, c)
		if err != nil {
			t.Fatalf("Status(user of %v): %v", mine, err)
		}
		for what, got := range map[string]*Completeness{"Completeness": rep, "Status": st.Completeness} {
			if got == nil || !slices.Equal(got.Mailboxes, want) {
				t.Errorf("%s(user of %v) = %+v, want the admin's rows of those accounts %+v", what, mine, got, want)
				continue
			}
			if got.Archive.DataDir != "" || got.Archive.LedgerOrigin != "" || got.Archive.LedgerLeaves != 0 || got.Archive.CheckpointRoot != "" {
				t.Errorf("%s(user of %v) names archive-wide figures: %+v", what, mine, got.Archive)
			}
			if got.Missing() != missingOf(want) {
				t.Errorf("%s(user of %v).Missing() = %d, want %d", what, mine, got.Missing(), missingOf(want))
			}
		}
		b, _ := json.Marshal(st)
		for _, acct := range accounts {
			if slices.Contains(mine, acct) {
				continue
			}
			for _, sec := range secrets[acct] {
				if strings.Contains(string(b), sec) {
					t.Errorf("the status of a user of %v names %s of account %s: %s", mine, sec, acct, b)
				}
			}
		}
	}
}

func missingOf(gs []catalog.GapCheck) int {
	n := 0
	for _, g := range gs {
		n += g.Missing - g.Fetched
	}
	return n
}
