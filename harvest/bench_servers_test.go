//go:build bench && linux

package harvest_test

// Cold harvest of the corpus from Cyrus and from Courier (harvest/chroottest)
// against mbsync from the same server in the same run (issue 17), RUNS times
// each, alternating which goes first. Plain IMAP on 127.0.0.1 for both
// sides: the chroottest servers have no TLS listener (the Dovecot benchmark
// above uses implicit TLS). Run it with
//
//	go test -tags bench -run TestBenchHarvestServers -v -timeout 60m ./harvest/

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"mailvault/harvest"
	"mailvault/harvest/chroottest"
	"mailvault/harvest/harvesttest"
	"mailvault/indexer"
	"mailvault/indexer/mailfile/corpustest"
	"mailvault/internal/benchtest"
	"mailvault/service"
)

func TestBenchHarvestServers(t *testing.T) {
	root := corpustest.Maildir(t)
	mbsync, err := exec.LookPath("mbsync")
	if err != nil {
		t.Fatal("mbsync not found: apt-get install -y isync")
	}
	runs := hbEnvInt("MAILVAULT_BENCH_RUNS", 3)
	folders := []string{"easy-ham-1", "easy-ham-2", "hard-ham-1", "spam-1", "spam-2"}
	for _, kind := range []string{"cyrus", "courier"} {
		t.Run(kind, func(t *testing.T) {
			var srv *chroottest.Server
			opts := &chroottest.Options{Users: []string{hbBenchUser}}
			if kind == "cyrus" {
				srv = chroottest.StartCyrus(t, opts)
			} else {
				srv = chroottest.StartCourier(t, opts)
			}
			total := 0
			for _, f := range folders {
				total += srv.LoadMaildir(t, hbBenchUser, srv.Mailbox(f), filepath.Join(root, "."+f))
			}
			// Untimed warm-up: the page cache and the servers' own indexes.
			for _, f := range folders {
				srv.Fetch(t, hbBenchUser, srv.Mailbox(f))
			}
			type result struct {
				tool    string
				run     int
				secs    float64
				cpu     float64
				load    string
				checked string
			}
			var results []result
			for i := 1; i <= runs; i++ {
				sides := []func() result{
					func() result {
						secs, cpu, check := hbServerMailvault(t, srv, total)
						return result{tool: "mailvault (harvest + index)", run: i, secs: secs, cpu: cpu, checked: check}
					},
					func() result {
						secs, cpu, check := hbServerMbsync(t, srv, mbsync, total)
						return result{tool: "mbsync (copy to Maildir)", run: i, secs: secs, cpu: cpu, checked: check}
					},
				}
				if i%2 == 0 {
					slices.Reverse(sides)
				}
				for _, side := range sides {
					load := strings.Fields(hbLoadAvg())[0]
					r := side()
					r.load = load
					t.Logf("%s run %d: %s %.2f s (%s)", kind, i, r.tool, r.secs, r.checked)
					results = append(results, r)
				}
			}
			benchtest.Mdf(t, "")
			benchtest.Mdf(t, "#### %s: %d messages in %d mailboxes, plain IMAP on 127.0.0.1; %s UTC; load at the end %s", kind, total, len(folders), time.Now().UTC().Format("2006-01-02 15:04"), hbLoadAvg())
			benchtest.Mdf(t, "")
			benchtest.Mdf(t, "| run | tool | load | seconds | msg/s | client CPU s | check |")
			benchtest.Mdf(t, "|---|---|---|---|---|---|---|")
			var mv, mb []float64
			for _, r := range results {
				benchtest.Mdf(t, "| %d | %s | %s | %.2f | %.0f | %.2f | %s |", r.run, r.tool, r.load, r.secs, float64(total)/r.secs, r.cpu, r.checked)
				if strings.HasPrefix(r.tool, "mailvault") {
					mv = append(mv, r.secs)
				} else {
					mb = append(mb, r.secs)
				}
			}
			ratio := hbMedian(mv) / hbMedian(mb)
			benchtest.Mdf(t, "")
			benchtest.Mdf(t, "Median: mailvault %.2f s, mbsync %.2f s: %.2f× (target ≤ 1.0×: %s).", hbMedian(mv), hbMedian(mb), ratio, hbMetOrNot(ratio <= 1.0))
		})
	}
}

