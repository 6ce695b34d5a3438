package service

import (
	"context"
	"errors"
	"testing"
)

// A gap check logs in to every configured server, so only callers who run
// jobs (admin, operator) may start one, as a job or at once; a user or an
// auditor is refused before anything is checked.
func TestGapCheckRefusedToOthers(t *testing.T) {
	a, users := newArchive(t)
	s := New(a, &Options{Users: users})
	for _, c := range []Caller{
		{Name: "ann", Role: RoleUser, Accounts: []string{"alice"}},
		{Name: "aud", Role: RoleAuditor},
	} {
		if _, err := s.StartCheck(c, nil); !errors.Is(err, ErrForbidden) {
			t.Errorf("StartCheck by %s (%s): %v, want forbidden", c.Name, c.Role, err)
		}
		if _, err := s.CheckGaps(context.Background(), c, nil); !errors.Is(err, ErrForbidden) {
			t.Errorf("CheckGaps by %s (%s): %v, want forbidden", c.Name, c.Role, err)
		}
	}
}
