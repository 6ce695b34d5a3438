package mailfile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Outlook PST/OST files are read through readpst (Debian package
// pst-utils, libpst), an optional external converter: no pure-Go reader is
// maintained (github.com/mooijtech/go-pst/v6, the only one served, has had
// no release since 2023 and has known attachment bugs), and libpst is.
//
// ConvertPST runs `readpst -j 0 -e -q -o DIR FILE`: readpst streams the PST item by
// item into one .eml file per message (with its attachments, recipients and
// dates as MIME), in a folder tree named after the PST folders, so neither
// readpst nor mailvault holds the PST in memory. The tree is then imported
// as loose .eml files (KindLoose), the PST's folder names as mailbox names
// below its root folder (whose name is the PST's display name, not a
// mailbox). Contacts, calendar items and notes come out as .vcf/.ics/.txt
// files and are not mail: they are counted in a note, not imported.
//
// readpst marks MIME boundaries it makes up with a random number that
// differs on every run ("--boundary-LibPST-iamunique-185667071_-_-"), so
// the same PST converted twice would give different bytes and a re-import
// would store every message again. ConvertPST replaces that number with a
// fixed one in each .eml it wrote (and dates the file by its Date header,
// for INTERNALDATE); the converted message is readpst's
// rendering either way (a PST holds no RFC 5322 bytes), now a deterministic
// one, so re-importing a PST adds nothing.

var (
	// ErrPSTWalk: a KindPST mailbox must be converted (ConvertPST) first.
	ErrPSTWalk = errors.New("a PST file is imported through readpst: convert it first")
	// ErrNoReadpst: readpst is not installed.
	ErrNoReadpst = errors.New("readpst not found: install Debian's pst-utils package (apt-get install pst-utils) to import PST/OST files")
)

// pstMagic starts every PST and OST file ("!BDN").
var pstMagic = []byte("!BDN")

// DefaultPSTTimeout bounds one readpst run.
const DefaultPSTTimeout = 2 * time.Hour

var libpstBoundary = regexp.MustCompile(`boundary-LibPST-iamunique-[0-9]+_-_-`)

// PSTResult is what ConvertPST made.
type PSTResult struct {
	Root    string // the directory to Discover: the PST's root folder
	Skipped int    // non-mail items (contacts, calendar, notes) left out
}

// ConvertPST converts the PST or OST file at path into dir (which should be
// empty and private to the caller) with readpst, bounded by timeout (0:
// DefaultPSTTimeout). readpst is looked up in PATH; a missing readpst is
// ErrNoReadpst, a file it rejects an error quoting its last lines of output.
func ConvertPST(ctx context.Context, path, dir string, timeout time.Duration) (PSTResult, error) {
	bin, err := exec.LookPath("readpst")
	if err != nil {
		return PSTResult{}, fmt.Errorf("import %q: %w", path, ErrNoReadpst)
	}
	if timeout <= 0 {
		timeout = DefaultPSTTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	abs, err := filepath.Abs(path)
	if err != nil {
		return PSTResult{}, err
	}
	var out bytes.Buffer
	// -j 0: no parallel child processes. With readpst 0.6.76's default,
	// 2 or 3 runs in 60 over the same support.pst wrote 16 of its 17
	// messages (the last one of a folder missing, exit status 0); with -j 0,
	// 60 runs in 60 wrote all 17.
	cmd := exec.CommandContext(ctx, bin, "-j", "0", "-e", "-q", "-o", dir, abs)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			return PSTResult{}, fmt.Errorf("import %q: readpst did not finish in %v (raise --pst-timeout)", path, timeout)
		}
		if ctx.Err() != nil {
			return PSTResult{}, ctx.Err()
		}
		return PSTResult{}, fmt.Errorf("import %q: readpst rejected it (%v): %s", path, err, lastLines(out.String(), 3))
	}
	var res PSTResult
	err = filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			return nil
		}
		if looseKind(e.Name()) != "eml" {
			res.Skipped++
			return nil
		}
		// A file over the message limit is reported by the import; it is
		// not read into memory here.
		if fi, err := e.Info(); err != nil || fi.Size() > MaxMessageBytes {
			return nil
		}
		return settle(p)
	})
	if err != nil {
		return PSTResult{}, fmt.Errorf("import %q: reading readpst's output: %w", path, err)
	}
	res.Root = dir
	// readpst writes DIR/<root folder name>/...: the root folder is the
	// PST's display name, not a mailbox.
	if entries, err := os.ReadDir(dir); err == nil && len(entries) == 1 && entries[0].IsDir() {
		res.Root = filepath.Join(dir, entries[0].Name())
	}
	return res, nil
}

// settle makes one converted message deterministic and dated: readpst's
// random boundary number is replaced, and the file's mtime (which the
// import takes as INTERNALDATE, as for Maildir) is set to the message's
// Date header, which readpst writes from the PST's own times; without one
// it stays the conversion time.
func settle(p string) error {
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	if libpstBoundary.Match(b) {
		b = libpstBoundary.ReplaceAll(b, []byte("boundary-LibPST-iamunique-0_-_-"))
		if err := os.WriteFile(p, b, 0o600); err != nil {
			return err
		}
	}
	if v, found, _ := headerValue(b, "Date", 200); found {
		if t, err := mail.ParseDate(strings.TrimSpace(unfold(v))); err == nil {
			return os.Chtimes(p, t, t)
		}
	}
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	if len(lines) == 1 && lines[0] == "" {
		return "no output"
	}
	return strings.Join(lines, " / ")
}
