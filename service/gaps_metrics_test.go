package service

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"mailvault/harvest"
	"mailvault/harvest/memtest"
	"mailvault/indexer"
)

// scrape returns the samples of s's /metrics, by name with labels.
func scrape(t *testing.T, s *Service) map[string]float64 {
	t.Helper()
	srv := httptest.NewServer(s.MetricsHandler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	out := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// TestGapMissingMetric: mailvault_gap_missing_messages is, per account,
// what the last checks of its mailboxes left missing (found and not
// fetched), from the catalog; generated checks, summed by hand.
func TestGapMissingMetric(t *testing.T) {
	ctx := context.Background()
	s, accounts, _, _ := gapScopeArchive(t)
	all, err := s.Completeness(ctx, Operator())
	if err != nil {
		t.Fatal(err)
	}
	got := scrape(t, s)
	some := false
	for _, acct := range accounts {
		want := 0
		for _, g := range all.Mailboxes {
			if g.Account == acct {
				want += g.Missing - g.Fetched
			}
		}
		some = some || want > 0
		k := fmt.Sprintf("mailvault_gap_missing_messages{account=%q}", acct)
		if v, ok := got[k]; !ok || v != float64(want) {
			t.Errorf("%s = %v (present %v), want %d", k, v, ok, want)
		}
	}
	if !some {
		t.Fatal("the generated checks left nothing missing; the test checks nothing")
	}
}

// TestGapCheckCounters: a gap check on demand that finds a message missing
// below the checkpoint (against go-imap's in-process server) is counted on
// /metrics: checks, found and fetched per account, and nothing left missing
// once it is fetched.
func TestGapCheckCounters(t *testing.T) {
	ctx := context.Background()
	addr := memtest.Start(t)
	var raws [][]byte
	for i := range 3 {
		raw := fmt.Appendf(nil, "From: z@example.org\r\nSubject: gap %d\r\n\r\ncounted %d\r\n", i, i)
		memtest.Append(t, addr, "INBOX", raw)
		raws = append(raws, raw)
	}
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	a, users := newArchive(t)
	s := New(a, &Options{Users: users, Accounts: []harvest.Account{{Name: "alice", Host: host, Port: p, TLS: "none",
		Username: memtest.User, Password: memtest.Password, Idle: []string{"INBOX"}, MaxConnections: 1}}})
	rep, err := s.CheckGaps(ctx, Operator(), nil)
	if err != nil || len(rep.Mailboxes) != 1 || rep.Mailboxes[0].Pending != 3 || rep.Mailboxes[0].Missing != 0 {
		t.Fatalf("first check (nothing archived) = %+v, %v; want 3 pending", rep, err)
	}
	// UIDs 1 and 3 archived, so the checkpoint is 4 and UID 2 is a gap.
	uv := rep.Mailboxes[0].UIDValidity
	if _, err := a.Ingest(ctx, []indexer.Item{{Account: "alice", Mailbox: "INBOX", UIDValidity: uv, UID: 1, Raw: raws[0]},
		{Account: "alice", Mailbox: "INBOX", UIDValidity: uv, UID: 3, Raw: raws[2]}}); err != nil {
		t.Fatal(err)
	}
	if rep, err = s.CheckGaps(ctx, Operator(), nil); err != nil {
		t.Fatal(err)
	}
	if m := rep.Mailboxes[0]; m.Missing != 1 || m.MissingUIDs != "2" || m.Fetched != 1 || m.Checkpoint != 4 {
		t.Fatalf("second check = %+v; want UID 2 missing and fetched, checkpoint 4", m)
	}
	got := scrape(t, s)
	for k, want := range map[string]float64{
		`mailvault_gap_checks_total{account="alice"}`:     2,
		`mailvault_gap_found_total{account="alice"}`:      1,
		`mailvault_gap_fetched_total{account="alice"}`:    1,
		`mailvault_gap_missing_messages{account="alice"}`: 0,
	} {
		if v, ok := got[k]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", k, v, ok, want)
		}
	}
}
