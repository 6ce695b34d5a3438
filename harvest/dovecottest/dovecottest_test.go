//go:build unix

package dovecottest

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"mailvault/harvest/imaptest"
)

// lineEndingCases are stored once with APPEND and once as Maildir files;
// want is what BODY[] returns, the same both ways: every LF not preceded
// by CR becomes CRLF, everything else (bare CR, CRLF, a missing final
// newline) is served as stored.
var lineEndingCases = []struct {
	name string
	raw  string
	want string
}{
	{"crlf", "Subject: crlf\r\n\r\nbody\r\n", "Subject: crlf\r\n\r\nbody\r\n"},
	{"lf", "Subject: lf\n\nbody\nline 2\n", "Subject: lf\r\n\r\nbody\r\nline 2\r\n"},
	{"mixed", "Subject: mixed\r\n\nbody\r\nline 2\n", "Subject: mixed\r\n\r\nbody\r\nline 2\r\n"},
	{"bare-cr", "Subject: cr\n\na\rb\n", "Subject: cr\r\n\r\na\rb\r\n"},
	{"no-final-newline", "Subject: end\n\nlast line", "Subject: end\r\n\r\nlast line"},
	{"8bit", "Subject: 8bit\n\ncaf\xe9 \xff\n", "Subject: 8bit\r\n\r\ncaf\xe9 \xff\r\n"},
}

func TestAppendFetchLineEndings(t *testing.T) {
	t.Parallel()
	s := Start(t, nil)
	uids := map[string]uint32{}
	for _, tc := range lineEndingCases {
		uids[tc.name] = s.Append(t, "alice", "INBOX", []byte(tc.raw))
	}
	got := s.Fetch(t, "alice", "INBOX")
	for _, tc := range lineEndingCases {
		if b := got[uids[tc.name]]; string(b) != tc.want {
			t.Errorf("APPEND %s %q: BODY[] = %q, want %q", tc.name, tc.raw, b, tc.want)
		}
	}
	// On disk Dovecot keeps LF only (mail_save_crlf = no): the file of the
	// CRLF message is smaller than what BODY[] returns.
	files, _ := filepath.Glob(filepath.Join(s.Dir, "home", "alice", "Maildir", "new", "*"))
	found := false
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if bytes.HasPrefix(b, []byte("Subject: crlf")) {
			found = true
			if bytes.Contains(b, []byte("\r\n")) {
				t.Errorf("APPENDed CRLF message stored with CRLF: %q", b)
			}
		}
	}
	if !found {
		t.Errorf("APPENDed message not found in Maildir/new (files %v)", files)
	}
}

