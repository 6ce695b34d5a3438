package main

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"mailvault/export"
	"mailvault/service"
)

// The daemon runs the long work: these tests run the built binary as an
// operator would, `serve` with no IMAP accounts (archive-only) in one
// process and the other commands beside it, killing serve with SIGKILL at
// the moments that matter.

// writeMaildir writes n distinct generated messages into a new Maildir
// and returns its path. Every message carries the word tag.
func writeMaildir(t *testing.T, tag string, n int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), tag)
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	words := []string{"budget", "merger", "invoice", "lunch", "audit", "offsite", "quarterly", "roadmap"}
	for i := range n {
		raw := fmt.Sprintf("From: Sender %d <s%d@example.org>\r\nTo: team@example.org\r\nSubject: %s %s %d\r\n"+
			"Message-ID: <%s.%d@example.org>\r\nDate: Mon, %d Mar 2024 10:%02d:00 +0000\r\n\r\n%s about the %s, item %d of %s.\r\n",
			i%7, i%7, tag, words[i%len(words)], i, tag, i, 1+i%28, i%60, tag, words[(i/3)%len(words)], i, tag)
		name := fmt.Sprintf("%010d.%s%d.host:2,S", 1700000000+i, tag, i)
		if err := os.WriteFile(filepath.Join(dir, "cur", name), []byte(raw), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// serveProc is a running `mailvault serve`.
type serveProc struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	web    string // host:port of the web listener
	done   chan struct{}
	code   int
}

var webURL = regexp.MustCompile(`url=http://([0-9.:]+)/`)

// startServe starts `mailvault serve` on data, archive-only unless extra
// names a --config, with the web UI on a free port, and waits until it
// answers on the web and the socket.
func startServe(t *testing.T, bin, data string, extra ...string) *serveProc {
	t.Helper()
	p := &serveProc{stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, append([]string{"serve", "--data", data, "--web-listen", "127.0.0.1:0"}, extra...)...)
	p.cmd.Stdout, p.cmd.Stderr = io.Discard, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(func() { p.cmd.Process.Kill(); <-p.done })
	deadline := time.Now().Add(30 * time.Second)
	for {
		if m := webURL.FindStringSubmatch(p.stderr.String()); m != nil {
			p.web = m[1]
			if r := runBinary(t, bin, 0, "jobs", "--data", data); r.code == 0 {
				return p
			}
		}
		select {
		case <-p.done:
			t.Fatalf("serve exited %d: %s", p.code, p.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not come up: %s", p.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM and wants exit 0.
func (p *serveProc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not stop on SIGTERM: %s", p.stderr.String())
	}
	if p.code != 0 {
		t.Fatalf("serve exit %d after SIGTERM: %s", p.code, p.stderr.String())
	}
}

func (p *serveProc) kill() {
	p.cmd.Process.Kill()
	<-p.done
}

// api GETs path on serve's web API with token and decodes the JSON answer.
func (p *serveProc) api(t *testing.T, token, path string, out any) int {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+p.web+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == 200 && out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("GET %s: %v: %s", path, err, b)
		}
	}
	return resp.StatusCode
}

// addUser adds a web user and returns an API token for it.
func addUser(t *testing.T, bin, data, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"user", "add", name, "--data", data}, args...)...)
	cmd.Stdin = strings.NewReader("correct horse battery\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("user add %s: %v: %s", name, err, out)
	}
	r := runBinary(t, bin, 0, "user", "token", name, "--data", data)
	if r.code != 0 {
		t.Fatalf("user token: %s", r.stderr)
	}
	return strings.TrimSpace(r.stdout)
}

// occurrences counts the occurrences of an account that `search` lists.
func occurrences(t *testing.T, bin, data, account string) int {
	t.Helper()
	return len(searchAll(t, binary(bin), data, "--account", account, "larger:0"))
}

