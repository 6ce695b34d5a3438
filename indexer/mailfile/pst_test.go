package mailfile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/mail"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"mailvault/indexer/mailfile/psttest"
)

// A real PST (go-pst's test data) through readpst: folder names, message
// counts, subjects and an attachment as readpst wrote them, and the same
// bytes on a second conversion.
func TestConvertPST(t *testing.T) {
	psttest.Readpst(t)
	pst := psttest.File(t, "support.pst")
	boxes, err := Discover(pst, "")
	if err != nil || len(boxes) != 1 || boxes[0].Kind != KindPST {
		t.Fatalf("Discover(support.pst) = %+v, %v", boxes, err)
	}
	if err := boxes[0].Walk(func(Message) error { return nil }, nil); !errors.Is(err, ErrPSTWalk) {
		t.Errorf("Walk(PST) = %v, want ErrPSTWalk", err)
	}
	convert := func() map[string][]Message {
		dir := t.TempDir()
		res, err := ConvertPST(context.Background(), pst, dir, 0)
		if err != nil {
			t.Fatal(err)
		}
		if res.Skipped != 0 || filepath.Base(res.Root) != "support" {
			t.Errorf("ConvertPST = %+v", res)
		}
		found, err := Discover(res.Root, "")
		if err != nil {
			t.Fatal(err)
		}
		out := map[string][]Message{}
		for _, b := range found {
			msgs, errs := walkAll(t, b)
			if len(errs) > 0 {
				t.Errorf("%s: %v", b.Name, errs)
			}
			out[b.Name] = msgs
		}
		return out
	}
	a := convert()
	var names []string
	for n, msgs := range a {
		names = append(names, fmt.Sprintf("%s:%d", n, len(msgs)))
	}
	sort.Strings(names)
	if got := strings.Join(names, " "); got != "Drafts:6 Sent Messages:11" {
		t.Errorf("mailboxes %s, want Drafts:6 Sent Messages:11", got)
	}
	subj := strings.Join(subjects(a["Sent Messages"]), "|")
	for _, s := range []string{"Desktop exploits suspension notice", "Release 9.2.1", "The truth about latest allegations"} {
		if !strings.Contains(subj, s) {
			t.Errorf("Sent Messages subjects %q lack %q", subj, s)
		}
	}
	// INTERNALDATE is the message's date, not the conversion's.
	for _, m := range a["Sent Messages"] {
		hm, err := mail.ReadMessage(bytes.NewReader(m.Raw))
		if err != nil {
			t.Fatal(err)
		}
		d, err := hm.Header.Date()
		if err != nil || !m.InternalDate.Equal(d) {
			t.Errorf("%s: InternalDate %v, want its Date %v (%v)", m.Source, m.InternalDate, d, err)
		}
	}
	att := 0
	for _, m := range a["Sent Messages"] {
		if strings.Contains(string(m.Raw), `filename="support@hackingteam.it.asc"`) {
			att++
		}
	}
	if att != 1 {
		t.Errorf("%d messages carry the .asc attachment, want 1", att)
	}
	b := convert()
	if !reflect.DeepEqual(raws(a), raws(b)) {
		t.Error("two conversions of the same PST differ: a re-import would store everything again")
	}
}

func raws(m map[string][]Message) map[string][]string {
	out := map[string][]string{}
	for k, msgs := range m {
		for _, x := range msgs {
			out[k] = append(out[k], string(x.Raw))
		}
	}
	return out
}

// A file readpst rejects, and a missing readpst: clear errors.
func TestConvertPSTErrors(t *testing.T) {
	psttest.Readpst(t)
	bad := filepath.Join(t.TempDir(), "bad.pst")
	if err := os.WriteFile(bad, append([]byte("!BDN"), make([]byte, 4096)...), 0o644); err != nil {
		t.Fatal(err)
	}
	if boxes, err := Discover(bad, ""); err != nil || boxes[0].Kind != KindPST {
		t.Fatalf("Discover(bad.pst) = %+v, %v", boxes, err)
	}
	_, err := ConvertPST(context.Background(), bad, t.TempDir(), 0)
	t.Logf("bad PST: %v", err)
	if err == nil || !strings.Contains(err.Error(), "readpst rejected it") {
		t.Errorf("ConvertPST(bad) = %v, want readpst rejected it", err)
	}
	// The timeout bounds readpst (here: a real PST and no time at all).
	_, err = ConvertPST(context.Background(), psttest.File(t, "enron.pst"), t.TempDir(), time.Nanosecond)
	if err == nil || !strings.Contains(err.Error(), "readpst did not finish in") || !strings.Contains(err.Error(), "--pst-timeout") {
		t.Errorf("ConvertPST with a 1ns timeout = %v", err)
	}
	t.Setenv("PATH", t.TempDir())
	_, err = ConvertPST(context.Background(), bad, t.TempDir(), 0)
	if !errors.Is(err, ErrNoReadpst) || !strings.Contains(err.Error(), "pst-utils") {
		t.Errorf("ConvertPST without readpst = %v, want ErrNoReadpst naming pst-utils", err)
	}
}

// The Enron PST of go-pst's test data (29 MB, 1,737 items): every folder
// with the item counts readpst -j 0 writes, the subjects of Inbox, an
// attachment, and two conversions alike. (readpst's default parallel mode
// wrote 1,709 to 1,736 of them in three runs here: see ConvertPST.)
func TestConvertPSTEnron(t *testing.T) {
	psttest.Readpst(t)
	pst := psttest.File(t, "enron.pst")
	convert := func() (map[string]int, map[string][]Message) {
		res, err := ConvertPST(context.Background(), pst, t.TempDir(), 0)
		if err != nil {
			t.Fatal(err)
		}
		found, err := Discover(res.Root, "")
		if err != nil {
			t.Fatal(err)
		}
		counts, msgs := map[string]int{}, map[string][]Message{}
		for _, b := range found {
			m, errs := walkAll(t, b)
			if len(errs) > 0 {
				t.Errorf("%s: %v", b.Name, errs)
			}
			counts[b.Name], msgs[b.Name] = len(m), m
		}
		return counts, msgs
	}
	counts, msgs := convert()
	want := map[string]int{
		"bailey-s/All documents": 846, "bailey-s/Calendar": 791, "bailey-s/Contacts": 10, "bailey-s/Drafts": 41,
		"bailey-s/Inbox": 4, "bailey-s/Notes inbox": 10, "bailey-s/Sent": 20, "bailey-s/Sent Items": 15,
	}
	if !reflect.DeepEqual(counts, want) {
		t.Errorf("folders %v\nwant %v", counts, want)
	}
	subj := strings.Join(subjects(msgs["bailey-s/Inbox"]), "|")
	for _, s := range []string{"FW: assignment", "Board Retreat"} {
		if !strings.Contains(subj, s) {
			t.Errorf("Inbox subjects %q lack %q", subj, s)
		}
	}
	att := 0
	for _, m := range msgs["bailey-s/Sent Items"] {
		if strings.Contains(string(m.Raw), `filename="`) {
			att++
		}
	}
	if att != 8 {
		t.Errorf("%d messages of Sent Items have an attachment, want 8", att)
	}
	again, msgs2 := convert()
	if !reflect.DeepEqual(again, counts) || !reflect.DeepEqual(raws(msgs), raws(msgs2)) {
		t.Errorf("a second conversion differs: %v", again)
	}
}
