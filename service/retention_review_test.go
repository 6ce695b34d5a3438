package service

// Tests of the hostile review's findings on holds, retention and
// disposition (F3, F5, F6, F7, WORM per archive, plans piling up, the plan
// file lock). Each failed before its fix.

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"mailvault/indexer"
	"mailvault/indexer/catalog"
	"mailvault/indexer/store"
)

// F7: the operator's name never comes from the environment.
func TestOperatorIdentityIgnoresEnvironment(t *testing.T) {
	t.Setenv("USER", "bob")
	t.Setenv("LOGNAME", "bob")
	for _, tt := range []struct {
		name   string
		uid    int
		lookup func(string) (*user.User, error)
		want   string
	}{
		{"passwd entry", 0, func(id string) (*user.User, error) { return &user.User{Uid: id, Username: "root"}, nil }, "root"},
		{"no passwd entry", 4242, func(id string) (*user.User, error) { return nil, user.UnknownUserIdError(4242) }, "uid4242"},
		{"entry without a name", 7, func(id string) (*user.User, error) { return &user.User{Uid: id}, nil }, "uid7"},
		{"entry of another uid", 7, func(string) (*user.User, error) { return &user.User{Uid: "0", Username: "root"}, nil }, "uid7"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := osUserOf(tt.uid, tt.lookup); got != tt.want {
				t.Errorf("osUserOf = %q, want %q", got, tt.want)
			}
		})
	}
	// The real lookup: the passwd entry's name or uid<N>, never $USER
	// (unless the passwd entry says bob).
	got := osUserOf(os.Getuid(), user.LookupId)
	if u, err := user.LookupId(fmt.Sprint(os.Getuid())); err == nil {
		if got != u.Username {
			t.Errorf("osUserOf = %q, want the passwd entry's %q", got, u.Username)
		}
	} else if got != fmt.Sprintf("uid%d", os.Getuid()) {
		t.Errorf("osUserOf without a passwd entry = %q, want uid%d", got, os.Getuid())
	}
}

// F7: with four eyes, a plan made by a role that may not delete, or by the
// scheduler, needs two distinct admins: the first endorses it, a second
// approves it; the same admin cannot do both.
func TestRetentionFourEyesNeedsTwoAdmins(t *testing.T) {
	ctx := context.Background()
	admin2 := Caller{Name: "bea", Role: RoleAdmin, Remote: "test"}
	for _, planner := range []Caller{legal, auditor, Scheduler()} {
		t.Run(planner.Name, func(t *testing.T) {
			s, ids := retArchive(t, &RetentionConfig{FourEyes: true, Policies: []RetentionPolicy{pol("all", "6y", AgeSent, nil, nil, "")}})
			p, err := s.PlanRetention(ctx, planner)
			if err != nil {
				t.Fatal(err)
			}
			p, err = s.ApproveRetention(ctx, admin, p.ID)
			if err != nil || p.EndorsedBy != admin.Name || p.ApprovedBy != "" {
				t.Fatalf("first approval = %+v, %v; want an endorsement by %s", p, err, admin.Name)
			}
			if _, err := s.ApplyRetention(ctx, admin2, ApplyRequest{PlanID: p.ID}, nil); !errors.Is(err, ErrForbidden) {
				t.Errorf("apply of an endorsed, unapproved plan = %v", err)
			}
			if _, err := s.StartRetention(admin2, ApplyRequest{PlanID: p.ID}); !errors.Is(err, ErrForbidden) {
				t.Errorf("job of an endorsed, unapproved plan = %v", err)
			}
			if _, err := s.ApproveRetention(ctx, admin, p.ID); !errors.Is(err, ErrForbidden) {
				t.Errorf("the endorser approving too = %v", err)
			}
			if p, err = s.ApproveRetention(ctx, admin2, p.ID); err != nil || p.ApprovedBy != admin2.Name {
				t.Fatalf("second admin's approval = %+v, %v", p, err)
			}
			done, err := s.ApplyRetention(ctx, admin, ApplyRequest{PlanID: p.ID}, nil)
			if err != nil || done.Deleted != 3 {
				t.Fatalf("apply = %+v, %v", done, err)
			}
			checkGone(t, s, ids, []string{"old-a", "old-b", "sent-b"})
		})
	}
}

