package rules

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/etlhub/etlhub/model"
)

// RuleSharedSlowdown fires when the loads of many tenants slow at the same
// moment: a cause they share (the MongoDB they load into, the SFTP host,
// Redis) rather than each district's own trouble. It is one alert with
// scope "shared" that lists the loads it slowed; their own critical alerts
// of that night fire as usual (on the board, in history) but are grouped
// under it, so the on-call gets one page for the cause, not one per tenant.
const RuleSharedSlowdown = "shared-slowdown"

// SharedParams say when slowed loads count as one shared slowdown.
type SharedParams struct {
	// SlowRatio: a load is slowed when its last 15 minutes went at less than
	// this fraction of its base pace (its own unhindered pace, or the job's
	// usual one when faster); it is at pace at AtPace or more. A load that
	// went from at pace to slowed has a known onset.
	SlowRatio, AtPace float64
	// Drop: a load seen between SlowRatio and AtPace has a known onset
	// when it falls below SlowRatio-Drop.
	Drop float64
	// Together: loads of at least two tenants struck within this long of
	// each other, one of them at a known onset (the others may have begun
	// slow in that time): a shared cause strikes everything at the same
	// moment, a district's own trouble at its own.
	Together time.Duration
	// MinTogether: with fewer tenants struck together than this, the loads
	// struck must be all that is loading, not only Fraction of it.
	MinTogether int
	// Fraction: and the loads struck at that moment or since (slowed, or
	// begun slow) are at least this fraction of the loads in progress;
	// loads slow since long before count against it, being slow of their
	// own.
	Fraction float64
	// Without such a moment (everything began slow): loads struck within
	// Recent, of at least MinTenants tenants and FractionAlone of what
	// loads (a load slow for hours is slow of its own).
	MinTenants    int
	FractionAlone float64
	Recent        time.Duration
}

// DefaultSharedParams: three tenants, and most of what is loading, slowed
// below 80% of their pace at once. One district's bad night is a slowdown
// of its own; day-to-day spread of a pace is about 12%.
func DefaultSharedParams() SharedParams {
	return SharedParams{SlowRatio: 0.8, AtPace: 0.9, Drop: 0.1, MinTenants: 4, Fraction: 0.6, Together: 10 * time.Minute, MinTogether: 3, FractionAlone: 0.8, Recent: 2 * time.Hour}
}

// Load is one run in progress, as the shared-slowdown rule sees it.
type Load struct {
	Tenant, Job string
	Night       time.Time
	// Measured: loading, with a pace to measure; Ratio is then the last 15
	// minutes' pace over the base pace. Runs downloading, validating or just
	// begun are not measured, but share a cause that strikes while they run.
	Measured bool
	Ratio    float64
	// Recent is the pace ratio over its last interval (about 5 minutes),
	// zero when unknown: how far it fell, to tell when it fell.
	Recent float64
	// Since is when the load began (its first progress in loading).
	Since time.Time
	// OwnPace: its base pace is its own, with no history to say what is
	// usual: a load that began during a slowdown knows no other pace.
	OwnPace bool
}

// load is the job's run in progress for the shared-slowdown rule (ok false
// when nothing runs): measured when it is loading with enough progress to
// measure its pace against its base pace, and has not gone quiet (a stall
// is not a slowdown).
func (j *JobState) load(p Params, now time.Time) (Load, bool) {
	cur := j.current()
	if cur == nil || cur.state != model.StateRunning {
		return Load{}, false
	}
	l := Load{Tenant: j.Spec.Tenant, Job: j.Spec.Job, Night: j.night, Since: cur.loadStart}
	l.Ratio, l.Recent, l.Measured = j.paceRatio(cur, p, now)
	l.OwnPace = j.learned().n < p.MinHistory
	return l, true
}

