package imapview

import (
	"fmt"
	"slices"
	"strings"

	"mailvault/indexer"
)

// delim is the view's hierarchy delimiter.
const delim = '/'

// folderName is the view's name of one mailbox epoch (see the package doc).
func folderName(e indexer.FolderEpoch) string {
	n := e.Account + string(delim) + e.Mailbox
	if !e.Current {
		n += fmt.Sprintf(";UIDVALIDITY=%d", e.UIDValidity)
	}
	return n
}

// tree is the folder list of one user at one moment: the folders by name,
// and the names of parents that are not folders (\Noselect).
type tree struct {
	names    []string // every name, folders and parents, sorted
	folders  map[string]indexer.FolderEpoch
	parents  map[string]bool
	children map[string]bool // names that have a child
}

// newTree builds the tree of epochs. A name taken twice keeps the first
// epoch (collided lists the others, for the log).
func newTree(epochs []indexer.FolderEpoch) (t *tree, collided []string) {
	t = &tree{folders: map[string]indexer.FolderEpoch{}, parents: map[string]bool{}, children: map[string]bool{}}
	for _, e := range epochs {
		n := folderName(e)
		if _, dup := t.folders[n]; dup {
			collided = append(collided, n)
			continue
		}
		t.folders[n] = e
	}
	for n := range t.folders {
		for i := strings.IndexRune(n, delim); i >= 0; {
			parent := n[:i]
			t.children[parent] = true
			if _, isFolder := t.folders[parent]; !isFolder {
				t.parents[parent] = true
			}
			j := strings.IndexRune(n[i+1:], delim)
			if j < 0 {
				break
			}
			i += 1 + j
		}
	}
	for n := range t.folders {
		t.names = append(t.names, n)
	}
	for n := range t.parents {
		t.names = append(t.names, n)
	}
	slices.Sort(t.names)
	return t, collided
}

// lookup finds a folder by the name a client sent. INBOX is not a folder of
// the view; names are otherwise case-sensitive, as archived.
func (t *tree) lookup(name string) (indexer.FolderEpoch, bool) {
	e, ok := t.folders[name]
	return e, ok
}

// matchList says whether LIST's reference and pattern match name, as
// imapserver.MatchList does (RFC 3501 section 6.3.8: "*" matches anything,
// "%" anything but the delimiter; a pattern that starts with the
// delimiter ignores the reference). go-imap's matcher backtracks: each
// wildcard retries the rest at every position, so a pattern of 30 "*"
// and a letter takes exponential time on one folder name, and a user could
// keep a core busy for good with one LIST. This one walks the name once,
// keeping the set of pattern positions reached: O(len(name) x
// len(pattern)) whatever the pattern.
func matchList(name, ref, pattern string) bool {
	d := string(delim)
	if strings.HasPrefix(pattern, d) {
		ref, pattern = "", pattern[1:]
	}
	if ref != "" {
		if !strings.HasSuffix(ref, d) {
			ref += d
		}
		if !strings.HasPrefix(name, ref) {
			return false
		}
		name = name[len(ref):]
	}
	wild := func(c byte) bool { return c == '*' || c == '%' }
	// at[j]: pattern[:j] matches the name read so far. A wildcard may
	// match nothing, so reaching j before a wildcard reaches j+1 too.
	at, next := make([]bool, len(pattern)+1), make([]bool, len(pattern)+1)
	closure := func(s []bool) {
		for j := 0; j < len(pattern); j++ {
			if s[j] && wild(pattern[j]) {
				s[j+1] = true
			}
		}
	}
	at[0] = true
	closure(at)
	for i := 0; i < len(name); i++ {
		c := name[i]
		clear(next)
		alive := false
		for j := 0; j < len(pattern); j++ {
			if !at[j] {
				continue
			}
			switch p := pattern[j]; {
			case p == '*' || p == '%' && c != byte(delim):
				next[j], alive = true, true // the wildcard takes c and may take more
			case !wild(p) && p == c:
				next[j+1], alive = true, true
			}
		}
		if !alive {
			return false
		}
		closure(next)
		at, next = next, at
	}
	return at[len(pattern)]
}
