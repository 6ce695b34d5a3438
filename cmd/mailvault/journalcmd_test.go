package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailvault/indexer"
	"mailvault/indexer/catalog"
)

// `mailvault journal coverage` without serve: the archive opened here, the
// addresses from --config; --json for scripts, a table for people, --help.
func TestJournalCoverageCommand(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	a, err := indexer.Open(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, mb := range []struct{ acct, name, src string }{{"journal", "Journal", catalog.SourceJournal}, {"alice", "INBOX", catalog.SourceIMAP}} {
		if _, err := a.EnsureMailbox(ctx, mb.acct, mb.name, mb.src, 3); err != nil {
			t.Fatal(err)
		}
	}
	mail := func(id string) []byte {
		return []byte("From: bob@example.net\r\nTo: alice@example.org\r\nSubject: " + id + "\r\nDate: Tue, 1 Dec 2026 09:00:00 +0000\r\nMessage-ID: <" + id + "@example.net>\r\n\r\nbody of " + id + "\r\n")
	}
	env := &indexer.Envelope{MailFrom: "bob@example.net", RcptTo: []string{"alice@example.org"}, Recipients: []string{"alice@example.org"},
		Listener: "lmtp", ReceivedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	delivered := append([]byte("Delivered-To: alice@example.org\r\n"), mail("both")...)
	if _, err := a.Ingest(ctx, []indexer.Item{
		{Account: "journal", Mailbox: "Journal", UIDValidity: 3, UID: 1, Raw: mail("both"), Envelope: env},
		{Account: "journal", Mailbox: "Journal", UIDValidity: 3, UID: 2, Raw: mail("lost"), Envelope: env},
		{Account: "alice", Mailbox: "INBOX", UIDValidity: 3, UID: 1, Raw: delivered},
		{Account: "alice", Mailbox: "INBOX", UIDValidity: 3, UID: 2, Raw: mail("missed")},
	}); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("secret\n"), 0o600)
	cfg := filepath.Join(dir, "mailvault.yaml")
	os.WriteFile(cfg, []byte("data_dir: "+data+"\naccounts:\n  - name: alice\n    host: 127.0.0.1\n    username: alice\n    password_file: "+pw+
		"\n    addresses: [Alice@example.org]\n"), 0o600)

	r := inProcess(t, "journal", "coverage", "--config", cfg, "--json")
	if r.code != 0 {
		t.Fatalf("journal coverage: exit %d: %s", r.code, r.stderr)
	}
	var cov catalog.Coverage
	if err := json.Unmarshal([]byte(r.stdout), &cov); err != nil {
		t.Fatalf("--json output %q: %v", r.stdout, err)
	}
	want := catalog.AccountCoverage{Account: "alice", Both: 1, JournalOnly: 1, MailboxOnly: 1}
	if len(cov.Accounts) != 1 || cov.Accounts[0] != want {
		t.Errorf("coverage = %+v, want %+v", cov.Accounts, want)
	}
	r = inProcess(t, "journal", "coverage", "--config", cfg, "--account", "alice")
	if r.code != 0 || !strings.Contains(r.stdout, "JOURNAL ONLY") || !strings.Contains(r.stdout, "\nalice ") ||
		strings.Join(strings.Fields(r.stdout[strings.Index(r.stdout, "\nalice ")+1:]), " ") != "alice 1 1 1 0" {
		t.Errorf("table: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := inProcess(t, "journal", "--help"); r.code != 0 || !strings.Contains(r.stdout+r.stderr, "coverage reports, per account") {
		t.Errorf("--help: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := inProcess(t, "journal", "nonsense", "--data", data); r.code != 2 {
		t.Errorf("journal nonsense: exit %d, want 2", r.code)
	}
	if r := inProcess(t, "journal", "coverage", "--data", data, "--account", "nobody"); r.code != 0 {
		t.Errorf("an account with no mail: exit %d %s", r.code, r.stderr)
	}
}
