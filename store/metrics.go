package store

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the store's latency and error counts; nil disables them.
type Metrics struct {
	latency *prometheus.HistogramVec
	errors  *prometheus.CounterVec
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
	reg.MustRegister(m.latency, m.errors)
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
