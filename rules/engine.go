package rules

import (
	"sort"
	"sync"
	"time"

	"github.com/etlhub/etlhub/model"
)

// View is what the rules currently think of one job (for the API).
type View struct {
	Risk       model.Risk `json:"risk"`
	Prediction Prediction `json:"prediction"`
	Active     int        `json:"active_alerts"`
	Logs       string     `json:"logs,omitempty"` // fresh error lines from log searches
	// Outcome is tonight's result against the deadline so far; LastNight the
	// previous night's, once tonight's window has opened.
	Outcome   Outcome  `json:"outcome"`
	LastNight *Outcome `json:"last_night,omitempty"`
	// LastSuccess is when the job last succeeded, any night (zero: never seen).
	LastSuccess time.Time `json:"last_success,omitzero"`
}

// Engine holds every job's state and the alert lifecycle. Observe and Tick
// may be called from different goroutines.
type Engine struct {
	mu        sync.Mutex
	p         Params
	jobs      map[model.JobKey]*JobState
	order     []*JobState
	life      *Lifecycle
	sources   []model.SourceHealth
	downAfter map[string]time.Duration
	views     map[model.JobKey]View
	// viewsAt is the last tick's time; judged says whether the views carry
	// their nights' outcomes yet (judged when first asked for, not on every
	// tick: replay and the hub tick far more often than anyone reads them).
	viewsAt time.Time
	judged  bool
	// handed says whether Views has returned the views since the last tick:
	// until it has, the next tick may overwrite them in place (every tick
	// writes every job's) instead of building a map anew.
	handed   bool
	silencer Silencer
	// external are alerts posted by other systems, by fingerprint.
	external map[string]External
	shared   sharedState
	sp       SharedParams
	// signalsHint and loadsHint are how many signals the last tick raised
	// and how many loads it saw in progress.
	signalsHint, loadsHint int
	// deps is each subject's measurements in at order (bounded by dp);
	// depSev the dependency rules' severities by source.
	deps   map[string][]model.Measurement
	dp     DependencyParams
	depSev map[string]map[string]model.Severity
}

// NewEngine tracks specs (compiled) with params and per-rule timings (nil:
// defaults).
func NewEngine(specs []model.JobSpec, p Params, timings map[string]Timing) *Engine {
	e := &Engine{p: p, jobs: make(map[model.JobKey]*JobState, len(specs)), life: NewLifecycle(timings),
		views: map[model.JobKey]View{}, downAfter: map[string]time.Duration{}, sp: DefaultSharedParams(),
		deps: map[string][]model.Measurement{}, dp: DefaultDependencyParams()}
	for i := range specs {
		s := &specs[i]
		j := NewJobState(s)
		e.jobs[model.JobKey{Tenant: s.Tenant, Job: s.Job}] = j
		e.order = append(e.order, j)
	}
	return e
}

// ReplaceAlerts makes the stored alerts the engine's, forgetting the
// pending and firing ones it had: a replica that becomes the leader carries
// on from the store (what the last leader saved), and a follower shows it.
// The jobs' history stays (observations are the same on every replica).
func (e *Engine) ReplaceAlerts(alerts []model.Alert) {
	e.mu.Lock()
	inhibit := e.life.inhibit
	e.life = NewLifecycle(e.life.timings)
	e.life.inhibit = inhibit
	e.external = nil
	e.mu.Unlock()
	e.Restore(alerts)
}

// Restore puts persisted active alerts back.
func (e *Engine) Restore(alerts []model.Alert) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.life.Restore(alerts)
	for i := range alerts {
		if a := &alerts[i]; IsExternal(a) {
			if x, ok := externalFromAlert(a); ok {
				if e.external == nil {
					e.external = map[string]External{}
				}
				e.external[a.Fingerprint] = x
			}
		}
	}
}

// SetInhibitor replaces the built-in inhibitions (notify.inhibit_rules).
func (e *Engine) SetInhibitor(f Inhibitor) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.life.SetInhibitor(f)
}

// SetBlind gives the hub's blind intervals for the next ticks (Params.Blind).
func (e *Engine) SetBlind(b []Interval) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.p.Blind = append([]Interval(nil), b...)
}

// SetSilencer sets how silences are checked.
func (e *Engine) SetSilencer(s Silencer) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.silencer = s
}

