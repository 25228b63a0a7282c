package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/etlhub/etlhub/api"
	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/model"
	"github.com/etlhub/etlhub/notifier"
	"github.com/etlhub/etlhub/notifier/pagerduty"
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
	// Timings override a rule's for-duration and keep-firing-for.
	Timings map[string]TimingConfig `yaml:"timings"`
}

// TimingConfig is one rule's pending and hysteresis durations.
type TimingConfig struct {
	For           time.Duration `yaml:"for"`
	KeepFiringFor time.Duration `yaml:"keep_firing_for"`
}

func (r *RulesConfig) timings() map[string]rules.Timing {
	t := rules.DefaultTimings()
	for name, v := range r.Timings {
		t[name] = rules.Timing{For: v.For, KeepFiringFor: v.KeepFiringFor}
	}
	return t
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
	for name, t := range r.Timings {
		if !rules.IsRule(name) {
			p.Add(key+".timings."+name, "is not a rule (%s)", strings.Join(rules.Names, ", "))
		}
		if t.For < 0 || t.KeepFiringFor < 0 {
			p.Add(key+".timings."+name, "durations must not be negative")
		}
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
	lastTick  prometheus.Gauge
	// unsaved holds what a failed SaveAlerts did not store; it is stored
	// first on the next tick, so no transition or notification is lost.
	unsaved struct {
		changed []model.Alert
		trans   []model.Transition
		notes   []store.Notification
	}
}

func newRuleLoop(cfg *Config, st *store.Store, log *slog.Logger, reg prometheus.Registerer) *ruleLoop {
	l := &ruleLoop{cfg: cfg, st: st, log: log, engine: rules.NewEngine(cfg.Jobs, cfg.Rules.params(), cfg.Rules.timings()),
		downAfter: map[string]time.Duration{}, router: cfg.Notify.Router()}
	l.engine.SetInhibitor(inhibitor(cfg.Notify.inhibit))
	for _, s := range cfg.Sources {
		l.downAfter[s.Name] = s.DownAfter
	}
	for _, s := range cfg.Logs.Searches {
		l.downAfter["logs:"+s.Name] = s.DownAfter
	}
	l.firing = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "etlhub_alert_transitions_total",
		Help: "Alert transitions by rule, severity and status."}, []string{"rule", "severity", "status"})
	l.ticks = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "etlhub_rules_tick_duration_seconds",
		Help: "Time to evaluate every rule once.", Buckets: prometheus.DefBuckets})
	l.lastTick = prometheus.NewGauge(prometheus.GaugeOpts{Name: "etlhub_rules_last_tick_timestamp_seconds",
		Help: "When the rules were last evaluated (Unix time); stale when the rule loop is stuck."})
	reg.MustRegister(l.firing, l.ticks, l.lastTick, newStateCollector(cfg, l.engine, st, time.Now, log))
	// Every series exists from the start, so increase() sees the first one.
	for _, r := range alertRules() {
		for _, sev := range severities {
			for _, s := range []model.TransitionKind{model.TransitionFiring, model.TransitionResolved, model.TransitionAcknowledged} {
				l.firing.WithLabelValues(r, string(sev), string(s))
			}
		}
	}
	return l
}

