package rules

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"sort"
	"time"

	"github.com/etlhub/etlhub/model"
)

// alertID derives an alert's ID from its fingerprint and when it began.
func alertID(fp string, since time.Time) string {
	sum := sha256.Sum256([]byte(fp + "|" + since.UTC().Format(time.RFC3339Nano)))
	return hex.EncodeToString(sum[:8])
}

// ErrNoAlert is returned for an alert that is not firing.
var ErrNoAlert = errors.New("no such firing alert")

// Ack marks the firing alert with id acknowledged by who at now and returns
// the transition to notify.
func (l *Lifecycle) Ack(id, who string, now time.Time) (model.Transition, error) {
	for _, a := range l.active {
		if a.ID == id && a.State == model.AlertFiring {
			a.AckedBy, a.AckedAt = who, now
			return model.Transition{At: now, Status: model.TransitionAcknowledged, Alert: *a}, nil
		}
	}
	return model.Transition{}, ErrNoAlert
}

// Human records an acknowledgement or resolve made in PagerDuty on the firing
// alert whose key (as keyOf computes it) matches; ok is false when none does.
func (l *Lifecycle) Human(key string, keyOf func(string) string, resolved bool, who string, now time.Time) (model.Alert, bool) {
	for _, a := range l.active {
		if a.State == model.AlertFiring && keyOf(a.Fingerprint) == key {
			if resolved {
				a.ResolvedBy = who
			} else if a.AckedBy == "" {
				a.AckedBy, a.AckedAt = who, now
			}
			return *a, true
		}
	}
	return model.Alert{}, false
}

// Timing is a rule's for-duration and keep-firing-for (hysteresis).
type Timing struct {
	For           time.Duration
	KeepFiringFor time.Duration
}

// DefaultTimings are per rule; rules not listed use DefaultTiming.
func DefaultTimings() map[string]Timing {
	return map[string]Timing{
		RulePredictedBreach: {For: 0, KeepFiringFor: 15 * time.Minute},
		RuleDeadlineMissed:  {For: 0, KeepFiringFor: 0},
		RuleStalled:         {For: 0, KeepFiringFor: 5 * time.Minute},
		RuleSourceDown:      {For: 0, KeepFiringFor: 5 * time.Minute},
		// A shared slowdown must hold five minutes: one slow poll of a few
		// loads is not an incident.
		RuleSharedSlowdown: {For: 5 * time.Minute, KeepFiringFor: 15 * time.Minute},
		// A dependency down for a minute (two probes at the default @every
		// 30s) pages; degraded must hold two minutes. Both keep firing a few
		// minutes after the last probe that met them (with the rules' own
		// clear levels, that is the hysteresis).
		RuleDependencyDown:     {For: time.Minute, KeepFiringFor: 2 * time.Minute},
		RuleDependencyDegraded: {For: 2 * time.Minute, KeepFiringFor: 5 * time.Minute},
		// A queue's backlog must not drain for two minutes more past its
		// age threshold (two probes at @every 1m); dead letters fire at
		// once. Both keep firing ten minutes after the last probe that met
		// them, with the rules' own clear levels as the other half.
		RuleQueueBacklog: {For: 2 * time.Minute, KeepFiringFor: 10 * time.Minute},
		RuleDeadLetters:  {For: 0, KeepFiringFor: 10 * time.Minute},
	}
}

// DefaultTiming applies to rules without their own.
var DefaultTiming = Timing{For: 0, KeepFiringFor: 10 * time.Minute}

// Lifecycle holds the active alerts and steps them.
type Lifecycle struct {
	timings map[string]Timing
	active  map[string]*model.Alert
	inhibit Inhibitor
}

// Inhibitor says which of a tick's signals another alert covers (by
// fingerprint); firing reports whether a fingerprint's alert fires. An
// inhibited signal does not fire, and its firing alert is marked.
type Inhibitor func(signals []Signal, firing func(fingerprint string) bool) map[string]bool

// SetInhibitor replaces the built-in inhibitions (nil restores them).
func (l *Lifecycle) SetInhibitor(f Inhibitor) { l.inhibit = f }

// NewLifecycle starts with no alerts; timings may be nil for the defaults.
func NewLifecycle(timings map[string]Timing) *Lifecycle {
	if timings == nil {
		timings = DefaultTimings()
	}
	return &Lifecycle{timings: timings, active: map[string]*model.Alert{}}
}

// timingOf is an alert's timing: a posted alert fires and resolves as its
// poster says (Prometheus has its own for and keep_firing_for).
func (l *Lifecycle) timingOf(a *model.Alert) Timing {
	if IsExternal(a) {
		return Timing{}
	}
	return l.timing(a.Rule)
}

func (l *Lifecycle) timing(rule string) Timing {
	if t, ok := l.timings[rule]; ok {
		return t
	}
	return DefaultTiming
}

// Restore puts persisted active alerts back (after a restart), so nothing
// pages twice and nothing is forgotten.
func (l *Lifecycle) Restore(alerts []model.Alert) {
	for i := range alerts {
		a := alerts[i]
		if a.State == model.AlertPending || a.State == model.AlertFiring {
			l.active[a.Fingerprint] = &a
		}
	}
}

// Active returns copies of the pending and firing alerts, by fingerprint.
func (l *Lifecycle) Active() []model.Alert {
	out := make([]model.Alert, 0, len(l.active))
	for _, a := range l.active {
		out = append(out, *a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Fingerprint < out[j].Fingerprint })
	return out
}

// Silencer says whether an alert is silenced at now.
type Silencer func(a *model.Alert, now time.Time) bool

