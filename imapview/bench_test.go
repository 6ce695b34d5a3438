//go:build bench

package imapview

// The IMAP view against Dovecot, with a real client (issue 18): mbsync
// pulls the whole SpamAssassin corpus into an empty Maildir, once from the
// view and once from a private Dovecot holding the same mail, alternating,
// MAILVAULT_BENCH_RUNS (3) times each; then the memory an idle IMAP client
// costs each server.
//
//	MAILVAULT_CORPUS=~/.cache/mailvault/corpus go test -tags bench -run TestBenchMbsync -v -timeout 60m ./imapview/
//
// MAILVAULT_BENCH_CPUPROFILE=file writes a CPU profile of this process
// over the timed runs only (the archive's loading is left out; this
// process is idle while Dovecot serves, so the samples are the view's).
// MAILVAULT_BENCH_ARCHIVE_DIR=dir puts the archive (and its users.db,
// which holds the audit trail) below dir instead of the test's temporary
// directory: on a tmpfs (/dev/shm) an fsync costs nothing, which tells how
// much of the view's time is waiting for the disk.
//
// Decisions, so that the two sides are comparable:
//   - Plain IMAP on loopback for both (SSLType None, LOGIN): no TLS cost on
//     either side. The same mbsyncrc apart from host, port and user.
//   - FSync no in both mbsyncrcs: with it on, mbsync's fsync of every file
//     it writes is most of the wall time and the same for both servers,
//     which would hide the servers' difference. The Maildir is on /dev/shm
//     (tmpfs) when there is one, for the same reason; the archive stays on
//     disk (its fsyncs are the view's real cost).
//   - The same folders: the corpus's five Maildir++ folders are five
//     mailboxes of account carol in the archive (folders carol/easy-ham-1
//     ...) and five mailboxes of Dovecot user carol (easy-ham-1 ...), UIDs
//     in file order on both. Dovecot also has an empty INBOX, which mbsync
//     pulls too (nothing in it).
//   - Warm: one untimed mbsync from each server first, so that neither pays
//     a first read of its files from disk nor Dovecot its first indexing
//     (doveadm index runs before as well).
//   - Measured per run: wall time of mbsync; mbsync's CPU (rusage of the
//     child); the server's CPU: for the view this process's CPU over the
//     run (RUSAGE_SELF, which excludes the mbsync child), for Dovecot the
//     CPU of its process group (live processes plus what the master
//     reaped); peak memory: for the view this process's VmHWM (reset
//     before each run, so it is the peak of that run, archive included),
//     for Dovecot the largest sum of the PSS of its processes, sampled
//     every 100 ms.
//   - Checked per run: the number of message files, and how many are
//     byte-identical to a corpus file once mbsync's own X-TUID header line
//     is removed (mbsync_test.go). mbsync rewrites CRLF as LF in a Maildir,
//     so the corpus's 8 messages with CRLF line ends differ on both sides.
//   - Idle clients: N = 50 connections LOGIN, SELECT a folder of all 6,046
//     messages (account big, folder big/all; Dovecot user big, mailbox
//     all) and IDLE. They run in a child process (this test binary again)
//     so that their own memory is not counted in the view's. Each comes
//     from its own loopback address (127.0.1.k): the login guard grants an
//     address 10 password checks at once and one more every 6 s
//     (service.LoginBurst), so 50 logins from one address would take four
//     minutes.

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"mailvault/harvest/dovecottest"
	"mailvault/indexer"
	"mailvault/indexer/mailfile/corpustest"
	"mailvault/service"
)

const (
	benchIdleHelperEnv = "MAILVAULT_BENCH_IDLE_HELPER"
	benchPass          = "bench-password-1"
)

type benchRun struct {
	run       int
	server    string
	secs      float64
	clientCPU float64
	serverCPU float64
	serverSys float64 // of serverCPU, in the kernel
	peakMB    float64
	files     int
	exact     int
	diff      int
}

