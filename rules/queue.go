package rules

import (
	"fmt"
	"math"
	"time"

	"github.com/etlhub/etlhub/model"
)

// Queue rules: they judge what the sqs probes measured of a queue. A queue
// serving one job (its measurements carry tenant and job) alerts on that
// job; a shared queue alerts with scope shared.
const (
	// RuleQueueBacklog: messages wait and the backlog stopped draining (the
	// oldest message keeps getting older, past queue_backlog_age): the
	// queue's consumers are stalled.
	RuleQueueBacklog = "queue-backlog"
	// RuleDeadLetters: the queue's dead-letter queue grew: messages failed
	// their consumers as often as the redrive policy allows.
	RuleDeadLetters = "dead-letters"
)

// QueueParams tune the queue rules (part of DependencyParams).
type QueueParams struct {
	// BacklogAge: the oldest message older than this, and older than at the
	// previous probe, triggers queue-backlog; BacklogClear (lower) holds it
	// while messages wait. Without the age (no CloudWatch), the time the
	// backlog has grown without falling stands for it.
	BacklogAge, BacklogClear time.Duration
	// DeadLetterWindow: dead letters that arrived within it and are still
	// in the DLQ hold dead-letters (the trigger is a rise at the latest probe).
	DeadLetterWindow time.Duration
}

// DefaultQueueParams: a backlog whose oldest message is 15 minutes old and
// getting older triggers, under 5 minutes clears; dead letters hold for an
// hour unless the DLQ is drained (redriven or purged).
func DefaultQueueParams() QueueParams {
	return QueueParams{BacklogAge: 15 * time.Minute, BacklogClear: 5 * time.Minute, DeadLetterWindow: time.Hour}
}

// QueueSignals judges one queue's history (in at order, oldest first) at
// now. Pure: the same history and now give the same signals.
func QueueSignals(hist []model.Measurement, p DependencyParams, severity func(source, rule string) model.Severity, now time.Time) []Signal {
	for len(hist) > 0 && hist[len(hist)-1].At.After(now) {
		hist = hist[:len(hist)-1]
	}
	if len(hist) == 0 {
		return nil
	}
	last := hist[len(hist)-1]
	if last.Kind != model.KindSQS || !last.Up || now.Sub(last.At) > p.Stale {
		return nil
	}
	q := p.Queue
	mk := func(rule string, lvl Level, summary string, details map[string]any) Signal {
		sev := DependencySeverities[rule]
		if severity != nil {
			sev = severity(last.Source, rule)
		}
		details["subject"], details["kind"] = last.Subject, string(last.Kind)
		s := Signal{Rule: rule, Severity: sev, Fingerprint: fingerprint(rule, last.Subject), Tenant: last.Tenant,
			Job: last.Job, Source: last.Source, Level: lvl, Summary: summary, Details: details}
		if last.Tenant == "" || last.Job == "" {
			s.Tenant, s.Job, s.Scope = "", "", model.ScopeShared
		}
		return s
	}
	name := last.Subject[len("sqs:"):]
	if len(last.Subject) <= len("sqs:") {
		name = last.Subject
	}
	var out []Signal
	if lvl, age, since, measured, growing := backlog(hist, q); lvl > 0 {
		depth := last.Values[model.ValueQueueDepth]
		how := fmt.Sprintf("the oldest message %s old", dur(age))
		if growing {
			how += " and getting older"
		}
		if !measured {
			how = fmt.Sprintf("the backlog has not shrunk for %s", dur(age))
		}
		sum := fmt.Sprintf("SQS queue %s is not draining: %.0f messages waiting, %s (since %s); check its consumers first",
			name, depth, how, hhmmUTC(since))
		out = append(out, mk(RuleQueueBacklog, lvl, sum, map[string]any{"depth": depth, "age_s": age.Seconds(),
			"age_measured": measured, "in_flight": last.Values[model.ValueQueueInFlight], "since": since}))
	}
	if lvl, grew, before, since := deadLetters(hist, q); lvl > 0 {
		dlq := last.Values[model.ValueDLQDepth]
		sum := fmt.Sprintf("SQS queue %s: %.0f messages went to its dead-letter queue since %s (%.0f there now): "+
			"they failed their consumers as often as the redrive policy allows; read one and fix the cause, then redrive them",
			name, grew, hhmmUTC(since), dlq)
		out = append(out, mk(RuleDeadLetters, lvl, sum, map[string]any{"dlq_depth": dlq, "before": before, "new": grew, "since": since}))
	}
	return dropOff(out)
}