func (j *JobState) paceRatio(cur *runTrack, p Params, now time.Time) (ratio, recent float64, ok bool) {
	if cur.rowsTotal <= 0 || len(cur.samples) < 2 ||
		cur.loadEnd.Sub(cur.loadStart) < 10*time.Minute {
		return 0, 0, false
	}
	if cur.lastAt.Sub(cur.updated) > p.FrozenAfter || now.Sub(cur.updated) > j.Spec.StaleAfter.D() {
		return 0, 0, false
	}
	rNow, ok := cur.rateOver(15 * time.Minute)
	if !ok {
		return 0, 0, false
	}
	rBase, _ := baseRate(cur, j.learned(), j.learned().n >= p.MinHistory)
	if rBase <= 0 {
		return 0, 0, false
	}
	if r, ok := cur.rateOver(5 * time.Minute); ok {
		recent = r / rBase
	}
	return rNow / rBase, recent, true
}

// sharedState is what the rule remembers between ticks: when the present
// slowdown began, which loads it has slowed (each with its night), and how
// each load in progress has gone.
type sharedState struct {
	since    time.Time
	struck   time.Time // the moment it struck (the first of the loads it slowed together)
	over     time.Time // when its aftermath began (zero: not in it)
	affected map[model.JobKey]time.Time
	pace     map[model.JobKey]paceMark
	gone     []goneLoad // loads measured earlier that are no longer in progress
}

// goneLoad is a load that ended (or stopped running): when, and its mark
// when it was last measured (zero: at its pace). A strike seen only once the
// loads at pace have finished must still count them: they were in progress
// when it struck, and it did not slow them.
type goneLoad struct {
	at, mark time.Time
}

// goneMemory is how long ended loads are remembered.
const goneMemory = 6 * time.Hour

// paceMark: whether a load was seen at pace, and when it went under the
// slow ratio after that (zero: at pace, or slow from its first measure);
// born is when a load slow from its first measure began loading (zero: it
// was at pace first).
type paceMark struct {
	atPace   bool
	unslowed bool // seen at SlowRatio or more
	onset    time.Time
	born     time.Time
	ratios   []ratioAt // its pace ratio at each tick of the last paceMemory
}

// onsetLag is how long ago a load seen slow for the first time slowed from
// the pace ratio from: its 15-minute pace crosses the threshold only some
// minutes after the moment it fell to its recent pace q (by then
// r = from - x/15·(from-q), x the minutes since).
func onsetLag(l Load, from float64) time.Duration {
	q := l.Recent
	if q <= 0 || q >= l.Ratio || l.Ratio >= from {
		return 0
	}
	x := 15 * (from - l.Ratio) / (from - q)
	return min(time.Duration(x*float64(time.Minute)), 15*time.Minute)
}

// ratioAt is a load's pace ratio at one tick. The tick's time is kept as
// Unix nanoseconds (now is UTC, without a monotonic reading): 24 bytes, not
// 40, for every tick of paceMemory of every load.
type ratioAt struct {
	at            int64
	ratio, recent float64
}

// paceMemory is how far back a load's pace ratios are kept: enough to say
// how it went before a shared slowdown that is told half an hour after it
// struck.
const paceMemory = 90 * time.Minute

// ratioBefore is the load's last pace ratio seen at or before t.
func (m *paceMark) ratioBefore(t time.Time) (float64, bool) {
	at := t.UnixNano()
	for i := len(m.ratios) - 1; i >= 0; i-- {
		if m.ratios[i].at <= at {
			return m.ratios[i].ratio, true
		}
	}
	return 0, false
}

// struck is a slowed load's mark: the moment it slowed, or, slow from its
// first measure, the moment it began.
type struck struct {
	at     time.Time
	tenant string
	onset  bool // at pace before (a known onset), not slow from the start
}

// strikeTogether finds the most loads of different tenants struck within
// d of each other, at least one of them at a known onset (two loads that
// merely began slow at the same time say nothing of a cause): when the
// first of them was struck, and how many tenants.
func strikeTogether(marks []struck, d time.Duration) (time.Time, int) {
	slices.SortFunc(marks, func(a, b struck) int { return a.at.Compare(b.at) })
	var from time.Time
	best := 0
	for i := range marks {
		ten := map[string]bool{}
		known := false
		for j := i; j < len(marks) && marks[j].at.Sub(marks[i].at) <= d; j++ {
			ten[marks[j].tenant] = true
			known = known || marks[j].onset
		}
		if known && len(ten) > best {
			from, best = marks[i].at, len(ten)
		}
	}
	return from, best
}

