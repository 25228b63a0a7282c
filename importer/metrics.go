package importer

import (
	"net/http"

	"github.com/etlhub/etlhub/internal/breaker"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the importer's Prometheus metrics, served at /metrics.
type metrics struct {
	reg      *prometheus.Registry
	failures *prometheus.CounterVec // failed calls by dependency
	attempts *prometheus.CounterVec // run attempts by tenant and outcome
}

func newMetrics(im *Importer) *metrics {
	m := &metrics{reg: prometheus.NewRegistry(),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "etlhub_importer_dependency_failures_total",
			Help: "Failed calls to a dependency (redis, mongo, sftp:<tenant>), each retried or failed fast."}, []string{"dependency"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "etlhub_importer_run_attempts_total",
			Help: "Run attempts by outcome: succeeded, failed, retrying (transient failure), lost (lock taken over), stopped."},
			[]string{"tenant", "outcome"}),
	}
	m.reg.MustRegister(m.failures, m.attempts)
	for name, b := range im.breakers {
		for _, st := range []breaker.State{breaker.Closed, breaker.HalfOpen, breaker.Open} {
			m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "etlhub_importer_breaker_state",
				Help:        "1 for the state each dependency's circuit breaker is in.",
				ConstLabels: prometheus.Labels{"breaker": name, "state": string(st)}},
				func() float64 {
					if b.Snapshot().State == st {
						return 1
					}
					return 0
				}))
		}
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "etlhub_importer_breaker_opens_total",
			Help: "Times a dependency's circuit breaker opened.", ConstLabels: prometheus.Labels{"breaker": name}},
			func() float64 { return float64(b.Snapshot().Opens) }))
	}
	return m
}

func (m *metrics) handler() http.Handler { return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}) }
