// Package rules decides which alerts should be active: each rule is a pure
// function of a job's spec, its run history and now, and the lifecycle turns
// those decisions into pending → firing → resolved transitions with
// for-durations, hysteresis, inhibition and silences.
package rules

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/etlhub/etlhub/model"
)

// Rule names.
const (
	RuleMissedStart     = "missed-start"
	RuleFilesLate       = "files-late"
	RuleStalled         = "stalled"
	RuleRunningTooLong  = "running-too-long"
	RuleTooFast         = "too-fast"
	RulePredictedBreach = "predicted-breach"
	RuleDeadlineMissed  = "deadline-missed"
	RuleFailed          = "failed"
	RuleRetriesExhaust  = "retries-exhausted"
	RuleFreshness       = "freshness"
	RuleSourceDown      = "source-down"
)

// Names is every rule, the one list the config checks (timings, severity
// overrides) and the engine share.
var Names = []string{RuleMissedStart, RuleFilesLate, RuleStalled, RuleRunningTooLong, RuleTooFast,
	RulePredictedBreach, RuleDeadlineMissed, RuleFailed, RuleRetriesExhaust, RuleFreshness,
	RuleLogErrorSpike, RuleLogSilence, RuleSourceDown, RuleSharedSlowdown, RuleDependencyDown, RuleDependencyDegraded,
	RuleQueueBacklog, RuleDeadLetters}

// IsRule reports whether name is one of Names.
func IsRule(name string) bool { return slices.Contains(Names, name) }

// Level says how strongly a signal holds.
type Level int

const (
	// Hold keeps an alert that already fires from resolving (hysteresis), but
	// does not start one.
	Hold Level = 1
	// Trigger starts (or keeps) the alert.
	Trigger Level = 2
)

// Signal is one rule's decision that an alert should be active.
type Signal struct {
	Rule        string
	Severity    model.Severity
	Fingerprint string
	Tenant      string
	Job         string
	RunID       string
	Source      string // the status source the decision rests on
	Night       time.Time
	Level       Level
	Summary     string
	Details     map[string]any
	// Scope is model.ScopeShared for an alert about a shared cause; Affected
	// lists what it covers.
	Scope    string
	Affected []model.Affected
	// GroupedUnder is the fingerprint of the shared alert that explains
	// this one: it fires, but its notifications fold into that alert's.
	GroupedUnder string
}

func fingerprint(parts ...string) string { return strings.Join(parts, "|") }

func nightKey(t time.Time) string { return t.UTC().Format("2006-01-02T15:04Z") }

