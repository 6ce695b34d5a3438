package web

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"mailvault/service"
)

// retentionFixture is the API fixture with retention on (WORM off, four
// eyes as asked, one policy that has expired every message: the fixture's
// mail is from 2024, kept 1 day), a second admin (root2) and a legal user.
type retentionFixture struct {
	*apiFixture
	admin2, legal string // tokens
}

func newRetentionFixture(t *testing.T, fourEyes bool) *retentionFixture {
	t.Helper()
	f := &retentionFixture{apiFixture: newAPIFixture(t)}
	f.svc.SetRetention(&service.RetentionConfig{FourEyes: fourEyes, Policies: []service.RetentionPolicy{
		{Name: "short", Keep: service.Period{Days: 1}, From: service.AgeSent}}})
	ctx := context.Background()
	for name, role := range map[string]service.Role{"root2": service.RoleAdmin, "lena": service.RoleLegal} {
		if err := f.users.Add(ctx, service.User{Name: name, Role: role}, "correct horse"); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	if f.admin2, _, err = f.users.NewToken(ctx, "root2", 0); err != nil {
		t.Fatal(err)
	}
	if f.legal, _, err = f.users.NewToken(ctx, "lena", 0); err != nil {
		t.Fatal(err)
	}
	return f
}

// post sends body as JSON with token and returns the status and body.
func (f *retentionFixture) post(t *testing.T, token, path string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader = http.NoBody
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest("POST", f.srv.URL+path, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// waitJob polls the job until it ends and returns it.
func (f *retentionFixture) waitJob(t *testing.T, token, id string) service.JobInfo {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		code, body := f.get(t, token, "/api/jobs/"+id)
		var j service.JobInfo
		if code != 200 || json.Unmarshal(body, &j) != nil {
			t.Fatalf("GET /api/jobs/%s = %d %s", id, code, body)
		}
		if j.State != service.JobQueued && j.State != service.JobRunning {
			return j
		}
	}
	t.Fatalf("job %s did not end", id)
	return service.JobInfo{}
}

// The role rules of every retention endpoint, as the service decides them:
// a user nothing, auditor and legal plan and view, admin everything.
func TestRetentionAPIRoles(t *testing.T) {
	f := newRetentionFixture(t, false)
	var plan service.RetentionPlan
	code, body := f.post(t, f.admin, "/api/retention/plans", nil)
	if json.Unmarshal(body, &plan); code != 201 || plan.ID == "" || plan.ToDelete != 2 {
		t.Fatalf("POST /api/retention/plans as admin = %d %s, want 201 and both messages to delete", code, body)
	}
	for _, tt := range []struct {
		who, tok, method, path string
		want                   int
	}{
		{"user", f.ann, "GET", "/api/retention", 403},
		{"user", f.ann, "GET", "/api/retention/plans", 403},
		{"user", f.ann, "POST", "/api/retention/plans", 403},
		{"user", f.ann, "GET", "/api/retention/plans/" + plan.ID, 403},
		{"user", f.ann, "POST", "/api/retention/plans/" + plan.ID + "/approve", 403},
		{"user", f.ann, "POST", "/api/retention/plans/" + plan.ID + "/apply", 403},
		{"user", f.ann, "POST", "/api/erase", 403},
		{"auditor", f.auditor, "GET", "/api/retention", 200},
		{"auditor", f.auditor, "GET", "/api/retention/plans", 200},
		{"auditor", f.auditor, "POST", "/api/retention/plans", 201},
		{"auditor", f.auditor, "GET", "/api/retention/plans/" + plan.ID, 200},
		{"auditor", f.auditor, "POST", "/api/retention/plans/" + plan.ID + "/approve", 403},
		{"auditor", f.auditor, "POST", "/api/retention/plans/" + plan.ID + "/apply", 403},
		{"auditor", f.auditor, "POST", "/api/erase", 403},
		{"legal", f.legal, "GET", "/api/retention/plans", 200},
		{"legal", f.legal, "POST", "/api/retention/plans", 201},
		{"legal", f.legal, "POST", "/api/retention/plans/" + plan.ID + "/apply", 403},
		{"legal", f.legal, "POST", "/api/erase", 403},
		{"admin", f.admin, "GET", "/api/retention/plans/000000000000", 404},
		{"admin", f.admin, "GET", "/api/retention/plans/NOT-AN-ID", 422},
		{"admin", f.admin, "POST", "/api/retention/plans/000000000000/apply", 404},
	} {
		var code int
		var body []byte
		if tt.method == "GET" {
			code, body = f.get(t, tt.tok, tt.path)
		} else {
			code, body = f.post(t, tt.tok, tt.path, map[string]string{"sha256": f.shared, "reason": "x"})
		}
		if code != tt.want {
			t.Errorf("%s %s as %s = %d %s, want %d", tt.method, tt.path, tt.who, code, body, tt.want)
		}
	}
	// Nothing was deleted by any refused request.
	if code, _ := f.get(t, f.admin, "/api/messages/"+f.shared+"/raw"); code != 200 {
		t.Errorf("message after refused requests = %d, want 200", code)
	}
	// The listing: newest first, counts, no items.
	code, body = f.get(t, f.auditor, "/api/retention/plans")
	var list plansAnswer
	if json.Unmarshal(body, &list); code != 200 || len(list.Plans) != 3 || list.Plans[2].ID != plan.ID ||
		list.Plans[0].ToDelete != 2 || list.Plans[0].Delete != nil {
		t.Errorf("GET /api/retention/plans = %d %s, want 3 plans, the admin's last, counts without items", code, body)
	}
	// A user's refusals are in the trail.
	entries, err := f.svc.AuditTrail(context.Background(), service.Operator(), service.AuditFilter{User: "ann", Action: service.ActionDenied})
	if err != nil || len(entries) < 7 {
		t.Errorf("ann's denied rows = %d %v, want one per refused request", len(entries), err)
	}
}

// Four eyes through the web: the planner cannot approve; apply refuses an
// unapproved plan; a second admin approves; the apply job deletes what no
// hold keeps; erase refuses under a hold and in WORM mode.
func TestRetentionFourEyesAndErase(t *testing.T) {
	f := newRetentionFixture(t, true)
	if code, body := f.post(t, f.legal, "/api/holds", service.HoldRequest{Name: "keep-a", Custodians: []string{"a"}}); code != 201 {
		t.Fatalf("hold: %d %s", code, body)
	}
	var plan service.RetentionPlan
	code, body := f.post(t, f.admin, "/api/retention/plans", nil)
	if json.Unmarshal(body, &plan); code != 201 || plan.ToDelete != 1 || plan.HeldTotal != 1 || len(plan.Holds) != 1 || plan.Holds[0].Hold != "keep-a" {
		t.Fatalf("plan = %d %s, want 1 to delete and 1 kept by keep-a", code, body)
	}
	if code, body := f.post(t, f.admin, "/api/retention/apply", nil); code != 422 || !strings.Contains(string(body), "four_eyes") {
		t.Errorf("apply without a plan id under four eyes = %d %s, want 422", code, body)
	}
	if code, body := f.post(t, f.admin, "/api/retention/plans/"+plan.ID+"/apply", nil); code != 403 || !strings.Contains(string(body), "not approved") {
		t.Errorf("apply of an unapproved plan = %d %s, want 403", code, body)
	}
	if code, body := f.post(t, f.admin, "/api/retention/plans/"+plan.ID+"/approve", nil); code != 403 || !strings.Contains(string(body), "second, different person") {
		t.Errorf("approval by the planner = %d %s, want 403", code, body)
	}
	if code, body := f.post(t, f.admin2, "/api/retention/plans/"+plan.ID+"/apply", nil); code != 403 {
		t.Errorf("apply by another admin before approval = %d %s, want 403", code, body)
	}
	code, body = f.post(t, f.admin2, "/api/retention/plans/"+plan.ID+"/approve", nil)
	if json.Unmarshal(body, &plan); code != 200 || plan.ApprovedBy != "root2" {
		t.Fatalf("approval by root2 = %d %s", code, body)
	}
	var j service.JobInfo
	code, body = f.post(t, f.admin, "/api/retention/plans/"+plan.ID+"/apply", nil)
	if json.Unmarshal(body, &j); code != 202 || j.ID == "" || j.Kind != service.JobRetention {
		t.Fatalf("apply of the approved plan = %d %s, want 202 and a retention job", code, body)
	}
	j = f.waitJob(t, f.admin, j.ID)
	var done service.RetentionPlan
	if json.Unmarshal(j.Result, &done); j.State != service.JobDone || done.State != service.PlanApplied || done.Deleted != 1 || j.Done != 1 || j.Total != 1 {
		t.Fatalf("apply job = %+v, result %+v", j, done)
	}
	if code, body := f.get(t, f.admin, "/api/messages/"+f.onlyB+"/raw"); code != 404 || !strings.Contains(string(body), "retention:short") {
		t.Errorf("deleted message = %d %s, want 404 naming the rule", code, body)
	}
	if code, _ := f.get(t, f.admin, "/api/messages/"+f.shared+"/raw"); code != 200 {
		t.Errorf("held message = %d, want 200", code)
	}

	// Erase: under the hold refused (and audited), a bad id refused, then
	// in WORM mode refused whatever the message.
	if code, body := f.post(t, f.admin, "/api/erase", eraseRequest{SHA256: f.shared, Reason: "GDPR-1"}); code != 403 || !strings.Contains(string(body), "legal hold keep-a") {
		t.Errorf("erase under a hold = %d %s, want 403 naming the hold", code, body)
	}
	if code, _ := f.post(t, f.admin, "/api/erase", eraseRequest{SHA256: f.shared}); code != 422 {
		t.Errorf("erase without a reason = %d, want 422", code)
	}
	if code, _ := f.post(t, f.admin, "/api/erase", eraseRequest{SHA256: strings.Repeat("0", 64), Reason: "x"}); code != 404 {
		t.Errorf("erase of no such message = %d, want 404", code)
	}
	if code, body := f.post(t, f.admin, "/api/erase", "not an object"); code != 400 {
		t.Errorf("erase with a bad body = %d %s, want 400", code, body)
	}
	if entries, err := f.svc.AuditTrail(context.Background(), service.Operator(), service.AuditFilter{Action: "erase-refused"}); err != nil || len(entries) != 1 {
		t.Errorf("erase-refused rows = %d %v, want 1", len(entries), err)
	}
	f.svc.SetRetention(&service.RetentionConfig{WORM: true})
	if code, body := f.post(t, f.legal, "/api/holds/keep-a/release", map[string]string{"reason": "settled"}); code != 200 {
		t.Fatalf("release: %d %s", code, body)
	}
	if code, body := f.post(t, f.admin, "/api/erase", eraseRequest{SHA256: f.shared, Reason: "GDPR-1"}); code != 403 || !strings.Contains(string(body), "WORM") {
		t.Errorf("erase in WORM mode = %d %s, want 403 naming WORM", code, body)
	}
	if code, body := f.post(t, f.admin, "/api/retention/plans", nil); code != 201 || !strings.Contains(string(body), `"worm":true`) {
		t.Errorf("plan in WORM mode = %d %s, want 201 (a plan still shows what would go)", code, body)
	}
	if code, body := f.post(t, f.admin, "/api/retention/apply", nil); code != 403 || !strings.Contains(string(body), "WORM") {
		t.Errorf("apply in WORM mode = %d %s, want 403", code, body)
	}
	if code, _ := f.get(t, f.admin, "/api/messages/"+f.shared+"/raw"); code != 200 {
		t.Errorf("message after WORM refusals = %d, want 200", code)
	}
}

// The /retention page: what is in force, plans with counts, approve for the
// other admin only, apply only with the plan id typed, cross-site posts
// refused, erase; no link and a 403 for a user.
func TestRetentionPage(t *testing.T) {
	f := newRetentionFixture(t, true)
	rc, _ := f.login(t, "root", "correct horse")
	form := func(c *http.Client, path string, v url.Values, header map[string]string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", f.srv.URL+path, strings.NewReader(v.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, h := range header {
			req.Header.Set(k, h)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, page := form(rc, "/retention/plans", nil, nil)
	if code != 200 || !strings.Contains(page, "to delete, 0 kept by holds") {
		t.Fatalf("make a plan from the page = %d:\n%s", code, page)
	}
	var list plansAnswer
	_, body := f.get(t, f.admin, "/api/retention/plans")
	if json.Unmarshal(body, &list); len(list.Plans) != 1 {
		t.Fatalf("plans = %s", body)
	}
	id := list.Plans[0].ID
	for _, want := range []string{`id="policy-short"`, "Four eyes: a plan is applied only after", "WORM mode is off", `id="plan-` + id + `"`,
		"<strong>2 to delete</strong>", "You made this plan: another admin approves it.", `href="/retention"`} {
		if !strings.Contains(page, want) {
			t.Errorf("/retention as the planner lacks %q", want)
		}
	}
	if strings.Contains(page, "/retention/plans/"+id+"/approve") || strings.Contains(page, "/retention/plans/"+id+"/apply") {
		t.Errorf("/retention offers the planner approve or apply of an unapproved plan")
	}
	// The planner's approval, posted anyway, is refused by the service.
	if code, _ := form(rc, "/retention/plans/"+id+"/approve", nil, nil); code != 403 {
		t.Errorf("approval by the planner from the page = %d, want 403", code)
	}
	r2, _ := f.login(t, "root2", "correct horse")
	_, page, _ = getPage(t, r2, f.srv.URL+"/retention")
	if !strings.Contains(page, `action="/retention/plans/`+id+`/approve"`) {
		t.Errorf("/retention as root2 has no approve form for %s", id)
	}
	if code, _ := form(r2, "/retention/plans/"+id+"/approve", nil, map[string]string{"Sec-Fetch-Site": "cross-site"}); code != 403 {
		t.Errorf("cross-site approve = %d, want 403", code)
	}
	code, page = form(r2, "/retention/plans/"+id+"/approve", nil, nil)
	if code != 200 || !strings.Contains(page, "approved by root2") || !strings.Contains(page, `action="/retention/plans/`+id+`/apply"`) {
		t.Fatalf("approve from the page = %d:\n%s", code, page)
	}
	// Apply: a wrong or missing confirmation deletes nothing.
	for _, confirm := range []string{"", "yes", id[:11]} {
		code, page := form(rc, "/retention/plans/"+id+"/apply", url.Values{"confirm": {confirm}}, nil)
		if code != 422 || !strings.Contains(page, "type the plan") {
			t.Errorf("apply with confirmation %q = %d, want 422 asking for the id", confirm, code)
		}
	}
	if code, _ := form(rc, "/retention/plans/"+id+"/apply", url.Values{"confirm": {id}}, map[string]string{"Sec-Fetch-Site": "cross-site"}); code != 403 {
		t.Errorf("cross-site apply = %d, want 403", code)
	}
	if code, _ := f.get(t, f.admin, "/api/messages/"+f.onlyB+"/raw"); code != 200 {
		t.Fatalf("a refused apply deleted: message = %d", code)
	}
	code, page = form(rc, "/retention/plans/"+id+"/apply", url.Values{"confirm": {id}}, nil)
	if code != 200 || !strings.Contains(page, "is being applied as job") || !strings.Contains(page, `id="job-link"`) {
		t.Fatalf("apply from the page = %d:\n%s", code, page)
	}
	jobs := f.svc.Jobs(service.Operator())
	f.waitJob(t, f.admin, jobs[len(jobs)-1].ID)
	_, page, _ = getPage(t, rc, f.srv.URL+"/retention")
	if !strings.Contains(page, "2 deleted") {
		t.Errorf("/retention after apply does not say what was deleted:\n%s", page)
	}
	// Erase from the page: the message is gone already (404 on the page).
	if code, _ := form(rc, "/retention/erase", url.Values{"sha256": {f.shared}, "reason": {"GDPR-7"}}, nil); code != 200 {
		t.Errorf("erase of a disposed message = %d, want 200 (its tombstone)", code)
	}

	// Auditor: the page, without forms that delete.
	if err := f.users.Add(context.Background(), service.User{Name: "ursula", Role: service.RoleUser, Accounts: []string{"a"}}, "correct horse"); err != nil {
		t.Fatal(err)
	}
	ac, _ := f.login(t, "aud", "correct horse")
	if code, page, _ := getPage(t, ac, f.srv.URL+"/retention"); code != 200 || strings.Contains(page, `id="erase"`) || strings.Contains(page, "/apply") {
		t.Errorf("/retention as auditor = %d, want the page without erase or apply", code)
	}
	uc, _ := f.login(t, "ursula", "correct horse")
	if code, page, _ := getPage(t, uc, f.srv.URL+"/status"); code != 200 || strings.Contains(page, `href="/retention"`) {
		t.Errorf("/status as a user = %d, want no link to retention", code)
	}
	if code, page, _ := getPage(t, uc, f.srv.URL+"/retention"); code != 403 || strings.Contains(page, id) {
		t.Errorf("/retention as a user = %d, want 403 naming no plan", code)
	}
	if code, _ := form(uc, "/retention/erase", url.Values{"sha256": {f.shared}, "reason": {"x"}}, nil); code != 403 {
		t.Errorf("erase from the page as a user = %d, want 403", code)
	}
}
