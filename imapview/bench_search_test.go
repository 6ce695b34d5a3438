//go:build bench

package imapview

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"mailvault/harvest/dovecottest"
	"mailvault/indexer/mailfile/corpustest"
	"mailvault/service"
)

// TestBenchSearch: UID SEARCH over the view against Dovecot's own UID
// SEARCH, on the same 6,046 messages in one folder, over IMAP to both
// (plain, loopback, one logged-in connection each). Per query: "first" is
// the first ask (the view's decoded-message cache dropped, Dovecot's
// caches as they are after indexing), "later" the median of 5 more asks,
// alternating server by server, "settled" the median of 5 more a second
// after those (what the first ask started in the background is done by
// then). Both answers must have the same number of
// hits (the UIDs differ: Dovecot numbers its own copies).
//
//	MAILVAULT_CORPUS=~/.cache/mailvault/corpus go test -tags bench -run 'TestBenchSearch$' -v ./imapview/
func TestBenchSearch(t *testing.T) {
	ctx := context.Background()
	corpus := corpustest.Scan(t, corpustest.Maildir(t))
	var all []string
	for _, f := range corpus.Folders {
		all = append(all, f.Files...)
	}
	slices.Sort(all)
	a, u := openArchive(t, t.TempDir())
	if err := u.Add(ctx, service.User{Name: "big", Role: service.RoleUser, Accounts: []string{"big"}}, benchPass); err != nil {
		t.Fatal(err)
	}
	loadFiles(t, a, "big", "all", 2000, all)
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	view := startView(t, service.New(a, &service.Options{Users: u}))
	dc := dovecottest.Start(t, &dovecottest.Options{Users: []string{"big"}, Password: benchPass})
	if n := dc.LinkFiles(t, "big", "all", all); n != len(all) {
		t.Fatalf("dovecot: loaded %d of %d", n, len(all))
	}
	dc.Index(t, "big", "all")

	open := func(addr, folder string) *imapclient.Client {
		c, err := imapclient.DialInsecure(addr, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if err := c.Login("big", benchPass).Wait(); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Select(folder, nil).Wait(); err != nil {
			t.Fatal(err)
		}
		return c
	}
	clients := map[string]*imapclient.Client{"view": open(view, "big/all"), "dovecot": open(dc.Addr, "all")}
	// Each query as IMAP SEARCH text (the table's label) and as imapclient's
	// criteria, which is what goes on the wire.
	hdr := func(k, v string) imap.SearchCriteria {
		return imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: k, Value: v}}}
	}
	crits := map[string]*imap.SearchCriteria{
		`BODY "invoice"`:                       {Body: []string{"invoice"}},
		`TEXT "deadline"`:                      {Text: []string{"deadline"}},
		`SUBJECT "meeting"`:                    ptr(hdr("Subject", "meeting")),
		`FROM "jm@"`:                           ptr(hdr("From", "jm@")),
		`OR SUBJECT "free" BODY "unsubscribe"`: {Or: [][2]imap.SearchCriteria{{hdr("Subject", "free"), {Body: []string{"unsubscribe"}}}}},
		`NOT BODY "the"`:                       {Not: []imap.SearchCriteria{{Body: []string{"the"}}}},
		`SINCE 1-Jan-2003 LARGER 10000`:        {Since: time.Date(2003, 1, 1, 0, 0, 0, 0, time.UTC), Larger: 10000},
		`HEADER "X-Mailer" "Outlook"`:          ptr(hdr("X-Mailer", "Outlook")),
	}
	queries := []string{
		`BODY "invoice"`, `TEXT "deadline"`, `SUBJECT "meeting"`, `FROM "jm@"`,
		`OR SUBJECT "free" BODY "unsubscribe"`, `NOT BODY "the"`, `SINCE 1-Jan-2003 LARGER 10000`, `HEADER "X-Mailer" "Outlook"`,
	}
	type result struct {
		hits                   int
		first, median, settled time.Duration
	}
	res := map[string]map[string]*result{"view": {}, "dovecot": {}}
	for _, q := range queries {
		crit := crits[q]
		a.DropViewCache()
		var times = map[string][]time.Duration{}
		for round := 0; round < 6; round++ {
			for _, server := range []string{"view", "dovecot"} {
				begin := time.Now()
				data, err := clients[server].UIDSearch(crit, nil).Wait()
				if err != nil {
					t.Fatalf("%s: %s: %v", server, q, err)
				}
				times[server] = append(times[server], time.Since(begin))
				if round == 0 {
					res[server][q] = &result{hits: len(data.AllUIDs())}
				}
			}
		}
		// Settled: 5 more rounds a second later, once what the first
		// search started in the background (the view's header columns,
		// indexer/imapcolumns.go) has finished.
		time.Sleep(time.Second)
		for round := 0; round < 5; round++ {
			for _, server := range []string{"view", "dovecot"} {
				begin := time.Now()
				if _, err := clients[server].UIDSearch(crit, nil).Wait(); err != nil {
					t.Fatalf("%s: %s: %v", server, q, err)
				}
				times[server] = append(times[server], time.Since(begin))
			}
		}
		median := func(ts []time.Duration) time.Duration {
			ts = slices.Clone(ts)
			sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] })
			return ts[len(ts)/2]
		}
		for server, ts := range times {
			r := res[server][q]
			r.first = ts[0]
			r.median = median(ts[1:6])
			r.settled = median(ts[6:])
		}
		if res["view"][q].hits != res["dovecot"][q].hits {
			t.Errorf("%s: the view has %d hits, Dovecot %d", q, res["view"][q].hits, res["dovecot"][q].hits)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nUID SEARCH over IMAP, one folder of %d messages; load %s\n\n", len(all), loadAvg())
	b.WriteString("| query | hits (view / Dovecot) | Dovecot first ms | view first ms | Dovecot later ms | view later ms | later: Dovecot / view | Dovecot settled ms | view settled ms | settled: Dovecot / view |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d.Microseconds())/1000) }
	for _, q := range queries {
		v, d := res["view"][q], res["dovecot"][q]
		fmt.Fprintf(&b, "| `%s` | %d / %d | %s | %s | %s | %s | %.1f× | %s | %s | %.1f× |\n", q, v.hits, d.hits, ms(d.first), ms(v.first), ms(d.median), ms(v.median),
			float64(d.median)/float64(v.median), ms(d.settled), ms(v.settled), float64(d.settled)/float64(v.settled))
	}
	t.Log(b.String())
}

func ptr[T any](v T) *T { return &v }
