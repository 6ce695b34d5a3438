package service

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"mailvault/indexer"
	"mailvault/indexer/catalog"
	"mailvault/indexer/store"
)

// retMsg is a message of the retention corpus.
type retMsg struct {
	name, account, mailbox, subject string
	sent                            string // RFC 5322 date, "" for none
}

var retCorpus = []retMsg{
	{"old-a", "alice", "INBOX", "invoice 2010", "Mon, 1 Mar 2010 10:00:00 +0000"},
	{"new-a", "alice", "INBOX", "lunch", "Mon, 1 Jan 2024 10:00:00 +0000"},
	{"old-b", "bob", "INBOX", "invoice 2010 bob", "Tue, 2 Mar 2010 10:00:00 +0000"},
	{"sent-b", "bob", "Sent", "report", "Wed, 1 Feb 2012 10:00:00 +0000"},
	{"nodate-c", "carol", "INBOX", "memo", ""},
}

func retRaw(m retMsg) []byte {
	date := ""
	if m.sent != "" {
		date = "Date: " + m.sent + "\r\n"
	}
	return fmt.Appendf(nil, "From: x@example.org\r\nTo: y@example.org\r\nSubject: %s\r\nMessage-ID: <%s@example.org>\r\n%s\r\nbody of %s\r\n",
		m.subject, m.name, date, m.name)
}

// retArchive is a service over retCorpus with cfg, and the ids by name.
func retArchive(t *testing.T, cfg *RetentionConfig) (*Service, map[string]string) {
	t.Helper()
	a, users := newArchive(t)
	s := New(a, &Options{Users: users, Retention: cfg})
	ids := map[string]string{}
	for i, m := range retCorpus {
		retIngest(t, s, m.account, m.mailbox, uint32(i+1), retRaw(m))
		ids[m.name] = store.KeyOf(retRaw(m)).String()
	}
	return s, ids
}