// waitUntilT polls cond for up to a minute.
func waitUntilT(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestServeArchiveOnlyRunsTheLongWork: serve with no IMAP accounts serves
// imported mail; import, verify and reindex run in it as jobs while it
// serves, and neither a killed serve nor a cancelled import duplicates or
// loses anything; a serve killed during an online reindex comes back with
// the old index serving.
func TestServeArchiveOnlyRunsTheLongWork(t *testing.T) {
	bin := buildMailvault(t)
	data := filepath.Join(t.TempDir(), "data")
	const n = 1200
	alice, bob := writeMaildir(t, "alpha", n), writeMaildir(t, "bravo", n)
	admin := addUser(t, bin, data, "root", "--role", "admin")
	srv := startServe(t, bin, data)

	// An import while serve runs goes to serve as a job, and its mail is
	// searchable through every front door.
	r := runBinary(t, bin, 0, "import", "--data", data, "--account", "alice", alice)
	if r.code != 0 || !strings.Contains(r.stderr, "runs in the running serve as job") ||
		!strings.Contains(r.stdout, fmt.Sprintf("imported %d (%d new", n, n)) {
		t.Fatalf("import beside serve: exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	waitUntilT(t, "alice's mail searchable", func() bool { return occurrences(t, bin, data, "alice") == n })
	var ans struct{ Total int }
	if code := srv.api(t, admin, "/api/search?q=alpha&limit=1", &ans); code != 200 || ans.Total != n {
		t.Fatalf("web API after import: %d, total %d, want %d", code, ans.Total, n)
	}
	var jobs []service.JobInfo
	for _, line := range nonEmptyLines(runBinary(t, bin, 0, "jobs", "--data", data, "--json").stdout) {
		var j service.JobInfo
		if err := json.Unmarshal([]byte(line), &j); err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, j)
	}
	if len(jobs) != 1 || jobs[0].Kind != service.JobImport || jobs[0].State != service.JobDone || jobs[0].Done != n || jobs[0].Total != n {
		t.Fatalf("jobs after the import: %+v", jobs)
	}
	// Again: nothing new.
	r = runBinary(t, bin, 0, "import", "--data", data, "--account", "alice", alice)
	if r.code != 0 || !strings.Contains(r.stdout, fmt.Sprintf("imported 0 (0 new, 0 copies of known mail), already present %d", n)) {
		t.Fatalf("second import: %d %s %s", r.code, r.stdout, r.stderr)
	}

	// serve killed in the middle of an import: after a restart the same
	// import completes it, with nothing twice.
	bobArchived := func() int {
		st, err := service.OfflineStatus(t.Context(), data)
		if err != nil {
			return 0
		}
		k := 0
		for _, m := range st.Mailboxes {
			if m.Account == "bob" {
				k += m.Occurrences
			}
		}
		return k
	}
	imp := exec.Command(bin, "import", "--data", data, "--account", "bob", bob)
	var impErr syncBuffer
	imp.Stderr = &impErr
	if err := imp.Start(); err != nil {
		t.Fatal(err)
	}
	waitUntilT(t, "bob's import under way", func() bool { return bobArchived() > 0 })
	srv.kill()
	imp.Wait()
	if imp.ProcessState.ExitCode() == 0 {
		t.Fatalf("import whose serve was killed exited 0: %s", impErr.String())
	}
	partial := bobArchived()
	if partial >= n {
		t.Fatalf("bob's import finished before serve was killed")
	}
	srv = startServe(t, bin, data)
	r = runBinary(t, bin, 0, "import", "--data", data, "--account", "bob", "--json", bob)
	got := parseImportSummary(t, r)
	if r.code != 0 || got.stored+got.linked+got.present != n || got.present != partial {
		t.Fatalf("import after serve was killed with %d of bob's in: %+v (exit %d, %s)", partial, got, r.code, r.stderr)
	}
	waitUntilT(t, "bob's mail searchable", func() bool { return occurrences(t, bin, data, "bob") == n })
	t.Logf("serve killed with %d of %d of bob's messages archived; the rerun added %d", partial, n, got.stored+got.linked)

	// Ctrl-C on the import cancels its job; what it did stays, and the
	// rerun finishes it without duplicates.
	carol := writeMaildir(t, "charlie", n)
	cmd := exec.Command(bin, "import", "--data", data, "--account", "carol", carol)
	var cerr syncBuffer
	cmd.Stderr = &cerr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitUntilT(t, "carol's import job running", func() bool {
		return strings.Contains(runBinary(t, bin, 0, "jobs", "--data", data, "--json").stdout, `"state":"running","by":"`+service.Operator().Name+`","what":"account carol`)
	})
	cmd.Process.Signal(os.Interrupt)
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 130 || !strings.Contains(cerr.String(), "cancelled") {
		t.Fatalf("interrupted import: exit %d, %s", code, cerr.String())
	}
	if !strings.Contains(runBinary(t, bin, 0, "jobs", "--data", data, "--json").stdout, `"state":"cancelled"`) {
		t.Fatal("the interrupted import's job is not cancelled")
	}
	r = runBinary(t, bin, 0, "import", "--data", data, "--account", "carol", "--json", carol)
	if got := parseImportSummary(t, r); r.code != 0 || got.stored+got.linked+got.present != n {
		t.Fatalf("import after Ctrl-C: %+v %s", got, r.stderr)
	}
	waitUntilT(t, "carol's mail searchable", func() bool { return occurrences(t, bin, data, "carol") == n })

	// Verify online.
	r = runBinary(t, bin, 0, "verify", "--data", data)
	if r.code != 0 || !strings.Contains(r.stdout, fmt.Sprintf("%d blobs re-hashed, %d messages in the catalog, %d index documents, 0 unreferenced blobs, 0 problems", 3*n, 3*n, 3*n)) {
		t.Fatalf("online verify: %d %s %s", r.code, r.stdout, r.stderr)
	}

	// Reindex online: searches through the web API answer in full all along.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var searches, bad int
	var mu sync.Mutex
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			var a struct{ Total int }
			code := srv.api(t, admin, "/api/search?q=about&limit=5", &a)
			mu.Lock()
			searches++
			if code != 200 || a.Total != 3*n {
				bad++
				t.Errorf("search during reindex: %d, total %d, want %d", code, a.Total, 3*n)
			}
			mu.Unlock()
		}
	}()
	r = runBinary(t, bin, 0, "reindex", "--data", data)
	close(stop)
	wg.Wait()
	if r.code != 0 || !strings.Contains(r.stdout, fmt.Sprintf("index rebuilt: 3 mailboxes, %d occurrences", 3*n)) {
		t.Fatalf("online reindex: %d %s %s", r.code, r.stdout, r.stderr)
	}
	t.Logf("%d searches during the online reindex, %d wrong", searches, bad)

	// serve killed during an online reindex: it comes back serving the old
	// index, complete, and nothing of the new one is left.
	r = runBinaryKill(t, bin, 0, func() bool {
		if _, err := os.Stat(filepath.Join(data, "index.new")); err == nil {
			srv.kill()
			return true
		}
		return false
	}, "reindex", "--data", data)
	if !r.killed && r.code == 0 {
		t.Fatalf("reindex finished before serve could be killed: %s", r.stdout)
	}
	srv = startServe(t, bin, data)
	if code := srv.api(t, admin, "/api/search?q=about&limit=1", &ans); code != 200 || ans.Total != 3*n {
		t.Fatalf("search after serve was killed mid-reindex: %d, total %d, want %d", code, ans.Total, 3*n)
	}
	if _, err := os.Stat(filepath.Join(data, "index.new")); err == nil {
		t.Error("index.new left after restart")
	}
	if r = runBinary(t, bin, 0, "verify", "--data", data); r.code != 0 {
		t.Fatalf("verify after the killed reindex: %s %s", r.stdout, r.stderr)
	}

	checkExportThroughServe(t, bin, data, srv, admin, n)
	checkStatusSameEverywhere(t, bin, data, srv, admin)
	checkOperatorAudited(t, bin, data)
	srv.stop(t)
}

