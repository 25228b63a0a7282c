package collectors

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/etlhub/etlhub/collectors/sumologic"
	"github.com/etlhub/etlhub/internal/redact"
	"github.com/etlhub/etlhub/internal/retry"
	"github.com/etlhub/etlhub/model"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/robfig/cron/v3"
)

// Sink is where collected observations, measurements and source health go
// (the store, through the hub's ingest path).
type Sink interface {
	Ingest(ctx context.Context, obs []model.Observation) error
	// Measure stores probes' measurements (validated, secrets scrubbed) and
	// hands them to the rules.
	Measure(ctx context.Context, ms []model.Measurement) error
	// ObserveLogs hands log searches' signals to the rules.
	ObserveLogs(ctx context.Context, sigs []model.LogSignal) error
	SaveSource(ctx context.Context, h model.SourceHealth) error
	Source(ctx context.Context, name string) (model.SourceHealth, error)
}

// ParseSchedule parses a source's schedule: 5-field cron (UTC) or @every D.
func ParseSchedule(s string) (cron.Schedule, error) {
	sch, err := model.ParseCron(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not a cron expression or @every duration: %v", s, err)
	}
	return sch, nil
}

// RunnerConfig is what the runner schedules: the sources section, the logs
// section (each search a source named logs:NAME) and the configured jobs
// (an activity search speaks for each).
type RunnerConfig struct {
	Sources []SourceConfig
	Logs    LogsConfig
	Jobs    []model.JobKey
}

// Runner runs every source and log search on its own schedule.
type Runner struct {
	sink    Sink
	log     *slog.Logger
	now     func() time.Time
	metrics *Metrics
	sources []*source
	cron    *cron.Cron
	wg      sync.WaitGroup
	ctx     context.Context
	cancel  context.CancelFunc
}

type source struct {
	cfg    SourceConfig
	red    *redact.Scrubber // the source's secrets, out of health, logs and observations
	c      Collector
	policy retry.Policy
	mu     sync.Mutex // guards health; also one collection at a time
	health model.SourceHealth
}

// NewRunner builds collectors for the sources and log searches of rc
// (already validated).
func NewRunner(rc RunnerConfig, sink Sink, log *slog.Logger, m *Metrics, now func() time.Time) (*Runner, error) {
	r := &Runner{sink: sink, log: log, now: now, metrics: m}
	for _, c := range rc.Sources {
		col, err := New(c)
		if err != nil {
			return nil, err
		}
		if sp, ok := col.(*storeProbe); ok {
			sp.ping, _ = sink.(Pinger)
		}
		r.add(c, col, c.scrubber())
	}
	var sumo *sumologic.Client
	if rc.Logs.SumoLogic != nil {
		sumo = sumologic.New(*rc.Logs.SumoLogic)
	}
	red := logSearchScrubber(&rc.Logs)
	for _, s := range rc.Logs.Searches {
		if s.Source == "sumologic" && sumo == nil {
			return nil, fmt.Errorf("log search %q: sumologic needs the logs.sumologic section", s.Name)
		}
		r.add(s.source(), &logSearch{cfg: s, sumo: sumo, jobs: rc.Jobs}, red)
	}
	return r, nil
}

func (r *Runner) add(c SourceConfig, col Collector, red *redact.Scrubber) {
	r.sources = append(r.sources, &source{
		cfg: c, c: col, red: red,
		policy: retry.Policy{Base: c.Backoff.Base, Max: c.Backoff.Max, Factor: 2, Jitter: 0.5},
		health: model.SourceHealth{Name: c.Name, Kind: c.Kind},
	})
}

// Names are the names of what the runner schedules (sources, then log
// searches as logs:NAME).
func (r *Runner) Names() []string {
	out := make([]string, 0, len(r.sources))
	for _, s := range r.sources {
		out = append(out, s.cfg.Name)
	}
	return out
}

// Start restores each source's health, runs every source once, and schedules them.
func (r *Runner) Start(ctx context.Context) error {
	r.ctx, r.cancel = context.WithCancel(ctx)
	r.cron = cron.New(cron.WithLocation(time.UTC), cron.WithParser(model.Cron),
		cron.WithChain(cron.Recover(CronLogger{r.log}), cron.SkipIfStillRunning(CronLogger{r.log})))
	for _, s := range r.sources {
		if h, err := r.sink.Source(ctx, s.cfg.Name); err == nil {
			h.Kind = s.cfg.Kind
			s.health = h
		}
		sch, err := ParseSchedule(s.cfg.Schedule)
		if err != nil {
			return err
		}
		s := s
		r.cron.Schedule(sch, cron.FuncJob(func() { r.RunOnce(r.ctx, s.cfg.Name) }))
		r.wg.Add(1)
		go func() { defer r.wg.Done(); r.RunOnce(r.ctx, s.cfg.Name) }()
	}
	r.cron.Start()
	return nil
}

