package imapview

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"mailvault/indexer"
	"mailvault/internal/testcert"
	"mailvault/service"
)

// The go-imap patch corks FETCH answers while the client's next command is
// already buffered, and gives the connection's write buffer back while it
// waits (third_party/go-imap/MAILVAULT.md). These tests pipeline random
// runs of commands, plain and after STARTTLS, over messages from a few
// bytes to several times the 64 KiB buffer, and check that every command is
// answered, in order, without the client sending anything more, and that
// every body is the stored one.

// corkFixture is an archive with n messages of random sizes in alice/INBOX
// (UIDs 1..n), served plain with STARTTLS offered.
func corkFixture(t *testing.T, rng *rand.Rand, n int) (addr string, raws map[uint32][]byte, u *service.Users) {
	t.Helper()
	raws = map[uint32][]byte{}
	var msgs [][]byte
	sizes := []int{10, 300, 4000, 4096, 5000, 70_000, 200_000}
	for uid := uint32(1); uid <= uint32(n); uid++ {
		size := sizes[rng.IntN(len(sizes))] + rng.IntN(100)
		var body strings.Builder
		for body.Len() < size {
			fmt.Fprintf(&body, "line %d of message %d %x\r\n", body.Len(), uid, rng.Uint64())
		}
		raws[uid] = msg(int(uid), fmt.Sprintf("cork %d", uid), body.String())
		msgs = append(msgs, raws[uid])
	}
	a, u := aliceInbox(t, msgs...)
	cert, _ := testcert.New(t, "127.0.0.1")
	addr = serveView(t, Options{Archive: service.New(a, &service.Options{Users: u}), InsecureAuth: true,
		TLS: &tls.Config{Certificates: []tls.Certificate{cert}}})
	return addr, raws, u
}

// aliceInbox is an archive whose alice/INBOX (UIDVALIDITY 7) holds msgs
// as UIDs 1..n, with user alice (password alice-password-1) for it.
func aliceInbox(t *testing.T, msgs ...[]byte) (*indexer.Archive, *service.Users) {
	t.Helper()
	return aliceInboxAt(t, func(i int) time.Time { return time.Date(2023, 1, 2, 11, 0, i%60, 0, time.UTC) }, msgs...)
}

// aliceInboxAt is aliceInbox with message i's INTERNALDATE internal(i).
func aliceInboxAt(t *testing.T, internal func(i int) time.Time, msgs ...[]byte) (*indexer.Archive, *service.Users) {
	t.Helper()
	ctx := context.Background()
	a, u := openArchive(t, t.TempDir())
	if err := u.Add(ctx, service.User{Name: "alice", Role: service.RoleUser, Accounts: []string{"alice"}}, "alice-password-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.EnsureMailbox(ctx, "alice", "INBOX", "imap", 7); err != nil {
		t.Fatal(err)
	}
	var items []indexer.Item
	for i, raw := range msgs {
		items = append(items, indexer.Item{Account: "alice", Mailbox: "INBOX", UIDValidity: 7, UID: uint32(i + 1),
			InternalDate: internal(i), Raw: raw})
	}
	if _, err := a.Ingest(ctx, items); err != nil {
		t.Fatal(err)
	}
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	return a, u
}

// rawIMAP is a client that writes commands as given and reads answers
// line by line, literals included.
type rawIMAP struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func (c *rawIMAP) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatal(err)
	}
}

var literalAt = regexp.MustCompile(`\{(\d+)\}\r\n$`)

// answer reads one response line with its literals (the deadline is what
// would catch an answer held back).
func (c *rawIMAP) answer() (line string, literals [][]byte) {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	for {
		s, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("reading an answer after %q: %v (an answer held back?)", b.String(), err)
		}
		b.WriteString(s)
		m := literalAt.FindStringSubmatch(s)
		if m == nil {
			return b.String(), literals
		}
		n, _ := strconv.Atoi(m[1])
		lit := make([]byte, n)
		if _, err := io.ReadFull(c.r, lit); err != nil {
			c.t.Fatalf("reading a literal of %d: %v", n, err)
		}
		literals = append(literals, lit)
	}
}