// checkOperatorAudited: what the operator does from the CLI is in the audit
// trail like the web's users' doings: searches through serve's socket,
// jobs, and changes of users and tokens.
func checkOperatorAudited(t *testing.T, bin, data string) {
	t.Helper()
	if r := runBinary(t, bin, 0, "search", "--data", data, "zebra-operator-probe"); r.code != 0 {
		t.Fatalf("search: %s", r.stderr)
	}
	r := runBinary(t, bin, 0, "user", "audit", "--data", data, "--json", "--last", "100000")
	var entries []service.AuditEntry
	for _, line := range nonEmptyLines(r.stdout) {
		var e service.AuditEntry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatal(err)
		}
		entries = append(entries, e)
	}
	for _, want := range []struct{ action, detail string }{
		{"user-add", "root role admin"},
		{"token-add", " for root expires "},
		{"job-start", "import "},
		{"job-start", "verify "},
		{"job-start", "reindex "},
		{"job-start", "export "},
		{"export", "messages to "},
		{"search", "human: zebra-operator-probe"},
	} {
		found := false
		for _, e := range entries {
			if e.User == service.Operator().Name && e.Action == want.action && strings.Contains(e.Detail, want.detail) {
				found = true
			}
		}
		if !found {
			t.Errorf("the audit trail has no operator %s %q", want.action, want.detail)
		}
	}
}