func TestBenchMbsync(t *testing.T) {
	mbsync, err := exec.LookPath("mbsync")
	if err != nil {
		t.Fatal("mbsync not found: apt-get install -y isync")
	}
	runs := 3
	if v := os.Getenv("MAILVAULT_BENCH_RUNS"); v != "" {
		if runs, err = strconv.Atoi(v); err != nil || runs < 1 {
			t.Fatalf("MAILVAULT_BENCH_RUNS=%q: want a positive number", v)
		}
	}
	ctx := context.Background()
	corpus := corpustest.Scan(t, corpustest.Maildir(t))
	shas := map[string]bool{}
	var all []string
	for _, f := range corpus.Folders {
		all = append(all, f.Files...)
		for _, h := range f.SHA {
			shas[h] = true
		}
	}
	slices.Sort(all) // the corpus's file names sort in corpus order
	t.Logf("corpus: %d messages (%d distinct) in %d folders; load %s", corpus.Total, corpus.Distinct, len(corpus.Folders), loadAvg())

	// The archive.
	load := time.Now()
	archiveDir := t.TempDir()
	if parent := os.Getenv("MAILVAULT_BENCH_ARCHIVE_DIR"); parent != "" {
		if archiveDir, err = os.MkdirTemp(parent, "imapview-bench-"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(archiveDir) })
	}
	// MAILVAULT_BENCH_LAYOUT=pack: the store in pack segments instead of
	// one file per blob (indexer.LayoutPack), to measure what the layout
	// does to a pull.
	if layout := os.Getenv("MAILVAULT_BENCH_LAYOUT"); layout != "" {
		pa, err := indexer.Open(archiveDir, &indexer.Options{Layout: layout})
		if err != nil {
			t.Fatal(err)
		}
		pa.Close()
	}
	a, u := openArchive(t, archiveDir)
	for _, acct := range []string{"carol", "big"} {
		if err := u.Add(ctx, service.User{Name: acct, Role: service.RoleUser, Accounts: []string{acct}}, benchPass); err != nil {
			t.Fatal(err)
		}
	}
	for i, f := range corpus.Folders {
		if len(f.Files) > 0 {
			loadFiles(t, a, "carol", f.Mailbox, uint32(1000+i), f.Files)
		}
	}
	loadFiles(t, a, "big", "all", 2000, all)
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	svc := service.New(a, &service.Options{Users: u})
	view := startView(t, svc)
	t.Logf("archive loaded in %v", time.Since(load).Round(time.Millisecond))

	// Dovecot.
	load = time.Now()
	dc := dovecottest.Start(t, &dovecottest.Options{Users: []string{"carol", "big"}, Password: benchPass, MaxUserIPConnections: 200})
	for _, f := range corpus.Folders {
		if len(f.Files) > 0 {
			if n := dc.LoadMaildir(t, "carol", f.Mailbox, f.Dir); n != len(f.Files) {
				t.Fatalf("dovecot %s: loaded %d of %d", f.Mailbox, n, len(f.Files))
			}
			dc.Index(t, "carol", f.Mailbox)
		}
	}
	if n := dc.LinkFiles(t, "big", "all", all); n != len(all) {
		t.Fatalf("dovecot all: loaded %d of %d", n, len(all))
	}
	dc.Index(t, "big", "all")
	t.Logf("dovecot loaded in %v", time.Since(load).Round(time.Millisecond))

	// mbsync writes its Maildir to a tmpfs when there is one: creating
	// 6,046 files on this disk costs mbsync 0.5 to 3 s of CPU from one run
	// to the next (measured: openat ~0.5 ms a call), noise that belongs
	// to neither server, and its journal commits would compete with the
	// archive's fsyncs.
	maildirParent := ""
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		maildirParent = "/dev/shm"
	}
	pull := func(server string, run int) benchRun {
		addr := view
		if server == "dovecot" {
			addr = dc.Addr
		}
		dir, err := os.MkdirTemp(maildirParent, "mbsync-bench-")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		mail := filepath.Join(dir, "mail")
		if err := os.MkdirAll(mail, 0o700); err != nil {
			t.Fatal(err)
		}
		conf := "FSync no\n\n" + mbsyncRC(addr, "carol", benchPass, mail)
		runtime.GC()
		var peak float64
		stopSampling := func() {}
		if server == "view" {
			os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) // reset VmHWM
		} else {
			done, wg := make(chan struct{}), sync.WaitGroup{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				tick := time.NewTicker(100 * time.Millisecond)
				defer tick.Stop()
				for {
					peak = max(peak, float64(dovecotPSSKB())/1024)
					select {
					case <-done:
						return
					case <-tick.C:
					}
				}
			}()
			stopSampling = func() { close(done); wg.Wait() }
		}
		dcCPU0, dovecotSys0 := dovecotCPU()
		self0, sys0 := selfCPU(), selfSys()
		start := time.Now()
		cmd, out, err := runMbsync(t, mbsync, dir, conf)
		secs := time.Since(start).Seconds()
		dcCPU1, dovecotSys1 := dovecotCPU()
		self1, sys1 := selfCPU(), selfSys()
		stopSampling()
		if err != nil {
			t.Fatalf("mbsync from %s: %v\n%s", server, err, out)
		}
		r := benchRun{run: run, server: server, secs: secs, clientCPU: cpuSeconds(cmd.ProcessState.SysUsage().(*syscall.Rusage))}
		if server == "view" {
			r.serverCPU, r.serverSys, r.peakMB = self1-self0, sys1-sys0, float64(procStatusKB("VmHWM"))/1024
		} else {
			r.serverCPU, r.serverSys, r.peakMB = dcCPU1-dcCPU0, dovecotSys1-dovecotSys0, peak
		}
		r.files, r.exact, r.diff = checkPulled(t, mail, shas)
		if r.files != corpus.Total {
			t.Errorf("run %d from %s: %d message files, want %d", run, server, r.files, corpus.Total)
		}
		return r
	}

	warmV, warmD := pull("view", 0), pull("dovecot", 0)
	t.Logf("warm-up: view %.2f s, dovecot %.2f s", warmV.secs, warmD.secs)
	stopProfile := func() {}
	if prof := os.Getenv("MAILVAULT_BENCH_CPUPROFILE"); prof != "" {
		f, err := os.Create(prof)
		if err != nil {
			t.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			t.Fatal(err)
		}
		stopProfile = func() { pprof.StopCPUProfile(); f.Close() }
	}
	loadStart := loadAvg()
	var results []benchRun
	for run := 1; run <= runs; run++ {
		// Alternate which goes first, so that a drift of the machine
		// falls on both.
		order := []string{"view", "dovecot"}
		if run%2 == 0 {
			order = []string{"dovecot", "view"}
		}
		for _, server := range order {
			r := pull(server, run)
			t.Logf("%s run %d %s: %.2f s", time.Now().Format("15:04:05"), run, server, r.secs)
			results = append(results, r)
		}
	}
	loadEnd := loadAvg()
	stopProfile()

	var b strings.Builder
	fmt.Fprintf(&b, "\nmbsync pulling %d messages (plain IMAP on loopback, FSync no, Maildir in %q); load average %s before, %s after\n\n", corpus.Total, maildirParent, loadStart, loadEnd)
	fmt.Fprintf(&b, "| run | server | wall s | mbsync CPU s | server CPU s | of it sys s | server peak MB | files | byte-exact | differ |\n")
	fmt.Fprintf(&b, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range results {
		fmt.Fprintf(&b, "| %d | %s | %.2f | %.2f | %.2f | %.2f | %.0f | %d | %d | %d |\n", r.run, r.server, r.secs, r.clientCPU, r.serverCPU, r.serverSys, r.peakMB, r.files, r.exact, r.diff)
	}
	med := func(server string, f func(benchRun) float64) float64 {
		var v []float64
		for _, r := range results {
			if r.server == server {
				v = append(v, f(r))
			}
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	fmt.Fprintf(&b, "\n| median | wall s | mbsync CPU s | server CPU s | server peak MB |\n|---|---:|---:|---:|---:|\n")
	for _, s := range []string{"view", "dovecot"} {
		fmt.Fprintf(&b, "| %s | %.2f | %.2f | %.2f | %.0f |\n", s,
			med(s, func(r benchRun) float64 { return r.secs }), med(s, func(r benchRun) float64 { return r.clientCPU }),
			med(s, func(r benchRun) float64 { return r.serverCPU }), med(s, func(r benchRun) float64 { return r.peakMB }))
	}
	fmt.Fprintf(&b, "\nratio view/dovecot: wall %.2f×, server CPU %.2f×\n",
		med("view", func(r benchRun) float64 { return r.secs })/med("dovecot", func(r benchRun) float64 { return r.secs }),
		med("view", func(r benchRun) float64 { return r.serverCPU })/med("dovecot", func(r benchRun) float64 { return r.serverCPU }))

	// Idle clients.
	const n = 50
	idle := func(server string) (heapPer, rssPer float64) {
		addr, folder := view, "big/all"
		if server == "dovecot" {
			addr, folder = dc.Addr, "all"
		}
		measure := func() (heap, rss float64) {
			if server == "dovecot" {
				return 0, float64(dovecotPSSKB()) * 1024
			}
			runtime.GC()
			debug.FreeOSMemory()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			return float64(ms.HeapInuse), float64(procStatusKB("VmRSS")) * 1024
		}
		heap0, rss0 := measure()
		stop := startIdleClients(t, addr, "big", folder, n)
		// A few poll intervals, so that every session has polled its
		// folder at least once.
		time.Sleep(3 * time.Second)
		heap1, rss1 := measure()
		stop()
		return (heap1 - heap0) / n, (rss1 - rss0) / n
	}
	vHeap, vRSS := idle("view")
	_, dPSS := idle("dovecot")
	fmt.Fprintf(&b, "\nidle clients (N=%d, LOGIN + SELECT of a %d-message folder + IDLE):\n\n", n, len(all))
	fmt.Fprintf(&b, "| server | per client |\n|---|---:|\n")
	fmt.Fprintf(&b, "| view, Go heap in use after GC | %.0f KiB |\n", vHeap/1024)
	fmt.Fprintf(&b, "| view, RSS of the process | %.0f KiB |\n", vRSS/1024)
	fmt.Fprintf(&b, "| dovecot, PSS of its processes | %.0f KiB |\n", dPSS/1024)
	fmt.Print(b.String())
	t.Log(b.String())
}

// checkPulled counts the message files under mail, and how many are
// byte-identical to a corpus message once mbsync's X-TUID line is removed.
func checkPulled(t *testing.T, mail string, shas map[string]bool) (files, exact, diff int) {
	t.Helper()
	err := filepath.WalkDir(mail, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if parent := filepath.Base(filepath.Dir(p)); !d.Type().IsRegular() || parent != "cur" && parent != "new" {
			return nil
		}
		files++
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		b, _ = withoutTUID(b)
		sum := sha256.Sum256(b)
		if shas[hex.EncodeToString(sum[:])] {
			exact++
		} else {
			diff++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files, exact, diff
}

// startIdleClients starts n IMAP clients in a child process (this test
// binary, TestBenchIdleHelper) and returns once all of them are idling;
// stop ends them.
func startIdleClients(t *testing.T, addr, user, folder string, n int) (stop func()) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestBenchIdleHelper$", "-test.v")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %s %s %s %d", benchIdleHelperEnv, addr, user, benchPass, folder, n))
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(outR)
	ready := false
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if sc.Text() == "idle-clients-ready" {
			ready = true
			break
		}
	}
	if !ready {
		in.Close()
		cmd.Wait()
		t.Fatalf("idle clients did not start:\n%s", strings.Join(lines, "\n"))
	}
	go func() {
		for sc.Scan() {
		}
	}()
	return func() {
		in.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("idle clients: %v", err)
		}
	}
}