// SharedSlowdown is the pure rule: the loads in progress at now and how
// many alerts grouped under the shared alert are open in, the signal (nil
// when there is no shared slowdown) out. st carries the onset and the loads
// affected so far from tick to tick.
func SharedSlowdown(loads []Load, open int, sp SharedParams, st *sharedState, now time.Time) *Signal {
	var slowed []Load
	var marks []struck
	pace := make(map[model.JobKey]paceMark, len(loads))
	markOf := map[model.JobKey]time.Time{} // a slowed load's mark
	measured := 0
	nowNs := now.UnixNano()
	var ownSince []time.Time // loads at pace whose pace is only their own: when each began
	for _, l := range loads {
		if !l.Measured {
			// Gone quiet or between stages a while: it keeps what it was
			// (at pace, or slowed since), so that its pace when it is
			// measured again has an onset, not a start of its own.
			if m, ok := st.pace[model.JobKey{Tenant: l.Tenant, Job: l.Job}]; ok {
				pace[model.JobKey{Tenant: l.Tenant, Job: l.Job}] = m
			}
			continue
		}
		measured++
		if l.OwnPace && l.Ratio >= sp.SlowRatio {
			ownSince = append(ownSince, l.Since)
		}
		k := model.JobKey{Tenant: l.Tenant, Job: l.Job}
		m, seen := st.pace[k]
		keep := 0
		for keep < len(m.ratios) && time.Duration(nowNs-m.ratios[keep].at) > paceMemory {
			keep++
		}
		best := 0.0 // its best recent pace in the last half hour
		for _, r := range m.ratios[keep:] {
			if time.Duration(nowNs-r.at) <= 30*time.Minute {
				best = max(best, r.recent)
			}
		}
		m.ratios = append(m.ratios[keep:], ratioAt{at: nowNs, ratio: l.Ratio, recent: l.Recent})
		if l.Ratio >= sp.SlowRatio {
			if l.Ratio >= sp.AtPace {
				m.atPace = true
			}
			m.unslowed = true
			m.onset, m.born = time.Time{}, time.Time{}
			pace[k] = m
			continue
		}
		switch {
		case seen && m.onset.IsZero() && (m.atPace || (m.unslowed && l.Ratio < sp.SlowRatio-sp.Drop)):
			// One onset per time at pace; a load that went a little under its
			// pace has one when it falls well below.
			m.onset, m.atPace, m.unslowed = now.Add(-onsetLag(l, 1)), false, false
		case seen && m.onset.IsZero() && !m.born.IsZero() && l.Recent > 0 && l.Recent < sp.SlowRatio*best:
			// Slow from its first measure, its recent pace fell well below
			// what it was: an onset as well.
			m.onset = now.Add(-onsetLag(l, min(best, 1)))
		case !seen:
			m.born = l.Since
			if m.born.IsZero() || m.born.After(now) {
				m.born = now
			}
		}
		pace[k] = m
		slowed = append(slowed, l)
		switch {
		case !m.onset.IsZero():
			markOf[k] = m.onset
			marks = append(marks, struck{at: m.onset, tenant: l.Tenant, onset: true})
		case !m.born.IsZero():
			markOf[k] = m.born
			marks = append(marks, struck{at: m.born, tenant: l.Tenant})
		}
	}
	for k, m := range st.pace {
		if _, still := pace[k]; !still {
			g := goneLoad{at: now, mark: m.onset}
			if g.mark.IsZero() {
				g.mark = m.born
			}
			st.gone = append(st.gone, g)
		}
	}
	keepGone := 0
	for keepGone < len(st.gone) && now.Sub(st.gone[keepGone].at) > goneMemory {
		keepGone++
	}
	st.gone = st.gone[keepGone:]
	st.pace = pace
	many := false
	var strike time.Time
	if from, n := strikeTogether(marks, sp.Together); n >= 2 {
		// A cause they share strikes them at one moment: count the loads it
		// struck then or after (slowed since, or begun slow since), not
		// those slow long before it, which are slow of their own.
		hit, judged := 0, measured
		for _, mk := range marks {
			if !mk.at.Before(from) {
				hit++
			}
		}
		// A load begun since then (or just before: an onset is seen over
		// the 15 minutes a pace is measured on) with no history to say
		// what is usual went at the slowed pace from its start: it says
		// nothing either way.
		for _, at := range ownSince {
			if !at.Before(from.Add(-15 * time.Minute)) {
				judged--
			}
		}
		// Loads that ran on a while after it struck and have ended since:
		// those at pace were not struck.
		for _, g := range st.gone {
			if g.at.Sub(from) >= 15*time.Minute {
				judged++
				if !g.mark.IsZero() && !g.mark.Before(from) {
					hit++
				}
			}
		}
		need := sp.Fraction
		if n < sp.MinTogether {
			// Two tenants slowing at the same moment happens by chance on
			// a night of many slowdowns; it is a shared cause when they are
			// everything that loads.
			need = 1
		}
		many = float64(hit) >= need*float64(judged)
		// It struck at the first known onset among them (a load begun slow
		// says only that it struck before its first measure).
		strike = from
		for _, mk := range marks {
			if mk.onset && !mk.at.Before(from) && mk.at.Sub(from) <= sp.Together {
				strike = mk.at
				break
			}
		}
	}
	if !many {
		// Without a known onset among them (everything began slow), most of
		// what loads must have slowed lately, in several tenants.
		recent := map[string]bool{}
		n := 0
		strike = time.Time{}
		for _, mk := range marks {
			if now.Sub(mk.at) <= sp.Recent {
				n++
				recent[mk.tenant] = true
				if strike.IsZero() || mk.at.Before(strike) {
					strike = mk.at
				}
			}
		}
		many = len(recent) >= sp.MinTenants && float64(n) >= sp.FractionAlone*float64(measured)
	}
	level, after := Level(0), false
	switch {
	case many:
		level = Trigger
	case st.since.IsZero():
	case struckSlow(slowed, st) > 0 || open > 0:
		// It lasts while a load it struck is still slow, and while an alert
		// it explains is open (a late import is still its consequence); a
		// load slow of its own does not hold it.
		level = Hold
	default:
		// Its aftermath: the loads it struck are back at pace but still
		// running, behind by the time they lost. A page for one of them
		// tonight (a deadline the lost time now makes it miss) is still its
		// consequence and is grouped under it, not paged on its own.
		for _, l := range loads {
			if st.slowed(l.Tenant, l.Job, l.Night) {
				level, after = Hold, true
				break
			}
		}
	}
	if level == 0 {
		st.since, st.over = time.Time{}, time.Time{}
		return nil
	}
	if st.since.IsZero() {
		st.since, st.struck = now, strike
		if st.struck.IsZero() || st.struck.After(now) {
			st.struck = now
		}
		st.affected = map[model.JobKey]time.Time{}
	}
	switch {
	case !after:
		st.over = time.Time{}
		// The runs in progress while it lasts share the cause: the loads it
		// slowed, and the runs it may strike that have no pace to measure
		// (downloading, validating, just begun). A load at its pace is
		// not its; nor is one slow of its own since before it struck (a
		// district's own trouble, paged on its own).
		for _, l := range loads {
			k := model.JobKey{Tenant: l.Tenant, Job: l.Job}
			if l.Measured {
				at, slow := markOf[k]
				if !slow {
					continue
				}
				if at.Before(st.struck.Add(-sp.Together)) {
					// Slow since before it struck: its own trouble, unless it
					// struck it too (its pace fell well below what it was).
					m := pace[k]
					before, ok := m.ratioBefore(st.struck.Add(-5 * time.Minute))
					if !ok || l.Ratio >= sp.SlowRatio*before {
						continue
					}
				}
			}
			st.affected[k] = l.Night
		}
	case st.over.IsZero():
		st.over = now // a run that begins in its aftermath is not its
	}
	aff := make([]model.Affected, 0, len(st.affected))
	for k := range st.affected {
		aff = append(aff, model.Affected{Tenant: k.Tenant, Job: k.Job})
	}
	sort.Slice(aff, func(a, b int) bool {
		if aff[a].Tenant != aff[b].Tenant {
			return aff[a].Tenant < aff[b].Tenant
		}
		return aff[a].Job < aff[b].Job
	})
	// What it says: the loads it struck that are slow now, their pace, and
	// since when; loads slow of their own are named apart.
	var ratios []float64
	var names, own []string
	for _, l := range slowed {
		if st.slowed(l.Tenant, l.Job, l.Night) {
			ratios = append(ratios, l.Ratio)
			names = append(names, l.Tenant)
		} else {
			own = append(own, l.Tenant)
		}
	}
	names, own = uniqueSorted(names), uniqueSorted(own)
	med := quantile(ratios, 0.5)
	summary := fmt.Sprintf("shared slowdown: %d of %d loads in progress (%d tenants: %s) slowed together at %s, to %.0f%% of their usual pace; "+
		"look first at what they share (MongoDB, the SFTP host, Redis), not at each district",
		len(ratios), measured, len(names), clipList(names, 6), hhmm(st.struck), 100*med)
	if len(own) > 0 {
		summary += fmt.Sprintf(" (slow of their own before it: %s)", clipList(own, 3))
	}
	if len(ratios) == 0 && !after {
		// Held only by the alerts it explains: its loads are done or
		// back at pace.
		summary = fmt.Sprintf("shared slowdown since %s: none of its loads is slow now; %d alerts it explains are still open, grouped under it",
			hhmm(st.struck), open)
	}
	if after {
		var behind []string
		for _, l := range loads {
			if st.slowed(l.Tenant, l.Job, l.Night) {
				behind = append(behind, l.Tenant+"/"+l.Job)
			}
		}
		slices.Sort(behind)
		verb := "are"
		if len(behind) == 1 {
			verb = "is"
		}
		summary = fmt.Sprintf("shared slowdown from %s to %s is over; %d of the %d runs it slowed %s still running, behind by the time they lost (%s): "+
			"a late finish among them is its consequence", hhmm(st.struck), hhmm(st.over), len(behind), len(aff), verb, clipList(behind, 6))
	}
	return &Signal{Rule: RuleSharedSlowdown, Severity: model.SeverityCritical, Fingerprint: fingerprint(RuleSharedSlowdown, nightKey(st.since)),
		Level: level, Summary: summary, Scope: model.ScopeShared, Affected: aff,
		Details: map[string]any{"since": st.since, "struck_at": st.struck, "slowed_loads": len(ratios), "slow_of_their_own": len(slowed) - len(ratios),
			"loads_in_progress": measured, "runs_in_progress": len(loads), "tenants": len(names), "median_pace_ratio": med, "aftermath": after}}
}

// struckSlow counts the slowed loads the shared slowdown in st struck.
func struckSlow(slowed []Load, st *sharedState) int {
	n := 0
	for _, l := range slowed {
		if st.slowed(l.Tenant, l.Job, l.Night) {
			n++
		}
	}
	return n
}

// slowed says whether the shared slowdown in st is among the causes of
// tenant/job's night (it struck its run of that night).
func (st *sharedState) slowed(tenant, job string, night time.Time) bool {
	n, ok := st.affected[model.JobKey{Tenant: tenant, Job: job}]
	return ok && n.Equal(night)
}

// uniqueSorted sorts names and drops repeats.
func uniqueSorted(names []string) []string {
	slices.Sort(names)
	return slices.Compact(names)
}

// clipList joins names, the first n of them and how many more.
func clipList(names []string, n int) string {
	if len(names) <= n {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:n], ", "), len(names)-n)
}
