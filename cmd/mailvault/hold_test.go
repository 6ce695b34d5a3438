package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"mailvault/service"
)

// The hold commands as an operator runs them: offline on the archive, then
// through a running serve's socket, and the same holds over the web API
// for the roles that may see them.
func TestHoldCommands(t *testing.T) {
	bin := buildMailvault(t)
	data := t.TempDir()
	mv := binary(bin)
	for _, acct := range []string{"alice", "bob"} {
		if r := mv(t, "import", "--data", data, "--account", acct, writeMaildir(t, acct, 12)); r.code != 0 {
			t.Fatalf("import %s: %s", acct, r.stderr)
		}
	}
	holds := func(t *testing.T, args ...string) []service.HoldInfo {
		t.Helper()
		r := mv(t, append(append([]string{"hold"}, args...), "--data", data, "--json")...)
		if r.code != 0 {
			t.Fatalf("hold %v: exit %d: %s", args, r.code, r.stderr)
		}
		var out []service.HoldInfo
		for _, l := range nonEmptyLines(r.stdout) {
			var h service.HoldInfo
			if err := json.Unmarshal([]byte(l), &h); err != nil {
				t.Fatalf("hold %v: %v: %q", args, err, l)
			}
			out = append(out, h)
		}
		return out
	}

	// Offline.
	got := holds(t, "create", "--name", "Acme v. Example", "--custodian", "alice", "--description", "the merger case")
	if len(got) != 1 || got[0].Counts == nil || got[0].Counts.Messages != 12 || got[0].Counts.Occurrences != 12 {
		t.Fatalf("hold create = %+v, want one hold covering alice's 12 messages", got)
	}
	// A query hold covers what the same search in bob's account finds.
	merger := searchTotal(t, mv, data, "--account", "bob", "merger")
	got = holds(t, "create", "--name", "bob-merger", "--custodian", "bob", "--query", "merger")
	if merger == 0 || len(got) != 1 || got[0].Counts.Messages != merger {
		t.Fatalf("hold create bob-merger = %+v, want %d messages", got[0].Counts, merger)
	}
	for _, bad := range [][]string{
		{"create", "--name", "acme v. example", "--custodian", "bob"}, // name in use, any case
		{"create", "--name", "x", "--custodian", "bob", "--query", "(merger"},
		{"show", "nosuch"},
		{"release", "bob-merger"}, // no reason
	} {
		if r := mv(t, append(append([]string{"hold"}, bad...), "--data", data)...); r.code != 2 || r.stderr == "" {
			t.Errorf("hold %v: exit %d, stderr %q; want 2 with a message", bad, r.code, r.stderr)
		}
	}
	if r := mv(t, "hold", "create", "--data", data); r.code != 2 || !strings.Contains(r.stderr, "--custodian") {
		t.Errorf("hold create without flags: exit %d %q, want 2 naming what is required", r.code, r.stderr)
	}
	for _, sub := range []string{"create", "list", "show", "release"} {
		if r := mv(t, "hold", sub, "--help"); r.code != 0 || !strings.Contains(r.stdout, "Usage: mailvault hold "+sub) {
			t.Errorf("hold %s --help: exit %d: %q", sub, r.code, r.stdout)
		}
	}
	r := mv(t, "hold", "show", "bob-merger", "--data", data)
	if r.code != 0 || !strings.Contains(r.stdout, fmt.Sprintf("covers now:   %d messages, %d copies", merger, merger)) {
		t.Errorf("hold show: exit %d: %s %s", r.code, r.stdout, r.stderr)
	}

	// Through the running serve: the same holds, and changes made there.
	legalTok := addUser(t, bin, data, "lena", "--role", "legal")
	userTok := addUser(t, bin, data, "ann", "--role", "user", "--account", "alice")
	srv := startServe(t, bin, data)
	if list := holds(t, "list"); len(list) != 2 || list[0].Name != "Acme v. Example" || list[1].Counts.Messages != merger {
		t.Fatalf("hold list through serve = %+v", list)
	}
	got = holds(t, "release", "Acme v. Example", "--reason", "settled")
	if len(got) != 1 || got[0].Active || got[0].ReleaseReason != "settled" {
		t.Fatalf("hold release through serve = %+v", got)
	}
	if r := mv(t, "hold", "release", "Acme v. Example", "--reason", "again", "--data", data); r.code != 2 {
		t.Errorf("second release: exit %d, want 2", r.code)
	}
	var ans struct {
		Holds []service.HoldInfo `json:"holds"`
	}
	if code := srv.api(t, legalTok, "/api/holds", &ans); code != 200 || len(ans.Holds) != 2 || ans.Holds[0].Active {
		t.Errorf("GET /api/holds as legal = %d %+v", code, ans)
	}
	if code := srv.api(t, userTok, "/api/holds", nil); code != 403 {
		t.Errorf("GET /api/holds as user = %d, want 403", code)
	}
	srv.stop(t)

	// The trail names who did what, through either door.
	r = mv(t, "user", "audit", "--data", data, "--last", "200")
	for _, want := range []string{"hold-create", "Acme v. Example custodians=alice", "hold-release", "reason=settled", "hold-list"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("audit trail lacks %q:\n%s", want, r.stdout)
		}
	}
}