func TestLoadMaildirLineEndings(t *testing.T) {
	t.Parallel()
	s := Start(t, nil)
	src := t.TempDir()
	mtime := time.Date(2002, 8, 22, 10, 0, 0, 0, time.UTC)
	for i, tc := range lineEndingCases {
		// Seen on odd ones, through the Maildir info part of the name.
		name := fmt.Sprintf("%06d.%s:2,", i+1, tc.name)
		if i%2 == 1 {
			name += "S"
		}
		path := filepath.Join(src, name)
		if err := os.WriteFile(path, []byte(tc.raw), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, mtime, mtime.Add(time.Duration(i)*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.LoadMaildir(t, "alice", "Archive/2002", src); n != len(lineEndingCases) {
		t.Fatalf("LoadMaildir = %d, want %d", n, len(lineEndingCases))
	}
	got := s.Fetch(t, "alice", "Archive/2002")
	for i, tc := range lineEndingCases {
		// UIDs follow the file names.
		if b := got[uint32(i+1)]; string(b) != tc.want {
			t.Errorf("Maildir file %s %q: BODY[] of UID %d = %q, want %q", tc.name, tc.raw, i+1, b, tc.want)
		}
	}

	c := s.Dial(t, "alice")
	if _, err := c.Select("Archive/2002", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1, 2), &imap.FetchOptions{
		UID: true, Flags: true, InternalDate: true, RFC822Size: true,
	}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		i := int(m.UID) - 1
		wantDate := mtime.Add(time.Duration(i) * time.Hour)
		if !m.InternalDate.Equal(wantDate) {
			t.Errorf("UID %d: INTERNALDATE %v, want the file mtime %v", m.UID, m.InternalDate, wantDate)
		}
		if seen := slices.Contains(m.Flags, imap.FlagSeen); seen != (i%2 == 1) {
			t.Errorf("UID %d: flags %v, want \\Seen %v", m.UID, m.Flags, i%2 == 1)
		}
		if want := int64(len(lineEndingCases[i].want)); m.RFC822Size != want {
			t.Errorf("UID %d: RFC822.SIZE %d, want %d (the CRLF size)", m.UID, m.RFC822Size, want)
		}
	}
}

func TestFlags(t *testing.T) {
	t.Parallel()
	s := Start(t, nil)
	uid := s.Append(t, "alice", "Work", []byte("Subject: f\r\n\r\nx\r\n"), `\Seen`, "$Label1")
	flags := func() []imap.Flag {
		t.Helper()
		c := s.Dial(t, "alice")
		if _, err := c.Select("Work", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
			t.Fatal(err)
		}
		msgs, err := c.Fetch(imap.UIDSetNum(imap.UID(uid)), &imap.FetchOptions{Flags: true}).Collect()
		if err != nil || len(msgs) != 1 {
			t.Fatalf("fetch flags: %v (%d messages)", err, len(msgs))
		}
		c.Close()
		// \Recent (IMAP4rev1 only) depends on which session saw the
		// message first: leave it out.
		flags := slices.DeleteFunc(msgs[0].Flags, func(f imap.Flag) bool { return f == "\\Recent" })
		slices.Sort(flags)
		return flags
	}
	if got, want := flags(), []imap.Flag{"$Label1", imap.FlagSeen}; !slices.Equal(got, want) {
		t.Errorf("after Append: flags %v, want %v", got, want)
	}
	s.SetFlags(t, "alice", "Work", uid, `\Flagged`, `\Answered`)
	if got, want := flags(), []imap.Flag{imap.FlagAnswered, imap.FlagFlagged}; !slices.Equal(got, want) {
		t.Errorf("after SetFlags: flags %v, want %v", got, want)
	}
	s.SetFlags(t, "alice", "Work", uid)
	if got := flags(); len(got) != 0 {
		t.Errorf("after SetFlags(): flags %v, want none", got)
	}
	s.Fetch(t, "alice", "Work") // BODY.PEEK[] must not set \Seen
	if got := flags(); len(got) != 0 {
		t.Errorf("after Fetch: flags %v, want none", got)
	}
}

func TestExpunge(t *testing.T) {
	t.Parallel()
	s := Start(t, nil)
	var uids []uint32
	for i := range 3 {
		uids = append(uids, s.Append(t, "alice", "INBOX", fmt.Appendf(nil, "Subject: %d\r\n\r\n%d\r\n", i, i)))
	}
	if !slices.Equal(uids, []uint32{1, 2, 3}) {
		t.Fatalf("UIDs %v, want [1 2 3]", uids)
	}
	s.Expunge(t, "alice", "INBOX", 2)
	got := s.Fetch(t, "alice", "INBOX")
	if len(got) != 2 || got[1] == nil || got[3] == nil {
		t.Errorf("after Expunge(2): UIDs %v, want 1 and 3", slices.Sorted(maps.Keys(got)))
	}
	if uid := s.Append(t, "alice", "INBOX", []byte("Subject: 4\r\n\r\n4\r\n")); uid != 4 {
		t.Errorf("next UID %d, want 4 (UIDs are never reused)", uid)
	}
}

func TestUIDValidityChange(t *testing.T) {
	t.Parallel()
	s := Start(t, nil)
	uid := s.Append(t, "alice", "INBOX", []byte("Subject: v\r\n\r\nv\r\n"))
	old := s.UIDValidity(t, "alice", "INBOX")
	if old == 0 {
		t.Fatal("UIDVALIDITY 0")
	}

	// A session with the mailbox selected, as a harvester would have.
	c := s.Dial(t, "alice")
	if _, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		t.Fatal(err)
	}

	s.ChangeUIDValidity(t, "alice", "INBOX", old+1000)
	if got := s.UIDValidity(t, "alice", "INBOX"); got != old+1000 {
		t.Errorf("UIDVALIDITY after change = %d, want %d", got, old+1000)
	}
	// Dovecot drops the selected session when it notices the change.
	if err := c.Noop().Wait(); err == nil {
		t.Errorf("NOOP on a session with the mailbox selected succeeded after the UIDVALIDITY change; want the connection dropped")
	}
	// The messages keep their UIDs and bytes.
	if got := s.Fetch(t, "alice", "INBOX"); string(got[uid]) != "Subject: v\r\n\r\nv\r\n" {
		t.Errorf("after the change: Fetch = %v", got)
	}
}

func TestTLS(t *testing.T) {
	t.Parallel()
	s := Start(t, &Options{TLS: true})
	if s.TLSAddr == "" || s.CAFile == "" || s.CAPool() == nil {
		t.Fatalf("TLS server without TLSAddr %q / CAFile %q / CAPool", s.TLSAddr, s.CAFile)
	}
	login := func(c *imapclient.Client, err error) error {
		if err != nil {
			return err
		}
		defer c.Close()
		return c.Login("alice", s.Password("alice")).Wait()
	}
	if err := login(imapclient.DialTLS(s.TLSAddr, &imapclient.Options{TLSConfig: &tls.Config{RootCAs: s.CAPool()}})); err != nil {
		t.Errorf("implicit TLS with CAPool: %v", err)
	}
	if err := login(imapclient.DialStartTLS(s.Addr, &imapclient.Options{TLSConfig: &tls.Config{RootCAs: s.CAPool(), ServerName: "localhost"}})); err != nil {
		t.Errorf("STARTTLS with CAPool: %v", err)
	}
	// The CA is private: system roots do not trust it.
	_, err := imapclient.DialTLS(s.TLSAddr, &imapclient.Options{Dialer: &net.Dialer{Timeout: 5 * time.Second}})
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Errorf("implicit TLS without CAPool: err = %v, want an unknown-authority error", err)
	}
	// The CA file is a usable PEM.
	pem, err := os.ReadFile(s.CAFile)
	if err != nil || !bytes.Contains(pem, []byte("BEGIN CERTIFICATE")) {
		t.Errorf("CAFile %s: %v %.40q", s.CAFile, err, pem)
	}
}

