package service

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics of a running archive, in the Prometheus text format. A collector
// reads the harvesters' and the sink's counters and the jobs at each scrape
// (client_golang's registry, with its process and Go runtime collectors).
// The front doors decide where they are served (the local socket,
// metrics_listen); never on the web listener without authentication.
//
// Series are per account (not per mailbox): a thousand accounts of twenty
// mailboxes would be twenty thousand series per metric.

// collector is a prometheus.Collector over the service.
type collector struct {
	s      *Service
	failed atomic.Int64 // scrapes whose Status failed

	state, mailboxes, serverMessages                 *prometheus.Desc
	logins, failures, throttled, messages, bytes     *prometheus.Desc
	skipped, gmailKnown                              *prometheus.Desc
	resyncs, resyncS                                 *prometheus.Desc
	storeBatches, storeMessages, storeErrors, storeS *prometheus.Desc
	jobsRunning                                      *prometheus.Desc
	archived, parseErrors, expunged, skippedMsgs     *prometheus.Desc
	backlog, scrapeErrors                            *prometheus.Desc
	attPending, attachments, attAbandoned            *prometheus.Desc
	timestamps, timestampFailures                    *prometheus.Desc
	gapChecks, gapFound, gapFetched, gapMissing      *prometheus.Desc
}

