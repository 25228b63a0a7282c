package rules

import (
	"fmt"
	"math"
	"time"

	"github.com/etlhub/etlhub/internal/status"
)

// Params tune the prediction and the rules. Defaults are principled, not
// fitted: see DefaultParams.
type Params struct {
	// PageProbability is the breach probability at which predicted-breach fires.
	PageProbability float64
	// ResolveProbability is the probability under which it resolves (hysteresis).
	ResolveProbability float64
	// SlowdownPersistence is the mean remaining length of a slowdown: a run
	// going slower than its own pace is expected to recover, with this mean
	// (exponential, memoryless).
	SlowdownPersistence time.Duration
	// MinHistory is how many past nights a job needs before its history is used.
	MinHistory int
	// FallbackWindowFraction: with insufficient history and no progress to
	// measure, predicted-breach fires once this fraction of the start-to-deadline
	// window has passed without success (the simple policy).
	FallbackWindowFraction float64
	// RetryDelay is how long after a failed attempt a retry is expected to start.
	RetryDelay time.Duration
	// RetryGrace is how long after a failure with no new attempt the retries
	// count as exhausted.
	RetryGrace time.Duration
	// MissedStartGrace is how long after the scheduled start a run must exist.
	MissedStartGrace time.Duration
	// FrozenAfter: progress older than this counts as no progress (rate 0) in
	// the prediction, before stale_after calls the run stalled.
	FrozenAfter time.Duration
}

// DefaultParams are the defaults.
func DefaultParams() Params {
	return Params{
		PageProbability:        0.6,
		ResolveProbability:     0.25,
		SlowdownPersistence:    45 * time.Minute,
		MinHistory:             3,
		FallbackWindowFraction: 0.85,
		RetryDelay:             10 * time.Minute,
		RetryGrace:             45 * time.Minute,
		MissedStartGrace:       30 * time.Minute,
		FrozenAfter:            12 * time.Minute,
	}
}

// Prediction is when tonight's run is expected to succeed and how likely it is
// to miss the deadline.
type Prediction struct {
	Night    time.Time `json:"night"`
	Deadline time.Time `json:"deadline"`
	// Done is set once tonight's job succeeded.
	Done bool `json:"done"`
	// Finish is the expected success time; Lo and Hi bound it (optimistic and
	// pessimistic). Zero when unknown.
	Finish time.Time `json:"predicted_finish,omitzero"`
	Lo     time.Time `json:"finish_lo,omitzero"`
	Hi     time.Time `json:"finish_hi,omitzero"`
	// PBreach is the probability of missing the deadline.
	PBreach float64 `json:"p_breach"`
	// Basis says how it was predicted; Insufficient marks the fallback.
	Basis        string `json:"basis"`
	Insufficient bool   `json:"insufficient_history"`
	LearnedFrom  int    `json:"learned_from"`
	// Why is the reasoning with numbers, for the alert's summary.
	Why string `json:"why"`
}

func minutes(m float64) time.Duration { return time.Duration(m * float64(time.Minute)) }

// normSF is the probability that a standard normal exceeds x.
func normSF(x float64) float64 { return 0.5 * math.Erfc(x/math.Sqrt2) }

// pLonger is P(a lognormal duration with median med and log-spread sigma
// exceeds avail), all in minutes.
func pLonger(med, sigma, avail float64) float64 {
	if avail <= 0 {
		return 1
	}
	if med <= 0 {
		return 0
	}
	return normSF((math.Log(avail) - math.Log(med)) / sigma)
}

// learned is a job's history summarised for one prediction.
type learned struct {
	n                  int
	pre, load, post    float64 // medians, minutes
	rate, rows         float64 // medians
	loadSigma, arrival float64
	arrivalP90         float64
}

func (j *JobState) learned() learned {
	h := &j.hist
	l := learned{n: len(h.values(func(d dayRecord) float64 { return d.loadMin }))}
	l.pre = h.median(func(d dayRecord) float64 { return d.preMin })
	l.load = h.median(func(d dayRecord) float64 { return d.loadMin })
	l.post = h.median(func(d dayRecord) float64 { return d.postMin })
	l.rate = h.median(func(d dayRecord) float64 { return d.rate })
	l.rows = h.median(func(d dayRecord) float64 { return d.rows })
	l.loadSigma = h.logSigma(func(d dayRecord) float64 { return d.loadMin }, 0.08)
	arr := h.values(func(d dayRecord) float64 { return d.arrivalMin })
	l.arrival = quantile(arr, 0.5)
	l.arrivalP90 = quantile(arr, 0.9)
	if l.post <= 0 {
		l.post = 2
	}
	return l
}

