package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRetentionQueryRefusesDriftingKeys: a retention policy's query may not
// use is:, newer_than: or older_than:, whose matches change while the mail
// does not; the config names the policy and the key. Fixed keys pass.
func TestRetentionQueryRefusesDriftingKeys(t *testing.T) {
	for _, tt := range []struct{ query, want string }{
		{"is:read", "retention.policies[0].query: is: changes what it matches"},
		{"list:announce older_than:1y", "retention.policies[0].query: older_than: changes what it matches"},
		{"-newer_than:7d", "retention.policies[0].query: newer_than: changes what it matches"},
		{"in:Trash list:announce before:2020-01-01", ""},
	} {
		cfg := filepath.Join(t.TempDir(), "c.yaml")
		body := "data_dir: " + t.TempDir() + "\nretention:\n  worm: false\n  policies:\n    - name: p\n      keep: 6y\n      query: '" + tt.query + "'\n"
		if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		_, _, err := loadConfig(cfg)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("query %q: %v", tt.query, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("query %q: %v, want an error containing %q", tt.query, err, tt.want)
		}
	}
}
