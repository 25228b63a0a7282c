package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/etlhub/etlhub/alerting"
	"github.com/etlhub/etlhub/api"
	"github.com/etlhub/etlhub/collectors"
	"github.com/etlhub/etlhub/internal/lifecycle"
	"github.com/etlhub/etlhub/model"
	"github.com/etlhub/etlhub/notifier"
	"github.com/etlhub/etlhub/store"
	"github.com/prometheus/client_golang/prometheus"
)

// alerting is the alert loop's part of the config: its own section and,
// from the others, only what it uses.
func (c *Config) alerting(now func() time.Time) alerting.Config {
	down := map[string]time.Duration{}
	depSev := map[string]map[string]model.Severity{}
	for _, s := range c.Sources {
		down[s.Name] = s.DownAfter
		if len(s.Severity) > 0 {
			depSev[s.Name] = s.Severity
		}
	}
	for _, s := range c.Logs.Searches {
		down[model.LogSearchSource(s.Name)] = s.DownAfter
	}
	var receivers []string
	for _, r := range c.Notify.Receivers {
		receivers = append(receivers, r.Name)
	}
	return alerting.Config{Rules: c.Rules, Jobs: c.Jobs, DownAfter: down, DependencySeverity: depSev, Router: c.Notify.Router(), Inhibit: c.Notify.inhibit,
		Receivers: receivers, IsPagerDuty: c.Notify.isPagerDuty, PagerDutyWebhookSecret: c.Notify.PagerDutyWebhookSecret,
		PagerDutyWebhookWindow: c.Notify.PagerDutyWebhookWindow, Now: now}
}

// collectors is the runner's part of the config: the sources, the log
// searches, and the jobs an activity search speaks for.
func (c *Config) collectors() collectors.RunnerConfig {
	jobs := make([]model.JobKey, 0, len(c.Jobs))
	for _, j := range c.Jobs {
		jobs = append(jobs, model.JobKey{Tenant: j.Tenant, Job: j.Job})
	}
	return collectors.RunnerConfig{Sources: c.Sources, Logs: c.Logs, Jobs: jobs}
}

// Options are what differs between etlhub serve, the demo and replay.
type Options struct {
	Log *slog.Logger
	// Now is the hub's clock (nil: the real one). The demo passes its
	// simulated clock: every part of the hub then reads the same time.
	Now func() time.Time
	// Registry takes the metrics (nil: a new one).
	Registry *prometheus.Registry
	// Horizon, when set, is where the data ends (a replay's scenario end):
	// the rules judge no deadline past it.
	Horizon time.Time
	// Stepped leaves the alert loop out of the services: the caller steps
	// it (Hub.Alerting.Step) on its own clock, as the demo does.
	Stepped bool
	// Store, when set, is an open store to use (a reload keeps it): the
	// hub does not close it. Nil: New opens cfg.Store.
	Store *store.Store
	// Base are metrics beyond the hub's (the process's, the store's when
	// the caller opened it), served by /metrics with them.
	Base prometheus.Gatherer
	// Reload, when set, re-reads the config (POST /api/v1/reload).
	Reload func(ctx context.Context) (api.ReloadResult, error)
}

// ExtraServices, when set, adds services to the singletons of every hub New
// builds, after the hub's own. It is how a test adds a service to app and
// sees it run in etlhub serve, the demo and replay alike (sim's
// TestOneWiring): none of them wires services of its own.
var ExtraServices func(h *Hub) []lifecycle.Service

// Hub is the hub's parts, wired once for serve, the demo and replay.
type Hub struct {
	Config *Config
	// Now is the hub's clock (simulated in the demo and replay).
	Now      func() time.Time
	Store    *store.Store
	Registry *prometheus.Registry
	Ingest   *Ingestor
	Alerting *alerting.Loop
	Worker   *notifier.Worker
	Live     *api.Live
	// Handler is the API and the dashboard.
	Handler http.Handler
	log     *slog.Logger
	group   lifecycle.Group
	// cluster is the leadership on PostgreSQL (nil on SQLite: always the
	// leader).
	cluster *cluster
	leader  prometheus.Gauge
	watch   *storeWatch
	// ownStore: New opened the store, Stop closes it.
	ownStore bool
}

// Leader says whether this hub runs the singletons now (always on SQLite).
func (h *Hub) Leader() bool { return h.cluster == nil || h.cluster.Leader() }

