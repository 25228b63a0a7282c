package rules

import (
	"fmt"
	"math"
	"time"

	"github.com/etlhub/etlhub/model"
)

// Params tune the prediction and the rules. Defaults are principled, not
// fitted: see DefaultParams.
type Params struct {
	// PageProbability is the breach probability at which predicted-breach fires.
	PageProbability float64
	// ResolveProbability is the probability under which it resolves (hysteresis).
	ResolveProbability float64
	// SlowdownPersistence is the mean remaining length of a slowdown that has
	// just begun: a run going slower than its own pace is expected to
	// recover. Slowdowns are not memoryless: one that has lasted long is
	// likely to last longer still, so the mean remaining length grows with
	// the slowdown's age (see SlowdownShape).
	SlowdownPersistence time.Duration
	// SlowdownShape is the tail of slowdown lengths (a Lomax, Pareto type
	// II, distribution with this shape and SlowdownPersistence its mean at
	// onset): after a slowdown of age a the chance it lasts u minutes more
	// is ((s+a)/(s+a+u))^shape with s = persistence × (shape-1), and its
	// mean remaining length (s+a)/(shape-1). Zero means memoryless
	// (exponential with mean SlowdownPersistence, whatever the age), as
	// does any shape of 1 or less.
	SlowdownShape float64
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
	// FrozenAfter: a heartbeat this much older than the observation that
	// carries it counts as no progress (rate 0) in the prediction.
	FrozenAfter time.Duration
	// SilentFrozen: a run not heard of at all for this many times its
	// stale_after counts as no progress too. A shorter silence is the
	// collection's (a missed poll, a source briefly unreachable), not the
	// job's: the prediction goes on at the pace last seen; the stalled rule
	// tells the silence itself after stale_after.
	SilentFrozen float64
	// DeadlineEvidence is how long after the deadline deadline-missed waits
	// for an observation to show the run had not succeeded; success may have
	// happened between polls.
	DeadlineEvidence time.Duration
	// Horizon, when set, is where the data ends (a replay's scenario end):
	// nights whose deadline lies beyond it are not judged, as nothing could
	// show whether they made it. Zero in the live hub.
	Horizon time.Time
	// Blind are the hub's own blind intervals (its store did not answer):
	// silences are measured without them (Seen). Set each tick (SetBlind).
	Blind []Interval
}

