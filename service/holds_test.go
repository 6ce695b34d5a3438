package service

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"mailvault/indexer"
	"mailvault/indexer/catalog"
)

// holdMail is a small archive: each message by a short name, with where
// its copies live.
type holdMsg struct {
	name    string
	subject string
	body    string
	places  [][2]string // account, mailbox
}

var holdCorpus = []holdMsg{
	{"a-merger", "merger plans", "the merger budget", [][2]string{{"alice", "INBOX"}}},
	{"a-lunch", "lunch", "sandwiches", [][2]string{{"alice", "INBOX"}}},
	{"b-merger", "merger", "bob on the merger", [][2]string{{"bob", "INBOX"}}},
	{"ab-secret", "merger secret", "both of them", [][2]string{{"alice", "Archive"}, {"bob", "Secret"}}},
	{"c-merger", "merger notes", "carol writes", [][2]string{{"carol", "INBOX"}}},
	{"b-lunch", "lunch", "bob eats", [][2]string{{"bob", "INBOX"}}},
}

func holdRaw(m holdMsg) []byte {
	return fmt.Appendf(nil, "From: x@example.org\r\nTo: y@example.org\r\nSubject: %s\r\nMessage-ID: <%s@example.org>\r\n"+
		"Date: Mon, 4 Mar 2024 10:00:00 +0000\r\n\r\n%s\r\n", m.subject, m.name, m.body)
}

func holdSHA(m holdMsg) string { return fmt.Sprintf("%x", sha256.Sum256(holdRaw(m))) }

// holdArchive is a service over holdCorpus with a user store, and the
// message ids by name.
func holdArchive(t *testing.T) (*Service, *Users, map[string]string) {
	t.Helper()
	a, users := newArchive(t)
	s := New(a, &Options{Users: users})
	ids := map[string]string{}
	for _, m := range holdCorpus {
		holdIngest(t, s, m)
		ids[m.name] = holdSHA(m)
	}
	// a-lunch is expunged on the server: a custodian hold keeps it.
	if n, _, err := a.Reconcile(context.Background(), "alice", "INBOX", 9, map[uint32][]string{1: nil}); err != nil || n != 1 {
		t.Fatalf("Reconcile = %d, %v; want 1 expunged", n, err)
	}
	return s, users, ids
}

