package harvest_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"mailvault/harvest"
	"mailvault/harvest/gmailtest"
	"mailvault/harvest/harvesttest"
	"mailvault/service"
)

// TestReviewGmailUnreadableKnownMessage: a message the archive holds by
// X-GM-MSGID but cannot read (its blob corrupt on disk, or gone without a
// tombstone) is met again in All Mail. The store of its chunk fails (the
// checkpoint does not move: nothing is lost); the next try must download
// it instead of failing the same way for ever, stopping the mailbox and
// every one harvested after it.
func TestReviewGmailUnreadableKnownMessage(t *testing.T) {
	srv := gmailtest.Start(t)
	const n = 12 // over gmailMinBatch: All Mail's catch-up uses X-GM-MSGID
	var shas []string
	byUID := map[uint32]string{} // All Mail UID → sha256
	for i := range n {
		raw := harvesttest.Message("unreadable", i+1)
		id := srv.Add(raw, nil, `\Inbox`)
		sum := sha256.Sum256(raw)
		shas = append(shas, hex.EncodeToString(sum[:]))
		byUID[srv.UID(gmailtest.AllMail, id)] = shas[i]
	}
	a := harvesttest.OpenArchive(t, t.TempDir())
	sink := service.NewSink(a.Archive)
	host, port, _ := net.SplitHostPort(srv.Addr())
	p, _ := strconv.Atoi(port)
	acct := harvest.Account{Name: "gmail", Host: host, Port: p, TLS: "none", Username: gmailtest.User, Password: gmailtest.Password,
		Mailboxes: []string{gmailtest.Inbox}, Idle: []string{gmailtest.Inbox}, PollInterval: time.Second}
	log := dcLogger(t)
	h := dcStart(t, context.Background(), acct, sink, dcFastBackoff(log))
	dcWaitFor(t, 20*time.Second, "INBOX archived", func() (bool, string) {
		return dcArchived(t, a, map[string]int{"gmail/INBOX": n})
	})
	h.stop(t)

	// Message 5's blob is damaged on disk; the catalog still names it.
	var blob string
	filepath.WalkDir(a.Dir(), func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == shas[4]+".zst" {
			blob = path
		}
		return nil
	})
	if blob == "" {
		t.Fatalf("no blob file for %s under %s", shas[4], a.Dir())
	}
	if err := os.WriteFile(blob, []byte("not a zstd frame"), 0o600); err != nil {
		t.Fatal(err)
	}

	fetches := srv.BodyFetches()
	acct.Mailboxes = []string{gmailtest.Inbox, gmailtest.AllMail}
	dcStart(t, context.Background(), acct, sink, dcFastBackoff(log))
	dcWaitFor(t, 20*time.Second, "All Mail archived", func() (bool, string) {
		return dcArchived(t, a, map[string]int{"gmail/INBOX": n, "gmail/" + gmailtest.AllMail: n})
	})
	for _, o := range harvesttest.Occurrences(t, a) {
		if o.Mailbox == gmailtest.AllMail {
			if want := byUID[o.UID]; o.SHA256 != want {
				t.Errorf("All Mail UID %d: archived %s, want %s", o.UID, o.SHA256, want)
			}
		}
	}
	if got := srv.BodyFetches() - fetches; got < 1 || got > 2 {
		t.Errorf("%d bodies downloaded from All Mail, want the unreadable one (1; 2 if its chunk was cut)", got)
	}
}
