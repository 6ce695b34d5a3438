package mailfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

var (
	// ErrNoMailbox: a directory holds no Maildir and no mbox file.
	ErrNoMailbox = errors.New("no Maildir (cur/ new/ tmp/) or mbox file found")
	// ErrNotMail: a regular file is neither an mbox nor a message.
	ErrNotMail = errors.New("not an mbox file or a message")
	// ErrDuplicateName: two sources in one tree map to the same mailbox name.
	ErrDuplicateName = errors.New("two sources map to one mailbox name")
)

// MaxMessageBytes is the default limit on one message's size (Mailbox.MaxBytes).
const MaxMessageBytes = 256 << 20

// maxTreeDepth bounds the directory tree walk of Discover.
const maxTreeDepth = 64

// Kind is the on-disk format of a mailbox.
type Kind int

const (
	KindMaildir Kind = iota // a Maildir directory (cur/ new/ tmp/)
	KindMbox                // an mbox file (mboxrd/mboxo)
	KindMessage             // a single message file (.eml, .emlx); Walk yields one message
	KindLoose               // a directory of .eml/.emlx files (loose.go)
	KindTakeout             // a Gmail Takeout mbox: messages name their label mailboxes (takeout.go)
	KindPST                 // an Outlook .pst/.ost, read through readpst (pst.go); Walk refuses it
)

