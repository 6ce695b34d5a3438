package export

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// A winmail.dat (TNEF) attachment: the attachments Outlook wrapped in it
// become documents of their own, children of the wrapper's document, each
// a native with its bytes as the TNEF held them (checked against Debian's
// tnef by indexer/extract's tests) and its extracted text.
func TestTNEFAttachmentsBecomeDocuments(t *testing.T) {
	tn, err := os.ReadFile("../indexer/extract/testdata/containers/winmail.dat")
	if err != nil {
		t.Fatal(err)
	}
	raw := "From: a@example.com\nSubject: outlook\nMessage-ID: <tnef@example.com>\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=B\n\n" +
		"--B\nContent-Type: text/plain\n\nsee attached\n--B\nContent-Type: application/ms-tnef; name=winmail.dat\n" +
		"Content-Disposition: attachment; filename=winmail.dat\nContent-Transfer-Encoding: base64\n\n" +
		base64.StdEncoding.EncodeToString(tn) + "\n--B--\n"
	dir := filepath.Join(t.TempDir(), "prod")
	if _, err := Write(context.Background(), &memSource{msgs: []Message{msg(raw, occ("alice", "INBOX", 1))}}, Options{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	m, err := ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	var natives []string
	for _, f := range m.Files {
		if strings.HasPrefix(f.Path, "NATIVES/") {
			natives = append(natives, f.Path)
		}
	}
	sort.Slice(natives, func(i, j int) bool { return filepath.Base(natives[i]) < filepath.Base(natives[j]) })
	// The message, winmail.dat, and the four attachments it wraps (the
	// nested TNEF among them, which is a wrapper itself).
	if len(natives) < 6 {
		t.Fatalf("natives %v: want the message, winmail.dat and what it wraps", natives)
	}
	var xml []byte
	for _, n := range natives {
		if strings.HasSuffix(n, ".xml") {
			xml, _ = os.ReadFile(filepath.Join(dir, filepath.FromSlash(n)))
		}
	}
	if !strings.Contains(string(xml), "<") {
		t.Fatalf("the XML attachment inside winmail.dat is not a native of its own: %v", natives)
	}
	rep, err := Verify(dir)
	if err != nil || !rep.OK {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}