// checkStatusSameEverywhere: `status --json` (through serve's socket),
// /api/status and the status page show the same figures.
func checkStatusSameEverywhere(t *testing.T, bin, data string, srv *serveProc, token string) {
	t.Helper()
	var cli []service.MailboxStatus
	for _, line := range nonEmptyLines(runBinary(t, bin, 0, "status", "--data", data, "--json").stdout) {
		var m service.MailboxStatus
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		cli = append(cli, m)
	}
	var api service.Status
	if code := srv.api(t, token, "/api/status", &api); code != 200 {
		t.Fatalf("/api/status: %d", code)
	}
	if len(cli) != 3 || !reflect.DeepEqual(cli, api.Mailboxes) {
		t.Errorf("status --json\n%+v\n/api/status\n%+v", cli, api.Mailboxes)
	}
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	resp, err := browser.PostForm("http://"+srv.web+"/login", url.Values{"name": {"root"}, "password": {"correct horse battery"}, "next": {"/status"}})
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	row := regexp.MustCompile(`<tr><td>([^<]+)</td><td>([^<]+)</td><td class="num">[^<]*</td><td class="num">(\d+)</td><td class="num">(\d+)</td><td class="num">(\d+)</td>`)
	var rows []string
	for _, m := range row.FindAllStringSubmatch(string(page), -1) {
		rows = append(rows, strings.Join(m[1:], " "))
	}
	var want []string
	for _, m := range cli {
		want = append(want, strings.Join([]string{m.Account, m.Mailbox, strconv.Itoa(m.Occurrences), strconv.Itoa(m.Indexed), strconv.Itoa(m.Expunged)}, " "))
	}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("status page rows %q, want %q (as status --json)", rows, want)
	}
}

// checkExportThroughServe: `mailvault export` beside a serve runs as a job
// and verifies offline; an export started over the web API (an admin's
// token) goes to the archive's exports directory and downloads as a zip
// that verifies too.
func checkExportThroughServe(t *testing.T, bin, data string, srv *serveProc, token string, n int) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "alpha-production")
	r := runBinary(t, bin, 0, "export", "--data", data, "--out", out, "--account", "alice", "alpha")
	if r.code != 0 || !strings.Contains(r.stderr, "runs in the running serve as job") {
		t.Fatalf("export beside serve: exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	if r := runBinary(t, bin, 0, "export", "verify", out); r.code != 0 || !strings.Contains(r.stdout, " 0 problems") {
		t.Fatalf("export verify: exit %d: %s", r.code, r.stdout)
	}
	m, err := export.ReadManifest(out)
	if err != nil || m.Counts.Messages != n || m.By != service.Operator().Name {
		t.Fatalf("manifest of alice's alpha mail: %+v %v, want %d messages by the operator", m, err, n)
	}
	// Over the web API.
	body := `{"kind":"export","export":{"search":{"query":"bravo"},"format":"mbox"}}`
	req, _ := http.NewRequest("POST", "http://"+srv.web+"/api/jobs", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var j service.JobInfo
	json.NewDecoder(resp.Body).Decode(&j)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || j.ID == "" {
		t.Fatalf("export job over the API: %d %+v", resp.StatusCode, j)
	}
	waitUntilT(t, "the API's export job", func() bool {
		srv.api(t, token, "/api/jobs/"+j.ID, &j)
		return j.State == service.JobDone || j.State == service.JobFailed
	})
	if j.State != service.JobDone {
		t.Fatalf("export job: %+v", j)
	}
	// The zip, downloaded by the admin's browser session.
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	if resp, err := browser.PostForm("http://"+srv.web+"/login", url.Values{"name": {"root"}, "password": {"correct horse battery"}}); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	resp, err = browser.Get("http://" + srv.web + "/exports/" + j.ID + ".zip")
	if err != nil {
		t.Fatal(err)
	}
	zipped, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	zr, err := zip.NewReader(bytes.NewReader(zipped), int64(len(zipped)))
	if resp.StatusCode != 200 || err != nil {
		t.Fatalf("export download: %d, %v", resp.StatusCode, err)
	}
	unzipped := t.TempDir()
	for _, f := range zr.File {
		if strings.Contains(f.Name, "..") || strings.HasPrefix(f.Name, "/") {
			t.Fatalf("zip entry %q", f.Name)
		}
		rc, _ := f.Open()
		b, _ := io.ReadAll(rc)
		rc.Close()
		os.MkdirAll(filepath.Dir(filepath.Join(unzipped, f.Name)), 0o700)
		os.WriteFile(filepath.Join(unzipped, f.Name), b, 0o600)
	}
	if rep, err := export.Verify(unzipped); err != nil || !rep.OK {
		t.Fatalf("the downloaded export does not verify: %+v %v", rep, err)
	}
	if m, err := export.ReadManifest(unzipped); err != nil || m.Counts.Messages != n || m.Format != export.FormatMbox {
		t.Errorf("downloaded manifest: %+v %v", m, err)
	}
}
