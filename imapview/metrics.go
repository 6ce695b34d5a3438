package imapview

import "github.com/prometheus/client_golang/prometheus"

// metrics of the IMAP view. Labels are bounded: the login result is ok,
// failed or refused; the refusal of a connection is connections or
// address.
type metrics struct {
	conns    prometheus.Gauge
	refused  *prometheus.CounterVec
	logins   *prometheus.CounterVec
	fetched  prometheus.Counter
	bytes    prometheus.Counter
	searches prometheus.Counter
}

func newMetrics() *metrics {
	return &metrics{
		conns: prometheus.NewGauge(prometheus.GaugeOpts{Name: "mailvault_imap_connections",
			Help: "Connections open to the read-only IMAP view."}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mailvault_imap_refused_total",
			Help: "Connections refused by the IMAP view's limits, by limit (connections, address)."}, []string{"limit"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mailvault_imap_logins_total",
			Help: "LOGINs to the IMAP view, by result (ok, failed, refused by the login guard)."}, []string{"result"}),
		fetched: prometheus.NewCounter(prometheus.CounterOpts{Name: "mailvault_imap_messages_read_total",
			Help: "Messages whose content the IMAP view served (bodies, sections, ENVELOPE, BODYSTRUCTURE)."}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "mailvault_imap_message_bytes_total",
			Help: "Bytes of the stored messages the IMAP view read to answer FETCH."}),
		searches: prometheus.NewCounter(prometheus.CounterOpts{Name: "mailvault_imap_searches_total",
			Help: "SEARCH and UID SEARCH commands answered by the IMAP view."}),
	}
}

// Collectors returns the view's metrics, for the caller's registry; none
// for a nil Server (no IMAP view configured).
func (s *Server) Collectors() []prometheus.Collector {
	if s == nil {
		return nil
	}
	m := s.metrics
	return []prometheus.Collector{m.conns, m.refused, m.logins, m.fetched, m.bytes, m.searches}
}
