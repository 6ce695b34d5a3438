package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestExampleConfig: the annotated example in the repository parses (every
// key is a known one) and, with its secret files in place, is valid.
func TestExampleConfig(t *testing.T) {
	raw, err := os.ReadFile("../../mailvault.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	text := string(raw)
	for _, secret := range []string{"/run/secrets/alice", "/run/secrets/carol-token"} {
		local := filepath.Join(dir, filepath.Base(secret))
		if err := os.WriteFile(local, []byte("s3cret\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(text, secret) {
			t.Fatalf("the example no longer names %s; update this test", secret)
		}
		text = strings.ReplaceAll(text, secret, local)
	}
	path := filepath.Join(dir, "mailvault.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	_, accounts, err := loadConfig(path)
	if err != nil {
		t.Fatalf("the example config: %v", err)
	}
	if len(accounts) != 2 {
		t.Fatalf("%d accounts, want 2", len(accounts))
	}
	alice, carol := accounts[0], accounts[1]
	if alice.Password != "s3cret" || alice.Auth != "plain" || alice.PollInterval != time.Minute || alice.MaxConnections != 3 {
		t.Errorf("alice = %+v", alice)
	}
	if carol.Auth != "xoauth2" || carol.TokenFile == "" || carol.Password != "" || len(carol.Idle) != 2 || carol.Idle[1] != `\Sent` {
		t.Errorf("carol = %+v", carol)
	}
}

// TestConfigProblems: every problem is reported at once, with its path.
func TestConfigProblems(t *testing.T) {
	dir := t.TempDir()
	tok := filepath.Join(dir, "tok")
	os.WriteFile(tok, []byte("abc\n"), 0o600)
	t.Setenv("MV_TEST_TOKEN", "xyz")
	cfg := `accounts:
  - name: a
    host: mail.example.org
    tls: none
    username: a
    password_env: MV_TEST_UNSET_VARIABLE
  - name: a
    host: ""
    port: 70000
    username: b
    auth: xoauth2
    password_file: /nonexistent
    token_file: ` + tok + `
  - name: c
    host: mail.example.org
    username: c
    auth: xoauth2
  - name: d
    host: mail.example.org
    username: d
    auth: cram-md5
    password_env: MV_TEST_TOKEN
    poll_interval: 10ms
  - name: e
    host: mail.example.org
    username: e
    auth: xoauth2
    token_env: MV_TEST_TOKEN
`
	path := filepath.Join(dir, "bad.yaml")
	os.WriteFile(path, []byte(cfg), 0o600)
	_, _, err := loadConfig(path)
	if err == nil {
		t.Fatal("no error for a config with many problems")
	}
	want := []string{
		`accounts[0].tls: none sends the password in clear text; it is allowed only for a loopback host, not "mail.example.org"`,
		`accounts[0].password_env: environment variable MV_TEST_UNSET_VARIABLE is not set`,
		`accounts[1].name: "a" is used by another account`,
		`accounts[1].host: required`,
		`accounts[1].port: 70000 is not a port`,
		`accounts[1]: auth: xoauth2 takes token_file or token_env, not a password`,
		`accounts[2]: auth: xoauth2 needs token_file or token_env`,
		`accounts[3].auth: "cram-md5": want plain, login or xoauth2`,
		`accounts[3].poll_interval: "10ms": want a duration of at least 1s, like 60s`,
	}
	msg := err.Error()
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("error does not report %q", w)
		}
	}
	if strings.Contains(msg, "accounts[4]") {
		t.Errorf("the valid account e is reported: %s", msg)
	}
	if !strings.Contains(msg, "problems:") || strings.Count(msg, "\n  ") != len(want) {
		t.Errorf("want exactly %d problems, one per line:\n%s", len(want), msg)
	}
}