// until reads answers up to the tagged one of tag, returning the bodies
// by UID (answers of "* n FETCH (UID u BODY[] {…}").
func (c *rawIMAP) until(tag string, bodies map[uint32][][]byte) string {
	c.t.Helper()
	for {
		line, lits := c.answer()
		if strings.HasPrefix(line, tag+" ") {
			return line
		}
		if m := regexp.MustCompile(`^\* \d+ FETCH \(UID (\d+) BODY\[\] \{`).FindStringSubmatch(line); m != nil && len(lits) == 1 {
			uid, _ := strconv.Atoi(m[1])
			bodies[uint32(uid)] = append(bodies[uint32(uid)], lits[0])
		}
		if strings.HasPrefix(line, "t") && !strings.HasPrefix(line, tag+" ") {
			c.t.Fatalf("answer %q before the one of %s: out of order", strings.TrimSpace(line), tag)
		}
	}
}

func TestPipelinedFetchCorked(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	const n = 30
	addr, raws, _ := corkFixture(t, rng, n)
	for _, starttls := range []bool{false, true} {
		t.Run(fmt.Sprintf("starttls=%v", starttls), func(t *testing.T) {
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			c := &rawIMAP{t: t, conn: nc, r: bufio.NewReader(nc)}
			c.answer() // greeting
			if starttls {
				c.send("s1 STARTTLS\r\n")
				if line, _ := c.answer(); !strings.HasPrefix(line, "s1 OK") {
					t.Fatalf("STARTTLS: %q", line)
				}
				tc := tls.Client(nc, &tls.Config{InsecureSkipVerify: true})
				if err := tc.Handshake(); err != nil {
					t.Fatal(err)
				}
				c.conn, c.r = tc, bufio.NewReader(tc)
			}
			c.send("l1 LOGIN alice alice-password-1\r\nl2 SELECT alice/INBOX\r\n")
			if line := c.until("l2", nil); !strings.HasPrefix(line, "l2 OK") {
				t.Fatalf("SELECT: %q", line)
			}
			for round := range 8 {
				// A run of pipelined commands in one write: mostly body
				// FETCHes (corked), some others (not).
				var run strings.Builder
				var tags []string
				want := map[uint32]int{}
				for i := range 1 + rng.IntN(40) {
					tag := fmt.Sprintf("t%d.%d", round, i)
					tags = append(tags, tag)
					uid := 1 + rng.Uint32N(n)
					switch rng.IntN(6) {
					case 0:
						fmt.Fprintf(&run, "%s NOOP\r\n", tag)
					case 1:
						fmt.Fprintf(&run, "%s UID FETCH %d (FLAGS RFC822.SIZE)\r\n", tag, uid)
					case 2:
						fmt.Fprintf(&run, "%s UID SEARCH BODY \"message %d \"\r\n", tag, uid)
					default:
						fmt.Fprintf(&run, "%s UID FETCH %d (BODY.PEEK[])\r\n", tag, uid)
						want[uid]++
					}
				}
				c.send(run.String())
				bodies := map[uint32][][]byte{}
				for _, tag := range tags {
					if line := c.until(tag, bodies); !strings.HasPrefix(line, tag+" OK") {
						t.Fatalf("round %d: %q", round, line)
					}
				}
				for uid, k := range want {
					if len(bodies[uid]) != k {
						t.Fatalf("round %d: UID %d: %d bodies, want %d", round, uid, len(bodies[uid]), k)
					}
					for _, b := range bodies[uid] {
						if !bytes.Equal(b, raws[uid]) {
							t.Fatalf("round %d: UID %d: body of %d bytes differs from the stored %d", round, uid, len(b), len(raws[uid]))
						}
					}
				}
				// Then idle for a moment: nothing may be left unsent.
				if rng.IntN(2) == 0 {
					time.Sleep(20 * time.Millisecond)
				}
			}
			// A FETCH followed by the start of a command the client
			// finishes only once it has the FETCH's answer: the answer,
			// corked because more was buffered, must go out when the
			// server waits for the rest.
			c.send("p1 UID FETCH 1 (BODY.PEEK[])\r\np2 NO")
			if line := c.until("p1", map[uint32][][]byte{}); !strings.HasPrefix(line, "p1 OK") {
				t.Fatalf("p1: %q", line)
			}
			c.send("OP\r\n")
			if line := c.until("p2", nil); !strings.HasPrefix(line, "p2 OK") {
				t.Fatalf("p2: %q", line)
			}
			c.send("z LOGOUT\r\n")
			if line := c.until("z", nil); !strings.HasPrefix(line, "z OK") {
				t.Fatalf("LOGOUT: %q", line)
			}
		})
	}
}

