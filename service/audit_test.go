package service

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// breakAudit makes every later insert into dir's audit table fail, as a
// full disk or a damaged users.db would, without touching anything else.
func breakAudit(t *testing.T, dir string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, UsersFile)+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TRIGGER audit_broken BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'audit store broken by the test'); END`); err != nil {
		t.Fatal(err)
	}
}

// genAudit writes n entries of a few users and actions at random times of
// 2020 (some on whole seconds, some with a fraction: the two sort apart
// as text), and returns them with their ids, oldest first.
func genAudit(t *testing.T, u *Users, n int, rng *rand.Rand) []AuditEntry {
	t.Helper()
	users := []string{"root", "aud", "ann", "operator:root", "lena"}
	actions := []string{ActionLogin, ActionSearch, ActionRead, ActionDownload, ActionExport, "hold-create"}
	base := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	var out []AuditEntry
	for range n {
		at := base.Add(time.Duration(rng.Int64N(int64(365 * 24 * time.Hour))))
		switch rng.IntN(3) {
		case 0:
			at = at.Truncate(time.Second)
		case 1:
			at = at.Truncate(time.Millisecond)
		}
		e := AuditEntry{At: at.Format(time.RFC3339Nano), User: users[rng.IntN(len(users))], Action: actions[rng.IntN(len(actions))],
			Detail: fmt.Sprintf("detail %d", rng.IntN(1000)), Remote: "10.0.0.1"}
		if err := u.Audit(context.Background(), e); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	all, err := u.AuditQuery(context.Background(), AuditFilter{Limit: n})
	if err != nil || len(all) != n {
		t.Fatalf("AuditQuery(all) = %d entries, %v; want %d", len(all), err, n)
	}
	slices.Reverse(all)
	for i := range out {
		out[i].ID = all[i].ID
	}
	return out
}

// wantAudit is the filter done the plain way, newest first.
func wantAudit(all []AuditEntry, f AuditFilter) []AuditEntry {
	out := []AuditEntry{}
	for i := len(all) - 1; i >= 0 && len(out) < f.Limit; i-- {
		e := all[i]
		at, _ := time.Parse(time.RFC3339Nano, e.At)
		if f.User != "" && e.User != f.User || f.Action != "" && e.Action != f.Action ||
			!f.Since.IsZero() && at.Before(f.Since) || !f.Until.IsZero() && !at.Before(f.Until) ||
			f.Before > 0 && e.ID >= f.Before {
			continue
		}
		out = append(out, e)
	}
	return out
}

// TestAuditQueryFilters compares the store's filters with a plain filter
// over generated entries and filters, paging included; the bounds of
// time filters are often an entry's own time, exactly.
func TestAuditQueryFilters(t *testing.T) {
	u, err := OpenUsers(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	rng := rand.New(rand.NewPCG(3, 5))
	all := genAudit(t, u, 600, rng)
	ctx := context.Background()
	pick := func() time.Time {
		at, _ := time.Parse(time.RFC3339Nano, all[rng.IntN(len(all))].At)
		switch rng.IntN(3) {
		case 0:
			return at.Add(time.Nanosecond)
		case 1:
			return at.Add(-time.Nanosecond)
		}
		return at
	}
	for i := range 400 {
		var f AuditFilter
		if rng.IntN(2) == 0 {
			f.User = all[rng.IntN(len(all))].User
		}
		if rng.IntN(2) == 0 {
			f.Action = all[rng.IntN(len(all))].Action
		}
		if rng.IntN(2) == 0 {
			f.Since = pick()
		}
		if rng.IntN(2) == 0 {
			f.Until = pick()
		}
		if rng.IntN(3) == 0 {
			f.Before = all[rng.IntN(len(all))].ID
		}
		f.Limit = []int{1, 7, 50, 1000}[rng.IntN(4)]
		got, err := u.AuditQuery(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		if want := wantAudit(all, f); !slices.Equal(got, want) {
			t.Fatalf("case %d: AuditQuery(%s) = %d entries, want %d\ngot  %v\nwant %v", i, f, len(got), len(want), got, want)
		}
	}
	// Paging by before= walks every entry of a filter once, newest first.
	f := AuditFilter{Action: ActionSearch, Limit: 13}
	var paged []AuditEntry
	for {
		page, err := u.AuditQuery(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		paged = append(paged, page...)
		f.Before = page[len(page)-1].ID
	}
	if want := wantAudit(all, AuditFilter{Action: ActionSearch, Limit: len(all)}); !slices.Equal(paged, want) {
		t.Errorf("paged by 13: %d entries, want %d", len(paged), len(want))
	}
}

// TestAuditTrailRoles: admins, auditors, the legal role and the operator
// read the whole trail; a user reads none of it (not even their own
// rows); every read, allowed or refused, is a row of its own; bad filters
// are refused before anything is read.
func TestAuditTrailRoles(t *testing.T) {
	dir := t.TempDir()
	u, err := OpenUsers(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	all := genAudit(t, u, 50, rand.New(rand.NewPCG(1, 2)))
	ctx := context.Background()
	for _, tc := range []struct {
		c  Caller
		ok bool
	}{
		{Caller{Name: "root", Role: RoleAdmin, Remote: "r"}, true},
		{Caller{Name: "aud", Role: RoleAuditor, Remote: "r"}, true},
		{Caller{Name: "lena", Role: RoleLegal, Remote: "r"}, true},
		{Operator(), true},
		{Caller{Name: "ann", Role: RoleUser, Accounts: []string{"ann"}, Remote: "r"}, false},
		{Caller{Name: "ann", Role: RoleUser, Remote: "r"}, false},
		{Caller{Name: "x", Role: "owner", Remote: "r"}, false},
	} {
		before, _ := u.AuditQuery(ctx, AuditFilter{Limit: 1})
		got, err := ReadAuditTrail(ctx, u, tc.c, AuditFilter{User: "ann"})
		if tc.ok != (err == nil) || !tc.ok && (!errors.Is(err, ErrForbidden) || got != nil) {
			t.Errorf("ReadAuditTrail as %s (%s) = %d entries, %v; want allowed %v", tc.c.Name, tc.c.Role, len(got), err, tc.ok)
		}
		if tc.ok {
			if want := wantAudit(all, AuditFilter{User: "ann", Limit: DefaultAuditLimit}); !slices.Equal(got, want) {
				t.Errorf("as %s: %d entries of ann, want %d", tc.c.Name, len(got), len(want))
			}
		}
		last, _ := u.AuditQuery(ctx, AuditFilter{Limit: 1})
		wantAction := ActionAudit
		if !tc.ok {
			wantAction = ActionDenied
		}
		if len(last) != 1 || last[0].ID <= before[0].ID || last[0].User != tc.c.Name || last[0].Action != wantAction ||
			!strings.Contains(last[0].Detail, `user="ann"`) {
			t.Errorf("as %s: last row %+v, want a %s row of theirs with the filter", tc.c.Name, last, wantAction)
		}
	}
	for _, f := range []AuditFilter{
		{Limit: -1}, {Limit: MaxAuditLimit + 1}, {Before: -3},
		{Since: time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC), Until: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)},
		{User: strings.Repeat("x", 3000)},
	} {
		if _, err := ReadAuditTrail(ctx, u, Operator(), f); !errors.Is(err, ErrBadRequest) {
			t.Errorf("ReadAuditTrail(%+v) = %v, want ErrBadRequest", f, err)
		}
	}
}

// TestAuditFailsClosed: when the audit trail cannot be written, nothing
// that must be audited is served: a search, a read, a download, an export
// (no file written), a job, a read of the trail, a user change (not made).
// A service without a user store refuses the same.
func TestAuditFailsClosed(t *testing.T) {
	svc := openScopeArchive(t, scopeCorpus(), func(scopeCopy) bool { return true })
	ctx := context.Background()
	admin := Caller{Name: "root", Role: RoleAdmin, Remote: "r"}
	res, err := svc.Search(ctx, admin, SearchRequest{Query: "budget"})
	if err != nil || len(res.Hits) == 0 {
		t.Fatalf("search before: %v, %v", res, err)
	}
	id := res.Hits[0].SHA256
	dir := svc.Archive().Dir()
	users := svc.opts.Users
	if err := users.Add(ctx, User{Name: "kept", Role: RoleAdmin}, "correct horse"); err != nil {
		t.Fatal(err)
	}
	breakAudit(t, dir)
	noStore := New(svc.Archive(), nil)
	exportDir := filepath.Join(t.TempDir(), "prod")
	for _, s := range []*Service{svc, noStore} {
		name := "broken audit store"
		if s == noStore {
			name = "no audit store"
		}
		checks := map[string]func() (any, error){
			"search": func() (any, error) { return s.Search(ctx, admin, SearchRequest{Query: "budget"}) },
			"read":   func() (any, error) { return s.Message(ctx, admin, id) },
			"download": func() (any, error) {
				_, raw, err := s.Raw(ctx, admin, id, ActionDownload)
				return raw, err
			},
			"denied": func() (any, error) { return s.Message(ctx, admin, strings.Repeat("0", 64)) },
			"export": func() (any, error) {
				return s.Export(ctx, admin, ExportRequest{Search: &SearchRequest{Query: "budget"}, Dir: exportDir}, nil)
			},
			"verify job":  func() (any, error) { return s.StartVerify(admin) },
			"audit trail": func() (any, error) { return s.AuditTrail(ctx, admin, AuditFilter{}) },
		}
		for what, f := range checks {
			v, err := f()
			if err == nil || errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "audit") {
				t.Errorf("%s: %s = %v; want refused for the audit trail", name, what, err)
			}
			_ = v
		}
		if _, err := os.Stat(exportDir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: the refused export wrote %s (%v)", name, exportDir, err)
		}
		if jobs := s.Jobs(admin); len(jobs) != 0 {
			t.Errorf("%s: a job was queued without its audit row: %+v", name, jobs)
		}
	}
	// User changes made as someone are one transaction with their row.
	by := users.As(Operator())
	if err := by.Add(ctx, User{Name: "eve", Role: RoleAdmin}, "correct horse"); err == nil {
		t.Error("Add with a broken audit trail: no error")
	}
	if _, err := users.Get(ctx, "eve"); !errors.Is(err, ErrNoUser) {
		t.Errorf("the unaudited Add made the user: %v", err)
	}
	if _, _, err := by.NewToken(ctx, "kept", 0); err == nil {
		t.Error("NewToken with a broken audit trail: no error")
	}
	if err := by.Remove(ctx, "kept"); err == nil {
		t.Error("Remove with a broken audit trail: no error")
	}
	if toks, _ := users.Tokens(ctx, "kept"); len(toks) != 0 {
		t.Errorf("the unaudited NewToken made %v", toks)
	}
	if _, err := users.Get(ctx, "kept"); err != nil {
		t.Errorf("the unaudited Remove removed the user: %v", err)
	}
}

// TestUserChangesAudited: each change made through As is in the trail,
// by whom, with what; a refused change leaves no row.
func TestUserChangesAudited(t *testing.T) {
	u, err := OpenUsers(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	ctx := context.Background()
	by := u.As(Caller{Name: "operator:alice", Role: RoleOperator, Remote: "local"})
	if err := by.Add(ctx, User{Name: "bob", Role: RoleUser, Accounts: []string{"b"}}, "correct horse"); err != nil {
		t.Fatal(err)
	}
	if err := by.Add(ctx, User{Name: "bob", Role: RoleAdmin}, "correct horse"); err == nil {
		t.Fatal("second Add of bob: no error")
	}
	_, tok, err := by.NewToken(ctx, "bob", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := by.RevokeToken(ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	if err := by.SetPassword(ctx, "bob", "battery staple"); err != nil {
		t.Fatal(err)
	}
	if err := by.Remove(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if err := by.Remove(ctx, "bob"); err == nil {
		t.Fatal("second Remove of bob: no error")
	}
	trail, err := u.AuditTrail(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range trail {
		if e.User != "operator:alice" || e.Remote != "local" {
			t.Errorf("row %+v: want by operator:alice from local", e)
		}
		got = append(got, e.Action+" "+e.Detail)
	}
	want := []string{"user-add bob role user accounts b", "token-add " + tok.ID + " for bob expires " + tok.Expires,
		"token-revoke " + tok.ID + " of bob", "user-passwd bob", "user-remove bob"}
	if !slices.Equal(got, want) {
		t.Errorf("trail:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestSearchAuditNamesScope: a search's row names the accounts it ran in.
func TestSearchAuditNamesScope(t *testing.T) {
	svc := openScopeArchive(t, scopeCorpus(), func(scopeCopy) bool { return true })
	ctx := context.Background()
	for _, tc := range []struct {
		c    Caller
		req  SearchRequest
		want string
	}{
		{Caller{Name: "ann", Role: RoleUser, Accounts: []string{"alice", "carol"}}, SearchRequest{Query: "budget"}, "in accounts alice,carol: human: budget"},
		{Caller{Name: "aud", Role: RoleAuditor}, SearchRequest{Query: "lunch"}, "in all accounts: human: lunch"},
		{Caller{Name: "aud", Role: RoleAuditor}, SearchRequest{Query: "ALL", Syntax: SyntaxIMAP, Accounts: []string{"bob"}, Mailboxes: []string{"Secret"}},
			"in accounts bob mailboxes Secret: imap: ALL"},
	} {
		if _, err := svc.Search(ctx, tc.c, tc.req); err != nil {
			t.Fatal(err)
		}
		last, _ := svc.opts.Users.AuditQuery(ctx, AuditFilter{Limit: 1})
		if len(last) != 1 || last[0].Action != ActionSearch || last[0].User != tc.c.Name || last[0].Detail != tc.want {
			t.Errorf("search %+v as %s: row %+v, want detail %q", tc.req, tc.c.Name, last, tc.want)
		}
	}
}
