// Package extract turns attachments into text for the index, the message
// page and the TEXT of export documents: PDF, Office Open XML, OpenDocument,
// RTF, legacy Office where a reader exists, XML, TNEF (winmail.dat) and the
// archives mail carries (ZIP, TAR, GZIP), in pure Go.
//
// Every extraction is bounded (Limits): a deadline, the bytes it may
// decompress, the text it may produce, the depth of nesting and the members
// of an archive. An extractor that reaches a limit stops and its Result says
// which (Status Truncated or Failed, with a Reason code that status counts
// by). A panic in an extractor is recovered and reported as Reason "panic".
// Extract returns at the deadline whatever the extractor is doing: the
// extractors here check the job between units of work and stop soon after;
// one that does not (a third-party parser stuck in a loop) is abandoned and
// counted (Abandoned), its result discarded.
//
// Decision: in-process, not a child process per attachment. A child costs
// a fork and exec per attachment (milliseconds, against a median
// attachment's extraction in microseconds) and the formats here are parsed
// by Go code that checks its budget, so a deadline and the budgets bound
// time and memory without one. What cannot be bounded that way is a
// third-party parser's internal loop; that is why abandoned extractions are
// counted and shown in metrics, and why the deadline is per attachment.
package extract

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Version is the version of the extractors' output. It is stored with each
// message's attachment text, so that reindex can re-extract what an older
// version extracted. Raise it whenever any extractor's output changes.
const Version = 1

// Limits bounds one attachment's extraction, members included. A nil
// *Limits, and any field that is zero or negative, means the default.
type Limits struct {
	Timeout     time.Duration // wall time for the attachment (default 10 s)
	MaxInput    int64         // size of an attachment looked at (default 64 MiB); larger: Failed "too-large"
	MaxText     int           // text produced, members included (default 4 MiB); more: Truncated "text-limit"
	MaxExpanded int64         // bytes decompressed in all (archive members, OOXML parts, PDF streams; default 256 MiB)
	MaxDepth    int           // containers within containers descended into (default 5)
	MaxMembers  int           // members of one archive looked at (default 10,000)
	// OCR reads images and scanned PDFs with Debian's tesseract, a child
	// process (ocr.go); off by default: images are then Unsupported.
	OCR bool
}

const (
	defaultTimeout     = 10 * time.Second
	defaultMaxInput    = 64 << 20
	defaultMaxText     = 4 << 20
	defaultMaxExpanded = 256 << 20
	defaultMaxDepth    = 5
	defaultMaxMembers  = 10000
)

// WithDefaults returns the limits with every unset field at its default.
func (l *Limits) WithDefaults() Limits {
	var o Limits
	if l != nil {
		o = *l
	}
	if o.Timeout <= 0 {
		o.Timeout = defaultTimeout
	}
	if o.MaxInput <= 0 {
		o.MaxInput = defaultMaxInput
	}
	if o.MaxText <= 0 {
		o.MaxText = defaultMaxText
	}
	if o.MaxExpanded <= 0 {
		o.MaxExpanded = defaultMaxExpanded
	}
	if o.MaxDepth <= 0 {
		o.MaxDepth = defaultMaxDepth
	}
	if o.MaxMembers <= 0 {
		o.MaxMembers = defaultMaxMembers
	}
	return o
}

// Status is how an extraction ended.
type Status string

const (
	OK          Status = "ok"          // all the text there is
	Truncated   Status = "truncated"   // text up to a limit (Reason says which); what was produced is kept
	Failed      Status = "failed"      // no text, or only what came before the failure (Reason)
	Unsupported Status = "unsupported" // a format with no extractor (Format says which, "" if unknown)
)

// Reason codes: short and stable, since status counts by them.
const (
	ReasonTimeout        = "timeout"         // the deadline passed
	ReasonTooLarge       = "too-large"       // the attachment is over MaxInput
	ReasonText           = "text-limit"      // MaxText reached
	ReasonExpansion      = "expansion-limit" // MaxExpanded reached (a decompression bomb, or just big)
	ReasonDepth          = "depth-limit"     // nested deeper than MaxDepth
	ReasonMembers        = "member-limit"    // an archive with more than MaxMembers members
	ReasonEncrypted      = "encrypted"       // password-protected: nothing to read without the key
	ReasonCorrupt        = "corrupt"         // malformed or truncated input
	ReasonPanic          = "panic"           // the extractor panicked (a bug): recovered
	ReasonBusy           = "busy"            // too many abandoned extractions still running: not tried
	ReasonOCRUnavailable = "ocr-unavailable" // OCR on, but tesseract (or pdftoppm) is not installed
	ReasonOCRPages       = "ocr-page-limit"  // a scanned PDF's first pages only were OCRed
)

// Result is one attachment's extraction.
type Result struct {
	Format  string // "pdf", "docx", "zip", …; "" when not recognised
	Text    string // UTF-8, members' text included (each after its name)
	Status  Status
	Reason  string   // a Reason code when Status is Truncated or Failed
	Detail  string   // what went wrong, for people (the message page)
	Members []Member // archive members and TNEF attachments, in order, at most MaxMembers
}

