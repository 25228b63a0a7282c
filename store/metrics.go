package store

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the store's latency and error counts; nil disables them.
type Metrics struct {
	latency *prometheus.HistogramVec
	errors  *prometheus.CounterVec
	// group is how many ingest calls each ingest transaction held (group
	// commit, PostgreSQL).
	group prometheus.Histogram
}

// NewMetrics registers the store's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "etlhub_store_operation_duration_seconds",
			Help:    "Latency of store operations.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"op"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "etlhub_store_errors_total",
			Help: "Store operations that failed.",
		}, []string{"op"}),
	}
	g := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "etlhub_store_ingest_group_calls",
		Help:    "Ingest calls (pushes, collections) stored by one transaction: concurrent calls commit together (PostgreSQL).",
		Buckets: []float64{1, 2, 4, 8, 16, 32},
	})
	m.group = g
	reg.MustRegister(m.latency, m.errors, g)
	return m
}

func (m *Metrics) observe(op string, start time.Time) {
	if m != nil {
		m.latency.WithLabelValues(op).Observe(time.Since(start).Seconds())
	}
}

func (m *Metrics) fail(op string) {
	if m != nil {
		m.errors.WithLabelValues(op).Inc()
	}
}

func (m *Metrics) grouped(calls, _ int) {
	if m != nil {
		m.group.Observe(float64(calls))
	}
}