// DefaultParams are the defaults.
func DefaultParams() Params {
	return Params{
		PageProbability:        0.85,
		ResolveProbability:     0.25,
		SlowdownPersistence:    45 * time.Minute,
		SlowdownShape:          2,
		MinHistory:             3,
		FallbackWindowFraction: 0.85,
		RetryDelay:             10 * time.Minute,
		RetryGrace:             45 * time.Minute,
		MissedStartGrace:       30 * time.Minute,
		FrozenAfter:            12 * time.Minute,
		SilentFrozen:           2,
		DeadlineEvidence:       30 * time.Minute,
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

func (j *JobState) learned() learned { return j.sum }

// summary condenses the history. The expected load time is the usual rows at
// the usual unhindered pace; its spread is the spread of that pace.
func (h *history) summary() learned {
	l := learned{n: len(h.values(func(d dayRecord) float64 { return d.rate }))}
	l.pre = h.median(func(d dayRecord) float64 { return d.preMin })
	l.post = h.median(func(d dayRecord) float64 { return d.postMin })
	l.rate = h.median(func(d dayRecord) float64 { return d.rate })
	l.rows = h.median(func(d dayRecord) float64 { return d.rows })
	if l.rate > 0 {
		l.load = l.rows / l.rate
	}
	l.loadSigma = h.logSigma(func(d dayRecord) float64 { return d.rate }, 0.08)
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
	case cur == nil || cur.state == model.StateWaiting:
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

	case cur.state == model.StateFailed:
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
		if l.rate > 0 {
			load = math.Max(float64(j.rowsTotal(cur, l)-cur.rowsDone), 0) / l.rate
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
	return string(r.stage)
}

// baseRate is the pace the run is expected to go at when nothing slows it:
// the faster of its own unhindered pace and the job's usual one, so that a
// run slowed from its first minute (a shared database having a bad night) is
// not taken at its slow word.
func baseRate(cur *runTrack, l learned, have bool) (float64, string) {
	own, ok := cur.typicalRate()
	switch {
	case ok && have && l.rate > own:
		return l.rate, "own progress and history"
	case ok:
		return own, "own progress"
	case have && l.rate > 0:
		return l.rate, "own progress and history"
	}
	if r, ok := cur.rateOver(time.Hour); ok {
		return r, "own progress"
	}
	return 0, "own progress"
}

// rateSigma is the uncertainty of a pace measured over elapsed minutes of
// loading, in log terms.
func rateSigma(elapsed float64) float64 {
	return math.Max(0.04, 0.25/math.Sqrt(math.Max(elapsed, 1)/5))
}

// predictLoading predicts from the run's own progress: the current pace may
// be a slowdown that ends (memoryless, mean SlowdownPersistence), after which
// the run goes at its base pace again.
func predictLoading(j *JobState, cur *runTrack, l learned, have bool, p Params, now time.Time, pr Prediction) Prediction {
	total := j.rowsTotal(cur, l)
	remaining := math.Max(float64(total-cur.rowsDone), 0)
	rNow, _ := cur.rateOver(15 * time.Minute)
	// Frozen when the job itself reports an old heartbeat, or when nothing
	// has been heard of it for SilentFrozen × stale_after; a late poll or a
	// gap in collection is not a stall.
	reported := cur.lastAt.Sub(cur.updated) > p.FrozenAfter
	frozen := reported || now.Sub(cur.updated) > time.Duration(p.SilentFrozen*float64(j.Spec.StaleAfter.D()))
	if frozen {
		rNow = 0
	}
	rNow = math.Max(rNow, 0)
	rBase, basis := baseRate(cur, l, have)
	pr.Basis = basis
	rBase = math.Max(rBase, rNow)
	// Predict from the run's last progress time, not from now: the poll lags
	// the job, and the run may already have finished unseen.
	ref := now
	if !frozen && cur.updated.Before(now) {
		ref = cur.updated
	}
	post := l.post
	if cur.stage == model.StagePublishing && !cur.loadEnd.IsZero() {
		post = math.Max(0, post-ref.Sub(cur.loadEnd).Minutes())
	}
	avail := j.deadline.Sub(ref).Minutes() - post
	if rBase <= 0 {
		pr.PBreach = 0.5
		pr.Why = "no measurable progress yet"
		return pr
	}
	atBase := remaining / rBase
	sigma := rateSigma(cur.loadEnd.Sub(cur.loadStart).Minutes())
	pr.Lo = ref.Add(minutes(atBase*math.Exp(-1.28*sigma) + post))
	age, onset := 0.0, p.SlowdownPersistence.Minutes()
	if rNow < rBase {
		age = math.Max(0, ref.Sub(cur.slowSince(rBase)).Minutes())
		if !j.sharedSince.IsZero() {
			// Slowed by a shared cause: its slowdown is as old as the
			// incident, though the load may have begun in it.
			age = math.Max(age, ref.Sub(j.sharedSince).Minutes())
		}
	}
	persist := p.meanRemaining(onset, age)
	if rNow > 0 {
		pr.Hi = ref.Add(minutes(remaining/rNow + post))
		if rNow*persist >= remaining {
			pr.Finish = pr.Hi
		} else {
			pr.Finish = ref.Add(minutes(persist + (remaining-rNow*persist)/rBase + post))
		}
	} else {
		pr.Finish = ref.Add(minutes(persist + atBase + post))
	}
	// Even at base pace it may be too late (the pace's own uncertainty), and
	// a slowdown that goes on for more than u* minutes makes it too late.
	pr.PBreach = pLonger(atBase, sigma, avail)
	if rNow < rBase && remaining > rNow*avail {
		uStar := (avail*rBase - remaining) / (rBase - rNow)
		pSlow := 1.0
		if uStar > 0 {
			pSlow = p.lastsLonger(onset, age, uStar)
		}
		pr.PBreach = math.Max(pr.PBreach, pSlow)
	}
	pace := fmt.Sprintf("%.0f rows/min now, %.0f typical", rNow, rBase)
	if age >= 10 {
		pace = fmt.Sprintf("%.0f rows/min now, slow for %.0f min, %.0f typical", rNow, age, rBase)
	}
	switch {
	case reported:
		pace = fmt.Sprintf("no progress for %.0f min, %.0f rows/min typical", now.Sub(cur.updated).Minutes(), rBase)
	case frozen:
		pace = fmt.Sprintf("nothing heard of it for %.0f min, %.0f rows/min typical", now.Sub(cur.lastAt).Minutes(), rBase)
	case now.Sub(cur.lastAt) > j.Spec.StaleAfter.D():
		pace = fmt.Sprintf("nothing heard of it for %.0f min (as of then %.0f rows/min, %.0f typical)", now.Sub(cur.lastAt).Minutes(), rNow, rBase)
	}
	pr.Why = fmt.Sprintf("loading %d of %d rows (%.0f%%), %s; finish %s (between %s and %s); deadline %s",
		cur.rowsDone, total, 100*float64(cur.rowsDone)/float64(max(total, 1)), pace,
		hhmm(pr.Finish), hhmm(pr.Lo), hhmm(pr.Hi), hhmm(j.deadline))
	return pr
}

// meanRemaining is the expected remaining length, in minutes, of a slowdown
// that has lasted age minutes, of those whose mean length is onset minutes.
func (p Params) meanRemaining(onset, age float64) float64 {
	if p.SlowdownShape <= 1 {
		return onset
	}
	return onset + age/(p.SlowdownShape-1)
}

// lastsLonger is the chance that a slowdown that has lasted age minutes
// lasts u minutes more, of those whose mean length is onset minutes.
func (p Params) lastsLonger(onset, age, u float64) float64 {
	if p.SlowdownShape <= 1 {
		return math.Exp(-u / onset)
	}
	s := onset*(p.SlowdownShape-1) + age
	return math.Pow(s/(s+u), p.SlowdownShape)
}

// rowsTotal is the run's total, or the night's earlier attempt's, or the usual.
func (j *JobState) rowsTotal(cur *runTrack, l learned) int64 {
	if cur.rowsTotal > 0 {
		return cur.rowsTotal
	}
	for _, r := range j.runs {
		if r.rowsTotal > 0 {
			return r.rowsTotal
		}
	}
	return int64(l.rows)
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
	rate, _ := baseRate(cur, l, have)
	if rate <= 0 {
		return fallback("the last attempt failed")
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
	total := float64(j.rowsTotal(cur, l))
	scratch := ahead + total/rate
	resume := ahead + math.Max(total-float64(cur.rowsDone), 0)/rate
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
