package export

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"runtime"
	"strings"
	"time"

	"mailvault/indexer/extract"
	"mailvault/indexer/mime"
)

// An export runs in three stages, so that both cores work and the writer
// does only what must be done in order:
//
//  1. the Source hands out the messages (the store's reads, decompression
//     and hash checks), one goroutine;
//  2. prep workers, one per core, check each message's hash again and work
//     out everything about it that does not depend on its place in the
//     export: for a production the parse, every attachment's bytes (one
//     parse for all of them), the texts and the MD5 and SHA-256 of every
//     file (a draft); for mbox the quoted message; for EML its MD5;
//  3. the writer (the caller's goroutine) takes the results in the
//     Source's order, numbers the documents, records the files and writes
//     the load files; the file pool creates the files.
//
// What dedup makes of a message (one family per copy, per custodian or one
// in all) is decided by the writer; the draft is made once. At most
// inFlight messages are between stage 1 and 3, so memory stays bounded by
// a few messages and their decoded parts, whatever the export's size.

// prepared is a message read and checked ahead of the writer, with the
// work the format needs done.
type prepared struct {
	m       Message
	hashErr error
	draft   *draft     // production
	mbox    *mboxDraft // mbox
	eml     fileData   // EML
}

func (w *writer) prepare(m Message) prepared {
	p := prepared{m: m, hashErr: checkHash(m)}
	if p.hashErr != nil {
		return p
	}
	switch w.opts.Format {
	case FormatProduction:
		p.draft = makeDraft(m)
	case FormatMbox:
		p.mbox = makeMboxDraft(m)
	case FormatEML:
		p.eml = hashed(m.Raw, strings.ToLower(m.SHA256))
	}
	return p
}

// pipeline runs stages 1 and 2 and calls fn with each prepared message in
// the Source's order (stage 3). fn's first error stops the Source and the
// workers; pipeline returns it, or else the Source's error.
func (w *writer) pipeline(ctx context.Context, src Source, fn func(prepared) error) error {
	workers := max(2, runtime.GOMAXPROCS(0))
	inFlight := 2 * workers
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type job struct {
		m   Message
		out chan prepared
	}
	jobs := make(chan job)
	order := make(chan chan prepared, inFlight)
	for range workers {
		go func() {
			for j := range jobs {
				j.out <- w.prepare(j.m) // out has room for it: never blocks
			}
		}()
	}
	readErr := make(chan error, 1)
	go func() {
		defer close(order)
		defer close(jobs)
		readErr <- src.Each(rctx, func(m Message) error {
			out := make(chan prepared, 1)
			select {
			case order <- out: // a place in line first: at most inFlight wait
			case <-rctx.Done():
				return rctx.Err()
			}
			select {
			case jobs <- job{m, out}:
				return nil
			case <-rctx.Done():
				out <- prepared{m: m, hashErr: rctx.Err()}
				return rctx.Err()
			}
		})
	}()
	var err error
	for out := range order {
		p := <-out
		if err != nil {
			continue // drain, so that the reader can stop
		}
		if err = ctx.Err(); err == nil {
			err = fn(p)
		}
		if err != nil {
			cancel()
		}
	}
	if rerr := <-readErr; err == nil && rerr != nil {
		err = rerr
	}
	return err
}

// fileData is a file's bytes and their hashes.
type fileData struct {
	data     []byte
	sha, md5 string
}

// hashed hashes data; sha, when not "", is its SHA-256 already known (an
// archived message's, checked by checkHash) and is not computed again.
func hashed(data []byte, sha string) fileData {
	md := md5.Sum(data)
	f := fileData{data: data, sha: sha, md5: hex.EncodeToString(md[:])}
	if sha == "" {
		s := sha256.Sum256(data)
		f.sha = hex.EncodeToString(s[:])
	}
	return f
}

// draft is a message's production documents, worked out before they are
// numbered: depth first, each parent before its children.
type draft struct {
	docs  []draftDoc
	notes []draftNote
}

