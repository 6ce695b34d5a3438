package web

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"mailvault/indexer"
	"mailvault/service"
)

// The text extracted from attachments on the message page and the API:
// per attachment, its text collapsed, or why there is none; another
// account's message answers 404 on both, as an unknown one.
func TestAttachmentTextPageAndAPI(t *testing.T) {
	f := newAPIFixture(t)
	ctx := context.Background()
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	w, _ := zw.Create("minutes.txt")
	w.Write([]byte("the quarterly zebrafish review"))
	zw.Close()
	att := func(name, body []byte) string {
		return fmt.Sprintf("--B\r\nContent-Type: application/zip; name=%s\r\nContent-Disposition: attachment; filename=%s\r\nContent-Transfer-Encoding: base64\r\n\r\n%s\r\n",
			name, name, base64.StdEncoding.EncodeToString(body))
	}
	raw := []byte("From: a@example.org\r\nSubject: board pack\r\nDate: Mon, 4 Mar 2024 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n" +
		"--B\r\nContent-Type: text/plain\r\n\r\nsee the papers\r\n" + att([]byte("papers.zip"), zb.Bytes()) + att([]byte("broken.zip"), []byte("PK\x03\x04 not a zip")) + "--B--\r\n")
	if _, err := f.archive.Ingest(ctx, []indexer.Item{{Account: "a", Mailbox: "INBOX", UIDValidity: 5, UID: 9, Raw: raw}}); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := f.archive.WaitExtracts(wctx, nil); err != nil {
		t.Fatal(err)
	}
	id := sha(raw)

	code, body := f.get(t, f.ann, "/api/messages/"+id+"/attachments")
	var at service.AttachmentTexts
	if code != 200 || json.Unmarshal(body, &at) != nil || len(at.Attachments) != 2 || at.Pending {
		t.Fatalf("API: %d %s", code, body)
	}
	if a := at.Attachments[0]; a.Name != "papers.zip" || a.Status != "ok" || !strings.Contains(a.Text, "zebrafish") {
		t.Errorf("papers.zip: %+v", a)
	}
	if a := at.Attachments[1]; a.Name != "broken.zip" || a.Status != "failed" || a.Reason != "corrupt" {
		t.Errorf("broken.zip: %+v", a)
	}
	for _, other := range []string{f.onlyB, strings.Repeat("cd", 32)} {
		if code, _ := f.get(t, f.ann, "/api/messages/"+other+"/attachments"); code != 404 {
			t.Errorf("attachments of %s for ann: %d, want 404", other, code)
		}
	}

	ann, _ := f.login(t, "ann", "correct horse")
	code, page, _ := getPage(t, ann, f.srv.URL+"/message/"+id)
	if code != 200 {
		t.Fatalf("page: %d", code)
	}
	for _, want := range []string{`<details class="attachment-text" id="attachment-text-0">`, "the quarterly zebrafish review",
		"zip: 42 bytes of text, 1 member<", "zip: no text: corrupt"} {
		if !strings.Contains(page, want) {
			t.Errorf("message page lacks %q:\n%s", want, page)
		}
	}
	if strings.Contains(page, `id="attachment-text-1"`) {
		t.Error("the broken attachment has a text section")
	}
	code, page, _ = getPage(t, ann, f.srv.URL+"/status")
	if code != 200 || strings.Contains(page, `id="attachment-status"`) {
		t.Errorf("ann (one account) sees the archive-wide attachment counts: %d", code)
	}
}
