package web

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"mailvault/indexer/catalog"
	"mailvault/service"
)

// TestCompletenessThroughTheFrontDoors: the completeness rows of
// /api/status and of the status page are the service's, scoped there: ann,
// who may see account a only, gets a's row and nothing of b's (its account
// name, a mailbox only b has, its missing UIDs, the problem line they make);
// an admin and an auditor get both.
func TestCompletenessThroughTheFrontDoors(t *testing.T) {
	f := newAPIFixture(t)
	ctx := context.Background()
	if _, err := f.archive.EnsureMailbox(ctx, "b", "Bsecretbox", catalog.SourceIMAP, 5); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	for _, g := range []catalog.GapCheck{
		{Account: "a", Mailbox: "INBOX", UIDValidity: 5, At: at, Checkpoint: 2, OnServer: 1, Archived: 1},
		{Account: "b", Mailbox: "Bsecretbox", UIDValidity: 5, At: at, Checkpoint: 40000, OnServer: 9, Archived: 7,
			Missing: 2, MissingUIDs: "31337:31338"},
	} {
		if _, err := f.archive.RecordGapCheck(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		who, token string
		want       []string // accounts of the rows
	}{
		{"ann", f.ann, []string{"a"}},
		{"root", f.admin, []string{"a", "b"}},
		{"aud", f.auditor, []string{"a", "b"}},
	} {
		code, body := f.get(t, tc.token, "/api/status")
		var st service.Status
		if code != http.StatusOK || json.Unmarshal(body, &st) != nil || st.Completeness == nil {
			t.Fatalf("%s: /api/status %d %s", tc.who, code, body)
		}
		var got []string
		for _, m := range st.Completeness.Mailboxes {
			got = append(got, m.Account)
		}
		if strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%s: /api/status completeness of %v, want %v", tc.who, got, tc.want)
		}
		seesB := len(tc.want) == 2
		for _, s := range []string{"Bsecretbox", "31337:31338", `"b"`} {
			if strings.Contains(string(body), s) != seesB {
				t.Errorf("%s: /api/status names %s: %v, want %v", tc.who, s, !seesB, seesB)
			}
		}

		browser, _ := f.login(t, tc.who, "correct horse")
		code, page, _ := getPage(t, browser, f.srv.URL+"/status")
		if code != http.StatusOK || !strings.Contains(page, `id="completeness"`) {
			t.Fatalf("%s: status page %d without the completeness table:\n%s", tc.who, code, page)
		}
		for _, s := range []string{"Bsecretbox", "31337:31338", "<td>b</td>", "2 messages on the server are not in the archive"} {
			if strings.Contains(page, s) != seesB {
				t.Errorf("%s: status page shows %q: %v, want %v", tc.who, s, !seesB, seesB)
			}
		}
	}
}
