package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"mailvault/harvest/memtest"
	"mailvault/service"
)

// TestServeHarvestsIntoTheArchive runs `mailvault serve` against go-imap's
// in-process server: mail already there and mail appended while it runs end
// up archived and searchable, with RFC 5092 URLs; status shows the live state.
func TestServeHarvestsIntoTheArchive(t *testing.T) {
	addr, err := net.ResolveTCPAddr("tcp", memtest.Start(t))
	if err != nil {
		t.Fatal(err)
	}
	put := func(mailbox, subject string) {
		raw := fmt.Sprintf("From: bob@example.org\r\nSubject: %s\r\nDate: Mon, 4 Mar 2024 10:00:00 +0100\r\n\r\nhello %s\r\n", subject, subject)
		memtest.Append(t, addr.String(), mailbox, []byte(raw))
	}
	put("INBOX", "zeppelin")
	put("Archive", "dirigible")

	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "pw"), []byte("secret\n"), 0o600)
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := free.Addr().String()
	free.Close()
	free, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	webAddr := free.Addr().String()
	free.Close()
	cfg := fmt.Sprintf(`data_dir: %s
metrics_listen: `+metricsAddr+`
web_listen: `+webAddr+`
accounts:
  - name: alice
    host: 127.0.0.1
    port: %d
    tls: none
    username: alice
    password_file: %s
    idle: [INBOX]
    poll_interval: 1s
`, filepath.Join(dir, "data"), addr.Port, filepath.Join(dir, "pw"))
	os.WriteFile(filepath.Join(dir, "mailvault.yaml"), []byte(cfg), 0o600)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var serveErr bytes.Buffer
	go func() {
		done <- run(ctx, &env{stdout: &bytes.Buffer{}, stderr: &serveErr}, []string{"serve", "--config", filepath.Join(dir, "mailvault.yaml")})
	}()
	data := filepath.Join(dir, "data")
	archived := func() int {
		var out bytes.Buffer
		if run(context.Background(), &env{stdout: &out, stderr: &bytes.Buffer{}}, []string{"status", "--data", data, "--json"}) != 0 {
			return -1
		}
		n := 0
		for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			var l service.MailboxStatus
			if json.Unmarshal([]byte(line), &l) == nil {
				n += l.Occurrences
			}
		}
		return n
	}
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(15 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; serve said:\n%s", what, serveErr.String())
			}
		}
	}
	waitUntil("the first two messages", func() bool { return archived() == 2 })
	put("INBOX", "blimp") // while IDLE
	waitUntil("the message appended while idle", func() bool { return archived() == 3 })

	var out bytes.Buffer
	waitUntil("live state in status", func() bool {
		out.Reset()
		run(context.Background(), &env{stdout: &out, stderr: &bytes.Buffer{}}, []string{"status", "--data", data, "--json"})
		return strings.Contains(out.String(), `"state":"idle"`) && strings.Contains(out.String(), `"server_messages":2`)
	})
	// Metrics, on the configured TCP address and on the local socket.
	tcp := &http.Client{Timeout: 5 * time.Second}
	unix := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", filepath.Join(data, localSocket))
		}}}
	for name, get := range map[string]func() (*http.Response, error){
		"tcp":  func() (*http.Response, error) { return tcp.Get("http://" + metricsAddr + "/metrics") },
		"unix": func() (*http.Response, error) { return unix.Get("http://mailvault/metrics") },
	} {
		resp, err := get()
		if err != nil {
			t.Fatalf("metrics over %s: %v", name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		checkMetrics(t, name, string(body), map[string]float64{
			`mailvault_harvest_messages_total{account="alice"}`:           3,
			`mailvault_harvest_skipped_total{account="alice"}`:            0,
			`mailvault_account_mailboxes{account="alice"}`:                2,
			`mailvault_account_state{account="alice",state="harvesting"}`: 1,
			`mailvault_store_messages_total`:                              3,
			`mailvault_account_archived_messages{account="alice"}`:        3,
			`mailvault_account_parse_errors{account="alice"}`:             0,
		})
	}
	// search works beside serve: it asks serve over the local socket.
	// Searchable is asynchronous (the index writer commits within ~200 ms):
	// wait until status says every message is indexed.
	waitUntil("every message indexed", func() bool {
		out.Reset()
		run(context.Background(), &env{stdout: &out, stderr: &bytes.Buffer{}}, []string{"status", "--data", data, "--json"})
		indexed := 0
		for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			var l service.MailboxStatus
			if json.Unmarshal([]byte(line), &l) == nil {
				indexed += l.Indexed
			}
		}
		return indexed == 3
	})
	var found, foundErr bytes.Buffer
	if code := run(context.Background(), &env{stdout: &found, stderr: &foundErr}, []string{"search", "--data", data, "--json", "zeppelin"}); code != 0 || !strings.Contains(found.String(), `"subject":"zeppelin"`) {
		t.Fatalf("search while serving: exit %d, %q, stderr %q", code, found.String(), foundErr.String())
	}
	if code := run(context.Background(), &env{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}, []string{"search", "--data", data, "from:"}); code != 2 {
		t.Fatalf("bad query while serving: exit %d, want 2", code)
	}
	checkSearchIMAP(t, data, "while serving")
	checkWebAPI(t, data, webAddr)
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("serve exit %d: %s", code, serveErr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop on cancel")
	}
	out.Reset()
	if code := run(context.Background(), &env{stdout: &out, stderr: &bytes.Buffer{}}, []string{"search", "--data", data, "--json", "blimp"}); code != 0 {
		t.Fatalf("search exit %d", code)
	}
	var hit searchLine
	if err := json.Unmarshal(out.Bytes(), &hit); err != nil {
		t.Fatalf("search output %q: %v", out.String(), err)
	}
	want := fmt.Sprintf("imap://alice@127.0.0.1:%d/INBOX;UIDVALIDITY=%d/;UID=2", addr.Port, hit.UIDValidity)
	if hit.URL != want || hit.Mailbox != "INBOX" {
		t.Fatalf("hit = %+v, want url %s", hit, want)
	}
	if code := run(context.Background(), &env{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}, []string{"verify", "--data", data}); code != 0 {
		t.Fatal("verify after serve failed")
	}
	checkSearchIMAP(t, data, "after serve")
}

