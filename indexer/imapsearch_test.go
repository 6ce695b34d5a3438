package indexer

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"mailvault/query"
)

// TestSearchIMAP covers what the Dovecot conformance suite cannot set up:
// expunged copies, sequence numbers after an expunge, the human syntax
// through the same executor, the cache staying right across writes, and the
// limits.
func TestSearchIMAP(t *testing.T) {
	a := openTest(t, t.TempDir())
	defer a.Close()
	ctx := context.Background()
	mustMailbox(t, a, "alice", "INBOX")
	day := time.Date(2024, 3, 4, 23, 30, 0, 0, time.FixedZone("", -8*3600))
	var items []Item
	for i, s := range []string{"budget review", "lunch plans", "Budget: final", "holiday"} {
		items = append(items, Item{Account: "alice", Mailbox: "INBOX", UIDValidity: 7, UID: uint32(10 * (i + 1)),
			Raw: msg("Carol <carol@example.org>", s, "Mon, 4 Mar 2024 23:30:00 -0800", "body of "+s), InternalDate: day,
			Flags: [][]string{{`\Seen`}, nil, {`\Flagged`, "$Work"}, {`\Seen`}}[i]})
	}
	ingest(t, a, items...)
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	uids := func(q string, opts *IMAPSearchOptions) []uint32 {
		t.Helper()
		n, err := query.ParseIMAP(q)
		if err != nil {
			if n, err = query.ParseHuman(q); err != nil {
				t.Fatal(err)
			}
		}
		res, err := a.SearchIMAP(ctx, "alice", "INBOX", n, opts)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return res.UIDs
	}
	for _, tt := range []struct {
		q    string
		want []uint32
	}{
		{"ALL", []uint32{10, 20, 30, 40}},
		{`SUBJECT "BUDGET"`, []uint32{10, 30}},
		{`SUBJECT "get: f"`, []uint32{30}},
		{"UNSEEN", []uint32{20, 30}},
		{"KEYWORD $work", []uint32{30}},
		{"2:3", []uint32{20, 30}},
		{"UID 25:*", []uint32{30, 40}},
		{"*", []uint32{40}},
		{"SENTON 4-Mar-2024", []uint32{10, 20, 30, 40}}, // 5 Mar in UTC
		{"ON 4-Mar-2024", []uint32{10, 20, 30, 40}},
		{"NEW", []uint32{}},
		{"budget -final", []uint32{10}}, // human syntax, by the index
		{"has:attachment", []uint32{}},
	} {
		if got := uids(tt.q, nil); !slices.Equal(got, tt.want) {
			t.Errorf("%s = %v, want %v", tt.q, got, tt.want)
		}
	}
	// The server expunges UID 20 and flags 40: sequence numbers close up,
	// the expunged copy is found only when asked for, and the cached
	// occurrence list sees the change.
	if _, _, err := a.Reconcile(ctx, "alice", "INBOX", 7, map[uint32][]string{10: {`\Seen`}, 30: {`\Flagged`, "$Work"}, 40: {`\Flagged`}}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		q    string
		with bool
		want []uint32
	}{
		{"2:3", false, []uint32{30, 40}},
		{"FLAGGED", false, []uint32{30, 40}},
		{"ALL", false, []uint32{10, 30, 40}},
		{`BODY "lunch"`, true, []uint32{20}},
	} {
		if got := uids(tt.q, &IMAPSearchOptions{IncludeExpunged: tt.with}); !slices.Equal(got, tt.want) {
			t.Errorf("after the expunge, %s (expunged too: %v) = %v, want %v", tt.q, tt.with, got, tt.want)
		}
	}
	// Limits: a deadline, and a cap on messages to verify.
	a.DropViewCache()
	n, _ := query.ParseIMAP(`BODY "x"`)
	if _, err := a.SearchIMAP(ctx, "alice", "INBOX", n, &IMAPSearchOptions{MaxVerify: 2}); err == nil || !strings.Contains(err.Error(), "more than 2 messages to verify; narrow the search") {
		t.Errorf("MaxVerify 2: %v", err)
	}
	if _, err := a.SearchIMAP(ctx, "alice", "INBOX", n, &IMAPSearchOptions{Timeout: time.Nanosecond}); err == nil || !strings.Contains(err.Error(), "narrow the search") {
		t.Errorf("a 1 ns deadline: %v", err)
	}
	if _, err := a.SearchIMAP(ctx, "alice", "Nope", n, nil); err == nil || !strings.Contains(err.Error(), `has no mailbox "Nope"`) {
		t.Errorf("unknown mailbox: %v", err)
	}
}

// TestSeqSet holds the sequence-set answers Dovecot gave the generated
// queries and the probes behind them (issue 13): "*" is infinity in a
// range, a lone "*" is the last message, everything is cut at the count.
func TestSeqSet(t *testing.T) {
	set := func(s string) []query.UIDRange {
		n, err := query.ParseIMAP(s)
		if err != nil {
			t.Fatal(err)
		}
		return n.(query.Seqs).Set
	}
	for _, tt := range []struct {
		set   string
		count uint32
		want  []uint32
	}{
		{"13:*", 12, nil},
		{"*:13", 12, nil},
		{"12:*", 12, []uint32{12}},
		{"*", 12, []uint32{12}},
		{"*:*", 13, []uint32{13}},
		{"13:*,1", 12, []uint32{1}},
		{"12:*,*", 10, nil},
		{"*,9:*", 7, nil},
		{"15:*,*:5", 14, []uint32{5, 6, 7, 8, 9, 10, 11, 12, 13, 14}},
		{"5,15:*", 14, []uint32{5}},
		{"1:3,15:*,*:5", 14, []uint32{1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}},
		{"3:1", 5, []uint32{1, 2, 3}},
		{"*,2", 5, []uint32{2, 5}},
	} {
		var got []uint32
		for seq := uint32(1); seq <= tt.count; seq++ {
			for _, r := range seqSet(set(tt.set), tt.count) {
				if seq >= r[0] && seq <= r[1] {
					got = append(got, seq)
					break
				}
			}
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s of %d messages = %v, Dovecot %v", tt.set, tt.count, got, tt.want)
		}
	}
}
