package mailfile

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// maildirEntry is one file of cur/ or new/.
type maildirEntry struct {
	sub    string // "cur" or "new"
	name   string // file name
	unique string // name before the info separator
}

// listMaildir lists cur/ and new/ of dir in walk order, without index files
// and dotfiles.
func listMaildir(dir string) ([]maildirEntry, error) {
	var out []maildirEntry
	missing := 0
	for _, sub := range []string{"cur", "new"} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if errors.Is(err, fs.ErrNotExist) {
			missing++
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("walk %q: %w", dir, err)
		}
		for _, e := range entries {
			n := e.Name()
			if strings.HasPrefix(n, ".") || isIndexFile(n) {
				continue
			}
			u, _ := splitInfo(n)
			out = append(out, maildirEntry{sub: sub, name: n, unique: u})
		}
	}
	if missing == 2 {
		return nil, fmt.Errorf("walk %q: not a Maildir: no cur/ or new/ directory", dir)
	}
	slices.SortFunc(out, func(a, b maildirEntry) int {
		if c := compareNatural(a.unique, b.unique); c != 0 {
			return c
		}
		if c := strings.Compare(a.name, b.name); c != 0 {
			return c
		}
		return strings.Compare(a.sub, b.sub)
	})
	return out, nil
}

// splitInfo splits a Maildir file name into its unique part and the flags
// after "2," (":2,FS" → "FS"). ':' is the separator; ';' and '!' are accepted
// before "2," as written by tools on filesystems that cannot hold ':'.
func splitInfo(name string) (unique, flags string) {
	if i := strings.IndexByte(name, ':'); i >= 0 {
		info := name[i+1:]
		if f, ok := strings.CutPrefix(info, "2,"); ok {
			return name[:i], f
		}
		return name[:i], ""
	}
	for _, sep := range []string{";2,", "!2,"} {
		if i := strings.LastIndex(name, sep); i >= 0 {
			return name[:i], name[i+len(sep):]
		}
	}
	return name, ""
}

// maildirFlags maps Maildir info letters to IMAP flags; keywords maps
// Dovecot's lowercase keyword letters (may be nil).
func maildirFlags(info string, keywords map[byte]string) []string {
	var fl []string
	for i := 0; i < len(info); i++ {
		c := info[i]
		switch c {
		case 'S':
			fl = append(fl, `\Seen`)
		case 'R':
			fl = append(fl, `\Answered`)
		case 'F':
			fl = append(fl, `\Flagged`)
		case 'T':
			fl = append(fl, `\Deleted`)
		case 'D':
			fl = append(fl, `\Draft`)
		case 'P':
			fl = append(fl, "$Forwarded")
		default:
			if kw, ok := keywords[c]; ok {
				fl = append(fl, kw)
			}
		}
	}
	return sortFlags(fl)
}

// readKeywords reads Dovecot's dovecot-keywords file ("0 $Label1" per line,
// 0 → 'a'). A missing or unreadable file gives no keywords.
func readKeywords(dir string) map[byte]string {
	f, err := os.Open(filepath.Join(dir, "dovecot-keywords"))
	if err != nil {
		return nil
	}
	defer f.Close()
	kw := map[byte]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		idx, name, ok := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		n, err := strconv.Atoi(idx)
		name = strings.TrimSpace(name)
		if !ok || err != nil || n < 0 || n >= 26 || name == "" {
			continue
		}
		kw['a'+byte(n)] = name
	}
	return kw
}

// compareNatural compares Maildir unique names with runs of digits taken as
// numbers, so "999.x" < "1000.x" and ".M9P1" < ".M10P1".
func compareNatural(a, b string) int {
	for a != "" && b != "" {
		da, db := isDigit(a[0]), isDigit(b[0])
		if da && db {
			na, ra := digitRun(a)
			nb, rb := digitRun(b)
			ta, tb := strings.TrimLeft(na, "0"), strings.TrimLeft(nb, "0")
			if len(ta) != len(tb) {
				return len(ta) - len(tb)
			}
			if c := strings.Compare(ta, tb); c != 0 {
				return c
			}
			a, b = ra, rb
			continue
		}
		if a[0] != b[0] {
			return int(a[0]) - int(b[0])
		}
		a, b = a[1:], b[1:]
	}
	return len(a) - len(b)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func digitRun(s string) (run, rest string) {
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return s[:i], s[i:]
}

// relocate finds the current path of a message that was renamed after the
// listing (flags changed, or moved from new/ to cur/), or "".
func relocate(dir string, e maildirEntry) string {
	for _, sub := range []string{"cur", "new"} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			continue
		}
		for _, x := range entries {
			if u, _ := splitInfo(x.Name()); u == e.unique {
				return filepath.Join(dir, sub, x.Name())
			}
		}
	}
	return ""
}

func (m Mailbox) walkMaildir(fn func(Message) error, report func(error), stop func() bool) error {
	entries, err := listMaildir(m.Path)
	if err != nil {
		return err
	}
	keywords := readKeywords(m.Path)
	max := m.maxBytes()
	for _, e := range entries {
		if stop() {
			return nil
		}
		path := filepath.Join(m.Path, e.sub, e.name)
		msg, err := readMessageFile(path, max)
		if errors.Is(err, fs.ErrNotExist) {
			if p := relocate(m.Path, e); p != "" && p != path {
				path = p
				msg, err = readMessageFile(path, max)
			}
		}
		if err != nil {
			report(err)
			continue
		}
		_, info := splitInfo(filepath.Base(path))
		msg.Flags = maildirFlags(info, keywords)
		if err := fn(msg); err != nil {
			return err
		}
	}
	return nil
}