// Member is an entry of an archive or an attachment a TNEF wrapper carried.
type Member struct {
	Name string // path within the archive, or the TNEF attachment's file name
	Size int64  // uncompressed size, -1 when not known
	// Data is the member's bytes for TNEF attachments (they become
	// attachments of the message, exported as natives); nil for archive
	// members, which stay inside their archive.
	Data   []byte
	Result Result // its own extraction (Format "" and Status Unsupported when not looked into)
}

// Sentinel errors an extractor returns (wrapped or not) to end with the
// matching Reason. Any other error is ReasonCorrupt.
var (
	ErrTimeout   = errors.New("extraction deadline passed")
	ErrText      = errors.New("text limit reached")
	ErrExpansion = errors.New("decompression limit reached")
	ErrDepth     = errors.New("nesting limit reached")
	ErrMembers   = errors.New("member limit reached")
	ErrEncrypted = errors.New("encrypted")
)

// An extractor reads data (the whole attachment or member, already bounded
// by MaxInput) and writes its text with j.Text, checking j.Alive between
// units of work (a page, a part, a member) and accounting what it
// decompresses with j.Expand or j.Reader. It returns nil, or an error that
// says why it stopped (the sentinels above, or anything else for corrupt
// input); the text written before an error is kept.
type extractor func(j *Job, data []byte) error

var formats = map[string]extractor{}

// register makes run the extractor of format. Each format's file calls it
// from init.
func register(format string, run extractor) {
	if _, dup := formats[format]; dup {
		panic("extract: format registered twice: " + format)
	}
	formats[format] = run
}

// Formats lists the formats with an extractor.
func Formats() []string {
	var out []string
	for f := range formats {
		out = append(out, f)
	}
	return out
}

// Job is one attachment's extraction in progress: its limits and what it
// has used of them. It is shared by the attachment and everything nested
// in it.
type Job struct {
	ctx      context.Context
	lim      Limits
	depth    int
	text     bytes.Buffer
	expanded int64
	cut      string   // the Reason of the first limit that cut text short
	members  []Member // archive members and TNEF attachments, copied to the Result
}

// Alive returns ErrTimeout once the deadline has passed (or the caller gave
// up), else nil.
func (j *Job) Alive() error {
	if j.ctx.Err() != nil {
		return ErrTimeout
	}
	return nil
}

// Text appends s (made valid UTF-8) to the result, separated from what came
// before by a space when neither side has one. It returns ErrText once the
// text limit is reached; s is then cut at a character boundary.
func (j *Job) Text(s string) error {
	if s == "" {
		return nil
	}
	if err := j.Alive(); err != nil {
		return err
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	sep := ""
	if n := j.text.Len(); n > 0 && !isSpace(j.text.Bytes()[n-1]) && !isSpace(s[0]) {
		sep = " "
	}
	room := j.lim.MaxText - j.text.Len() - len(sep)
	if len(s) > room {
		if s = cutUTF8(s, room); s != "" {
			j.text.WriteString(sep + s)
		}
		j.limit(ReasonText)
		return ErrText
	}
	j.text.WriteString(sep + s)
	return nil
}

// Expand accounts n more decompressed bytes; ErrExpansion when that is over
// MaxExpanded.
func (j *Job) Expand(n int64) error {
	j.expanded += n
	if j.expanded > j.lim.MaxExpanded {
		j.limit(ReasonExpansion)
		return ErrExpansion
	}
	return j.Alive()
}

// Reader wraps r (a decompressor) so that every byte read from it is
// accounted with Expand: reading fails with ErrExpansion at the limit.
func (j *Job) Reader(r interface{ Read([]byte) (int, error) }) *countingReader {
	return &countingReader{j: j, r: r}
}

type countingReader struct {
	j *Job
	r interface{ Read([]byte) (int, error) }
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		if e := c.j.Expand(int64(n)); e != nil {
			return n, e
		}
	}
	return n, err
}

// Nested extracts a member (of an archive, a TNEF wrapper, an embedded
// object) within this job's limits, one level deeper. Its text is not
// added to this job's: the caller writes it (after the member's name).
func (j *Job) Nested(name, contentType string, data []byte) Result {
	if j.depth+1 > j.lim.MaxDepth {
		j.limit(ReasonDepth)
		return Result{Format: Detect(name, contentType, data), Status: Failed, Reason: ReasonDepth, Detail: "nested too deep"}
	}
	sub := &Job{ctx: j.ctx, lim: j.lim, depth: j.depth + 1, expanded: j.expanded}
	sub.lim.MaxText = max(0, j.lim.MaxText-j.text.Len())
	r := sub.run(name, contentType, data)
	j.expanded = sub.expanded
	return r
}

// Limits is the job's limits.
func (j *Job) Limits() Limits { return j.lim }

func (j *Job) limit(reason string) {
	if j.cut == "" {
		j.cut = reason
	}
}

