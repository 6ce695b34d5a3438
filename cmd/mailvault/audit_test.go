package main

import (
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mailvault/service"
)

// TestAuditCommand: what the CLI does on the host is in the trail, as
// operator:<OS user> (import, search, verify, user and token changes);
// `mailvault audit` filters it and writes JSON or CSV; when the trail
// cannot be written those commands are refused, and a user change is not
// made.
func TestAuditCommand(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	mbox := filepath.Join(t.TempDir(), "in.mbox")
	msgs := "From zed@example.org Mon Mar  4 10:00:00 2024\nFrom: zed@example.org\nSubject: budget\nDate: Mon, 4 Mar 2024 10:00:00 +0000\n\nthe budget\n\n" +
		"From zed@example.org Mon Mar  4 11:00:00 2024\nFrom: zed@example.org\nSubject: lunch\nDate: Mon, 4 Mar 2024 11:00:00 +0000\n\n=cmd|' /C calc'!A0\n"
	if err := os.WriteFile(mbox, []byte(msgs), 0o600); err != nil {
		t.Fatal(err)
	}
	mv := func(args ...string) cliResult {
		t.Helper()
		return inProcess(t, append([]string{args[0], "--data", data}, args[1:]...)...)
	}
	if r := mv("import", "--account", "a", "--mailbox", "INBOX", mbox); r.code != 0 {
		t.Fatalf("import: %d %s", r.code, r.stderr)
	}
	if r := mv("search", "--json", "budget"); r.code != 0 {
		t.Fatalf("search: %d %s", r.code, r.stderr)
	}
	if r := mv("search", "--", "=HYPERLINK(1)"); r.code != 0 {
		t.Fatalf("search =HYPERLINK: %d %s", r.code, r.stderr)
	}
	if r := mv("verify"); r.code != 0 {
		t.Fatalf("verify: %d %s %s", r.code, r.stdout, r.stderr)
	}
	stdin = strings.NewReader("a long password\n")
	defer func() { stdin = os.Stdin }()
	if r := mv("user", "add", "root", "--role", "admin"); r.code != 0 {
		t.Fatalf("user add: %d %s", r.code, r.stderr)
	}
	if r := mv("user", "token", "root"); r.code != 0 {
		t.Fatalf("user token: %d %s", r.code, r.stderr)
	}
	op := service.Operator().Name
	if !strings.HasPrefix(op, "operator:") {
		t.Errorf("the operator is %q, want operator:<OS user>", op)
	}
	r := mv("audit", "--json", "--user", op)
	if r.code != 0 {
		t.Fatalf("audit --json: %d %s", r.code, r.stderr)
	}
	var got []service.AuditEntry
	for _, line := range nonEmptyLines(r.stdout) {
		var e service.AuditEntry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatal(err)
		}
		got = append(got, e)
	}
	for _, want := range []struct{ action, detail string }{
		{service.ActionImport, "offline, account a: " + mbox},
		{service.ActionSearch, "in all accounts: human: budget"},
		{service.ActionVerify, "offline"},
		{service.ActionUserAdd, "root role admin"},
		{service.ActionTokenAdd, " for root expires "},
	} {
		found := false
		for _, e := range got {
			found = found || e.User == op && e.Action == want.action && strings.Contains(e.Detail, want.detail)
		}
		if !found {
			t.Errorf("audit --json lacks %s %s %q:\n%s", op, want.action, want.detail, r.stdout)
		}
	}
	for i := 1; i < len(got); i++ {
		if got[i].ID >= got[i-1].ID {
			t.Errorf("audit: entries not newest first: %d after %d", got[i].ID, got[i-1].ID)
		}
	}
	// Filters and CSV.
	r = mv("audit", "--csv", "--action", "search")
	rows, err := csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
	if r.code != 0 || err != nil || len(rows) != 3 || rows[0][0] != "id" {
		t.Fatalf("audit --csv --action search: %d %v %q %s", r.code, err, rows, r.stderr)
	}
	if rows[1][4] != "in all accounts: human: =HYPERLINK(1)" || rows[2][4] != "in all accounts: human: budget" {
		t.Errorf("csv details: %q", rows)
	}
	if r := mv("audit", "--limit", "1"); r.code != 0 || len(nonEmptyLines(r.stdout)) != 2 || !strings.Contains(r.stderr, "--before ") {
		t.Errorf("audit --limit 1: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, args := range [][]string{{"--since", "yesterday"}, {"--json", "--csv"}, {"--limit", "-1"}, {"--limit", "100000"}, {"word"}} {
		if r := mv(append([]string{"audit"}, args...)...); r.code != 2 {
			t.Errorf("audit %q: exit %d, want 2 (%s)", args, r.code, r.stderr)
		}
	}
	if r := inProcess(t, "audit", "--data", filepath.Join(t.TempDir(), "none")); r.code != 1 || !strings.Contains(r.stderr, "no audit trail") {
		t.Errorf("audit of no data directory: %d %s", r.code, r.stderr)
	}

	// The audit store fails: nothing that must be audited goes ahead.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(data, service.UsersFile))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TRIGGER audit_broken BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'audit store broken by the test'); END`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	for _, args := range [][]string{{"search", "budget"}, {"verify"}, {"reindex"}, {"import", "--account", "b", "--mailbox", "INBOX", mbox},
		{"export", "--out", filepath.Join(t.TempDir(), "prod"), "budget"}, {"audit"}, {"user", "remove", "root"}} {
		r := mv(args...)
		if r.code == 0 || !strings.Contains(r.stderr, "audit trail") || strings.Contains(r.stdout, "budget") {
			t.Errorf("%q with a broken audit trail: exit %d\nstdout %s\nstderr %s", args, r.code, r.stdout, r.stderr)
		}
	}
	if r := mv("user", "list"); !strings.Contains(r.stdout, "root") {
		t.Errorf("the unaudited user remove removed root:\n%s", r.stdout)
	}
	if r := mv("search", "--json", "account:b"); r.code == 0 {
		t.Errorf("search after the refused import: exit 0")
	}
}
