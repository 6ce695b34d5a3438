package export

import (
	"bytes"
	"strings"
	"time"

	"mailvault/indexer/mime"
)

// mboxMessage appends a message to messages.mbox in mboxrd form: a
// "From " line, then the raw message with every line that matches
// ^>*From  given one more ">", a final newline if it lacks one, and a blank
// line. Un-quoting gives back the raw bytes (plus that final newline).
func (w *writer) mboxMessage(m Message, occs []Occurrence) error {
	if _, err := w.control(); err != nil {
		return err
	}
	w.man.Counts.Emails++
	sender := "MAILER-DAEMON"
	// Only the header is wanted (From, Date): parse no body.
	pm := mime.Parse(headerOf(m.Raw), &mime.Limits{MaxParts: 1, MaxTextBytes: 1})
	if len(pm.From) > 0 && pm.From[0].Addr != "" && !strings.ContainsAny(pm.From[0].Addr, " \t\r\n") {
		sender = pm.From[0].Addr
	}
	when := pm.Date
	if len(occs) > 0 && !occs[0].InternalDate.IsZero() {
		when = occs[0].InternalDate
	}
	if when.IsZero() {
		when = time.Unix(0, 0)
	}
	mb := w.mbox
	mb.WriteString("From " + sender + " " + when.UTC().Format(time.ANSIC) + "\n")
	raw := m.Raw
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line = raw[:i+1]
		}
		raw = raw[len(line):]
		if bytes.HasPrefix(bytes.TrimLeft(line, ">"), []byte("From ")) {
			mb.WriteString(">")
		}
		mb.Write(line)
	}
	if !bytes.HasSuffix(m.Raw, []byte("\n")) {
		mb.WriteString("\n")
	}
	mb.WriteString("\n")
	return nil
}

// headerOf is raw up to and including the blank line that ends its header
// (all of raw when there is none).
func headerOf(raw []byte) []byte {
	for i := 0; i < len(raw); {
		j := bytes.IndexByte(raw[i:], '\n')
		if j < 0 {
			break
		}
		line := raw[i : i+j]
		i += j + 1
		if len(line) == 0 || len(line) == 1 && line[0] == '\r' {
			return raw[:i]
		}
	}
	return raw
}