// backlog is queue-backlog's level, the backlog's age, since when, and
// whether the age was measured (oldest_age_s) or stood in for by the time
// the depth has not fallen, and whether it is growing.
func backlog(hist []model.Measurement, q QueueParams) (lvl Level, age time.Duration, since time.Time, measured, growing bool) {
	last := hist[len(hist)-1]
	depth, ok := last.Values[model.ValueQueueDepth]
	if !ok || depth <= 0 {
		return 0, 0, time.Time{}, false, false
	}
	if age, ok := last.Values[model.ValueOldestAgeS]; ok {
		a := time.Duration(age * float64(time.Second))
		growing := false
		for i := len(hist) - 2; i >= 0; i-- {
			if prev, ok := hist[i].Values[model.ValueOldestAgeS]; ok && hist[i].Up {
				growing = age > prev
				break
			}
		}
		since := last.At.Add(-a)
		switch {
		case a >= q.BacklogAge && growing:
			return Trigger, a, since, true, true
		case a >= q.BacklogClear:
			return Hold, a, since, true, growing
		}
		return 0, 0, time.Time{}, false, false
	}
	// No age: how long the backlog has grown without ever falling. A depth
	// that stays the same is not judged: a queue filled and drained between
	// probes looks just like a stalled one that nobody fills.
	start, startDepth := last.At, depth
	for i := len(hist) - 1; i > 0; i-- {
		cur, prev := hist[i], hist[i-1]
		pd, ok := prev.Values[model.ValueQueueDepth]
		if !prev.Up || !ok || pd <= 0 || cur.Values[model.ValueQueueDepth] < pd {
			break
		}
		start, startDepth = prev.At, pd
	}
	if depth <= startDepth {
		return 0, 0, time.Time{}, false, false
	}
	a := last.At.Sub(start)
	switch {
	case a >= q.BacklogAge:
		return Trigger, a, start, false, true
	case a >= q.BacklogClear:
		return Hold, a, start, false, true
	}
	return 0, 0, time.Time{}, false, false
}

// deadLetters is dead-letters' level: triggered when the DLQ is deeper than
// at the previous probe, held while it is deeper than it was before the
// window; with how many arrived, the depth before and since when.
func deadLetters(hist []model.Measurement, q QueueParams) (Level, float64, float64, time.Time) {
	last := hist[len(hist)-1]
	now, ok := last.Values[model.ValueDLQDepth]
	if !ok {
		return 0, 0, 0, time.Time{}
	}
	// The lowest depth within the window, and when the rise from it began.
	low, lowAt, prev, hasPrev := now, last.At, 0.0, false
	cut := last.At.Add(-q.DeadLetterWindow)
	for i := len(hist) - 2; i >= 0 && !hist[i].At.Before(cut); i-- {
		v, ok := hist[i].Values[model.ValueDLQDepth]
		if !ok || !hist[i].Up {
			continue
		}
		if !hasPrev {
			prev, hasPrev = v, true
		}
		if v < low {
			low, lowAt = v, hist[i].At
		}
	}
	if !hasPrev {
		return 0, 0, 0, time.Time{}
	}
	// since: the first probe after the low point that saw the rise.
	since := last.At
	for i := len(hist) - 1; i >= 0 && hist[i].At.After(lowAt); i-- {
		if v, ok := hist[i].Values[model.ValueDLQDepth]; ok && v > low {
			since = hist[i].At
		}
	}
	switch {
	case now > prev:
		return Trigger, now - low, low, since
	case now > low:
		return Hold, now - low, low, since
	}
	return 0, 0, 0, time.Time{}
}

func dur(d time.Duration) string {
	if d >= time.Hour {
		return fmt.Sprintf("%.1f h", d.Hours())
	}
	return fmt.Sprintf("%.0f min", math.Max(1, math.Round(d.Minutes())))
}
