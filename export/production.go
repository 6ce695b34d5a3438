package export

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"mailvault/indexer/mime"
)

// Fields returns the load files' fields, in their order.
func Fields() []string {
	return append([]string(nil), fieldNames[:]...)
}

const (
	fBegDoc = iota
	fEndDoc
	fBegAttach
	fEndAttach
	fParentID
	fAttachIDs
	fCustodian
	fAllCustodians
	fFrom
	fTo
	fCc
	fBcc
	fSubject
	fDateSent
	fTimeSent
	fDateReceived
	fMessageID
	fInReplyTo
	fReferences
	fFolderPath
	fIMAPURL
	fFileName
	fFileExt
	fFileSize
	fDocType
	fMD5
	fSHA256
	fNativePath
	fTextPath
	fParseError
	fProvenance
	fFlags // last: the fields before it keep their places for load-file templates made before it
	nFields
)

var fieldNames = [nFields]string{
	"BEGDOC", "ENDDOC", "BEGATTACH", "ENDATTACH", "PARENTID", "ATTACHIDS",
	"CUSTODIAN", "ALLCUSTODIANS", "FROM", "TO", "CC", "BCC", "SUBJECT",
	"DATESENT", "TIMESENT", "DATERECEIVED", "MESSAGEID", "INREPLYTO", "REFERENCES",
	"FOLDERPATH", "IMAPURL", "FILENAME", "FILEEXT", "FILESIZE", "DOCTYPE",
	"MD5HASH", "SHA256HASH", "NATIVEPATH", "TEXTPATH", "PARSEERROR",
	"PROVENANCE", "FLAGS",
}

// record is one document's load-file row.
type record [nFields]string

// family is a message with its attachments and embedded messages, numbered
// consecutively parent first. Only the rows are kept (bounded by
// MaxFamily); natives are written as they are met.
type family struct {
	msg  Message
	rows []record
	kids [][]int // children of each row
	text []File  // each row's text file
	cut  bool
}

const multiSep = "; "

// flagsValue is one copy's FLAGS: each flag it had when exported with
// when the archive first saw it so (Occurrence.Flags), "\Seen
// 2026-12-01T21:42:05.123Z, \Answered 2026-12-02T08:00:00.000Z". A flag
// holds no space (an IMAP atom), so ", " and multiSep part them safely.
func flagsValue(fs []FlagSince) string {
	parts := make([]string, 0, len(fs))
	for _, f := range fs {
		v := f.Flag
		if !f.Since.IsZero() {
			v += " " + f.Since.UTC().Format("2006-01-02T15:04:05.000Z07:00")
		}
		parts = append(parts, v)
	}
	return strings.Join(parts, ", ")
}

// family writes one production family from its draft: numbers its
// documents (parent first, children right after, depth first), hands
// their natives and texts to the file pool, then writes its rows to the
// load files.
func (w *writer) family(m Message, d *draft, occs []Occurrence) error {
	fam := &family{msg: m}
	natives := make([]string, len(d.docs))
	for i := range d.docs {
		doc := &d.docs[i]
		c, err := w.control()
		if err != nil {
			return err
		}
		native, text, err := w.docPaths(c, doc.ext)
		if err != nil {
			return err
		}
		natives[i] = native
		if doc.archive != "" && w.opts.Proofs != nil {
			// The archived message's proof of inclusion in the ledger,
			// named like its native.
			b, err := w.opts.Proofs.Bundle(doc.archive)
			if err != nil {
				return fmt.Errorf("export: proof of %s: %w", doc.archive, err)
			}
			if _, err := w.writeFile("PROOF/"+w.folder+"/"+c+".json", b, c); err != nil {
				return err
			}
		}
		nf, err := w.writeData(native, doc.native, c, doc.archive)
		if err != nil {
			return err
		}
		tf, err := w.writeData(text, doc.text, c, "")
		if err != nil {
			return err
		}
		fam.text = append(fam.text, tf)
		fam.rows = append(fam.rows, record{})
		fam.kids = append(fam.kids, nil)
		r := &fam.rows[i]
		r[fBegDoc], r[fEndDoc] = c, c
		r[fDocType] = "email"
		if doc.parent >= 0 {
			fam.kids[doc.parent] = append(fam.kids[doc.parent], i)
			r[fParentID] = fam.rows[doc.parent][fBegDoc]
			r[fDocType] = "attachment"
		}
		r[fFileName] = doc.filename
		r[fFileExt] = doc.ext
		r[fFileSize] = strconv.FormatInt(nf.Size, 10)
		r[fMD5], r[fSHA256] = nf.MD5, nf.SHA256
		r[fNativePath], r[fTextPath] = native, text
		if pm := doc.pm; doc.email {
			r[fFrom] = addrs(pm.From)
			r[fTo] = addrs(pm.To)
			r[fCc] = addrs(pm.Cc)
			r[fBcc] = addrs(pm.Bcc)
			r[fSubject] = pm.Subject
			if !pm.Date.IsZero() {
				r[fDateSent] = pm.Date.Format("2006-01-02")
				r[fTimeSent] = pm.Date.Format("15:04:05-07:00")
			}
			r[fMessageID] = angle(pm.MessageID)
			r[fInReplyTo] = angles(pm.InReplyTo)
			r[fReferences] = angles(pm.References)
			r[fParseError] = doc.perr
			if doc.perr != "" {
				w.man.Counts.ParseErrors++
			}
		}
	}
	for _, n := range d.notes {
		w.exclude(fam, fam.rows[n.doc][fBegDoc], n.reason(natives[n.doc]))
	}
	// Family-wide fields, now that the family is known.
	var custs, folders, urls, flags []string
	seen := map[string]bool{}
	for _, o := range occs {
		flags = append(flags, flagsValue(o.Flags))
		if !seen[o.Account] {
			seen[o.Account] = true
			custs = append(custs, o.Account)
		}
		folders = append(folders, o.Account+"/"+o.Mailbox)
		urls = append(urls, o.URL)
	}
	var cust, received string
	if len(occs) > 0 {
		cust = occs[0].Account
		if !occs[0].InternalDate.IsZero() {
			received = occs[0].InternalDate.Format(time.RFC3339)
		}
	}
	beg, end := fam.rows[0][fBegDoc], fam.rows[len(fam.rows)-1][fBegDoc]
	for i := range fam.rows {
		r := &fam.rows[i]
		r[fBegAttach], r[fEndAttach] = beg, end
		r[fProvenance] = m.Provenance // family-wide, like CUSTODIAN
		var ids []string
		for _, k := range fam.kids[i] {
			ids = append(ids, fam.rows[k][fBegDoc])
		}
		r[fAttachIDs] = strings.Join(ids, multiSep)
		r[fCustodian] = cust
		r[fAllCustodians] = strings.Join(custs, multiSep)
		r[fFolderPath] = strings.Join(folders, multiSep)
		r[fIMAPURL] = strings.Join(urls, multiSep)
		r[fFlags] = strings.Join(flags, multiSep)
		if i == 0 {
			r[fDateReceived] = received
		}
		if err := w.lf.row(w, r, fam, i); err != nil {
			return err
		}
	}
	w.man.Counts.Emails++
	w.man.Counts.Attachments += len(fam.rows) - 1
	return nil
}

