package collectors

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/internal/redact"
	"github.com/etlhub/etlhub/internal/retry"
	"github.com/etlhub/etlhub/model"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// probeFunc is a collector made of a function (a probe of the test's).
type probeFunc func(ctx context.Context, now time.Time) (Result, error)

func (f probeFunc) Collect(ctx context.Context, now time.Time) (Result, error) { return f(ctx, now) }

func runnerWith(t *testing.T, sink Sink, cfg SourceConfig, c Collector, now func() time.Time) (*Runner, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	r := &Runner{sink: sink, log: slog.New(slog.DiscardHandler), now: now, metrics: NewMetrics(reg)}
	r.sources = append(r.sources, &source{cfg: cfg, c: c, red: redact.New("hunter2"),
		policy: retry.Policy{Base: time.Second, Max: time.Minute, Factor: 2},
		health: model.SourceHealth{Name: cfg.Name, Kind: cfg.Kind}})
	return r, reg
}

// The runner's side of the measurement contract: the source's name on each,
// secrets scrubbed, invalid ones refused, a failed probe's Up=false stored
// while the attempt counts as failed (health, backoff), gauges per subject.
func TestRunnerStoresMeasurementsAndFailedProbes(t *testing.T) {
	now := time.Date(2026, 9, 1, 3, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	sink := &memSink{}
	up := true
	probe := probeFunc(func(_ context.Context, at time.Time) (Result, error) {
		good := model.Measurement{At: at, Source: "whatever", Subject: "redis:main", Kind: model.KindRedis, Up: true,
			Values: map[string]float64{model.ValueLatencyMs: 0.7, model.ValueMemoryUsedRatio: 0.5}}
		if !up {
			good.Up, good.Values = false, nil
			good.Error = "NOAUTH password hunter2 refused"
			return Result{Measurements: []model.Measurement{good}}, errors.New("redis redis:main: NOAUTH password hunter2 refused")
		}
		bad := model.Measurement{At: at, Subject: "mongodb:x", Kind: model.KindRedis, Up: true}
		return Result{Measurements: []model.Measurement{good, bad}}, nil
	})
	cfg := SourceConfig{Name: "redis-main", Kind: "redis", Timeout: time.Second}
	r, reg := runnerWith(t, sink, cfg, probe, clock)
	if !r.RunOnce(context.Background(), "redis-main") {
		t.Fatal("did not run")
	}
	ms := sink.measurements()
	if len(ms) != 1 || ms[0].Source != "redis-main" || ms[0].Subject != "redis:main" {
		t.Fatalf("stored %+v; want the valid one, named by the source", ms)
	}
	if h := r.Health()[0]; !h.Healthy || h.LastObservations != 1 {
		t.Fatalf("health %+v", h)
	}
	if v := testutil.ToFloat64(r.metrics.depValue.WithLabelValues("redis:main", "redis", "redis-main", "memory_used_ratio")); v != 0.5 {
		t.Fatalf("gauge memory_used_ratio %v", v)
	}
	if v := testutil.ToFloat64(r.metrics.invalid.WithLabelValues("redis-main")); v != 1 {
		t.Fatalf("invalid counted %v, want 1", v)
	}
	up = false
	now = now.Add(30 * time.Second)
	r.RunOnce(context.Background(), "redis-main")
	ms = sink.measurements()
	if len(ms) != 2 || ms[1].Up || strings.Contains(ms[1].Error, "hunter2") || !strings.Contains(ms[1].Error, "NOAUTH") {
		t.Fatalf("failed probe stored as %+v; want Up=false with the reason, secret scrubbed", ms[len(ms)-1])
	}
	h := r.Health()[0]
	if h.Healthy || h.NextAttemptAt == nil || strings.Contains(h.LastError, "hunter2") {
		t.Fatalf("health after a failed probe: %+v; want failing with a backoff", h)
	}
	if v := testutil.ToFloat64(r.metrics.depUp.WithLabelValues("redis:main", "redis", "redis-main")); v != 0 {
		t.Fatalf("etlhub_dependency_up %v, want 0", v)
	}
	// The old values of a probe that now reports none are gone, not stale.
	if n := testutil.CollectAndCount(r.metrics.depValue); n != 0 {
		t.Fatalf("%d value gauges left after a failed probe", n)
	}
	_ = reg
}

// The importer collector turns what the importer sees of its dependencies
// (GET /api/v1/dependencies) into measurements of the importer's view: an
// open breaker is down as the importer sees it.
func TestImporterCollectorReadsDependencies(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(401)
			return
		}
		switch r.URL.Path {
		case "/api/v1/runs":
			io.WriteString(w, `{"runs": []}`)
		case "/api/v1/dependencies":
			io.WriteString(w, `{"dependencies": [
			  {"name": "mongo", "calls": 120, "errors": 6, "error_rate": 0.05, "p50_ms": 12, "p95_ms": 240, "in_flight": 3, "breaker": "closed", "window_s": 300},
			  {"name": "redis", "calls": 0, "errors": 0, "in_flight": 0, "breaker": "open", "last_error": "dial tcp: connection refused", "window_s": 300},
			  {"name": "sftp:dade", "calls": 4, "errors": 0, "error_rate": 0, "p50_ms": 80, "p95_ms": 95, "in_flight": 1, "breaker": "half-open", "window_s": 300}]}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	cfg := SourceConfig{Name: "importer-east", Kind: "importer", URL: srv.URL + "/api/v1/runs", Headers: map[string]config.Secret{"Authorization": "Bearer tok"}}
	var p config.Problems
	cfg.Validate(&p, "s")
	sink := &memSink{}
	r, err := NewRunner(RunnerConfig{Sources: []SourceConfig{cfg}}, sink, slog.New(slog.DiscardHandler), nil, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	r.RunOnce(context.Background(), "importer-east")
	ms := sink.measurements()
	if len(ms) != 3 {
		t.Fatalf("measurements %+v", ms)
	}
	by := map[string]model.Measurement{}
	for _, m := range ms {
		by[m.Subject] = m
	}
	mg := by["mongodb:importer-east"]
	if !mg.Up || mg.Kind != model.KindMongoDB || mg.Values[model.ValueP95Ms] != 240 || mg.Values[model.ValueErrorRate] != 0.05 ||
		mg.Values[model.ValueInFlight] != 3 || mg.Values[model.ValueBreakerOpen] != 0 {
		t.Fatalf("mongo %+v", mg)
	}
	if rd := by["redis:importer-east"]; rd.Up || !strings.Contains(rd.Error, "breaker is open") || rd.Values[model.ValueBreakerOpen] != 1 {
		t.Fatalf("redis %+v", rd)
	}
	if sf := by["sftp:importer-east:dade"]; sf.Tenant != "dade" || sf.Values[model.ValueBreakerOpen] != 0.5 {
		t.Fatalf("sftp %+v", sf)
	}
	if h := r.Health()[0]; !h.Healthy {
		t.Fatalf("health %+v", h)
	}
}