func (k Kind) String() string {
	switch k {
	case KindMaildir:
		return "maildir"
	case KindMbox:
		return "mbox"
	case KindMessage:
		return "message"
	case KindLoose:
		return "loose"
	case KindTakeout:
		return "takeout"
	case KindPST:
		return "pst"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Mailbox is one mailbox found by Discover. It is a plain value: Walk and
// Count only read the files.
type Mailbox struct {
	// Name is the mailbox name, "/"-separated: "INBOX", "Sent",
	// "Archive/2019"; for mbox the file base name without ".mbox", or the
	// override. For KindTakeout and KindPST it is the prefix of the
	// mailboxes inside ("" for none).
	Name string
	Path string // the Maildir directory or the file
	Kind Kind
	// MaxBytes limits one message's size; larger messages are reported to
	// onErr and skipped. 0 means MaxMessageBytes.
	MaxBytes int64
	// Note is a remark about the whole mailbox, for the import's notes (a
	// loose mailbox's .partial.emlx files); "" mostly.
	Note string

	deep bool // KindLoose: an Apple Mail X.mbox, message files anywhere below Path
}

func (m Mailbox) maxBytes() int64 {
	if m.MaxBytes > 0 {
		return m.MaxBytes
	}
	return MaxMessageBytes
}

// Message is one message read from a file.
type Message struct {
	// Raw is the exact bytes of the message (for mbox: without the From_ line,
	// with one level of mboxrd >From quoting removed). Freshly allocated.
	Raw []byte
	// Source locates the message for humans: a file path, or "path:offset N".
	Source string
	// Flags are IMAP flags (\Seen, \Answered, \Flagged, \Deleted, \Draft,
	// $Forwarded, keywords), nil when there are none.
	Flags []string
	// InternalDate is the Maildir file's mtime or the mbox From_ line date;
	// zero when unknown.
	InternalDate time.Time
	// Note is non-empty when the reader had to guess (truncated mbox tail,
	// no header terminator, ...).
	Note string
	// Mailboxes are the mailboxes a KindTakeout message is in (from its
	// X-Gmail-Labels, with the Takeout mailbox's prefix); nil for the other
	// kinds, whose messages are in their Mailbox.
	Mailboxes []string
}

// Options tune Discover.
type Options struct {
	// Mailbox is the override: the name of a single mailbox, or the prefix
	// of a tree's (and of a Takeout's label mailboxes).
	Mailbox string
	// Takeout reads every mbox found as a Gmail Takeout mbox, also when its
	// first message has no X-Gmail-Labels header (detection looks there).
	Takeout bool
	// NoTakeout reads every mbox as a plain mbox (one mailbox), also when
	// its first message has X-Gmail-Labels. It wins over Takeout.
	NoTakeout bool
}

// Discover finds the mailboxes under path; see the package doc for the
// layouts recognized and how they are named. If override is not empty, a
// single mailbox is named override, and in a tree the root is override and
// the others override + "/" + their name. The result is sorted by name, the
// root first.
func Discover(path, override string) ([]Mailbox, error) {
	return DiscoverOptions(path, Options{Mailbox: override})
}

// DiscoverOptions is Discover with options.
func DiscoverOptions(path string, o Options) ([]Mailbox, error) {
	out, err := discover(path, o.Mailbox)
	if err != nil {
		return nil, err
	}
	// An mbox whose first message carries X-Gmail-Labels is a Takeout.
	for i, m := range out {
		if m.Kind == KindMbox && !o.NoTakeout && (o.Takeout || isTakeout(m.Path)) {
			out[i].Kind = KindTakeout
			out[i].Name = o.Mailbox
		}
	}
	return out, nil
}

func discover(path, override string) ([]Mailbox, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, importErr(path, err)
	}
	if fi.Mode().IsRegular() {
		kind, err := sniffFile(path)
		if err != nil {
			return nil, importErr(path, err)
		}
		name := override
		if name == "" {
			switch kind {
			case KindMbox:
				name = mboxName(filepath.Base(path))
			case KindPST:
				// The PST's folders are named as they are; a name given
				// here prefixes them.
			default:
				name = "INBOX"
			}
		}
		return []Mailbox{{Name: name, Path: path, Kind: kind}}, nil
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("import %q: not a directory or regular file", path)
	}

	d := discoverer{root: path, override: override, byName: map[string]string{}}
	apple := false
	isMD, err := isMaildir(path)
	if err != nil {
		return nil, importErr(path, err)
	}
	if isMD {
		rootName := override
		if rootName == "" {
			rootName = "INBOX"
			if n, ok := maildirPPSelf(path); ok {
				rootName = n
			}
		}
		d.rootName = rootName
		if err := d.add(Mailbox{Name: rootName, Path: path, Kind: KindMaildir}); err != nil {
			return nil, err
		}
	} else if base := filepath.Base(filepath.Clean(path)); strings.HasSuffix(base, ".mbox") {
		// Apple Mail export: X.mbox/mbox; Apple Mail's own store: X.mbox/…/*.emlx.
		name := override
		if name == "" {
			name = strings.TrimSuffix(base, ".mbox")
		}
		if fi, err := os.Stat(filepath.Join(path, "mbox")); err == nil && fi.Mode().IsRegular() {
			d.rootName = name
			if err := d.add(Mailbox{Name: name, Path: filepath.Join(path, "mbox"), Kind: KindMbox}); err != nil {
				return nil, err
			}
		} else if appleMailbox(path) {
			d.rootName = name
			if err := d.addLoose(Mailbox{Name: name, Path: path, Kind: KindLoose, deep: true}); err != nil {
				return nil, err
			}
			apple = true
		}
	}
	if err := d.walk(path, "", isMD, apple, []os.FileInfo{fi}); err != nil {
		return nil, err
	}
	if len(d.out) == 0 {
		hint := "point at a Maildir, a Maildir++ root, a directory of Maildirs, .eml or .emlx files, or an mbox file"
		if b := filepath.Base(filepath.Clean(path)); b == "cur" || b == "new" || b == "tmp" {
			hint = "this looks like the " + b + "/ of a Maildir: point at its parent"
		}
		return nil, fmt.Errorf("import %q: %w (%s)", path, ErrNoMailbox, hint)
	}
	root := d.rootName
	sort.SliceStable(d.out, func(i, j int) bool {
		a, b := d.out[i].Name, d.out[j].Name
		if (a == root) != (b == root) {
			return a == root
		}
		return a < b
	})
	return d.out, nil
}

// importErr words an error about the path the user gave.
func importErr(path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Path == path {
		err = pe.Err
	}
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("import %q: %w (run as a user that can read it)", path, err)
	}
	return fmt.Errorf("import %q: %w", path, err)
}

type discoverer struct {
	root     string
	override string
	rootName string
	out      []Mailbox
	byName   map[string]string // name → path, to catch duplicates
}

