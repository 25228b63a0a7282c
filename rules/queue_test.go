package rules

import (
	"strings"
	"testing"
	"time"

	"github.com/etlhub/etlhub/model"
)

// queueSeries is a queue's history: one probe a minute from depT0, values from f(i).
func queueSeries(n int, tenant, job string, f func(i int) map[string]float64) []model.Measurement {
	var out []model.Measurement
	for i := 0; i < n; i++ {
		out = append(out, model.Measurement{At: depT0.Add(time.Duration(i) * time.Minute), Source: "sis-queues",
			Subject: "sqs:sis-sync-inbox", Kind: model.KindSQS, Tenant: tenant, Job: job, Up: true, Values: f(i)})
	}
	return out
}

func queueAt(h []model.Measurement, i int) []Signal {
	return QueueSignals(h[:i+1], DefaultDependencyParams(), nil, h[i].At.Add(time.Second))
}

// The oldest message's age (CloudWatch): growing past 15 min triggers,
// falling but above 5 min holds, a drained queue clears.
func TestQueueBacklogByTheOldestMessagesAge(t *testing.T) {
	h := queueSeries(60, "miami-dade", "sis-sync", func(i int) map[string]float64 {
		switch {
		case i < 5: // flowing: young messages
			return map[string]float64{model.ValueQueueDepth: 40, model.ValueOldestAgeS: 20}
		case i < 30: // the consumers stop at minute 5: the oldest ages a minute a probe
			return map[string]float64{model.ValueQueueDepth: float64(40 + 10*(i-4)), model.ValueOldestAgeS: float64(60 * (i - 4))}
		case i < 40: // they are back, working down the backlog: the oldest gets younger
			return map[string]float64{model.ValueQueueDepth: float64(300 - 20*(i-30)), model.ValueOldestAgeS: float64(60 * (25 - 2*(i-30)))}
		default: // drained
			return map[string]float64{model.ValueQueueDepth: 0}
		}
	})
	for i, want := range map[int]Level{0: 0, 8: 0, 10: Hold, 18: Hold, 19: Trigger, 29: Trigger, 30: Hold, 36: Hold, 39: Hold, 45: 0} {
		s := only(t, queueAt(h, i), RuleQueueBacklog)
		if want == 0 {
			if s != nil {
				t.Errorf("minute %d: %+v", i, s)
			}
			continue
		}
		if s == nil || s.Level != want {
			t.Fatalf("minute %d: %+v, want level %d", i, s, want)
		}
		if s.Tenant != "miami-dade" || s.Job != "sis-sync" || s.Scope != "" || s.Severity != model.SeverityWarning ||
			s.Fingerprint != "queue-backlog|sqs:sis-sync-inbox" {
			t.Errorf("minute %d: not keyed to the job the queue serves: %+v", i, s)
		}
	}
	s := only(t, queueAt(h, 20), RuleQueueBacklog)
	if !strings.Contains(s.Summary, "SQS queue sis-sync-inbox is not draining: 200 messages waiting, the oldest message 16 min old and getting older") {
		t.Errorf("summary %q", s.Summary)
	}
	if s := only(t, queueAt(h, 32), RuleQueueBacklog); !strings.Contains(s.Summary, "the oldest message 21 min old (since") {
		t.Errorf("summary while it drains again %q", s.Summary)
	}
}

// Without the age (no CloudWatch), the time the depth has not fallen
// stands for it: a queue that fills and drains is fine, one that only
// fills is not.
func TestQueueBacklogWithoutTheAge(t *testing.T) {
	h := queueSeries(40, "", "", func(i int) map[string]float64 {
		if i < 10 { // filled and drained in turn
			return map[string]float64{model.ValueQueueDepth: float64(5 + 3*(i%2))}
		}
		return map[string]float64{model.ValueQueueDepth: float64(5 + i)} // only filled from minute 10
	})
	if s := only(t, queueAt(h, 9), RuleQueueBacklog); s != nil {
		t.Fatalf("a draining queue: %+v", s)
	}
	flat := queueSeries(30, "", "", func(int) map[string]float64 { return map[string]float64{model.ValueQueueDepth: 3} })
	if s := only(t, queueAt(flat, 29), RuleQueueBacklog); s != nil {
		t.Fatalf("a depth that stays the same (filled and drained between probes, or stalled and unfed: without the age, not judged): %+v", s)
	}
	if s := only(t, queueAt(h, 15), RuleQueueBacklog); s == nil || s.Level != Hold {
		t.Fatalf("6 min undrained: %+v", s)
	}
	s := only(t, queueAt(h, 25), RuleQueueBacklog)
	if s == nil || s.Level != Trigger || s.Scope != model.ScopeShared || s.Tenant != "" ||
		!strings.Contains(s.Summary, "the backlog has not shrunk for 17 min (since 02:08 UTC)") {
		t.Fatalf("17 min undrained (from the last fall, at minute 8), a shared queue: %+v", s)
	}
}

