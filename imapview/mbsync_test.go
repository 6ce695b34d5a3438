package imapview

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"mailvault/indexer"
	"mailvault/indexer/mailfile/corpustest"
	"mailvault/service"
)

// The view against a real client: mbsync (Debian isync) pulls a user's
// folders into an empty Maildir, and every file it writes must be the
// archived message byte for byte.
//
// Decisions:
//   - The corpus folders are hard-ham-1 and spam-1 (750 messages). spam-2
//     is left out on purpose: 8 of its messages have CRLF line ends, and
//     mbsync turns CRLF into LF when it writes to a Maildir (its Maildir
//     store is LF-native), so those files would differ from the archive
//     because of the client, not the view.
//   - mbsync's ",U=<n>" in a file name is the Maildir side's own UID, not
//     the server's. The server UID of a file comes from the sync state
//     mbsync keeps next to it (.mbsyncstate, SyncState *): lines
//     "<far uid> <near uid> <flags>" after a blank line. That is the map
//     the test checks against the catalog.
//   - mbsync 1.4 writes one header line of its own into every message it
//     copies: "X-TUID: <12 characters>", its temporary UID for finding
//     the copy again after an interruption, as the last line of the
//     header (isync's sync.c, copy_msg_convert; there is no option to turn
//     it off). The test removes exactly that line, where mbsync puts it,
//     before hashing a file; a file without it, or with any other
//     difference, fails.
//   - The second account is named "carolyn": a scope check that compared
//     account names by prefix would leak it to carol.

// mbsyncPath returns mbsync, skipping the test without it, or failing it
// under CI=true, where a missing client must not pass silently.
func mbsyncPath(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("mbsync")
	if err != nil {
		msg := "mbsync not found: apt-get install -y isync"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return p
}

// corpusMessage is one message file of a corpus folder.
type corpusMessage struct {
	uid   uint32
	sha   string // hex sha256 of the file
	flags []string
}

// loadCorpusFolder ingests the message files of the Maildir dir (in file
// name order, UIDs 1, 2, ...) into account's mailbox with UIDVALIDITY uv,
// the way the harvester would have stored them from an IMAP server, and
// returns them by UID.
func loadCorpusFolder(t testing.TB, a *indexer.Archive, account, mailbox string, uv uint32, dir string) map[uint32]corpusMessage {
	t.Helper()
	var files []string
	for _, sub := range []string{"cur", "new"} {
		es, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		for _, e := range es {
			if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") {
				files = append(files, filepath.Join(dir, sub, e.Name()))
			}
		}
	}
	slices.Sort(files)
	if len(files) == 0 {
		t.Fatalf("no message files in %s", dir)
	}
	return loadFiles(t, a, account, mailbox, uv, files)
}

// loadFiles ingests message files into account's mailbox with UIDVALIDITY
// uv, UIDs 1, 2, ... in the order given; the INTERNALDATE is the file's
// mtime and the flags come from its Maildir info.
func loadFiles(t testing.TB, a *indexer.Archive, account, mailbox string, uv uint32, files []string) map[uint32]corpusMessage {
	t.Helper()
	ctx := context.Background()
	if _, err := a.EnsureMailbox(ctx, account, mailbox, "imap", uv); err != nil {
		t.Fatal(err)
	}
	out := map[uint32]corpusMessage{}
	var items []indexer.Item
	flush := func() {
		if _, err := a.Ingest(ctx, items); err != nil {
			t.Fatal(err)
		}
		items = items[:0]
	}
	for i, p := range files {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		uid := uint32(i + 1)
		sum := sha256.Sum256(raw)
		m := corpusMessage{uid: uid, sha: hex.EncodeToString(sum[:]), flags: maildirFlags(p)}
		out[uid] = m
		items = append(items, indexer.Item{Account: account, Mailbox: mailbox, UIDValidity: uv, UID: uid,
			Flags: m.flags, InternalDate: st.ModTime().UTC().Truncate(time.Second), Raw: raw})
		if len(items) == 500 {
			flush()
		}
	}
	flush()
	return out
}

// maildirFlags reads the IMAP flags from a Maildir file name's ":2,"
// info.
func maildirFlags(name string) []string {
	_, info, ok := strings.Cut(filepath.Base(name), ":2,")
	if !ok {
		return nil
	}
	var out []string
	for _, c := range info {
		switch c {
		case 'D':
			out = append(out, `\Draft`)
		case 'F':
			out = append(out, `\Flagged`)
		case 'R':
			out = append(out, `\Answered`)
		case 'S':
			out = append(out, `\Seen`)
		case 'T':
			out = append(out, `\Deleted`)
		}
	}
	return out
}

