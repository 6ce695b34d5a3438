package extract

import (
	"context"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// The framework's guarantees, with extractors made for the test (registered
// under names Detect never returns, and run through Job.run / Extract's
// deadline the way a real format is).
func testJob(lim Limits) *Job {
	return &Job{ctx: context.Background(), lim: (&lim).WithDefaults()}
}

func TestPanicIsRecoveredAndReported(t *testing.T) {
	formats["test-panic"] = func(j *Job, data []byte) error {
		j.Text("before")
		var m map[string]int
		m["x"]++ // a nil-map write: a real panic
		return nil
	}
	defer delete(formats, "test-panic")
	j := testJob(Limits{})
	r := j.runFormat("test-panic", nil)
	if r.Status != Failed || r.Text != "before" {
		t.Fatalf("status %s text %q", r.Status, r.Text)
	}
	if r.Reason != ReasonPanic || !strings.Contains(r.Detail, "panicked") {
		t.Fatalf("reason %q detail %q", r.Reason, r.Detail)
	}
}

func TestTextLimitCutsAtACharacter(t *testing.T) {
	j := testJob(Limits{MaxText: 10})
	if err := j.Text("ééééé"); err != nil { // 10 bytes: fits
		t.Fatal(err)
	}
	if err := j.Text("é"); err != ErrText {
		t.Fatalf("over the limit: %v", err)
	}
	if got := j.text.String(); got != "ééééé" || !utf8.ValidString(got) {
		t.Fatalf("text %q", got)
	}
	j = testJob(Limits{MaxText: 5})
	j.Text("ééé") // 6 bytes: cut to 4, not 5
	if got := j.text.String(); got != "éé" {
		t.Fatalf("cut text %q", got)
	}
}

func TestExpansionLimit(t *testing.T) {
	j := testJob(Limits{MaxExpanded: 100})
	if err := j.Expand(60); err != nil {
		t.Fatal(err)
	}
	if err := j.Expand(41); err != ErrExpansion {
		t.Fatalf("over: %v", err)
	}
}

func TestDeadlineAbandonsAStuckExtractor(t *testing.T) {
	release := make(chan struct{})
	formats["pdf"], formats["test-saved"] = func(j *Job, data []byte) error { <-release; return nil }, formats["pdf"]
	defer func() { formats["pdf"] = formats["test-saved"]; delete(formats, "test-saved") }()
	begin := time.Now()
	r := Extract(context.Background(), "x.pdf", "application/pdf", []byte("%PDF-1.4"), &Limits{Timeout: 50 * time.Millisecond})
	if el := time.Since(begin); el > 2*time.Second {
		t.Fatalf("returned after %s", el)
	}
	if r.Status != Failed || r.Reason != ReasonTimeout {
		t.Fatalf("got %s %s", r.Status, r.Reason)
	}
	if Abandoned() != 1 {
		t.Fatalf("abandoned %d, want 1", Abandoned())
	}
	close(release)
	for deadline := time.Now().Add(2 * time.Second); Abandoned() != 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("abandoned count not back to 0 after the extractor returned")
		}
	}
}

func TestUnknownFormatIsUnsupported(t *testing.T) {
	r := Extract(context.Background(), "a.bin", "application/octet-stream", []byte{1, 2, 3}, nil)
	if r.Status != Unsupported || r.Format != "" {
		t.Fatalf("got %+v", r)
	}
}