func (d *discoverer) add(m Mailbox) error {
	if prev, ok := d.byName[m.Name]; ok {
		return fmt.Errorf("import %q: %w: %q and %q are both %q (import them separately with --mailbox)",
			d.root, ErrDuplicateName, prev, m.Path, m.Name)
	}
	d.byName[m.Name] = m.Path
	d.out = append(d.out, m)
	return nil
}

// name joins the override prefix and a relative name.
func (d *discoverer) name(rel string) string {
	if d.override == "" {
		return rel
	}
	return d.override + "/" + rel
}

// walk searches dir (relative name rel, "" for the path given) for mailboxes.
// isMD says dir is a Maildir (already added by the caller). ancestors are the
// directories on the way down, to cut symlink loops.
func (d *discoverer) walk(dir, rel string, isMD, inApple bool, ancestors []os.FileInfo) error {
	if len(ancestors) > maxTreeDepth {
		return nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("import %q: %w", d.root, err)
	}
	// Loose message files directly in dir make it a mailbox, named like a
	// Maildir folder would be; inside an Apple Mail X.mbox they belong to it.
	if !isMD && !inApple && hasLooseFiles(entries) {
		name := d.name(rel)
		if rel == "" {
			name = orDefault(d.override, "INBOX")
			d.rootName = name
		}
		if err := d.addLoose(Mailbox{Name: name, Path: dir, Kind: KindLoose}); err != nil {
			return err
		}
	}
	join := func(a, b string) string {
		if a == "" {
			return b
		}
		return a + "/" + b
	}
	for _, e := range entries {
		n := e.Name()
		p := filepath.Join(dir, n)
		if isMD && (n == "cur" || n == "new" || n == "tmp") {
			continue
		}
		if isIndexFile(n) {
			continue
		}
		fi, err := os.Stat(p) // follows symlinks
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && e.Type()&fs.ModeSymlink != 0 {
				continue // dangling symlink in a tree: nothing to read
			}
			return fmt.Errorf("import %q: %w", d.root, err)
		}
		if fi.IsDir() {
			if loops(fi, ancestors) {
				continue
			}
			sub, err := isMaildir(p)
			if err != nil {
				return fmt.Errorf("import %q: %w", d.root, err)
			}
			var subRel string
			childApple := inApple
			if strings.HasPrefix(n, ".") {
				// Only Maildir++ folders of a Maildir; other dot-dirs are
				// private to some tool.
				if !isMD || !sub {
					continue
				}
				folder, ok := maildirPPName(n)
				if !ok {
					continue
				}
				subRel = join(rel, folder)
			} else {
				subRel = join(rel, dirName(n))
			}
			if sub {
				name := d.name(subRel)
				if err := d.add(Mailbox{Name: name, Path: p, Kind: KindMaildir}); err != nil {
					return err
				}
			} else if strings.HasSuffix(n, ".mbox") {
				if mfi, err := os.Stat(filepath.Join(p, "mbox")); err == nil && mfi.Mode().IsRegular() {
					if err := d.add(Mailbox{Name: d.name(subRel), Path: filepath.Join(p, "mbox"), Kind: KindMbox}); err != nil {
						return err
					}
				} else if appleMailbox(p) {
					if err := d.addLoose(Mailbox{Name: d.name(subRel), Path: p, Kind: KindLoose, deep: true}); err != nil {
						return err
					}
					childApple = true
				}
			}
			if err := d.walk(p, subRel, sub, childApple, append(ancestors, fi)); err != nil {
				return err
			}
			continue
		}
		if isMD || !fi.Mode().IsRegular() || strings.HasPrefix(n, ".") {
			continue
		}
		if n == "mbox" && strings.HasSuffix(filepath.Base(dir), ".mbox") {
			continue // added with its X.mbox directory
		}
		if looseKind(n) != "" {
			continue // a message of the loose mailbox dir is
		}
		if !isMboxName(n) {
			if fi.Size() == 0 {
				continue
			}
			k, err := sniffFile(p)
			if err == nil && k == KindPST {
				// A PST in a tree: its folders go below its name.
				if err := d.add(Mailbox{Name: d.name(join(rel, strings.TrimSuffix(n, filepath.Ext(n)))), Path: p, Kind: KindPST}); err != nil {
					return err
				}
				continue
			}
			if err != nil || k != KindMbox {
				continue
			}
		}
		if err := d.add(Mailbox{Name: d.name(join(rel, mboxName(n))), Path: p, Kind: KindMbox}); err != nil {
			return err
		}
	}
	return nil
}

