package rules

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/etlhub/etlhub/model"
)

func spec(t *testing.T, tz, sched, deadline string) model.JobSpec {
	t.Helper()
	s := model.JobSpec{Tenant: "dade", Job: "roster-import", Timezone: tz, Schedule: sched, Deadline: deadline,
		StaleAfter: model.Duration(20 * time.Minute)}
	if err := s.Compile(); err != nil {
		t.Fatal(err)
	}
	return s
}

// nightPlan describes one simulated night of a job, minute by minute.
type nightPlan struct {
	start     time.Time // when the run is created (the scheduled start)
	filesLate time.Duration
	rows      int64
	rate      float64 // rows a minute
	slowFrom  float64 // fraction done when a slowdown starts (0: none)
	slowRate  float64
	stallAt   float64 // fraction done when the heartbeat freezes (0: none)
	stallFor  time.Duration
	failAt    float64 // fraction done when the attempt fails (0: none)
}

// simulate returns what a collector polling every 5 minutes would see.
func simulate(p nightPlan, runID string) []model.Observation {
	type snap struct {
		t     time.Time
		state model.State
		stage string
		upd   time.Time
		done  int64
		total int64
		fin   *time.Time
		err   string
	}
	var snaps []snap
	t := p.start
	started := p.start
	for ; t.Before(p.start.Add(p.filesLate)); t = t.Add(time.Minute) {
		snaps = append(snaps, snap{t, model.StateWaiting, "awaiting_files", t, 0, 0, nil, ""})
	}
	for i := 0; i < 5; i++ {
		snaps = append(snaps, snap{t, model.StateRunning, "downloading", t, 0, 0, nil, ""})
		t = t.Add(time.Minute)
	}
	var done float64
	stalled := false
	for done < float64(p.rows) {
		frac := done / float64(p.rows)
		if p.failAt > 0 && frac >= p.failAt {
			f := t
			snaps = append(snaps, snap{t, model.StateFailed, "loading", t, int64(done), p.rows, &f, "mongo: connection reset"})
			break
		}
		if p.stallAt > 0 && !stalled && frac >= p.stallAt {
			stalled = true
			frozen := t.Add(-time.Minute)
			for end := t.Add(p.stallFor); t.Before(end); t = t.Add(time.Minute) {
				snaps = append(snaps, snap{t, model.StateRunning, "loading", frozen, int64(done), p.rows, nil, ""})
			}
		}
		r := p.rate
		if p.slowFrom > 0 && frac >= p.slowFrom {
			r = p.slowRate
		}
		done = min(done+r, float64(p.rows))
		snaps = append(snaps, snap{t, model.StateRunning, "loading", t, int64(done), p.rows, nil, ""})
		t = t.Add(time.Minute)
	}
	if len(snaps) > 0 && snaps[len(snaps)-1].state != model.StateFailed {
		for i := 0; i < 2; i++ {
			snaps = append(snaps, snap{t, model.StateRunning, "publishing", t, p.rows, p.rows, nil, ""})
			t = t.Add(time.Minute)
		}
		f := t
		snaps = append(snaps, snap{t, model.StateSucceeded, "", t, p.rows, p.rows, &f, ""})
	}
	var out []model.Observation
	last := snaps[len(snaps)-1].t
	i := 0
	for poll := p.start; !poll.After(last.Add(5 * time.Minute)); poll = poll.Add(5 * time.Minute) {
		for i+1 < len(snaps) && !snaps[i+1].t.After(poll) {
			i++
		}
		s := snaps[i]
		upd := s.upd
		o := model.Observation{At: poll, RunStatus: model.RunStatus{
			Source: "importer", Tenant: "dade", Job: "roster-import", RunID: runID,
			State: s.state, Stage: model.Stage(s.stage), StartedAt: &started, UpdatedAt: &upd, RowsDone: s.done, RowsTotal: s.total,
			FinishedAt: s.fin, Error: s.err,
		}}
		out = append(out, o)
	}
	return out
}

