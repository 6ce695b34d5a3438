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
