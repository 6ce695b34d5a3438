package extract

import (
	"archive/zip"
	"bytes"
	"errors"
	"io"
	"strings"
)

// Detect names data's format: by its content first (magic numbers, and for
// a ZIP the members that make it an Office or OpenDocument file), then by
// the media type and the file name's extension, since senders label
// attachments wrongly (application/octet-stream most of all) far more often
// than a file's first bytes lie. "" when nothing says.
func Detect(name, contentType string, data []byte) string {
	ct := strings.ToLower(strings.TrimSpace(contentType))
	x := ext(name)
	head := data[:min(len(data), 512)]
	switch {
	case bytes.HasPrefix(head, []byte("%PDF-")):
		return "pdf"
	case bytes.HasPrefix(head, []byte("PK\x03\x04")) || bytes.HasPrefix(head, []byte("PK\x05\x06")):
		return zipKind(data, ct, x)
	case bytes.HasPrefix(head, []byte("{\\rtf")):
		return "rtf"
	case bytes.HasPrefix(head, []byte{0x78, 0x9f, 0x3e, 0x22}):
		return "tnef"
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return "gzip"
	case bytes.HasPrefix(head, []byte{0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1}):
		// An OLE compound file: Word, Excel, PowerPoint, Outlook .msg.
		switch {
		case x == ".doc" || x == ".dot" || ct == "application/msword":
			return "doc"
		case x == ".xls" || x == ".xlt" || ct == "application/vnd.ms-excel":
			return "xls"
		case x == ".ppt" || x == ".pps" || ct == "application/vnd.ms-powerpoint":
			return "ppt"
		case x == ".msg" || ct == "application/vnd.ms-outlook":
			return "msg"
		case x == ".docx" || x == ".xlsx" || x == ".pptx":
			// A password-protected OOXML file is an OLE container
			// (EncryptionInfo + EncryptedPackage): its extractor reports
			// it encrypted rather than "ole" unsupported.
			return x[1:]
		}
		return "ole"
	case len(data) >= 262 && bytes.Equal(data[257:262], []byte("ustar")):
		return "tar"
	case imageMagic(head) != "":
		return imageMagic(head)
	}
	if f := imageType(ct, ""); f != "" {
		return f
	}
	switch ct {
	case "application/pdf", "application/x-pdf":
		return "pdf"
	case "application/rtf", "text/rtf":
		return "rtf"
	case "application/ms-tnef", "application/vnd.ms-tnef":
		return "tnef"
	case "application/zip", "application/x-zip-compressed":
		return "zip"
	case "application/gzip", "application/x-gzip":
		return "gzip"
	case "application/x-tar":
		return "tar"
	case "application/xml", "text/xml":
		return "xml"
	case "text/html", "application/xhtml+xml":
		return "html"
	case "text/plain", "text/csv", "text/tab-separated-values", "text/markdown", "application/json", "application/csv":
		return "text"
	case "text/calendar", "application/ics":
		return "ics"
	case "text/vcard", "text/x-vcard", "text/directory":
		return "vcf"
	}
	switch x {
	case ".pdf":
		return "pdf"
	case ".rtf":
		return "rtf"
	case ".dat":
		if strings.EqualFold(name, "winmail.dat") {
			return "tnef"
		}
	case ".zip":
		return "zip"
	case ".gz", ".tgz":
		return "gzip"
	case ".tar":
		return "tar"
	case ".xml":
		return "xml"
	case ".htm", ".html", ".xhtml":
		return "html"
	case ".ics", ".ifb":
		return "ics"
	case ".vcf", ".vcard":
		return "vcf"
	case ".txt", ".text", ".csv", ".tsv", ".md", ".log", ".json", ".yaml", ".yml", ".ini", ".cfg", ".conf":
		return "text"
	}
	if f := imageType("", x); f != "" {
		return f
	}
	if strings.HasSuffix(ct, "+xml") {
		return "xml"
	}
	return ""
}

// zipKind tells an Office Open XML or OpenDocument file from a plain ZIP by
// its members (what the formats themselves define), falling back to the
// name for a ZIP whose directory cannot be read.
//
// archive/zip's NewReader reads every directory entry into memory, so a
// directory claiming more entries than any Office file has is not given to
// it (a 64 MiB zip of empty entries is 1.4 million of them): such a zip is
// a zip.
func zipKind(data []byte, ct, x string) string {
	var zr *zip.Reader
	n, _ := zipClaimedEntries(data) // a bound also without an end record
	err := errors.New("too many entries for an office file")
	if n <= maxOfficeEntries {
		zr, err = zip.NewReader(bytes.NewReader(data), int64(len(data)))
	}
	if err != nil {
		switch x {
		case ".docx", ".xlsx", ".pptx", ".odt", ".ods", ".odp":
			return x[1:]
		}
		return "zip"
	}
	var contentTypes bool
	var kind string
	for i, f := range zr.File {
		if i >= 64 {
			break // the marker members come first in every file seen
		}
		switch {
		case f.Name == "mimetype" && f.Method == zip.Store && f.UncompressedSize64 < 128:
			if k := odfKind(f); k != "" {
				return k
			}
		case f.Name == "[Content_Types].xml":
			contentTypes = true
		case kind == "" && strings.HasPrefix(f.Name, "word/"):
			kind = "docx"
		case kind == "" && strings.HasPrefix(f.Name, "xl/"):
			kind = "xlsx"
		case kind == "" && strings.HasPrefix(f.Name, "ppt/"):
			kind = "pptx"
		}
	}
	if contentTypes && kind != "" {
		return kind
	}
	return "zip"
}

// maxOfficeEntries bounds the directory zipKind reads: far more parts than
// any Office or OpenDocument file has.
const maxOfficeEntries = 65536

// odfKind reads an OpenDocument file's mimetype member.
func odfKind(f *zip.File) string {
	rc, err := f.Open()
	if err != nil {
		return ""
	}
	defer rc.Close()
	var b [128]byte
	n, _ := io.ReadFull(rc, b[:])
	switch strings.TrimSpace(string(b[:n])) {
	case "application/vnd.oasis.opendocument.text", "application/vnd.oasis.opendocument.text-template":
		return "odt"
	case "application/vnd.oasis.opendocument.spreadsheet", "application/vnd.oasis.opendocument.spreadsheet-template":
		return "ods"
	case "application/vnd.oasis.opendocument.presentation", "application/vnd.oasis.opendocument.presentation-template":
		return "odp"
	}
	return ""
}