// draftDoc is one document: the message (docs[0]), an embedded message or
// an attachment.
type draftDoc struct {
	parent   int // index in docs; -1 for the message
	email    bool
	pm       *mime.Message // email documents
	perr     string        // email documents: PARSEERROR
	filename string        // cleaned; attachments and embedded messages
	ext      string
	archive  string // the archived message's sha256 (docs[0] only)
	native   fileData
	text     fileData
}

// draftNote is an exclusion, to be recorded against document doc; reason
// is given that document's native path.
type draftNote struct {
	doc    int
	reason func(native string) string
}

func (d *draft) note(doc int, reason func(native string) string) {
	d.notes = append(d.notes, draftNote{doc, reason})
}

func makeDraft(m Message) *draft {
	d := &draft{}
	pm := mime.Parse(m.Raw, &mime.Limits{KeepData: true})
	if pm.LimitHit {
		d.note(0, func(string) string {
			return "the message exceeds the MIME parser's limits (parts, depth or size): parts beyond them get no document (they stay in the native); see PARSEERROR"
		})
	}
	if m.AttachmentTextsPending || m.Unextracted != nil && m.Unextracted(pm) {
		d.note(0, func(string) string {
			return "the archive had not yet extracted the text of this message's attachments (PDF, Office, archives …): their documents' TEXT is what the MIME parse alone gives, often empty; export again once `mailvault status` shows no messages waiting for extraction (mail archived before attachment text existed is queued by `mailvault reindex`)"
		})
	}
	perr := m.ParseError
	if perr == "" {
		perr = pm.ParseError()
	}
	d.email(m.Raw, pm, perr, -1, 0, strings.ToLower(m.SHA256), m.AttachmentTexts, 0)
	return d
}

// email adds a message (the top one or an embedded one), then its
// attachments, and returns its index. texts are the archive's extracted
// texts by index in the top message's list of attachments; base is that
// index of pm's first attachment (the top message's list holds an embedded
// message's attachments right after it).
func (d *draft) email(raw []byte, pm *mime.Message, perr string, parent, depth int, archive string, texts map[int]string, base int) int {
	idx := len(d.docs)
	d.docs = append(d.docs, draftDoc{parent: parent, email: true, pm: pm, perr: perr, ext: "eml", archive: archive,
		native: hashed(raw, archive), text: hashed([]byte(emailText(pm)), "")})
	atts := pm.Attachments
	for i := 0; i < len(atts); i++ {
		a, n := atts[i], i
		if len(d.docs) >= MaxFamily {
			left := len(atts) - i
			d.note(idx, func(native string) string {
				return fmt.Sprintf("%d attachments beyond the family limit of %d documents (they stay in %s)", left, MaxFamily, native)
			})
			break
		}
		if a.Data == nil {
			d.note(idx, func(native string) string {
				return fmt.Sprintf("attachment %d (%q) could not be decoded (it stays in %s)", n, clean(a.Filename), native)
			})
			continue
		}
		if a.ContentType == "message/rfc822" || a.ContentType == "message/global" {
			inner := mime.Parse(a.Data, &mime.Limits{KeepData: true})
			// The parent's list holds the embedded message's attachments
			// right after it; they are its own children, not ours.
			skip := min(len(inner.Attachments), len(atts)-i-1)
			if depth+1 >= MaxEmbedDepth {
				inner.Attachments = nil
				d.note(idx, func(string) string {
					return fmt.Sprintf("embedded message %d deeper than %d levels: its parts stay in its native", n, MaxEmbedDepth)
				})
			}
			k := d.email(a.Data, inner, inner.ParseError(), idx, depth+1, "", texts, base+i+1)
			d.docs[k].filename = clean(a.Filename)
			i += skip
			continue
		}
		text := a.Text
		if text == "" {
			text = texts[base+i]
		}
		d.docs = append(d.docs, draftDoc{parent: idx, filename: clean(a.Filename), ext: extension(a.Filename, a.ContentType),
			native: hashed(a.Data, ""), text: hashed([]byte(text), "")})
		d.tnef(len(d.docs)-1, a)
	}
	return idx
}

