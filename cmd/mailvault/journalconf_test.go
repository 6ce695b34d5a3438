package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestJournalConfig: the journal: section's settings reach journal.Options,
// and every bad one is reported with its path.
func TestJournalConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) string {
		p := filepath.Join(dir, "c.yaml")
		os.WriteFile(p, []byte("data_dir: "+dir+"\n"+body), 0o600)
		return p
	}
	cfg, _, err := loadConfig(write(`journal:
  smtp_listen: 127.0.0.1:2525
  lmtp_listen: 127.0.0.1:2424
  account: compliance
  allow: [10.0.0.0/8, 192.0.2.7, "::1"]
  max_message_bytes: 1000
  max_recipients: 5
  max_sessions: 7
  timeout: 30s
  batch_window: 2ms
  encoded_recipients: journal
`))
	if err != nil {
		t.Fatal(err)
	}
	o := cfg.journal
	if o == nil || o.Account != "compliance" || o.MaxMessageBytes != 1000 || o.MaxRecipients != 5 || o.MaxSessions != 7 ||
		o.Timeout != 30*time.Second || o.BatchWindow != 2*time.Millisecond || o.EncodedPrefix != "journal" || len(o.Allow) != 3 ||
		o.Allow[1].String() != "192.0.2.7/32" || o.Allow[2].String() != "::1/128" {
		t.Fatalf("journal options %+v", o)
	}
	if cfg, _, err := loadConfig(write("")); err != nil || cfg.journal != nil {
		t.Fatalf("no journal section: %v, %+v", err, cfg.journal)
	}
	for _, tc := range []struct{ body, want string }{
		{"journal:\n  smtp_listen: 2525\n", `journal.smtp_listen: "2525": want host:port`},
		{"journal:\n  account: x\n", "journal: smtp_listen or lmtp_listen is required"},
		{"journal:\n  smtp_listen: 127.0.0.1:1\n  lmtp_listen: 127.0.0.1:1\n", "journal.lmtp_listen: the same address as smtp_listen"},
		{"journal:\n  smtp_listen: 127.0.0.1:1\n  allow: [10.0.0.0/33]\n", `journal.allow[0]: "10.0.0.0/33": want a CIDR range`},
		{"journal:\n  smtp_listen: 127.0.0.1:1\n  tls_cert: /nonexistent\n", "journal.tls_cert: tls_cert and tls_key go together"},
		{"journal:\n  smtp_listen: 127.0.0.1:1\n  tls_cert: /nonexistent\n  tls_key: /nonexistent\n", "journal.tls_cert: open /nonexistent"},
		{"journal:\n  smtp_listen: 127.0.0.1:1\n  auth_users_file: /nonexistent\n", "journal.auth_users_file: journal users: open /nonexistent"},
		{"journal:\n  smtp_listen: 127.0.0.1:1\n  max_recipients: -1\n", "journal: max_message_bytes, max_recipients, max_sessions and max_inflight_bytes must not be negative"},
		{"journal:\n  smtp_listen: 127.0.0.1:1\n  max_inflight_bytes: -5\n", "max_inflight_bytes must not be negative"},
		{"journal:\n  smtp_listen: 127.0.0.1:1\n  timeout: soon\n", `journal.timeout: "soon": want a duration`},
		{"journal:\n  smtp_listen: 127.0.0.1:1\n  encoded_recipients: a@b\n", `journal.encoded_recipients: "a@b"`},
		{"journal:\n  smtp_listen: 127.0.0.1:1\n  account: a/b\n", `journal.account: "a/b": no / in account names`},
		{"journal:\n  smtp_listen: 127.0.0.1:1\n  smtp: x\n", "field smtp not found"},
	} {
		_, _, err := loadConfig(write(tc.body))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("config %q: %v, want an error containing %q", tc.body, err, tc.want)
		}
	}
	users := filepath.Join(dir, "users")
	os.WriteFile(users, []byte("mta:not-a-hash\n"), 0o600)
	if _, _, err := loadConfig(write("journal:\n  smtp_listen: 127.0.0.1:1\n  auth_users_file: " + users + "\n")); err == nil ||
		!strings.Contains(err.Error(), "line 1 (mta): not a bcrypt hash") {
		t.Errorf("bad users file: %v", err)
	}
}
