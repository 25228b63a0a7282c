package rules

import (
	"math"
	"time"

	"github.com/etlhub/etlhub/model"
)

// JobState is what the rules know of one job: tonight's runs and what past
// nights taught. It is fed observations in order and rolls to the next night
// by itself; it does no I/O and never reads the clock.
type JobState struct {
	Spec *model.JobSpec

	night     time.Time // scheduled start of the current night (zero before any)
	deadline  time.Time
	nextRoll  time.Time // when the next night's window opens
	runs      []*runTrack
	succeeded time.Time // when tonight's job succeeded, zero if not yet
	hist      history

	lastSuccess time.Time // any night
	lastSource  string
	since       time.Time // when the rules began to watch this job
	sum         learned   // history summarised, refreshed each night
	logs        map[string]*logTrack
	lastNight   *Outcome  // the previous night's outcome, judged when it was left (nil: none); never changed once set, so every tick's view shares it
	sharedSince time.Time // when the shared slowdown that slowed tonight's load began (zero: none)
}

// nightWindowLead is how long before its scheduled start a night's window
// opens: a run that starts early still belongs to its night.
const nightWindowLead = time.Hour

// NewJobState starts tracking a compiled spec.
func NewJobState(spec *model.JobSpec) *JobState { return &JobState{Spec: spec} }

// nightOf is the scheduled start of the night whose window holds t.
func (j *JobState) nightOf(t time.Time) time.Time {
	return j.Spec.PrevStart(t.Add(nightWindowLead))
}

// Roll moves to the night that holds now, learning from the nights it leaves.
func (j *JobState) Roll(now time.Time) {
	if j.since.IsZero() {
		j.since = now
	}
	if !j.night.IsZero() && now.Before(j.nextRoll) {
		return
	}
	j.rollTo(j.nightOf(now))
}

func (j *JobState) rollTo(night time.Time) {
	if night.IsZero() || night.Equal(j.night) {
		return
	}
	if !j.night.IsZero() {
		j.learn()
		j.lastNight = nil
		if o := j.outcome(night); !o.Night.IsZero() {
			j.lastNight = &o
		}
	}
	j.sum = j.hist.summary()
	j.night = night
	j.deadline = j.Spec.DeadlineFor(night)
	j.nextRoll = j.Spec.NextStart(night).Add(-nightWindowLead)
	j.runs = j.runs[:0]
	j.succeeded = time.Time{}
}

// Observe folds one observation of this job in; now is the clock when it
// arrives.
func (j *JobState) Observe(o *model.Observation, now time.Time) {
	// Nothing from the future is evidence: an observation stored before its
	// times were checked, or by a path that does not check them, must not
	// move the job's night (every real observation after it would be a
	// straggler) nor stand for a heartbeat, a start or a success.
	if !now.IsZero() && o.At.After(now.Add(model.MaxSkew)) {
		return
	}
	if !model.TimesPlausible(o) {
		c := *o
		model.DropImplausibleTimes(&c)
		o = &c
	}
	j.lastSource = o.Source
	if j.since.IsZero() || o.At.Before(j.since) {
		j.since = o.At
	}
	ref := o.At
	if o.StartedAt != nil {
		ref = *o.StartedAt
	}
	if o.State == model.StateSucceeded {
		fin := o.At
		if o.FinishedAt != nil {
			fin = *o.FinishedAt
		}
		if fin.After(j.lastSuccess) {
			j.lastSuccess = fin
		}
	}
	for _, r := range j.runs {
		if r.id == o.RunID {
			r.apply(o)
			j.noteSuccess(r)
			return
		}
	}
	night := j.nightOf(ref)
	if night.IsZero() {
		return
	}
	if j.night.IsZero() || night.After(j.night) {
		j.rollTo(night)
	} else if night.Before(j.night) {
		return // a straggler from a night already learned from
	}
	r := j.spareRun()
	*r = runTrack{id: o.RunID, firstSeen: o.At}
	r.apply(o)
	j.runs = append(j.runs, r)
	j.noteSuccess(r)
}

// spareRun is a run track for a new run to overwrite: one of a night
// already learned from (past the end of runs, where the last roll left it),
// or a new one. The nights' runs reuse their tracks rather than leave them
// for the collector a night at a time (its samples are not reused: tonight
// may need fewer than that night did).
func (j *JobState) spareRun() *runTrack {
	if n := len(j.runs); n < cap(j.runs) {
		if r := j.runs[:n+1][n]; r != nil {
			return r
		}
	}
	return &runTrack{}
}

func (j *JobState) noteSuccess(r *runTrack) {
	if r.state == model.StateSucceeded && j.succeeded.IsZero() {
		j.succeeded = r.finished
	}
}

// current is tonight's latest attempt, or nil.
func (j *JobState) current() *runTrack {
	var cur *runTrack
	for _, r := range j.runs {
		if cur == nil || r.started.After(cur.started) || (r.started.Equal(cur.started) && r.firstSeen.After(cur.firstSeen)) {
			cur = r
		}
	}
	return cur
}

// lastAt is when tonight was last observed.
func (j *JobState) lastAt() time.Time {
	var t time.Time
	for _, r := range j.runs {
		if r.lastAt.After(t) {
			t = r.lastAt
		}
	}
	return t
}

// learn records the night being left in the job's history.
func (j *JobState) learn() {
	if len(j.runs) == 0 {
		return
	}
	nan := math.NaN()
	d := dayRecord{arrivalMin: nan, preMin: nan, loadMin: nan, postMin: nan, rate: nan, rows: nan, totalMin: nan}
	first := j.runs[0]
	if !first.filesAt.IsZero() {
		d.arrivalMin = first.filesAt.Sub(j.night).Minutes()
	}
	var ok *runTrack
	for _, r := range j.runs {
		if r.state == model.StateSucceeded {
			ok = r
		}
	}
	if ok != nil && !ok.loadStart.IsZero() && len(ok.samples) >= 2 {
		begin := ok.filesAt
		if ok.started.After(begin) {
			begin = ok.started
		}
		d.preMin = ok.loadStart.Sub(begin).Minutes()
		d.loadMin = ok.loadEnd.Sub(ok.loadStart).Minutes()
		d.postMin = ok.finished.Sub(ok.loadEnd).Minutes()
		// The night's own unhindered pace, not its average: a slowdown is an
		// event of that night, not what the job is expected to do.
		if r, ok := ok.typicalRate(); ok && r > 0 {
			d.rate = r
		}
		d.rows = float64(ok.rowsTotal)
		if ok == first && !first.filesAt.IsZero() {
			d.totalMin = ok.finished.Sub(first.filesAt).Minutes()
		}
	}
	j.hist.add(d)
}
