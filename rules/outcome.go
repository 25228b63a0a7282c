package rules

import (
	"fmt"
	"time"

	"github.com/etlhub/etlhub/model"
)

// Outcome kinds: how a night went (or is going). A night's outcome is judged
// from all its attempts against its deadline, so it stays true after the
// fact: a night that succeeded 44 minutes after its deadline stays "late".
const (
	// OutcomeOnTime: succeeded by the deadline (possibly after retries).
	OutcomeOnTime = "on-time"
	// OutcomeLate: succeeded, after the deadline.
	OutcomeLate = "late"
	// OutcomeMissed: the deadline passed without a success, nothing failed
	// last (still running, waiting, or no run at all).
	OutcomeMissed = "missed"
	// OutcomeFailed: the latest attempt failed and nothing succeeded.
	OutcomeFailed = "failed"
	// OutcomeRunning and OutcomeWaiting: before the deadline, in progress.
	OutcomeRunning = "running"
	OutcomeWaiting = "waiting"
	// OutcomeScheduled: before the deadline, no attempt yet.
	OutcomeScheduled = "scheduled"
)

// Attempt is one run of a night, as judging its outcome needs it.
type Attempt struct {
	RunID    string
	State    model.State
	Started  time.Time // zero when unknown
	Finished time.Time // zero when not finished
}

// Outcome is a night's result against its deadline.
type Outcome struct {
	Night    time.Time `json:"night"`
	Deadline time.Time `json:"deadline"`
	Kind     string    `json:"kind"`
	// FinishedAt is when the night's first successful attempt finished.
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	// LateByS: late, how long after the deadline it succeeded; missed or
	// failed after the deadline, how long past the deadline it is (at now).
	LateByS int64 `json:"late_by_s,omitempty"`
	// SpareS: on time, how long before the deadline it succeeded.
	SpareS   int64 `json:"spare_s,omitempty"`
	Attempts int   `json:"attempts"`
	// Failed counts failed attempts; a success after one is a retried night.
	Failed  int    `json:"failed_attempts"`
	Retried bool   `json:"retried"`
	RunID   string `json:"run_id,omitempty"` // the successful attempt, else the latest
	Summary string `json:"summary"`
}

// Final reports whether the outcome can no longer change.
func (o *Outcome) Final() bool {
	return o.Kind == OutcomeOnTime || o.Kind == OutcomeLate
}

// Judge is the outcome at now of the night scheduled at night with deadline,
// from its attempts in the order they began. It is pure.
func Judge(night, deadline time.Time, attempts []Attempt, now time.Time) Outcome {
	o := Outcome{Night: night.UTC(), Deadline: deadline.UTC(), Attempts: len(attempts)}
	var ok *Attempt
	for i := range attempts {
		a := &attempts[i]
		switch a.State {
		case model.StateFailed:
			o.Failed++
		case model.StateSucceeded:
			fin := a.Finished
			if fin.IsZero() {
				fin = a.Started
			}
			if ok == nil || fin.Before(ok.Finished) {
				c := *a
				c.Finished = fin
				ok = &c
			}
		}
	}
	if len(attempts) > 0 {
		o.RunID = attempts[len(attempts)-1].RunID
	}
	tries := ""
	if len(attempts) > 1 {
		tries = fmt.Sprintf(" after %d attempts", len(attempts))
	}
	past := !now.Before(deadline)
	switch {
	case ok != nil:
		f := ok.Finished.UTC()
		o.FinishedAt, o.RunID, o.Retried = &f, ok.RunID, o.Failed > 0
		if f.After(deadline) {
			o.Kind, o.LateByS = OutcomeLate, int64(f.Sub(deadline).Seconds())
			o.Summary = "late by " + HumanDuration(f.Sub(deadline)) + tries
		} else {
			o.Kind, o.SpareS = OutcomeOnTime, int64(deadline.Sub(f).Seconds())
			o.Summary = "on time, " + HumanDuration(deadline.Sub(f)) + " to spare" + tries
		}
	case len(attempts) > 0 && attempts[len(attempts)-1].State == model.StateFailed:
		o.Kind = OutcomeFailed
		o.Summary = fmt.Sprintf("failed (attempt %d)", len(attempts))
		if past {
			o.LateByS = int64(now.Sub(deadline).Seconds())
			o.Summary += ", not done " + HumanDuration(now.Sub(deadline)) + " after the deadline"
		}
	case past:
		o.Kind, o.LateByS = OutcomeMissed, int64(now.Sub(deadline).Seconds())
		what := "no run"
		if len(attempts) > 0 {
			what = string(attempts[len(attempts)-1].State)
		}
		o.Summary = "missed: not done " + HumanDuration(now.Sub(deadline)) + " after the deadline (" + what + ")"
	case len(attempts) == 0:
		o.Kind, o.Summary = OutcomeScheduled, "not started"
	case attempts[len(attempts)-1].State == model.StateWaiting:
		o.Kind, o.Summary = OutcomeWaiting, "waiting"+retrying(o.Failed)
	default:
		o.Kind, o.Summary = OutcomeRunning, "running"+retrying(o.Failed)
	}
	return o
}