// drive feeds observations and ticks every minute from..to; it returns the
// transitions.
func drive(e *Engine, obs []model.Observation, from, to time.Time) []model.Transition {
	var out []model.Transition
	i := 0
	for now := from; !now.After(to); now = now.Add(time.Minute) {
		j := i
		for j < len(obs) && !obs[j].At.After(now) {
			j++
		}
		e.Observe(obs[i:j], now)
		i = j
		tr, _ := e.Tick(now)
		out = append(out, tr...)
	}
	return out
}

func firing(tr []model.Transition, rule string) []model.Transition {
	var out []model.Transition
	for _, t := range tr {
		if t.Status == "firing" && t.Alert.Rule == rule {
			out = append(out, t)
		}
	}
	return out
}

// feedHistory feeds n ordinary nights before day, at 1000 rows/min for 60k rows.
func feedHistory(e *Engine, s model.JobSpec, day time.Time, n int) time.Time {
	start := s.PrevStart(day)
	var obs []model.Observation
	nights := []time.Time{}
	for k := n; k >= 1; k-- {
		st := s.PrevStart(start.Add(-time.Duration(k-1)*24*time.Hour - time.Minute))
		nights = append(nights, st)
	}
	for k, st := range nights {
		obs = append(obs, simulate(nightPlan{start: st, filesLate: 5 * time.Minute, rows: 60000, rate: 1000}, fmt.Sprintf("h%d", k))...)
	}
	drive(e, obs, nights[0].Add(-time.Hour), start.Add(-2*time.Hour))
	return start
}

func TestPredictedBreachPagesBeforeTheDeadline(t *testing.T) {
	// Starts 02:00 New York, deadline 04:00: a normal night takes ~72 minutes.
	s := spec(t, "America/New_York", "0 2 * * *", "04:00")
	e := NewEngine([]model.JobSpec{s}, DefaultParams(), nil)
	tonight := feedHistory(e, s, time.Date(2026, 9, 10, 7, 0, 0, 0, time.UTC), 5)
	deadline := s.DeadlineFor(tonight)
	// Tonight the load runs at a third of its pace from 20% on: it cannot make it.
	obs := simulate(nightPlan{start: tonight, filesLate: 5 * time.Minute, rows: 60000, rate: 1000, slowFrom: 0.2, slowRate: 300}, "tonight")
	tr := drive(e, obs, tonight.Add(-time.Hour), deadline)
	pages := firing(tr, RulePredictedBreach)
	if len(pages) != 1 {
		t.Fatalf("%d predicted-breach pages, want 1: %+v", len(pages), tr)
	}
	p := pages[0]
	if lead := deadline.Sub(p.At); lead < 15*time.Minute {
		t.Fatalf("paged %v before the deadline, want at least 15m", lead)
	}
	if p.Alert.Severity != model.SeverityCritical || !strings.Contains(p.Alert.Summary, "rows/min") || !strings.Contains(p.Alert.Summary, "deadline") {
		t.Fatalf("page = %+v", p.Alert)
	}
	if got := p.Alert.Details["learned_from"]; got != 5 {
		t.Fatalf("learned_from = %v, want 5 nights", got)
	}
}

func TestNoPageWhenTheRunWillMakeIt(t *testing.T) {
	s := spec(t, "America/New_York", "0 2 * * *", "04:00")
	e := NewEngine([]model.JobSpec{s}, DefaultParams(), nil)
	tonight := feedHistory(e, s, time.Date(2026, 9, 10, 7, 0, 0, 0, time.UTC), 5)
	// A short slowdown early in the load: it still makes it comfortably.
	obs := simulate(nightPlan{start: tonight, filesLate: 10 * time.Minute, rows: 60000, rate: 1000, slowFrom: 0.1, slowRate: 700}, "tonight")
	tr := drive(e, obs, tonight.Add(-time.Hour), s.DeadlineFor(tonight).Add(time.Hour))
	for _, x := range tr {
		if x.Alert.Severity == model.SeverityCritical {
			t.Fatalf("paged on a night that makes it: %+v", x.Alert)
		}
	}
}

