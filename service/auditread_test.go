package service

import (
	"context"
	"testing"
	"time"
)

// TestAuditRead: a bulk read's audit row (the IMAP view's FETCH) is in the
// trail as soon as AuditRead returns, through the other handle too, in
// order with the rows written through the main handle, and still there
// after the store is closed and opened again (the final checkpoint).
func TestAuditRead(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	u, err := OpenUsers(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Audit(ctx, AuditEntry{User: "a", Action: "login"}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		if err := u.AuditRead(ctx, AuditEntry{User: "a", Action: "imap-fetch", Detail: "f UID 1"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := u.Audit(ctx, AuditEntry{User: "a", Action: "logout"}); err != nil {
		t.Fatal(err)
	}
	check := func(u *Users, when string) {
		t.Helper()
		es, err := u.AuditTrail(ctx, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) != 52 {
			t.Fatalf("%s: %d rows, want 52", when, len(es))
		}
		// Oldest first.
		if es[0].Action != "login" || es[51].Action != "logout" || es[1].Action != "imap-fetch" {
			t.Errorf("%s: order %s ... %s", when, es[0].Action, es[51].Action)
		}
	}
	check(u, "at once")
	time.Sleep(readAuditSync + 200*time.Millisecond) // the sync ran meanwhile
	check(u, "after the sync")
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
	u2, err := OpenUsers(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer u2.Close()
	check(u2, "reopened")
}
