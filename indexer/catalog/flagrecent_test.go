package catalog

import (
	"context"
	"strings"
	"testing"
)

// \Recent belongs to a session, not to the message: the history neither
// shows it nor records its coming and going, while the occurrence keeps
// it for IMAP SEARCH RECENT.
func TestFlagHistoryLeavesOutRecent(t *testing.T) {
	ctx := context.Background()
	c, mb, sha := flagFixture(t, []string{`\Recent`})
	// Dovecot's first session saw \Recent; the next sync does not.
	if _, ref, err := c.Reconcile(ctx, mb.ID, 5, map[uint32][]string{1: nil}); err != nil || ref != 1 {
		t.Fatalf("Reconcile = %d reflagged, %v; want the occurrence's flags updated", ref, err)
	}
	if n := historyRows(t, c); n != 0 {
		t.Errorf("\\Recent going away wrote %d history rows, want none", n)
	}
	var stored string
	if err := c.db.QueryRow(`SELECT flags FROM occurrences`).Scan(&stored); err != nil || stored != "" {
		t.Errorf("occurrence flags %q, %v; want \"\"", stored, err)
	}
	// A real change is recorded, without \Recent on either side.
	if _, _, err := c.Reconcile(ctx, mb.ID, 5, map[uint32][]string{1: {`\Recent`, `\Seen`}}); err != nil {
		t.Fatal(err)
	}
	h := historyOf(t, c, sha)
	if len(h) != 2 || len(h[0].Flags) != 0 || strings.Join(h[1].Flags, " ") != `\Seen` || strings.Join(h[1].Added, " ") != `\Seen` || len(h[1].Removed) != 0 {
		t.Errorf("history = %+v; want the first sighting empty, then \\Seen added, \\Recent nowhere", h)
	}
	if err := c.db.QueryRow(`SELECT flags FROM occurrences`).Scan(&stored); err != nil || stored != `\Recent \Seen` {
		t.Errorf("occurrence flags %q, %v; want \\Recent kept for SEARCH RECENT", stored, err)
	}
}
