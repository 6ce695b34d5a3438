package harvest_test

import (
	"bytes"
	"context"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"mailvault/harvest"
)

// fzSink records what the harvester stores.
type fzSink struct {
	mu     sync.Mutex
	stored [][]byte
}

func (s *fzSink) Checkpoint(context.Context, string, string, string, uint32) (uint32, error) {
	return 1, nil
}
func (s *fzSink) Store(_ context.Context, msgs []harvest.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range msgs {
		s.stored = append(s.stored, m.Raw)
	}
	return nil
}
func (s *fzSink) Reconcile(context.Context, string, string, uint32, map[uint32][]string) error {
	return nil
}
func (s *fzSink) Skip(context.Context, string, string, uint32, uint32, string) error { return nil }
func (s *fzSink) MailboxesGone(context.Context, string, []string) (map[string]int, error) {
	return nil, nil
}

// fzSeeds are transcripts: the server's answers to the harvester's
// commands after LOGIN, one per command, separated by NUL; "$T" is the
// command's tag.
var fzSeeds = []string{
	// A normal session: LIST, EXAMINE, sizes, bodies, reconcile, IDLE.
	"* LIST () \"/\" INBOX\r\n$T OK done\r\n\x00" +
		"* 2 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n* OK [UIDNEXT 3] ok\r\n$T OK [READ-ONLY] done\r\n\x00" +
		"* 1 FETCH (UID 1 RFC822.SIZE 20)\r\n* 2 FETCH (UID 2 RFC822.SIZE 21)\r\n$T OK done\r\n\x00" +
		"* 1 FETCH (UID 1 FLAGS (\\Seen) INTERNALDATE \"01-Jan-2024 10:00:00 +0000\" BODY[] {20}\r\nSubject: a\r\n\r\nbody1\r\n)\r\n" +
		"* 2 FETCH (UID 2 FLAGS () INTERNALDATE \"01-Jan-2024 10:00:00 +0000\" BODY[] {21}\r\nSubject: b\r\n\r\nbody22\r\n)\r\n$T OK done\r\n\x00" +
		"* 1 FETCH (UID 1 FLAGS (\\Seen))\r\n* 2 FETCH (UID 2 FLAGS ())\r\n$T OK done\r\n\x00" +
		"* 2 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n* OK [UIDNEXT 3] ok\r\n$T OK [READ-ONLY] done\r\n\x00" +
		"+ idling\r\n* 3 EXISTS\r\n",
	// Hostile: a huge literal, an endless line, deep nesting, unasked UIDs,
	// a UIDVALIDITY change, a wrong tag.
	"* LIST () \"/\" INBOX\r\n$T OK done\r\n\x00* 1 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n$T OK done\r\n\x00" +
		"* 1 FETCH (UID 1 RFC822.SIZE 10)\r\n$T OK done\r\n\x00* 1 FETCH (UID 1 BODY[] {9999999999}\r\nxxxx",
	"* LIST () \"/\" {9999999999}\r\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
	"* OK [ALERT] " + strings.Repeat("x", 5000),
	"* LIST () \"/\" INBOX\r\n$T OK done\r\n\x00* 1 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n$T OK done\r\n\x00* 1 FETCH (UID 1 BODYSTRUCTURE " + strings.Repeat("(", 300) + "\r\n$T OK\r\n",
	"* LIST () \"/\" INBOX\r\n$T OK done\r\n\x00* 1 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n* OK [UIDNEXT 2] ok\r\n$T OK done\r\n\x00" +
		"* 1 FETCH (UID 1 RFC822.SIZE 5)\r\n* 9 FETCH (UID 4000000000 RFC822.SIZE 5)\r\n$T OK done\r\n\x00" +
		"* 5 FETCH (UID 99 BODY[] {5}\r\nevil!)\r\n* 1 FETCH (UID 1 BODY[] {5}\r\ngood!)\r\n* 1 FETCH (UID 1 BODY[] {5}\r\ntwice)\r\n$T OK done\r\n",
	"* LIST () \"/\" INBOX\r\n$T OK done\r\n\x00* 1 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n$T OK done\r\n\x00* 1 EXISTS\r\n* OK [UIDVALIDITY 8] ok\r\n$T OK done\r\n",
	"* LIST () \"/\" INBOX\r\nX$T OK done\r\n",
	"* LIST () \"/\" INBOX\r\n" + strings.Repeat("* OK still here\r\n", 200),
}

// FuzzServerResponses drives the harvester against a server that, after a
// valid greeting and LOGIN, answers each command with the next piece of
// the input (NUL-separated; "$T" is the command's tag), then closes. It
// asserts: no panic; Run returns within 2 s of cancel; no goroutine is
// left behind; nothing is archived that the input does not hold whole.
func FuzzServerResponses(f *testing.F) {
	for _, s := range fzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		pieces := bytes.Split(input, []byte{0})
		before := runtime.NumGoroutine()
		var mu sync.Mutex
		served := make(chan struct{})
		next := 0
		srv := hsStart(t, nil, func(s *hsSession, tag, cmd, args string) bool {
			switch {
			case s.n > 1:
				s.c.Close() // one connection per execution
				return true
			case cmd == "LOGIN" || cmd == "CAPABILITY":
				return false
			case cmd == "LOGOUT":
				return false
			}
			mu.Lock()
			defer mu.Unlock()
			if next >= len(pieces) {
				s.c.Close()
				return true
			}
			s.write(bytes.ReplaceAll(pieces[next], []byte("$T"), []byte(tag)))
			if next++; next == len(pieces) {
				close(served)
			}
			return true
		})
		sink := &fzSink{}
		acct := harvest.Account{Name: "fuzz", Host: "127.0.0.1", Port: srv.port(), TLS: "none",
			Username: "alice", Password: "secret", Idle: []string{"INBOX"}, PollInterval: 50 * time.Millisecond}
		h := harvest.New(acct, sink, &harvest.Options{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
			ReadTimeout: 50 * time.Millisecond, CommandTimeout: 100 * time.Millisecond, MaxMessageBytes: 1 << 20})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- h.Run(ctx) }()
		select {
		case <-served:
			time.Sleep(20 * time.Millisecond)
		case <-time.After(150 * time.Millisecond):
		}
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v after cancel", err)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("Run still running 2 s after cancel")
		}
		srv.close()
		sink.mu.Lock()
		for _, raw := range sink.stored {
			if !bytes.Contains(input, raw) {
				t.Errorf("archived %q, which the input does not hold", raw)
			}
		}
		sink.mu.Unlock()
		for deadline := time.Now().Add(2 * time.Second); runtime.NumGoroutine() > before; {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<16)
				t.Fatalf("%d goroutines before, %d after:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}
