package main

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailvault/indexer/mailfile/corpustest"
	"mailvault/internal/amplify"
)

// TestImportScale is issue 14's CI check that an import's cost per message
// does not grow with the archive and that its memory is bounded by the
// import's own structures. It amplifies the corpus in process
// (internal/amplify, as scripts/amplify-corpus.sh does) into three sets of
// 200, 2,000 and 20,000 messages and imports each with the built binary into
// an empty data directory, as a child process under a hard address-space
// cap (RLIMIT_AS, set by prlimit(1) before the import starts: an allocation
// past it fails and the import dies, which fails the test).
//
// Cost: the CPU time (user + sys, from the child's rusage: robust to other
// work on a shared machine, unlike wall time) of each import (the median of
// three for the two small sets). A whole
// import's CPU is a fixed part (process start, opening and creating the
// archive) plus a per-message part, so dividing by the count would favour
// the big set. The test compares marginal costs instead: (cpu(2k) -
// cpu(200)) / 1,800, the cost of messages 200 to 2,000, against (cpu(20k) -
// cpu(2k)) / 18,000, that of messages 2,000 to 20,000, and wants the latter
// within 20 % of the former. The sets sample the corpus evenly (message
// j*step of the 20,000, step = 20,000/n), so each holds the same mix of
// corpus messages, and every message of a smaller set is in the bigger ones.
//
// Memory: the child's peak RSS (rusage ru_maxrss, the kernel's VmHWM at
// exit) must stay under maxImportRSS for 20,000 messages. The import runs
// with the default heap limit (bulkMemoryLimit); GOMEMLIMIT is removed from
// its environment. The peak is not compared between the sets: below the
// limit the collector lets the heap grow towards it, so a small import
// peaks lower (150 MB at 2,000) for reasons unrelated to the archive's size;
// that the peak stays flat from 20,000 to 200,000 and beyond is measured by
// scripts/bench-scale.sh (docs/benchmarks.md, "Scale (issue 14)").
func TestImportScale(t *testing.T) {
	if testing.Short() {
		t.Skip("imports 22,200 messages (about a minute of CPU)")
	}
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("prlimit (util-linux) is needed for the memory cap: %v", err)
		}
		t.Skipf("prlimit (util-linux) not found: %v", err)
	}
	corpus := loadCorpus(t, corpustest.Maildir(t))
	bin := buildMailvault(t)
	const total = 20000
	sets := []int{200, 2000, total}
	cpu := map[int]time.Duration{}
	rss := map[int]int64{}
	for _, n := range sets {
		dir := t.TempDir()
		writeAmplified(t, filepath.Join(dir, "maildir"), corpus, n, total)
		// The small sets cost a few seconds of CPU, where one slow run on a
		// shared machine would move the ratio most: the median of three.
		runs := 3
		if n == total {
			runs = 1
		}
		var cs []time.Duration
		for r := range runs {
			data := filepath.Join(dir, fmt.Sprintf("data%d", r))
			c, m := cappedImport(t, prlimit, bin, data, filepath.Join(dir, "maildir"), n)
			cs = append(cs, c)
			rss[n] = max(rss[n], m)
			os.RemoveAll(data)
		}
		slices.Sort(cs)
		cpu[n] = cs[len(cs)/2]
		t.Logf("import of %d messages: CPU %v (median of %v; %.0f µs/msg), peak RSS %d MB", n, cpu[n], cs, float64(cpu[n].Microseconds())/float64(n), rss[n]>>20)
		os.RemoveAll(dir)
	}
	small := float64((cpu[2000] - cpu[200]).Microseconds()) / 1800
	large := float64((cpu[total] - cpu[2000]).Microseconds()) / (total - 2000)
	t.Logf("marginal CPU per message: messages 200-2,000 %.0f µs, messages 2,000-20,000 %.0f µs (%.2f×)", small, large, large/small)
	if small <= 0 || large > 1.2*small {
		t.Errorf("cost per message grows with the archive: %.0f µs a message from 2,000 to 20,000 against %.0f µs from 200 to 2,000 (more than 1.2×)", large, small)
	}
	if rss[total] > maxImportRSS {
		t.Errorf("peak RSS of the 20,000-message import is %d MB, over %d MB", rss[total]>>20, maxImportRSS>>20)
	}
}

// importAddressSpace is the hard cap (RLIMIT_AS) on the import child: Go's
// heap arenas, the goroutine stacks, the mapped index segments and SQLite's
// map all count. An import at 20,000 messages reserves well under this; the
// cap is the ulimit-style backstop, the RSS check below the measure.
const importAddressSpace = 4 << 30

// maxImportRSS is the peak RSS allowed at 20,000 messages: the 512 MiB heap
// limit (bulkMemoryLimit) plus the mapped index (about 90 MB at 20,000) and
// slack. Measured: 460-500 MB.
const maxImportRSS = 768 << 20

// cappedImport imports maildir into data with the binary under the address
// space cap and returns the child's CPU time and peak RSS in bytes.
func cappedImport(t *testing.T, prlimit, bin, data, maildir string, n int) (time.Duration, int64) {
	t.Helper()
	cmd := exec.Command(prlimit, fmt.Sprintf("--as=%d", importAddressSpace), "--",
		bin, "import", "--data", data, "--account", "scale", "--json", maildir)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOMEMLIMIT=") && !strings.HasPrefix(kv, "MAILVAULT_CPUPROFILE=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	if err := cmd.Run(); err != nil {
		t.Fatalf("import of %d messages under a %d GiB address-space cap: %v\n%s", n, importAddressSpace>>30, err, errb.String())
	}
	if want := fmt.Sprintf(`"stored":%d,`, n); !strings.Contains(out.String(), want) {
		t.Fatalf("import of %d messages: summary %s, want %s", n, out.String(), want)
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		t.Fatal("no rusage for the import")
	}
	return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), ru.Maxrss << 10
}

// loadCorpus reads every corpus message, in path order (the amplifier's).
func loadCorpus(t *testing.T, root string) [][]byte {
	t.Helper()
	var paths []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (filepath.Base(filepath.Dir(p)) == "cur" || filepath.Base(filepath.Dir(p)) == "new") {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(paths)
	msgs := make([][]byte, len(paths))
	for i, p := range paths {
		if msgs[i], err = os.ReadFile(p); err != nil {
			t.Fatal(err)
		}
	}
	if len(msgs) < 1000 {
		t.Fatalf("corpus %s: %d messages", root, len(msgs))
	}
	return msgs
}

// writeAmplified writes n of the total amplified messages (message
// j*total/n for j < n, seed 12 as scripts/amplify-corpus.sh) as a Maildir++
// tree of 10 folders.
func writeAmplified(t *testing.T, root string, corpus [][]byte, n, total int) {
	t.Helper()
	const folders = 10
	for f := 0; f <= folders; f++ {
		dir := root // an empty INBOX, as a Maildir++ root has
		if f > 0 {
			dir = filepath.Join(root, fmt.Sprintf(".folder%02d", f))
		}
		for _, sub := range []string{"cur", "new", "tmp"} {
			if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	M := uint64(len(corpus))
	step := total / n
	for j := range n {
		i := uint64(j * step)
		res := amplify.Message(corpus[i%M], i, i/M, amplify.Rand(12, i))
		sum := sha256.Sum256(res.Raw)
		p := filepath.Join(root, fmt.Sprintf(".folder%02d", j%folders+1), "cur",
			fmt.Sprintf("%d.M%dP%x.amplify,S=%d:2,S", res.Date.Unix(), i, sum[:4], len(res.Raw)))
		if err := os.WriteFile(p, res.Raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
