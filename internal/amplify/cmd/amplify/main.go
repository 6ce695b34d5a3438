// Command amplify writes N distinct messages made from a corpus Maildir tree
// as a Maildir++ tree of 20 folders (.folder01 … .folder20, N/20 each; the
// root INBOX is empty). Message i is copy k = i / M of corpus message
// m = i mod M (M corpus messages, in path order), rewritten by
// amplify.Message with the generator amplify.Rand(seed, i); it goes to
// folder i mod 20 and its file's mtime is its new Date. Same corpus, N and
// seed: same bytes. See scripts/amplify-corpus.sh.
//
//	go run ./internal/amplify/cmd/amplify -corpus DIR -n N -out DIR [-seed S]
package main

import (
	"crypto/sha256"
	"flag"
	"fmt"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"mailvault/internal/amplify"
)

const folders = 20

func main() {
	corpus := flag.String("corpus", "", "the corpus Maildir tree (every file under a cur/ or new/)")
	n := flag.Int("n", 0, "how many messages to write")
	out := flag.String("out", "", "the Maildir++ root to create (must not exist)")
	seed := flag.Uint64("seed", 12, "the generator's seed")
	workers := flag.Int("workers", 4, "files written at once")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("amplify: ")
	if *corpus == "" || *out == "" || *n <= 0 {
		flag.Usage()
		os.Exit(2)
	}
	if _, err := os.Stat(*out); err == nil {
		log.Fatalf("%s exists: remove it first", *out)
	}

	var paths []string
	err := filepath.WalkDir(*corpus, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			if dir := filepath.Base(filepath.Dir(p)); dir == "cur" || dir == "new" {
				paths = append(paths, p)
			}
		}
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	if len(paths) == 0 {
		log.Fatalf("no message files under %s", *corpus)
	}
	sort.Strings(paths)
	msgs := make([][]byte, len(paths))
	for i, p := range paths {
		if msgs[i], err = os.ReadFile(p); err != nil {
			log.Fatal(err)
		}
	}

	for f := 0; f <= folders; f++ {
		dir := *out
		if f > 0 {
			dir = filepath.Join(*out, fmt.Sprintf(".folder%02d", f))
		}
		for _, sub := range []string{"cur", "new", "tmp"} {
			if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
				log.Fatal(err)
			}
		}
		if f > 0 {
			if err := os.WriteFile(filepath.Join(dir, "maildirfolder"), nil, 0o644); err != nil {
				log.Fatal(err)
			}
		}
	}

	M := uint64(len(msgs))
	type stat struct {
		bytes int64
		edits map[string]int
	}
	stats := make([]stat, *workers)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for w := 0; w < *workers; w++ {
		stats[w] = stat{edits: map[string]int{}}
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			st := &stats[w]
			for i := uint64(w); i < uint64(*n); i += uint64(*workers) {
				m, k := i%M, i/M
				res := amplify.Message(msgs[m], i, k, amplify.Rand(*seed, i))
				what := res.BodyEdit
				if what == "" {
					what = "headers only"
				}
				st.edits[what]++
				st.bytes += int64(len(res.Raw))
				folder := fmt.Sprintf(".folder%02d", i%folders+1)
				sum := sha256.Sum256(res.Raw)
				name := fmt.Sprintf("%d.M%dP%x.amplify,S=%d:2,S", res.Date.Unix(), i, sum[:4], len(res.Raw))
				p := filepath.Join(*out, folder, "cur", name)
				err := os.WriteFile(p, res.Raw, 0o644)
				if err == nil {
					err = os.Chtimes(p, res.Date, res.Date)
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
			}
		}(w)
	}
	wg.Wait()
	if firstErr != nil {
		log.Fatal(firstErr)
	}
	var total int64
	edits := map[string]int{}
	for _, st := range stats {
		total += st.bytes
		for k, v := range st.edits {
			edits[k] += v
		}
	}
	var keys []string
	for k := range edits {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", strings.ReplaceAll(k, " ", "_"), edits[k]))
	}
	fmt.Printf("messages=%d\ncorpus_messages=%d\nseed=%d\nfolders=%d\nbytes=%d\nbody_edits=%s\n",
		*n, M, *seed, folders, total, strings.Join(parts, ","))
}
