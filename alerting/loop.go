package alerting

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/etlhub/etlhub/api"
	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/internal/lifecycle"
	"github.com/etlhub/etlhub/model"
	"github.com/etlhub/etlhub/notifier"
	"github.com/etlhub/etlhub/notifier/pagerduty"
	"github.com/etlhub/etlhub/notifier/routing"
	"github.com/etlhub/etlhub/rules"
	"github.com/etlhub/etlhub/store"
	"github.com/prometheus/client_golang/prometheus"
)

// Config is what the alert loop needs: its own section (rules) and, from
// the other sections, only what it uses.
type Config struct {
	Rules RulesConfig
	Jobs  []model.JobSpec
	// DownAfter is how long each source (collectors by name, log searches as
	// "logs:NAME") may fail before source-down fires.
	DownAfter map[string]time.Duration
	// DependencySeverity overrides the dependency rules' severities, by the
	// name of the source that measures the dependency (sources[].severity).
	DependencySeverity map[string]map[string]model.Severity
	// Router routes transitions to receivers; Inhibit replaces the built-in
	// inhibitions when set; Receivers names every receiver (for the outbox
	// gauges); IsPagerDuty tells PagerDuty receivers apart.
	Router      *notifier.Router
	Inhibit     []routing.InhibitRule
	Receivers   []string
	IsPagerDuty func(receiver string) bool
	// PagerDutyWebhookSecret and Window check PagerDuty's webhooks.
	PagerDutyWebhookSecret config.Secret
	PagerDutyWebhookWindow time.Duration
	// Now is the clock (nil: the real one, in UTC).
	Now func() time.Time
	// Blind, when set, gives the hub's blind intervals at now (its store's
	// outages): the rules do not judge silences over them.
	Blind func(now time.Time) []rules.Interval
	// Horizon, when set, is where the data ends (a replay's scenario end).
	Horizon time.Time
}

// Loop is the alert loop: every tick the rules are evaluated, what changed
// is saved with the notifications it routes to (one transaction, the
// outbox), and the delivery worker is woken. It also takes the
// acknowledgements made in the hub and PagerDuty's webhooks. As a service it
// ticks every rules.tick until stopped.
type Loop struct {
	*lifecycle.Loop
	cfg      Config
	st       *store.Store
	engine   *rules.Engine
	log      *slog.Logger
	now      func() time.Time
	router   *notifier.Router
	worker   *notifier.Worker
	firing   *prometheus.CounterVec
	ticks    prometheus.Histogram
	lastTick prometheus.Gauge
	// tail follows the observations other replicas store (PostgreSQL): the
	// transaction horizon read up to (tailAt), guarded by tailMu.
	// ticked is when the last tick completed with its changes saved (Unix
	// nanoseconds, the process clock): the watchdog's evidence.
	ticked atomic.Int64
	tailMu sync.Mutex
	tailAt int64
	tailOn bool
	// seen are the transactions the engine has had through ObserveStored.
	seen seenXacts
	// unsaved holds what a failed SaveAlerts did not store; it is stored
	// first on the next tick, so no transition or notification is lost.
	unsaved struct {
		changed []model.Alert
		trans   []model.Transition
		notes   []store.Notification
	}
}

// New makes the alert loop and registers its metrics.
func New(cfg Config, st *store.Store, log *slog.Logger, reg prometheus.Registerer) *Loop {
	now := cfg.Now
	if now == nil {
		now = func() time.Time { return time.Now().UTC() }
	}
	if cfg.Router == nil {
		cfg.Router = &notifier.Router{}
	}
	if cfg.IsPagerDuty == nil {
		cfg.IsPagerDuty = func(string) bool { return false }
	}
	params := cfg.Rules.EngineParams()
	params.Horizon = cfg.Horizon
	l := &Loop{cfg: cfg, st: st, log: log, now: now, engine: rules.NewEngine(cfg.Jobs, params, cfg.Rules.RuleTimings()),
		router: cfg.Router}
	l.Loop = lifecycle.NewLoop("alerting", l.run)
	l.engine.SetInhibitor(Inhibitor(cfg.Inhibit))
	l.engine.SetDependencies(cfg.Rules.DependencyParams(), cfg.DependencySeverity)
	l.firing = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "etlhub_alert_transitions_total",
		Help: "Alert transitions by rule, severity and status."}, []string{"rule", "severity", "status"})
	l.ticks = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "etlhub_rules_tick_duration_seconds",
		Help: "Time to evaluate every rule once.", Buckets: prometheus.DefBuckets})
	l.lastTick = prometheus.NewGauge(prometheus.GaugeOpts{Name: "etlhub_rules_last_tick_timestamp_seconds",
		Help: "When the rules were last evaluated (Unix time); stale when the rule loop is stuck."})
	reg.MustRegister(l.firing, l.ticks, l.lastTick, newStateCollector(cfg, l.engine, st, now, log))
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

