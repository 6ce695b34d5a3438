package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailvault/service"

	_ "modernc.org/sqlite"
)

// ledgerArchive imports n generated messages into a new data directory with
// a new signing key and returns the data directory, the public key file and
// the messages.
func ledgerArchive(t *testing.T, n int) (data, pub string, msgs [][]byte) {
	t.Helper()
	dir := t.TempDir()
	key := filepath.Join(dir, "keys", "ledger.key")
	if r := inProcess(t, "key", "init", "--out", key, "--name", "archive.example.com/test"); r.code != 0 {
		t.Fatalf("key init: %d %s %s", r.code, r.stdout, r.stderr)
	}
	t.Setenv("MAILVAULT_LEDGER_KEY", key)
	md := filepath.Join(dir, "Maildir")
	for _, d := range []string{"cur", "new", "tmp"} {
		os.MkdirAll(filepath.Join(md, d), 0o700)
	}
	for i := range n {
		m := []byte(fmt.Sprintf("From: a%d@example.com\r\nTo: b@example.com\r\nSubject: ledger %d\r\nMessage-ID: <l%d@example.com>\r\nDate: Tue, 1 Dec 2026 10:%02d:00 +0000\r\n\r\nbody %d\r\n", i, i, i, i%60, i))
		msgs = append(msgs, m)
		os.WriteFile(filepath.Join(md, "cur", fmt.Sprintf("%d.x:2,S", i)), m, 0o600)
	}
	data = filepath.Join(dir, "data")
	if r := inProcess(t, "import", "--data", data, "--account", "alice", md); r.code != 0 {
		t.Fatalf("import: %d %s %s", r.code, r.stdout, r.stderr)
	}
	return data, key + ".pub", msgs
}

