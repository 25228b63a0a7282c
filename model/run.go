package model

import (
	"strings"
	"time"
)

// RunStatus is what an observation says of its run, and what a run keeps
// of its newest observation: which run it is and where it stands.
// Observation and Run embed it, so their JSON has its fields at the top
// level (in this order, after an observation's "at").
type RunStatus struct {
	Source     string     `json:"source"`
	Tenant     string     `json:"tenant"`
	Job        string     `json:"job"`
	RunID      string     `json:"run_id"`
	State      State      `json:"state"`
	Stage      Stage      `json:"stage"`
	StartedAt  *time.Time `json:"started_at"`
	UpdatedAt  *time.Time `json:"updated_at"`
	FinishedAt *time.Time `json:"finished_at"`
	RowsDone   int64      `json:"rows_done"`
	RowsTotal  int64      `json:"rows_total"`
	Error      string     `json:"error"`
}

// Run is the current picture of one run_id, derived from its observations.
type Run struct {
	RunStatus
	Attempt         int        `json:"attempt"`
	FilesArrivedAt  *time.Time `json:"files_arrived_at"`
	QualityErrors   int64      `json:"quality_errors"`
	QualityWarnings int64      `json:"quality_warnings"`
	URL             string     `json:"url,omitempty"`
	FirstSeenAt     time.Time  `json:"first_seen_at"`
	LastSeenAt      time.Time  `json:"last_seen_at"`
}

// SortAt orders a job's runs: by start, or first sighting when it has none.
func (r *Run) SortAt() time.Time {
	if r.StartedAt != nil {
		return *r.StartedAt
	}
	return r.FirstSeenAt
}

// Progress is rows done over rows total in percent, or -1 when unknown.
func (r *Run) Progress() float64 {
	if r.RowsTotal <= 0 {
		if r.State == StateSucceeded {
			return 100
		}
		return -1
	}
	p := 100 * float64(r.RowsDone) / float64(r.RowsTotal)
	if p > 100 {
		p = 100
	}
	return p
}

// Apply folds an observation of this run into it. Observations older than the
// newest one applied are ignored, except that they may fill times still unknown,
// so collectors may deliver out of order. It reports whether the run changed.
func (r *Run) Apply(o *Observation) bool {
	if r.RunID == "" {
		*r = Run{RunStatus: RunStatus{RunID: o.RunID}, FirstSeenAt: o.At, LastSeenAt: o.At}
		r.take(o)
		return true
	}
	if o.At.Before(r.FirstSeenAt) {
		r.FirstSeenAt = o.At
	}
	if o.At.Before(r.LastSeenAt) {
		changed := false
		if r.StartedAt == nil && o.StartedAt != nil {
			r.StartedAt, changed = o.StartedAt, true
		}
		if r.FilesArrivedAt == nil && o.FilesArrivedAt != nil {
			r.FilesArrivedAt, changed = o.FilesArrivedAt, true
		}
		return changed
	}
	before := *r
	r.LastSeenAt = o.At
	r.take(o)
	return before != *r
}

func (r *Run) take(o *Observation) {
	s := o.RunStatus // the run's id stays; a time not sent stays
	s.RunID = r.RunID
	s.StartedAt = keep(r.StartedAt, o.StartedAt)
	s.UpdatedAt = keep(r.UpdatedAt, o.UpdatedAt)
	s.FinishedAt = keep(r.FinishedAt, o.FinishedAt)
	r.RunStatus, r.URL = s, o.URL
	if o.Attempt > 0 {
		r.Attempt = o.Attempt
	}
	r.FilesArrivedAt = keep(r.FilesArrivedAt, o.FilesArrivedAt)
	if o.Quality != nil {
		r.QualityErrors, r.QualityWarnings = o.Quality.Errors, o.Quality.Warnings
	}
}

// keep returns the new time when given, the old one otherwise. Pointers are
// copied so that a Run never aliases an Observation.
func keep(old, nu *time.Time) *time.Time {
	if nu == nil {
		return old
	}
	if old != nil && old.Equal(*nu) {
		return old
	}
	t := *nu
	return &t
}

// SourceHealth is how a collector's source has been answering.
type SourceHealth struct {
	Name                string     `json:"name"`
	Kind                string     `json:"kind"`
	Healthy             bool       `json:"healthy"`
	LastRunAt           *time.Time `json:"last_run_at"`
	LastSuccessAt       *time.Time `json:"last_success_at"`
	LastErrorAt         *time.Time `json:"last_error_at"`
	LastError           string     `json:"last_error"`
	ConsecutiveFailures int        `json:"consecutive_failures"`
	FailingSince        *time.Time `json:"failing_since"`
	LastDurationMs      int64      `json:"last_duration_ms"`
	LastObservations    int        `json:"last_observations"`
	NextAttemptAt       *time.Time `json:"next_attempt_at,omitempty"`
}

// Record updates health after one collection attempt that started at start
// and took d; err is nil on success.
func (h *SourceHealth) Record(start time.Time, d time.Duration, n int, err error) {
	at := start.UTC()
	h.LastRunAt = &at
	h.LastDurationMs = d.Milliseconds()
	h.LastObservations = n
	if err == nil {
		h.Healthy = true
		h.LastSuccessAt = &at
		h.ConsecutiveFailures = 0
		h.FailingSince = nil
		return
	}
	h.Healthy = false
	h.LastErrorAt = &at
	// Cut on a character, not a byte: PostgreSQL refuses invalid UTF-8.
	h.LastError = Clip(strings.ToValidUTF8(err.Error(), "\uFFFD"), MaxErrorLen)
	if h.ConsecutiveFailures == 0 {
		h.FailingSince = &at
	}
	h.ConsecutiveFailures++
}