// New opens the store, warms the rules and wires every part; nothing runs
// until Start. cfg must have been validated.
func New(ctx context.Context, cfg *Config, o Options) (*Hub, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	now := o.Now
	if now == nil {
		now = func() time.Time { return time.Now().UTC() }
	}
	reg := o.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	st, ownStore := o.Store, false
	if st == nil {
		var err error
		if st, err = store.Open(ctx, cfg.Store, store.NewMetrics(reg)); err != nil {
			return nil, err
		}
		ownStore = true
		o.Log.Info("store open", "driver", st.Dialect())
	}
	h := &Hub{Config: cfg, Now: now, Store: st, Registry: reg, log: o.Log, Live: api.NewLive(), ownStore: ownStore}
	closeStore := func() {
		if ownStore {
			st.Close()
		}
	}
	h.group.Log = o.Log
	h.Ingest = NewIngestor(st, reg)
	h.Ingest.now = now
	replicaID := cfg.Cluster.ReplicaID
	if replicaID == "" {
		replicaID = newReplicaID()
		cfg.Cluster.ReplicaID = replicaID
	}
	h.watch = newStoreWatch(st, o.Log, now, replicaID, reg)
	// Every replica watches its store: readiness, pushes, blind intervals.
	h.group.Add(h.watch)
	acfg := cfg.alerting(now)
	acfg.Blind = h.watch.Blind
	acfg.Horizon = o.Horizon
	h.Alerting = alerting.New(acfg, st, o.Log, reg)
	if err := h.Alerting.Warm(ctx, now()); err != nil {
		closeStore()
		return nil, fmt.Errorf("rules: %w", err)
	}
	// Whatever is stored (pushed or collected) goes to the rules and is
	// announced to the pages' event streams.
	h.Ingest.after = func(obs []model.Observation, at time.Time, xact int64) {
		h.Alerting.ObserveStored(obs, at, xact)
		h.Live.Changed(obs)
	}
	h.Ingest.measured = h.Alerting.Measure
	h.Worker = newWorker(&cfg.Notify, cfg.PublicURL, st, o.Log, reg, now)
	h.Alerting.SetWorker(h.Worker)
	h.Ingest.logged = h.Alerting.ObserveLogs
	cm := collectors.NewMetrics(reg)
	rc := cfg.collectors()
	runner, err := collectors.NewRunner(rc, collectorSink{h.Ingest}, o.Log, cm, now)
	if err != nil {
		closeStore()
		return nil, err
	}
	for _, name := range runner.Names() {
		cm.Known(name)
	}
	h.leader = prometheus.NewGauge(prometheus.GaugeOpts{Name: "etlhub_leader",
		Help: "1 while this replica is the leader (runs the rules, the alert lifecycle, delivery, collectors, digests, log searches); always 1 on SQLite."})
	reg.MustRegister(h.leader)
	self := store.Replica{ID: replicaID, Address: cfg.Listen, Version: cfg.Version, StartedAt: now()}
	var view clusterView = single{self: self, st: st, now: now}.status
	// The singletons: what one hub of the store must run, and only one. On
	// SQLite this hub is the one, for ever; on PostgreSQL the replica holding
	// the leader's lease runs them, a fresh set each term. Delivery is the
	// leader's too, so notifications go out in order per alert and
	// receiver, from one process.
	var pings *prometheus.CounterVec
	var lastPing prometheus.Gauge
	if cfg.Notify.Watchdog != nil {
		pings, lastPing = newWatchdogMetrics(reg)
	}
	singletons := func(alertLoop lifecycle.Service) []lifecycle.Service {
		s := []lifecycle.Service{lifecycle.NewLoop("notifier", h.Worker.Run)}
		if alertLoop != nil {
			s = append(s, alertLoop)
		}
		if cfg.Notify.Watchdog != nil {
			s = append(s, newWatchdog(*cfg.Notify.Watchdog, cfg.Rules.Tick, st, h.Alerting.LastTick, h.watch, o.Log, pings, lastPing))
		}
		r, err := collectors.NewRunner(rc, collectorSink{h.Ingest}, o.Log, cm, now)
		if err != nil { // the config was validated: not expected
			o.Log.Error("collectors", "error", err)
			r = runner
		}
		s = append(s,
			lifecycle.NewLoop("prune", func(ctx context.Context) { prune(ctx, st, cfg.Retention, o.Log, now) }),
			newDigests(cfg.digests(), st, o.Log, now),
			&lifecycle.Funcs{N: "collectors", StartFn: r.Start, StopFn: r.Stop},
		)
		if ExtraServices != nil {
			s = append(s, ExtraServices(h)...)
		}
		return s
	}
	if st.Dialect() == "postgres" {
		if o.Stepped {
			closeStore()
			return nil, fmt.Errorf("a stepped hub (the demo) runs on SQLite only")
		}
		h.cluster = newCluster(cfg.Cluster, self, cfg.Rules.Tick, st, h.Alerting, o.Log, now, h.leader, func() []lifecycle.Service { return singletons(h.Alerting.Service()) })
		view = h.cluster.status
		h.group.Add(h.cluster)
	} else {
		h.leader.Set(1)
		// The order of start; they stop in reverse: the collectors and the
		// schedules stop before the alert loop, the loop before the worker
		// that delivers what it queued.
		var alertLoop lifecycle.Service
		if !o.Stepped {
			alertLoop = h.Alerting
		}
		h.group.Add(singletons(alertLoop)...)
	}
	var gatherer prometheus.Gatherer = reg
	if o.Base != nil {
		gatherer = prometheus.Gatherers{o.Base, reg}
	}
	h.Handler = api.New(api.Options{
		Live:  h.Live,
		Store: st, Ingest: h.Ingest, Jobs: cfg.Jobs, Auth: cfg.Auth, Gatherer: gatherer, Registerer: reg, Reload: o.Reload, Views: h.Alerting, Actions: h.Alerting,
		Log: o.Log, MaxBodyBytes: cfg.Ingest.MaxBodyBytes, MaxItems: cfg.Ingest.MaxItems, Now: now,
		MaxUnconfiguredJobs: cfg.Ingest.MaxUnconfiguredJobs, MaxSilences: cfg.Silences.MaxActive, TrustedProxies: cfg.TrustedProxies,
		Cluster: view, Health: h.watch, Reports: runReports{runner},
	})
	if h.cluster != nil {
		h.Handler = h.cluster.forward(h.Handler)
	}
	return h, nil
}

// Services lists the hub's long-running parts in start order.
func (h *Hub) Services() []lifecycle.Service { return h.group.Services() }

// Start starts every service.
func (h *Hub) Start(ctx context.Context) error { return h.group.Start(ctx) }

// Stop stops every service (in reverse order) and closes the store (when
// New opened it).
func (h *Hub) Stop() {
	h.group.Stop()
	if !h.ownStore {
		return
	}
	if err := h.Store.Close(); err != nil {
		h.log.Warn("closing the store", "error", err)
	}
}
