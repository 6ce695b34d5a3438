package harvest_test

// A scriptable hostile IMAP server: it speaks just enough IMAP for the
// harvester (greeting, CAPABILITY, LOGIN, LIST, EXAMINE/SELECT, STATUS, UID
// FETCH, IDLE, NOOP, LOGOUT) over one mailbox, INBOX, and misbehaves when a
// test's hook says so. It serves the hostile-server tests and the fuzz
// target FuzzServerResponses.

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// hsServer is a hostile IMAP server on a loopback port.
type hsServer struct {
	ln net.Listener
	// msgs are INBOX's messages by UID; uidValidity its UIDVALIDITY.
	mu          sync.Mutex
	msgs        map[uint32][]byte
	uidValidity uint32
	// hook, when set, sees every command first; it returns true when it
	// answered (or misbehaved) itself.
	hook  func(s *hsSession, tag, cmd, args string) bool
	conns atomic.Int32 // connections accepted so far

	wg       sync.WaitGroup
	closing  chan struct{}
	sessMu   sync.Mutex
	sessions []net.Conn
}

// hsSession is one connection to an hsServer.
type hsSession struct {
	srv  *hsServer
	c    net.Conn
	r    *bufio.Reader
	n    int32 // which connection this is, from 1
	done <-chan struct{}
}

// hsStart starts a hostile server holding msgs as UIDs 1, 2, ...
func hsStart(t testing.TB, msgs [][]byte, hook func(s *hsSession, tag, cmd, args string) bool) *hsServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &hsServer{ln: ln, msgs: map[uint32][]byte{}, uidValidity: 7, hook: hook, closing: make(chan struct{})}
	for i, m := range msgs {
		s.msgs[uint32(i+1)] = m
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.sessMu.Lock()
			s.sessions = append(s.sessions, c)
			s.sessMu.Unlock()
			n := s.conns.Add(1)
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				(&hsSession{srv: s, c: c, r: bufio.NewReader(c), n: n, done: s.closing}).serve()
			}()
		}
	}()
	t.Cleanup(s.close)
	return s
}

func (s *hsServer) close() {
	select {
	case <-s.closing:
		return
	default:
	}
	close(s.closing)
	s.ln.Close()
	s.sessMu.Lock()
	for _, c := range s.sessions {
		c.Close()
	}
	s.sessMu.Unlock()
	s.wg.Wait()
}

func (s *hsServer) port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// setUIDValidity changes INBOX's UIDVALIDITY for the EXAMINEs to come.
func (s *hsServer) setUIDValidity(v uint32) {
	s.mu.Lock()
	s.uidValidity = v
	s.mu.Unlock()
}

// state returns INBOX's UIDs in order, its messages and UIDVALIDITY.
func (s *hsServer) state() ([]uint32, map[uint32][]byte, uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	uids := make([]uint32, 0, len(s.msgs))
	for u := range s.msgs {
		uids = append(uids, u)
	}
	slices.Sort(uids)
	return uids, s.msgs, s.uidValidity
}

func (s *hsSession) printf(format string, args ...any) {
	fmt.Fprintf(s.c, format, args...)
}

// write sends raw bytes, ignoring errors (the client may be gone).
func (s *hsSession) write(b []byte) { s.c.Write(b) }

func (s *hsSession) serve() {
	s.printf("* OK [CAPABILITY IMAP4rev1 IDLE] hostile ready\r\n")
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		tag, rest, _ := strings.Cut(line, " ")
		cmd, args, _ := strings.Cut(rest, " ")
		cmd = strings.ToUpper(cmd)
		if cmd == "UID" {
			sub, a, _ := strings.Cut(args, " ")
			cmd, args = "UID "+strings.ToUpper(sub), a
		}
		if s.srv.hook != nil && s.srv.hook(s, tag, cmd, args) {
			continue
		}
		if !s.answer(tag, cmd, args) {
			return
		}
	}
}