// TestFetchResetFreesConnection: a client that resets its connection while
// the view is writing a message to it (a failed literal write) ends that
// connection: its slot is free again for the next one. (Before the fix the
// FETCH's writer kept the connection's write lock, the next write waited
// for it forever, and MaxConnsPerAddr such resets locked the address out.)
func TestFetchResetFreesConnection(t *testing.T) {
	// Bigger than what loopback buffers take while the client reads nothing.
	a, u := aliceInbox(t, msg(1, "big", strings.Repeat("a line of a big message, to fill the socket\r\n", 16<<20/46)))
	addr := serveView(t, Options{Archive: service.New(a, &service.Options{Users: u}), InsecureAuth: true, MaxConnsPerAddr: 1})
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	nc.(*net.TCPConn).SetReadBuffer(16 << 10)
	c := &rawIMAP{t: t, conn: nc, r: bufio.NewReader(nc)}
	c.answer()
	c.send("l1 LOGIN alice alice-password-1\r\nl2 SELECT alice/INBOX\r\n")
	if line := c.until("l2", nil); !strings.HasPrefix(line, "l2 OK") {
		t.Fatalf("SELECT: %q", line)
	}
	c.send("f1 UID FETCH 1 (BODY.PEEK[])\r\n")
	time.Sleep(500 * time.Millisecond) // the view is blocked writing
	nc.(*net.TCPConn).SetLinger(0)
	nc.Close() // a reset: the view's write fails
	deadline := time.Now().Add(10 * time.Second)
	for {
		nc2, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		nc2.SetReadDeadline(time.Now().Add(5 * time.Second))
		greeting, err := bufio.NewReader(nc2).ReadString('\n')
		nc2.Close()
		if err == nil && strings.HasPrefix(greeting, "* OK") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the address is still refused 10 s after the reset: %q, %v", greeting, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestByeWhileCorked: a session ended in the middle of a pipelined run (its
// user removed) still sends its BYE, and the answers before it.
func TestByeWhileCorked(t *testing.T) {
	addr, _, u := corkFixture(t, rand.New(rand.NewPCG(1, 2)), 3)
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c := &rawIMAP{t: t, conn: nc, r: bufio.NewReader(nc)}
	c.answer()
	c.send("l1 LOGIN alice alice-password-1\r\nl2 SELECT alice/INBOX\r\n")
	if line := c.until("l2", nil); !strings.HasPrefix(line, "l2 OK") {
		t.Fatalf("SELECT: %q", line)
	}
	if err := u.Remove(context.Background(), "alice"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // past the default re-check interval
	c.send("b1 UID FETCH 1 (BODY.PEEK[])\r\nb2 UID FETCH 2 (BODY.PEEK[])\r\nb3 NOOP\r\n")
	for {
		line, _ := c.answer()
		if strings.HasPrefix(line, "* BYE") {
			return
		}
		if strings.HasPrefix(line, "b3 ") {
			t.Fatalf("the session went on after its user was removed: %q", line)
		}
	}
}
