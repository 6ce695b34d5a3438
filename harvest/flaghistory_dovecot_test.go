//go:build unix

package harvest_test

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"mailvault/harvest/dovecottest"
	"mailvault/harvest/harvesttest"
	"mailvault/service"
)

// TestDovecotFlagHistory: \Seen set on the server, then \Answered, then
// \Seen removed; the archive's flag history of the copy shows the first
// sighting and the three changes, in order, with increasing times and the
// sync that saw them (CHANGEDSINCE or QRESYNC on Dovecot; the full sweep
// with CONDSTORE hidden). Searches answer the latest sighting (IMAP
// SEARCH from the catalog, is: from the re-indexed document); a user of
// another account gets not found; the export's FLAGS has the copy's flags
// with since when.
func TestDovecotFlagHistory(t *testing.T) {
	for _, tc := range []struct {
		name    string
		hide    []string
		sources []string // of the three changes
	}{
		{"condstore", nil, []string{"changedsince", "qresync"}},
		{"sweep", []string{"QRESYNC", "CONDSTORE"}, []string{"reconcile"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			srv := dovecottest.Start(t, nil)
			srv.LoadMaildir(t, "alice", "INBOX", harvesttest.Maildir(t, harvesttest.Messages("fh", 3)))
			log := dcLogger(t)
			p := startWireProxy(t, srv.Addr, tc.hide...)
			adir := t.TempDir()
			a := harvesttest.OpenArchive(t, adir)
			acct := p.account(t, srv, "alice", "alice")
			opts := dcFastBackoff(log)
			opts.FlagSweep = time.Second
			h := dcStart(t, ctx, acct, service.NewSink(a.Archive), opts)
			dcWaitFor(t, 20*time.Second, "INBOX archived", func() (bool, string) {
				return dcArchived(t, a, map[string]int{"alice/INBOX": 3})
			})
			occ := func() harvesttest.Occ {
				for _, o := range harvesttest.Occurrences(t, a) {
					if o.UID == 2 {
						return o
					}
				}
				return harvesttest.Occ{}
			}
			steps := [][]string{{`\Seen`}, {`\Answered`, `\Seen`}, {`\Answered`}}
			for _, want := range steps {
				srv.SetFlags(t, "alice", "INBOX", 2, want...)
				dcWaitFor(t, 15*time.Second, fmt.Sprintf("flags %q archived", want), func() (bool, string) {
					got := strings.Fields(occ().Flags)
					slices.Sort(got)
					return slices.Equal(got, want), fmt.Sprintf("%+v", occ())
				})
			}
			h.stop(t)
			if err := a.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			sha := occ().SHA256

			users, err := service.OpenUsers(adir) // the audit store: nothing audited is served without one
			if err != nil {
				t.Fatal(err)
			}
			defer users.Close()
			svc := service.New(a.Archive, &service.Options{Users: users})
			admin := service.Caller{Name: "root", Role: service.RoleAdmin}
			hist, err := svc.FlagHistory(ctx, admin, sha)
			if err != nil || len(hist) != 1 {
				t.Fatalf("FlagHistory = %+v, %v; want one occurrence", hist, err)
			}
			s := hist[0].Sightings
			// The first sighting is what the harvest fetched: Dovecot
			// reports \Recent to the first session to see a new message
			// (RFC 3501 2.3.2), gone from the next FETCH FLAGS.
			if len(s) != 4 || strings.Join(s[0].Flags, " ") != `\Recent` && len(s[0].Flags) != 0 || s[0].Source != "harvest" {
				t.Fatalf("sightings = %+v; want the harvest's first sight (nothing or \\Recent) and three changes", s)
			}
			for i, want := range steps {
				got := slices.Sorted(slices.Values(s[i+1].Flags))
				if !slices.Equal(got, want) || !slices.Contains(tc.sources, s[i+1].Source) || s[i+1].At <= s[i].At {
					t.Errorf("sighting %d = %+v; want %q by %v, after %s", i+1, s[i+1], want, tc.sources, s[i].At)
				}
			}
			if strings.Join(s[3].Removed, " ") != `\Seen` || strings.Join(s[2].Added, " ") != `\Answered` {
				t.Errorf("added/removed: %+v", s)
			}
			if _, err := svc.FlagHistory(ctx, service.Caller{Name: "bob", Role: service.RoleUser, Accounts: []string{"bob"}}, sha); !errors.Is(err, service.ErrNotFound) {
				t.Errorf("FlagHistory for a user of another account: %v, want not found", err)
			}

			// Searches see the latest sighting only.
			for q, want := range map[string]int{"is:answered": 1, "is:read": 0} {
				if hits := harvesttest.Search(t, a, q); len(hits) != want {
					t.Errorf("%s: %d hits, want %d", q, len(hits), want)
				}
			}
			for q, want := range map[string]int{"ANSWERED": 1, "SEEN": 0, "UNSEEN": 3} {
				res, err := svc.Search(ctx, admin, service.SearchRequest{Query: q, Syntax: service.SyntaxIMAP, Accounts: []string{"alice"}, Mailboxes: []string{"INBOX"}})
				if err != nil || len(res.Hits) != want {
					t.Errorf("IMAP SEARCH %s: %v hits, %v; want %d", q, res, err, want)
				}
			}

			dir := filepath.Join(t.TempDir(), "prod")
			if _, err := svc.Export(ctx, admin, service.ExportRequest{IDs: []string{sha}, Dir: dir}, nil); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(filepath.Join(dir, "DATA", "loadfile.csv"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			rows, err := csv.NewReader(f).ReadAll()
			if err != nil || len(rows) != 2 {
				t.Fatalf("load file: %d rows, %v", len(rows), err)
			}
			col := slices.Index(rows[0], "FLAGS")
			if want := `\Answered ` + hist[0].Since[`\Answered`]; col < 0 || rows[1][col] != want {
				t.Errorf("FLAGS = %q (column %d), want %q", rows[1][max(col, 0)], col, want)
			}
		})
	}
}