// checkSearchIMAP runs `search --imap` on the archive of
// TestServeHarvestsIntoTheArchive (INBOX: zeppelin UID 1, blimp UID 2;
// Archive: dirigible UID 1), through a running serve or not.
func checkSearchIMAP(t *testing.T, data, when string) {
	t.Helper()
	mv := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(context.Background(), &env{stdout: &out, stderr: &errb}, append([]string{"search", "--data", data, "--imap"}, args...))
		return code, out.String(), errb.String()
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--account", "alice", "--mailbox", "INBOX", `SUBJECT "EPPEL"`}, "* SEARCH 1\n"},
		{[]string{"--account", "alice", "--mailbox", "inbox", "OR BODY blimp UID 1"}, "* SEARCH 1 2\n"},
		{[]string{"--account", "alice", "--mailbox", "INBOX", "NOT ALL"}, "* SEARCH\n"},
		{[]string{"--mailbox", "Archive", "FROM bob@"}, "* SEARCH 1\n"},
	} {
		if code, out, errs := mv(tt.args...); code != 0 || out != tt.want {
			t.Errorf("%s: search --imap %q: exit %d, %q (stderr %q), want %q", when, tt.args, code, out, errs, tt.want)
		}
	}
	code, out, _ := mv("--json", `TEXT "hello"`)
	lines := nonEmptyLines(out)
	if code != 0 || len(lines) != 3 {
		t.Fatalf("%s: search --imap --json over both mailboxes: exit %d, %d lines:\n%s", when, code, len(lines), out)
	}
	var hit searchLine
	if err := json.Unmarshal([]byte(lines[0]), &hit); err != nil || hit.URL == "" || hit.Subject == "" || hit.UID == 0 {
		t.Errorf("%s: --json line %q: %+v, %v", when, lines[0], hit, err)
	}
	if code, _, errs := mv("TEXT hello"); code != 2 || !strings.Contains(errs, "2 mailboxes in scope") {
		t.Errorf("%s: * SEARCH over two mailboxes: exit %d, %q", when, code, errs)
	}
	if code, _, errs := mv("--mailbox", "INBOX", "OR FROM x"); code != 2 || !strings.Contains(errs, "OR needs two search keys (at offset 9)") {
		t.Errorf("%s: bad criteria: exit %d, %q", when, code, errs)
	}
	if code, _, errs := mv("--mailbox", "INBOX", "--explain", "SEEN BODY hello"); code != 0 || !strings.Contains(errs, "1 verified on decoded content") {
		t.Errorf("%s: --explain: exit %d, %q", when, code, errs)
	}
}