// SetSources gives the latest source health and each source's down_after.
func (e *Engine) SetSources(h []model.SourceHealth, downAfter map[string]time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.sources = append(e.sources[:0], h...)
	if downAfter != nil {
		e.downAfter = downAfter
	}
}

// SetDependencies tunes the dependency rules: their params and, by source
// name, severity overrides per rule (sources[].severity).
func (e *Engine) SetDependencies(p DependencyParams, severity map[string]map[string]model.Severity) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.dp, e.depSev = p, severity
	for k, h := range e.deps {
		e.deps[k] = trimHistory(h, p)
	}
}

// Measure feeds probes' measurements (any order) to their subjects'
// histories, which keep DependencyParams.Window (and at most MaxSamples)
// behind each subject's newest measurement.
func (e *Engine) Measure(ms []model.Measurement) {
	e.mu.Lock()
	defer e.mu.Unlock()
	touched := map[string]bool{}
	for i := range ms {
		m := ms[i]
		h := e.deps[m.Subject]
		if n := len(h); n > 0 && m.At.Before(h[n-1].At) {
			j := sort.Search(n, func(j int) bool { return h[j].At.After(m.At) })
			h = append(h, model.Measurement{})
			copy(h[j+1:], h[j:])
			h[j] = m
		} else {
			h = append(h, m)
		}
		e.deps[m.Subject] = h
		touched[m.Subject] = true
	}
	for k := range touched {
		e.deps[k] = trimHistory(e.deps[k], e.dp)
	}
}

// ReplaceMeasurements makes ms (in at order) the dependency rules' whole
// history: what the store holds, when a replica takes over as the leader.
func (e *Engine) ReplaceMeasurements(ms []model.Measurement) {
	e.mu.Lock()
	e.deps = map[string][]model.Measurement{}
	e.mu.Unlock()
	e.Measure(ms)
}

func trimHistory(h []model.Measurement, p DependencyParams) []model.Measurement {
	if len(h) == 0 {
		return h
	}
	cut := h[len(h)-1].At.Add(-p.Window)
	i := sort.Search(len(h), func(i int) bool { return !h[i].At.Before(cut) })
	if p.MaxSamples > 0 {
		i = max(i, len(h)-p.MaxSamples)
	}
	if i > 0 {
		h = append(h[:0:0], h[i:]...)
	}
	return h
}

func (e *Engine) dependencySignals(now time.Time) []Signal {
	subjects := make([]string, 0, len(e.deps))
	for k, h := range e.deps {
		if len(h) > 0 && now.Sub(h[len(h)-1].At) > e.dp.Window {
			delete(e.deps, k) // no longer probed
			continue
		}
		subjects = append(subjects, k)
	}
	sort.Strings(subjects)
	sev := func(source, rule string) model.Severity {
		if s, ok := e.depSev[source][rule]; ok {
			return s
		}
		return DependencySeverities[rule]
	}
	var out []Signal
	for _, k := range subjects {
		out = append(out, DependencySignals(e.deps[k], e.dp, sev, now)...)
		out = append(out, QueueSignals(e.deps[k], e.dp, sev, now)...)
	}
	return out
}

// Observe feeds observations, in at order, to their jobs; now is the clock
// when they arrive (the rules believe nothing from after it). Observations of
// jobs without a spec are ignored by the rules (they still show in status).
func (e *Engine) Observe(obs []model.Observation, now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := range obs {
		if j := e.jobs[model.JobKey{Tenant: obs[i].Tenant, Job: obs[i].Job}]; j != nil {
			j.Observe(&obs[i], now)
		}
	}
}

