package service

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestUsers(t *testing.T) {
	u, err := OpenUsers(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	ctx := context.Background()
	for _, tt := range []struct {
		user User
		pw   string
		want string
	}{
		{User{Name: "bob", Role: "owner"}, "long enough", `role "owner": want admin, auditor, legal or user`},
		{User{Name: "bob", Role: RoleUser}, "long enough", "needs at least one account"},
		{User{Name: "b b", Role: RoleAdmin}, "long enough", "without spaces"},
		{User{Name: "bob", Role: RoleAdmin}, "short", "at least 8 characters"},
	} {
		if err := u.Add(ctx, tt.user, tt.pw); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Add(%+v): %v, want %q", tt.user, err, tt.want)
		}
	}
	if err := u.Add(ctx, User{Name: "bob", Role: RoleUser, Accounts: []string{"x", "y"}}, "long enough"); err != nil {
		t.Fatal(err)
	}
	if err := u.Add(ctx, User{Name: "bob", Role: RoleAdmin}, "long enough"); err == nil || !strings.Contains(err.Error(), "exists already") {
		t.Errorf("second add: %v", err)
	}
	begin := time.Now()
	if _, err := u.Login(ctx, "bob", "wrong pass"); err != ErrBadLogin {
		t.Errorf("wrong password: %v", err)
	}
	if _, err := u.Login(ctx, "nobody", "wrong pass"); err != ErrBadLogin {
		t.Errorf("unknown user: %v", err)
	}
	if d := time.Since(begin); d < 100*time.Millisecond {
		t.Errorf("two failed logins took %v: an unknown name must cost a bcrypt comparison too", d)
	}
	if got, err := u.Login(ctx, "bob", "long enough"); err != nil || got.Role != RoleUser || !slices.Equal(got.Accounts, []string{"x", "y"}) {
		t.Errorf("login: %+v, %v", got, err)
	}
	if err := u.SetPassword(ctx, "bob", "another one"); err != nil {
		t.Fatal(err)
	}
	if _, err := u.Login(ctx, "bob", "long enough"); err != ErrBadLogin {
		t.Errorf("old password after passwd: %v", err)
	}
	tok, info, err := u.NewToken(ctx, "bob", 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := u.TokenUser(ctx, tok); err != nil || got.Name != "bob" {
		t.Errorf("token: %+v, %v", got, err)
	}
	// Tokens expire, and are revoked one at a time by id.
	short, _, err := u.NewToken(ctx, "bob", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	other, otherInfo, _ := u.NewToken(ctx, "bob", 0)
	if list, err := u.Tokens(ctx, "bob"); err != nil || len(list) != 3 || !slices.ContainsFunc(list, func(x TokenInfo) bool { return x == info }) {
		t.Errorf("tokens of bob: %+v, %v (want 3, among them %+v)", list, err, info)
	}
	if _, err := u.RevokeToken(ctx, otherInfo.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := u.TokenUser(ctx, other); err != ErrBadLogin {
		t.Errorf("revoked token: %v", err)
	}
	if _, err := u.TokenUser(ctx, tok); err != nil {
		t.Errorf("revoking one token revoked another: %v", err)
	}
	if _, err := u.RevokeToken(ctx, otherInfo.ID); !errors.Is(err, ErrNoToken) {
		t.Errorf("revoking twice: %v", err)
	}
	time.Sleep(2100 * time.Millisecond)
	if _, err := u.TokenUser(ctx, short); err != ErrBadLogin {
		t.Errorf("expired token: %v", err)
	}
	// Sessions are server-side: ended by logout, and with every token by a
	// password change.
	s1, err := u.NewSession(ctx, "bob", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := u.NewSession(ctx, "bob", time.Hour)
	if got, err := u.SessionUser(ctx, s1); err != nil || got.Name != "bob" {
		t.Errorf("session: %+v %v", got, err)
	}
	if err := u.EndSession(ctx, s1); err != nil {
		t.Fatal(err)
	}
	if _, err := u.SessionUser(ctx, s1); err != ErrBadLogin {
		t.Errorf("session after logout: %v", err)
	}
	if _, err := u.SessionUser(ctx, s2); err != nil {
		t.Errorf("the other session ended with the first: %v", err)
	}
	if err := u.SetPassword(ctx, "bob", "a third one"); err != nil {
		t.Fatal(err)
	}
	if _, err := u.SessionUser(ctx, s2); err != ErrBadLogin {
		t.Errorf("session after a password change: %v", err)
	}
	if _, err := u.TokenUser(ctx, tok); err != ErrBadLogin {
		t.Errorf("token after a password change: %v", err)
	}
	tok, _, _ = u.NewToken(ctx, "bob", 0)
	if err := u.Remove(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := u.TokenUser(ctx, tok); err != ErrBadLogin {
		t.Errorf("token of a removed user: %v", err)
	}
	if err := u.Remove(ctx, "bob"); err == nil {
		t.Error("removing twice: no error")
	}
	// No scope-less user, no unbounded or multi-line name.
	for _, bad := range []User{{Name: "eve", Role: RoleUser, Accounts: []string{""}}, {Name: strings.Repeat("x", 65), Role: RoleAdmin},
		{Name: "eve\nroot", Role: RoleAdmin}} {
		if err := u.Add(ctx, bad, "long enough"); err == nil {
			t.Errorf("Add(%q) accepted", bad.Name)
		}
	}
	// The audit trail keeps every field on one bounded line.
	if err := u.Audit(ctx, AuditEntry{User: "x\ny", Action: "search", Detail: "a\r\nb" + strings.Repeat("z", 1<<20)}); err != nil {
		t.Fatal(err)
	}
	trail, _ := u.AuditTrail(ctx, 1)
	if len(trail) != 1 || strings.ContainsAny(trail[0].User+trail[0].Detail, "\r\n") || len(trail[0].Detail) > 4096 {
		t.Errorf("audit row kept %q / %d bytes of detail", trail[0].User, len(trail[0].Detail))
	}
}