// Stop stops scheduling, waits for running collections to end and closes
// the collectors that hold connections (the probes).
func (r *Runner) Stop() {
	if r.cron != nil {
		<-r.cron.Stop().Done()
		r.cancel()
		r.wg.Wait()
	}
	for _, s := range r.sources {
		if c, ok := s.c.(io.Closer); ok {
			if err := c.Close(); err != nil {
				r.log.Debug("closing a collector", "source", s.cfg.Name, "error", err)
			}
		}
	}
}

// Health returns a copy of every source's health.
func (r *Runner) Health() []model.SourceHealth {
	out := make([]model.SourceHealth, 0, len(r.sources))
	for _, s := range r.sources {
		s.mu.Lock()
		out = append(out, s.health)
		s.mu.Unlock()
	}
	return out
}

// RunOnce collects from the named source now, unless it is backing off after
// failures or already collecting. It reports whether a collection ran.
func (r *Runner) RunOnce(ctx context.Context, name string) bool {
	var s *source
	for _, x := range r.sources {
		if x.cfg.Name == name {
			s = x
		}
	}
	if s == nil || !s.mu.TryLock() {
		return false
	}
	defer s.mu.Unlock()
	start := r.now().UTC()
	if next := s.health.NextAttemptAt; next != nil && start.Before(*next) {
		r.log.Debug("source backing off", "source", name, "until", next.Format(time.RFC3339))
		return false
	}
	n, err := r.collect(ctx, s, start)
	err = s.red.Error(err)
	d := r.now().Sub(start)
	s.health.Record(start, d, n, err)
	s.health.NextAttemptAt = nil
	log := r.log.With("source", name, "kind", s.cfg.Kind)
	if err != nil {
		next := s.policy.NextAt(start, s.health.ConsecutiveFailures, rand.Float64())
		s.health.NextAttemptAt = &next
		log.Warn("collection failed", "error", err, "consecutive_failures", s.health.ConsecutiveFailures,
			"next_attempt", next.Format(time.RFC3339))
	} else {
		log.Debug("collected", "observations", n, "duration", d)
	}
	r.metrics.record(name, d, n, err)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if serr := r.sink.SaveSource(sctx, s.health); serr != nil {
		log.Error("saving source health failed", "error", serr)
	}
	return true
}

// collect runs the collector with its timeout, validates and stores; a panic
// in a collector is a failure of that attempt, not of the hub.
func (r *Runner) collect(ctx context.Context, s *source, now time.Time) (n int, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("collector panicked: %v", p)
		}
	}()
	cctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	res, err := s.c.Collect(cctx, now)
	if err != nil {
		// A probe's Up=false measurement is what it saw: stored, then the
		// attempt fails (health, backoff).
		if len(res.Measurements) > 0 {
			if _, merr := r.measure(ctx, s, res.Measurements); merr != nil {
				r.log.Error("storing measurements failed", "source", s.cfg.Name, "error", merr)
			}
		}
		return 0, err
	}
	for i := range res.Rejected {
		res.Rejected[i] = s.red.Error(res.Rejected[i])
	}
	for i := range res.Observations {
		o := &res.Observations[i]
		o.Error, o.Stage, o.URL = s.red.String(o.Error), model.Stage(s.red.String(string(o.Stage))), s.red.String(o.URL)
	}
	nm, merr := r.measure(ctx, s, res.Measurements)
	if merr != nil {
		return 0, merr
	}
	if res.Logs != nil {
		for i := range res.Logs {
			for j := range res.Logs[i].Examples {
				res.Logs[i].Examples[j].Text = s.red.String(res.Logs[i].Examples[j].Text)
			}
		}
		if err := r.sink.ObserveLogs(ctx, res.Logs); err != nil {
			return 0, fmt.Errorf("log signals: %w", err)
		}
	}
	nm += res.Lines
	if len(res.Rejected) > 0 {
		r.metrics.rejected(s.cfg.Name, len(res.Rejected))
		r.log.Warn("source sent invalid observations", "source", s.cfg.Name,
			"rejected", len(res.Rejected), "first", res.Rejected[0].Error())
		if len(res.Observations) == 0 && nm == 0 {
			return 0, fmt.Errorf("all %d items are invalid; first: %w", len(res.Rejected), res.Rejected[0])
		}
	}
	if len(res.Observations) == 0 {
		return nm, nil
	}
	ictx, icancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer icancel()
	if err := r.sink.Ingest(ictx, res.Observations); err != nil {
		return 0, fmt.Errorf("store: %w", err)
	}
	return len(res.Observations) + nm, nil
}

