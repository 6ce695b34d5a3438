package catalog

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
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

// Copies runs once per message in an export and on every message page, so
// its plan must never read every message: each table is reached through an
// index. (The fingerprint branch once scanned messages whole: SQLite does
// not use the partial index messages_by_fingerprint unless the query says
// m.fingerprint != ” itself, and an export of 6,046 messages took 70 s.)
func TestCopiesQueryUsesIndexes(t *testing.T) {
	c, err := Open(filepath.Join(t.TempDir(), "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rows, err := c.db.Query(`EXPLAIN QUERY PLAN `+copiesQuery, make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for _, d := range plan {
		// "SCAN grp" / "SCAN me" read the CTEs' few rows; a SCAN of a
		// table (messages, occurrences, mailboxes …) reads all of it.
		if f := strings.Fields(d); len(f) >= 2 && f[0] == "SCAN" && f[1] != "grp" && f[1] != "me" && !strings.Contains(d, "USING") {
			t.Errorf("Copies' plan scans a whole table: %q\nplan:\n%s", d, strings.Join(plan, "\n"))
		}
	}
	t.Log(strings.Join(plan, "\n"))
	if !strings.Contains(strings.Join(plan, "\n"), "messages_by_fingerprint") {
		t.Errorf("Copies' plan does not use messages_by_fingerprint:\n%s", strings.Join(plan, "\n"))
	}
}
