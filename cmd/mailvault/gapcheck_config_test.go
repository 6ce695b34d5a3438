package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailvault/harvest"
)

// TestConfigGapCheck: gap_check is a key of the configuration and reaches
// the harvester's options as harvest.Options.GapCheck takes it: a duration
// as written, "0", "0s" and "off" as negative (never, but on demand), unset
// as 0 (the harvester's default, 6 hours); a duration under 1s or not a
// duration is a problem.
func TestConfigGapCheck(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	write := func(extra string) string {
		path := filepath.Join(dir, "c.yaml")
		text := extra + "accounts:\n  - name: a\n    host: mail.example.org\n    username: a\n    password_file: " + pw + "\n"
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	for _, tc := range []struct {
		line string
		want time.Duration
	}{
		{"", 0},
		{"gap_check: 6h\n", 6 * time.Hour},
		{"gap_check: 90m\n", 90 * time.Minute},
		{"gap_check: 2s\n", 2 * time.Second},
		{"gap_check: 0\n", -1},
		{`gap_check: "0"` + "\n", -1},
		{"gap_check: 0s\n", -1},
		{"gap_check: off\n", -1},
		{`gap_check: "off"` + "\n", -1},
	} {
		cfg, _, err := loadConfig(write(tc.line))
		if err != nil {
			t.Errorf("loadConfig(%q): %v", tc.line, err)
			continue
		}
		opts := cfg.harvestOptions(&harvest.Options{FetchChunk: 7})
		if opts.GapCheck != tc.want || opts.FetchChunk != 7 {
			t.Errorf("loadConfig(%q): GapCheck = %v, FetchChunk %d; want %v and the FetchChunk given", tc.line, opts.GapCheck, opts.FetchChunk, tc.want)
		}
	}
	for _, line := range []string{"gap_check: 500ms\n", "gap_check: -1h\n", "gap_check: daily\n", "gap_check: 6\n"} {
		_, _, err := loadConfig(write(line))
		if err == nil || !strings.Contains(err.Error(), "gap_check: ") || !strings.Contains(err.Error(), "want a duration of at least 1s, like 6h, or off") {
			t.Errorf("loadConfig(%q) = %v, want a gap_check problem", line, err)
		}
	}
}