func TestWrongPassword(t *testing.T) {
	t.Parallel()
	s := Start(t, nil)
	for range 3 {
		c, err := imapclient.DialInsecure(s.Addr, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = c.Login("alice", "wrong").Wait()
		c.Close()
		var imapErr *imap.Error
		if !errors.As(err, &imapErr) || imapErr.Code != imap.ResponseCodeAuthenticationFailed {
			t.Fatalf("LOGIN with a wrong password: err = %v, want NO [AUTHENTICATIONFAILED]", err)
		}
	}
	// No auth penalty: the right password works at once.
	start := time.Now()
	s.Dial(t, "alice")
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("login after failures took %v: auth penalty active?", d)
	}
	// An unknown user fails the same way.
	c, err := imapclient.DialInsecure(s.Addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var imapErr *imap.Error
	if err := c.Login("mallory", s.Password("mallory")).Wait(); !errors.As(err, &imapErr) || imapErr.Code != imap.ResponseCodeAuthenticationFailed {
		t.Errorf("LOGIN of an unknown user: err = %v, want NO [AUTHENTICATIONFAILED]", err)
	}
}

func TestStopRestartKeepsMail(t *testing.T) {
	t.Parallel()
	s := Start(t, nil)
	raw := []byte("Subject: keep\r\n\r\nkeep me\r\n")
	uid := s.Append(t, "alice", "INBOX", raw)
	validity := s.UIDValidity(t, "alice", "INBOX")
	c := s.Dial(t, "alice")

	begin := time.Now()
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	t.Logf("Stop took %v", time.Since(begin))
	if s.Running() {
		t.Error("Running after Stop")
	}
	// Open sessions are closed, the port is refused.
	select {
	case <-c.Closed():
	case <-time.After(5 * time.Second):
		t.Error("client still connected 5s after Stop")
	}
	if conn, err := net.DialTimeout("tcp", s.Addr, time.Second); err == nil {
		conn.Close()
		t.Errorf("%s accepts connections after Stop", s.Addr)
	}
	if err := s.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}

	if err := s.Restart(); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	if got := s.Fetch(t, "alice", "INBOX"); !bytes.Equal(got[uid], raw) || len(got) != 1 {
		t.Errorf("after Restart: Fetch = %v, want UID %d = %q", got, uid, raw)
	}
	if got := s.UIDValidity(t, "alice", "INBOX"); got != validity {
		t.Errorf("after Restart: UIDVALIDITY %d, want %d", got, validity)
	}
}

func TestTwoServersInParallel(t *testing.T) {
	t.Parallel()
	if _, _, err := findBinaries(); err != nil {
		Start(t, nil) // skips, or fails in CI
	}
	// Started concurrently, as parallel tests do.
	done := make(chan *Server, 2)
	for range 2 {
		go func() { done <- startNoFatal(t) }()
	}
	a, b := <-done, <-done
	if a == nil || b == nil {
		t.FailNow()
	}
	if a.Addr == b.Addr || a.Dir == b.Dir {
		t.Fatalf("servers share Addr %s / Dir %s", a.Addr, a.Dir)
	}
	a.Append(t, "alice", "INBOX", []byte("Subject: a\r\n\r\na\r\n"))
	if got := b.Fetch(t, "alice", "INBOX"); len(got) != 0 {
		t.Errorf("mail appended to server A is on server B: %v", got)
	}
	if got := a.Fetch(t, "alice", "INBOX"); len(got) != 1 {
		t.Errorf("server A has %d messages, want 1", len(got))
	}
	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
	b.Append(t, "alice", "INBOX", []byte("Subject: b\r\n\r\nb\r\n")) // B unaffected
}

