package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"mailvault/indexer"
	"mailvault/indexer/store"
)

// TestRecoverCommand: a blob the catalog lost fails verify, blocks reindex
// with a message naming recover, and `recover --json` catalogs it in
// _recovered/lost+found, where search finds it; verify then passes.
func TestRecoverCommand(t *testing.T) {
	data := t.TempDir()
	a, err := indexer.Open(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.EnsureMailbox(context.Background(), "alice", "INBOX", "import", 1); err != nil {
		t.Fatal(err)
	}
	kept := []byte("From: a@example.org\r\nSubject: kept\r\n\r\nstillhere\r\n")
	if _, err := a.Ingest(context.Background(), []indexer.Item{{Account: "alice", Mailbox: "INBOX", UIDValidity: 1, UID: 1, Raw: kept}}); err != nil {
		t.Fatal(err)
	}
	a.Close()
	// The lost one: in the store, not in the catalog.
	lost := []byte("From: b@example.org\r\nSubject: lost one\r\n\r\nvanishedword\r\n")
	s, err := store.Open(filepath.Join(data, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(store.KeyOf(lost), lost); err != nil {
		t.Fatal(err)
	}
	s.Close()
	key := store.KeyOf(lost).String()

	if r := inProcess(t, "verify", "--data", data); r.code != 1 || !strings.Contains(r.stdout, "blob-unreferenced "+key) || !strings.Contains(r.stdout, "mailvault recover") {
		t.Fatalf("verify with a lost message: exit %d, stdout:\n%s", r.code, r.stdout)
	}
	if r := inProcess(t, "reindex", "--data", data); r.code == 0 || !strings.Contains(r.stderr, "mailvault recover") {
		t.Fatalf("reindex with a lost message: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	r := inProcess(t, "recover", "--json", "--data", data)
	if r.code != 0 {
		t.Fatalf("recover: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	var rep indexer.RecoverReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("recover --json: %v\n%s", err, r.stdout)
	}
	if rep.Unreferenced != 1 || len(rep.Recovered) != 1 || rep.Recovered[0].SHA256 != key || rep.Recovered[0].Subject != "lost one" {
		t.Fatalf("recover --json = %+v, want the lost message", rep)
	}
	hits := searchAll(t, inProcess, data, "account:_recovered", "vanishedword")
	if len(hits) != 1 || hits[0].SHA256 != key {
		t.Fatalf("search account:_recovered vanishedword = %+v, want the recovered message", hits)
	}
	if r := inProcess(t, "verify", "--data", data); r.code != 0 || !strings.Contains(r.stdout, "0 unreferenced blobs, 0 problems") {
		t.Fatalf("verify after recover: exit %d, stdout:\n%s", r.code, r.stdout)
	}
	if r := inProcess(t, "recover", "--data", data); r.code != 0 || !strings.Contains(r.stdout, "0 unreferenced blobs: 0 recovered") {
		t.Fatalf("second recover: exit %d, stdout:\n%s", r.code, r.stdout)
	}
}