// Evaluate is every job rule for one job at now. The prediction is passed in
// so it is computed once per tick and shared with the API.
func Evaluate(j *JobState, pr Prediction, p Params, now time.Time) []Signal {
	var out []Signal
	spec := j.Spec
	if j.night.IsZero() || now.Before(j.night.Add(-nightWindowLead)) {
		return nil
	}
	night := nightKey(j.night)
	mk := func(rule string, def model.Severity, runID string, lvl Level, summary string, details map[string]any) {
		sev := spec.SeverityFor(rule, def)
		parts := []string{rule, spec.Tenant, spec.Job, night}
		if runID != "" {
			parts = append(parts, runID)
		}
		out = append(out, Signal{Rule: rule, Severity: sev, Fingerprint: fingerprint(parts...), Tenant: spec.Tenant,
			Job: spec.Job, RunID: runID, Source: j.lastSource, Night: j.night, Level: lvl,
			Summary: spec.Tenant + "/" + spec.Job + ": " + summary, Details: details})
	}
	cur := j.current()
	done := !j.succeeded.IsZero()
	// Nights that began before the rules were watching are not judged: what
	// happened early in them is unknown.
	watched := !j.since.After(j.night.Add(-nightWindowLead)) && (p.Horizon.IsZero() || !j.deadline.After(p.Horizon))
	l := j.learned()
	have := l.n >= p.MinHistory

	// deadline-missed, and predicted-breach before it.
	if !watched {
		// nothing night-based
	} else if !done && !now.Before(j.deadline) && (!j.lastAt().Before(j.deadline) || now.Sub(j.deadline) >= p.DeadlineEvidence) {
		mk(RuleDeadlineMissed, model.SeverityCritical, "", Trigger,
			fmt.Sprintf("not succeeded by the deadline %s (%s)", hhmm(j.deadline), stateOf(cur)),
			map[string]any{"deadline": j.deadline, "state": stateOf(cur)})
	} else if !done && now.Before(j.deadline) {
		lvl := Level(0)
		if pr.PBreach >= p.PageProbability {
			lvl = Trigger
		} else if pr.PBreach >= p.ResolveProbability {
			lvl = Hold
		}
		if lvl > 0 {
			mk(RulePredictedBreach, model.SeverityCritical, "", lvl,
				fmt.Sprintf("predicted to miss the %s deadline (p=%.2f): %s", hhmm(j.deadline), pr.PBreach, pr.Why),
				map[string]any{"predicted_finish": pr.Finish, "finish_lo": pr.Lo, "finish_hi": pr.Hi, "deadline": j.deadline,
					"p_breach": pr.PBreach, "basis": pr.Basis, "learned_from": pr.LearnedFrom, "why": pr.Why})
		}
	}

	// missed-start: nothing has started by the schedule plus a grace.
	if watched && cur == nil && Seen(j.night, now, p.Blind) >= p.MissedStartGrace && now.Before(j.deadline) {
		mk(RuleMissedStart, model.SeverityWarning, "", Trigger,
			fmt.Sprintf("no run started since %s (scheduled, +%v grace)", hhmm(j.night), p.MissedStartGrace),
			map[string]any{"scheduled_at": j.night})
	}

	// files-late: still waiting past the expected arrival.
	if watched && !done && (cur == nil || cur.state == model.StateWaiting) {
		expected, ok := spec.FilesExpectedFor(j.night)
		how := "files_expected_by"
		if !ok && have {
			expected = j.night.Add(minutes(l.arrivalP90) + 5*time.Minute)
			ok, how = true, fmt.Sprintf("learned: 90%% of %d nights had files by then", l.n)
		}
		if ok && now.After(expected) {
			latest := j.deadline
			if have {
				latest = j.deadline.Add(-minutes(l.pre + l.load + l.post))
			}
			mk(RuleFilesLate, model.SeverityWarning, "", Trigger,
				fmt.Sprintf("files expected by %s (%s) have not arrived; they must arrive by %s to make the %s deadline",
					hhmm(expected), how, hhmm(latest), hhmm(j.deadline)),
				map[string]any{"expected_by": expected, "latest_arrival": latest, "deadline": j.deadline})
		}
	}

	for _, r := range j.runs {
		// stalled: a waiting or running run whose heartbeat stopped.
		// Time the hub itself was blind to is not the run's silence.
		if silent := Seen(r.updated, now, p.Blind); (r.state == model.StateRunning || r.state == model.StateWaiting) && silent > spec.StaleAfter.D() {
			mk(RuleStalled, model.SeverityWarning, r.id, Trigger,
				fmt.Sprintf("run %s: no heartbeat for %.0f min (stale after %v) in stage %s at %d of %d rows",
					r.id, silent.Minutes(), spec.StaleAfter, stageName(r), r.rowsDone, r.rowsTotal),
				map[string]any{"updated_at": r.updated, "stage": r.stage, "rows_done": r.rowsDone, "rows_total": r.rowsTotal})
		}
		// running-too-long.
		if !r.state.Terminal() && !r.started.IsZero() {
			el := now.Sub(r.started)
			limit, why := spec.MaxDuration.D(), "max_duration"
			if limit == 0 && have {
				limit = minutes(1.5 * (l.pre + l.load + l.post) * (1 + 2*l.loadSigma))
				why = fmt.Sprintf("usually %.0f min", l.pre+l.load+l.post)
			}
			if limit > 0 && el > limit {
				mk(RuleRunningTooLong, model.SeverityWarning, r.id, Trigger,
					fmt.Sprintf("run %s running for %.0f min (%s; limit %.0f min)", r.id, el.Minutes(), why, limit.Minutes()),
					map[string]any{"elapsed_min": el.Minutes(), "limit_min": limit.Minutes()})
			}
		}
		// too-fast: succeeded far quicker or with far fewer rows than usual.
		if r.state == model.StateSucceeded && have && !r.loadStart.IsZero() {
			load := r.loadEnd.Sub(r.loadStart).Minutes()
			switch {
			case l.rows > 0 && float64(r.rowsTotal) < 0.5*l.rows:
				mk(RuleTooFast, model.SeverityWarning, r.id, Trigger,
					fmt.Sprintf("run %s succeeded with %d rows, under half the usual %.0f", r.id, r.rowsTotal, l.rows),
					map[string]any{"rows_total": r.rowsTotal, "usual_rows": l.rows})
			case l.load > 10 && load < 0.3*l.load && r.rowsDone < r.rowsTotal/2:
				mk(RuleTooFast, model.SeverityWarning, r.id, Trigger,
					fmt.Sprintf("run %s loaded in %.0f min, the usual is %.0f", r.id, load, l.load),
					map[string]any{"load_min": load, "usual_load_min": l.load})
			}
		}
	}

	// failed: the latest attempt failed (warning); no retry within the grace
	// means retries are exhausted (critical unless a deadline page covers it).
	if cur != nil && cur.state == model.StateFailed && !done {
		mk(RuleFailed, model.SeverityWarning, cur.id, Trigger, fmt.Sprintf("run %s failed: %s", cur.id, cur.err),
			map[string]any{"error": cur.err, "rows_done": cur.rowsDone})
		if now.Sub(cur.finished) > p.RetryGrace {
			mk(RuleRetriesExhaust, model.SeverityCritical, cur.id, Trigger,
				fmt.Sprintf("run %s failed %.0f min ago (%s) and no retry started", cur.id, now.Sub(cur.finished).Minutes(), cur.err),
				map[string]any{"error": cur.err})
		}
	}

	evaluateLogs(j, now, func(rule string, def model.Severity, key, summary string, details map[string]any) {
		sev := spec.SeverityFor(rule, def)
		out = append(out, Signal{Rule: rule, Severity: sev, Fingerprint: fingerprint(rule, spec.Tenant, spec.Job, key),
			Tenant: spec.Tenant, Job: spec.Job, Source: model.LogSearchSource(key), Night: j.night, Level: Trigger,
			Summary: spec.Tenant + "/" + spec.Job + ": " + summary, Details: details})
	})
	// Fresh error lines are the context of the job's other alerts.
	if ctx := j.logContext(now); ctx != "" {
		for i := range out {
			if out[i].Rule != RuleLogErrorSpike && out[i].Rule != RuleLogSilence {
				out[i].Summary += " | logs: " + ctx
				if out[i].Details == nil {
					out[i].Details = map[string]any{}
				}
				out[i].Details["logs"] = ctx
			}
		}
	}

	// freshness: no success within success_max_age.
	if spec.SuccessMaxAge > 0 && !j.lastSuccess.IsZero() && now.Sub(j.lastSuccess) > spec.SuccessMaxAge.D() {
		out = append(out, Signal{Rule: RuleFreshness, Severity: spec.SeverityFor(RuleFreshness, model.SeverityWarning),
			Fingerprint: fingerprint(RuleFreshness, spec.Tenant, spec.Job), Tenant: spec.Tenant, Job: spec.Job,
			Source: j.lastSource, Level: Trigger,
			Summary: fmt.Sprintf("%s/%s: last success %s, older than %v", spec.Tenant, spec.Job,
				j.lastSuccess.UTC().Format(time.RFC3339), spec.SuccessMaxAge)})
	}
	// A rule a job's severity turns off raises nothing for it, whichever rule.
	return slices.DeleteFunc(out, func(s Signal) bool { return s.Severity == model.SeverityOff })
}

func stateOf(r *runTrack) string {
	if r == nil {
		return "no run"
	}
	return fmt.Sprintf("%s in %s at %d of %d rows", r.state, stageName(r), r.rowsDone, r.rowsTotal)
}

// SourceSignals is source-down for every source failing longer than its
// threshold; downAfter maps source names to thresholds.
func SourceSignals(sources []model.SourceHealth, downAfter map[string]time.Duration, now time.Time) []Signal {
	var out []Signal
	for _, s := range sources {
		th, ok := downAfter[s.Name]
		if !ok || s.Healthy || s.FailingSince == nil || now.Sub(*s.FailingSince) < th {
			continue
		}
		out = append(out, Signal{Rule: RuleSourceDown, Severity: model.SeverityCritical, Fingerprint: fingerprint(RuleSourceDown, s.Name),
			Source: s.Name, Level: Trigger,
			Summary: fmt.Sprintf("source %s failing for %.0f min (%d attempts): %s", s.Name,
				now.Sub(*s.FailingSince).Minutes(), s.ConsecutiveFailures, s.LastError),
			Details: map[string]any{"last_error": s.LastError, "failing_since": *s.FailingSince}})
	}
	return out
}