// metricLine is one sample of the Prometheus text format, as written here:
// a name, optional labels, a value.
var metricLine = regexp.MustCompile(`^([a-z_:][a-z0-9_:]*(?:\{[a-z_]+="(?:[^"\\]|\\.)*"(?:,[a-z_]+="(?:[^"\\]|\\.)*")*\})?) (-?[0-9.e+-]+|NaN|[+-]Inf)$`)

// checkMetrics parses text as the Prometheus text format (every line a
// comment or a well-formed sample, every metric with HELP and TYPE) and
// checks the samples in want.
func checkMetrics(t *testing.T, where, text string, want map[string]float64) {
	t.Helper()
	got := map[string]float64{}
	typed := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		if f := strings.Fields(line); len(f) >= 4 && f[0] == "#" && f[1] == "TYPE" {
			typed[f[2]] = true
			continue
		}
		if strings.HasPrefix(line, "# HELP ") {
			continue
		}
		m := metricLine.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("metrics over %s: malformed line %q", where, line)
			continue
		}
		name, _, _ := strings.Cut(m[1], "{")
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_sum"), "_count"), "_bucket")
		if !typed[name] && !typed[base] {
			t.Errorf("metrics over %s: %s has no TYPE before it", where, name)
		}
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			t.Errorf("metrics over %s: %q: %v", where, line, err)
		}
		got[m[1]] = v
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v && v != -1 {
			t.Errorf("metrics over %s: %s = %v (present %v), want %v", where, k, g, ok, v)
		}
	}
}