func TestInsufficientHistoryIsSaidAndFallsBack(t *testing.T) {
	s := spec(t, "UTC", "0 2 * * *", "04:00")
	e := NewEngine([]model.JobSpec{s}, DefaultParams(), nil)
	night := time.Date(2026, 9, 10, 2, 0, 0, 0, time.UTC)
	// Files never arrive: no progress to measure and no history.
	obs := simulate(nightPlan{start: night, filesLate: 3 * time.Hour, rows: 1000, rate: 100}, "r1")
	tr := drive(e, obs, night.Add(-time.Hour), night.Add(110*time.Minute))
	pages := firing(tr, RulePredictedBreach)
	if len(pages) != 1 {
		t.Fatalf("%d pages, want the fallback page", len(pages))
	}
	if at := pages[0].At; at.Before(night.Add(102*time.Minute)) || at.After(night.Add(103*time.Minute)) {
		t.Fatalf("fallback paged at %v, want at 85%% of the window (03:42)", at)
	}
	if pages[0].Alert.Details["basis"] != "insufficient history" || !strings.Contains(pages[0].Alert.Summary, "insufficient history") {
		t.Fatalf("the page does not say the history is insufficient: %+v", pages[0].Alert)
	}
	v := e.Views()[model.JobKey{Tenant: "dade", Job: "roster-import"}]
	if !v.Prediction.Insufficient || v.Prediction.LearnedFrom != 0 {
		t.Fatalf("view prediction = %+v", v.Prediction)
	}
	if len(firing(tr, RuleFilesLate)) != 0 {
		t.Fatal("files-late fired without an expected arrival")
	}
}

func TestStalledFiresAndResolves(t *testing.T) {
	s := spec(t, "UTC", "0 2 * * *", "08:00")
	e := NewEngine([]model.JobSpec{s}, DefaultParams(), nil)
	night := time.Date(2026, 9, 10, 2, 0, 0, 0, time.UTC)
	obs := simulate(nightPlan{start: night, rows: 30000, rate: 500, stallAt: 0.5, stallFor: 40 * time.Minute}, "r1")
	tr := drive(e, obs, night, night.Add(4*time.Hour))
	var fired, resolved *model.Transition
	for i := range tr {
		if tr[i].Alert.Rule == RuleStalled {
			if tr[i].Status == "firing" {
				fired = &tr[i]
			} else {
				resolved = &tr[i]
			}
		}
	}
	// The freeze begins after 5 min downloading + 30 min loading.
	freeze := night.Add(35 * time.Minute)
	if fired == nil || fired.At.Sub(freeze) > 25*time.Minute || fired.At.Sub(freeze) < 20*time.Minute {
		t.Fatalf("stalled fired at %+v, want 20-25 min after %v", fired, freeze)
	}
	if fired.Alert.Severity != model.SeverityWarning || fired.Alert.RunID != "r1" {
		t.Fatalf("stalled alert = %+v", fired.Alert)
	}
	if resolved == nil || resolved.At.Before(freeze.Add(40*time.Minute)) {
		t.Fatalf("stalled did not resolve after the heartbeat came back: %+v", resolved)
	}
}

func TestDeadlineMissedSupersedesPrediction(t *testing.T) {
	s := spec(t, "UTC", "0 2 * * *", "03:00")
	e := NewEngine([]model.JobSpec{s}, DefaultParams(), nil)
	tonight := feedHistory(e, s, time.Date(2026, 9, 10, 2, 30, 0, 0, time.UTC), 4)
	obs := simulate(nightPlan{start: tonight, filesLate: 50 * time.Minute, rows: 60000, rate: 1000}, "late")
	tr := drive(e, obs, tonight.Add(-time.Hour), tonight.Add(3*time.Hour))
	if len(firing(tr, RulePredictedBreach)) != 1 || len(firing(tr, RuleDeadlineMissed)) != 1 {
		t.Fatalf("want one predicted-breach and one deadline-missed: %+v", tr)
	}
	if n := len(firing(tr, RuleFilesLate)); n != 1 {
		t.Fatalf("files-late fired %d times, want 1 (learned arrival)", n)
	}
	for _, a := range e.Active() {
		if a.Rule == RulePredictedBreach {
			t.Fatalf("predicted-breach still active after deadline-missed: %+v", a)
		}
	}
}