// Tick evaluates every rule at now and steps the alerts.
func (e *Engine) Tick(now time.Time) (trans []model.Transition, changed []model.Alert) {
	e.mu.Lock()
	defer e.mu.Unlock()
	// As many signals and loads as the last tick had, most ticks: one array
	// each, not a quarter more at a time.
	signals := make([]Signal, 0, e.signalsHint)
	loads := make([]Load, 0, e.loadsHint)
	views := e.views
	if e.handed || len(views) == 0 {
		views = make(map[model.JobKey]View, len(e.order))
	}
	for _, j := range e.order {
		j.Roll(now)
		// A shared slowdown in progress (as of the last tick) that slowed
		// this night's load: the load's slowdown is as old as it.
		j.sharedSince = time.Time{}
		if e.shared.slowed(j.Spec.Tenant, j.Spec.Job, j.night) &&
			!e.shared.since.IsZero() && e.shared.over.IsZero() {
			j.sharedSince = e.shared.since
		}
		pr := Predict(j, e.p, now)
		sig := Evaluate(j, pr, e.p, now)
		signals = append(signals, sig...)
		if l, ok := j.load(e.p, now); ok {
			loads = append(loads, l)
		}
		v := View{Risk: riskOf(j, pr, sig, e.p, now), Prediction: pr, Logs: j.logContext(now),
			LastSuccess: j.lastSuccess, LastNight: j.lastNight}
		views[model.JobKey{Tenant: j.Spec.Tenant, Job: j.Spec.Job}] = v
	}
	open := 0
	for _, a := range e.life.active {
		if a.GroupedUnder != "" {
			open++
		}
	}
	e.loadsHint = len(loads)
	if sh := SharedSlowdown(loads, open, e.sp, &e.shared, now); sh != nil {
		signals = append(signals, *sh)
	}
	e.groupUnderShared(signals)
	signals = append(signals, SourceSignals(e.sources, e.downAfter, now)...)
	signals = append(signals, e.dependencySignals(now)...)
	signals = append(signals, e.externalSignals(now)...)
	e.signalsHint = len(signals)
	trans, changed = e.life.Step(signals, now, e.silencer)
	for _, a := range e.life.active {
		if a.State == model.AlertFiring {
			k := model.JobKey{Tenant: a.Tenant, Job: a.Job}
			if v, ok := views[k]; ok {
				v.Active++
				views[k] = v
			}
		}
	}
	e.views, e.viewsAt, e.judged, e.handed = views, now, false, false
	return trans, changed
}

func riskOf(j *JobState, pr Prediction, sig []Signal, p Params, now time.Time) model.Risk {
	for _, s := range sig {
		if s.Rule == RuleDeadlineMissed {
			return model.RiskBreached
		}
	}
	switch {
	case pr.Done && j.succeeded.After(j.deadline):
		return model.RiskBreached // late stays late after the fact
	case pr.Done:
		return model.RiskOK
	case !j.deadline.IsZero() && !now.Before(j.deadline):
		// Past the deadline with no success seen: late now, though the
		// page waits for evidence (DeadlineEvidence).
		return model.RiskBreached
	case pr.PBreach >= p.PageProbability:
		return model.RiskPredicted
	case pr.PBreach >= p.ResolveProbability || len(sig) > 0:
		return model.RiskAtRisk
	}
	if cur := j.current(); cur != nil && !cur.state.Terminal() {
		return model.RiskRunning
	}
	if now.Before(j.night) {
		return model.RiskIdle
	}
	return model.RiskOK
}

// groupUnderShared marks the critical job signals that a firing shared
// alert explains: those of a job it slowed, of the night it slowed it.
func (e *Engine) groupUnderShared(signals []Signal) {
	for _, a := range e.life.active {
		if a.Rule != RuleSharedSlowdown || a.State != model.AlertFiring {
			continue
		}
		for i := range signals {
			s := &signals[i]
			if s.Scope != "" || s.Severity != model.SeverityCritical {
				continue
			}
			if e.shared.slowed(s.Tenant, s.Job, s.Night) {
				s.GroupedUnder = a.Fingerprint
			}
		}
	}
}

// Views returns the last tick's view of every job. The map is not changed
// after it is returned.
func (e *Engine) Views() map[model.JobKey]View {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.judged {
		for k, v := range e.views {
			if j := e.jobs[k]; j != nil {
				v.Outcome = j.outcome(e.viewsAt)
				e.views[k] = v
			}
		}
		e.judged = true
	}
	e.handed = true
	return e.views
}

// Active returns the pending and firing alerts.
func (e *Engine) Active() []model.Alert {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.life.Active()
}

// Ack acknowledges the firing alert with id.
func (e *Engine) Ack(id, who string, now time.Time) (model.Transition, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.life.Ack(id, who, now)
}

// Human records a human's acknowledgement or resolve from PagerDuty.
func (e *Engine) Human(key string, keyOf func(string) string, resolved bool, who string, now time.Time) (model.Alert, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.life.Human(key, keyOf, resolved, who, now)
}
