package service

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailvault/export"
	"mailvault/indexer"
	"mailvault/indexer/catalog"
)

// A message with a ZIP of minutes: its attachments' text is the caller's to
// read only where the message is (scope applied before anything is read,
// probing audited), is searchable in scope, counted in status for those
// who see everything, and is the TEXT of the attachment's document in a
// production.
func TestAttachmentTextScopeSearchStatusExport(t *testing.T) {
	ctx := context.Background()
	a, users := newArchive(t)
	svc := New(a, &Options{Users: users})
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	w, _ := zw.Create("minutes.txt")
	w.Write([]byte("the quarterly zebrafish review"))
	zw.Close()
	raw := fmt.Appendf(nil, "From: a@example.org\r\nTo: b@example.org\r\nSubject: board pack\r\nDate: Mon, 2 Mar 2026 10:00:00 +0000\r\n"+
		"Message-ID: <pack@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n"+
		"--XX\r\nContent-Type: text/plain\r\n\r\nsee the papers\r\n"+
		"--XX\r\nContent-Type: application/zip; name=papers.zip\r\nContent-Disposition: attachment; filename=papers.zip\r\nContent-Transfer-Encoding: base64\r\n\r\n%s\r\n--XX--\r\n",
		base64.StdEncoding.EncodeToString(zb.Bytes()))
	for _, acct := range []string{"alice", "bob"} {
		if _, err := a.EnsureMailbox(ctx, acct, "INBOX", catalog.SourceIMAP, 1); err != nil {
			t.Fatal(err)
		}
	}
	other := fmt.Appendf(nil, "From: c@example.org\r\nSubject: bob's own\r\nMessage-ID: <bob@example.org>\r\n\r\nnothing\r\n")
	if _, err := a.Ingest(ctx, []indexer.Item{{Account: "alice", Mailbox: "INBOX", UIDValidity: 1, UID: 1, Raw: raw},
		{Account: "bob", Mailbox: "INBOX", UIDValidity: 1, UID: 1, Raw: other}}); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := a.WaitExtracts(wctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprintf("%x", sha256.Sum256(raw))
	bob := Caller{Name: "bob", Role: RoleUser, Accounts: []string{"bob"}}
	alice := Caller{Name: "alice", Role: RoleUser, Accounts: []string{"alice"}}
	if _, err := svc.AttachmentTexts(ctx, bob, id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("bob reads alice's attachment text: %v", err)
	}
	at, err := svc.AttachmentTexts(ctx, alice, id)
	if err != nil || at.Pending || len(at.Attachments) != 1 || !strings.Contains(at.Attachments[0].Text, "zebrafish") {
		t.Fatalf("alice: %+v %v", at, err)
	}
	trail, err := svc.AuditTrail(ctx, Operator(), AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var denied, read bool
	for _, e := range trail {
		denied = denied || e.User == "bob" && e.Action == ActionDenied && strings.Contains(e.Detail, ActionReadAttachments)
		read = read || e.User == "alice" && e.Action == ActionReadAttachments && e.Detail == id
	}
	if !denied || !read {
		t.Fatalf("audit: denied=%v read=%v in %+v", denied, read, trail)
	}
	for c, want := range map[string]int{"bob": 0, "alice": 1} {
		caller := map[string]Caller{"bob": bob, "alice": alice}[c]
		res, err := svc.Search(ctx, caller, SearchRequest{Query: "zebrafish"})
		if err != nil || len(res.Hits) != want {
			t.Fatalf("%s searches the attachment text: %d hits, want %d (%v)", c, len(res.Hits), want, err)
		}
	}
	st, err := svc.Status(ctx, Operator())
	if err != nil || st.Attachments == nil || st.Attachments.Extracted != 1 || st.Attachments.Formats["zip"] != 1 {
		t.Fatalf("status: %+v %v", st.Attachments, err)
	}
	if st, _ := svc.Status(ctx, bob); st.Attachments != nil {
		t.Fatalf("bob sees archive-wide attachment counts: %+v", st.Attachments)
	}

	dir := filepath.Join(t.TempDir(), "prod")
	if _, err := svc.Export(ctx, Operator(), ExportRequest{Search: &SearchRequest{Query: "board"}, Dir: dir}, nil); err != nil {
		t.Fatal(err)
	}
	m, err := export.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, f := range m.Files {
		if strings.HasPrefix(f.Path, "TEXT/") && f.DocID != "" {
			b, err := os.ReadFile(filepath.Join(dir, f.Path))
			if err != nil {
				t.Fatal(err)
			}
			found = found || strings.Contains(string(b), "zebrafish") && !strings.Contains(string(b), "see the papers")
		}
	}
	if !found {
		t.Fatalf("no TEXT document of the attachment holds its extracted text: %+v", m.Files)
	}
	if rep, err := export.Verify(dir); err != nil || !rep.OK {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}

// An export made while a message's attachments wait for the extractor, or
// of one archived before attachment text existed (nothing queued), says
// so: an exclusion naming the message, not a TEXT silently empty.
func TestExportNotesPendingAttachmentText(t *testing.T) {
	ctx := context.Background()
	a, err := indexer.Open(t.TempDir(), &indexer.Options{NoExtract: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	users, err := OpenUsers(a.Dir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { users.Close() })
	svc := New(a, &Options{Users: users})
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	w, _ := zw.Create("minutes.txt")
	w.Write([]byte("the quarterly zebrafish review"))
	zw.Close()
	raw := fmt.Appendf(nil, "From: a@example.org\r\nSubject: board pack\r\nMessage-ID: <pending@example.org>\r\nMIME-Version: 1.0\r\n"+
		"Content-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\nsee the papers\r\n"+
		"--XX\r\nContent-Type: application/zip; name=papers.zip\r\nContent-Disposition: attachment; filename=papers.zip\r\nContent-Transfer-Encoding: base64\r\n\r\n%s\r\n--XX--\r\n",
		base64.StdEncoding.EncodeToString(zb.Bytes()))
	plain := []byte("From: c@example.org\r\nSubject: board minutes\r\nMessage-ID: <plain@example.org>\r\n\r\nnothing attached\r\n")
	// And one archived before attachment text existed: no queue row.
	old := bytes.Replace(raw, []byte("<pending@"), []byte("<old@"), 1)
	if _, err := a.EnsureMailbox(ctx, "alice", "INBOX", catalog.SourceIMAP, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Ingest(ctx, []indexer.Item{{Account: "alice", Mailbox: "INBOX", UIDValidity: 1, UID: 1, Raw: raw},
		{Account: "alice", Mailbox: "INBOX", UIDValidity: 1, UID: 2, Raw: plain},
		{Account: "alice", Mailbox: "INBOX", UIDValidity: 1, UID: 3, Raw: old}}); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(a.Dir(), "catalog.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`DELETE FROM extract_state WHERE message_id = (SELECT id FROM messages WHERE sha256 = ?)`,
		func() []byte { k := sha256.Sum256(old); return k[:] }()); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "prod")
	if _, err := svc.Export(ctx, Operator(), ExportRequest{Search: &SearchRequest{Query: "board"}, Dir: dir}, nil); err != nil {
		t.Fatal(err)
	}
	m, err := export.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{fmt.Sprintf("%x", sha256.Sum256(raw)): true, fmt.Sprintf("%x", sha256.Sum256(old)): true}
	noted := map[string]bool{}
	for _, x := range m.Exclusions {
		if strings.Contains(x.Reason, "not yet extracted") {
			noted[x.SHA256] = true
		}
	}
	if len(noted) != 2 || !noted[fmt.Sprintf("%x", sha256.Sum256(raw))] || !noted[fmt.Sprintf("%x", sha256.Sum256(old))] {
		t.Fatalf("pending extraction noted for %v, want %v (queued, and archived before extraction): %+v", noted, want, m.Exclusions)
	}
	if rep, err := export.Verify(dir); err != nil || !rep.OK {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}