// startNoFatal runs Start from a goroutine other than the test's, where
// t.Fatal must not be called: it reports failures with t.Error.
func startNoFatal(t *testing.T) (s *Server) {
	ft := &fatalTB{TB: t}
	defer func() {
		if r := recover(); r != nil && r != errFatal {
			panic(r)
		}
	}()
	return Start(ft, nil)
}

var errFatal = errors.New("fatal")

type fatalTB struct{ testing.TB }

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.TB.Errorf(format, args...)
	panic(errFatal)
}

func (f *fatalTB) Skipf(format string, args ...any) {
	f.TB.Logf(format, args...)
	panic(errFatal)
}

func TestAddUser(t *testing.T) {
	t.Parallel()
	s := Start(t, &Options{Users: []string{"alice", "carol"}, Password: "pw"})
	if s.Password("carol") != "pw" {
		t.Errorf("Password = %q, want pw", s.Password("carol"))
	}
	s.Dial(t, "carol")
	s.AddUser(t, "bob")
	s.Dial(t, "bob") // at once
	s.Append(t, "bob", "INBOX", []byte("Subject: b\r\n\r\nb\r\n"))
	if got := s.Fetch(t, "alice", "INBOX"); len(got) != 0 {
		t.Errorf("bob's mail in alice's INBOX")
	}
}

