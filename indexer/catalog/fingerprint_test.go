package catalog

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
)

// A catalog made before the fingerprint columns gets them when it opens,
// its rows keep their data and wait for the backfill, and opening again
// changes nothing.
func TestFingerprintMigration(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "catalog.db")
	c, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	// Make it an old catalog: no fingerprint columns, one message.
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`DROP INDEX messages_by_fingerprint`,
		`ALTER TABLE messages DROP COLUMN fingerprint`,
		`ALTER TABLE messages DROP COLUMN fingerprint_v`,
		`INSERT INTO messages(sha256, size, subject, stored_at) VALUES (x'0101010101010101010101010101010101010101010101010101010101010101', 10, 'old', '2020-01-01T00:00:00Z')`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()
	for range 2 {
		c, err := Open(path)
		if err != nil {
			t.Fatalf("open an old catalog: %v", err)
		}
		missing, err := c.MissingFingerprints(ctx, 1, 0, 10)
		if err != nil || len(missing) != 1 || missing[0].SHA256[0] != 1 {
			t.Fatalf("MissingFingerprints = %v, %v; want the old row", missing, err)
		}
		c.Close()
	}
	c, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	missing, _ := c.MissingFingerprints(ctx, 1, 0, 10)
	if err := c.SetFingerprints(ctx, 1, map[int64]string{missing[0].ID: "abc"}); err != nil {
		t.Fatal(err)
	}
	if m, err := c.MissingFingerprints(ctx, 1, 0, 10); err != nil || len(m) != 0 {
		t.Errorf("after SetFingerprints: missing %v, %v", m, err)
	}
	// A newer version recomputes it.
	if m, err := c.MissingFingerprints(ctx, 2, 0, 10); err != nil || len(m) != 1 {
		t.Errorf("version 2: missing %v, %v; want the row of version 1", m, err)
	}
	var subject string
	if err := c.db.QueryRow(`SELECT subject FROM messages`).Scan(&subject); err != nil || subject != "old" {
		t.Errorf("the old row after the migration: subject %q, %v", subject, err)
	}
}