// Dead letters: a rise triggers, dead letters still there hold (for the
// window), a drained DLQ clears.
func TestDeadLetters(t *testing.T) {
	h := queueSeries(150, "miami-dade", "sis-sync", func(i int) map[string]float64 {
		d := 0.0
		switch {
		case i >= 10 && i < 12:
			d = 2
		case i >= 12 && i < 100:
			d = 5
		case i >= 100 && i < 120:
			d = 5
		case i >= 120:
			d = 0 // redriven
		}
		if i >= 100 && i < 101 {
			d = 7
		}
		return map[string]float64{model.ValueQueueDepth: 0, model.ValueDLQDepth: d}
	})
	for i, want := range map[int]Level{5: 0, 10: Trigger, 11: Hold, 12: Trigger, 13: Hold, 60: Hold, 72: 0, 100: Trigger, 101: 0, 125: 0} {
		s := only(t, queueAt(h, i), RuleDeadLetters)
		if want == 0 {
			if s != nil {
				t.Errorf("minute %d: %+v", i, s)
			}
			continue
		}
		if s == nil || s.Level != want {
			t.Fatalf("minute %d: %+v, want level %d", i, s, want)
		}
	}
	s := only(t, queueAt(h, 12), RuleDeadLetters)
	if !strings.Contains(s.Summary, "5 messages went to its dead-letter queue since 02:10 UTC (5 there now)") || s.Job != "sis-sync" {
		t.Errorf("%+v", s)
	}
	// First probe: nothing to compare with.
	if s := only(t, queueAt(h, 0), RuleDeadLetters); s != nil {
		t.Errorf("%+v", s)
	}
}

// Severities per source (off drops the rule), stale and down queues are not judged.
func TestQueueRulesSeverityStaleDown(t *testing.T) {
	h := queueSeries(30, "", "", func(i int) map[string]float64 {
		return map[string]float64{model.ValueQueueDepth: 100, model.ValueOldestAgeS: float64(120 * i), model.ValueDLQDepth: float64(i)}
	})
	sev := func(source, rule string) model.Severity {
		if rule == RuleDeadLetters {
			return model.SeverityOff
		}
		return model.SeverityCritical
	}
	got := QueueSignals(h, DefaultDependencyParams(), sev, h[29].At)
	if len(got) != 1 || got[0].Rule != RuleQueueBacklog || got[0].Severity != model.SeverityCritical {
		t.Fatalf("%+v", got)
	}
	if got := QueueSignals(h, DefaultDependencyParams(), nil, h[29].At.Add(time.Hour)); got != nil {
		t.Errorf("stale: %+v", got)
	}
	down := append(h[:29:29], model.Measurement{At: h[29].At, Source: "sis-queues", Subject: "sqs:sis-sync-inbox", Kind: model.KindSQS, Error: "x"})
	if got := QueueSignals(down, DefaultDependencyParams(), nil, h[29].At); got != nil {
		t.Errorf("down (dependency-down speaks): %+v", got)
	}
}

// Through the engine and the lifecycle: queue-backlog fires two minutes
// after its trigger, on the job the queue serves, and resolves ten
// minutes after the backlog is back under its clear level.
func TestEngineQueueBacklogFiresAndResolves(t *testing.T) {
	e := NewEngine(nil, DefaultParams(), nil)
	h := queueSeries(70, "miami-dade", "sis-sync", func(i int) map[string]float64 {
		if i >= 5 && i < 30 {
			return map[string]float64{model.ValueQueueDepth: 100, model.ValueOldestAgeS: float64(60 * (i - 4))}
		}
		return map[string]float64{model.ValueQueueDepth: 0}
	})
	var fired, resolved []model.Transition
	for i := range h {
		e.Measure(h[i : i+1])
		trans, _ := e.Tick(h[i].At.Add(time.Second))
		for _, tr := range trans {
			switch tr.Status {
			case model.TransitionFiring:
				fired = append(fired, tr)
			case model.TransitionResolved:
				resolved = append(resolved, tr)
			}
		}
	}
	if len(fired) != 1 || fired[0].Alert.Rule != RuleQueueBacklog || fired[0].Alert.Tenant != "miami-dade" ||
		fired[0].Alert.Job != "sis-sync" || !fired[0].At.Equal(h[21].At.Add(time.Second)) {
		t.Fatalf("fired %+v; want queue-backlog on miami-dade/sis-sync at minute 21 (15 min old at 19, held 2 min)", fired)
	}
	if len(resolved) != 1 || !resolved[0].At.Equal(h[39].At.Add(time.Second)) {
		t.Fatalf("resolved %+v; want minute 39 (last met at 29, kept firing 10 min)", resolved)
	}
}

// A Lambda function's throttles are a degraded reason, on the job it serves.
func TestLambdaThrottlesDegrade(t *testing.T) {
	h := series("lambda:sis-sync-load", model.KindLambda, 20, func(i int) map[string]float64 {
		v := map[string]float64{model.ValueInvocations: 100, model.ValueErrors: 0, model.ValueThrottles: 0, model.ValueCalls: 100, model.ValueErrorRate: 0}
		if i == 19 {
			v[model.ValueThrottles] = 12
		}
		return v
	})
	for i := range h {
		h[i].Tenant, h[i].Job = "miami-dade", "sis-sync"
	}
	s := only(t, DependencySignals(h, DefaultDependencyParams(), nil, h[19].At), RuleDependencyDegraded)
	if s == nil || s.Level != Trigger || s.Tenant != "miami-dade" || len(s.Affected) != 1 ||
		!strings.Contains(s.Summary, "throttled 12 invocations") || !strings.Contains(s.Summary, "reserved concurrency") {
		t.Fatalf("%+v", s)
	}
}