func retIngest(t *testing.T, s *Service, account, mailbox string, uid uint32, raw []byte) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.Archive().EnsureMailbox(ctx, account, mailbox, catalog.SourceImport, 9); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Archive().Ingest(ctx, []indexer.Item{{Account: account, Mailbox: mailbox, UIDValidity: 9, UID: uid, Raw: raw}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Archive().Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

func names(ids map[string]string, shas []string) []string {
	byID := map[string]string{}
	for n, id := range ids {
		byID[id] = n
	}
	var out []string
	for _, s := range shas {
		out = append(out, byID[s])
	}
	sort.Strings(out)
	return out
}

func planned(p *RetentionPlan) []string {
	var out []string
	for _, it := range p.Delete {
		out = append(out, it.SHA256)
	}
	return out
}

func pol(name, keep, from string, accounts, mailboxes []string, q string) RetentionPolicy {
	k, err := ParsePeriod(keep)
	if err != nil {
		panic(err)
	}
	return RetentionPolicy{Name: name, Keep: k, From: from, Accounts: accounts, Mailboxes: mailboxes, Query: q}
}

func TestRetentionPlanAndApply(t *testing.T) {
	all6y := pol("all-6y", "6y", AgeSent, nil, nil, "")
	for _, tt := range []struct {
		name     string
		policies []RetentionPolicy
		holds    []HoldRequest
		release  []string
		years    int // plan this many years from now
		want     []string
		wantHeld map[string]int
	}{
		{name: "no policy keeps forever", want: nil},
		{name: "everything 6y from sent", policies: []RetentionPolicy{all6y}, want: []string{"old-a", "old-b", "sent-b"}},
		{name: "by account", policies: []RetentionPolicy{pol("alice", "6y", AgeSent, []string{"alice"}, nil, "")}, want: []string{"old-a"}},
		{name: "by mailbox", policies: []RetentionPolicy{pol("sent", "6y", AgeSent, nil, []string{"Sent"}, "")}, want: []string{"sent-b"}},
		{name: "by account and mailbox", policies: []RetentionPolicy{pol("bi", "6y", AgeSent, []string{"bob"}, []string{"INBOX"}, "")}, want: []string{"old-b"}},
		{name: "by query", policies: []RetentionPolicy{pol("inv", "6y", AgeSent, nil, nil, "subject:invoice")}, want: []string{"old-a", "old-b"}},
		{name: "longest wins", policies: []RetentionPolicy{all6y, pol("bob-20y", "20y", AgeSent, []string{"bob"}, nil, "")}, want: []string{"old-a"}},
		{name: "longest wins in either order", policies: []RetentionPolicy{pol("bob-20y", "20y", AgeSent, []string{"bob"}, nil, ""), all6y}, want: []string{"old-a"}},
		{name: "archived date", policies: []RetentionPolicy{pol("arch", "1y", AgeArchived, nil, nil, "")}, want: nil},
		{name: "archived date later", policies: []RetentionPolicy{pol("arch", "1y", AgeArchived, nil, nil, "")}, years: 2, want: []string{"new-a", "nodate-c", "old-a", "old-b", "sent-b"}},
		{name: "no Date: ages from archive date", policies: []RetentionPolicy{pol("s", "1y", AgeSent, nil, nil, "")}, want: []string{"new-a", "old-a", "old-b", "sent-b"}},
		{name: "no Date: later", policies: []RetentionPolicy{pol("s", "1y", AgeSent, nil, nil, "")}, years: 2, want: []string{"new-a", "nodate-c", "old-a", "old-b", "sent-b"}},
		{name: "custodian hold keeps", policies: []RetentionPolicy{all6y}, holds: []HoldRequest{{Name: "bob-matter", Custodians: []string{"bob"}}},
			want: []string{"old-a"}, wantHeld: map[string]int{"bob-matter": 2}},
		{name: "query hold keeps", policies: []RetentionPolicy{all6y}, holds: []HoldRequest{{Name: "inv", Custodians: []string{"alice", "bob"}, Query: "subject:invoice"}},
			want: []string{"sent-b"}, wantHeld: map[string]int{"inv": 2}},
		{name: "released hold keeps no more", policies: []RetentionPolicy{all6y}, holds: []HoldRequest{{Name: "bob-matter", Custodians: []string{"bob"}}},
			release: []string{"bob-matter"}, want: []string{"old-a", "old-b", "sent-b"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s, ids := retArchive(t, &RetentionConfig{Policies: tt.policies})
			for _, h := range tt.holds {
				if _, err := s.CreateHold(ctx, admin, h); err != nil {
					t.Fatal(err)
				}
			}
			for _, h := range tt.release {
				if _, err := s.ReleaseHold(ctx, admin, h, "matter closed"); err != nil {
					t.Fatal(err)
				}
			}
			at := time.Now().AddDate(tt.years, 0, 1)
			retentionNow = func() time.Time { return at }
			defer func() { retentionNow = time.Now }()
			p, err := s.makePlan(ctx, admin, at)
			if err != nil {
				t.Fatal(err)
			}
			if got := names(ids, planned(p)); !slices.Equal(got, tt.want) {
				t.Fatalf("plan deletes %v, want %v", got, tt.want)
			}
			for _, hc := range p.Holds {
				if tt.wantHeld[hc.Hold] != hc.Messages {
					t.Errorf("hold %s keeps %d, want %d", hc.Hold, hc.Messages, tt.wantHeld[hc.Hold])
				}
			}
			if len(p.Holds) != len(tt.wantHeld) {
				t.Errorf("holds keep %+v, want %v", p.Holds, tt.wantHeld)
			}
			if err := s.saveNewPlan(ctx, admin, p); err != nil {
				t.Fatal(err)
			}
			done, err := s.ApplyRetention(ctx, admin, ApplyRequest{PlanID: p.ID}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if done.Deleted != len(tt.want) || done.State != PlanApplied {
				t.Errorf("apply deleted %d (%s), want %d", done.Deleted, done.State, len(tt.want))
			}
			checkGone(t, s, ids, tt.want)
		})
	}
}

// checkGone asserts that exactly the messages gone are deleted: a read
// says so, the rest read fine, and verify is clean.
func checkGone(t *testing.T, s *Service, ids map[string]string, gone []string) {
	t.Helper()
	ctx := context.Background()
	for name, id := range ids {
		_, _, err := s.Raw(ctx, admin, id, "download")
		if slices.Contains(gone, name) {
			if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "deleted on") || !strings.Contains(err.Error(), "under rule") {
				t.Errorf("Raw(%s) after deletion = %v, want not found, deleted on DATE under rule R", name, err)
			}
		} else if err != nil {
			t.Errorf("Raw(%s), kept = %v", name, err)
		}
	}
	rep, err := s.Archive().Verify(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 0 || rep.Disposed != len(gone) {
		t.Errorf("verify = %+v, want no problems and %d disposed", rep, len(gone))
	}
}

func TestRetentionHoldsAtApplyTime(t *testing.T) {
	ctx := context.Background()
	s, ids := retArchive(t, &RetentionConfig{Policies: []RetentionPolicy{pol("all", "6y", AgeSent, nil, nil, "")}})
	if _, err := s.CreateHold(ctx, admin, HoldRequest{Name: "carol-matter", Custodians: []string{"carol"}}); err != nil {
		t.Fatal(err)
	}
	p, err := s.PlanRetention(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(ids, planned(p)); !slices.Equal(got, []string{"old-a", "old-b", "sent-b"}) {
		t.Fatalf("plan = %v", got)
	}
	// After the plan: old-a arrives in carol's mailbox (under her hold),
	// and a new hold covers sent-b.
	retIngest(t, s, "carol", "INBOX", 50, retRaw(retCorpus[0]))
	if _, err := s.CreateHold(ctx, legal, HoldRequest{Name: "report", Custodians: []string{"bob"}, Query: "subject:report"}); err != nil {
		t.Fatal(err)
	}
	done, err := s.ApplyRetention(ctx, admin, ApplyRequest{PlanID: p.ID}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if done.Deleted != 1 || done.KeptHeld != 2 {
		t.Errorf("apply: %d deleted, %d kept; want 1 and 2", done.Deleted, done.KeptHeld)
	}
	checkGone(t, s, ids, []string{"old-b"})
	// Applying again is a no-op; a fresh plan deletes nothing new.
	if again, err := s.ApplyRetention(ctx, admin, ApplyRequest{PlanID: p.ID}, nil); err != nil || again.Deleted != 1 {
		t.Errorf("apply again = %+v, %v", again, err)
	}
	if p2, err := s.PlanRetention(ctx, admin); err != nil || len(p2.Delete) != 0 || p2.HeldTotal != 2 {
		t.Errorf("plan after apply = %+v, %v; want nothing to delete, 2 held", p2, err)
	}
}

func TestRetentionRefusals(t *testing.T) {
	ctx := context.Background()
	policies := []RetentionPolicy{pol("all", "6y", AgeSent, nil, nil, "")}

	// WORM (the default when the config says nothing): plan shows, apply
	// and erase refuse, nothing goes.
	s, ids := retArchive(t, nil)
	s.opts.Retention = &RetentionConfig{WORM: true, Policies: policies}
	p, err := s.PlanRetention(ctx, admin)
	if err != nil || !p.WORM || len(p.Delete) != 3 {
		t.Fatalf("plan under WORM = %+v, %v", p, err)
	}
	if _, err := s.ApplyRetention(ctx, admin, ApplyRequest{PlanID: p.ID}, nil); !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), "WORM") {
		t.Errorf("apply under WORM = %v", err)
	}
	if _, err := s.Erase(ctx, admin, ids["old-a"], "GDPR request 17"); !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), "WORM") {
		t.Errorf("erase under WORM = %v", err)
	}
	if _, err := s.StartRetention(admin, ApplyRequest{}); !errors.Is(err, ErrForbidden) {
		t.Errorf("retention job under WORM = %v", err)
	}
	if DefaultRetention().WORM != true {
		t.Error("the default is not WORM")
	}
	checkGone(t, s, ids, nil)

	// The plan recorded WORM in the archive: a config saying worm: false
	// alone no longer deletes; SetWORM (admin or operator, a reason,
	// audited) turns it off.
	s.opts.Retention = &RetentionConfig{Policies: policies}
	if _, err := s.Erase(ctx, admin, ids["old-a"], "GDPR request 17"); !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), "WORM") {
		t.Errorf("erase with worm: false over a WORM archive = %v, want refused", err)
	}
	if _, err := s.ApplyRetention(ctx, admin, ApplyRequest{PlanID: p.ID}, nil); !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), "WORM") {
		t.Errorf("apply with worm: false over a WORM archive = %v, want refused", err)
	}
	for _, c := range []Caller{auditor, legal, alice} {
		if _, err := s.SetWORM(ctx, c, false, "because"); !errors.Is(err, ErrForbidden) {
			t.Errorf("%s turns WORM off: %v", c.Role, err)
		}
	}
	if _, err := s.SetWORM(ctx, admin, false, " "); !errors.Is(err, ErrBadRequest) {
		t.Errorf("WORM off without a reason = %v", err)
	}
	if st, err := s.SetWORM(ctx, admin, false, "retention approved by the board, minute 12"); err != nil || st.WORM || !st.Archive.Recorded || st.Archive.Actor != admin.Name {
		t.Fatalf("WORM off = %+v, %v", st, err)
	}

	// Roles.
	for _, c := range []Caller{auditor, legal} {
		if _, err := s.PlanRetention(ctx, c); err != nil {
			t.Errorf("%s plans: %v", c.Role, err)
		}
		if _, err := s.ApplyRetention(ctx, c, ApplyRequest{PlanID: p.ID}, nil); !errors.Is(err, ErrForbidden) {
			t.Errorf("%s applies: %v", c.Role, err)
		}
		if _, err := s.Erase(ctx, c, ids["old-a"], "r"); !errors.Is(err, ErrForbidden) {
			t.Errorf("%s erases: %v", c.Role, err)
		}
	}
	if _, err := s.PlanRetention(ctx, alice); !errors.Is(err, ErrForbidden) {
		t.Errorf("user plans: %v", err)
	}
	if _, err := s.ApplyRetention(ctx, admin, ApplyRequest{PlanID: "../../etc"}, nil); !errors.Is(err, ErrBadRequest) {
		t.Errorf("bad plan id = %v", err)
	}
	if _, err := s.ApplyRetention(ctx, admin, ApplyRequest{PlanID: "0123456789ab"}, nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown plan id = %v", err)
	}

	// Erasure: refused under a hold, without a reason; done otherwise.
	if _, err := s.CreateHold(ctx, admin, HoldRequest{Name: "alice-matter", Custodians: []string{"alice"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Erase(ctx, admin, ids["old-a"], "GDPR request 17"); !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), "alice-matter") {
		t.Errorf("erase under a hold = %v", err)
	}
	if _, err := s.Erase(ctx, admin, ids["old-b"], " "); !errors.Is(err, ErrBadRequest) {
		t.Errorf("erase without a reason = %v", err)
	}
	ts, err := s.Erase(ctx, admin, ids["old-b"], "GDPR request 18")
	if err != nil || ts.Rule != "erasure" || ts.State != "done" || ts.Actor != admin.Name {
		t.Fatalf("erase = %+v, %v", ts, err)
	}
	checkGone(t, s, ids, []string{"old-b"})

	// Every path was audited: plans, the refusals, the erase.
	trail, err := s.opts.Users.AuditTrail(ctx, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range trail {
		actions = append(actions, e.Action)
	}
	for _, want := range []string{"retention-plan", "erase-refused", "erase", "dispose", "worm-on", "worm-off"} {
		if !slices.Contains(actions, want) {
			t.Errorf("audit trail has no %s: %v", want, actions)
		}
	}
}

func TestRetentionFourEyes(t *testing.T) {
	ctx := context.Background()
	s, ids := retArchive(t, &RetentionConfig{FourEyes: true, Policies: []RetentionPolicy{pol("all", "6y", AgeSent, nil, nil, "")}})
	admin2 := Caller{Name: "bea", Role: RoleAdmin, Remote: "test"}
	p, err := s.PlanRetention(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ApplyRetention(ctx, admin, ApplyRequest{}, nil); !errors.Is(err, ErrBadRequest) {
		t.Errorf("apply without a plan id under four eyes = %v", err)
	}
	if _, err := s.ApplyRetention(ctx, admin2, ApplyRequest{PlanID: p.ID}, nil); !errors.Is(err, ErrForbidden) {
		t.Errorf("apply of an unapproved plan = %v", err)
	}
	if _, err := s.ApproveRetention(ctx, admin, p.ID); !errors.Is(err, ErrForbidden) {
		t.Errorf("approval by the planner = %v", err)
	}
	if _, err := s.ApproveRetention(ctx, auditor, p.ID); !errors.Is(err, ErrForbidden) {
		t.Errorf("approval by an auditor = %v", err)
	}
	if _, err := s.ApproveRetention(ctx, admin2, p.ID); err != nil {
		t.Fatal(err)
	}
	done, err := s.ApplyRetention(ctx, admin, ApplyRequest{PlanID: p.ID}, nil)
	if err != nil || done.Deleted != 3 || done.ApprovedBy != "bea" {
		t.Fatalf("apply of an approved plan = %+v, %v", done, err)
	}
	checkGone(t, s, ids, []string{"old-a", "old-b", "sent-b"})
}

// The scheduled job deletes what is expired and keeps what is held.
func TestRetentionSchedule(t *testing.T) {
	s, ids := retArchive(t, &RetentionConfig{Schedule: 50 * time.Millisecond, Policies: []RetentionPolicy{pol("all", "6y", AgeSent, nil, nil, "")}})
	if _, err := s.CreateHold(context.Background(), admin, HoldRequest{Name: "bob-matter", Custodians: []string{"bob"}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := s.Archive().TombstoneOf(context.Background(), store.KeyOf(retRaw(retCorpus[0]))); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the scheduled job deleted nothing in 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // further runs delete nothing more
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	checkGone(t, s, ids, []string{"old-a"})
}

func TestParsePeriod(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Period
		bad  bool
	}{
		{in: "6y", want: Period{Years: 6}},
		{in: "90d", want: Period{Days: 90}},
		{in: "12w", want: Period{Days: 84}},
		{in: "1y6m", want: Period{Years: 1, Months: 6}},
		{in: "", bad: true},
		{in: "0d", bad: true},
		{in: "6 years", bad: true},
		{in: "-1y", bad: true},
	} {
		got, err := ParsePeriod(tt.in)
		if (err != nil) != tt.bad || !tt.bad && got != tt.want {
			t.Errorf("ParsePeriod(%q) = %v, %v; want %v (bad %v)", tt.in, got, err, tt.want, tt.bad)
		}
	}
}
