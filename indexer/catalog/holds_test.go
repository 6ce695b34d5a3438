package catalog

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
)

// A hold is never deleted and changes only by its release, once, even by
// SQL that bypasses the methods.
func TestHoldsAreReleasedNeverDeleted(t *testing.T) {
	ctx := context.Background()
	c, err := Open(filepath.Join(t.TempDir(), "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	h, err := c.CreateHold(ctx, Hold{Name: "Acme", CreatedBy: "lena", Custodians: []string{"alice", "bob"}, Query: "merger", Syntax: "human"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateHold(ctx, Hold{Name: "acme", CreatedBy: "x", Custodians: []string{"c"}}); !errors.Is(err, ErrHoldExists) {
		t.Errorf("CreateHold(acme) after Acme = %v, want ErrHoldExists", err)
	}
	for _, stmt := range []string{
		`DELETE FROM holds`,
		`UPDATE holds SET custodians = '[]'`,
		`UPDATE holds SET query = ''`,
		`UPDATE holds SET name = 'other'`,
	} {
		if _, err := c.db.ExecContext(ctx, stmt); err == nil {
			t.Errorf("%s: succeeded, want refused by a trigger", stmt)
		}
	}
	got, err := c.HoldByName(ctx, "ACME")
	if err != nil || got.ID != h.ID || len(got.Custodians) != 2 || !got.Active() {
		t.Fatalf("HoldByName(ACME) = %+v, %v", got, err)
	}
	r, err := c.ReleaseHold(ctx, "acme", "lena", "settled")
	if err != nil || r.Active() || r.ReleasedBy != "lena" || r.ReleaseReason != "settled" {
		t.Fatalf("ReleaseHold = %+v, %v", r, err)
	}
	if _, err := c.ReleaseHold(ctx, "acme", "lena", "again"); !errors.Is(err, ErrHoldReleased) {
		t.Errorf("second ReleaseHold = %v, want ErrHoldReleased", err)
	}
	// Un-releasing by SQL is refused too.
	if _, err := c.db.ExecContext(ctx, `UPDATE holds SET released_at = ''`); err == nil {
		t.Error("un-release by UPDATE succeeded, want refused")
	}
	if _, err := c.HoldByName(ctx, "nosuch"); !errors.Is(err, ErrNotFound) {
		t.Errorf("HoldByName(nosuch) = %v, want ErrNotFound", err)
	}
	all, err := c.Holds(ctx)
	if err != nil || len(all) != 1 {
		t.Errorf("Holds = %v, %v; want the one hold", all, err)
	}
}