// checkWebAPI makes a user with `mailvault user`, then searches through the
// web API of the running serve with the user's token.
func checkWebAPI(t *testing.T, data, addr string) {
	t.Helper()
	stdin = strings.NewReader("a long password\n")
	defer func() { stdin = os.Stdin }()
	var out, errb bytes.Buffer
	if code := run(context.Background(), &env{stdout: &out, stderr: &errb}, []string{"user", "add", "--data", data, "--role", "auditor", "carol"}); code != 0 {
		t.Fatalf("user add: exit %d: %s", code, errb.String())
	}
	out.Reset()
	if code := run(context.Background(), &env{stdout: &out, stderr: &errb}, []string{"user", "token", "--data", data, "carol"}); code != 0 {
		t.Fatalf("user token: exit %d: %s", code, errb.String())
	}
	token := strings.TrimSpace(out.String())
	req, _ := http.NewRequest("GET", "http://"+addr+"/api/search?q=zeppelin", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("web API: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"subject":"zeppelin"`) || !strings.Contains(string(body), `"url":"imap://alice@`) {
		t.Errorf("web API search: %d %s", resp.StatusCode, body)
	}
	out.Reset()
	run(context.Background(), &env{stdout: &out, stderr: &errb}, []string{"user", "audit", "--data", data, "--json"})
	if !strings.Contains(out.String(), `"user":"carol","action":"search","detail":"in all accounts: human: zeppelin"`) {
		t.Errorf("audit trail: %s", out.String())
	}
}

// TestServeJobsWhileHarvesting runs verify and reindex through a running
// serve while mail keeps arriving over IMAP: both succeed without stopping
// the harvest, and every message that arrived meanwhile ends up archived
// and searchable.
func TestServeJobsWhileHarvesting(t *testing.T) {
	addr := memtest.Start(t)
	put := func(mailbox, subject string) {
		raw := fmt.Sprintf("From: bob@example.org\r\nSubject: %s\r\nDate: Mon, 4 Mar 2024 10:00:00 +0100\r\n\r\nhello %s\r\n", subject, subject)
		memtest.Append(t, addr, mailbox, []byte(raw))
	}
	for i := range 50 {
		put("INBOX", fmt.Sprintf("before-%d", i))
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	os.WriteFile(filepath.Join(dir, "pw"), []byte("secret\n"), 0o600)
	_, port, _ := net.SplitHostPort(addr)
	cfg := fmt.Sprintf("data_dir: %s\nweb_listen: \"off\"\naccounts:\n  - {name: alice, host: 127.0.0.1, port: %s, tls: none, username: alice, password_file: %s, idle: [INBOX], poll_interval: 1s}\n",
		data, port, filepath.Join(dir, "pw"))
	os.WriteFile(filepath.Join(dir, "mailvault.yaml"), []byte(cfg), 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var serveErr syncBuffer
	go func() {
		done <- run(ctx, &env{stdout: &bytes.Buffer{}, stderr: &serveErr}, []string{"serve", "--config", filepath.Join(dir, "mailvault.yaml")})
	}()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("serve exit %d: %s", code, serveErr.String())
		}
	}()
	archived := func() int {
		var out bytes.Buffer
		if run(context.Background(), &env{stdout: &out, stderr: &bytes.Buffer{}}, []string{"status", "--data", data, "--json"}) != 0 {
			return -1
		}
		n := 0
		for _, line := range nonEmptyLines(out.String()) {
			var l service.MailboxStatus
			if json.Unmarshal([]byte(line), &l) == nil {
				n += l.Occurrences
			}
		}
		return n
	}
	for deadline := time.Now().Add(20 * time.Second); archived() != 50; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the first 50 messages were not archived: %s", serveErr.String())
		}
	}
	before := archived()
	stop := make(chan struct{})
	delivered := make(chan int)
	go func() {
		n := 0
		defer func() { delivered <- n }()
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			put("INBOX", fmt.Sprintf("during-jobs-%d", n))
			n++
		}
	}()
	for _, job := range []string{"verify", "reindex", "verify"} {
		var out, errb bytes.Buffer
		code := run(context.Background(), &env{stdout: &out, stderr: &errb}, []string{job, "--data", data})
		if code != 0 || !strings.Contains(errb.String(), "runs in the running serve as job") {
			t.Fatalf("%s while harvesting: exit %d\n%s\n%s", job, code, out.String(), errb.String())
		}
		if job == "verify" && !strings.Contains(out.String(), " 0 problems") {
			t.Fatalf("online verify found problems: %s", out.String())
		}
	}
	close(stop)
	n := <-delivered
	if n == 0 {
		t.Fatal("no mail arrived while the jobs ran")
	}
	deadline := time.Now().Add(20 * time.Second)
	for archived() != before+n {
		if time.Now().After(deadline) {
			t.Fatalf("after the jobs: %d archived, want %d", archived(), before+n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var out bytes.Buffer
		run(context.Background(), &env{stdout: &out, stderr: &bytes.Buffer{}}, []string{"search", "--data", data, "--json", "--limit", "100000", "subject:during"})
		if got := len(nonEmptyLines(out.String())); got == n {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("searchable after the jobs: %d of the %d messages that arrived during them", got, n)
		}
	}
	t.Logf("%d messages arrived over IMAP during verify, reindex, verify", n)
}
