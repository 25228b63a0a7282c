package importer

import (
	"context"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/etlhub/etlhub/internal/breaker"
	"github.com/etlhub/etlhub/internal/buildinfo"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the importer's Prometheus metrics, served at /metrics.
type metrics struct {
	reg      *prometheus.Registry
	failures *prometheus.CounterVec // failed calls by dependency
	attempts *prometheus.CounterVec // run attempts by tenant and outcome
	// durations are how long run attempts took, by tenant and outcome.
	durations *prometheus.HistogramVec
}

// outcomes are the ends of a run attempt.
var outcomes = []string{"succeeded", "failed", "retrying", "lost", "stopped"}

func newMetrics(cfg *Config, st *runStore, g *guard) *metrics {
	m := &metrics{reg: prometheus.NewRegistry(),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "etlhub_importer_dependency_failures_total",
			Help: "Failed calls to a dependency (redis, mongo, sftp:<tenant>), each retried or failed fast."}, []string{"dependency"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "etlhub_importer_run_attempts_total",
			Help: "Run attempts by outcome: succeeded, failed, retrying (transient failure), lost (lock taken over), stopped."},
			[]string{"tenant", "outcome"}),
	}
	m.durations = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "etlhub_importer_run_duration_seconds",
		Help:    "How long run attempts took (download, validation, load and publish), by tenant and outcome.",
		Buckets: []float64{1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400}}, []string{"tenant", "outcome"})
	m.reg.MustRegister(m.failures, m.attempts, m.durations,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo(cfg.Version), &queueCollector{store: st, depth: prometheus.NewDesc("etlhub_importer_queue_depth",
			"Runs queued or in progress on the tenant's Redis stream.", []string{"tenant"}, nil),
			up: prometheus.NewDesc("etlhub_importer_queue_scrape_ok", "1 when the queue depths could be read from Redis for this scrape.", nil, nil)})
	// Every series exists from the start, so increase() sees the first one.
	for _, t := range cfg.Tenants {
		for _, o := range outcomes {
			m.attempts.WithLabelValues(t.Name, o)
		}
	}
	for _, d := range []string{"redis", "mongo"} {
		m.failures.WithLabelValues(d)
	}
	for _, t := range cfg.Tenants {
		m.failures.WithLabelValues("sftp:" + t.Name)
	}
	for name, b := range g.breakers {
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

// queueCollector reads each tenant's queue length from Redis at scrape time.
type queueCollector struct {
	store     *runStore
	depth, up *prometheus.Desc
}

func (q *queueCollector) Describe(ch chan<- *prometheus.Desc) { ch <- q.depth; ch <- q.up }

func (q *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	pipe := q.store.rdb.Pipeline()
	lens := make([]*redis.IntCmd, len(q.store.tenants))
	for i, t := range q.store.tenants {
		lens[i] = pipe.XLen(ctx, queueKey(t.Name))
	}
	ok := 1.0
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		ok = 0
	}
	for i, t := range q.store.tenants {
		n, err := lens[i].Result()
		if err == redis.Nil {
			n, err = 0, nil
		}
		if err == nil {
			ch <- prometheus.MustNewConstMetric(q.depth, prometheus.GaugeValue, float64(n), t.Name)
		}
	}
	ch <- prometheus.MustNewConstMetric(q.up, prometheus.GaugeValue, ok)
}

// buildInfo is etlhub_importer_build_info{version, revision, goversion} 1.
func buildInfo(version string) prometheus.Collector {
	return buildinfo.Collector("etlhub_importer_build_info", "1, labelled with the version, VCS revision and Go version the importer was built with.", version)
}
