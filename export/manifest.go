package export

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"
)

// finish writes, in this order, manifest.json (the file list streamed from
// the working file), custody.txt (whose last line states manifest.json's
// sha256) and SHA256SUMS (every file, custody.txt and manifest.json
// included), each through a temporary name and a rename, then removes the
// working directory. Until SHA256SUMS exists the export is incomplete.
func (w *writer) finish() error {
	if w.pool != nil {
		if err := w.pool.wait(); err != nil {
			return err
		}
	}
	if err := w.fbuf.Flush(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if err := w.files.Close(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	w.files = nil
	w.man.Finished = time.Now().UTC()

	head, err := json.MarshalIndent(w.man, "", "  ")
	if err != nil {
		return fmt.Errorf("export: manifest: %w", err)
	}
	head = bytes.TrimSuffix(bytes.TrimSpace(head), []byte("}"))
	head = bytes.TrimRight(head, " \n")
	mf, err := os.Create(w.path(tmpDir + "/manifest.json"))
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	bw := bufio.NewWriter(mf)
	msum := sha256.New()
	out := func(b []byte) { bw.Write(b); msum.Write(b) }
	out(head)
	out([]byte(",\n  \"files\": ["))
	lines, err := os.Open(w.path(tmpDir + "/files.jsonl"))
	if err != nil {
		mf.Close()
		return fmt.Errorf("export: %w", err)
	}
	sc := bufio.NewScanner(lines)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for first := true; sc.Scan(); first = false {
		if !first {
			out([]byte(","))
		}
		out([]byte("\n    "))
		out(sc.Bytes())
	}
	lines.Close()
	if err := sc.Err(); err != nil {
		mf.Close()
		return fmt.Errorf("export: manifest: %w", err)
	}
	out([]byte("\n  ]\n}\n"))
	if err := bw.Flush(); err != nil {
		mf.Close()
		return fmt.Errorf("export: manifest: %w", err)
	}
	if err := mf.Close(); err != nil {
		return fmt.Errorf("export: manifest: %w", err)
	}
	if err := os.Rename(w.path(tmpDir+"/manifest.json"), w.path(ManifestName)); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	manifestSum := hex.EncodeToString(msum.Sum(nil))
	w.man.SHA256 = manifestSum

	custody := custodyText(w.man, manifestSum)
	cs := sha256.Sum256([]byte(custody))
	if err := os.WriteFile(w.path(CustodyName), []byte(custody), 0o644); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	fmt.Fprintf(w.sums, "%s  %s\n%x  %s\n", manifestSum, ManifestName, cs, CustodyName)
	if err := w.sums.Flush(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if err := w.sumsF.Close(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	w.sumsF = nil
	if err := os.Rename(w.path(tmpDir+"/sums"), w.path(SumsName)); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if err := os.RemoveAll(w.path(tmpDir)); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

// custodyText is the human-readable chain-of-custody report. It cannot hold
// its own hash nor be inside the manifest it describes: SHA256SUMS holds
// its hash, and its last line states the manifest's.
func custodyText(m *Manifest, manifestSum string) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	scope, _ := json.Marshal(m.Scope)
	p("CHAIN OF CUSTODY: mailvault export")
	p("")
	p("Produced by:   %s", orNone(m.By))
	p("Tool:          %s", orNone(m.Tool))
	p("Started:       %s", m.Started.Format(time.RFC3339))
	p("Finished:      %s", m.Finished.Format(time.RFC3339))
	p("Scope:         %s", scope)
	p("Format:        %s (dedup %s, load file encoding %s)", m.Format, m.Dedup, m.Encoding)
	p("Numbering:     prefix %q, start %d, width %d", m.Prefix, m.Start, m.Width)
	p("")
	c := m.Counts
	p("Messages:      %d unique, %d copies in scope", c.Messages, c.Occurrences)
	p("Documents:     %d (%d emails, %d attachments)", c.Documents, c.Emails, c.Attachments)
	p("Parse errors:  %d", c.ParseErrors)
	p("Excluded:      %d (listed in %s)", c.Excluded, ManifestName)
	p("Errors:        %d", len(m.Errors))
	p("Files:         %d, %d bytes (each with SHA-256 and MD5 in %s)", c.Files, c.Bytes, ManifestName)
	p("")
	p("Every message native is the raw message byte for byte as archived; its")
	p("SHA-256 is the archive's key of it. To check this export offline:")
	p("  sha256sum -c %s          (in this directory)", SumsName)
	p("  mailvault export verify DIR")
	p("%s holds this report's own SHA-256.", SumsName)
	p("")
	p("%s sha256: %s", ManifestName, manifestSum)
	return b.String()
}

func orNone(s string) string {
	if s == "" {
		return "(not given)"
	}
	return s
}

// ReadManifest reads dir's manifest.json.
func ReadManifest(dir string) (*Manifest, error) { return readManifest(os.DirFS(dir)) }

func readManifest(fsys fs.FS) (*Manifest, error) {
	b, err := fs.ReadFile(fsys, ManifestName)
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	return &m, nil
}