func orDefault(o, def string) string {
	if o != "" {
		return o
	}
	return def
}

// addLoose adds a loose mailbox with its note.
func (d *discoverer) addLoose(m Mailbox) error {
	files, err := listLoose(m.Path, m.deep)
	if err != nil {
		return fmt.Errorf("import %q: %w", d.root, err)
	}
	m.Note = looseSummary(files)
	return d.add(m)
}

func loops(fi os.FileInfo, ancestors []os.FileInfo) bool {
	for _, a := range ancestors {
		if os.SameFile(fi, a) {
			return true
		}
	}
	return false
}

// isMaildir reports whether dir has at least two of cur/, new/ and tmp/.
func isMaildir(dir string) (bool, error) {
	n := 0
	for _, s := range []string{"cur", "new", "tmp"} {
		fi, err := os.Stat(filepath.Join(dir, s))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return false, err
		}
		if fi.IsDir() {
			n++
		}
	}
	return n >= 2, nil
}

// maildirPPSelf names a Maildir++ folder given directly (".Sent" whose parent
// is a Maildir).
func maildirPPSelf(dir string) (string, bool) {
	clean := filepath.Clean(dir)
	base := filepath.Base(clean)
	if !strings.HasPrefix(base, ".") || base == "." || base == ".." {
		return "", false
	}
	if md, err := isMaildir(filepath.Dir(clean)); err != nil || !md {
		return "", false
	}
	return maildirPPName(base)
}

// maildirPPName turns a Maildir++ folder directory name (".Archive.2019")
// into a mailbox name ("Archive/2019"), decoding modified UTF-7.
func maildirPPName(dirname string) (string, bool) {
	parts := strings.Split(strings.TrimPrefix(dirname, "."), ".")
	for i, p := range parts {
		if p == "" {
			return "", false
		}
		if s, ok := decodeMUTF7(p); ok {
			parts[i] = s
		}
	}
	return strings.Join(parts, "/"), true
}

// dirName strips the Thunderbird ".sbd" and Apple Mail ".mbox" directory
// suffixes from a path component.
func dirName(n string) string {
	for _, suf := range []string{".sbd", ".mbox"} {
		if s, ok := strings.CutSuffix(n, suf); ok && s != "" {
			return s
		}
	}
	return n
}

func isMboxName(n string) bool {
	l := strings.ToLower(n)
	for _, suf := range []string{".gz", ".bz2"} {
		l = strings.TrimSuffix(l, suf)
	}
	return strings.HasSuffix(l, ".mbox")
}

// mboxName is the mailbox name of an mbox file: the base name without
// ".mbox" (and a compression suffix before it).
func mboxName(base string) string {
	n := base
	l := strings.ToLower(n)
	for _, suf := range []string{".gz", ".bz2"} {
		if strings.HasSuffix(l, suf) && strings.HasSuffix(l[:len(l)-len(suf)], ".mbox") {
			n, l = n[:len(n)-len(suf)], l[:len(l)-len(suf)]
		}
	}
	if strings.HasSuffix(l, ".mbox") && len(n) > len(".mbox") {
		n = n[:len(n)-len(".mbox")]
	}
	return n
}

// isIndexFile reports files that Dovecot, Courier, mbsync, Thunderbird and
// friends keep beside mail, skipped silently.
func isIndexFile(n string) bool {
	if strings.HasPrefix(n, ".") {
		return false // dotfiles and dot-dirs are decided by the caller
	}
	l := strings.ToLower(n)
	for _, p := range []string{"dovecot", "courierimap", "courierpop3dsizelist"} {
		if strings.HasPrefix(l, p) {
			return true
		}
	}
	switch l {
	case "maildirfolder", "maildirsize", "subscriptions", "msgfilterrules.dat", "popstate.dat":
		return true
	}
	return strings.HasSuffix(l, ".msf")
}