// Predict is the pure prediction for the job at now.
func Predict(j *JobState, p Params, now time.Time) Prediction {
	pr := Prediction{Night: j.night, Deadline: j.deadline}
	if j.night.IsZero() {
		pr.Basis = "no night scheduled"
		return pr
	}
	if !j.succeeded.IsZero() {
		pr.Done, pr.Finish, pr.Basis = true, j.succeeded, "succeeded"
		pr.Why = fmt.Sprintf("succeeded at %s", j.succeeded.Format("15:04Z"))
		return pr
	}
	l := j.learned()
	pr.LearnedFrom = l.n
	have := l.n >= p.MinHistory
	left := j.deadline.Sub(now).Minutes() // minutes to the deadline
	cur := j.current()
	fallback := func(what string) Prediction {
		pr.Insufficient = true
		pr.Basis = "insufficient history"
		frac := now.Sub(j.night).Minutes() / j.deadline.Sub(j.night).Minutes()
		if frac >= p.FallbackWindowFraction {
			pr.PBreach = 1
		}
		pr.Why = fmt.Sprintf("insufficient history (%d of %d nights) and %s; %.0f%% of the window to the deadline has passed (pages at %.0f%%)",
			l.n, p.MinHistory, what, 100*frac, 100*p.FallbackWindowFraction)
		return pr
	}

	switch {
	case cur == nil || cur.state == status.StateWaiting:
		// Files have not arrived: they arrive now at the earliest, then the
		// whole run is still ahead.
		if !have {
			return fallback("no files yet")
		}
		proc := l.pre + l.load + l.post
		start := now
		if exp := j.night.Add(minutes(l.arrival)); exp.After(now) {
			start = exp
		}
		pr.Finish = start.Add(minutes(proc))
		pr.Lo = now.Add(minutes(proc * math.Exp(-1.28*l.loadSigma)))
		pr.Hi = start.Add(minutes(proc * math.Exp(1.28*l.loadSigma)))
		pr.PBreach = pLonger(proc, l.loadSigma, left)
		pr.Basis = "history"
		pr.Why = fmt.Sprintf("waiting for files; a run takes %.0f min after they arrive (median of %d nights); %.0f min left to the deadline",
			proc, l.n, left)
		return pr

	case cur.state == status.StateFailed:
		return predictRetry(j, cur, l, have, p, now, pr, fallback)

	case len(cur.samples) >= 2 && cur.samples[len(cur.samples)-1].at.Sub(cur.samples[0].at) >= 5*time.Minute && cur.rowsTotal > 0:
		return predictLoading(j, cur, l, have, p, now, pr)

	default:
		// Downloading or validating, or loading without enough progress yet.
		if !have {
			return fallback("no load progress to measure yet")
		}
		begin := cur.filesAt
		if cur.started.After(begin) {
			begin = cur.started
		}
		remPre := 0.0
		if cur.loadStart.IsZero() {
			remPre = math.Max(0, l.pre-now.Sub(begin).Minutes())
		}
		load := l.load
		if cur.rowsTotal > 0 && l.rate > 0 {
			load = float64(cur.rowsTotal-cur.rowsDone) / l.rate
		}
		pr.Finish = now.Add(minutes(remPre + load + l.post))
		pr.Lo = now.Add(minutes(remPre + load*math.Exp(-1.28*l.loadSigma) + l.post))
		pr.Hi = now.Add(minutes(remPre + load*math.Exp(1.28*l.loadSigma) + l.post))
		pr.PBreach = pLonger(load, l.loadSigma, left-remPre-l.post)
		pr.Basis = "history"
		pr.Why = fmt.Sprintf("%s; about %.0f min of loading ahead (history of %d nights); %.0f min left to the deadline",
			stageName(cur), load+remPre, l.n, left)
		return pr
	}
}

func stageName(r *runTrack) string {
	if r.stage == "" {
		return string(r.state)
	}
	return r.stage
}