// Step applies this tick's signals at now and returns the transitions, in
// fingerprint order. changed lists every alert whose stored form changed
// (including pending ones), for persistence.
func (l *Lifecycle) Step(signals []Signal, now time.Time, silenced Silencer) (trans []model.Transition, changed []model.Alert) {
	var inhibited map[string]bool
	if l.inhibit != nil {
		inhibited = l.inhibit(signals, func(fp string) bool { a := l.active[fp]; return a != nil && a.State == model.AlertFiring })
	} else {
		inhibited = inhibitions(signals, l.active)
	}
	seen := make(map[string]bool, len(signals))
	for i := range signals {
		s := &signals[i]
		seen[s.Fingerprint] = true
		lvl := s.Level
		inh := inhibited[s.Fingerprint]
		if inh && lvl == Trigger {
			lvl = Hold
		}
		a := l.active[s.Fingerprint]
		if a == nil {
			if lvl != Trigger {
				continue
			}
			a = &model.Alert{ID: alertID(s.Fingerprint, now), Fingerprint: s.Fingerprint, Rule: s.Rule, Severity: s.Severity, Tenant: s.Tenant, Job: s.Job,
				RunID: s.RunID, Source: s.Source, Night: s.Night, State: model.AlertPending, PendingSince: now}
			l.active[s.Fingerprint] = a
		}
		a.Summary, a.Details, a.LastSeen, a.Inhibited = s.Summary, s.Details, now, inh
		a.Scope, a.Affected = s.Scope, s.Affected
		switch a.State {
		case model.AlertPending:
			a.GroupedUnder = s.GroupedUnder // a firing alert keeps what it was notified as
			if lvl == Trigger && now.Sub(a.PendingSince) >= l.timingOf(a).For {
				a.State, a.FiredAt = model.AlertFiring, now
				a.Silenced = silenced != nil && silenced(a, now)
				trans = append(trans, model.Transition{At: now, Status: model.TransitionFiring, Alert: *a})
			} else if lvl != Trigger {
				// Held but not triggered: it never fired, so it just goes.
				delete(l.active, a.Fingerprint)
				a.State = model.AlertResolved
			}
		}
		changed = append(changed, *a)
	}
	for fp, a := range l.active {
		if seen[fp] {
			continue
		}
		switch a.State {
		case model.AlertPending:
			delete(l.active, fp)
			a.State = model.AlertResolved
			a.ResolvedAt = now
			changed = append(changed, *a)
		case model.AlertFiring:
			if now.Sub(a.LastSeen) >= l.timingOf(a).KeepFiringFor {
				delete(l.active, fp)
				a.State, a.ResolvedAt = model.AlertResolved, now
				trans = append(trans, model.Transition{At: now, Status: model.TransitionResolved, Alert: *a})
				changed = append(changed, *a)
			}
		}
	}
	sort.Slice(trans, func(i, j int) bool {
		if trans[i].Status != trans[j].Status {
			return trans[i].Status == model.TransitionResolved // resolves first: a cleared cause before a new one
		}
		return trans[i].Alert.Fingerprint < trans[j].Alert.Fingerprint
	})
	return trans, changed
}

// inhibitions: deadline-missed supersedes predicted-breach and
// retries-exhausted of the same night; a predicted-breach that fires covers
// retries-exhausted; a source that is down covers stalled and freshness alerts
// fed by it; dependency-down (triggered, or still active) covers the
// source-down of the probe that measures it (one page: the dependency, not
// its probe) and the subject's dependency-degraded.
func inhibitions(signals []Signal, active map[string]*model.Alert) map[string]bool {
	type nightKeyT struct{ tenant, job string }
	missed := map[nightKeyT]time.Time{}
	breach := map[nightKeyT]time.Time{}
	down := map[string]bool{}
	depDown := map[string]bool{}   // probe sources whose dependency is down
	depDownFP := map[string]bool{} // subjects down
	for i := range signals {
		s := &signals[i]
		k := nightKeyT{s.Tenant, s.Job}
		switch s.Rule {
		case RuleDeadlineMissed:
			missed[k] = s.Night
		case RulePredictedBreach:
			if a := active[s.Fingerprint]; a != nil && a.State == model.AlertFiring {
				breach[k] = s.Night
			}
		case RuleSourceDown:
			if a := active[s.Fingerprint]; a != nil && a.State == model.AlertFiring {
				down[s.Source] = true
			}
		case RuleDependencyDown:
			// Pending or firing: the probe fails because its dependency does.
			if s.Level == Trigger || active[s.Fingerprint] != nil {
				depDown[s.Source] = true
				if subj, ok := s.Details["subject"].(string); ok {
					depDownFP[subj] = true
				}
			}
		}
	}
	out := map[string]bool{}
	for i := range signals {
		s := &signals[i]
		k := nightKeyT{s.Tenant, s.Job}
		switch s.Rule {
		case RulePredictedBreach:
			if n, ok := missed[k]; ok && n.Equal(s.Night) {
				out[s.Fingerprint] = true
			}
		case RuleRetriesExhaust:
			if n, ok := missed[k]; ok && n.Equal(s.Night) {
				out[s.Fingerprint] = true
			}
			if n, ok := breach[k]; ok && n.Equal(s.Night) {
				out[s.Fingerprint] = true
			}
		case RuleStalled, RuleFreshness:
			if down[s.Source] {
				out[s.Fingerprint] = true
			}
		case RuleSourceDown:
			if depDown[s.Source] {
				out[s.Fingerprint] = true
			}
		case RuleDependencyDegraded:
			if subj, ok := s.Details["subject"].(string); ok && depDownFP[subj] {
				out[s.Fingerprint] = true
			}
		}
	}
	return out
}
