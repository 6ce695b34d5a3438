//go:build bench && linux

package service_test

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"mailvault/export"
	"mailvault/indexer"
	"mailvault/indexer/mailfile/corpustest"
	"mailvault/indexer/mime"
	"mailvault/internal/benchtest"
	"mailvault/service"
)

// TestBenchExport exports the SpamAssassin corpus as a production set and
// as mbox, against the peer the issue names: copying the raw mail out of
// the store (every blob read, checked and written to a file of its own),
// in the same run. Run it with
//
//	MAILVAULT_CORPUS=~/.cache/mailvault/corpus go test -tags bench -run TestBenchExport -v ./service/
//
// or scripts/bench-export.sh, which runs it on a new ext4 file system too.
func TestBenchExport(t *testing.T) {
	root := corpustest.Maildir(t)
	data := filepath.Join(t.TempDir(), "data")
	a, err := indexer.Open(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx := context.Background()
	if _, err := service.Import(ctx, a, service.ImportRequest{Account: "sa", Paths: []string{root}}, nil, nil); err != nil {
		t.Fatal(err)
	}
	// The export reads the attachments' text the archive extracted in the
	// background after the import: wait for it, so that extraction neither
	// runs beside the steps measured nor leaves texts missing.
	if err := a.WaitExtracts(ctx, nil); err != nil {
		t.Fatal(err)
	}
	users, err := service.OpenUsers(data)
	if err != nil {
		t.Fatal(err)
	}
	defer users.Close()
	svc := service.New(a, &service.Options{Users: users})
	occs, err := a.Occurrences(ctx)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var keys []string
	for _, o := range occs {
		if !seen[o.SHA256] {
			seen[o.SHA256] = true
			keys = append(keys, o.SHA256)
		}
	}
	// BENCH_OUT chooses the file system the exports are written to
	// (scripts/bench-export.sh gives it a freshly made ext4).
	out := t.TempDir()
	if d := os.Getenv("BENCH_OUT"); d != "" {
		if out, err = os.MkdirTemp(d, "bench-export-"); err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(out)
	}
	benchtest.Mdf(t, "Machine: %d cores, Linux, %s. Corpus: %d messages (%d unique).", runtime.NumCPU(), runtime.Version(), len(occs), len(keys))
	benchtest.Mdf(t, "")
	benchtest.Mdf(t, "| run | what | seconds | CPU s (user+sys) | msg/s | peak RSS MB (VmHWM, reset before) | output bytes |")
	benchtest.Mdf(t, "|---|---|---|---|---|---|---|")
	// File creation on this machine's ext4 varies from run to run by
	// several times (after many deletions the inode allocator scans past
	// recently deleted inodes: docs/benchmarks.md), so every step runs
	// BENCH_RUNS times (5 by default), the copy first in odd runs and last
	// in even ones, and the medians are compared.
	runs := 5
	if n, err := strconv.Atoi(os.Getenv("BENCH_RUNS")); err == nil && n > 0 {
		runs = n
	}
	type step struct {
		what string
		do   func(dir string) (messages int, err error)
	}
	copyRaw := step{"copy raw mail out of the store (peer)", func(dir string) (int, error) {
		// The peer: every blob read (hash-checked, as every read is) and
		// written to a file.
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return 0, err
		}
		for _, k := range keys {
			raw, err := a.Raw(k)
			if err != nil {
				return 0, err
			}
			if err := os.WriteFile(filepath.Join(dir, k+".eml"), raw, 0o600); err != nil {
				return 0, err
			}
		}
		return len(keys), nil
	}}
	// The floor: only what a production cannot do without — every blob
	// read and checked, one parse for the text and the attachments, MD5 of
	// every file and SHA-256 of every file but the message (its sha256 is
	// the blob's key), and every native and text written — on two workers
	// with no ordering, numbering or load files. Its CPU time against the
	// copy's says whether two cores can make a production as fast as the
	// copy at all (docs/benchmarks.md).
	floor := step{"floor: a production's mandatory work only, 2 workers", func(dir string) (int, error) {
		for _, d := range []string{"NATIVES", "TEXT"} {
			if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
				return 0, err
			}
		}
		var g errgroup.Group
		for w := range 2 {
			g.Go(func() error {
				for i := w; i < len(keys); i += 2 {
					raw, err := a.Raw(keys[i])
					if err != nil {
						return err
					}
					pm := mime.Parse(raw, &mime.Limits{KeepData: true})
					md5.Sum(raw)
					files := [][]byte{[]byte(pm.Text)}
					for _, at := range pm.Attachments {
						files = append(files, at.Data, []byte(at.Text))
					}
					for _, f := range files {
						md5.Sum(f)
						sha256.Sum256(f)
					}
					name := strconv.Itoa(i)
					if err := os.WriteFile(filepath.Join(dir, "NATIVES", name+".eml"), raw, 0o600); err != nil {
						return err
					}
					for j, f := range files {
						sub := "TEXT"
						if j%2 == 1 {
							sub = "NATIVES"
						}
						if err := os.WriteFile(filepath.Join(dir, sub, name+"-"+strconv.Itoa(j)), f, 0o600); err != nil {
							return err
						}
					}
				}
				return nil
			})
		}
		return len(keys), g.Wait()
	}}
	exportAs := func(f export.Format, zip bool) step {
		what := "export --format " + string(f)
		if zip {
			what += " --zip"
		}
		return step{what, func(dir string) (int, error) {
			res, err := svc.Export(ctx, service.Operator(), service.ExportRequest{Search: &service.SearchRequest{Query: "larger:0"}, Dir: dir, Format: f, Zip: zip}, nil)
			if err != nil {
				return 0, err
			}
			return res.Manifest.Counts.Messages, nil
		}}
	}
	// BENCH_CPUPROFILE profiles the steps alone (not the import before).
	if p := os.Getenv("BENCH_CPUPROFILE"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			t.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	secs, cpus := map[string][]float64{}, map[string][]float64{}
	for run := 1; run <= runs; run++ {
		steps := []step{copyRaw, floor, exportAs(export.FormatProduction, false), exportAs(export.FormatProduction, true), exportAs(export.FormatMbox, false)}
		if run%2 == 0 {
			steps = []step{exportAs(export.FormatProduction, false), exportAs(export.FormatProduction, true), exportAs(export.FormatMbox, false), floor, copyRaw}
		}
		for i, st := range steps {
			// BENCH_ONLY keeps the steps whose name holds it (for a profile
			// of one of them).
			if only := os.Getenv("BENCH_ONLY"); only != "" && !strings.Contains(st.what, only) {
				continue
			}
			dir := filepath.Join(out, strconv.Itoa(run)+"-"+strconv.Itoa(i))
			resetPeak()
			cpu0 := cpuSeconds()
			begin := time.Now()
			n, err := st.do(dir)
			if err != nil {
				t.Fatal(err)
			}
			el := time.Since(begin)
			cpu := cpuSeconds() - cpu0
			secs[st.what] = append(secs[st.what], el.Seconds())
			cpus[st.what] = append(cpus[st.what], cpu)
			benchtest.Mdf(t, "| %d | %s | %.2f | %.2f | %.0f | %.0f | %d |", run, st.what, el.Seconds(), cpu, float64(n)/el.Seconds(), peakMB(), dirBytes(dir))
		}
	}
	benchtest.Mdf(t, "")
	med := func(m map[string][]float64, what string) float64 {
		if len(m[what]) == 0 {
			return 0
		}
		v := append([]float64(nil), m[what]...)
		sort.Float64s(v)
		return v[len(v)/2]
	}
	c, cc := med(secs, copyRaw.what), med(cpus, copyRaw.what)
	for _, st := range []step{floor, exportAs(export.FormatProduction, false), exportAs(export.FormatProduction, true), exportAs(export.FormatMbox, false)} {
		if len(secs[st.what]) == 0 || c == 0 {
			continue
		}
		e := med(secs, st.what)
		benchtest.Mdf(t, "Median of %d runs: %s %.2f s (CPU %.2f s) against the copy's %.2f s (CPU %.2f s): %.2f× the copy's throughput.", runs, st.what, e, med(cpus, st.what), c, cc, c/e)
	}
}

// resetPeak returns freed memory to the system, so that a step's peak is
// not the last step's leftovers, and resets VmHWM.
func resetPeak() { debug.FreeOSMemory(); os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// cpuSeconds is the process's user and system CPU time so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func peakMB() float64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

func dirBytes(dir string) int64 {
	if fi, err := os.Stat(dir + ".zip"); err == nil {
		return fi.Size() // export --zip
	}
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return nil
	})
	return n
}