func newCollector(s *Service) *collector {
	acct := []string{"account"}
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &collector{s: s,
		state:          d("mailvault_account_state", "1 for the state each account's harvester is in.", "account", "state"),
		mailboxes:      d("mailvault_account_mailboxes", "Mailboxes harvested per account.", acct...),
		serverMessages: d("mailvault_account_server_messages", "Messages on the server, per account, at the last look.", acct...),
		logins:         d("mailvault_harvest_logins_total", "Successful IMAP logins.", acct...),
		failures:       d("mailvault_harvest_failures_total", "Sessions ended by an error (each followed by a reconnect).", acct...),
		throttled:      d("mailvault_harvest_throttled_total", "Sessions ended by the server saying slow down (counted in failures too; each followed by a longer wait).", acct...),
		messages:       d("mailvault_harvest_messages_total", "Messages fetched and handed to the archive.", acct...),
		bytes:          d("mailvault_harvest_bytes_total", "Bytes of the messages fetched.", acct...),
		gmailKnown: d("mailvault_harvest_gmail_known_total",
			"Messages recorded from Gmail by X-GM-MSGID, already archived under another label: not downloaded again.", acct...),
		skipped: d("mailvault_harvest_skipped_total", "Messages recorded as skipped (could not be fetched, or over max_message_bytes).", acct...),
		resyncs: d("mailvault_harvest_resyncs_total", "Syncs of a mailbox's flags and expunges, by how: sweep (every UID's flags), changedsince (CONDSTORE) or qresync.",
			"account", "way"),
		resyncS:       d("mailvault_harvest_resync_seconds_total", "Time those syncs took, the archive's part included.", acct...),
		storeBatches:  d("mailvault_store_batches_total", "Batches of fetched messages stored in the archive."),
		storeMessages: d("mailvault_store_messages_total", "Messages stored (blob, catalog, index queue)."),
		storeErrors:   d("mailvault_store_errors_total", "Batches the archive failed to store (the harvester retries them)."),
		storeS:        d("mailvault_store_seconds_total", "Time spent storing batches, including waits for the index (back-pressure)."),
		jobsRunning:   d("mailvault_jobs_running", "Jobs running (imports, verify, reindex), by kind.", "kind"),
		archived:      d("mailvault_account_archived_messages", "Copies archived per account (occurrences, expunged ones included), as status shows them.", acct...),
		parseErrors:   d("mailvault_account_parse_errors", "Messages per account that could not be fully parsed (archived byte-exact all the same).", acct...),
		expunged:      d("mailvault_account_expunged_messages", "Archived copies per account that the server has expunged.", acct...),
		skippedMsgs:   d("mailvault_account_skipped_messages", "Messages per account recorded as skipped (the server would not deliver them, or over max_message_bytes).", acct...),
		backlog:       d("mailvault_index_backlog_messages", "Messages the index has not caught up with."),
		attPending:    d("mailvault_attachments_pending_messages", "Messages whose attachments wait for text extraction."),
		attachments: d("mailvault_attachments", "Attachments looked at by text extraction, by how it ended (ok, truncated, failed) and reason.",
			"status", "reason"),
		attAbandoned: d("mailvault_extract_abandoned", "Extractions past their deadline still running (an extractor that does not stop)."),
		scrapeErrors: d("mailvault_status_errors_total", "Scrapes whose status could not be read (the catalog figures are then missing)."),
		timestamps:   d("mailvault_ledger_timestamps_total", "Ledger checkpoints timestamped by the TSA (ledger.tsa_url)."),
		timestampFailures: d("mailvault_ledger_timestamp_failures_total",
			"TSA requests that failed or were refused (the checkpoint is kept; the next one tries again)."),
		gapChecks: d("mailvault_gap_checks_total", "Gap checks of a mailbox (periodic and on demand) since serve started.", acct...),
		gapFound: d("mailvault_gap_found_total",
			"Messages gap checks found on the server below the checkpoint and not in the archive.", acct...),
		gapFetched: d("mailvault_gap_fetched_total", "Of those, messages the checks fetched into the archive.", acct...),
		gapMissing: d("mailvault_gap_missing_messages",
			"Messages still missing from the archive at each mailbox's last gap check (found and not fetched), summed per account.", acct...),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.state, c.mailboxes, c.serverMessages, c.logins, c.failures, c.throttled, c.messages,
		c.bytes, c.skipped, c.gmailKnown, c.resyncs, c.resyncS, c.storeBatches, c.storeMessages, c.storeErrors, c.storeS, c.jobsRunning,
		c.archived, c.parseErrors, c.expunged, c.skippedMsgs, c.backlog, c.scrapeErrors, c.timestamps, c.timestampFailures,
		c.attPending, c.attachments, c.attAbandoned, c.gapChecks, c.gapFound, c.gapFetched, c.gapMissing} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	gauge, counter := prometheus.GaugeValue, prometheus.CounterValue
	for i, s := range c.s.Harvesters() {
		n := 0
		for _, m := range s.Mailboxes {
			n += int(m.ServerMessages)
		}
		ch <- prometheus.MustNewConstMetric(c.state, gauge, 1, s.Account, string(s.State))
		ch <- prometheus.MustNewConstMetric(c.mailboxes, gauge, float64(len(s.Mailboxes)), s.Account)
		ch <- prometheus.MustNewConstMetric(c.serverMessages, gauge, float64(n), s.Account)
		ch <- prometheus.MustNewConstMetric(c.logins, counter, float64(s.Counters.Logins), s.Account)
		ch <- prometheus.MustNewConstMetric(c.failures, counter, float64(s.Counters.Failures), s.Account)
		ch <- prometheus.MustNewConstMetric(c.throttled, counter, float64(s.Counters.Throttled), s.Account)
		ch <- prometheus.MustNewConstMetric(c.messages, counter, float64(s.Counters.Messages), s.Account)
		ch <- prometheus.MustNewConstMetric(c.bytes, counter, float64(s.Counters.Bytes), s.Account)
		ch <- prometheus.MustNewConstMetric(c.skipped, counter, float64(s.Counters.Skipped), s.Account)
		ch <- prometheus.MustNewConstMetric(c.gmailKnown, counter, float64(s.Counters.GmailKnown), s.Account)
		ch <- prometheus.MustNewConstMetric(c.resyncs, counter, float64(s.Counters.Sweeps), s.Account, "sweep")
		ch <- prometheus.MustNewConstMetric(c.resyncs, counter, float64(s.Counters.ChangedSince), s.Account, "changedsince")
		ch <- prometheus.MustNewConstMetric(c.resyncs, counter, float64(s.Counters.QResyncs), s.Account, "qresync")
		ch <- prometheus.MustNewConstMetric(c.resyncS, counter, float64(s.Counters.ResyncNanos)/1e9, s.Account)
		// Harvesters returns the harvesters' states in their order.
		g := c.s.harvesters[i].GapCounters()
		ch <- prometheus.MustNewConstMetric(c.gapChecks, counter, float64(g.Checks), s.Account)
		ch <- prometheus.MustNewConstMetric(c.gapFound, counter, float64(g.Missing), s.Account)
		ch <- prometheus.MustNewConstMetric(c.gapFetched, counter, float64(g.Fetched), s.Account)
	}
	st := &c.s.sink.stats
	ch <- prometheus.MustNewConstMetric(c.storeBatches, counter, float64(st.batches.Load()))
	ch <- prometheus.MustNewConstMetric(c.storeMessages, counter, float64(st.messages.Load()))
	ch <- prometheus.MustNewConstMetric(c.storeErrors, counter, float64(st.errors.Load()))
	ch <- prometheus.MustNewConstMetric(c.storeS, counter, time.Duration(st.storeNanos.Load()).Seconds())
	// The catalog's figures come from the one status model (Status), as the
	// status page, /api/status and `mailvault status` show them.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if st, err := c.s.Status(ctx, Operator()); err != nil {
		c.failed.Add(1)
		c.s.log.Warn("metrics: status", "err", err)
	} else {
		type sums struct{ archived, parse, expunged, skipped int }
		per := map[string]*sums{}
		for _, m := range st.Mailboxes {
			x := per[m.Account]
			if x == nil {
				x = &sums{}
				per[m.Account] = x
			}
			x.archived += m.Occurrences
			x.parse += m.ParseErrors
			x.expunged += m.Expunged
			x.skipped += m.Skipped
		}
		for a, x := range per {
			ch <- prometheus.MustNewConstMetric(c.archived, gauge, float64(x.archived), a)
			ch <- prometheus.MustNewConstMetric(c.parseErrors, gauge, float64(x.parse), a)
			ch <- prometheus.MustNewConstMetric(c.expunged, gauge, float64(x.expunged), a)
			ch <- prometheus.MustNewConstMetric(c.skippedMsgs, gauge, float64(x.skipped), a)
		}
		// The last check of each mailbox, from the catalog: an account
		// with no mailbox checked yet has no series.
		if cp := st.Completeness; cp != nil {
			missing := map[string]int{}
			for _, m := range cp.Mailboxes {
				missing[m.Account] += m.Missing - m.Fetched
			}
			for a, n := range missing {
				ch <- prometheus.MustNewConstMetric(c.gapMissing, gauge, float64(n), a)
			}
		}
		ch <- prometheus.MustNewConstMetric(c.backlog, gauge, float64(st.Unindexed))
		if at := st.Attachments; at != nil {
			ch <- prometheus.MustNewConstMetric(c.attPending, gauge, float64(at.Pending))
			ch <- prometheus.MustNewConstMetric(c.attAbandoned, gauge, float64(at.Abandoned))
			truncated := 0
			for r, n := range at.Truncated {
				truncated += n
				ch <- prometheus.MustNewConstMetric(c.attachments, gauge, float64(n), "truncated", r)
			}
			failed := 0
			for r, n := range at.Failed {
				failed += n
				ch <- prometheus.MustNewConstMetric(c.attachments, gauge, float64(n), "failed", r)
			}
			ch <- prometheus.MustNewConstMetric(c.attachments, gauge, float64(at.Extracted-truncated), "ok", "")
			ch <- prometheus.MustNewConstMetric(c.attachments, gauge, float64(at.Seen-at.Extracted-failed), "unsupported", "")
		}
	}
	ch <- prometheus.MustNewConstMetric(c.scrapeErrors, counter, float64(c.failed.Load()))
	if lg := c.s.opts.Ledger; lg != nil {
		ok, failed := lg.TimestampCounts()
		ch <- prometheus.MustNewConstMetric(c.timestamps, counter, float64(ok))
		ch <- prometheus.MustNewConstMetric(c.timestampFailures, counter, float64(failed))
	}
	running := map[JobKind]int{JobImport: 0, JobVerify: 0, JobReindex: 0}
	for _, j := range c.s.jobs.list(Operator()) {
		if j.State == JobRunning {
			running[j.Kind]++
		}
	}
	for k, n := range running {
		ch <- prometheus.MustNewConstMetric(c.jobsRunning, gauge, float64(n), string(k))
	}
}

// MetricsHandler serves the service's metrics with the process and Go
// runtime collectors.
func (s *Service) MetricsHandler() http.Handler { return s.MetricsHandlerWith() }

// MetricsHandlerWith is MetricsHandler with the collectors of other
// components of the process (the journal listener's).
func (s *Service) MetricsHandlerWith(extra ...prometheus.Collector) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(s), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collectors.NewGoCollector())
	reg.MustRegister(extra...)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}