func TestFailedAndRetriesExhausted(t *testing.T) {
	s := spec(t, "UTC", "0 2 * * *", "09:00")
	e := NewEngine([]model.JobSpec{s}, DefaultParams(), nil)
	night := time.Date(2026, 9, 10, 2, 0, 0, 0, time.UTC)
	obs := simulate(nightPlan{start: night, rows: 30000, rate: 500, failAt: 0.3}, "r1")
	tr := drive(e, obs, night, night.Add(3*time.Hour))
	f := firing(tr, RuleFailed)
	if len(f) != 1 || f[0].Alert.Severity != model.SeverityWarning || !strings.Contains(f[0].Alert.Summary, "mongo: connection reset") {
		t.Fatalf("failed alerts = %+v", f)
	}
	x := firing(tr, RuleRetriesExhaust)
	failedAt := night.Add(5*time.Minute + 18*time.Minute) // 30% of 30000 rows at 500 a minute
	if len(x) != 1 || x[0].Alert.Severity != model.SeverityCritical || x[0].At.Sub(failedAt) <= DefaultParams().RetryGrace {
		t.Fatalf("retries-exhausted = %+v", x)
	}
}

func TestTooFastWarnsOnHalfARoster(t *testing.T) {
	s := spec(t, "UTC", "0 2 * * *", "06:00")
	e := NewEngine([]model.JobSpec{s}, DefaultParams(), nil)
	tonight := feedHistory(e, s, time.Date(2026, 9, 10, 3, 0, 0, 0, time.UTC), 4)
	obs := simulate(nightPlan{start: tonight, filesLate: 5 * time.Minute, rows: 20000, rate: 1000}, "small")
	tr := drive(e, obs, tonight.Add(-time.Hour), tonight.Add(2*time.Hour))
	f := firing(tr, RuleTooFast)
	if len(f) != 1 || f[0].Alert.Severity != model.SeverityWarning || !strings.Contains(f[0].Alert.Summary, "20000 rows") {
		t.Fatalf("too-fast = %+v", f)
	}
}

func TestSeverityOverrideEscalates(t *testing.T) {
	s := spec(t, "UTC", "0 2 * * *", "08:00")
	s.Severity = map[string]model.Severity{RuleStalled: model.SeverityCritical}
	e := NewEngine([]model.JobSpec{s}, DefaultParams(), nil)
	night := time.Date(2026, 9, 10, 2, 0, 0, 0, time.UTC)
	obs := simulate(nightPlan{start: night, rows: 30000, rate: 500, stallAt: 0.5, stallFor: 40 * time.Minute}, "r1")
	f := firing(drive(e, obs, night, night.Add(3*time.Hour)), RuleStalled)
	if len(f) != 1 || f[0].Alert.Severity != model.SeverityCritical {
		t.Fatalf("stalled with override = %+v", f)
	}
}

func TestSourceDownInhibitsStalled(t *testing.T) {
	s := spec(t, "UTC", "0 2 * * *", "08:00")
	e := NewEngine([]model.JobSpec{s}, DefaultParams(), nil)
	night := time.Date(2026, 9, 10, 2, 0, 0, 0, time.UTC)
	since := night.Add(10 * time.Minute)
	e.SetSources([]model.SourceHealth{{Name: "importer", FailingSince: &since, ConsecutiveFailures: 30, LastError: "HTTP 502"}},
		map[string]time.Duration{"importer": 10 * time.Minute})
	// The collector sees nothing after 10 minutes: the run looks frozen.
	obs := simulate(nightPlan{start: night, rows: 30000, rate: 500}, "r1")[:3]
	tr := drive(e, obs, night, night.Add(90*time.Minute))
	if len(firing(tr, RuleSourceDown)) != 1 {
		t.Fatalf("source-down did not fire: %+v", tr)
	}
	if n := len(firing(tr, RuleStalled)); n != 0 {
		t.Fatalf("stalled fired %d times while its source was down", n)
	}
}

