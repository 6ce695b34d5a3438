package extract

import (
	"bytes"
	"unicode/utf16"
)

// Legacy Office (Word 97-2003 .doc, Excel .xls, PowerPoint .ppt) is not
// extracted: Detect names the format and Extract reports it Unsupported
// ("doc", "xls", "ppt"), which status counts. Why: the pure-Go readers
// there are (github.com/extrame/xls, github.com/shakinm/xlsReader for XLS;
// nothing maintained for DOC or PPT beyond the OLE container reader
// github.com/richardlehane/mscfb) are unmaintained or partial, and a DOC
// reader of our own (the WordDocument stream's piece table, CP1252 and
// UTF-16 pieces, the FIB's encryption flag) is a project of its own that
// did not fit in issue 15's time. Mail with these attachments stays
// searchable by the attachment's name.
//
// What this file does hold is the one thing about OLE files the OOXML
// readers need: Office saves a password-protected .docx/.xlsx/.pptx as an
// OLE compound file with the streams EncryptionInfo and EncryptedPackage
// (MS-OFFCRYPTO 2.3.4), so such a file must be reported encrypted, not
// corrupt.

// oleMagic starts every OLE compound file.
var oleMagic = []byte{0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1}

var oleEncryptedPackage = utf16le("EncryptedPackage")

// oleIsEncryptedPackage reports whether an OLE file holds an
// EncryptedPackage stream. Directory entries store names as UTF-16LE in the
// clear, so finding the name is enough without walking the FAT: a false
// positive needs a stream whose content spells the name in UTF-16, and
// costs only a wrong reason on a file that is not OOXML anyway.
func oleIsEncryptedPackage(data []byte) bool {
	return bytes.HasPrefix(data, oleMagic) && bytes.Contains(data, oleEncryptedPackage)
}

func utf16le(s string) []byte {
	var b []byte
	for _, u := range utf16.Encode([]rune(s)) {
		b = append(b, byte(u), byte(u>>8))
	}
	return b
}