// startView serves svc on a loopback port and returns its address.
func startView(t testing.TB, svc *service.Service) string {
	t.Helper()
	return serveView(t, Options{Archive: svc, InsecureAuth: true})
}

// serveView serves opts (logging nowhere unless it says) on a loopback
// port until the test ends, and returns the address.
func serveView(t testing.TB, opts Options) string {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	srv := New(opts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// mbsyncRC is an mbsyncrc that pulls every folder (Patterns *) of user at
// addr, over plain IMAP with LOGIN, into the Maildir tree mail, one
// directory per folder with the server's names (SubFolders Verbatim).
func mbsyncRC(addr, user, pass, mail string) string {
	host, port, _ := net.SplitHostPort(addr)
	return fmt.Sprintf(`IMAPAccount far
Host %s
Port %s
User %s
Pass %s
SSLType None
AuthMechs LOGIN

IMAPStore far
Account far

MaildirStore near
Path %s/
Inbox %s/INBOX
SubFolders Verbatim

Channel pull
Far :far:
Near :near:
Patterns *
Sync Pull
Create Near
SyncState *
`, host, port, user, pass, mail, mail)
}

// runMbsync runs mbsync -a with the config conf (written to dir) and
// returns its exit error and output. HOME is dir, so that nothing of the
// machine's own mbsync setup is read or written.
func runMbsync(t testing.TB, mbsync, dir, conf string) (*exec.Cmd, string, error) {
	t.Helper()
	rc := filepath.Join(dir, "mbsyncrc")
	if err := os.WriteFile(rc, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(mbsync, "-c", rc, "-a")
	cmd.Env = append(os.Environ(), "HOME="+dir)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return cmd, out.String(), err
}

// pulledFile is one message file mbsync wrote.
type pulledFile struct {
	path  string
	sha   string
	flags string // the Maildir info letters after ":2,"
}

// pulledFolder is one Maildir mbsync made: its files, and the far UID of
// each from the sync state.
type pulledFolder struct {
	farUIDValidity uint32
	byFarUID       map[uint32][]pulledFile // normally one each
	files          int
	unmapped       []string // files the sync state names no far UID for
}

// readPulled reads the Maildir tree mail: every directory that holds a
// cur/ is a folder, named by its path below mail.
func readPulled(t testing.TB, mail string) map[string]*pulledFolder {
	t.Helper()
	out := map[string]*pulledFolder{}
	err := filepath.WalkDir(mail, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() || d.Name() != "cur" {
			return nil
		}
		box := filepath.Dir(p)
		rel, _ := filepath.Rel(mail, box)
		out[filepath.ToSlash(rel)] = readPulledFolder(t, box)
		return filepath.SkipDir
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func readPulledFolder(t testing.TB, box string) *pulledFolder {
	t.Helper()
	f := &pulledFolder{byFarUID: map[uint32][]pulledFile{}}
	nearToFar := map[uint32]uint32{}
	st, err := os.Open(filepath.Join(box, ".mbsyncstate"))
	if err != nil {
		t.Fatalf("%s: no sync state: %v", box, err)
	}
	defer st.Close()
	sc := bufio.NewScanner(st)
	header := true
	for sc.Scan() {
		l := sc.Text()
		if header {
			if l == "" {
				header = false
			} else if v, ok := strings.CutPrefix(l, "FarUidValidity "); ok {
				n, _ := strconv.ParseUint(v, 10, 32)
				f.farUIDValidity = uint32(n)
			}
			continue
		}
		fs := strings.Fields(l)
		if len(fs) < 2 {
			continue
		}
		far, err1 := strconv.ParseUint(fs[0], 10, 32)
		near, err2 := strconv.ParseUint(fs[1], 10, 32)
		if err1 != nil || err2 != nil {
			t.Fatalf("%s: sync state line %q", box, l)
		}
		nearToFar[uint32(near)] = uint32(far)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"cur", "new"} {
		es, err := os.ReadDir(filepath.Join(box, sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			p := filepath.Join(box, sub, e.Name())
			f.files++
			name, info, _ := strings.Cut(e.Name(), ":2,")
			_, u, ok := strings.Cut(name, ",U=")
			near, err := strconv.ParseUint(u, 10, 32)
			far, mapped := nearToFar[uint32(near)]
			if !ok || err != nil || !mapped {
				f.unmapped = append(f.unmapped, e.Name())
				continue
			}
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			b, ok = withoutTUID(b)
			if !ok {
				t.Errorf("%s: no X-TUID line at the end of the header, where mbsync 1.4 writes one", p)
			}
			sum := sha256.Sum256(b)
			f.byFarUID[far] = append(f.byFarUID[far], pulledFile{path: p, sha: hex.EncodeToString(sum[:]), flags: info})
		}
	}
	return f
}

// withoutTUID removes the "X-TUID: xxxxxxxxxxxx" line mbsync adds as the
// last line of a message's header (before the first empty line).
func withoutTUID(b []byte) ([]byte, bool) {
	end := bytes.Index(b, []byte("\n\n"))
	if end < 0 {
		return b, false
	}
	start := bytes.LastIndexByte(b[:end], '\n') + 1
	line := b[start : end+1]
	if !bytes.HasPrefix(line, []byte("X-TUID: ")) || len(line) != len("X-TUID: ")+12+1 {
		return b, false
	}
	return append(b[:start:start], b[end+1:]...), true
}

// fileNames lists every file below dir (paths relative to it), for
// comparing two runs.
func fileNames(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && d.Name() != ".mbsyncstate" && !strings.HasPrefix(d.Name(), ".mbsyncstate.") {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	slices.Sort(out)
	return out
}

func TestMbsyncPullsByteExact(t *testing.T) {
	mbsync := mbsyncPath(t)
	root := corpustest.Maildir(t)
	ctx := context.Background()
	a, u := openArchive(t, t.TempDir())
	const carolPass, lynPass = "carol-password-1", "lyn-password-1"
	if err := u.Add(ctx, service.User{Name: "carol", Role: service.RoleUser, Accounts: []string{"carol"}}, carolPass); err != nil {
		t.Fatal(err)
	}
	if err := u.Add(ctx, service.User{Name: "lyn", Role: service.RoleUser, Accounts: []string{"carolyn"}}, lynPass); err != nil {
		t.Fatal(err)
	}

	type box struct {
		account, mailbox string
		uv               uint32
		msgs             map[uint32]corpusMessage
	}
	boxes := []*box{
		{account: "carol", mailbox: "hard-ham-1", uv: 1111},
		{account: "carol", mailbox: "spam-1", uv: 2222},
	}
	for _, b := range boxes {
		b.msgs = loadCorpusFolder(t, a, b.account, b.mailbox, b.uv, filepath.Join(root, "."+b.mailbox))
	}
	// carolyn: a few messages of another account, in a mailbox whose name
	// carol also has.
	other := &box{account: "carolyn", mailbox: "spam-1", uv: 3333}
	other.msgs = map[uint32]corpusMessage{}
	var items []indexer.Item
	if _, err := a.EnsureMailbox(ctx, other.account, other.mailbox, "imap", other.uv); err != nil {
		t.Fatal(err)
	}
	for uid := uint32(1); uid <= 3; uid++ {
		// LF line ends, as in the corpus (mbsync writes LF: see above).
		raw := bytes.ReplaceAll(msg(int(uid), "carolyn's own", "not for carol"), []byte("\r\n"), []byte("\n"))
		sum := sha256.Sum256(raw)
		other.msgs[uid] = corpusMessage{uid: uid, sha: hex.EncodeToString(sum[:])}
		items = append(items, indexer.Item{Account: other.account, Mailbox: other.mailbox, UIDValidity: other.uv, UID: uid, Raw: raw,
			InternalDate: time.Date(2023, 1, 2, 11, 0, 0, 0, time.UTC)})
	}
	if _, err := a.Ingest(ctx, items); err != nil {
		t.Fatal(err)
	}
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	svc := service.New(a, &service.Options{Users: u})
	addr := startView(t, svc)

	// check holds what mbsync wrote under mail against the catalog: one
	// folder per archived mailbox of want and nothing else; per folder the
	// archive's UIDVALIDITY, and exactly one file per archived occurrence
	// with the stored bytes (sha256) and flags.
	check := func(mail string, want []*box) {
		t.Helper()
		got := readPulled(t, mail)
		var gotNames, wantNames []string
		for n := range got {
			gotNames = append(gotNames, n)
		}
		for _, b := range want {
			wantNames = append(wantNames, b.account+"/"+b.mailbox)
		}
		slices.Sort(gotNames)
		slices.Sort(wantNames)
		if !slices.Equal(gotNames, wantNames) {
			t.Errorf("mbsync made the folders %q, want %q (the archive's mailboxes)", gotNames, wantNames)
		}
		for _, b := range want {
			name := b.account + "/" + b.mailbox
			f := got[name]
			if f == nil {
				continue
			}
			if f.farUIDValidity != b.uv {
				t.Errorf("%s: mbsync saw UIDVALIDITY %d, archived %d", name, f.farUIDValidity, b.uv)
			}
			if len(f.unmapped) > 0 {
				t.Errorf("%s: %d files the sync state does not map to a server UID, e.g. %q", name, len(f.unmapped), f.unmapped[0])
			}
			cat, err := a.FolderMessages(ctx, b.account, b.mailbox, b.uv)
			if err != nil {
				t.Fatal(err)
			}
			if len(cat) != len(b.msgs) {
				t.Fatalf("%s: catalog has %d occurrences, %d were ingested", name, len(cat), len(b.msgs))
			}
			bad := 0
			for _, m := range cat {
				catSHA := hex.EncodeToString(m.SHA256[:])
				if catSHA != b.msgs[m.UID].sha {
					t.Fatalf("%s UID %d: catalog sha256 %s, the ingested file's %s", name, m.UID, catSHA, b.msgs[m.UID].sha)
				}
				files := f.byFarUID[m.UID]
				switch {
				case len(files) != 1:
					t.Errorf("%s UID %d: %d files, want 1", name, m.UID, len(files))
					bad++
				case files[0].sha != catSHA:
					t.Errorf("%s UID %d: %s has sha256 %s, the archive %s", name, m.UID, filepath.Base(files[0].path), files[0].sha, catSHA)
					bad++
				case files[0].flags != maildirInfo(b.msgs[m.UID].flags):
					t.Errorf("%s UID %d: flags %q, archived %q", name, m.UID, files[0].flags, b.msgs[m.UID].flags)
					bad++
				}
				if bad > 10 {
					t.Fatalf("%s: more than 10 bad files, stopping", name)
				}
			}
			if f.files != len(cat) {
				t.Errorf("%s: %d files, %d archived occurrences", name, f.files, len(cat))
			}
		}
	}

	dir := t.TempDir()
	mail := filepath.Join(dir, "mail")
	if err := os.MkdirAll(mail, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := mbsyncRC(addr, "carol", carolPass, mail)
	start := time.Now()
	if _, out, err := runMbsync(t, mbsync, dir, conf); err != nil {
		t.Fatalf("mbsync as carol: %v\n%s", err, out)
	}
	t.Logf("mbsync pulled carol's %d messages in %v", len(boxes[0].msgs)+len(boxes[1].msgs), time.Since(start).Round(time.Millisecond))
	check(mail, boxes)
	if _, err := os.Stat(filepath.Join(mail, "carolyn")); err == nil {
		t.Errorf("mbsync as carol created %s: another account's folder", filepath.Join(mail, "carolyn"))
	}

	// Again: nothing new is downloaded. The files stay as they are, and
	// the view reads no message content (the audit trail has a row for
	// every FETCH that reads content).
	before := fileNames(t, mail)
	fetchesBefore := len(auditRows(t, svc, "imap-fetch"))
	if _, out, err := runMbsync(t, mbsync, dir, conf); err != nil {
		t.Fatalf("second mbsync as carol: %v\n%s", err, out)
	}
	if after := fileNames(t, mail); !slices.Equal(before, after) {
		t.Errorf("the second mbsync changed the Maildir: %d files before, %d after", len(before), len(after))
	}
	rows := auditRows(t, svc, "imap-fetch") // newest first
	for _, r := range rows[:len(rows)-fetchesBefore] {
		if strings.Contains(r, "BODY[]") || strings.Contains(r, "RFC822") {
			t.Errorf("the second mbsync read message content: %s", r)
		}
	}
	check(mail, boxes)

	// The other account is there to be seen, by its own user: carol's
	// folder list left it out because of her scope, not because the
	// fixture lacks it.
	dir2 := t.TempDir()
	mail2 := filepath.Join(dir2, "mail")
	if err := os.MkdirAll(mail2, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, out, err := runMbsync(t, mbsync, dir2, mbsyncRC(addr, "lyn", lynPass, mail2)); err != nil {
		t.Fatalf("mbsync as lyn: %v\n%s", err, out)
	}
	check(mail2, []*box{other})
}

// maildirInfo is the Maildir info letters of flags, in mbsync's (ASCII)
// order.
func maildirInfo(flags []string) string {
	var b []byte
	for _, f := range flags {
		switch f {
		case `\Draft`:
			b = append(b, 'D')
		case `\Flagged`:
			b = append(b, 'F')
		case `\Answered`:
			b = append(b, 'R')
		case `\Seen`:
			b = append(b, 'S')
		case `\Deleted`:
			b = append(b, 'T')
		}
	}
	slices.Sort(b)
	return string(b)
}

// auditRows returns the user and detail of the audit rows of action,
// newest first.
func auditRows(t testing.TB, svc *service.Service, action string) []string {
	t.Helper()
	es, err := svc.AuditTrail(context.Background(), service.Caller{Name: "t", Role: service.RoleOperator},
		service.AuditFilter{Action: action, Limit: service.MaxAuditLimit})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.User+" "+e.Detail)
	}
	return out
}