// catalogDB opens the archive's catalog beside it (a superuser's edit).
func catalogDB(t *testing.T, s *Service) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(s.Archive().Dir(), "catalog.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// editPlan rewrites a saved plan file with fn (what an attacker with the
// data directory would do).
func editPlan(t *testing.T, s *Service, id string, fn func(p map[string]any)) {
	t.Helper()
	path := filepath.Join(s.planDir(), id+".json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var p map[string]any
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	fn(p)
	if b, err = json.Marshal(p); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// F6: apply does not trust the plan file: a list edited after the plan
// (or after its approval) is refused, and every item is weighed again
// under the config in force and the message's own Date header.
func TestRetentionApplyRederives(t *testing.T) {
	ctx := context.Background()
	all6y := []RetentionPolicy{pol("all", "6y", AgeSent, nil, nil, "")}
	forged := func(ids map[string]string) PlanItem {
		return PlanItem{SHA256: ids["new-a"], Size: 100, Policy: "all", From: AgeSent, Date: time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC), Days: 4000}
	}
	for _, tt := range []struct {
		name     string
		fourEyes bool
		before   func(t *testing.T, s *Service, ids map[string]string) // before the plan
		after    func(t *testing.T, s *Service, ids map[string]string, id string)
		wantErr  string   // apply refused with this
		gone     []string // else: deleted
		skipped  []string // and: planned, not deleted
	}{
		{name: "untouched", gone: []string{"old-a", "old-b", "sent-b"}},
		{name: "list edited", after: func(t *testing.T, s *Service, ids map[string]string, id string) {
			editPlan(t, s, id, func(p map[string]any) { p["delete"] = append(p["delete"].([]any), forged(ids)) })
		}, wantErr: "changed since it was made"},
		{name: "list and its digest edited", after: func(t *testing.T, s *Service, ids map[string]string, id string) {
			p, _ := s.loadPlan(id)
			items := append(p.Delete, forged(ids))
			editPlan(t, s, id, func(p map[string]any) { p["delete"], p["delete_sha256"] = items, planDigest(items) })
		}, wantErr: "audit trail has no retention-plan row"},
		{name: "approved, then list edited", fourEyes: true, after: func(t *testing.T, s *Service, ids map[string]string, id string) {
			if _, err := s.ApproveRetention(context.Background(), Caller{Name: "bea", Role: RoleAdmin}, id); err != nil {
				t.Fatal(err)
			}
			p, _ := s.loadPlan(id)
			items := p.Delete[:1]
			editPlan(t, s, id, func(p map[string]any) { p["delete"], p["delete_sha256"] = items, planDigest(items) })
		}, wantErr: "audit trail has no retention-plan row"},
		{name: "config keeps longer since", after: func(t *testing.T, s *Service, ids map[string]string, id string) {
			s.SetRetention(&RetentionConfig{Policies: []RetentionPolicy{pol("all", "30y", AgeSent, nil, nil, "")}})
		}, skipped: []string{"old-a", "old-b", "sent-b"}},
		{name: "policy gone since", after: func(t *testing.T, s *Service, ids map[string]string, id string) {
			s.SetRetention(&RetentionConfig{Policies: []RetentionPolicy{pol("all", "6y", AgeSent, []string{"bob"}, nil, "")}})
		}, gone: []string{"old-b", "sent-b"}, skipped: []string{"old-a"}},
		{name: "catalog date edited to an old one", before: func(t *testing.T, s *Service, ids map[string]string) {
			k, _ := store.ParseKey(ids["new-a"])
			if _, err := catalogDB(t, s).Exec(`UPDATE messages SET date_unix = ? WHERE sha256 = ?`, time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC).Unix(), k[:]); err != nil {
				t.Fatal(err)
			}
		}, gone: []string{"old-a", "old-b", "sent-b"}, skipped: []string{"new-a"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, ids := retArchive(t, &RetentionConfig{FourEyes: tt.fourEyes, Policies: all6y})
			if tt.before != nil {
				tt.before(t, s, ids)
			}
			p, err := s.PlanRetention(ctx, admin)
			if err != nil {
				t.Fatal(err)
			}
			if tt.after != nil {
				tt.after(t, s, ids, p.ID)
			}
			done, err := s.ApplyRetention(ctx, admin, ApplyRequest{PlanID: p.ID}, nil)
			if tt.wantErr != "" {
				if !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("apply = %v, want refused: %s", err, tt.wantErr)
				}
				checkGone(t, s, ids, nil)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var skipped []string
			for _, sk := range done.Skipped {
				skipped = append(skipped, sk.SHA256)
				if !strings.Contains(sk.Why, "not expired now") && !strings.Contains(sk.Why, "no retention policy") {
					t.Errorf("skip reason %q", sk.Why)
				}
			}
			if got := names(ids, skipped); !slices.Equal(got, tt.skipped) {
				t.Errorf("skipped %v, want %v", got, tt.skipped)
			}
			checkGone(t, s, ids, tt.gone)
			for _, name := range tt.gone {
				k, _ := store.ParseKey(ids[name])
				ts, _ := s.Archive().TombstoneOf(ctx, k)
				if !strings.Contains(ts.Reason, "2010") && !strings.Contains(ts.Reason, "2012") {
					t.Errorf("tombstone of %s: reason %q does not give its own sent date", name, ts.Reason)
				}
			}
		})
	}
}

// F3 through the service: a tombstone INSERTed by hand, pending, for a
// held message is not finished by a writer's open or by retention apply;
// apply reports it; the message stays readable.
func TestRetentionForgedPendingTombstone(t *testing.T) {
	ctx := context.Background()
	s, ids := retArchive(t, &RetentionConfig{Policies: []RetentionPolicy{pol("all", "6y", AgeSent, []string{"bob"}, nil, "")}})
	if _, err := s.CreateHold(ctx, admin, HoldRequest{Name: "alice-matter", Custodians: []string{"alice"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := catalogDB(t, s).Exec(`INSERT INTO tombstones(sha256, size, reason, rule, actor, at, state)
		VALUES (?, 10, 'expired', 'retention:finra-6y', 'alice', '2026-01-01T00:00:00Z', 'pending')`, ids["old-a"]); err != nil {
		t.Fatal(err)
	}
	p, err := s.ApplyRetention(ctx, admin, ApplyRequest{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Parked) != 1 || p.Parked[0].Tombstone.SHA256 != ids["old-a"] {
		t.Fatalf("apply's parked = %+v, want the forged tombstone", p.Parked)
	}
	if p.Deleted != 2 {
		t.Errorf("apply deleted %d, want bob's 2", p.Deleted)
	}
	if _, _, err := s.Raw(ctx, admin, ids["old-a"], "download"); err != nil {
		t.Fatalf("the held message under a forged tombstone: %v", err)
	}
	// Released, still not finished by apply: it was never started.
	if _, err := s.ReleaseHold(ctx, admin, "alice-matter", "done"); err != nil {
		t.Fatal(err)
	}
	if p, err = s.ApplyRetention(ctx, admin, ApplyRequest{}, nil); err != nil || len(p.Parked) != 1 || !strings.Contains(p.Parked[0].Why, "started") {
		t.Fatalf("apply after release = %+v, %v", p, err)
	}
	if _, _, err := s.Raw(ctx, admin, ids["old-a"], "download"); err != nil {
		t.Fatalf("a forged tombstone's message after apply: %v", err)
	}
}

// F5: an IMAP-syntax hold covers the copies of every UIDVALIDITY epoch of
// its custodians' mailboxes, as the human-syntax one does; retention does
// not plan them.
func TestHoldIMAPQueryAcrossUIDValidity(t *testing.T) {
	ctx := context.Background()
	a, users := newArchive(t)
	s := New(a, &Options{Users: users, Retention: &RetentionConfig{Policies: []RetentionPolicy{pol("all", "1y", AgeSent, nil, nil, "")}}})
	if _, err := a.EnsureMailbox(ctx, "alice", "INBOX", catalog.SourceIMAP, 7); err != nil {
		t.Fatal(err)
	}
	var shas []string
	for i := range 6 {
		raw := retRaw(retMsg{name: fmt.Sprint("m", i), subject: fmt.Sprint("msg ", i), sent: "Mon, 1 Mar 2010 10:00:00 +0000"})
		if _, err := a.Ingest(ctx, []indexer.Item{{Account: "alice", Mailbox: "INBOX", UIDValidity: 7, UID: uint32(i + 1), Raw: raw}}); err != nil {
			t.Fatal(err)
		}
		shas = append(shas, store.KeyOf(raw).String())
	}
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for _, h := range []HoldRequest{
		{Name: "ImapHold", Custodians: []string{"alice"}, Query: `SUBJECT "msg 4"`, Syntax: SyntaxIMAP},
		{Name: "ImapUIDHold", Custodians: []string{"alice"}, Query: `UID 2`, Syntax: SyntaxIMAP},
		{Name: "HumanHold", Custodians: []string{"alice"}, Query: `subject:"msg 4"`},
	} {
		if _, err := s.CreateHold(ctx, admin, h); err != nil {
			t.Fatal(err)
		}
	}
	check := func(when string) {
		t.Helper()
		held, err := s.HeldBy(ctx, shas)
		if err != nil {
			t.Fatal(err)
		}
		if got := held[shas[4]]; !slices.Equal(got, []string{"ImapHold", "HumanHold"}) {
			t.Errorf("%s: msg 4 held by %v, want ImapHold and HumanHold", when, got)
		}
		if got := held[shas[1]]; !slices.Equal(got, []string{"ImapUIDHold"}) {
			t.Errorf("%s: msg 1 (UID 2 of its epoch) held by %v, want ImapUIDHold", when, got)
		}
		if len(held) != 2 {
			t.Errorf("%s: held = %v, want 2 messages", when, held)
		}
		for _, name := range []string{"ImapHold", "HumanHold"} {
			info, err := s.Hold(ctx, admin, name)
			if err != nil || info.Counts == nil || info.Counts.Messages != 1 {
				t.Errorf("%s: hold %s counts %+v, %v; want 1 message", when, name, info.Counts, err)
			}
		}
		p, err := s.makePlan(ctx, admin, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(planned(p), shas[4]) || slices.Contains(planned(p), shas[1]) || len(p.Delete) != 4 {
			t.Errorf("%s: plan deletes %d, among them a held one: %v", when, len(p.Delete), planned(p))
		}
	}
	check("before")
	// The server's UIDVALIDITY changes (catalog/mailbox.go's OpenEpoch):
	// the copies stay in epoch 7, the mailbox's current epoch is 8 and
	// empty.
	if _, newEpoch, err := a.OpenEpoch(ctx, "alice", "", "INBOX", 8); err != nil || !newEpoch {
		t.Fatalf("OpenEpoch = %v, %v", newEpoch, err)
	}
	check("after a UIDVALIDITY change")
}

// Plans do not pile up: a read-only role keeps at most MaxReadOnlyPlans
// unapproved plans, the oldest pruned (audited); the whole directory at
// most MaxPlans, never pruning an approved plan.
func TestRetentionPlansBounded(t *testing.T) {
	ctx := context.Background()
	s, _ := retArchive(t, &RetentionConfig{FourEyes: true, Policies: []RetentionPolicy{pol("all", "6y", AgeSent, nil, nil, "")}})
	var first *RetentionPlan
	for i := range MaxReadOnlyPlans + 3 {
		p, err := s.PlanRetention(ctx, legal)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = p
		}
	}
	list, err := s.RetentionPlans(ctx, admin)
	if err != nil || len(list) != MaxReadOnlyPlans {
		t.Fatalf("%d plans saved, %v; want %d", len(list), err, MaxReadOnlyPlans)
	}
	if _, err := s.loadPlan(first.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("the oldest read-only plan was kept: %v", err)
	}
	pruned, err := s.AuditTrail(ctx, admin, AuditFilter{Action: "retention-prune"})
	if err != nil || len(pruned) != 3 {
		t.Errorf("retention-prune rows = %d, %v; want 3", len(pruned), err)
	}
	// An endorsed plan of legal's is not pruned as legal's unapproved
	// ones are; plans by an admin fill up to MaxPlans, then the oldest
	// unapproved ones go.
	keep := list[0]
	if _, err := s.ApproveRetention(ctx, admin, keep.ID); err != nil {
		t.Fatal(err)
	}
	admin2 := Caller{Name: "bea", Role: RoleAdmin}
	if _, err := s.ApproveRetention(ctx, admin2, keep.ID); err != nil {
		t.Fatal(err)
	}
	for range MaxPlans + 5 {
		if _, err := s.PlanRetention(ctx, admin); err != nil {
			t.Fatal(err)
		}
	}
	list, err = s.RetentionPlans(ctx, admin)
	if err != nil || len(list) != MaxPlans {
		t.Fatalf("%d plans saved, %v; want %d", len(list), err, MaxPlans)
	}
	if _, err := s.loadPlan(keep.ID); err != nil {
		t.Errorf("the approved plan was pruned: %v", err)
	}
}

// The plan file's read-modify-write is under a lock: two admins approving
// a legal user's plan at the same moment end with one endorsement and one
// approval by two different names, never one lost.
func TestRetentionApproveConcurrently(t *testing.T) {
	ctx := context.Background()
	s, _ := retArchive(t, &RetentionConfig{FourEyes: true, Policies: []RetentionPolicy{pol("all", "6y", AgeSent, nil, nil, "")}})
	for range 10 {
		p, err := s.PlanRetention(ctx, legal)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, c := range []Caller{admin, {Name: "bea", Role: RoleAdmin}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = s.ApproveRetention(ctx, c, p.ID)
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.loadPlan(p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.EndorsedBy == "" || got.ApprovedBy == "" || got.EndorsedBy == got.ApprovedBy || !got.approved() {
			t.Fatalf("after two concurrent approvals: endorsed by %q, approved by %q", got.EndorsedBy, got.ApprovedBy)
		}
	}
}