func TestLedgerProveAndVerifyProof(t *testing.T) {
	data, pub, msgs := ledgerArchive(t, 20)
	if r := inProcess(t, "ledger", "verify", "--data", data, "--key", pub); r.code != 0 || !strings.Contains(r.stdout, "OK:") {
		t.Fatalf("ledger verify of a new archive: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	dir := t.TempDir()
	bundle := filepath.Join(dir, "proof.json")
	if r := inProcess(t, "prove", "--data", data, "--out", bundle, shaHex(msgs[7])); r.code != 0 {
		t.Fatalf("prove: %d %s %s", r.code, r.stdout, r.stderr)
	}
	fi, _ := os.Stat(bundle)
	if fi.Size() > 4096 {
		t.Errorf("bundle is %d bytes, want a few KB", fi.Size())
	}
	eml := filepath.Join(dir, "m.eml")
	os.WriteFile(eml, msgs[7], 0o600)
	// Checked with no archive at hand: another data directory, none set.
	t.Setenv("MAILVAULT_LEDGER_KEY", "")
	if r := inProcess(t, "verify-proof", "--key", pub, "--message", eml, bundle); r.code != 0 || !strings.Contains(r.stdout, "OK:") {
		t.Fatalf("verify-proof: %d %s %s", r.code, r.stdout, r.stderr)
	}
	other := filepath.Join(dir, "m2.eml")
	os.WriteFile(other, msgs[8], 0o600)
	if r := inProcess(t, "verify-proof", "--key", pub, "--message", other, bundle); r.code != 1 {
		t.Errorf("verify-proof with another message: exit %d %s", r.code, r.stdout)
	}
	wrong := filepath.Join(dir, "wrong.key")
	inProcess(t, "key", "init", "--out", wrong, "--name", "archive.example.com/test")
	if r := inProcess(t, "verify-proof", "--key", wrong+".pub", bundle); r.code != 1 {
		t.Errorf("verify-proof under another key: exit %d %s", r.code, r.stdout)
	}
	b, _ := os.ReadFile(bundle)
	forged := filepath.Join(dir, "forged.json")
	os.WriteFile(forged, []byte(strings.Replace(string(b), `\"size\":`, `\"size\":9`, 1)), 0o600)
	if r := inProcess(t, "verify-proof", "--key", pub, forged); r.code != 1 {
		t.Errorf("verify-proof of a forged leaf: exit %d %s", r.code, r.stdout)
	}
	t.Setenv("MAILVAULT_LEDGER_KEY", filepath.Join(filepath.Dir(pub), "ledger.key"))
	if r := inProcess(t, "prove", "--data", data, shaHex([]byte("not archived"))); r.code != 2 {
		t.Errorf("prove of a message not in the archive: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
}

// Each tamper is found by ledger verify, which names it.
func TestLedgerVerifyFindsTampering(t *testing.T) {
	exec := func(t *testing.T, db, q string) {
		d, err := sql.Open("sqlite", "file:"+db)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		if _, err := d.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	cases := []struct {
		name   string
		tamper func(t *testing.T, data string)
		want   string
	}{
		{"catalog row edited", func(t *testing.T, data string) {
			exec(t, filepath.Join(data, "catalog.db"), `UPDATE messages SET size = size + 1 WHERE id = 3`)
		}, "message row 3 was changed"},
		{"occurrence moved", func(t *testing.T, data string) {
			exec(t, filepath.Join(data, "catalog.db"), `UPDATE occurrences SET uid = uid + 1000 WHERE id = 5`)
		}, "occurrence row 5 was changed"},
		{"audit row edited", func(t *testing.T, data string) {
			exec(t, filepath.Join(data, "users.db"), `UPDATE audit SET user = 'nobody' WHERE id = 1`)
		}, "audit row 1 was changed"},
		{"audit row deleted", func(t *testing.T, data string) {
			exec(t, filepath.Join(data, "users.db"), `DELETE FROM audit WHERE id = 1`)
		}, "audit row 1 "}, // deleted, or its id reused by the next entry: either is named
		{"blob swapped", func(t *testing.T, data string) {
			var blobs []string
			filepath.WalkDir(filepath.Join(data, "blobs"), func(p string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					blobs = append(blobs, p)
				}
				return nil
			})
			if len(blobs) < 2 {
				t.Fatalf("%d blobs", len(blobs))
			}
			b, _ := os.ReadFile(blobs[1])
			os.WriteFile(blobs[0], b, 0o600)
		}, "blob-corrupt"},
		{"user's role raised", func(t *testing.T, data string) {
			addEve(t, data)
			exec(t, filepath.Join(data, "users.db"), `UPDATE users SET role = 'admin' WHERE name = 'eve'`)
		}, "users: not as the last change mailvault made"},
		{"token inserted", func(t *testing.T, data string) {
			addEve(t, data)
			exec(t, filepath.Join(data, "users.db"), `INSERT INTO tokens(hash, user, created, expires) VALUES ('`+strings.Repeat("ab", 32)+`', 'eve', '2026-01-01T00:00:00Z', '2099-01-01T00:00:00Z')`)
		}, "users: not as the last change mailvault made"},
		{"audit row inserted", func(t *testing.T, data string) {
			exec(t, filepath.Join(data, "users.db"), `INSERT INTO audit(at, user, action, detail, remote) VALUES ('2026-01-01T00:00:00Z', 'legal-bob', 'hold-release', 'Acme', 'local')`)
		}, "has no leaf: it was not written by mailvault"},
		{"hold released by SQL", func(t *testing.T, data string) {
			if r := inProcess(t, "hold", "create", "--data", data, "--name", "Matter2", "--custodian", "alice"); r.code != 0 {
				t.Fatalf("hold create: %s %s", r.stdout, r.stderr)
			}
			exec(t, filepath.Join(data, "catalog.db"), `UPDATE holds SET released_at = '2026-12-01T00:00:00Z', released_by = 'legal-bob', release_reason = 'matter closed' WHERE name = 'Matter2'`)
		}, "holds: not as the last change mailvault made"},
		{"tombstone inserted", func(t *testing.T, data string) {
			exec(t, filepath.Join(data, "catalog.db"), `INSERT INTO tombstones(sha256, size, reason, rule, actor, at, state)
				SELECT lower(hex(sha256)), size, 'old', 'retention:finra-6y', 'alice', '2026-12-01T00:00:00Z', 'done' FROM messages WHERE id = 2`)
			if r := inProcess(t, "ledger", "checkpoint", "--data", data); r.code != 0 { // a follow ledgers it
				t.Fatalf("checkpoint: %s %s", r.stdout, r.stderr)
			}
		}, "no audited disposal or erasure names it"},
		{"ledger truncated", func(t *testing.T, data string) {
			os.Truncate(filepath.Join(data, "ledger", "index"), 8*10)
		}, "the ledger was truncated"},
		{"checkpoint replaced", func(t *testing.T, data string) {
			key := filepath.Join(t.TempDir(), "k")
			inProcess(t, "key", "init", "--out", key, "--name", "archive.example.com/test")
			t.Setenv("MAILVAULT_LEDGER_KEY", key)
			if r := inProcess(t, "ledger", "checkpoint", "--data", data); r.code != 0 {
				t.Fatalf("checkpoint: %s %s", r.stdout, r.stderr)
			}
		}, "replaced or forged"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data, pub, _ := ledgerArchive(t, 12)
			c.tamper(t, data)
			r := inProcess(t, "ledger", "verify", "--data", data, "--key", pub)
			if r.code != 1 || !strings.Contains(r.stdout, c.want) {
				t.Errorf("ledger verify after %s: exit %d, want 1 and a problem with %q:\n%s%s", c.name, r.code, c.want, r.stdout, r.stderr)
			}
		})
	}
}

// The Python verifier printed in docs/ledger.md checks a real bundle, and
// refuses one whose leaf was changed: the documented format is the one
// prove writes, checked by a second, independent implementation.
func TestLedgerDocPythonVerifier(t *testing.T) {
	py, err := osexec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("python3 is needed (CI installs it)")
		}
		t.Skip("no python3")
	}
	doc, err := os.ReadFile("../../docs/ledger.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```python\n")
	script, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("docs/ledger.md has no python block")
	}
	data, _, msgs := ledgerArchive(t, 37)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "check.py"), []byte(script), 0o600)
	for i := range msgs {
		if i%5 != 0 {
			continue
		}
		bundle := filepath.Join(dir, "proof.json")
		os.Remove(bundle)
		if r := inProcess(t, "prove", "--data", data, "--out", bundle, shaHex(msgs[i])); r.code != 0 {
			t.Fatalf("prove: %s %s", r.stdout, r.stderr)
		}
		cmd := osexec.Command(py, "check.py")
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "included" {
			t.Errorf("message %d: the documented Python verifier says %q (%v)", i, out, err)
		}
		b, _ := os.ReadFile(bundle)
		os.WriteFile(bundle, []byte(strings.Replace(string(b), `\"size\":`, `\"size\":1`, 1)), 0o600)
		cmd = osexec.Command(py, "check.py")
		cmd.Dir = dir
		out, err = cmd.Output()
		if err != nil || strings.TrimSpace(string(out)) != "NOT included" {
			t.Errorf("message %d: on a changed leaf the Python verifier says %q (%v), want NOT included", i, out, err)
		}
		// Index and tree size moved together (the reviewer's bundle that
		// the first version of the script accepted).
		os.WriteFile(bundle, b, 0o600)
		var m map[string]any
		json.Unmarshal(b, &m)
		m["index"], m["tree_size"] = 326.0, 33.0
		forged, _ := json.Marshal(m)
		os.WriteFile(bundle, forged, 0o600)
		cmd = osexec.Command(py, "check.py")
		cmd.Dir = dir
		out, _ = cmd.CombinedOutput()
		if strings.Contains(string(out), "included") && !strings.Contains(string(out), "NOT included") {
			t.Errorf("message %d: the Python verifier accepts a bundle whose tree size is not its checkpoint's: %q", i, out)
		}
	}
}

