package web

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// The flag history on the API and the message page: each sighting in
// order with what it added and removed, only the occurrences the caller
// may see (ann sees account a only), 404 for a message she may not see.
func TestFlagHistoryPageAndAPI(t *testing.T) {
	f := newAPIFixture(t)
	ctx := context.Background()
	for _, flags := range []map[uint32][]string{
		{1: {`\Seen`}, 2: {`\Seen`, `\Answered`}},
		{1: {`\Seen`}, 2: {`\Answered`}},
	} {
		if _, _, err := f.archive.Reconcile(ctx, "b", "INBOX", 5, flags); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := f.archive.Reconcile(ctx, "a", "INBOX", 5, map[uint32][]string{1: {`\Flagged`}}); err != nil {
		t.Fatal(err)
	}

	code, body := f.get(t, f.admin, "/api/messages/"+f.onlyB+"/flags")
	var fa flagsAnswer
	if code != 200 || json.Unmarshal(body, &fa) != nil || len(fa.Occurrences) != 1 {
		t.Fatalf("admin, flags of onlyB: %d %s", code, body)
	}
	got := []string{}
	for _, s := range fa.Occurrences[0].Sightings {
		got = append(got, s.Source+":"+strings.Join(s.Flags, ",")+" +"+strings.Join(s.Added, ",")+" -"+strings.Join(s.Removed, ","))
	}
	want := []string{`harvest:\Seen +\Seen -`, `reconcile:\Seen,\Answered +\Answered -`, `reconcile:\Answered + -\Seen`}
	if strings.Join(got, " | ") != strings.Join(want, " | ") {
		t.Errorf("sightings = %q, want %q", got, want)
	}
	if since := fa.Occurrences[0].Since; len(since) != 1 || since[`\Answered`] != fa.Occurrences[0].Sightings[1].At {
		t.Errorf("since = %v, want \\Answered at the second sighting", since)
	}

	for _, other := range []string{f.onlyB, strings.Repeat("cd", 32)} {
		if code, _ := f.get(t, f.ann, "/api/messages/"+other+"/flags"); code != 404 {
			t.Errorf("flags of %s for ann: %d, want 404", other, code)
		}
	}
	code, body = f.get(t, f.ann, "/api/messages/"+f.shared+"/flags")
	if code != 200 || json.Unmarshal(body, &fa) != nil || len(fa.Occurrences) != 1 || fa.Occurrences[0].Account != "a" ||
		len(fa.Occurrences[0].Sightings) != 2 {
		t.Fatalf("ann, flags of the shared message: %d %s; want account a's occurrence only, two sightings", code, body)
	}

	ann, _ := f.login(t, "ann", "correct horse")
	code, page, _ := getPage(t, ann, f.srv.URL+"/message/"+f.shared)
	if code != 200 {
		t.Fatalf("page: %d", code)
	}
	for _, want := range []string{`<h2>Flag history</h2>`, `id="flag-history-0" data-account="a"`, `<td class="added">\Flagged </td>`,
		`<span class="since">\Flagged since `} {
		if !strings.Contains(page, want) {
			t.Errorf("message page lacks %q:\n%s", want, page)
		}
	}
	if strings.Contains(page, `data-account="b"`) {
		t.Error("ann's message page shows account b's flag history")
	}
	if code, _, _ := getPage(t, ann, f.srv.URL+"/message/"+f.onlyB); code != 404 {
		t.Errorf("ann, page of onlyB: %d, want 404", code)
	}
}