// answer answers one command as a well-behaved server would; false ends
// the session.
func (s *hsSession) answer(tag, cmd, args string) bool {
	uids, msgs, uv := s.srv.state()
	next := uint32(1)
	if len(uids) > 0 {
		next = uids[len(uids)-1] + 1
	}
	switch cmd {
	case "CAPABILITY":
		s.printf("* CAPABILITY IMAP4rev1 IDLE\r\n%s OK done\r\n", tag)
	case "LOGIN":
		s.printf("%s OK logged in\r\n", tag)
	case "LIST":
		s.printf("* LIST () \"/\" INBOX\r\n%s OK done\r\n", tag)
	case "SELECT", "EXAMINE":
		s.printf("* %d EXISTS\r\n* OK [UIDVALIDITY %d] ok\r\n* OK [UIDNEXT %d] ok\r\n%s OK [READ-ONLY] done\r\n", len(uids), uv, next, tag)
	case "STATUS":
		s.printf("* STATUS INBOX (MESSAGES %d UIDNEXT %d UIDVALIDITY %d)\r\n%s OK done\r\n", len(uids), next, uv, tag)
	case "UID FETCH":
		set, items, _ := strings.Cut(args, " ")
		for i, u := range uids {
			if hsInSet(set, u, next-1) {
				s.fetchResponse(i+1, u, msgs[u], items)
			}
		}
		s.printf("%s OK done\r\n", tag)
	case "IDLE":
		s.printf("+ idling\r\n")
		for {
			l, err := s.r.ReadString('\n')
			if err != nil {
				return false
			}
			if strings.EqualFold(strings.TrimSpace(l), "DONE") {
				break
			}
		}
		s.printf("%s OK idle done\r\n", tag)
	case "NOOP":
		s.printf("%s OK done\r\n", tag)
	case "LOGOUT":
		s.printf("* BYE bye\r\n%s OK done\r\n", tag)
		return false
	default:
		s.printf("%s BAD unknown command\r\n", tag)
	}
	return true
}

// fetchResponse sends one message's FETCH response for the items asked.
func (s *hsSession) fetchResponse(seq int, uid uint32, body []byte, items string) {
	if strings.Contains(strings.ToUpper(items), "BODY") {
		s.printf("* %d FETCH (UID %d FLAGS (\\Seen) INTERNALDATE \"01-Jan-2024 10:00:00 +0000\" BODY[] {%d}\r\n", seq, uid, len(body))
		s.write(body)
		s.printf(")\r\n")
		return
	}
	s.printf("* %d FETCH (UID %d RFC822.SIZE %d FLAGS (\\Seen))\r\n", seq, uid, len(body))
}

// hsInSet reports whether uid is in the IMAP UID set (e.g. "1:3,5,7:*");
// "*" is star.
func hsInSet(set string, uid, star uint32) bool {
	num := func(s string) uint32 {
		if s == "*" {
			return star
		}
		n, _ := strconv.ParseUint(s, 10, 32)
		return uint32(n)
	}
	for _, r := range strings.Split(set, ",") {
		a, b, isRange := strings.Cut(r, ":")
		lo, hi := num(a), num(a)
		if isRange {
			hi = num(b)
		}
		if lo > hi {
			lo, hi = hi, lo
		}
		// "n:*" with n above the highest UID still names the highest.
		if uid >= lo && uid <= hi || isRange && b == "*" && lo > star && uid == star {
			return true
		}
	}
	return false
}

// hsMessage is a small message numbered i.
func hsMessage(i int) []byte {
	return []byte(fmt.Sprintf("From: a@example.org\r\nTo: b@example.org\r\nSubject: hostile test %d\r\nMessage-ID: <hs%d@example.org>\r\n\r\nbody of message hsm%d\r\n", i, i, i))
}

// hsMessages are n small messages.
func hsMessages(n int) [][]byte {
	var out [][]byte
	for i := 1; i <= n; i++ {
		out = append(out, hsMessage(i))
	}
	return out
}

// hsZeros is an endless reader of filler bytes.
type hsZeros struct{}

func (hsZeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

// stream copies endless filler to the client until it goes away or the
// server closes.
func (s *hsSession) stream() {
	go func() { <-s.done; s.c.Close() }()
	io.Copy(s.c, hsZeros{})
}

// wait keeps the connection open, silent, until the server closes.
func (s *hsSession) wait(d time.Duration) {
	select {
	case <-s.done:
	case <-time.After(d):
	}
}

func hsSHA(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