// A production of an archive with a ledger carries the checkpoint and each
// message's proof, which verify-proof checks against the native, and the
// export still verifies.
func TestLedgerExportProofs(t *testing.T) {
	data, pub, msgs := ledgerArchive(t, 15)
	out := filepath.Join(t.TempDir(), "prod")
	if r := inProcess(t, "export", "--data", data, "--out", out, "larger:0"); r.code != 0 {
		t.Fatalf("export: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if r := inProcess(t, "export", "verify", out); r.code != 0 {
		t.Fatalf("export verify: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(out, "PROOF", "checkpoint.txt")); err != nil {
		t.Fatal(err)
	}
	proofs, _ := filepath.Glob(filepath.Join(out, "PROOF", "0001", "*.json"))
	if len(proofs) != len(msgs) {
		t.Fatalf("%d proofs, want %d (one per message)", len(proofs), len(msgs))
	}
	for _, p := range proofs {
		native := filepath.Join(out, "NATIVES", "0001", strings.TrimSuffix(filepath.Base(p), ".json")+".eml")
		if r := inProcess(t, "verify-proof", "--key", pub, "--message", native, p); r.code != 0 {
			t.Errorf("verify-proof %s: %d %s %s", p, r.code, r.stdout, r.stderr)
		}
	}
}

// While serve runs (the archive locked), the ledger commands go through its
// socket and give what they give offline; the API applies the role rule.
func TestLedgerThroughServe(t *testing.T) {
	data, pub, msgs := ledgerArchive(t, 10)
	bin := buildMailvault(t)
	ann := addUser(t, bin, data, "ann", "--role", "user", "--account", "bob")
	aud := addUser(t, bin, data, "aud", "--role", "auditor")
	srv := startServe(t, bin, data)

	r := runBinary(t, bin, 0, "ledger", "status", "--json", "--data", data)
	var st struct {
		Leaves         int64 `json:"leaves"`
		Signs          bool  `json:"signs"`
		CheckpointSize int64 `json:"checkpoint_size"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &st) != nil || !st.Signs || st.Leaves < 20 {
		t.Fatalf("ledger status through serve: %d %s %s", r.code, r.stdout, r.stderr)
	}
	dir := t.TempDir()
	bundle := filepath.Join(dir, "p.json")
	if r := runBinary(t, bin, 0, "prove", "--data", data, "--out", bundle, shaHex(msgs[3])); r.code != 0 {
		t.Fatalf("prove through serve: %d %s %s", r.code, r.stdout, r.stderr)
	}
	eml := filepath.Join(dir, "m.eml")
	os.WriteFile(eml, msgs[3], 0o600)
	if r := runBinary(t, bin, 0, "verify-proof", "--key", pub, "--message", eml, bundle); r.code != 0 {
		t.Errorf("verify-proof of serve's bundle: %d %s", r.code, r.stdout)
	}
	if r := runBinary(t, bin, 0, "ledger", "checkpoint", "--data", data); r.code != 0 {
		t.Errorf("ledger checkpoint through serve: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if r := runBinary(t, bin, 0, "ledger", "verify", "--data", data, "--key", pub); r.code != 0 || !strings.Contains(r.stdout, "OK:") {
		t.Errorf("ledger verify through serve: %d %s %s", r.code, r.stdout, r.stderr)
	}
	var b map[string]any
	if code := srv.api(t, aud, "/api/ledger/prove/"+shaHex(msgs[3]), &b); code != 200 || b["format"] != "mailvault-proof/1" {
		t.Errorf("an auditor's prove: %d %v", code, b)
	}
	// ann sees only account bob: alice's message answers as absent, the
	// ledger's status is not hers to read.
	if code := srv.api(t, ann, "/api/ledger/prove/"+shaHex(msgs[3]), nil); code != 404 {
		t.Errorf("a user's prove of a message outside her accounts: %d, want 404", code)
	}
	if code := srv.api(t, ann, "/api/ledger", nil); code != 403 {
		t.Errorf("a user's ledger status: %d, want 403", code)
	}
	if r := runBinary(t, bin, 0, "audit", "--data", data, "--user", "ann", "--action", "denied", "--json"); r.code != 0 || !strings.Contains(r.stdout, "ledger-status") {
		t.Errorf("the refused ledger status is not in the audit trail as denied: %d %s %s", r.code, r.stdout, r.stderr)
	}
	srv.stop(t)
	// After serve stopped (a last checkpoint), the ledger verifies offline.
	if r := inProcess(t, "ledger", "verify", "--data", data, "--key", pub, "--no-blobs"); r.code != 0 {
		t.Errorf("ledger verify after serve: %d %s %s", r.code, r.stdout, r.stderr)
	}
}

// A rollback (the whole ledger directory put back as it was, the audit rows
// written since deleted) agrees with itself; a checkpoint kept elsewhere
// shows it.
func TestLedgerRollbackNeedsACheckpointKeptElsewhere(t *testing.T) {
	data, pub, _ := ledgerArchive(t, 5)
	saved := filepath.Join(t.TempDir(), "ledger-then")
	if out, err := osexec.Command("cp", "-a", filepath.Join(data, "ledger"), saved).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	var maxID int
	db, _ := sql.Open("sqlite", "file:"+filepath.Join(data, "users.db"))
	db.QueryRow(`SELECT max(id) FROM audit`).Scan(&maxID)
	db.Close()
	for _, q := range []string{"secret1", "secret2", "secret3"} {
		if r := inProcess(t, "search", "--data", data, q); r.code != 0 {
			t.Fatalf("search: %s %s", r.stdout, r.stderr)
		}
	}
	kept := filepath.Join(t.TempDir(), "checkpoint-kept.txt")
	b, err := os.ReadFile(filepath.Join(data, "ledger", "checkpoint"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(kept, b, 0o600)
	// The rollback.
	os.RemoveAll(filepath.Join(data, "ledger"))
	if out, err := osexec.Command("cp", "-a", saved, filepath.Join(data, "ledger")).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	db, _ = sql.Open("sqlite", "file:"+filepath.Join(data, "users.db"))
	db.Exec(`DELETE FROM audit WHERE id > ?`, maxID)
	db.Close()
	if r := inProcess(t, "ledger", "verify", "--data", data, "--key", pub, "--no-blobs"); r.code != 0 {
		t.Logf("without a kept checkpoint (expected to pass): %s", r.stdout)
	}
	r := inProcess(t, "ledger", "verify", "--data", data, "--key", pub, "--no-blobs", "--copy-dir", kept)
	if r.code != 1 || !strings.Contains(r.stdout, "truncated") {
		t.Errorf("with the checkpoint kept elsewhere: exit %d, want 1 naming the truncation:\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// addEve adds a user the way mailvault does (audited, ledgered).
func addEve(t *testing.T, data string) {
	t.Helper()
	users, err := service.OpenUsers(data)
	if err != nil {
		t.Fatal(err)
	}
	defer users.Close()
	if err := users.As(service.Operator()).Add(context.Background(), service.User{Name: "eve", Role: service.RoleUser, Accounts: []string{"alice"}}, "correct horse battery"); err != nil {
		t.Fatal(err)
	}
}

// What mailvault itself changes never trips verify: users and tokens, holds
// made and released, searches, exports.
func TestLedgerCleanAfterLegitimateChanges(t *testing.T) {
	data, pub, _ := ledgerArchive(t, 8)
	addEve(t, data)
	users, _ := service.OpenUsers(data)
	if _, _, err := users.As(service.Operator()).NewToken(context.Background(), "eve", time.Hour); err != nil {
		t.Fatal(err)
	}
	users.Close()
	for _, args := range [][]string{
		{"hold", "create", "--data", data, "--name", "M1", "--custodian", "alice"},
		{"hold", "create", "--data", data, "--name", "M2", "--custodian", "alice", "--query", "ledger"},
		{"hold", "release", "--data", data, "M1", "--reason", "matter closed"},
		{"search", "--data", data, "ledger"},
		{"export", "--data", data, "--out", filepath.Join(t.TempDir(), "x"), "larger:0"},
		{"user", "remove", "--data", data, "eve"},
	} {
		if r := inProcess(t, args...); r.code != 0 {
			t.Fatalf("%v: %d %s %s", args, r.code, r.stdout, r.stderr)
		}
	}
	if r := inProcess(t, "ledger", "verify", "--data", data, "--key", pub); r.code != 0 || !strings.Contains(r.stdout, "OK:") {
		t.Errorf("ledger verify after legitimate changes: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
