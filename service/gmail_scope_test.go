package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"mailvault/harvest"
)

// TestGmailLabelsScoped: Gmail's labels are per account and a person's
// annotations. A user who sees only alice gets alice's labels of a
// message both accounts hold, never bob's; a message only bob holds is
// not found for her (and the refusal is audited); every read is audited
// as a flag read. Stored through the harvester's Sink, as serve does.
func TestGmailLabelsScoped(t *testing.T) {
	ctx := context.Background()
	a, users := newArchive(t)
	s := New(a, &Options{Users: users})
	sink := NewSink(a)
	raw := func(i int) []byte {
		return fmt.Appendf(nil, "From: x@example.org\r\nSubject: gmail %d\r\nMessage-ID: <g%d@example.org>\r\n\r\nbody %d\r\n", i, i, i)
	}
	sha := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	store := func(account string, uid uint32, b []byte, id uint64, labels ...string) {
		t.Helper()
		if _, err := sink.Checkpoint(ctx, account, "imap://"+account+"@gmail.test", "[Gmail]/All Mail", 1); err != nil {
			t.Fatal(err)
		}
		if err := sink.Store(ctx, []harvest.Message{{Account: account, Mailbox: "[Gmail]/All Mail", UIDValidity: 1, UID: uid, Raw: b,
			Gmail: &harvest.Gmail{MsgID: id, ThrID: id, Labels: labels}}}); err != nil {
			t.Fatal(err)
		}
	}
	shared, bobs := raw(1), raw(2)
	store("alice", 1, shared, 11, `\Inbox`, "Work")
	store("bob", 1, shared, 21, "Secret-bob-label")
	store("bob", 2, bobs, 22, "Bob-only")
	alice := Caller{Name: "ann", Role: RoleUser, Accounts: []string{"alice"}, Remote: "test"}
	admin := Caller{Name: "root", Role: RoleAdmin, Remote: "test"}

	got, err := s.Gmail(ctx, alice, sha(shared))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Account != "alice" || got[0].MsgID != 11 || !slices.Equal(got[0].Labels, []string{`\Inbox`, "Work"}) {
		t.Fatalf("alice's view of the shared message: %+v; want alice's labels alone", got)
	}
	all, err := s.Gmail(ctx, admin, sha(shared))
	if err != nil || len(all) != 2 {
		t.Fatalf("admin's view: %+v, %v; want both accounts", all, err)
	}
	if _, err := s.Gmail(ctx, alice, sha(bobs)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("alice reading bob's message's labels: %v, want not found", err)
	}
	trail, err := s.AuditTrail(ctx, admin, AuditFilter{User: "ann"})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range trail {
		actions = append(actions, e.Action+" "+e.Detail)
		if strings.Contains(e.Detail, "Secret-bob-label") {
			t.Errorf("audit detail %q carries bob's label", e.Detail)
		}
	}
	if !slices.ContainsFunc(actions, func(a string) bool { return strings.HasPrefix(a, ActionReadFlags+" "+sha(shared)) }) ||
		!slices.ContainsFunc(actions, func(a string) bool { return strings.Contains(a, sha(bobs)) }) {
		t.Fatalf("audit trail of ann %q: want the read of the shared message and the refusal of bob's", actions)
	}
}