func holdIngest(t *testing.T, s *Service, m holdMsg) {
	t.Helper()
	ctx := context.Background()
	a := s.Archive()
	var items []indexer.Item
	for _, p := range m.places {
		if _, err := a.EnsureMailbox(ctx, p[0], p[1], catalog.SourceImport, 9); err != nil {
			t.Fatal(err)
		}
		// The next UID of the mailbox, in corpus order.
		var uid uint32 = 1
		for _, o := range holdOccs(t, s) {
			if o.Account == p[0] && o.Mailbox == p[1] && o.UID >= uid {
				uid = o.UID + 1
			}
		}
		items = append(items, indexer.Item{Account: p[0], Mailbox: p[1], UIDValidity: 9, UID: uid, Raw: holdRaw(m)})
		if _, err := a.Ingest(ctx, items[len(items)-1:]); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

func holdOccs(t *testing.T, s *Service) []indexer.OccurrenceRecord {
	t.Helper()
	occs, err := s.Archive().Occurrences(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return occs
}

var (
	legal   = Caller{Name: "lena", Role: RoleLegal, Remote: "test"}
	admin   = Caller{Name: "ada", Role: RoleAdmin, Remote: "test"}
	auditor = Caller{Name: "otto", Role: RoleAuditor, Remote: "test"}
	alice   = Caller{Name: "alice", Role: RoleUser, Accounts: []string{"alice"}, Remote: "test"}
)

// heldNames is HeldBy's answer by message name, for readable failures.
func heldNames(t *testing.T, s *Service, ids map[string]string) map[string][]string {
	t.Helper()
	all := slices.Sorted(maps.Values(ids))
	got, err := s.HeldBy(context.Background(), all)
	if err != nil {
		t.Fatalf("HeldBy: %v", err)
	}
	out := map[string][]string{}
	for name, id := range ids {
		if h, ok := got[id]; ok {
			out[name] = h
		}
	}
	return out
}

func TestHeldBy(t *testing.T) {
	tests := []struct {
		name string
		hold HoldRequest
		want []string // message names held
	}{
		{"custodian only, expunged copies too", HoldRequest{Custodians: []string{"alice"}},
			[]string{"a-merger", "a-lunch", "ab-secret"}},
		{"custodian and query", HoldRequest{Custodians: []string{"bob"}, Query: "merger"},
			[]string{"b-merger", "ab-secret"}},
		{"two custodians and query", HoldRequest{Custodians: []string{"bob", "carol"}, Query: "subject:merger"},
			[]string{"b-merger", "ab-secret", "c-merger"}},
		{"query cannot reach another account", HoldRequest{Custodians: []string{"alice"}, Query: "account:bob merger"},
			nil},
		{"mailbox term only in the custodians' mailboxes", HoldRequest{Custodians: []string{"alice"}, Query: "mailbox:Secret"},
			nil},
		{"mailbox term in a custodian's mailbox", HoldRequest{Custodians: []string{"bob"}, Query: "mailbox:Secret"},
			[]string{"ab-secret"}},
		{"imap syntax", HoldRequest{Custodians: []string{"carol", "alice"}, Query: "SUBJECT merger", Syntax: SyntaxIMAP},
			[]string{"a-merger", "ab-secret", "c-merger"}},
		{"imap syntax sees expunged copies", HoldRequest{Custodians: []string{"alice"}, Query: "BODY sandwiches", Syntax: SyntaxIMAP},
			[]string{"a-lunch"}},
		{"custodian without mail", HoldRequest{Custodians: []string{"nobody"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _, ids := holdArchive(t)
			tt.hold.Name = "matter-1"
			if _, err := s.CreateHold(context.Background(), legal, tt.hold); err != nil {
				t.Fatalf("CreateHold(%+v) = %v", tt.hold, err)
			}
			got := heldNames(t, s, ids)
			want := map[string][]string{}
			for _, n := range tt.want {
				want[n] = []string{"matter-1"}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("HeldBy with hold %+v = %v, want %v", tt.hold, got, want)
			}
			// Show's counts agree with HeldBy.
			info, err := s.Hold(context.Background(), auditor, "MATTER-1")
			if err != nil {
				t.Fatalf("Hold = %v", err)
			}
			if info.Counts == nil || info.Counts.Messages != len(tt.want) {
				t.Errorf("Hold(%q).Counts = %+v, want %d messages", info.Name, info.Counts, len(tt.want))
			}
		})
	}
}

func TestHeldBySeveralHoldsReleaseAndLaterMail(t *testing.T) {
	ctx := context.Background()
	s, _, ids := holdArchive(t)
	for _, h := range []HoldRequest{
		{Name: "alice-all", Custodians: []string{"alice"}},
		{Name: "bob-merger", Custodians: []string{"bob"}, Query: "merger"},
		{Name: "dave-all", Custodians: []string{"dave"}},
		{Name: "carol-invoices", Custodians: []string{"carol"}, Query: "invoice"},
	} {
		if _, err := s.CreateHold(ctx, admin, h); err != nil {
			t.Fatalf("CreateHold(%s) = %v", h.Name, err)
		}
	}
	want := map[string][]string{
		"a-merger": {"alice-all"}, "a-lunch": {"alice-all"}, "ab-secret": {"alice-all", "bob-merger"},
		"b-merger": {"bob-merger"},
	}
	if got := heldNames(t, s, ids); !reflect.DeepEqual(got, want) {
		t.Fatalf("HeldBy = %v, want %v", got, want)
	}

	// Mail that arrives after the holds: dave's account did not exist,
	// carol's new message matches the query.
	later := []holdMsg{
		{"d-any", "hello", "dave's first", [][2]string{{"dave", "INBOX"}}},
		{"c-invoice", "invoice 7", "pay", [][2]string{{"carol", "INBOX"}}},
		{"c-other", "other", "not matching", [][2]string{{"carol", "INBOX"}}},
	}
	for _, m := range later {
		holdIngest(t, s, m)
		ids[m.name] = holdSHA(m)
	}
	want["d-any"] = []string{"dave-all"}
	want["c-invoice"] = []string{"carol-invoices"}
	if got := heldNames(t, s, ids); !reflect.DeepEqual(got, want) {
		t.Fatalf("HeldBy after later mail = %v, want %v", got, want)
	}

	// A released hold stops holding; the other hold still holds ab-secret.
	if _, err := s.ReleaseHold(ctx, legal, "alice-all", "matter settled"); err != nil {
		t.Fatalf("ReleaseHold = %v", err)
	}
	delete(want, "a-merger")
	delete(want, "a-lunch")
	want["ab-secret"] = []string{"bob-merger"}
	if got := heldNames(t, s, ids); !reflect.DeepEqual(got, want) {
		t.Fatalf("HeldBy after release = %v, want %v", got, want)
	}
	info, err := s.Hold(ctx, legal, "alice-all")
	if err != nil || info.Active || info.ReleasedBy != "lena" || info.ReleaseReason != "matter settled" || info.Counts != nil {
		t.Errorf("Hold(alice-all) after release = %+v, %v", info, err)
	}
	if _, err := s.ReleaseHold(ctx, legal, "alice-all", "again"); !errors.Is(err, ErrBadRequest) {
		t.Errorf("second ReleaseHold = %v, want ErrBadRequest", err)
	}
	// Released, never deleted: the name is not reused.
	if _, err := s.CreateHold(ctx, legal, HoldRequest{Name: "Alice-All", Custodians: []string{"alice"}}); !errors.Is(err, ErrBadRequest) ||
		!strings.Contains(err.Error(), "never reused") {
		t.Errorf("CreateHold with a released hold's name = %v, want ErrBadRequest saying names are never reused", err)
	}
	list, err := s.Holds(ctx, auditor)
	if err != nil || len(list) != 4 {
		t.Fatalf("Holds = %d holds, %v; want 4", len(list), err)
	}
}

func TestHeldByBatch(t *testing.T) {
	ctx := context.Background()
	s, _, ids := holdArchive(t)
	if _, err := s.CreateHold(ctx, legal, HoldRequest{Name: "m", Custodians: []string{"bob", "alice"}, Query: "merger"}); err != nil {
		t.Fatal(err)
	}
	// Thousands of ids, most unknown to the archive, some twice, some in
	// upper case: one answer per held message, keyed in lower case.
	var batch []string
	for i := range 3000 {
		batch = append(batch, fmt.Sprintf("%x", sha256.Sum256(fmt.Appendf(nil, "%d", i))))
	}
	batch = append(batch, ids["a-merger"], strings.ToUpper(ids["b-merger"]), ids["b-merger"], ids["b-lunch"])
	got, err := s.HeldBy(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{ids["a-merger"]: {"m"}, ids["b-merger"]: {"m"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("HeldBy(batch) = %v, want %v", got, want)
	}
	for _, bad := range []string{"", "xyz", ids["a-merger"][:63], ids["a-merger"] + "00"} {
		if _, err := s.HeldBy(ctx, []string{ids["a-merger"], bad}); !errors.Is(err, ErrBadRequest) {
			t.Errorf("HeldBy with %q = %v, want ErrBadRequest", bad, err)
		}
	}
	if got, err := s.HeldBy(ctx, nil); err != nil || len(got) != 0 {
		t.Errorf("HeldBy(nil) = %v, %v; want empty", got, err)
	}
}

func TestHoldAccess(t *testing.T) {
	ctx := context.Background()
	s, users, _ := holdArchive(t)
	req := HoldRequest{Name: "acme", Custodians: []string{"alice"}, Description: "Acme v. Example"}
	operator := Caller{Name: "operator", Role: RoleOperator, Remote: "local"}
	if _, err := s.CreateHold(ctx, legal, HoldRequest{Name: "shown", Custodians: []string{"bob"}}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		c             Caller
		manage, see   bool
		createAllowed bool
	}{
		{alice, false, false, false},
		{Caller{Name: "nobody", Role: RoleUser}, false, false, false},
		{auditor, false, true, false},
		{legal, true, true, true},
		{admin, true, true, true},
		{operator, true, true, true},
	}
	for i, tt := range tests {
		r := req
		r.Name = fmt.Sprintf("acme-%d", i)
		_, err := s.CreateHold(ctx, tt.c, r)
		if tt.manage != (err == nil) || !tt.manage && !errors.Is(err, ErrForbidden) {
			t.Errorf("CreateHold as %s = %v, want allowed %v (else ErrForbidden)", tt.c.Role, err, tt.manage)
		}
		_, err = s.Holds(ctx, tt.c)
		if tt.see != (err == nil) || !tt.see && !errors.Is(err, ErrForbidden) {
			t.Errorf("Holds as %s = %v, want allowed %v (else ErrForbidden)", tt.c.Role, err, tt.see)
		}
		_, err = s.Hold(ctx, tt.c, "shown")
		if tt.see != (err == nil) || !tt.see && !errors.Is(err, ErrForbidden) {
			t.Errorf("Hold as %s = %v, want allowed %v (else ErrForbidden)", tt.c.Role, err, tt.see)
		}
	}
	for _, c := range []Caller{alice, auditor} {
		if _, err := s.ReleaseHold(ctx, c, "acme-3", "why not"); !errors.Is(err, ErrForbidden) {
			t.Errorf("ReleaseHold as %s = %v, want ErrForbidden", c.Role, err)
		}
	}
	// Legal sees every account, read-only.
	if !legal.SeesAll() || legal.RunsJobs() {
		t.Errorf("legal: SeesAll %v RunsJobs %v, want true, false", legal.SeesAll(), legal.RunsJobs())
	}
	// Every create, list, show and release is in the trail, with the hold's
	// name and scope; the refused attempts too.
	if _, err := s.ReleaseHold(ctx, legal, "acme-3", "settled"); err != nil {
		t.Fatal(err)
	}
	trail, err := users.AuditTrail(ctx, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, e := range trail {
		lines = append(lines, e.User+" "+e.Action+" "+e.Detail)
	}
	all := strings.Join(lines, "\n")
	for _, want := range []string{
		"lena hold-create acme-3 custodians=alice description=Acme v. Example",
		"otto hold-list ",
		"otto hold-show shown custodians=bob",
		"lena hold-release acme-3 custodians=alice reason=settled",
		"alice denied hold-create acme-0",
		"alice denied hold-list",
		"otto denied hold-release acme-3",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("audit trail lacks %q; it holds:\n%s", want, all)
		}
	}
}

func TestCreateHoldRefuses(t *testing.T) {
	ctx := context.Background()
	s, _, _ := holdArchive(t)
	if _, err := s.CreateHold(ctx, legal, HoldRequest{Name: "taken", Custodians: []string{"alice"}}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		req  HoldRequest
		want string // in the error
	}{
		{HoldRequest{Name: "taken", Custodians: []string{"bob"}}, "exists"},
		{HoldRequest{Name: "TAKEN", Custodians: []string{"bob"}}, "exists"},
		{HoldRequest{Name: "", Custodians: []string{"bob"}}, "hold name"},
		{HoldRequest{Name: "a/b", Custodians: []string{"bob"}}, "hold name"},
		{HoldRequest{Name: " lead", Custodians: []string{"bob"}}, "hold name"},
		{HoldRequest{Name: strings.Repeat("x", 101), Custodians: []string{"bob"}}, "hold name"},
		{HoldRequest{Name: "n1"}, "at least one custodian"},
		{HoldRequest{Name: "n2", Custodians: []string{""}}, "custodian"},
		{HoldRequest{Name: "n3", Custodians: []string{"a,b"}}, "custodian"},
		{HoldRequest{Name: "n4", Custodians: []string{"bob"}, Query: "(merger"}, "hold query"},
		{HoldRequest{Name: "n5", Custodians: []string{"bob"}, Query: "OR FROM", Syntax: SyntaxIMAP}, "hold query"},
		{HoldRequest{Name: "n6", Custodians: []string{"bob"}, Query: "merger", Syntax: "sql"}, "syntax"},
		{HoldRequest{Name: "n7", Custodians: []string{"bob"}, Description: strings.Repeat("d", 4001)}, "description"},
	}
	for _, tt := range tests {
		_, err := s.CreateHold(ctx, legal, tt.req)
		if !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("CreateHold(%+v) = %v, want ErrBadRequest containing %q", tt.req, err, tt.want)
		}
	}
	if _, err := s.ReleaseHold(ctx, legal, "taken", "  "); !errors.Is(err, ErrBadRequest) {
		t.Errorf("ReleaseHold without a reason = %v, want ErrBadRequest", err)
	}
	if _, err := s.ReleaseHold(ctx, legal, "nosuch", "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("ReleaseHold(nosuch) = %v, want ErrNotFound", err)
	}
	if _, err := s.Hold(ctx, legal, "nosuch"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Hold(nosuch) = %v, want ErrNotFound", err)
	}
	// An unknown custodian is allowed (mail may come) and reported.
	info, err := s.CreateHold(ctx, legal, HoldRequest{Name: "future", Custodians: []string{"zoe", "alice", "zoe"}})
	if err != nil || !reflect.DeepEqual(info.Custodians, []string{"alice", "zoe"}) || !reflect.DeepEqual(info.UnknownCustodians, []string{"zoe"}) {
		t.Errorf("CreateHold(future) = %+v, %v; want custodians [alice zoe], unknown [zoe]", info, err)
	}
}