// LastTick is when the last tick completed with its changes saved (zero:
// none yet), by the process clock.
func (l *Loop) LastTick() time.Time {
	n := l.ticked.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// SetWorker is the delivery worker to wake when notifications are queued.
func (l *Loop) SetWorker(w *notifier.Worker) { l.worker = w }

// Engine is the rules engine the loop steps (replay and the demo feed it
// history directly).
func (l *Loop) Engine() *rules.Engine { return l.engine }

// Observe hands stored observations to the rules.
func (l *Loop) Observe(obs []model.Observation, now time.Time) { l.engine.Observe(obs, now) }

// ObserveStored hands the rules observations this replica has just stored
// in transaction xact (store.IngestResult.Xact; 0: unknown), which the tail
// then need not read back.
func (l *Loop) ObserveStored(obs []model.Observation, now time.Time, xact int64) {
	if xact != 0 {
		l.seen.add(xact)
	}
	l.engine.Observe(obs, now)
}

// Measure hands stored measurements to the dependency rules.
func (l *Loop) Measure(ms []model.Measurement) { l.engine.Measure(ms) }

// ObserveLogs hands log searches' signals to the rules.
func (l *Loop) ObserveLogs(sigs []model.LogSignal) { l.engine.ObserveLogs(sigs) }

// Warm restores active alerts and replays recent history into the engine.
// On PostgreSQL the loop then follows what every replica stores (Tail), from
// a horizon taken before the replay: nothing falls between the two.
func (l *Loop) Warm(ctx context.Context, now time.Time) error {
	if l.st.Tails() {
		h, err := l.st.ObservationHorizon(ctx)
		if err != nil {
			return err
		}
		l.tailMu.Lock()
		l.tailAt, l.tailOn = h, true
		l.tailMu.Unlock()
	}
	active, err := l.activeAlerts(ctx)
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
	if err != nil {
		return err
	}
	nm, err := l.loadMeasurements(ctx, now)
	l.log.Info("rules warmed", "active_alerts", len(active), "observations", n, "measurements", nm)
	return err
}

// loadMeasurements replaces the dependency rules' histories with the
// store's (the measurements a previous leader's probes took, too).
func (l *Loop) loadMeasurements(ctx context.Context, now time.Time) (int, error) {
	var all []model.Measurement
	err := l.st.MeasurementsSince(ctx, now.Add(-l.cfg.Rules.DependencyParams().Window), "", func(ms []model.Measurement) error {
		all = append(all, ms...)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("reading measurements: %w", err)
	}
	l.engine.ReplaceMeasurements(all)
	return len(all), nil
}

func (l *Loop) activeAlerts(ctx context.Context) ([]model.Alert, error) {
	return l.st.ListAlerts(ctx, store.AlertFilter{States: []model.AlertState{model.AlertPending, model.AlertFiring}, Limit: 1000})
}

// Tail feeds the engine what was stored since the last call by any replica,
// but for the transactions it had through ObserveStored (another it may see
// twice: that changes nothing). It does nothing on SQLite.
func (l *Loop) Tail(ctx context.Context, now time.Time) error {
	l.tailMu.Lock()
	defer l.tailMu.Unlock()
	if !l.tailOn {
		return nil
	}
	next, err := l.st.ObservationsCommitted(ctx, l.tailAt, l.seen.list(), func(obs []model.Observation) error {
		l.engine.Observe(obs, now)
		return nil
	})
	l.tailAt = next
	l.seen.passed(next)
	return err
}

// TakeOver makes the store's alerts the engine's: a replica that becomes the
// leader carries on from what the last leader saved (a pending alert keeps
// its start, a firing one stays firing: neither restarts nor pages again),
// not from what it saw as a follower.
func (l *Loop) TakeOver(ctx context.Context, now time.Time) error {
	if err := l.Tail(ctx, now); err != nil {
		return fmt.Errorf("reading what other replicas stored: %w", err)
	}
	active, err := l.activeAlerts(ctx)
	if err != nil {
		return fmt.Errorf("reading the alerts: %w", err)
	}
	l.engine.ReplaceAlerts(active)
	if _, err := l.loadMeasurements(ctx, now); err != nil {
		return err
	}
	l.unsaved.changed, l.unsaved.trans, l.unsaved.notes = nil, nil, nil
	l.log.Info("alert state taken over from the store", "active_alerts", len(active))
	return nil
}

// Follow keeps a follower's views current: what the replicas stored, the
// rules evaluated (their transitions are the leader's to save: dropped
// here), and the alerts as the leader saved them.
func (l *Loop) Follow(ctx context.Context, now time.Time) error {
	tctx, cancel := context.WithTimeout(ctx, l.cfg.Rules.Tick)
	defer cancel()
	if err := l.Tail(tctx, now); err != nil {
		return err
	}
	if h, err := l.st.Sources(tctx); err == nil {
		l.engine.SetSources(h, l.cfg.DownAfter)
	}
	if l.cfg.Blind != nil {
		l.engine.SetBlind(l.cfg.Blind(now))
	}
	l.engine.Tick(now)
	active, err := l.activeAlerts(tctx)
	if err != nil {
		return err
	}
	l.engine.ReplaceAlerts(active)
	return nil
}

// Service is the loop's ticking as a new service (one per leadership term:
// a replica that leads again starts a fresh one).
func (l *Loop) Service() lifecycle.Service { return lifecycle.NewLoop("alerting", l.run) }

func (l *Loop) run(ctx context.Context) {
	t := time.NewTicker(l.cfg.Rules.Tick)
	defer t.Stop()
	for {
		_ = l.Step(ctx, l.now())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Step evaluates the rules once at now: sources and silences read, the
// engine ticked, what changed saved with the notifications it routes to, and
// the worker woken. A failed save is kept and saved first on the next step
// (nothing is lost); its error is returned.
func (l *Loop) Step(ctx context.Context, now time.Time) error {
	_, err := l.StepTransitions(ctx, now)
	return err
}

// StepTransitions is Step, returning the transitions of this step too.
func (l *Loop) StepTransitions(ctx context.Context, now time.Time) ([]model.Transition, error) {
	tctx, cancel := context.WithTimeout(ctx, l.cfg.Rules.Tick)
	defer cancel()
	start := time.Now()
	if l.cfg.Blind != nil {
		l.engine.SetBlind(l.cfg.Blind(now))
	}
	if err := l.Tail(tctx, now); err != nil {
		l.log.Warn("reading what other replicas stored failed; will retry next tick", "error", err)
	}
	if h, err := l.st.Sources(tctx); err == nil {
		l.engine.SetSources(h, l.cfg.DownAfter)
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
	saveErr := l.st.SaveAlerts(tctx, u.changed, u.trans, u.notes)
	if saveErr != nil {
		l.log.Error("saving alerts failed; will retry next tick", "error", saveErr, "transitions", len(u.trans))
	} else {
		l.ticked.Store(time.Now().UnixNano())
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
	return trans, saveErr
}

// JobViews adapts the engine's views for the API.
func (l *Loop) JobViews() map[model.JobKey]api.JobView {
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
func (l *Loop) Ack(ctx context.Context, id, who string) (model.Alert, error) {
	tr, err := l.engine.Ack(id, who, l.now())
	if err != nil {
		return model.Alert{}, err
	}
	return tr.Alert, l.record(ctx, tr, nil)
}

// notifications routes transitions, with the store's view of when each
// group last went out (group_interval).
func (l *Loop) notifications(ctx context.Context, trans []model.Transition, skip func(string) bool) []store.Notification {
	return Notifications(l.router, trans, skip, func(receiver, key string) time.Time {
		t, err := l.st.GroupLastFiring(ctx, receiver, key)
		if err != nil {
			l.log.Warn("reading a group's last notification failed; it waits group_wait", "receiver", receiver, "error", err)
		}
		return t
	})
}

// repeat queues the re-notifications of still-firing alerts (repeat_interval).
func (l *Loop) repeat(ctx context.Context, now time.Time, silenced rules.Silencer) []store.Notification {
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
	notes := Repeats(l.router, firing, silenced, last, now)
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

func (l *Loop) record(ctx context.Context, tr model.Transition, skip func(string) bool) error {
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
func (l *Loop) PagerDutyWebhook(ctx context.Context, body []byte, signature string) error {
	if !pagerduty.VerifySignature([]byte(l.cfg.PagerDutyWebhookSecret.Value()), body, signature) {
		return api.ErrBadSignature
	}
	now := l.now()
	window := l.cfg.PagerDutyWebhookWindow
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
		err = l.record(ctx, tr, l.cfg.IsPagerDuty)
	}
	if err != nil {
		// Not taken after all: PagerDuty retries a 5xx, and that retry must count.
		if ferr := l.st.ForgetWebhookEvent(context.WithoutCancel(ctx), "pagerduty", ev.Event.ID); ferr != nil {
			l.log.Error("forgetting a webhook event that was not taken failed", "event_id", ev.Event.ID, "error", ferr)
		}
	}
	return err
}
