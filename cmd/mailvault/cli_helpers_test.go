package main

// Helpers shared by the tests of the binary (e2e_test.go, crash_test.go,
// serve_crash_test.go, ...): how to run mailvault, in-process or built, and
// read its --json output, and checks of that output against the corpus as
// indexer/mailfile/corpustest reads it from the files.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"mailvault/indexer/mailfile/corpustest"
)

// cliResult is one run of mailvault.
type cliResult struct {
	code           int
	stdout, stderr string
	killed         bool // the process was killed by a signal
}

// runner runs mailvault with args: in-process or as a subprocess.
type runner func(t testing.TB, args ...string) cliResult

// inProcess runs the command in this test process through run.
func inProcess(t testing.TB, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	code := run(ctx, &env{stdout: &out, stderr: &errb}, args)
	return cliResult{code: code, stdout: out.String(), stderr: errb.String()}
}

// buildMailvault builds the command into a temporary directory.
func buildMailvault(t testing.TB) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("go tool not found: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "mailvault")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool, "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// binary returns a runner for the built command.
func binary(bin string) runner {
	return func(t testing.TB, args ...string) cliResult {
		t.Helper()
		return runBinary(t, bin, 0, args...)
	}
}

// runBinary runs bin with args. When killAfter > 0 the process is sent
// SIGKILL after that long if it is still running.
func runBinary(t testing.TB, bin string, killAfter time.Duration, args ...string) cliResult {
	t.Helper()
	return runBinaryKill(t, bin, killAfter, nil, args...)
}

// runBinaryKill runs bin with args and sends it SIGKILL, if it is still
// running, after killAfter (when > 0) or, when killWhen is not nil instead,
// as soon as killWhen (polled every 200µs) returns true.
func runBinaryKill(t testing.TB, bin string, killAfter time.Duration, killWhen func() bool, args ...string) cliResult {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Env = append(os.Environ(), "MAILVAULT_CPUPROFILE=")
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var kill <-chan time.Time
	if killAfter > 0 {
		kill = time.After(killAfter)
	}
	if killWhen != nil {
		when := make(chan time.Time, 1)
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if killWhen() {
					when <- time.Now()
					return
				}
				time.Sleep(200 * time.Microsecond)
			}
		}()
		kill = when
	}
	limit := time.After(5 * time.Minute)
	var err error
	select {
	case err = <-done:
	case <-kill:
		cmd.Process.Kill() // SIGKILL
		err = <-done
	case <-limit:
		cmd.Process.Kill()
		<-done
		t.Fatalf("mailvault %s: still running after 5 minutes", strings.Join(args, " "))
	}
	r := cliResult{stdout: out.String(), stderr: errb.String(), code: cmd.ProcessState.ExitCode()}
	if ws, ok := cmd.ProcessState.Sys().(interface{ Signaled() bool }); ok && ws.Signaled() {
		r.killed = true
	}
	if err != nil && !r.killed && r.code < 0 {
		t.Fatalf("mailvault %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// importSummaryJSON is `import --json` output, decoded by its documented
// field names.
type importSummaryJSON struct {
	Stored      *int `json:"stored"`
	Linked      *int `json:"linked"`
	Present     *int `json:"already_present"`
	ParseErrors *int `json:"parse_errors"`
	FileErrors  *int `json:"file_errors"`
}

type importCounts struct{ stored, linked, present, parseErrors, fileErrors int }

func parseImportSummary(t testing.TB, r cliResult) importCounts {
	t.Helper()
	var s importSummaryJSON
	if err := json.Unmarshal([]byte(strings.TrimSpace(r.stdout)), &s); err != nil {
		t.Fatalf("import --json printed %q: %v (stderr %q)", r.stdout, err, r.stderr)
	}
	for name, p := range map[string]*int{"stored": s.Stored, "linked": s.Linked, "already_present": s.Present,
		"parse_errors": s.ParseErrors, "file_errors": s.FileErrors} {
		if p == nil {
			t.Fatalf("import --json: no %q field in %s", name, r.stdout)
		}
	}
	return importCounts{*s.Stored, *s.Linked, *s.Present, *s.ParseErrors, *s.FileErrors}
}

// mailboxStatusJSON is one line of `status --json`.
type mailboxStatusJSON struct {
	Account     string `json:"account"`
	Mailbox     string `json:"mailbox"`
	Source      string `json:"source"`
	UIDValidity uint32 `json:"uidvalidity"`
	UIDNext     uint32 `json:"uidnext"`
	Archived    int    `json:"archived"`
	Unique      int    `json:"unique_messages"`
	ParseErrors int    `json:"parse_errors"`
	NotIndexed  int    `json:"not_indexed"`
	Indexed     int    `json:"indexed"`
	Expunged    int    `json:"expunged"`
}

// statusOf runs `status --json` and returns the mailboxes of account by name.
func statusOf(t testing.TB, mv runner, data, account string) map[string]mailboxStatusJSON {
	t.Helper()
	r := mv(t, "status", "--data", data, "--json")
	if r.code != 0 {
		t.Fatalf("status: exit %d, stderr %q", r.code, r.stderr)
	}
	out := map[string]mailboxStatusJSON{}
	for _, line := range nonEmptyLines(r.stdout) {
		var s mailboxStatusJSON
		if err := json.Unmarshal([]byte(line), &s); err != nil {
			t.Fatalf("status --json line %q: %v", line, err)
		}
		if s.Account != account {
			t.Errorf("status: mailbox %q of unexpected account %q", s.Mailbox, s.Account)
			continue
		}
		if _, dup := out[s.Mailbox]; dup {
			t.Errorf("status: mailbox %q listed twice", s.Mailbox)
		}
		out[s.Mailbox] = s
	}
	return out
}

// checkStatusMatchesCorpus checks that every folder is archived exactly once
// per file, fully indexed, and that nothing else is there.
func checkStatusMatchesCorpus(t testing.TB, st map[string]mailboxStatusJSON, folders []*corpustest.Folder) {
	t.Helper()
	want := map[string]bool{}
	for _, f := range folders {
		want[f.Mailbox] = true
		s, ok := st[f.Mailbox]
		if !ok {
			if len(f.Files) > 0 {
				t.Errorf("status: mailbox %q (%d files) missing", f.Mailbox, len(f.Files))
			}
			continue
		}
		distinct := map[string]bool{}
		for _, h := range f.SHA {
			distinct[h] = true
		}
		if s.Archived != len(f.Files) || s.Unique != len(distinct) {
			t.Errorf("status %s: archived %d, unique %d; want %d files, %d distinct (every file exactly once)",
				f.Mailbox, s.Archived, s.Unique, len(f.Files), len(distinct))
		}
		if s.NotIndexed != 0 || s.Indexed != s.Unique {
			t.Errorf("status %s: not_indexed %d, indexed %d of %d unique; want all indexed", f.Mailbox, s.NotIndexed, s.Indexed, s.Unique)
		}
		if s.Source != "import" || s.Expunged != 0 {
			t.Errorf("status %s: source %q, expunged %d; want import, 0", f.Mailbox, s.Source, s.Expunged)
		}
		if s.Archived > 0 && s.UIDNext != uint32(s.Archived)+1 {
			t.Errorf("status %s: uidnext %d after %d messages; want %d (UIDs 1..n, none burnt or reused)", f.Mailbox, s.UIDNext, s.Archived, s.Archived+1)
		}
	}
	for name := range st {
		if !want[name] {
			t.Errorf("status: unexpected mailbox %q", name)
		}
	}
}

// hitJSON is one line of `search --json`.
type hitJSON struct {
	Account     string   `json:"account"`
	Mailbox     string   `json:"mailbox"`
	UIDValidity uint32   `json:"uidvalidity"`
	UID         uint32   `json:"uid"`
	SHA256      string   `json:"sha256"`
	Date        string   `json:"date"`
	From        string   `json:"from"`
	Subject     string   `json:"subject"`
	Size        int64    `json:"size"`
	Flags       []string `json:"flags"`
	URL         string   `json:"url"`
}

// searchAll runs `search --json` with a limit above any result here and
// returns every occurrence of every hit. flagsAndQuery is what follows
// "--data DIR" on the command line.
func searchAll(t testing.TB, mv runner, data string, flagsAndQuery ...string) []hitJSON {
	t.Helper()
	args := append([]string{"search", "--data", data, "--json", "--limit", "100000"}, flagsAndQuery...)
	r := mv(t, args...)
	if r.code != 0 {
		t.Errorf("mailvault %s: exit %d, stderr %q", strings.Join(args, " "), r.code, r.stderr)
		return nil
	}
	var hits []hitJSON
	for _, line := range nonEmptyLines(r.stdout) {
		var h hitJSON
		if err := json.Unmarshal([]byte(line), &h); err != nil {
			t.Fatalf("search --json line %q: %v", line, err)
		}
		hits = append(hits, h)
	}
	return hits
}

var totalRE = regexp.MustCompile(`(?m)^(\d+) of (\d+) matching messages`)

// searchTotal runs a text search and returns the total it reports on stderr
// ("1 of 81 matching messages").
func searchTotal(t testing.TB, mv runner, data string, flagsAndQuery ...string) int {
	t.Helper()
	args := append([]string{"search", "--data", data, "--limit", "1"}, flagsAndQuery...)
	r := mv(t, args...)
	if r.code != 0 {
		t.Errorf("mailvault %s: exit %d, stderr %q", strings.Join(args, " "), r.code, r.stderr)
		return -1
	}
	m := totalRE.FindStringSubmatch(r.stderr)
	if m == nil {
		t.Errorf("mailvault %s: no \"N of M matching messages\" line in stderr %q", strings.Join(args, " "), r.stderr)
		return -1
	}
	n, _ := strconv.Atoi(m[2])
	return n
}

// shaSet returns the distinct messages of hits, sorted.
func shaSet(hits []hitJSON) []string {
	var out []string
	for _, h := range hits {
		out = append(out, h.SHA256)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func nonEmptyLines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// verifyOK runs verify twice (--json and text) and checks that it passes with
// no problems and that the counts agree with want distinct messages.
func verifyOK(t testing.TB, mv runner, data string, wantMessages int) {
	t.Helper()
	r := mv(t, "verify", "--data", data, "--json")
	var rep struct {
		Blobs    int               `json:"blobs"`
		Messages int               `json:"messages"`
		Indexed  int               `json:"index_documents"`
		Problems []json.RawMessage `json:"problems"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(r.stdout)), &rep); err != nil {
		t.Fatalf("verify --json printed %q: %v (exit %d, stderr %q)", r.stdout, err, r.code, r.stderr)
	}
	if r.code != 0 || len(rep.Problems) != 0 {
		t.Errorf("verify: exit %d, %d problems: %s (stderr %q)", r.code, len(rep.Problems), r.stdout, r.stderr)
	}
	// Blobs may exceed messages by orphans a crash left; never fall short.
	if rep.Messages != wantMessages || rep.Indexed != wantMessages || rep.Blobs < wantMessages {
		t.Errorf("verify: %d blobs, %d messages, %d index documents; want %d messages, all indexed and stored",
			rep.Blobs, rep.Messages, rep.Indexed, wantMessages)
	}
	r = mv(t, "verify", "--data", data)
	if r.code != 0 || !strings.Contains(r.stdout, " 0 problems") {
		t.Errorf("verify: exit %d, stdout %q; want exit 0 and \"0 problems\"", r.code, r.stdout)
	}
}

// checkOccurrences checks a listing of every occurrence (a search matching
// all messages) against the folders: each file is there exactly once, under
// the UID of its position in the folder (import numbers in file order), with
// the sha256 of its bytes.
func checkOccurrences(t testing.TB, all []hitJSON, folders []*corpustest.Folder) {
	t.Helper()
	byBox := map[string]*corpustest.Folder{}
	want := 0
	for _, f := range folders {
		byBox[f.Mailbox] = f
		want += len(f.Files)
	}
	seen := map[string]bool{}
	bad := 0
	for _, h := range all {
		key := h.Mailbox + ";UID=" + strconv.Itoa(int(h.UID))
		if seen[key] {
			t.Errorf("occurrence %s listed twice", key)
			bad++
		}
		seen[key] = true
		f := byBox[h.Mailbox]
		switch {
		case f == nil:
			t.Errorf("occurrence %s: unexpected mailbox", key)
			bad++
		case h.UID < 1 || int(h.UID) > len(f.Files):
			t.Errorf("occurrence %s: UID out of range 1..%d", key, len(f.Files))
			bad++
		case f.SHA[h.UID-1] != h.SHA256:
			t.Errorf("occurrence %s: sha256 %s, want %s of %s", key, h.SHA256, f.SHA[h.UID-1], f.Files[h.UID-1])
			bad++
		}
		if bad > 20 {
			t.Fatal("too many bad occurrences")
		}
	}
	if len(seen) != want {
		t.Errorf("%d distinct occurrences listed, want %d (one per file)", len(seen), want)
	}
}

func shaHex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
