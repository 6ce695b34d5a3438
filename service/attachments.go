package service

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"mailvault/indexer"
	"mailvault/indexer/catalog"
	"mailvault/indexer/extract"
)

// AttachmentTexts is what was extracted from a message's attachments
// (issue 15): per attachment the text, or why there is none.
type AttachmentTexts struct {
	Attachments []indexer.AttachmentText `json:"attachments"`
	// Pending is true while the message's attachments wait for the
	// extractor: the message is searchable by its own words already.
	Pending bool `json:"pending"`
}

// AttachmentTexts returns the extracted text of message id's attachments,
// if c may see the message. It is the message's content, so it is audited
// like a read (ActionReadAttachments).
func (s *Service) AttachmentTexts(ctx context.Context, c Caller, id string) (*AttachmentTexts, error) {
	h, err := s.lookup(ctx, c, id)
	if err != nil {
		return nil, s.denied(ctx, c, ActionReadAttachments, id, err)
	}
	texts, pending, err := s.a.AttachmentTexts(ctx, h.SHA256)
	if err != nil {
		return nil, err
	}
	if err := s.audit(ctx, c, ActionReadAttachments, h.SHA256); err != nil {
		return nil, err
	}
	if texts == nil {
		texts = []indexer.AttachmentText{}
	}
	return &AttachmentTexts{Attachments: texts, Pending: pending}, nil
}

// AttachmentStatus counts attachment text across the archive, for status.
type AttachmentStatus struct {
	Pending   int            `json:"pending"`   // messages whose attachments wait for the extractor
	Seen      int            `json:"seen"`      // attachments looked at
	Extracted int            `json:"extracted"` // with text (in full or truncated)
	TextBytes int64          `json:"text_bytes"`
	Truncated map[string]int `json:"truncated"`   // cut short, by reason (text-limit, timeout …)
	Failed    map[string]int `json:"failed"`      // no text, by reason (encrypted, corrupt, timeout …)
	Formats   map[string]int `json:"formats"`     // looked at, by format ("" = not recognised)
	Old       int            `json:"old_version"` // messages extracted by an older extractor: reindex re-extracts them
	// Abandoned is extractions past their deadline still running in this
	// process (an extractor that does not stop; should be 0).
	Abandoned int64 `json:"abandoned"`
}

// Reasons lists m's keys in order, for the pages.
func Reasons(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (s *Service) attachmentStatus(ctx context.Context) (*AttachmentStatus, error) {
	c, err := s.a.ExtractCounts(ctx)
	if err != nil {
		return nil, err
	}
	return attachmentStatus(c), nil
}

func attachmentStatus(c catalog.ExtractCounts) *AttachmentStatus {
	return &AttachmentStatus{Pending: c.Pending, Seen: c.Seen, Extracted: c.Extracted, TextBytes: c.TextBytes,
		Truncated: c.Truncated, Failed: c.Failed, Formats: c.Formats, Old: c.Old, Abandoned: extract.Abandoned()}
}

// Summary is the status line of attachment text, for `mailvault status`.
func (a *AttachmentStatus) Summary() string {
	if a == nil || a.Seen == 0 && a.Pending == 0 {
		return ""
	}
	list := func(m map[string]int) string {
		var parts []string
		for _, r := range Reasons(m) {
			parts = append(parts, fmt.Sprintf("%s %d", r, m[r]))
		}
		return strings.Join(parts, ", ")
	}
	sum := func(m map[string]int) (n int) {
		for _, v := range m {
			n += v
		}
		return n
	}
	s := fmt.Sprintf("attachments: %d looked at, %d with text", a.Seen, a.Extracted)
	if n := sum(a.Truncated); n > 0 {
		s += fmt.Sprintf(" (%d truncated: %s)", n, list(a.Truncated))
	}
	if n := sum(a.Failed); n > 0 {
		s += fmt.Sprintf(", %d failed (%s)", n, list(a.Failed))
	}
	if n := a.Seen - a.Extracted - sum(a.Failed); n > 0 {
		s += fmt.Sprintf(", %d in no format text is read from", n)
	}
	if a.Pending > 0 {
		s += fmt.Sprintf("; %d messages waiting for extraction", a.Pending)
	}
	if a.Old > 0 {
		s += fmt.Sprintf("; %d extracted by an older extractor (reindex extracts them again)", a.Old)
	}
	return s
}