// measure scrubs the source's secrets from measurements, names the source,
// validates them (an invalid one is counted and logged, not stored) and
// stores the rest; it returns how many were stored.
func (r *Runner) measure(ctx context.Context, s *source, ms []model.Measurement) (int, error) {
	keep := ms[:0:0]
	for i := range ms {
		m := ms[i]
		m.Source = s.cfg.Name
		m.Error = model.Clip(strings.ToValidUTF8(s.red.String(m.Error), "\uFFFD"), model.MaxErrorLen)
		m.Subject = s.red.String(m.Subject)
		if err := m.Validate(); err != nil {
			r.metrics.rejected(s.cfg.Name, 1)
			r.log.Warn("source sent an invalid measurement", "source", s.cfg.Name, "error", s.red.Error(err))
			continue
		}
		keep = append(keep, m)
	}
	if len(keep) == 0 {
		return 0, nil
	}
	mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := r.sink.Measure(mctx, keep); err != nil {
		return 0, fmt.Errorf("store measurements: %w", err)
	}
	r.metrics.measured(keep)
	return len(keep), nil
}

// CronLogger adapts slog to robfig/cron's logger.
type CronLogger struct{ L *slog.Logger }

// Info logs cron's chatter at debug level.
func (c CronLogger) Info(msg string, kv ...any) { c.L.Debug("cron: "+msg, kv...) }

// Error logs cron's errors (a recovered panic, a skipped run).
func (c CronLogger) Error(err error, msg string, kv ...any) {
	c.L.Error("cron: "+msg, append(kv, "error", err)...)
}

// Metrics count collections.
type Metrics struct {
	runs     *prometheus.CounterVec
	duration *prometheus.HistogramVec
	obs      *prometheus.CounterVec
	invalid  *prometheus.CounterVec
	up       *prometheus.GaugeVec
	// depUp and depValue are the latest measurement of each subject.
	depUp    *prometheus.GaugeVec
	depValue *prometheus.GaugeVec
	depAt    *prometheus.GaugeVec
}

// NewMetrics registers the collectors' metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "etlhub_collector_runs_total",
			Help: "Collections by source and result (ok, error)."}, []string{"source", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "etlhub_collector_duration_seconds",
			Help: "Duration of collections.", Buckets: prometheus.DefBuckets}, []string{"source"}),
		obs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "etlhub_collector_observations_total",
			Help: "Observations collected."}, []string{"source"}),
		invalid: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "etlhub_collector_invalid_observations_total",
			Help: "Items a source sent that were not valid observations."}, []string{"source"}),
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "etlhub_source_up",
			Help: "1 when the source's last collection succeeded."}, []string{"source"}),
	}
	m.depUp = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "etlhub_dependency_up",
		Help: "1 when the latest probe of the dependency (subject) reached it."}, []string{"subject", "kind", "source"})
	m.depValue = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "etlhub_dependency_value",
		Help: "The latest probe's values (name: latency_ms, memory_used_ratio, p95_ms, error_rate, ...) per dependency."},
		[]string{"subject", "kind", "source", "name"})
	m.depAt = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "etlhub_dependency_last_probe_timestamp_seconds",
		Help: "When the dependency was last measured (Unix time)."}, []string{"subject", "kind", "source"})
	reg.MustRegister(m.runs, m.duration, m.obs, m.invalid, m.up, m.depUp, m.depValue, m.depAt)
	return m
}

// measured sets the dependency gauges from the latest measurements; a value
// the latest probe did not report is removed, not left at its old value.
func (m *Metrics) measured(ms []model.Measurement) {
	if m == nil {
		return
	}
	for i := range ms {
		x := &ms[i]
		up := 0.0
		if x.Up {
			up = 1
		}
		m.depUp.WithLabelValues(x.Subject, string(x.Kind), x.Source).Set(up)
		m.depAt.WithLabelValues(x.Subject, string(x.Kind), x.Source).Set(float64(x.At.UnixMilli()) / 1000)
		m.depValue.DeletePartialMatch(prometheus.Labels{"subject": x.Subject, "source": x.Source})
		for _, name := range x.ValueNames() {
			m.depValue.WithLabelValues(x.Subject, string(x.Kind), x.Source, name).Set(x.Values[name])
		}
	}
}

func (m *Metrics) record(source string, d time.Duration, n int, err error) {
	if m == nil {
		return
	}
	m.duration.WithLabelValues(source).Observe(d.Seconds())
	if err != nil {
		m.runs.WithLabelValues(source, "error").Inc()
		m.up.WithLabelValues(source).Set(0)
		return
	}
	m.runs.WithLabelValues(source, "ok").Inc()
	m.obs.WithLabelValues(source).Add(float64(n))
	m.up.WithLabelValues(source).Set(1)
}

func (m *Metrics) rejected(source string, n int) {
	if m != nil {
		m.invalid.WithLabelValues(source).Add(float64(n))
	}
}
