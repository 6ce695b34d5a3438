package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"mailvault/harvest"
)

// Metrics of a running serve, in the Prometheus text format (version
// 0.0.4), at GET /metrics on the local socket and, when the configuration
// sets metrics_listen, on that TCP address. They are written by hand: a
// dozen counters and gauges do not need a client library.
//
// Series are per account (not per mailbox): a thousand accounts of twenty
// mailboxes would be twenty thousand series per metric.

// sinkStats counts what the archive was asked to do by the harvesters.
type sinkStats struct {
	batches, messages, errors atomic.Int64
	storeNanos                atomic.Int64
}

// writeMetrics writes the metrics of hs and sink to w.
func writeMetrics(w io.Writer, hs []*harvest.Harvester, sink *archiveSink, started time.Time) error {
	b := bufio.NewWriter(w)
	metric := func(name, typ, help string) {
		fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	}
	sts := make([]harvest.Status, len(hs))
	for i, h := range hs {
		sts[i] = h.Status()
	}
	slices.SortFunc(sts, func(a, b harvest.Status) int { return strings.Compare(a.Account, b.Account) })
	perAccount := func(name, typ, help string, value func(harvest.Status) int64) {
		metric(name, typ, help)
		for _, s := range sts {
			fmt.Fprintf(b, "%s{account=%s} %d\n", name, labelValue(s.Account), value(s))
		}
	}

	metric("mailvault_account_state", "gauge", "1 for the state each account's harvester is in.")
	for _, s := range sts {
		fmt.Fprintf(b, "mailvault_account_state{account=%s,state=%s} 1\n", labelValue(s.Account), labelValue(s.State))
	}
	perAccount("mailvault_account_mailboxes", "gauge", "Mailboxes harvested per account.",
		func(s harvest.Status) int64 { return int64(len(s.Mailboxes)) })
	perAccount("mailvault_account_server_messages", "gauge", "Messages on the server, per account, at the last look.",
		func(s harvest.Status) int64 {
			n := int64(0)
			for _, m := range s.Mailboxes {
				n += int64(m.ServerMessages)
			}
			return n
		})
	perAccount("mailvault_harvest_logins_total", "counter", "Successful IMAP logins.",
		func(s harvest.Status) int64 { return s.Counters.Logins })
	perAccount("mailvault_harvest_failures_total", "counter", "Sessions ended by an error (each followed by a reconnect).",
		func(s harvest.Status) int64 { return s.Counters.Failures })
	perAccount("mailvault_harvest_messages_total", "counter", "Messages fetched and handed to the archive.",
		func(s harvest.Status) int64 { return s.Counters.Messages })
	perAccount("mailvault_harvest_bytes_total", "counter", "Bytes of the messages fetched.",
		func(s harvest.Status) int64 { return s.Counters.Bytes })
	perAccount("mailvault_harvest_skipped_total", "counter", "Messages recorded as skipped (could not be fetched, or over max_message_bytes).",
		func(s harvest.Status) int64 { return s.Counters.Skipped })

	st := &sink.stats
	metric("mailvault_store_batches_total", "counter", "Batches of fetched messages stored in the archive.")
	fmt.Fprintf(b, "mailvault_store_batches_total %d\n", st.batches.Load())
	metric("mailvault_store_messages_total", "counter", "Messages stored (blob, catalog, index queue).")
	fmt.Fprintf(b, "mailvault_store_messages_total %d\n", st.messages.Load())
	metric("mailvault_store_errors_total", "counter", "Batches the archive failed to store (the harvester retries them).")
	fmt.Fprintf(b, "mailvault_store_errors_total %d\n", st.errors.Load())
	metric("mailvault_store_seconds_total", "counter", "Time spent storing batches, including waits for the index (back-pressure).")
	fmt.Fprintf(b, "mailvault_store_seconds_total %s\n", strconv.FormatFloat(time.Duration(st.storeNanos.Load()).Seconds(), 'f', -1, 64))

	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	metric("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.")
	fmt.Fprintf(b, "process_resident_memory_bytes %d\n", residentBytes())
	metric("process_start_time_seconds", "gauge", "Start time of the process since the Unix epoch in seconds.")
	fmt.Fprintf(b, "process_start_time_seconds %d\n", started.Unix())
	metric("go_goroutines", "gauge", "Number of goroutines that currently exist.")
	fmt.Fprintf(b, "go_goroutines %d\n", runtime.NumGoroutine())
	metric("go_memstats_heap_inuse_bytes", "gauge", "Bytes in in-use heap spans.")
	fmt.Fprintf(b, "go_memstats_heap_inuse_bytes %d\n", ms.HeapInuse)
	metric("go_memstats_sys_bytes", "gauge", "Bytes obtained from the system.")
	fmt.Fprintf(b, "go_memstats_sys_bytes %d\n", ms.Sys)
	return b.Flush()
}

// labelValue quotes s as a Prometheus label value.
func labelValue(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

// residentBytes is the process's RSS from /proc (0 where there is none).
func residentBytes() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// metricsHandler serves writeMetrics.
func metricsHandler(hs []*harvest.Harvester, sink *archiveSink, started time.Time) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		writeMetrics(w, hs, sink, started)
	}
}

// serveMetrics serves GET /metrics on addr until ctx is done.
func serveMetrics(ctx context.Context, addr string, h http.HandlerFunc) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics_listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	stop := context.AfterFunc(ctx, func() { srv.Close() })
	defer stop()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