func TestAutumnChangeNightIsOneNight(t *testing.T) {
	// 01:30 New York on 2026-11-01 happens twice; the job runs once, and the
	// deadline 03:00 EST is 2.5 hours after the 01:30 EDT start, not 1.5: a
	// run of 107 minutes makes it.
	s := spec(t, "America/New_York", "30 1 * * *", "03:00")
	e := NewEngine([]model.JobSpec{s}, DefaultParams(), nil)
	start := time.Date(2026, 11, 1, 5, 30, 0, 0, time.UTC)
	obs := simulate(nightPlan{start: start, rows: 50000, rate: 500}, "dst")
	tr := drive(e, obs, start.Add(-time.Hour), start.Add(5*time.Hour))
	for _, x := range tr {
		if x.Alert.Rule == RuleDeadlineMissed || x.Alert.Rule == RuleMissedStart {
			t.Fatalf("%s on the change night: %+v", x.Alert.Rule, x.Alert)
		}
	}
	v := e.Views()[model.JobKey{Tenant: "dade", Job: "roster-import"}]
	if !v.Prediction.Done || !v.Prediction.Deadline.Equal(time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)) {
		t.Fatalf("view after the change night = %+v", v.Prediction)
	}
}

func TestMissedStart(t *testing.T) {
	s := spec(t, "UTC", "0 2 * * *", "08:00")
	e := NewEngine([]model.JobSpec{s}, DefaultParams(), nil)
	night := time.Date(2026, 9, 10, 2, 0, 0, 0, time.UTC)
	tr := drive(e, nil, night.Add(-time.Hour), night.Add(45*time.Minute))
	f := firing(tr, RuleMissedStart)
	if len(f) != 1 || !f[0].At.Equal(night.Add(30*time.Minute)) {
		t.Fatalf("missed-start = %+v, want one at 02:30", f)
	}
}

// A slowdown that has lasted long is likely to last longer still: the chance
// it goes on for another 45 minutes grows with its age, while a memoryless
// one (shape 1) forgets how long it has gone on.
func TestOldSlowdownsLastLonger(t *testing.T) {
	p := DefaultParams()
	fresh, old := p.lastsLonger(45, 0, 45), p.lastsLonger(45, 120, 45)
	if !(old > fresh) || old < 0.5 {
		t.Fatalf("P(45 min more) = %.2f at onset, %.2f after two hours: want the old one likelier, and likely", fresh, old)
	}
	if m0, m120 := p.meanRemaining(45, 0), p.meanRemaining(45, 120); m0 != 45 || m120 <= 120 {
		t.Fatalf("mean remaining %.0f min at onset, %.0f after two hours: want 45 and more than two hours", m0, m120)
	}
	p.SlowdownShape = 1
	if a, b := p.lastsLonger(45, 0, 45), p.lastsLonger(45, 120, 45); math.Abs(a-b) > 1e-12 || math.Abs(a-math.Exp(-1)) > 1e-12 {
		t.Fatalf("memoryless: %.3f and %.3f, want e^-1 both", a, b)
	}
}