func TestIdleSeesAppend(t *testing.T) {
	t.Parallel()
	s := Start(t, nil)
	exists := make(chan uint32, 10)
	c, err := imapclient.DialInsecure(s.Addr, &imapclient.Options{
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(data *imapclient.UnilateralDataMailbox) {
				if data.NumMessages != nil {
					select {
					case exists <- *data.NumMessages:
					default:
					}
				}
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("alice", s.Password("alice")).Wait(); err != nil {
		t.Fatal(err)
	}
	if !c.Caps().Has(imap.CapIdle) {
		t.Fatalf("no IDLE capability: %v", c.Caps())
	}
	if _, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		t.Fatal(err)
	}
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	s.Append(t, "alice", "INBOX", []byte("Subject: new\r\n\r\nnew\r\n"))
	select {
	case n := <-exists:
		t.Logf("EXISTS %d after %v", n, time.Since(start).Round(time.Millisecond))
	case <-time.After(5 * time.Second):
		t.Error("no EXISTS within 5s of an APPEND while idling")
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}
}

func TestMaxUserIPConnections(t *testing.T) {
	t.Parallel()
	s := Start(t, &Options{MaxUserIPConnections: 2})
	s.Dial(t, "alice")
	s.Dial(t, "alice")
	c, err := imapclient.DialInsecure(s.Addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.Login("alice", s.Password("alice")).Wait()
	var imapErr *imap.Error
	if !errors.As(err, &imapErr) || imapErr.Code != imap.ResponseCodeLimit {
		t.Errorf("third session with mail_max_userip_connections=2: err = %v, want NO [LIMIT]", err)
	}
}

// corpusFolder returns the Maildir folder of the SpamAssassin corpus
// (scripts/fetch-corpus.sh), or skips.
func corpusFolder(t testing.TB, group string) string {
	root := os.Getenv("MAILVAULT_CORPUS")
	if root == "" {
		home, _ := os.UserHomeDir()
		root = filepath.Join(home, ".cache", "mailvault", "corpus")
	}
	dir := filepath.Join(root, "maildir", "."+group, "cur")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("corpus not found (%v): run scripts/fetch-corpus.sh", err)
	}
	return dir
}

func TestLoadCorpus(t *testing.T) {
	t.Parallel()
	dir := corpusFolder(t, "easy-ham-1")
	s := Start(t, nil)
	start := time.Now()
	n := s.LoadMaildir(t, "alice", "easy-ham-1", dir)
	loaded := time.Since(start)
	start = time.Now()
	got := s.Fetch(t, "alice", "easy-ham-1")
	fetched := time.Since(start)
	t.Logf("LoadMaildir: %d messages in %v; Fetch of all: %v", n, loaded.Round(time.Millisecond), fetched.Round(time.Millisecond))
	if len(got) != n {
		t.Fatalf("Fetch: %d messages, want %d", len(got), n)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	// UID i is the i-th file in name order, served with CRLF.
	for i, e := range entries {
		raw, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if want := toCRLF(raw); !bytes.Equal(got[uint32(i+1)], want) {
			t.Fatalf("UID %d: BODY[] differs from %s with LF made CRLF (%d vs %d bytes)", i+1, e.Name(), len(got[uint32(i+1)]), len(want))
		}
	}
}

// TestLinkFiles: LinkFiles hard-links world-readable files (the source's
// link count goes up, nothing is chowned), copies the rest when running as
// root (the mail user could not read them), serves every one byte-exact in
// name order, and a flag change afterwards leaves the sources as they were.
func TestLinkFiles(t *testing.T) {
	t.Parallel()
	s := Start(t, nil)
	src := t.TempDir()
	type file struct {
		name, raw string
		mode      os.FileMode
	}
	files := []file{
		{"1000.a:2,S", "Subject: one\n\nfirst\n", 0o644},
		{"1001.b:2,", "Subject: two\r\n\r\nsecond\r\n", 0o644},
		{"1002.c:2,", "Subject: three\n\nprivate\n", 0o600},
	}
	var paths []string
	for _, f := range files {
		p := filepath.Join(src, f.name)
		if err := os.WriteFile(p, []byte(f.raw), f.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, f.mode); err != nil { // past the umask
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	if n := s.LinkFiles(t, "alice", "big", paths); n != len(files) {
		t.Fatalf("LinkFiles = %d, want %d", n, len(files))
	}
	s.Index(t, "alice", "big")
	got := s.Fetch(t, "alice", "big")
	for i, f := range files {
		if want := toCRLF([]byte(f.raw)); !bytes.Equal(got[uint32(i+1)], want) {
			t.Errorf("UID %d: BODY[] = %q, want %q", i+1, got[uint32(i+1)], want)
		}
		fi, err := os.Stat(paths[i])
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		wantLinks := uint64(2)
		if f.mode&0o004 == 0 && os.Geteuid() == 0 {
			wantLinks = 1 // copied
		}
		if uint64(st.Nlink) != wantLinks {
			t.Errorf("%s (mode %o): %d links, want %d", f.name, f.mode, st.Nlink, wantLinks)
		}
		if st.Uid != uint32(os.Geteuid()) {
			t.Errorf("%s: owner changed to uid %d", f.name, st.Uid)
		}
	}
	s.SetFlags(t, "alice", "big", 2, `\Flagged`)
	for i, f := range files {
		b, err := os.ReadFile(paths[i])
		if err != nil || string(b) != f.raw {
			t.Errorf("source %s after a flag change: %q, %v", f.name, b, err)
		}
	}
}

// toCRLF turns every LF not preceded by CR into CRLF, as Dovecot serves it.
func toCRLF(b []byte) []byte {
	out := make([]byte, 0, len(b)+len(b)/20)
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, c)
	}
	return out
}

func TestToCRLF(t *testing.T) {
	for _, tc := range lineEndingCases {
		if got := string(toCRLF([]byte(tc.raw))); got != tc.want {
			t.Errorf("toCRLF(%q) = %q, want %q", tc.raw, got, tc.want)
		}
	}
}

// BenchmarkLoad compares the two ways to fill a mailbox with the corpus:
// go test -run '^$' -bench Load -benchtime 1x ./harvest/dovecottest/
func BenchmarkLoad(b *testing.B) {
	dir := corpusFolder(b, "easy-ham-1")
	b.Run("maildir-copy", func(b *testing.B) {
		s := Start(b, nil)
		for i := 0; b.Loop(); i++ {
			s.LoadMaildir(b, "alice", fmt.Sprintf("copy%d", i), dir)
		}
	})
	b.Run("append", func(b *testing.B) {
		s := Start(b, nil)
		entries, err := os.ReadDir(dir)
		if err != nil {
			b.Fatal(err)
		}
		var msgs [][]byte
		for _, e := range entries {
			raw, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				b.Fatal(err)
			}
			msgs = append(msgs, raw)
		}
		for i := 0; b.Loop(); i++ {
			mailbox := fmt.Sprintf("append%d", i)
			err := s.with("alice", func(c *imapclient.Client) error {
				if err := imaptest.EnsureMailbox(c, mailbox); err != nil {
					return err
				}
				for _, raw := range msgs {
					if _, err := imaptest.AppendMessage(c, mailbox, raw, []string{`\Seen`}, time.Time{}); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}
