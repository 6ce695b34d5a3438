package service

import (
	"context"
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
		{User{Name: "bob", Role: "owner"}, "long enough", `role "owner": want admin, auditor or user`},
		{User{Name: "bob", Role: RoleUser}, "long enough", "needs at least one account"},
		{User{Name: "b b", Role: RoleAdmin}, "long enough", "want a name without spaces"},
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
	tok, err := u.NewToken(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := u.TokenUser(ctx, tok); err != nil || got.Name != "bob" {
		t.Errorf("token: %+v, %v", got, err)
	}
	if err := u.Remove(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := u.TokenUser(ctx, tok); err != ErrBadLogin {
		t.Errorf("token of a removed user: %v", err)
	}
	if err := u.Remove(ctx, "bob"); err == nil {
		t.Error("removing twice: no error")
	}
}
