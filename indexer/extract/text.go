package extract

import (
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
)

// Plain text: members of archives and TNEF attachments that are text files
// (top-level text attachments are read by package mime, with their
// charset). Without a charset to go by, UTF-8 when the bytes are valid
// UTF-8, else Windows-1252, the most common 8-bit charset of mail's
// attachments (every byte decodes, so nothing is dropped).
func init() { register("text", textExtract) }

func textExtract(j *Job, data []byte) error {
	if utf8.Valid(data) {
		return j.Text(string(data))
	}
	if err := j.Expand(int64(len(data))); err != nil {
		return err
	}
	b, err := charmap.Windows1252.NewDecoder().Bytes(data)
	if err != nil {
		return err
	}
	return j.Text(string(b))
}
