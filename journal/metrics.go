package journal

import "github.com/prometheus/client_golang/prometheus"

// metrics of the journal listener. Labels are bounded: the refusal reason
// is one of a fixed set (network, sessions, size, auth, shutdown, read,
// disk_full, store_error).
type metrics struct {
	accepted   prometheus.Counter
	bytes      prometheus.Counter
	batches    prometheus.Counter
	sessions   prometheus.Gauge
	refused    *prometheus.CounterVec
	ackSeconds prometheus.Histogram
}

func newMetrics() *metrics {
	return &metrics{
		accepted: prometheus.NewCounter(prometheus.CounterOpts{Name: "mailvault_journal_accepted_total",
			Help: "Journaled messages stored durably and acknowledged."}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "mailvault_journal_bytes_total",
			Help: "Bytes of the journaled messages stored."}),
		batches: prometheus.NewCounter(prometheus.CounterOpts{Name: "mailvault_journal_batches_total",
			Help: "Store batches of the journal committer (accepted/batches is the group-commit factor)."}),
		sessions: prometheus.NewGauge(prometheus.GaugeOpts{Name: "mailvault_journal_sessions",
			Help: "SMTP and LMTP sessions open."}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mailvault_journal_refused_total",
			Help: "Connections, transactions and messages refused, by reason."}, []string{"reason"}),
		ackSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "mailvault_journal_ack_seconds",
			Help:    "From the end of DATA to the reply: the time to make a message durable.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
	}
}

// Collectors returns the server's metrics, for the caller's registry;
// none for a nil Server (no journal configured).
func (s *Server) Collectors() []prometheus.Collector {
	if s == nil {
		return nil
	}
	m := s.metrics
	return []prometheus.Collector{m.accepted, m.bytes, m.batches, m.sessions, m.refused, m.ackSeconds}
}