// warm restores active alerts and replays recent history into the engine.
func (l *ruleLoop) warm(ctx context.Context, now time.Time) error {
	active, err := l.st.ListAlerts(ctx, store.AlertFilter{States: []model.AlertState{model.AlertPending, model.AlertFiring}, Limit: 1000})
	if err != nil {
		return err
	}
	l.engine.Restore(active)
	n := 0
	err = l.st.ObservationsSince(ctx, now.Add(-l.cfg.Rules.History), func(obs []model.Observation) error {
		n += len(obs)
		l.engine.Observe(obs, now)
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
	sil, silErr := l.st.Silences(tctx, now)
	if silErr == nil {
		l.engine.SetSilencer(rules.Silencing(sil))
	} else {
		l.log.Warn("reading silences failed", "error", silErr)
	}
	trans, changed := l.engine.Tick(now)
	notes := l.notifications(tctx, trans, nil)
	u := &l.unsaved
	u.changed, u.trans, u.notes = append(u.changed, changed...), append(u.trans, trans...), append(u.notes, notes...)
	if err := l.st.SaveAlerts(tctx, u.changed, u.trans, u.notes); err != nil {
		l.log.Error("saving alerts failed; will retry next tick", "error", err, "transitions", len(u.trans))
	} else {
		u.changed, u.trans, u.notes = u.changed[:0], u.trans[:0], u.notes[:0]
		if silErr == nil { // a repeat must not page through a silence it could not read
			notes = append(notes, l.repeat(tctx, now, rules.Silencing(sil))...)
		}
	}
	if len(notes) > 0 && l.worker != nil {
		l.worker.Kick()
	}
	for _, tr := range trans {
		a := tr.Alert
		l.firing.WithLabelValues(a.Rule, string(a.Severity), string(tr.Status)).Inc()
		l.log.Info("alert "+string(tr.Status), "rule", a.Rule, "severity", a.Severity, "tenant", a.Tenant, "job", a.Job,
			"fingerprint", a.Fingerprint, "silenced", a.Silenced, "summary", a.Summary)
	}
	l.ticks.Observe(time.Since(start).Seconds())
	l.lastTick.Set(float64(time.Now().UnixMilli()) / 1000)
}

// JobViews adapts the engine's views for the API.
func (l *ruleLoop) JobViews() map[model.JobKey]api.JobView {
	v := l.engine.Views()
	out := make(map[model.JobKey]api.JobView, len(v))
	for k, x := range v {
		jv := api.JobView{Risk: string(x.Risk), ActiveAlerts: x.Active, PBreach: x.Prediction.PBreach,
			Basis: x.Prediction.Basis, LearnedFrom: x.Prediction.LearnedFrom, Why: x.Prediction.Why, Logs: x.Logs}
		if !x.Prediction.Finish.IsZero() {
			f := x.Prediction.Finish
			jv.PredictedFinish = &f
		}
		if !x.Prediction.Deadline.IsZero() {
			d := x.Prediction.Deadline
			jv.Deadline = &d
		}
		if !x.Prediction.Lo.IsZero() && !x.Prediction.Hi.IsZero() {
			lo, hi := x.Prediction.Lo, x.Prediction.Hi
			jv.FinishLo, jv.FinishHi = &lo, &hi
		}
		if !x.Outcome.Night.IsZero() {
			o := x.Outcome
			jv.Outcome = &o
		}
		jv.LastNight = x.LastNight
		out[model.JobKey{Tenant: k.Tenant, Job: k.Job}] = jv
	}
	return out
}

// Ack acknowledges a firing alert from the hub: stored, and sent to every
// receiver of the alert (PagerDuty gets an acknowledge event).
func (l *ruleLoop) Ack(ctx context.Context, id, who string) (model.Alert, error) {
	tr, err := l.engine.Ack(id, who, time.Now().UTC())
	if err != nil {
		return model.Alert{}, err
	}
	return tr.Alert, l.record(ctx, tr, nil)
}

// notifications routes transitions, with the store's view of when each
// group last went out (group_interval).
func (l *ruleLoop) notifications(ctx context.Context, trans []model.Transition, skip func(string) bool) []store.Notification {
	return notifications(l.router, trans, skip, func(receiver, key string) time.Time {
		t, err := l.st.GroupLastFiring(ctx, receiver, key)
		if err != nil {
			l.log.Warn("reading a group's last notification failed; it waits group_wait", "receiver", receiver, "error", err)
		}
		return t
	})
}

// repeat queues the re-notifications of still-firing alerts (repeat_interval).
func (l *ruleLoop) repeat(ctx context.Context, now time.Time, silenced rules.Silencer) []store.Notification {
	if l.router.Tree == nil {
		return nil
	}
	var firing []model.Alert
	var fps []string
	for _, a := range l.engine.Active() {
		if a.State == model.AlertFiring {
			firing = append(firing, a)
			fps = append(fps, a.Fingerprint)
		}
	}
	if len(firing) == 0 {
		return nil
	}
	last, err := l.st.LastFirings(ctx, fps)
	if err != nil {
		l.log.Warn("reading the last notifications failed; no repeats this tick", "error", err)
		return nil
	}
	notes := repeats(l.router, firing, silenced, last, now)
	if len(notes) == 0 {
		return nil
	}
	if err := l.st.SaveAlerts(ctx, nil, nil, notes); err != nil {
		l.log.Error("queueing repeat notifications failed; will retry next tick", "error", err)
		return nil
	}
	for _, n := range notes {
		l.log.Info("alert still firing: notifying again", "receiver", n.Receiver, "rule", n.Trans.Alert.Rule,
			"tenant", n.Trans.Alert.Tenant, "job", n.Trans.Alert.Job, "fingerprint", n.Trans.Alert.Fingerprint)
	}
	return notes
}

func (l *ruleLoop) record(ctx context.Context, tr model.Transition, skip func(string) bool) error {
	notes := l.notifications(ctx, []model.Transition{tr}, skip)
	if err := l.st.SaveAlerts(ctx, []model.Alert{tr.Alert}, []model.Transition{tr}, notes); err != nil {
		return err
	}
	l.firing.WithLabelValues(tr.Alert.Rule, string(tr.Alert.Severity), string(tr.Status)).Inc()
	if len(notes) > 0 && l.worker != nil {
		l.worker.Kick()
	}
	return nil
}

// PagerDutyWebhook takes a Webhooks v3 call: the signature must verify with
// the configured secret, the event's occurred_at must be within
// notify.pagerduty_webhook_window of now, and its id must be new (ids are
// stored, so a replay is refused across restarts too). An incident
// acknowledged or resolved by a human is recorded on its alert and shown in
// Slack (not sent back to PagerDuty), named by PagerDuty's agent.
func (l *ruleLoop) PagerDutyWebhook(ctx context.Context, body []byte, signature string) error {
	if !pagerduty.VerifySignature([]byte(l.cfg.Notify.PagerDutyWebhookSecret.Value()), body, signature) {
		return api.ErrBadSignature
	}
	now := time.Now().UTC()
	window := l.cfg.Notify.PagerDutyWebhookWindow
	if window <= 0 {
		window = pagerduty.DefaultWebhookWindow
	}
	ev, _, err := pagerduty.ParseWebhook(body, now, window)
	switch {
	case errors.Is(err, pagerduty.ErrStaleEvent):
		l.log.Warn("pagerduty webhook refused: stale (a replay?)", "error", err)
		return fmt.Errorf("%w: %v", api.ErrStaleEvent, err)
	case err != nil:
		return fmt.Errorf("%w: %v", api.ErrBadPayload, err)
	}
	first, err := l.st.FirstWebhookEvent(ctx, "pagerduty", ev.Event.ID, now, now.Add(-2*window))
	if err != nil {
		return err
	}
	if !first {
		l.log.Info("pagerduty webhook already taken (a redelivery or a replay)", "event_id", ev.Event.ID)
		return api.ErrDuplicateEvent
	}
	resolved := false
	switch ev.Event.EventType {
	case "incident.acknowledged":
	case "incident.resolved":
		resolved = true
	default:
		return nil // other events are not ours to act on
	}
	who := pagerduty.Actor(ev)
	a, ok := l.engine.Human(ev.Event.Data.IncidentKey, pagerduty.DedupKey, resolved, who, now)
	if !ok {
		l.log.Info("pagerduty webhook for no firing alert", "event_type", ev.Event.EventType)
		return nil
	}
	l.log.Info("alert changed in PagerDuty", "event_type", ev.Event.EventType, "by", who, "fingerprint", a.Fingerprint)
	status := model.TransitionAcknowledged
	if resolved {
		status = model.TransitionResolvedByHuman
	}
	tr := model.Transition{At: now, Status: status, Alert: a}
	if resolved {
		// Recorded on the alert; the rules resolve it when its cause clears.
		err = l.st.SaveAlerts(ctx, []model.Alert{a}, []model.Transition{tr}, nil)
	} else {
		err = l.record(ctx, tr, l.cfg.Notify.isPagerDuty)
	}
	if err != nil {
		// Not taken after all: PagerDuty retries a 5xx, and that retry must count.
		if ferr := l.st.ForgetWebhookEvent(context.WithoutCancel(ctx), "pagerduty", ev.Event.ID); ferr != nil {
			l.log.Error("forgetting a webhook event that was not taken failed", "event_id", ev.Event.ID, "error", ferr)
		}
	}
	return err
}