// TestBenchIdleHelper is the child of startIdleClients: it does nothing
// unless started by it. It opens the clients, each from its own loopback
// address, prints "idle-clients-ready" once all idle, and holds them until
// its stdin closes.
func TestBenchIdleHelper(t *testing.T) {
	spec := os.Getenv(benchIdleHelperEnv)
	if spec == "" {
		return // not started by startIdleClients
	}
	var addr, user, pass, folder string
	var n int
	if _, err := fmt.Sscan(spec, &addr, &user, &pass, &folder, &n); err != nil {
		t.Fatalf("%s=%q: %v", benchIdleHelperEnv, spec, err)
	}
	var conns []net.Conn
	for i := 0; i < n; i++ {
		d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(i+1))}}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		conns = append(conns, c)
		r := bufio.NewReader(c)
		c.SetDeadline(time.Now().Add(60 * time.Second))
		readTo := func(prefix string) {
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					t.Fatalf("client %d: waiting for %q: %v", i, prefix, err)
				}
				if strings.HasPrefix(l, prefix) {
					return
				}
				if strings.HasPrefix(l, "a ") || strings.HasPrefix(l, "b ") {
					t.Fatalf("client %d: %s", i, l)
				}
			}
		}
		readTo("* OK")
		fmt.Fprintf(c, "a LOGIN %s %s\r\n", user, pass)
		readTo("a OK")
		fmt.Fprintf(c, "b SELECT %s\r\n", folder)
		readTo("b OK")
		fmt.Fprintf(c, "c IDLE\r\n")
		readTo("+")
		c.SetDeadline(time.Time{})
	}
	fmt.Println("idle-clients-ready")
	buf := make([]byte, 1)
	os.Stdin.Read(buf) // until the parent closes stdin
	for _, c := range conns {
		c.Close()
	}
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func procStatusKB(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, field+":"); ok {
			v, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return v
		}
	}
	return -1
}

