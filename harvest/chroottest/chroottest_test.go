//go:build linux

package chroottest

import (
	"bytes"
	"testing"
)

// TestServers checks each harness against its real server: start, append
// (LF in, CRLF out), flags, expunge, a new UIDVALIDITY, restart.
func TestServers(t *testing.T) {
	for _, kind := range []string{"cyrus", "courier"} {
		t.Run(kind, func(t *testing.T) {
			var s *Server
			if kind == "cyrus" {
				s = StartCyrus(t, &Options{Users: []string{"alice", "bob"}})
			} else {
				s = StartCourier(t, &Options{Users: []string{"alice", "bob"}})
			}
			raw := []byte("From: a@example.org\nSubject: one\n\nbody\n")
			sub := s.Mailbox("sub")
			uid := s.Append(t, "alice", sub, raw, `\Flagged`)
			s.Append(t, "alice", sub, []byte("Subject: two\n\nsecond\n"))
			got := s.Fetch(t, "alice", sub)
			if want := bytes.ReplaceAll(raw, []byte("\n"), []byte("\r\n")); !bytes.Equal(got[uid], want) {
				t.Errorf("BODY[] of UID %d = %q, want %q", uid, got[uid], want)
			}
			s.SetFlags(t, "alice", sub, uid, `\Seen`)
			s.Expunge(t, "alice", sub, uid)
			if n := len(s.Fetch(t, "alice", sub)); n != 1 {
				t.Errorf("after expunge %d messages, want 1", n)
			}
			old := s.UIDValidity(t, "alice", sub)
			v := s.RenewUIDValidity(t, "alice", sub)
			t.Logf("UIDVALIDITY %d -> %d", old, v)
			if n := len(s.Fetch(t, "alice", sub)); n != 1 {
				t.Errorf("after renewing UIDVALIDITY %d messages, want 1", n)
			}
			if err := s.Restart(); err != nil {
				t.Fatal(err)
			}
			if got := s.UIDValidity(t, "alice", sub); got != v {
				t.Errorf("after restart UIDVALIDITY %d, want %d", got, v)
			}
			s.AddUser(t, "carol")
			s.Append(t, "carol", "INBOX", raw)
			if n := len(s.Fetch(t, "carol", "INBOX")); n != 1 {
				t.Errorf("carol's INBOX has %d messages, want 1", n)
			}
		})
	}
}