// FolderSize is how many documents share a folder of NATIVES and of TEXT:
// NATIVES/0001/ holds the first 1,000 documents, NATIVES/0002/ the next,
// as productions are laid out, so that no folder grows to hundreds of
// thousands of files (which file managers, review tools' loaders and
// file systems all handle badly; on ext4 creating files in one huge
// folder is also measurably slower, docs/benchmarks.md).
const FolderSize = 1000

// docPaths gives the native's and the text's paths of the document just
// numbered c, creating its folders when it is the first in them.
func (w *writer) docPaths(c, ext string) (native, text string, err error) {
	folder := fmt.Sprintf("%04d", (w.next-1-w.opts.Start)/FolderSize+1)
	if folder != w.folder {
		for _, top := range []string{"NATIVES", "TEXT", "PROOF"} {
			if top == "PROOF" && w.opts.Proofs == nil || w.zw != nil { // a zip's entries need no folders
				continue
			}
			if err := os.Mkdir(w.path(top+"/"+folder), 0o755); err != nil && !errors.Is(err, os.ErrExist) {
				return "", "", fmt.Errorf("export: %w", err)
			}
		}
		w.folder = folder
	}
	return "NATIVES/" + folder + "/" + c + "." + ext, "TEXT/" + folder + "/" + c + ".txt", nil
}

func (w *writer) exclude(fam *family, doc, reason string) {
	w.man.Counts.Excluded++
	if len(w.man.Exclusions) < 10000 {
		w.man.Exclusions = append(w.man.Exclusions, Exclusion{DocID: doc, SHA256: strings.ToLower(fam.msg.SHA256), Reason: reason})
	}
}

// emailText is a message's extracted text: its main header lines, a blank
// line, its body text.
func emailText(pm *mime.Message) string {
	var b strings.Builder
	line := func(k, v string) {
		if v != "" {
			b.WriteString(k + ": " + v + "\n")
		}
	}
	line("From", addrs(pm.From))
	line("To", addrs(pm.To))
	line("Cc", addrs(pm.Cc))
	if !pm.Date.IsZero() {
		line("Date", pm.Date.Format(time.RFC1123Z))
	}
	line("Subject", pm.Subject)
	b.WriteString("\n")
	b.WriteString(pm.Text)
	return b.String()
}

func addrs(as []mime.Address) string {
	var out []string
	for _, a := range as {
		switch {
		case a.Name != "" && a.Addr != "":
			out = append(out, a.Name+" <"+a.Addr+">")
		case a.Addr != "":
			out = append(out, a.Addr)
		case a.Name != "":
			out = append(out, a.Name)
		}
	}
	return strings.Join(out, multiSep)
}

func angle(id string) string {
	if id == "" {
		return ""
	}
	return "<" + id + ">"
}

func angles(ids []string) string {
	var out []string
	for _, id := range ids {
		out = append(out, angle(id))
	}
	return strings.Join(out, " ")
}

// clean makes a value safe for every load file: NUL and C0 controls other
// than tab, CR and LF become U+FFFD (what XML 1.0 can carry).
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0x7f {
			return '\uFFFD'
		}
		return r
	}, s)
}

var typeExt = map[string]string{
	"application/pdf": "pdf", "text/plain": "txt", "text/html": "html", "text/csv": "csv",
	"image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "application/zip": "zip",
	"application/msword": "doc", "application/json": "json", "application/xml": "xml", "text/xml": "xml",
	"message/rfc822": "eml", "message/global": "eml", "text/calendar": "ics",
	"message/delivery-status": "txt", "application/pgp-signature": "asc", "application/pkcs7-signature": "p7s",
}

// extension is a native's file extension: the attachment's own (after the
// last "." of its last path element), lowercased, letters and digits only,
// at most 10; else one for its media type; else "bin". Never a path.
func extension(name, ctype string) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		var b strings.Builder
		for _, r := range strings.ToLower(name[i+1:]) {
			if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
				b.WriteRune(r)
			}
		}
		if e := b.String(); e != "" && len(e) <= 10 {
			return e
		}
	}
	if e, ok := typeExt[ctype]; ok {
		return e
	}
	return "bin"
}