func cpuSeconds(ru *syscall.Rusage) float64 {
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func selfSys() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Stime.Nano()).Seconds()
}

func selfCPU() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return cpuSeconds(&ru)
}

const clockTicks = 100 // USER_HZ on Linux

// dovecotProcs returns the /proc/PID/stat fields (after the command name)
// of the processes of the group of the Dovecot master this process
// started, and the master's pid.
func dovecotProcs() (procs map[string][]string, master string) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, ""
	}
	self := strconv.Itoa(os.Getpid())
	all := map[string][]string{}
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 15 {
			continue
		}
		all[e.Name()] = f
		if f[1] == self {
			if comm, _ := os.ReadFile("/proc/" + e.Name() + "/comm"); strings.TrimSpace(string(comm)) == "dovecot" {
				master = e.Name()
			}
		}
	}
	procs = map[string][]string{}
	for pid, f := range all {
		if master != "" && f[2] == master { // pgrp: the master leads its own group
			procs[pid] = f
		}
	}
	return procs, master
}

// dovecotCPU is the CPU time of the Dovecot group, and the part of it in
// the kernel: its live processes and the children the master has reaped.
func dovecotCPU() (cpu, sys float64) {
	procs, master := dovecotProcs()
	var ticks, sysTicks float64
	for pid, f := range procs {
		idx := []int{11, 12} // utime, stime
		if pid == master {
			idx = append(idx, 13, 14) // cutime, cstime
		}
		for _, i := range idx {
			x, _ := strconv.ParseFloat(f[i], 64)
			ticks += x
			if i == 12 || i == 14 {
				sysTicks += x
			}
		}
	}
	return ticks / clockTicks, sysTicks / clockTicks
}

// dovecotPSSKB is the sum of the proportional set sizes of the Dovecot
// group's processes (shared pages counted once overall).
func dovecotPSSKB() int64 {
	procs, _ := dovecotProcs()
	var kb int64
	for pid := range procs {
		b, err := os.ReadFile("/proc/" + pid + "/smaps_rollup")
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(l, "Pss:"); ok {
				v, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
				kb += v
				break
			}
		}
	}
	return kb
}