// hbServerMailvault is one cold harvest + index into an empty archive, from
// indexer.Open until the catalog holds every message and Flush returned.
func hbServerMailvault(t *testing.T, srv harvesttest.Server, total int) (secs, cpu float64, check string) {
	dir := filepath.Join(t.TempDir(), "data")
	defer os.RemoveAll(dir)
	cpu0 := hbSelfCPU()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	// MAILVAULT_BENCH_LAYOUT=pack: the store in pack segments instead of
	// one file per blob (the default).
	a, err := indexer.Open(dir, &indexer.Options{Layout: os.Getenv("MAILVAULT_BENCH_LAYOUT")})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	sink := &hbCountingSink{Sink: service.NewSink(a)}
	h := harvest.New(harvesttest.Account(t, srv, "sa", hbBenchUser), sink, service.ServeHarvestOptions(nil, 1))
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Minute)
	for {
		if sink.stored.Load() >= int64(total) {
			if n, err := hbArchivedOccurrences(ctx, dir); err == nil && n >= total {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("mailvault: %d of %d stored; %+v", sink.stored.Load(), total, h.Status())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	secs = time.Since(start).Seconds()
	cpu = hbSelfCPU() - cpu0
	cancel()
	<-done
	n, _ := hbArchivedOccurrences(context.Background(), dir)
	check = fmt.Sprintf("%d occurrences", n)
	if n != total {
		check += fmt.Sprintf(", want %d", total)
	}
	check += fmt.Sprintf("; %.1f s inside Store", time.Duration(sink.inside.Load()).Seconds())
	return secs, cpu, check
}

func hbServerMbsync(t *testing.T, srv *chroottest.Server, mbsync string, total int) (secs, cpu float64, check string) {
	dir := t.TempDir()
	defer os.RemoveAll(dir)
	mail := filepath.Join(dir, "mail")
	if err := os.MkdirAll(mail, 0o700); err != nil {
		t.Fatal(err)
	}
	host, port, _ := strings.Cut(srv.Addr, ":")
	conf := hbMbsyncRC(host, port, srv.Password(hbBenchUser), "SSLType None", mail)
	rc := filepath.Join(dir, "mbsyncrc")
	if err := os.WriteFile(rc, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(mbsync, "-c", rc, "-a")
	cmd.Env = append(os.Environ(), "HOME="+dir)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	secs = time.Since(start).Seconds()
	if err != nil {
		t.Fatalf("mbsync: %v\n%s", err, out.String())
	}
	cpu = cmd.ProcessState.UserTime().Seconds() + cmd.ProcessState.SystemTime().Seconds()
	n := 0
	filepath.WalkDir(mail, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if parent := filepath.Base(filepath.Dir(p)); parent == "cur" || parent == "new" {
				n++
			}
		}
		return nil
	})
	check = fmt.Sprintf("%d message files", n)
	if n != total {
		check += fmt.Sprintf(", want %d", total)
	}
	return secs, cpu, check
}

// TestBenchHarvestServersWire harvests the corpus from one server
// (MAILVAULT_BENCH_SERVER, default courier) through a loopback proxy that
// records each command the harvester sends and when the server's tagged
// answer came: a wire trace without credentials (LOGIN lines are cut), to
// see where a cold harvest spends its time.
func TestBenchHarvestServersWire(t *testing.T) {
	kind := os.Getenv("MAILVAULT_BENCH_SERVER")
	if kind == "" {
		kind = "courier"
	}
	root := corpustest.Maildir(t)
	opts := &chroottest.Options{Users: []string{hbBenchUser}}
	var srv *chroottest.Server
	if kind == "cyrus" {
		srv = chroottest.StartCyrus(t, opts)
	} else {
		srv = chroottest.StartCourier(t, opts)
	}
	total := 0
	for _, f := range []string{"easy-ham-1", "easy-ham-2", "hard-ham-1", "spam-1", "spam-2"} {
		total += srv.LoadMaildir(t, hbBenchUser, srv.Mailbox(f), filepath.Join(root, "."+f))
	}
	proxy := hbTraceProxy(t, srv.Addr)
	acctSrv := &hbAddrServer{Server: srv, addr: proxy.addr}
	secs, _, check := hbServerMailvault(t, acctSrv, total)
	t.Logf("%s through the proxy: %.2f s, %s", kind, secs, check)
	proxy.report(t)
}

// hbAddrServer is a server reached at another address (the proxy).
type hbAddrServer struct {
	*chroottest.Server
	addr string
}

func (s *hbAddrServer) Address() string { return s.addr }

// hbProxy forwards loopback connections and records the client's commands.
type hbProxy struct {
	addr string
	mu   sync.Mutex
	// per verb: count, and the time from the command to the client's next
	// command on the same connection (the answer's wait plus the client's
	// own work on it)
	count map[string]int
	spent map[string]time.Duration
	first []string // the first commands of the first connection
}

func hbTraceProxy(t *testing.T, target string) *hbProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	p := &hbProxy{addr: l.Addr().String(), count: map[string]int{}, spent: map[string]time.Duration{}}
	go func() {
		for conn := 0; ; conn++ {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			go func() { io.Copy(c, s); c.Close() }()
			go func(conn int) {
				defer s.Close()
				r := bufio.NewReader(c)
				var last string
				var at time.Time
				for {
					line, err := r.ReadString('\n')
					if len(line) > 0 {
						s.Write([]byte(line))
					}
					if err != nil {
						return
					}
					f := strings.Fields(line)
					verb := ""
					switch {
					case len(f) >= 3 && strings.EqualFold(f[1], "UID"):
						verb = "UID " + strings.ToUpper(f[2])
					case len(f) >= 2:
						verb = strings.ToUpper(f[1])
					case len(f) == 1:
						verb = strings.ToUpper(f[0]) // DONE
					}
					now := time.Now()
					p.mu.Lock()
					if last != "" {
						p.spent[last] += now.Sub(at)
					}
					p.count[verb]++
					if conn == 0 && len(p.first) < 40 {
						shown := strings.TrimSpace(line)
						if verb == "LOGIN" || verb == "AUTHENTICATE" {
							shown = f[0] + " " + verb + " ..."
						}
						if len(shown) > 100 {
							shown = shown[:100] + "..."
						}
						p.first = append(p.first, fmt.Sprintf("%8.3f %s", float64(now.UnixMilli()%100000)/1000, shown))
					}
					p.mu.Unlock()
					last, at = verb, now
				}
			}(conn)
		}
	}()
	return p
}

func (p *hbProxy) report(t *testing.T) {
	p.mu.Lock()
	defer p.mu.Unlock()
	verbs := make([]string, 0, len(p.count))
	for v := range p.count {
		verbs = append(verbs, v)
	}
	slices.SortFunc(verbs, func(a, b string) int { return int(p.spent[b] - p.spent[a]) })
	var b strings.Builder
	for _, v := range verbs {
		fmt.Fprintf(&b, "\n\t%-14s %6d commands, %8.2f s until the next command", v, p.count[v], p.spent[v].Seconds())
	}
	t.Logf("commands by time:%s\nfirst commands:\n\t%s", b.String(), strings.Join(p.first, "\n\t"))
}