// tnef adds the attachments a TNEF wrapper (winmail.dat) carries as
// documents of their own, children of the wrapper's document doc: Outlook
// put them there instead of in the MIME structure, and a reviewer needs
// each as a native. Reading TNEF is cheap (its attachments are slices of
// it); their text is what package extract makes of each.
func (d *draft) tnef(doc int, a mime.Attachment) {
	if extract.Detect(a.Filename, a.ContentType, a.Data) != "tnef" {
		return
	}
	r := extract.Extract(context.Background(), a.Filename, a.ContentType, a.Data, nil)
	for _, m := range r.Members {
		if m.Data == nil {
			continue
		}
		if len(d.docs) >= MaxFamily {
			d.note(doc, func(native string) string {
				return fmt.Sprintf("TNEF attachments beyond the family limit of %d documents (they stay in %s)", MaxFamily, native)
			})
			return
		}
		d.docs = append(d.docs, draftDoc{parent: doc, filename: clean(m.Name), ext: extension(m.Name, ""),
			native: hashed(m.Data, ""), text: hashed([]byte(m.Result.Text), "")})
	}
	if r.Status == extract.Failed || r.Status == extract.Truncated {
		reason := r.Reason
		d.note(doc, func(native string) string {
			return fmt.Sprintf("the TNEF wrapper %s could not be read in full (%s): attachments beyond that stay in it", native, reason)
		})
	}
}

// mboxDraft is a message as it goes into an mbox, but for its "From " line's
// date, which depends on the copy (dedup).
type mboxDraft struct {
	sender string
	date   time.Time // the Date: header's; zero when none
	body   []byte    // the quoted message, its final newline and the blank line
}

// mboxFields are the header fields the From_ line is made of.
func mboxFields(name string) bool {
	return strings.EqualFold(name, "From") || strings.EqualFold(name, "Date")
}

// makeMboxDraft quotes a message in mboxrd form: every line that matches
// ^>*From  gets one more ">", a final newline is added if it lacks one, then
// a blank line. Un-quoting gives back the raw bytes (plus that newline).
func makeMboxDraft(m Message) *mboxDraft {
	d := &mboxDraft{sender: "MAILER-DAEMON"}
	// Only the header is wanted (From, Date): parse no body.
	pm := mime.Parse(headerOf(m.Raw), &mime.Limits{MaxParts: 1, MaxTextBytes: 1, Fields: mboxFields})
	if len(pm.From) > 0 && pm.From[0].Addr != "" && !strings.ContainsAny(pm.From[0].Addr, " \t\r\n") {
		d.sender = pm.From[0].Addr
	}
	d.date = pm.Date
	d.body = append(mboxrdQuote(m.Raw), '\n')
	return d
}

var fromSpace = []byte("From ")

// mboxrdQuote returns raw with one more ">" before every line that matches
// ^>*From , and a final newline if it has none. It looks for "From " with
// bytes.Index rather than going line by line: most messages have no such
// line, and then it is one copy (the line loop was a fifth of an mbox
// export's CPU).
func mboxrdQuote(raw []byte) []byte {
	out := make([]byte, 0, len(raw)+len(raw)/64+2)
	rest, lineStart := raw, true // lineStart: rest begins a line
	for {
		i := bytes.Index(rest, fromSpace)
		if i < 0 {
			break
		}
		j := i // back over the ">"s before it, to where its line would begin
		for j > 0 && rest[j-1] == '>' {
			j--
		}
		if j == 0 && lineStart || j > 0 && rest[j-1] == '\n' {
			out = append(out, rest[:j]...)
			out = append(out, '>')
			out = append(out, rest[j:i+len(fromSpace)]...)
		} else {
			out = append(out, rest[:i+len(fromSpace)]...)
		}
		rest, lineStart = rest[i+len(fromSpace):], false // "From " ends mid-line
	}
	out = append(out, rest...)
	if !bytes.HasSuffix(raw, []byte("\n")) {
		out = append(out, '\n')
	}
	return out
}
