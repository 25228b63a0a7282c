package api

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type httpMetrics struct {
	requests     *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	pushRejected prometheus.Counter
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "etlhub_http_requests_total",
			Help: "API requests by method, route and status code."}, []string{"method", "route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "etlhub_http_request_duration_seconds",
			Help: "API request latency.", Buckets: prometheus.DefBuckets}, []string{"route"}),
		pushRejected: prometheus.NewCounter(prometheus.CounterOpts{Name: "etlhub_push_rejected_total",
			Help: "Pushed items rejected as invalid or out of scope."}),
	}
	reg.MustRegister(m.requests, m.latency, m.pushRejected)
	return m
}

func (m *httpMetrics) observe(method, route string, code int, d time.Duration) {
	m.requests.WithLabelValues(method, route, strconv.Itoa(code)).Inc()
	m.latency.WithLabelValues(route).Observe(d.Seconds())
}
