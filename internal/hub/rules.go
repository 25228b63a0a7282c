package hub

import (
	"context"
	"log/slog"
	"time"

	"github.com/etlhub/etlhub/api"
	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/internal/status"
	"github.com/etlhub/etlhub/notifier"
	"github.com/etlhub/etlhub/rules"
	"github.com/etlhub/etlhub/store"
	"github.com/prometheus/client_golang/prometheus"
)

// RulesConfig tunes the rules engine.
type RulesConfig struct {
	// Tick is how often every rule is evaluated.
	Tick time.Duration `yaml:"tick"`
	// History is how far back observations are replayed into the rules at
	// start-up (what they learn durations and rates from).
	History time.Duration `yaml:"history"`
	// PageProbability is the breach probability at which predicted-breach pages.
	PageProbability float64 `yaml:"page_probability"`
	// SlowdownPersistence is the mean remaining length of a slowdown.
	SlowdownPersistence time.Duration `yaml:"slowdown_persistence"`
	// MinHistory is how many nights a job needs before its history is trusted.
	MinHistory int `yaml:"min_history"`
}

// Validate sets defaults and checks the section.
func (r *RulesConfig) Validate(p *config.Problems, key string) {
	d := rules.DefaultParams()
	if r.Tick == 0 {
		r.Tick = 30 * time.Second
	}
	if r.History == 0 {
		r.History = 21 * 24 * time.Hour
	}
	if r.PageProbability == 0 {
		r.PageProbability = d.PageProbability
	}
	if r.SlowdownPersistence == 0 {
		r.SlowdownPersistence = d.SlowdownPersistence
	}
	if r.MinHistory == 0 {
		r.MinHistory = d.MinHistory
	}
	if r.Tick < time.Second || r.Tick > 10*time.Minute {
		p.Add(key+".tick", "%v is outside 1s..10m", r.Tick)
	}
	if r.PageProbability <= 0 || r.PageProbability > 1 {
		p.Add(key+".page_probability", "%v is not in (0, 1]", r.PageProbability)
	}
	if r.MinHistory < 1 {
		p.Add(key+".min_history", "must be at least 1")
	}
}

func (r *RulesConfig) params() rules.Params {
	p := rules.DefaultParams()
	p.PageProbability = r.PageProbability
	p.SlowdownPersistence = r.SlowdownPersistence
	p.MinHistory = r.MinHistory
	return p
}

// ruleLoop evaluates the rules every tick and persists what changed.
type ruleLoop struct {
	cfg       *Config
	st        *store.Store
	engine    *rules.Engine
	log       *slog.Logger
	downAfter map[string]time.Duration
	router    *notifier.Router
	worker    *notifier.Worker
	firing    *prometheus.CounterVec
	ticks     prometheus.Histogram
}

func newRuleLoop(cfg *Config, st *store.Store, log *slog.Logger, reg prometheus.Registerer) *ruleLoop {
	l := &ruleLoop{cfg: cfg, st: st, log: log, engine: rules.NewEngine(cfg.Jobs, cfg.Rules.params(), nil),
		downAfter: map[string]time.Duration{}, router: cfg.Notify.router()}
	for _, s := range cfg.Sources {
		l.downAfter[s.Name] = s.DownAfter
	}
	l.firing = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "etlhub_alert_transitions_total",
		Help: "Alert transitions by rule, severity and status."}, []string{"rule", "severity", "status"})
	l.ticks = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "etlhub_rules_tick_seconds",
		Help: "Time to evaluate every rule once.", Buckets: prometheus.DefBuckets})
	reg.MustRegister(l.firing, l.ticks)
	return l
}

// warm restores active alerts and replays recent history into the engine.
func (l *ruleLoop) warm(ctx context.Context, now time.Time) error {
	active, err := l.st.ListAlerts(ctx, store.AlertFilter{States: []string{"pending", "firing"}, Limit: 1000})
	if err != nil {
		return err
	}
	l.engine.Restore(active)
	n := 0
	err = l.st.ObservationsSince(ctx, now.Add(-l.cfg.Rules.History), func(obs []status.Observation) error {
		n += len(obs)
		l.engine.Observe(obs)
		return nil
	})
	l.log.Info("rules warmed", "active_alerts", len(active), "observations", n)
	return err
}

func (l *ruleLoop) run(ctx context.Context) {
	t := time.NewTicker(l.cfg.Rules.Tick)
	defer t.Stop()
	for {
		l.tick(ctx, time.Now().UTC())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (l *ruleLoop) tick(ctx context.Context, now time.Time) {
	tctx, cancel := context.WithTimeout(ctx, l.cfg.Rules.Tick)
	defer cancel()
	start := time.Now()
	if h, err := l.st.Sources(tctx); err == nil {
		l.engine.SetSources(h, l.downAfter)
	}
	if sil, err := l.st.Silences(tctx, now); err == nil {
		l.engine.SetSilencer(rules.Silencing(sil))
	} else {
		l.log.Warn("reading silences failed", "error", err)
	}
	trans, changed := l.engine.Tick(now)
	notes := notifications(l.router, trans)
	if err := l.st.SaveAlerts(tctx, changed, trans, notes); err != nil {
		l.log.Error("saving alerts failed", "error", err)
	}
	if len(notes) > 0 && l.worker != nil {
		l.worker.Kick()
	}
	for _, tr := range trans {
		a := tr.Alert
		l.firing.WithLabelValues(a.Rule, a.Severity, tr.Status).Inc()
		l.log.Info("alert "+tr.Status, "rule", a.Rule, "severity", a.Severity, "tenant", a.Tenant, "job", a.Job,
			"fingerprint", a.Fingerprint, "silenced", a.Silenced, "summary", a.Summary)
	}
	l.ticks.Observe(time.Since(start).Seconds())
}

// JobViews adapts the engine's views for the API.
func (l *ruleLoop) JobViews() map[store.JobKey]api.JobView {
	v := l.engine.Views()
	out := make(map[store.JobKey]api.JobView, len(v))
	for k, x := range v {
		jv := api.JobView{Risk: x.Risk, ActiveAlerts: x.Active, PBreach: x.Prediction.PBreach,
			Basis: x.Prediction.Basis, LearnedFrom: x.Prediction.LearnedFrom, Why: x.Prediction.Why}
		if !x.Prediction.Finish.IsZero() {
			f := x.Prediction.Finish
			jv.PredictedFinish = &f
		}
		if !x.Prediction.Deadline.IsZero() {
			d := x.Prediction.Deadline
			jv.Deadline = &d
		}
		out[store.JobKey{Tenant: k.Tenant, Job: k.Job}] = jv
	}
	return out
}
