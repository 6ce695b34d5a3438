package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRetentionConfig: the retention section is checked in full, with paths.
func TestRetentionConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	os.WriteFile(path, []byte(`retention:
  schedule: 5s
  policies:
    - name: a
      keep: 6 years
    - name: a
      keep: 0d
      from: received
    - name: "has space"
      keep: 1y
      query: "from:("
`), 0o600)
	_, _, err := loadConfig(path)
	if err == nil {
		t.Fatal("a bad retention section loaded")
	}
	for _, want := range []string{"retention.schedule", "retention.policies[0].keep", "retention.policies[1].name", "retention.policies[1].keep",
		"retention.policies[1].from", "retention.policies[2].name", "retention.policies[2].query"} {
		if !strings.Contains(err.Error(), want+":") {
			t.Errorf("error does not name %s:\n%v", want, err)
		}
	}
	os.WriteFile(path, []byte("data_dir: x\n"), 0o600)
	cfg, _, err := loadConfig(path)
	if err != nil || !cfg.retention.WORM || len(cfg.retention.Policies) != 0 || cfg.retention.Schedule != 0 {
		t.Fatalf("no retention section = %+v, %v; want WORM, no policy, no schedule", cfg.retention, err)
	}
}

// retentionMaildir writes n old (2010) and n new messages into a Maildir
// and returns it with the sha256 of each old one.
func retentionMaildir(t *testing.T, n int) (string, map[string]bool) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "md")
	for _, d := range []string{"cur", "new", "tmp"} {
		os.MkdirAll(filepath.Join(root, d), 0o700)
	}
	old := map[string]bool{}
	for i := range 2 * n {
		year, word := 2024, "fresh"
		if i%2 == 0 {
			year, word = 2010, "stale"
		}
		raw := fmt.Sprintf("From: x@example.org\r\nSubject: %s %d\r\nMessage-ID: <%d@example.org>\r\nDate: Mon, 1 Mar %d 10:00:00 +0000\r\n\r\n%s body %d\r\n", word, i, i, year, word, i)
		if year == 2010 {
			sum := sha256.Sum256([]byte(raw))
			old[hex.EncodeToString(sum[:])] = true
		}
		os.WriteFile(filepath.Join(root, "new", fmt.Sprintf("%d.m", i)), []byte(raw), 0o600)
	}
	return root, old
}

// TestRetentionApplySurvivesSIGKILL kills `retention apply` with SIGKILL
// at random points, runs it again each time, and then checks that nothing
// was deleted that the plan did not list, nothing it listed is left half
// deleted (a done tombstone, no blob, no index document, a scrubbed row),
// and `verify` is clean.
func TestRetentionApplySurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildMailvault(t)
	mv := binary(bin)
	data := filepath.Join(t.TempDir(), "data")
	md, old := retentionMaildir(t, 150)
	if r := mv(t, "import", "--data", data, "--account", "alice", md); r.code != 0 {
		t.Fatalf("import: %d %s", r.code, r.stderr)
	}
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(cfg, []byte("data_dir: "+data+"\nretention:\n  worm: false\n  policies:\n    - name: six\n      keep: 6y\n"), 0o600)

	// WORM by default: without the config, apply refuses.
	if r := mv(t, "retention", "apply", "--data", data); r.code != 2 || !strings.Contains(r.stderr, "WORM") {
		t.Fatalf("apply without a config = %d %s, want 2 and WORM", r.code, r.stderr)
	}
	r := mv(t, "retention", "plan", "--config", cfg, "--json")
	var plan struct {
		ID     string `json:"id"`
		Delete []struct {
			SHA256 string `json:"sha256"`
		} `json:"delete"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &plan); err != nil || r.code != 0 {
		t.Fatalf("plan: %d %v %s", r.code, err, r.stderr)
	}
	if len(plan.Delete) != len(old) {
		t.Fatalf("plan deletes %d, want %d", len(plan.Delete), len(old))
	}
	for _, it := range plan.Delete {
		if !old[it.SHA256] {
			t.Fatalf("plan lists %s, not an old message", it.SHA256)
		}
	}
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 1))
	t.Logf("seed %d", seed)
	kills := 0
	for range 6 {
		res := runBinary(t, bin, time.Duration(100+rng.IntN(900))*time.Millisecond, "retention", "apply", "--config", cfg, "--plan", plan.ID)
		if !res.killed {
			if res.code != 0 {
				t.Fatalf("apply: %d %s", res.code, res.stderr)
			}
			break
		}
		kills++
	}
	t.Logf("killed %d times", kills)
	if r := mv(t, "retention", "apply", "--config", cfg, "--plan", plan.ID, "--json"); r.code != 0 {
		t.Fatalf("final apply: %d %s", r.code, r.stderr)
	}
	r = mv(t, "retention", "show", plan.ID, "--config", cfg, "--json")
	var done struct {
		State   string `json:"state"`
		Deleted int    `json:"deleted"`
	}
	json.Unmarshal([]byte(r.stdout), &done)
	if done.State != "applied" || done.Deleted != len(old) {
		t.Fatalf("plan after apply = %+v (%s)", done, r.stderr)
	}
	// Blobs: the planned ones gone, every other there.
	blobs := 0
	filepath.Walk(filepath.Join(data, "blobs"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && strings.HasSuffix(p, ".zst") {
			blobs++
			if old[strings.TrimSuffix(filepath.Base(p), ".zst")] {
				t.Errorf("blob of planned %s is still there", filepath.Base(p))
			}
		}
		return nil
	})
	if blobs != len(old) {
		t.Errorf("%d blobs left, want the %d not planned", blobs, len(old))
	}
	// Index: no stale document, every fresh one.
	if n := searchTotal(t, mv, data, "stale"); n != 0 {
		t.Errorf("search finds %d deleted messages", n)
	}
	if n := searchTotal(t, mv, data, "fresh"); n != len(old) {
		t.Errorf("search finds %d kept messages, want %d", n, len(old))
	}
	// Verify: clean, the deleted counted as disposed.
	r = mv(t, "verify", "--data", data, "--json")
	var rep struct {
		Problems []json.RawMessage `json:"problems"`
		Disposed int               `json:"disposed"`
	}
	json.Unmarshal([]byte(r.stdout), &rep)
	if r.code != 0 || len(rep.Problems) != 0 || rep.Disposed != len(old) {
		t.Fatalf("verify after apply: %d %s %s", r.code, r.stdout, r.stderr)
	}
	// Erase: WORM off, one fresh message; refused without a reason.
	var fresh string
	for _, h := range searchAll(t, mv, data, "fresh") {
		fresh = h.SHA256
		break
	}
	if r := mv(t, "erase", fresh, "--config", cfg); r.code != 2 {
		t.Errorf("erase without a reason = %d %s", r.code, r.stderr)
	}
	if r := mv(t, "erase", fresh, "--config", cfg, "--reason", "GDPR-42"); r.code != 0 || !strings.Contains(r.stdout, "rule erasure") {
		t.Errorf("erase = %d %s %s", r.code, r.stdout, r.stderr)
	}
	for _, cmd := range []string{"retention", "erase"} {
		if r := mv(t, cmd, "--help"); r.code != 0 || !strings.Contains(r.stdout, "Usage: mailvault "+cmd) {
			t.Errorf("%s --help = %d %s", cmd, r.code, r.stdout)
		}
	}
}
