package harvest_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"mailvault/harvest"
	"mailvault/harvest/gmailtest"
	"mailvault/harvest/harvesttest"
	"mailvault/service"
)

// gmailMessage is one message put on the Gmail test server.
type gmailMessage struct {
	raw    []byte
	sha    string
	msgid  uint64
	labels []string // as given to Add
}

// gmailFolder is the folder a label shows as (gmailtest's names).
func gmailFolder(label string) string {
	switch label {
	case `\Inbox`:
		return gmailtest.Inbox
	case `\Sent`:
		return gmailtest.SentMail
	case `\Starred`:
		return gmailtest.Starred
	case `\Spam`:
		return gmailtest.Spam
	}
	return label
}

// gmailCorpus puts generated messages with random labels on srv: some in
// several labels, some in none (All Mail only), some in Spam (not in All
// Mail). It returns them and how many each folder holds.
func gmailCorpus(t *testing.T, srv *gmailtest.Server, seed uint64) ([]gmailMessage, map[string]int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 2))
	var out []gmailMessage
	folders := map[string]int{}
	for i := range 92 {
		raw := harvesttest.Message("gmail"+strconv.FormatUint(seed, 10), i+1)
		var labels []string
		if i >= 80 {
			labels = []string{`\Spam`}
		} else {
			for _, l := range []struct {
				name string
				p    float64
			}{{`\Inbox`, .6}, {`\Sent`, .3}, {"Work", .4}, {"Muy Importante", .3}, {`\Starred`, .2}} {
				if rng.Float64() < l.p {
					labels = append(labels, l.name)
				}
			}
			folders[gmailtest.AllMail]++
		}
		for _, l := range labels {
			folders[gmailFolder(l)]++
		}
		var flags []string
		if rng.IntN(2) == 0 {
			flags = []string{`\Seen`}
		}
		id := srv.Add(raw, flags, labels...)
		sum := sha256.Sum256(raw)
		out = append(out, gmailMessage{raw: raw, sha: hex.EncodeToString(sum[:]), msgid: id, labels: labels})
	}
	for f, n := range folders {
		// A catch-up of fewer messages does not open the side connection
		// (gmailMinBatch): every folder here must be over it for the
		// download count below to be exact.
		if n < 10 {
			t.Fatalf("seed %d: folder %q has %d messages; the test wants at least 10 in each", seed, f, n)
		}
	}
	return out, folders
}

// plainSink hides the archive's GmailSink: a harvester over it downloads
// every message of every folder, as on any server.
type plainSink struct{ harvest.Sink }

// TestGmailHarvest harvests a Gmail-dialect account (gmailtest: written
// from Google's description of X-GM-EXT-1, not Gmail): every folder is
// archived with its own UIDs, byte-equal; each message is downloaded once
// however many labels it has (X-GM-MSGID); its X-GM-MSGID and labels are
// recorded, the same whether or not the server lists the selected
// folder's own label. Without the extension's use (a sink that does not keep
// Gmail's IDs) the same archive results, at the cost of one download per
// label.
func TestGmailHarvest(t *testing.T) {
	for _, tc := range []struct {
		name  string
		plain bool
		omit  bool // the server leaves the selected folder's label out of X-GM-LABELS
	}{{"x-gm-msgid", false, false}, {"omit-selected-label", false, true}, {"download-all", true, false}} {
		t.Run(tc.name, func(t *testing.T) {
			srv := gmailtest.StartWith(t, &gmailtest.Options{OmitSelectedLabel: tc.omit})
			msgs, folders := gmailCorpus(t, srv, 11)
			total := 0
			for _, n := range folders {
				total += n
			}
			a := harvesttest.OpenArchive(t, t.TempDir())
			host, port, _ := net.SplitHostPort(srv.Addr())
			p, _ := strconv.Atoi(port)
			acct := harvest.Account{Name: "gmail", Host: host, Port: p, TLS: "none", Username: gmailtest.User, Password: gmailtest.Password,
				Mailboxes: []string{"*"}, Idle: []string{"INBOX"}, PollInterval: time.Second}
			var sink harvest.Sink = service.NewSink(a.Archive)
			if tc.plain {
				sink = plainSink{sink}
			}
			log := dcLogger(t)
			h := dcStart(t, context.Background(), acct, sink, dcFastBackoff(log))
			want := map[string]int{}
			for f, n := range folders {
				want["gmail/"+f] = n
			}
			took := dcWaitFor(t, 30*time.Second, "every folder archived", func() (bool, string) {
				return dcArchived(t, a, want)
			})
			st := h.Status()
			t.Logf("%d messages in %d folders (%d copies) archived in %v: %d body downloads, %d bytes; %d recorded by X-GM-MSGID",
				len(msgs), len(folders), total, took.Round(time.Millisecond), srv.BodyFetches(), st.Counters.Bytes, st.Counters.GmailKnown)

			// Downloads: each message once with X-GM-MSGID, each copy without.
			wantFetches, wantKnown := len(msgs), int64(total-len(msgs))
			if tc.plain {
				wantFetches, wantKnown = total, 0
			}
			if got := srv.BodyFetches(); got != wantFetches {
				t.Errorf("%d bodies downloaded, want %d", got, wantFetches)
			}
			if st.Counters.GmailKnown != wantKnown {
				t.Errorf("%d copies recorded by X-GM-MSGID, want %d", st.Counters.GmailKnown, wantKnown)
			}

			// Every copy where the server has it, of the right bytes.
			occ := map[string]string{} // "mailbox/uid" → sha
			for _, o := range harvesttest.Occurrences(t, a) {
				if o.Expunged != "" {
					t.Errorf("%s UID %d marked expunged", o.Mailbox, o.UID)
				}
				occ[o.Mailbox+"/"+strconv.Itoa(int(o.UID))] = o.SHA256
			}
			if len(occ) != total {
				t.Errorf("%d occurrences, want %d", len(occ), total)
			}
			ctx := context.Background()
			for _, m := range msgs {
				places := []string{}
				for _, l := range m.labels {
					places = append(places, gmailFolder(l))
				}
				if !slices.Contains(m.labels, `\Spam`) {
					places = append(places, gmailtest.AllMail)
				}
				for _, f := range places {
					uid := srv.UID(f, m.msgid)
					if got := occ[fmt.Sprintf("%s/%d", f, uid)]; got != m.sha {
						t.Errorf("%s UID %d: archived %q, want %s", f, uid, got, m.sha)
					}
				}
				raw, err := a.Raw(m.sha)
				if err != nil || !bytes.Equal(raw, m.raw) {
					t.Errorf("message %d: archived bytes differ (%v)", m.msgid, err)
				}
				g, err := a.GmailOf(ctx, m.sha)
				if err != nil {
					t.Fatal(err)
				}
				if tc.plain {
					if len(g) != 0 {
						t.Errorf("message %d: Gmail data %v recorded by a sink that keeps none", m.msgid, g)
					}
					continue
				}
				got := g["gmail"]
				if got.MsgID != m.msgid {
					t.Errorf("message %d: X-GM-MSGID recorded %d", m.msgid, got.MsgID)
				}
				if slices.Contains(m.labels, `\Spam`) {
					continue // what Spam's X-GM-LABELS hold is not documented
				}
				if !sameSet(got.Labels, m.labels) {
					t.Errorf("message %d: labels %q, want %q", m.msgid, got.Labels, m.labels)
				}
			}
		})
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