// The night the slowdown begins early and never ends: the default pages it
// earlier than the memoryless model would, and neither pages a night that
// makes it.
func TestLongSlowdownPagesEarlier(t *testing.T) {
	s := spec(t, "America/New_York", "0 2 * * *", "04:30")
	page := func(shape float64, plan nightPlan) time.Duration {
		p := DefaultParams()
		p.SlowdownShape = shape
		e := NewEngine([]model.JobSpec{s}, p, nil)
		tonight := feedHistory(e, s, time.Date(2026, 9, 10, 7, 0, 0, 0, time.UTC), 5)
		plan.start = tonight
		deadline := s.DeadlineFor(tonight)
		tr := drive(e, simulate(plan, "tonight"), tonight.Add(-time.Hour), deadline)
		if pages := firing(tr, RulePredictedBreach); len(pages) > 0 {
			return deadline.Sub(pages[0].At)
		}
		return -1
	}
	// 60k rows at 1000/min take an hour; from 10% on it goes at 340/min: it
	// finishes about 3 h after its start, 30 minutes past the deadline.
	slow := nightPlan{filesLate: 5 * time.Minute, rows: 60000, rate: 1000, slowFrom: 0.1, slowRate: 340}
	aged, memoryless := page(2, slow), page(1, slow)
	if aged < 30*time.Minute || aged < memoryless+5*time.Minute {
		t.Fatalf("paged %v before the deadline (memoryless: %v): want at least 30 min, and 5 min earlier", aged, memoryless)
	}
	fine := nightPlan{filesLate: 5 * time.Minute, rows: 60000, rate: 1000, slowFrom: 0.1, slowRate: 600}
	if lead := page(2, fine); lead >= 0 {
		t.Fatalf("paged %v before the deadline a night that finishes 45 min early", lead)
	}
}

// A load that began inside a shared slowdown was slow from its first
// minute, but its slowdown is as old as the incident: it is predicted as a
// slowdown of that age, not one just begun.
func TestLoadBornInASharedSlowdownTakesItsAge(t *testing.T) {
	s := spec(t, "America/New_York", "0 2 * * *", "04:30")
	e := NewEngine([]model.JobSpec{s}, DefaultParams(), nil)
	tonight := feedHistory(e, s, time.Date(2026, 9, 10, 7, 0, 0, 0, time.UTC), 5)
	obs := simulate(nightPlan{start: tonight, filesLate: 5 * time.Minute, rows: 60000, rate: 1000, slowFrom: 0.001, slowRate: 340}, "tonight")
	at := tonight.Add(80 * time.Minute)
	drive(e, obs, tonight.Add(-time.Hour), at)
	j := e.jobs[model.JobKey{Tenant: s.Tenant, Job: s.Job}]
	j.sharedSince = time.Time{}
	own := Predict(j, e.p, at)
	j.sharedSince = tonight.Add(-90 * time.Minute)
	shared := Predict(j, e.p, at)
	if !(shared.PBreach > own.PBreach+0.1) || shared.Finish.Before(own.Finish) {
		t.Fatalf("in a shared slowdown since 90 min before the start: p=%.2f finish %s; on its own: p=%.2f finish %s",
			shared.PBreach, shared.Finish, own.PBreach, own.Finish)
	}
}

// Two minutes past the deadline, not succeeded: the board says late at
// once, though the page waits for an observation after the deadline.
func TestPastTheDeadlineIsLateOnTheBoard(t *testing.T) {
	s := spec(t, "America/New_York", "0 2 * * *", "04:00")
	e := NewEngine([]model.JobSpec{s}, DefaultParams(), nil)
	tonight := feedHistory(e, s, time.Date(2026, 9, 10, 7, 0, 0, 0, time.UTC), 5)
	deadline := s.DeadlineFor(tonight)
	obs := simulate(nightPlan{start: tonight, filesLate: 5 * time.Minute, rows: 60000, rate: 1000, slowFrom: 0.2, slowRate: 300}, "tonight")
	drive(e, obs, tonight.Add(-time.Hour), deadline.Add(-time.Minute))
	if r := e.Views()[model.JobKey{Tenant: s.Tenant, Job: s.Job}].Risk; r == model.RiskBreached {
		t.Fatalf("a minute before the deadline the risk is %s", r)
	}
	e.Tick(deadline.Add(2 * time.Minute))
	if r := e.Views()[model.JobKey{Tenant: s.Tenant, Job: s.Job}].Risk; r != model.RiskBreached {
		t.Fatalf("two minutes past the deadline, not succeeded, the risk is %s", r)
	}
}
