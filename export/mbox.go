package export

import (
	"bytes"
	"time"
)

// mboxMessage appends a message, quoted by makeMboxDraft, to messages.mbox
// after its "From " line: the sender, and the copy's INTERNALDATE (else the
// Date: header's, else the epoch).
func (w *writer) mboxMessage(d *mboxDraft, occs []Occurrence) error {
	if _, err := w.control(); err != nil {
		return err
	}
	w.man.Counts.Emails++
	when := d.date
	if len(occs) > 0 && !occs[0].InternalDate.IsZero() {
		when = occs[0].InternalDate
	}
	if when.IsZero() {
		when = time.Unix(0, 0)
	}
	w.mbox.WriteString("From " + d.sender + " " + when.UTC().Format(time.ANSIC) + "\n")
	_, err := w.mbox.Write(d.body)
	return err
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