func retrying(failed int) string {
	if failed == 0 {
		return ""
	}
	return fmt.Sprintf(" (retry after %d failed)", failed)
}

// HumanDuration says d as people do: "44 min", "1 h 20 min", "2 d 3 h".
func HumanDuration(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	m := int64((d + 30*time.Second) / time.Minute)
	switch {
	case m < 1:
		return "under a minute"
	case m < 60:
		return fmt.Sprintf("%d min", m)
	case m < 48*60:
		if m%60 == 0 {
			return fmt.Sprintf("%d h", m/60)
		}
		return fmt.Sprintf("%d h %d min", m/60, m%60)
	}
	h := (m + 30) / 60
	if h%24 == 0 {
		return fmt.Sprintf("%d d", h/24)
	}
	return fmt.Sprintf("%d d %d h", h/24, h%24)
}

// outcome is tonight's outcome at now.
func (j *JobState) outcome(now time.Time) Outcome {
	if j.night.IsZero() {
		return Outcome{}
	}
	at := make([]Attempt, 0, len(j.runs))
	for _, r := range j.runs {
		at = append(at, Attempt{RunID: r.id, State: r.state, Started: r.started, Finished: r.finished})
	}
	return Judge(j.night, j.deadline, at, now)
}

// NightsOf groups a job's runs into its nights (a run belongs to the night
// whose window holds its start) and judges the last n nights scheduled before
// now, newest first. Runs must be oldest first.
func NightsOf(spec *model.JobSpec, runs []model.Run, n int, now time.Time) []NightRecord {
	j := JobState{Spec: spec}
	last := j.nightOf(now)
	if last.IsZero() || n <= 0 {
		return nil
	}
	starts := []time.Time{last}
	for len(starts) < n {
		p := spec.PrevStart(starts[len(starts)-1].Add(-time.Second))
		if p.IsZero() {
			break
		}
		starts = append(starts, p)
	}
	byNight := map[time.Time][]*model.Run{}
	for i := range runs {
		r := &runs[i]
		k := j.nightOf(r.SortAt())
		byNight[k] = append(byNight[k], r)
	}
	out := make([]NightRecord, 0, len(starts))
	for _, s := range starts {
		rec := NightRecord{}
		var at []Attempt
		for _, r := range byNight[s] {
			a := Attempt{RunID: r.RunID, State: r.State}
			if r.StartedAt != nil {
				a.Started = *r.StartedAt
			}
			if r.FinishedAt != nil {
				a.Finished = *r.FinishedAt
			} else if r.State.Terminal() {
				a.Finished = r.LastSeenAt
			}
			at = append(at, a)
			if r.FilesArrivedAt != nil && (rec.FilesArrivedAt == nil || r.FilesArrivedAt.Before(*rec.FilesArrivedAt)) {
				t := r.FilesArrivedAt.UTC()
				rec.FilesArrivedAt = &t
			}
			// The quality of the attempt that counts: the success, else the latest.
			if !rec.qualityFromSuccess {
				rec.QualityErrors, rec.QualityWarnings = r.QualityErrors, r.QualityWarnings
				rec.qualityFromSuccess = r.State == model.StateSucceeded
			}
			if rec.StartedAt == nil && r.StartedAt != nil {
				t := r.StartedAt.UTC()
				rec.StartedAt = &t
			}
		}
		rec.Outcome = Judge(s, spec.DeadlineFor(s), at, now)
		out = append(out, rec)
	}
	return out
}

// NightRecord is one night of a job's history.
type NightRecord struct {
	Outcome
	StartedAt          *time.Time `json:"started_at,omitempty"`
	FilesArrivedAt     *time.Time `json:"files_arrived_at,omitempty"`
	QualityErrors      int64      `json:"quality_errors"`
	QualityWarnings    int64      `json:"quality_warnings"`
	qualityFromSuccess bool
}
