package rules

import (
	"math"
	"sort"
	"time"

	"github.com/etlhub/etlhub/model"
)

// sample is one point of a run's loading progress, timed by the job's own
// updated_at (its clock of progress), not by when the hub polled.
type sample struct {
	at   time.Time
	rows int64
}

const maxSamples = 48

// runTrack is what the rules keep of one run (one attempt) of the current night.
type runTrack struct {
	id        string
	state     model.State
	stage     model.Stage
	started   time.Time
	updated   time.Time
	finished  time.Time
	firstSeen time.Time
	lastAt    time.Time
	filesAt   time.Time // explicit files_arrived_at, else when it left awaiting files
	loadStart time.Time // first progress time in loading
	loadEnd   time.Time // last loading progress time
	rowsDone  int64
	rowsTotal int64
	err       string
	source    string
	picture   string   // content hash of the last observation without updated_at
	samples   []sample // loading progress, oldest first, at most maxSamples
}

func (r *runTrack) apply(o *model.Observation) {
	if !r.lastAt.IsZero() && o.At.Before(r.lastAt) {
		return
	}
	r.lastAt = o.At
	r.state, r.stage, r.err, r.source = o.State, o.Stage, o.Error, o.Source
	r.rowsDone, r.rowsTotal = o.RowsDone, o.RowsTotal
	if o.StartedAt != nil {
		r.started = *o.StartedAt
	}
	// The job's own heartbeat; without one, when the run's picture last
	// changed: a poller repeating the same picture is no sign of life (and the
	// store keeps only the first sighting of a picture, so a restart agrees).
	upd := r.updated
	if o.UpdatedAt != nil {
		upd = *o.UpdatedAt
	} else if h := o.Hash(); h != r.picture || upd.IsZero() {
		upd, r.picture = o.At, h
	}
	r.updated = upd
	if o.FinishedAt != nil {
		r.finished = *o.FinishedAt
	} else if o.State.Terminal() && r.finished.IsZero() {
		r.finished = upd
	}
	if o.FilesArrivedAt != nil {
		r.filesAt = *o.FilesArrivedAt
	} else if r.filesAt.IsZero() && (o.State != model.StateWaiting && o.Stage != model.StageAwaitingFiles) {
		// The first sign of work: files must have been there by the previous
		// heartbeat at the latest; the heartbeat we have is the best bound.
		r.filesAt = upd
	}
	loading := o.State == model.StateRunning && (o.Stage == model.StageLoading || (o.Stage == "" && o.RowsDone > 0))
	if loading {
		if r.loadStart.IsZero() {
			r.loadStart = upd
		}
		r.loadEnd = upd
		n := len(r.samples)
		if n == 0 || upd.After(r.samples[n-1].at) {
			if n == maxSamples {
				// Thin the older half so the window keeps the whole load in view.
				k := 0
				for i := 0; i < n/2; i += 2 {
					r.samples[k] = r.samples[i]
					k++
				}
				k += copy(r.samples[k:], r.samples[n/2:])
				r.samples = r.samples[:k]
			}
			r.samples = append(r.samples, sample{upd, o.RowsDone})
		}
	}
}

// rateOver is the loading rate (rows a minute) over the last window of
// progress time, from samples; ok is false with too little to go on.
func (r *runTrack) rateOver(window time.Duration) (float64, bool) {
	n := len(r.samples)
	if n < 2 {
		return 0, false
	}
	last := r.samples[n-1]
	i := n - 2
	for i > 0 && last.at.Sub(r.samples[i].at) < window {
		i--
	}
	first := r.samples[i]
	d := last.at.Sub(first.at).Minutes()
	if d < 1 {
		return 0, false
	}
	return float64(last.rows-first.rows) / d, true
}

// typicalRate is the upper-quartile rate of the run's own loading intervals of
// about 10 minutes: its pace when nothing slows it, robust to a slow stretch.
func (r *runTrack) typicalRate() (float64, bool) {
	if len(r.samples) < 3 {
		return 0, false
	}
	var rates []float64
	j := 0
	for i := 1; i < len(r.samples); i++ {
		d := r.samples[i].at.Sub(r.samples[j].at)
		if d >= 10*time.Minute {
			rates = append(rates, float64(r.samples[i].rows-r.samples[j].rows)/d.Minutes())
			j = i
		}
	}
	if len(rates) < 2 {
		return 0, false
	}
	return quantile(rates, 0.75), true
}

// slowSince is when the run's current slowdown began: the end of its last
// loading interval of about 10 minutes at or near base (80%), or its first
// progress when it never went at that pace (born slow).
func (r *runTrack) slowSince(base float64) time.Time {
	n := len(r.samples)
	if n == 0 {
		return r.loadStart
	}
	since := r.samples[0].at
	j := 0
	for i := 1; i < n; i++ {
		d := r.samples[i].at.Sub(r.samples[j].at)
		if d < 10*time.Minute {
			continue
		}
		if float64(r.samples[i].rows-r.samples[j].rows)/d.Minutes() >= 0.8*base {
			since = r.samples[i].at
		}
		j = i
	}
	return since
}

// dayRecord is what one finished night taught about its job.
type dayRecord struct {
	arrivalMin float64 // files arrival after the scheduled start
	preMin     float64 // files arrival to loading start (download, validation)
	loadMin    float64 // loading start to loading end
	postMin    float64 // loading end to success (publishing)
	rate       float64 // rows a minute while loading
	rows       float64 // rows_total
	totalMin   float64 // files arrival to success
}

const maxHistory = 30

// history is a job's last nights.
type history struct {
	days []dayRecord
}

func (h *history) add(d dayRecord) {
	switch n := len(h.days); {
	case n == maxHistory:
		copy(h.days, h.days[1:])
		h.days[n-1] = d
	case n == cap(h.days):
		// Grown a night at a time (once a night per job), not doubled: a
		// young history holds no room it does not use.
		days := make([]dayRecord, n+1)
		copy(days, h.days)
		days[n] = d
		h.days = days
	default:
		h.days = append(h.days, d)
	}
}

func (h *history) n() int { return len(h.days) }

func (h *history) values(f func(dayRecord) float64) []float64 {
	out := make([]float64, 0, len(h.days))
	for _, d := range h.days {
		if v := f(d); !math.IsNaN(v) {
			out = append(out, v)
		}
	}
	return out
}

func (h *history) median(f func(dayRecord) float64) float64 {
	return quantile(h.values(f), 0.5)
}

// logSigma is the spread of ln(values), at least floor.
func (h *history) logSigma(f func(dayRecord) float64, floor float64) float64 {
	var v []float64
	for _, x := range h.values(f) {
		if x > 0 {
			v = append(v, x)
		}
	}
	if len(v) < 2 {
		return floor
	}
	var mean float64
	for _, x := range v {
		mean += math.Log(x)
	}
	mean /= float64(len(v))
	var ss float64
	for _, x := range v {
		d := math.Log(x) - mean
		ss += d * d
	}
	s := math.Sqrt(ss / float64(len(v)-1))
	return math.Max(s, floor)
}

func quantile(v []float64, q float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	pos := q * float64(len(s)-1)
	lo := int(math.Floor(pos))
	hi := int(math.Ceil(pos))
	return s[lo] + (s[hi]-s[lo])*(pos-float64(lo))
}
