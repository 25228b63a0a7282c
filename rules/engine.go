package rules

import (
	"sync"
	"time"

	"github.com/etlhub/etlhub/model"
)

// JobKey names a tenant's job.
type JobKey struct{ Tenant, Job string }

// View is what the rules currently think of one job (for the API).
type View struct {
	Risk       string     `json:"risk"`
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

// Risks, from worst: breached, predicted to breach, at risk, running, ok, idle.
const (
	RiskBreached  = "breached"
	RiskPredicted = "predicted-breach"
	RiskAtRisk    = "at-risk"
	RiskRunning   = "running"
	RiskOK        = "ok"
	RiskIdle      = "idle"
)

// Engine holds every job's state and the alert lifecycle. Observe and Tick
// may be called from different goroutines.
type Engine struct {
	mu        sync.Mutex
	p         Params
	jobs      map[JobKey]*JobState
	order     []*JobState
	life      *Lifecycle
	sources   []model.SourceHealth
	downAfter map[string]time.Duration
	views     map[JobKey]View
	// viewsAt is the last tick's time; judged says whether the views carry
	// their nights' outcomes yet (judged when first asked for, not on every
	// tick: replay and the hub tick far more often than anyone reads them).
	viewsAt  time.Time
	judged   bool
	silencer Silencer
	// external are alerts posted by other systems, by fingerprint.
	external map[string]External
	shared   sharedState
	sp       SharedParams
}

// NewEngine tracks specs (compiled) with params and per-rule timings (nil:
// defaults).
func NewEngine(specs []model.JobSpec, p Params, timings map[string]Timing) *Engine {
	e := &Engine{p: p, jobs: make(map[JobKey]*JobState, len(specs)), life: NewLifecycle(timings),
		views: map[JobKey]View{}, downAfter: map[string]time.Duration{}, sp: DefaultSharedParams()}
	for i := range specs {
		s := &specs[i]
		j := NewJobState(s)
		e.jobs[JobKey{s.Tenant, s.Job}] = j
		e.order = append(e.order, j)
	}
	return e
}

// Restore puts persisted active alerts back.
func (e *Engine) Restore(alerts []Alert) {
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

// Observe feeds observations, in at order, to their jobs; now is the clock
// when they arrive (the rules believe nothing from after it). Observations of
// jobs without a spec are ignored by the rules (they still show in status).
func (e *Engine) Observe(obs []model.Observation, now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := range obs {
		if j := e.jobs[JobKey{obs[i].Tenant, obs[i].Job}]; j != nil {
			j.Observe(&obs[i], now)
		}
	}
}

// Tick evaluates every rule at now and steps the alerts.
func (e *Engine) Tick(now time.Time) (trans []Transition, changed []Alert) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var signals []Signal
	var loads []Load
	views := make(map[JobKey]View, len(e.order))
	for _, j := range e.order {
		j.Roll(now)
		pr := Predict(j, e.p, now)
		sig := Evaluate(j, pr, e.p, now)
		signals = append(signals, sig...)
		if l, ok := j.load(e.p, now); ok {
			loads = append(loads, l)
		}
		v := View{Risk: riskOf(j, pr, sig, e.p, now), Prediction: pr, Logs: j.logContext(now),
			LastSuccess: j.lastSuccess}
		if !j.lastNight.Night.IsZero() {
			last := j.lastNight
			v.LastNight = &last
		}
		views[JobKey{j.Spec.Tenant, j.Spec.Job}] = v
	}
	open := 0
	for _, a := range e.life.active {
		if a.GroupedUnder != "" {
			open++
		}
	}
	if sh := SharedSlowdown(loads, open, e.sp, &e.shared, now); sh != nil {
		signals = append(signals, *sh)
	}
	e.groupUnderShared(signals)
	signals = append(signals, SourceSignals(e.sources, e.downAfter, now)...)
	signals = append(signals, e.externalSignals(now)...)
	trans, changed = e.life.Step(signals, now, e.silencer)
	for _, a := range e.life.active {
		if a.State == StateFiring {
			k := JobKey{a.Tenant, a.Job}
			if v, ok := views[k]; ok {
				v.Active++
				views[k] = v
			}
		}
	}
	e.views, e.viewsAt, e.judged = views, now, false
	return trans, changed
}

func riskOf(j *JobState, pr Prediction, sig []Signal, p Params, now time.Time) string {
	for _, s := range sig {
		if s.Rule == RuleDeadlineMissed {
			return RiskBreached
		}
	}
	switch {
	case pr.Done && j.succeeded.After(j.deadline):
		return RiskBreached // late stays late after the fact
	case pr.Done:
		return RiskOK
	case pr.PBreach >= p.PageProbability:
		return RiskPredicted
	case pr.PBreach >= p.ResolveProbability || len(sig) > 0:
		return RiskAtRisk
	}
	if cur := j.current(); cur != nil && !cur.state.Terminal() {
		return RiskRunning
	}
	if now.Before(j.night) {
		return RiskIdle
	}
	return RiskOK
}

// groupUnderShared marks the critical job signals that a firing shared
// alert explains: those of a job it slowed, of the night it slowed it.
func (e *Engine) groupUnderShared(signals []Signal) {
	for _, a := range e.life.active {
		if a.Rule != RuleSharedSlowdown || a.State != StateFiring {
			continue
		}
		for i := range signals {
			s := &signals[i]
			if s.Scope != "" || s.Severity != SevCritical {
				continue
			}
			if n, ok := e.shared.affected[JobKey{s.Tenant, s.Job}]; ok && n.Equal(s.Night) {
				s.GroupedUnder = a.Fingerprint
			}
		}
	}
}

// Views returns the last tick's view of every job. The map is not changed
// after it is returned.
func (e *Engine) Views() map[JobKey]View {
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
	return e.views
}

// Active returns the pending and firing alerts.
func (e *Engine) Active() []Alert {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.life.Active()
}

// Ack acknowledges the firing alert with id.
func (e *Engine) Ack(id, who string, now time.Time) (Transition, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.life.Ack(id, who, now)
}

// Human records a human's acknowledgement or resolve from PagerDuty.
func (e *Engine) Human(key string, keyOf func(string) string, resolved bool, who string, now time.Time) (Alert, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.life.Human(key, keyOf, resolved, who, now)
}
