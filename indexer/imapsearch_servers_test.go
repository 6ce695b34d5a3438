//go:build linux

package indexer_test

// The generated IMAP SEARCH differential with Cyrus and Courier as the
// oracle (issue 17). mailvault answers like Dovecot without FTS (the
// reference, imapsearch_gen_test.go); these servers answer differently on
// purpose or by accident, and this test counts how often and why: for each
// query whose answers differ, the first differing UID is reduced to the
// leaf keys that differ alone, and the difference is filed under the
// leaf's key (BODY, HEADER, SENTBEFORE, ...) with one example each. The
// classes and counts are in docs/servers.md. It fails only when a query
// makes mailvault fail where the server answers, or when
// agreement drops below the figure recorded there (so a regression in
// mailvault's translation shows up here as well as against Dovecot).
//
// MAILVAULT_IMAPGEN_N sets the number of queries per server (default 300).

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"mailvault/harvest"
	"mailvault/harvest/chroottest"
	"mailvault/harvest/harvesttest"
	"mailvault/indexer"
	"mailvault/indexer/mailfile/corpustest"
	"mailvault/service"
)

// minAgreement is the share of generated queries each server must answer
// exactly as mailvault does (seed 17, spam-1, 300 queries): measured 0.86
// and 0.58 (docs/servers.md), less a margin for other seeds and N.
var minAgreement = map[string]float64{"cyrus": 0.80, "courier": 0.50}

func TestIMAPSearchGeneratedServers(t *testing.T) {
	n := 300
	if s := os.Getenv("MAILVAULT_IMAPGEN_N"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v <= 0 {
			t.Fatalf("MAILVAULT_IMAPGEN_N=%q: want a positive count", s)
		}
		n = v
	}
	for _, kind := range []string{"cyrus", "courier"} {
		t.Run(kind, func(t *testing.T) {
			var srv *chroottest.Server
			if kind == "cyrus" {
				srv = chroottest.StartCyrus(t, nil)
			} else {
				srv = chroottest.StartCourier(t, nil)
			}
			c := serverConformanceSetup(t, srv, "spam-1")
			g := genLoad(t, c)
			g.rng = rand.New(rand.NewPCG(17, 13))
			same := 0
			type class struct {
				n       int
				example string
			}
			classes := map[string]*class{}
			for i := 0; i < n; i++ {
				keys := g.query()
				q := genCriteria(keys)
				sv, mv := c.both(t, q)
				if (sv.err != nil) != (mv.err != nil) {
					name := "NO/BAD from the server only"
					if mv.err != nil {
						name = "error from mailvault only"
					}
					if classes[name] == nil {
						classes[name] = &class{example: fmt.Sprintf("%q: %s %v, mailvault %v", q, kind, sv.err, mv.err)}
					}
					classes[name].n++
					continue
				}
				if sv.err != nil || slices.Equal(sv.uids, mv.uids) {
					same++
					continue
				}
				diff := append(imapDiff(sv.uids, mv.uids, -1), imapDiff(mv.uids, sv.uids, -1)...)
				u := diff[0]
				var leaves []string
				for _, k := range keys {
					leaves = k.leaves(leaves)
				}
				found := false
				for _, l := range leaves {
					lq := fmt.Sprintf("UID %d %s", u, l)
					if strings.HasPrefix(q, "CHARSET") {
						lq = "CHARSET UTF-8 " + lq
					}
					ls, lm := c.both(t, lq)
					if slices.Equal(ls.uids, lm.uids) && (ls.err == nil) == (lm.err == nil) {
						continue
					}
					found = true
					key := strings.Fields(strings.TrimPrefix(l, "NOT "))[0]
					if key[0] == '*' || (key[0] >= '0' && key[0] <= '9') {
						key = "sequence set"
					}
					if classes[key] == nil {
						classes[key] = &class{example: fmt.Sprintf("UID %d %s: %s %v, mailvault %v", u, l, kind, len(ls.uids) > 0, len(lm.uids) > 0)}
					}
					classes[key].n++
					break
				}
				if !found {
					name := "combination (every leaf agrees alone)"
					if classes[name] == nil {
						classes[name] = &class{example: fmt.Sprintf("UID %d of %q", u, q)}
					}
					classes[name].n++
				}
			}
			names := make([]string, 0, len(classes))
			for k := range classes {
				names = append(names, k)
			}
			sort.Slice(names, func(i, j int) bool { return classes[names[i]].n > classes[names[j]].n })
			var b strings.Builder
			for _, k := range names {
				fmt.Fprintf(&b, "\n\t%-40s %4d  e.g. %s", k, classes[k].n, classes[k].example)
			}
			share := float64(same) / float64(n)
			t.Logf("%s: %d of %d generated queries answered as mailvault does (%.0f %%); differing queries by the first leaf that differs:%s",
				kind, same, n, 100*share, b.String())
			if e := classes["error from mailvault only"]; e != nil {
				t.Errorf("%s: %d queries the server answers make mailvault fail, e.g. %s", kind, e.n, e.example)
			}
			if share < minAgreement[kind] {
				t.Errorf("%s: agreement %.2f, below the %.2f recorded in docs/servers.md", kind, share, minAgreement[kind])
			}
		})
	}
}

// serverConformanceSetup is imapConformanceSetup for a server of
// harvest/chroottest: the corpus folder, the same flags and keywords by
// UID pattern (Courier has keywords with IMAP_KEYWORDS=1, Cyrus always),
// harvested into a fresh archive, selected on a raw connection.
func serverConformanceSetup(t *testing.T, srv *chroottest.Server, folder string) *imapConformance {
	mailbox := srv.Mailbox(folder)
	n := srv.LoadMaildir(t, "alice", mailbox, filepath.Join(corpustest.Maildir(t), "."+folder))
	raw := dialRawIMAP(t, srv, "alice")
	if _, err := raw.cmd("SELECT " + mailbox); err != nil {
		t.Fatal(err)
	}
	// UIDs are 1..n on both servers here (an empty, new folder).
	storeFlagPatterns(t, raw, mailbox, n)
	a := harvesttest.OpenArchive(t, filepath.Join(t.TempDir(), "data"))
	acct := harvesttest.Account(t, srv, "alice", "alice")
	acct.Idle = nil
	h := harvest.New(acct, service.NewSink(a.Archive), &harvest.Options{MinBackoff: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	harvesttest.WaitFor(t, 60*time.Second, "the harvest of "+mailbox, func() (bool, string) {
		st, err := indexer.Status(context.Background(), a.Dir())
		if err != nil {
			return false, err.Error()
		}
		for _, s := range st {
			if s.Mailbox == mailbox && s.Occurrences == n {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", h.Status())
	})
	// The flags came with the harvest; wait until a poll has reconciled
	// them (no CONDSTORE on Courier: a sweep) before comparing answers.
	time.Sleep(2 * time.Second)
	cancel()
	<-done
	if err := a.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	return &imapConformance{srv: srv, a: a, raw: raw, mailbox: mailbox}
}
