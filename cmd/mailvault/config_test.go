package main

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"mailvault/harvest"
	"mailvault/indexer"
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

// TestConfigMaxMessageBytes: max_message_bytes is a key of the configuration
// and reaches the harvester's options; unset, the harvester's default
// stays; negative is a problem.
func TestConfigMaxMessageBytes(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("x\n"), 0o600)
	write := func(extra string) string {
		path := filepath.Join(dir, "c.yaml")
		text := extra + "accounts:\n  - name: a\n    host: mail.example.org\n    username: a\n    password_file: " + pw + "\n"
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	cfg, _, err := loadConfig(write("max_message_bytes: 1048576\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MaxMessageBytes != 1<<20 {
		t.Errorf("MaxMessageBytes = %d, want %d", cfg.MaxMessageBytes, 1<<20)
	}
	opts := cfg.harvestOptions(&harvest.Options{FetchChunk: 7})
	if opts.MaxMessageBytes != 1<<20 || opts.FetchChunk != 7 {
		t.Errorf("harvest options = %+v, want MaxMessageBytes 1 MiB and the FetchChunk given", opts)
	}

	cfg, _, err = loadConfig(write(""))
	if err != nil {
		t.Fatal(err)
	}
	if opts := cfg.harvestOptions(nil); opts.MaxMessageBytes != 0 {
		t.Errorf("unset max_message_bytes: harvest option %d, want 0 (the harvester's default)", opts.MaxMessageBytes)
	}

	if _, _, err := loadConfig(write("max_message_bytes: -1\n")); err == nil || !strings.Contains(err.Error(), "max_message_bytes: must not be negative") {
		t.Errorf("negative max_message_bytes: %v", err)
	}
	if _, _, err := loadConfig(write("max_message_bytes: 64M\n")); err == nil {
		t.Error("max_message_bytes: 64M was accepted; it is a number of bytes")
	}
}

// TestExampleConfigKeys: every key the example mentions, also those in
// comments (metrics_listen, tls_ca_file, password_env, "or token_env", ...),
// is one the loader accepts, at the level where the example puts it.
func TestExampleConfigKeys(t *testing.T) {
	raw, err := os.ReadFile("../../mailvault.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The keys the loader knows, from the yaml tags.
	known := map[string]bool{}
	for _, v := range []any{config{}, accountConfig{}, retentionConfig{}, policyConfig{}, ledgerConfig{}, attachmentsConfig{}, journalConfig{}, imapConfig{}} {
		ty := reflect.TypeOf(v)
		for i := range ty.NumField() {
			if tag, _, _ := strings.Cut(ty.Field(i).Tag.Get("yaml"), ","); tag != "" {
				known[tag] = true
			}
		}
	}
	// Commented-out settings ("# key: value" on a line of their own) are
	// uncommented in place, so that the decoder (which rejects unknown
	// keys) sees each at its level; keys named inside other comments
	// ("# or token_env: X") are looked up among the tags.
	lineKey := regexp.MustCompile(`^(\s*)# ([a-z][a-z0-9_]*): (\S.*)$`)
	inComment := regexp.MustCompile(`#.*?\b([a-z]+_[a-z0-9_]+):\s`)
	var lines []string
	mentioned := map[string]bool{}
	for _, line := range strings.Split(string(raw), "\n") {
		if m := lineKey.FindStringSubmatch(line); m != nil {
			line = m[1] + m[2] + ": " + m[3]
			mentioned[m[2]] = true
		}
		for _, m := range inComment.FindAllStringSubmatch(line, -1) {
			mentioned[m[1]] = true
		}
		lines = append(lines, line)
	}
	for _, k := range []string{"metrics_listen", "web_listen", "max_message_bytes", "tls_ca_file", "insecure_skip_verify", "password_env", "token_env"} {
		if !mentioned[k] {
			t.Errorf("the example no longer mentions %s; update this test", k)
		}
	}
	for k := range mentioned {
		if !known[k] {
			t.Errorf("the example mentions %s, which the loader rejects", k)
		}
	}
	var cfg config
	dec := yaml.NewDecoder(strings.NewReader(strings.Join(lines, "\n")))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		t.Fatalf("the example with its commented settings uncommented: %v", err)
	}
	if cfg.MetricsListen == "" || cfg.WebListen == "" || cfg.MaxMessageBytes != 256<<20 || len(cfg.Accounts) != 2 ||
		cfg.Accounts[0].TLSCAFile == "" || cfg.Accounts[0].PasswordEnv == "" {
		t.Errorf("the uncommented example decoded as %+v", cfg)
	}
}

// TestDockerConfig: the configuration docker-compose.yml mounts is valid but
// for its secret, which only the container has, and listens where the
// published port reaches it.
func TestDockerConfig(t *testing.T) {
	raw, err := os.ReadFile("../../docker/mailvault.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pw := filepath.Join(dir, "demo")
	os.WriteFile(pw, []byte("demo\n"), 0o600)
	text := strings.ReplaceAll(string(raw), "/run/secrets/demo", pw)
	path := filepath.Join(dir, "mailvault.yaml")
	os.WriteFile(path, []byte(text), 0o600)
	cfg, accounts, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.WebListen != "0.0.0.0:8080" || cfg.DataDir != "/data" || len(accounts) != 1 || accounts[0].Password != "demo" {
		t.Errorf("docker config: %+v, accounts %+v", cfg, accounts)
	}
	compose, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{`"127.0.0.1:8080:8080"`, "mailvault user add admin --role admin", "http://127.0.0.1:8080/"} {
		if !strings.Contains(string(compose), s) {
			t.Errorf("docker-compose.yml lacks %q", s)
		}
	}
}

// The attachments: section reaches the archive's options; bad values are
// refused with the key named.
func TestConfigAttachments(t *testing.T) {
	dir := t.TempDir()
	write := func(extra string) string {
		p := filepath.Join(dir, "c.yaml")
		if err := os.WriteFile(p, []byte("data_dir: "+dir+"\n"+extra), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg, _, err := loadConfig(write("attachments:\n  extract: false\n  timeout: 3s\n  max_text_bytes: 1000\n  max_depth: 2\n"))
	if err != nil {
		t.Fatal(err)
	}
	o := cfg.archiveOptions(&indexer.Options{})
	if !o.NoExtract || o.Extract.Timeout != 3*time.Second || o.Extract.MaxText != 1000 || o.Extract.MaxDepth != 2 {
		t.Fatalf("options %+v limits %+v", o, o.Extract)
	}
	cfg, _, err = loadConfig(write(""))
	if err != nil {
		t.Fatal(err)
	}
	if o := cfg.archiveOptions(&indexer.Options{}); o.NoExtract || o.Extract.Timeout != 0 {
		t.Fatalf("absent section: %+v %+v (want extraction on, defaults)", o, o.Extract)
	}
	cfg, _, err = loadConfig(write("attachments:\n  ocr: true\n"))
	if err != nil {
		t.Fatal(err)
	}
	if o := cfg.archiveOptions(&indexer.Options{}); !o.Extract.OCR || o.Extract.Timeout != ocrTimeout {
		t.Fatalf("ocr on: %+v (want the OCR timeout)", o.Extract)
	}
	for _, bad := range []string{"attachments:\n  timeout: soon\n", "attachments:\n  timeout: -1s\n", "attachments:\n  max_members: -5\n", "attachments:\n  max_text_bytes: 100000000\n"} {
		if _, _, err := loadConfig(write(bad)); err == nil || !strings.Contains(err.Error(), "attachments") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