// run detects data's format and runs its extractor, recovering a panic.
func (j *Job) run(name, contentType string, data []byte) (r Result) {
	// Detect and the OCR fallback run outside runFormat's recover: a
	// panic in either is a failed extraction too, never the process.
	defer func() {
		if p := recover(); p != nil {
			r = Result{Format: r.Format, Text: j.text.String(), Status: Failed, Reason: ReasonPanic,
				Detail: (&panicError{p, debug.Stack()}).Error()}
		}
	}()
	r.Format = Detect(name, contentType, data)
	r = ocrFallback(j, r.Format, data, j.runFormat(r.Format, data))
	return r
}

// safeDetect is Detect for Extract's own goroutine: a panic in it (a bug
// on a hostile header) names no format instead of ending the process.
func safeDetect(name, contentType string, data []byte) (format string) {
	defer func() {
		if recover() != nil {
			format = ""
		}
	}()
	return Detect(name, contentType, data)
}

// runFormat runs format's extractor on data.
func (j *Job) runFormat(format string, data []byte) (r Result) {
	r.Format = format
	ex := formats[format]
	if ex == nil {
		r.Status = Unsupported
		return r
	}
	if int64(len(data)) > j.lim.MaxInput {
		r.Status, r.Reason, r.Detail = Failed, ReasonTooLarge, fmt.Sprintf("%d bytes, over the %d-byte limit", len(data), j.lim.MaxInput)
		return r
	}
	var err error
	func() {
		defer func() {
			if p := recover(); p != nil {
				err = &panicError{p, debug.Stack()}
			}
		}()
		err = ex(j, data)
	}()
	r.Text = j.text.String()
	r.Members = j.members
	r.Status = OK
	switch {
	case err == nil && j.cut != "":
		r.Status, r.Reason = Truncated, j.cut
	case err != nil:
		r.Reason, r.Detail = reasonOf(err), err.Error()
		r.Status = Failed
		if r.Text != "" && (r.Reason == ReasonText || r.Reason == ReasonExpansion || r.Reason == ReasonMembers ||
			r.Reason == ReasonTimeout || r.Reason == ReasonDepth) {
			r.Status = Truncated
		}
	}
	return r
}

type panicError struct {
	v     any
	stack []byte
}

func (p *panicError) Error() string { return fmt.Sprintf("extractor panicked: %v", p.v) }

func reasonOf(err error) string {
	var pe *panicError
	switch {
	case errors.As(err, &pe):
		return ReasonPanic
	case errors.Is(err, ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return ReasonTimeout
	case errors.Is(err, ErrText):
		return ReasonText
	case errors.Is(err, ErrExpansion):
		return ReasonExpansion
	case errors.Is(err, ErrDepth):
		return ReasonDepth
	case errors.Is(err, ErrMembers):
		return ReasonMembers
	case errors.Is(err, ErrEncrypted):
		return ReasonEncrypted
	}
	return ReasonCorrupt
}

// abandoned counts extractions that passed their deadline and have not
// returned yet; maxAbandoned of them still running make Extract refuse new
// work (ReasonBusy) rather than pile up goroutines stuck in the same bug.
var abandoned atomic.Int64

const maxAbandoned = 8

// Abandoned is the number of extractions past their deadline that are still
// running (a metric: more than zero means an extractor does not stop).
func Abandoned() int64 { return abandoned.Load() }

// Extract extracts the text of one attachment, its name and media type as
// the message gives them, within lim. It never panics and returns by the
// deadline (or when ctx ends).
func Extract(ctx context.Context, name, contentType string, data []byte, lim *Limits) Result {
	l := lim.WithDefaults()
	format := safeDetect(name, contentType, data)
	if formats[format] == nil {
		return Result{Format: format, Status: Unsupported}
	}
	if abandoned.Load() >= maxAbandoned {
		return Result{Format: format, Status: Failed, Reason: ReasonBusy, Detail: "too many earlier extractions are still running past their deadline"}
	}
	ctx, cancel := context.WithTimeout(ctx, l.Timeout)
	defer cancel()
	j := &Job{ctx: ctx, lim: l}
	done := make(chan Result, 1)
	var once sync.Once
	go func() {
		r := j.run(name, contentType, data)
		done <- r
		once.Do(func() {}) // returned in time: not abandoned
	}()
	select {
	case r := <-done:
		return r
	case <-ctx.Done():
		var late bool
		once.Do(func() { late = true })
		if late {
			abandoned.Add(1)
			go func() { <-done; abandoned.Add(-1) }()
		} else {
			return <-done // it finished as the deadline passed
		}
		return Result{Format: format, Status: Failed, Reason: ReasonTimeout, Detail: fmt.Sprintf("no result within %s", l.Timeout)}
	}
}

func isSpace(b byte) bool { return b == ' ' || b == '\n' || b == '\t' || b == '\r' }

// cutUTF8 returns the longest prefix of s of at most n bytes that does not
// split a character.
func cutUTF8(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if n >= len(s) {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// ext is name's extension, lowercased, with its dot.
func ext(name string) string { return strings.ToLower(path.Ext(name)) }
