package model

import "time"

// Severity is how loudly an alert is told. Routes decide who hears what; by
// the default routes critical pages and warning goes to Slack only.
type Severity string

const (
	// SeverityCritical pages (PagerDuty by the default routes).
	SeverityCritical Severity = "critical"
	// SeverityWarning is posted (Slack by the default routes), never paged.
	SeverityWarning Severity = "warning"
	// SeverityInfo is shown on the board and in digests only.
	SeverityInfo Severity = "info"
	// SeverityOff, as a job's override for a rule, silences that rule for
	// the job: its signals are dropped before they become alerts.
	SeverityOff Severity = "off"
)

// Valid reports whether s is one of the four severities.
func (s Severity) Valid() bool {
	switch s {
	case SeverityCritical, SeverityWarning, SeverityInfo, SeverityOff:
		return true
	}
	return false
}

// Risk is what the rules think of a job's night now, from worst to best.
type Risk string

const (
	// RiskBreached: the deadline passed without a success.
	RiskBreached Risk = "breached"
	// RiskPredicted: the run's projected finish (at the prediction's upper
	// bound) is after the deadline; a predicted-breach alert is active.
	RiskPredicted Risk = "predicted-breach"
	// RiskAtRisk: running, with a projected finish close to the deadline, a
	// stall or a failure that may still be retried.
	RiskAtRisk Risk = "at-risk"
	// RiskRunning: running and on course.
	RiskRunning Risk = "running"
	// RiskOK: tonight's run succeeded (or nothing is due yet).
	RiskOK Risk = "ok"
	// RiskIdle: no night in progress and nothing known about one.
	RiskIdle Risk = "idle"
)

// AlertState is where an alert is in its lifecycle.
type AlertState string

const (
	// AlertPending: a rule triggered; the alert fires once it has held for
	// the rule's for-duration. Left for firing, or dropped (never notified)
	// when the trigger goes away first.
	AlertPending AlertState = "pending"
	// AlertFiring: notified. Left for resolved once no signal (trigger or
	// hold) has been seen for the rule's keep-firing-for.
	AlertFiring AlertState = "firing"
	// AlertResolved: terminal; the alert's fingerprint may fire again later
	// as a new alert (with a new ID).
	AlertResolved AlertState = "resolved"
)

// TransitionKind is what a transition tells the receivers.
type TransitionKind string

const (
	// TransitionFiring: the alert went from pending to firing.
	TransitionFiring TransitionKind = "firing"
	// TransitionResolved: the alert went from firing to resolved (its cause
	// cleared, or a human resolved its incident in PagerDuty).
	TransitionResolved TransitionKind = "resolved"
	// TransitionAcknowledged: a human acknowledged the firing alert (in the
	// hub or in PagerDuty); the alert keeps firing.
	TransitionAcknowledged TransitionKind = "acknowledged"
	// TransitionResolvedByHuman: a human resolved the alert's incident in
	// PagerDuty. Recorded in the alert's history only: the alert keeps
	// firing until its cause clears, and nothing is sent for it.
	TransitionResolvedByHuman TransitionKind = "resolved-by-human"
)

// ScopeShared marks an alert about a cause many tenants or jobs share.
const ScopeShared = "shared"

// JobKey names a tenant's job.
type JobKey struct {
	Tenant string
	Job    string
}

// String is "tenant/job".
func (k JobKey) String() string { return k.Tenant + "/" + k.Job }

// Alert is one alert: one life of one fingerprint.
type Alert struct {
	// ID names this life of the alert (its fingerprint may fire again later).
	ID           string         `json:"id"`
	Fingerprint  string         `json:"fingerprint"`
	Rule         string         `json:"rule"`
	Severity     Severity       `json:"severity"`
	Tenant       string         `json:"tenant,omitempty"`
	Job          string         `json:"job,omitempty"`
	RunID        string         `json:"run_id,omitempty"`
	Source       string         `json:"source,omitempty"`
	Night        time.Time      `json:"night,omitzero"`
	Summary      string         `json:"summary"`
	Details      map[string]any `json:"details,omitempty"`
	State        AlertState     `json:"state"`
	PendingSince time.Time      `json:"pending_since"`
	FiredAt      time.Time      `json:"fired_at,omitzero"`
	ResolvedAt   time.Time      `json:"resolved_at,omitzero"`
	LastSeen     time.Time      `json:"last_seen"`
	// Silenced is set when the firing was silenced: neither it nor its resolve
	// is notified. A silence that starts later never hides the resolve.
	Silenced bool `json:"silenced"`
	// Inhibited is set while a more important alert covers this one.
	Inhibited bool `json:"inhibited"`
	// AckedBy and AckedAt: a human acknowledged it (in the hub or PagerDuty).
	AckedBy string    `json:"acked_by,omitempty"`
	AckedAt time.Time `json:"acked_at,omitzero"`
	// ResolvedBy: a human resolved its incident in PagerDuty.
	ResolvedBy string `json:"resolved_by,omitempty"`
	// Scope is ScopeShared for an alert about a cause many tenants or jobs
	// share (tenant and job then empty); Affected lists what it covers.
	Scope    string     `json:"scope,omitempty"`
	Affected []Affected `json:"affected,omitempty"`
	// GroupedUnder is the fingerprint of the shared alert this one is
	// grouped under: it fires and shows as usual, but is not notified on
	// its own (the shared alert's page covers it). Fixed when it fires.
	GroupedUnder string `json:"grouped_under,omitempty"`
}

// Affected is one tenant's job that a shared alert covers.
type Affected struct {
	Tenant string `json:"tenant"`
	Job    string `json:"job"`
}

// Transition is an alert changing state, as the receivers are told it.
type Transition struct {
	At     time.Time      `json:"at"`
	Status TransitionKind `json:"status"`
	Alert  Alert          `json:"alert"`
}
