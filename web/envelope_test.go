package web

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"mailvault/indexer"
	"mailvault/indexer/catalog"
)

// The envelope of a journaled copy is on the message page and in
// /api/messages/:id with its occurrence, and only with it: a user who
// sees another copy of the same bytes does not see the journal's envelope.
func TestEnvelopeOnMessagePageAndAPI(t *testing.T) {
	f := newAPIFixture(t)
	ctx := context.Background()
	if _, err := f.archive.EnsureMailbox(ctx, "journal", "Journal", catalog.SourceJournal, 9); err != nil {
		t.Fatal(err)
	}
	raw := []byte("From: Zed <zed@example.org>\r\nTo: team@example.org\r\nSubject: the board memo\r\n\r\nsee attached\r\n")
	env := &indexer.Envelope{MailFrom: "zed@example.org", RcptTo: []string{"journal+team=example.org@archive", "journal+dave=example.net@archive"},
		Recipients: []string{"team@example.org", "dave@example.net"}, Client: "192.0.2.1:4242", Listener: "lmtp",
		ReceivedAt: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	if _, err := f.archive.Ingest(ctx, []indexer.Item{
		{Account: "journal", Mailbox: "Journal", UIDValidity: 9, UID: 1, Raw: raw, Envelope: env},
		{Account: "a", Mailbox: "INBOX", UIDValidity: 5, UID: 9, Raw: raw},
	}); err != nil {
		t.Fatal(err)
	}
	if err := f.archive.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	id := sha(raw)

	var msg struct {
		Occurrences []indexer.Occurrence `json:"occurrences"`
	}
	code, body := f.get(t, f.admin, "/api/messages/"+id)
	if code != 200 || json.Unmarshal(body, &msg) != nil || len(msg.Occurrences) != 2 {
		t.Fatalf("admin's message: %d %s", code, body)
	}
	var journaled *indexer.Envelope
	for _, o := range msg.Occurrences {
		if o.Account == "journal" {
			journaled = o.Envelope
		} else if o.Envelope != nil {
			t.Errorf("the harvested copy has an envelope: %+v", o.Envelope)
		}
	}
	if journaled == nil || journaled.MailFrom != "zed@example.org" || strings.Join(journaled.Recipients, ",") != "team@example.org,dave@example.net" ||
		journaled.Client != "192.0.2.1:4242" || journaled.Listener != "lmtp" {
		t.Fatalf("journal occurrence's envelope in the API: %+v (%s)", journaled, body)
	}
	code, body = f.get(t, f.ann, "/api/messages/"+id)
	if code != 200 || strings.Contains(string(body), "dave@example.net") || strings.Contains(string(body), `"envelope"`) {
		t.Errorf("ann's view of her copy shows the journal's envelope: %d %s", code, body)
	}

	root, _ := f.login(t, "root", "correct horse")
	_, page, _ := getPage(t, root, f.srv.URL+"/message/"+id)
	for _, want := range []string{`<tr class="envelope">`, "MAIL FROM <code>&lt;zed@example.org&gt;</code>", `<code class="rcpt">dave@example.net</code>`, "lmtp from 192.0.2.1:4242"} {
		if !strings.Contains(page, want) {
			t.Errorf("admin's message page lacks %q", want)
		}
	}
	ann, _ := f.login(t, "ann", "correct horse")
	_, page, _ = getPage(t, ann, f.srv.URL+"/message/"+id)
	if strings.Contains(page, "dave@example.net") || strings.Contains(page, `class="envelope"`) {
		t.Error("ann's message page shows the journal's envelope")
	}
}