// predictLoading predicts from the run's own progress: the current pace may
// be a slowdown that ends (memoryless, mean SlowdownPersistence), after which
// the run goes at its own typical pace again.
func predictLoading(j *JobState, cur *runTrack, l learned, have bool, p Params, now time.Time, pr Prediction) Prediction {
	remaining := float64(cur.rowsTotal - cur.rowsDone)
	rNow, _ := cur.rateOver(15 * time.Minute)
	frozen := now.Sub(cur.updated) > p.FrozenAfter
	if frozen {
		rNow = 0
	}
	rNow = math.Max(rNow, 0)
	rBase, ok := cur.typicalRate()
	pr.Basis = "own progress"
	if !ok || cur.loadEnd.Sub(cur.loadStart) < 20*time.Minute {
		if have && l.rate > 0 {
			rBase, pr.Basis = l.rate, "own progress and history"
		} else if r, ok := cur.rateOver(time.Hour); ok {
			rBase = r
		}
	}
	rBase = math.Max(rBase, rNow)
	post := l.post
	avail := j.deadline.Sub(now).Minutes() - post
	if rBase <= 0 {
		pr.PBreach = 0.5
		pr.Why = "no measurable progress yet"
		return pr
	}
	atBase := remaining / rBase
	pr.Lo = now.Add(minutes(atBase + post))
	persist := p.SlowdownPersistence.Minutes()
	if rNow > 0 {
		pr.Hi = now.Add(minutes(remaining/rNow + post))
		if rNow*persist >= remaining {
			pr.Finish = pr.Hi
		} else {
			pr.Finish = now.Add(minutes(persist + (remaining-rNow*persist)/rBase + post))
		}
	} else {
		pr.Finish = now.Add(minutes(persist + atBase + post))
	}
	switch {
	case atBase > avail:
		pr.PBreach = 1
	case rNow > 0 && remaining/rNow <= avail:
		pr.PBreach = 0
	default:
		// The slowdown may last u* more minutes at most and still make it.
		uStar := (avail*rBase - remaining) / (rBase - rNow)
		pr.PBreach = math.Exp(-uStar / persist)
	}
	pace := fmt.Sprintf("%.0f rows/min now, %.0f typical", rNow, rBase)
	if frozen {
		pace = fmt.Sprintf("no progress for %.0f min, %.0f rows/min typical", now.Sub(cur.updated).Minutes(), rBase)
	}
	pr.Why = fmt.Sprintf("loading %d of %d rows (%.0f%%), %s; finish %s (between %s and %s); deadline %s",
		cur.rowsDone, cur.rowsTotal, 100*float64(cur.rowsDone)/float64(cur.rowsTotal), pace,
		hhmm(pr.Finish), hhmm(pr.Lo), hhmm(pr.Hi), hhmm(j.deadline))
	return pr
}

// predictRetry: the last attempt failed; a retry should come and either resume
// from its checkpoint or start over (equally likely without evidence).
func predictRetry(j *JobState, cur *runTrack, l learned, have bool, p Params, now time.Time, pr Prediction, fallback func(string) Prediction) Prediction {
	since := now.Sub(cur.finished)
	if since > p.RetryGrace {
		pr.PBreach = 1
		pr.Basis = "retries exhausted"
		pr.Why = fmt.Sprintf("attempt failed %.0f min ago (%s) and no retry started", since.Minutes(), cur.err)
		return pr
	}
	rate := l.rate
	if r, ok := cur.typicalRate(); ok {
		rate = r
	}
	if rate <= 0 {
		if !have {
			return fallback("the last attempt failed")
		}
		rate = l.rows / math.Max(l.load, 1)
	}
	pre := l.pre
	if !have {
		pre = 5
	}
	retryAt := cur.finished.Add(p.RetryDelay)
	if retryAt.Before(now) {
		retryAt = now
	}
	ahead := retryAt.Sub(now).Minutes() + pre + l.post
	left := j.deadline.Sub(now).Minutes()
	scratch := ahead + float64(cur.rowsTotal)/rate
	resume := ahead + float64(cur.rowsTotal-cur.rowsDone)/rate
	pr.Lo, pr.Hi = now.Add(minutes(resume)), now.Add(minutes(scratch))
	pr.Finish = now.Add(minutes((scratch + resume) / 2))
	pr.PBreach = 0.5*b2f(scratch > left) + 0.5*b2f(resume > left)
	pr.Basis = "retry expected"
	pr.Why = fmt.Sprintf("attempt failed (%s); a retry finishes between %s (resumed) and %s (from scratch); deadline %s",
		cur.err, hhmm(pr.Lo), hhmm(pr.Hi), hhmm(j.deadline))
	return pr
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func hhmm(t time.Time) string {
	if t.IsZero() {
		return "?"
	}
	return t.UTC().Format("15:04Z")
}
