package service

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
)

// TestLoginCache: a login that passed the bcrypt check skips it the next
// time, with the same password and stored hash only; a wrong password is
// checked in full every time (and never cached), a changed password or a
// removed user is not let in by the cache.
func TestLoginCache(t *testing.T) {
	ctx := context.Background()
	u, err := OpenUsers(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	var checks atomic.Int64
	orig := checkPassword
	checkPassword = func(h, p []byte) error { checks.Add(1); return orig(h, p) }
	defer func() { checkPassword = orig }()
	if err := u.Add(ctx, User{Name: "ann", Role: RoleAdmin}, "first-secret-1"); err != nil {
		t.Fatal(err)
	}
	login := func(pw string, wantOK bool, wantChecks int64) {
		t.Helper()
		before := checks.Load()
		_, err := u.Login(ctx, "ann", pw)
		if ok := err == nil; ok != wantOK {
			t.Fatalf("login with %q: %v, want ok=%v", pw, err, wantOK)
		}
		if !wantOK && !errors.Is(err, ErrBadLogin) {
			t.Fatalf("login with %q: %v, want ErrBadLogin", pw, err)
		}
		if got := checks.Load() - before; got != wantChecks {
			t.Fatalf("login with %q: %d bcrypt checks, want %d", pw, got, wantChecks)
		}
	}
	login("first-secret-1", true, 1)
	login("first-secret-1", true, 0) // cached
	login("first-secret-2", false, 1)
	login("first-secret-2", false, 1) // a failure is never cached
	login("first-secret-1", true, 0)
	if err := u.SetPassword(ctx, "ann", "second-secret-1"); err != nil {
		t.Fatal(err)
	}
	login("first-secret-1", false, 1) // the old password: the hash changed
	login("second-secret-1", true, 1)
	login("second-secret-1", true, 0)
	if err := u.Remove(ctx, "ann"); err != nil {
		t.Fatal(err)
	}
	if _, err := u.Login(ctx, "ann", "second-secret-1"); !errors.Is(err, ErrBadLogin) {
		t.Fatalf("a removed user's cached login: %v", err)
	}
	// Bounded: past loginCacheMax entries the cache is emptied, not grown.
	c := newLoginCache()
	for i := 0; i < 3*loginCacheMax; i++ {
		c.add(c.sum("u", string(rune(i)), "h"))
	}
	if len(c.m) > loginCacheMax {
		t.Fatalf("%d entries, bound %d", len(c.m), loginCacheMax)
	}
}