// sniffFile decides whether a regular file is an mbox or a single message.
func sniffFile(path string) (Kind, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	r, _, err := decompressor(f)
	if err != nil {
		return 0, err
	}
	head := make([]byte, 4096)
	n, err := io.ReadFull(r, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return 0, err
	}
	head = head[:n]
	if bytes.HasPrefix(head, pstMagic) {
		return KindPST, nil
	}
	if k := looseKind(filepath.Base(path)); k == "emlx" || k == "partial" {
		return KindMessage, nil // Walk parses the byte count and plist
	}
	if isMboxName(filepath.Base(path)) || startsWithFromLine(head) {
		return KindMbox, nil
	}
	if len(head) == 0 {
		if strings.EqualFold(filepath.Ext(path), ".eml") {
			return KindMessage, nil // Walk reports it as empty
		}
		return KindMbox, nil // an empty mbox: zero messages
	}
	if why := notMail(head); why != "" {
		return 0, fmt.Errorf("%w: %s", ErrNotMail, why)
	}
	return KindMessage, nil
}

// startsWithFromLine: "From " at the start, after optional blank lines.
func startsWithFromLine(b []byte) bool {
	for {
		switch {
		case len(b) > 0 && b[0] == '\n':
			b = b[1:]
		case len(b) > 1 && b[0] == '\r' && b[1] == '\n':
			b = b[2:]
		default:
			return hasFromPrefix(b)
		}
	}
}

// Count returns the number of messages in m quickly, for progress: Maildir
// files in cur/ and new/ (without reading them), mbox From_ separators (plus
// leading text before the first one). Walk may yield fewer when it reports
// files or messages to onErr.
func Count(m Mailbox) (int, error) {
	switch m.Kind {
	case KindMaildir:
		names, err := listMaildir(m.Path)
		if err != nil {
			return 0, err
		}
		return len(names), nil
	case KindMbox:
		f, err := os.Open(m.Path)
		if err != nil {
			return 0, fmt.Errorf("count %q: %w", m.Path, err)
		}
		defer f.Close()
		r, _, err := decompressor(f)
		if err != nil {
			return 0, fmt.Errorf("count %q: %w", m.Path, err)
		}
		n, err := scanMbox(r, m.Path, m.maxBytes(), nil, nil)
		if err != nil {
			return n, fmt.Errorf("count %q: %w", m.Path, err)
		}
		return n, nil
	case KindMessage:
		return 1, nil
	case KindLoose:
		files, err := listLoose(m.Path, m.deep)
		return len(files), err
	case KindTakeout:
		return Count(Mailbox{Path: m.Path, Kind: KindMbox, MaxBytes: m.MaxBytes})
	case KindPST:
		return 0, nil // known once readpst has converted it
	}
	return 0, fmt.Errorf("count %q: unknown kind %v", m.Path, m.Kind)
}

// Walk calls fn for each message of m in a stable order (Maildir: cur/ and
// new/ merged, sorted by the unique part of the file name; mbox: file order).
// Problems with one file or message go to onErr as one-line errors naming the
// file (and offset), and the walk goes on; with a nil onErr the first such
// problem ends the walk and is returned. An error from fn ends the walk and is
// returned as is. Errors that make going on impossible (the Maildir or mbox
// cannot be opened, a read error mid-mbox) are returned.
func (m Mailbox) Walk(fn func(Message) error, onErr func(error)) error {
	var first error
	report := onErr
	if report == nil {
		report = func(err error) {
			if first == nil {
				first = err
			}
		}
	}
	stop := func() bool { return first != nil }
	var err error
	switch m.Kind {
	case KindMaildir:
		err = m.walkMaildir(fn, report, stop)
	case KindMbox:
		err = m.walkMbox(fn, report, stop)
	case KindLoose:
		err = m.walkLoose(fn, report, stop)
	case KindTakeout:
		err = m.walkTakeout(fn, report, stop)
	case KindPST:
		err = fmt.Errorf("walk %q: %w", m.Path, ErrPSTWalk)
	case KindMessage:
		msg, rerr := readLooseFile(m.Path, looseKind(filepath.Base(m.Path)), m.maxBytes())
		if rerr != nil {
			report(rerr)
		} else {
			err = fn(msg)
		}
	default:
		err = fmt.Errorf("walk %q: unknown kind %v", m.Path, m.Kind)
	}
	if err == nil && first != nil {
		err = first
	}
	return err
}
