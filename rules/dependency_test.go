package rules

import (
	"strings"
	"testing"
	"time"

	"github.com/etlhub/etlhub/model"
)

var depT0 = time.Date(2026, 9, 1, 2, 0, 0, 0, time.UTC)

// series builds a subject's history: one probe every 30 s from depT0, each
// value from f(i) (nil values: the probe failed).
func series(subject string, kind model.DependencyKind, n int, f func(i int) map[string]float64) []model.Measurement {
	var out []model.Measurement
	for i := 0; i < n; i++ {
		m := model.Measurement{At: depT0.Add(time.Duration(i) * 30 * time.Second), Source: "probe-" + string(kind),
			Subject: subject, Kind: kind, Up: true, Values: f(i)}
		if m.Values == nil {
			m.Up, m.Error = false, "dial tcp 127.0.0.1:6379: connect: connection refused"
		}
		out = append(out, m)
	}
	return out
}

func only(t *testing.T, sig []Signal, rule string) *Signal {
	t.Helper()
	var got *Signal
	for i := range sig {
		if sig[i].Rule == rule {
			if got != nil {
				t.Fatalf("two %s signals: %+v", rule, sig)
			}
			got = &sig[i]
		}
	}
	return got
}

func TestDependencyDownTriggersHoldsThroughRecoveryAndClears(t *testing.T) {
	p := DefaultDependencyParams()
	// 20 good probes, 4 failed, then good again.
	h := series("redis:main", model.KindRedis, 30, func(i int) map[string]float64 {
		if i >= 20 && i < 24 {
			return nil
		}
		return map[string]float64{model.ValueLatencyMs: 1}
	})
	at := func(i int) (time.Time, []model.Measurement) { return h[i].At.Add(time.Second), h[:i+1] }
	now, hist := at(21)
	s := only(t, DependencySignals(hist, p, nil, now), RuleDependencyDown)
	if s == nil || s.Level != Trigger || s.Severity != model.SeverityCritical || s.Scope != model.ScopeShared ||
		s.Tenant != "" || s.Fingerprint != "dependency-down|redis:main" {
		t.Fatalf("down: %+v", s)
	}
	if !strings.Contains(s.Summary, "Redis redis:main is down since 02:10 UTC") || !strings.Contains(s.Summary, "connection refused") {
		t.Fatalf("summary %q", s.Summary)
	}
	// The first good probes after the outage hold it: recovery needs Recent in a row.
	for _, i := range []int{24, 25} {
		now, hist = at(i)
		if s := only(t, DependencySignals(hist, p, nil, now), RuleDependencyDown); s == nil || s.Level != Hold {
			t.Fatalf("probe %d after recovery: %+v, want hold", i, s)
		}
	}
	now, hist = at(26)
	if s := only(t, DependencySignals(hist, p, nil, now), RuleDependencyDown); s != nil {
		t.Fatalf("three good probes in a row: %+v, want cleared", s)
	}
	// A stale history (the probe stopped) is not judged.
	now, hist = at(21)
	if sig := DependencySignals(hist, p, nil, now.Add(p.Stale+time.Minute)); len(sig) != 0 {
		t.Fatalf("stale: %+v", sig)
	}
}

func TestDependencyDegradedAgainstItsOwnBaselineWithHysteresis(t *testing.T) {
	p := DefaultDependencyParams()
	// A MongoDB answering in 18–22 ms, then 240 ms for three probes, then
	// 50 ms (below the trigger, above the clear level), then 21 ms.
	lat := func(i int) float64 {
		switch {
		case i < 40:
			return 18 + float64(i%5)
		case i < 43:
			return 240
		case i < 46:
			return 50
		}
		return 21
	}
	h := series("mongodb:roster", model.KindMongoDB, 50, func(i int) map[string]float64 {
		return map[string]float64{model.ValueLatencyMs: lat(i)}
	})
	judge := func(i int) *Signal {
		return only(t, DependencySignals(h[:i+1], p, nil, h[i].At), RuleDependencyDegraded)
	}
	if s := judge(39); s != nil {
		t.Fatalf("usual latency: %+v", s)
	}
	if s := judge(40); s != nil {
		t.Fatalf("one slow probe of three is not yet degraded: %+v", s)
	}
	s := judge(42)
	if s == nil || s.Level != Trigger || s.Severity != model.SeverityWarning || s.Scope != model.ScopeShared {
		t.Fatalf("three slow probes: %+v", s)
	}
	want := "MongoDB mongodb:roster latency 12× its usual (240 ms vs 20 ms) since 02:20 UTC"
	if !strings.HasPrefix(s.Summary, want) || !strings.Contains(s.Summary, "currentOp") {
		t.Fatalf("summary %q, want it to start %q and say what to check", s.Summary, want)
	}
	// 50 ms is 2.5× the usual: held, not triggered, not cleared.
	if s := judge(45); s == nil || s.Level != Hold {
		t.Fatalf("between the levels: %+v, want hold", s)
	}
	if s := judge(49); s != nil {
		t.Fatalf("back to usual: %+v, want cleared", s)
	}
	// Without a baseline (too few probes), latency alone judges nothing.
	short := series("mongodb:roster", model.KindMongoDB, 8, func(i int) map[string]float64 {
		return map[string]float64{model.ValueLatencyMs: float64(1 + 100*(i/5))}
	})
	if s := only(t, DependencySignals(short, p, nil, short[7].At), RuleDependencyDegraded); s != nil {
		t.Fatalf("no baseline yet: %+v", s)
	}
}

func TestDependencySaturationAndRefusals(t *testing.T) {
	p := DefaultDependencyParams()
	mem := []float64{0.5, 0.5, 0.5, 0.93, 0.95, 0.96, 0.85, 0.85, 0.85, 0.6, 0.6, 0.6}
	h := series("redis:main", model.KindRedis, len(mem), func(i int) map[string]float64 {
		return map[string]float64{model.ValueMemoryUsedRatio: mem[i], model.ValueLatencyMs: 1}
	})
	levels := make([]Level, len(mem))
	for i := range mem {
		if s := only(t, DependencySignals(h[:i+1], p, nil, h[i].At), RuleDependencyDegraded); s != nil {
			levels[i] = s.Level
			if i == 5 && !strings.Contains(s.Summary, "memory at 95% of its limit since 02:01 UTC") {
				t.Fatalf("summary %q", s.Summary)
			}
		}
	}
	want := []Level{0, 0, 0, 0, Trigger, Trigger, Trigger, Hold, Hold, Hold, 0, 0}
	for i := range want {
		if levels[i] != want[i] {
			t.Fatalf("memory levels %v, want %v", levels, want)
		}
	}
	// sshd refusing logins (MaxStartups): an SFTP endpoint of one tenant.
	r := series("sftp:inbox.example:22", model.KindSFTP, 20, func(i int) map[string]float64 {
		v := map[string]float64{model.ValueLatencyMs: 30}
		if i == 15 {
			v[model.ValueRejectedConnections] = 3
		}
		return v
	})
	for i := range r {
		r[i].Tenant = "miami-dade"
	}
	s := only(t, DependencySignals(r[:16], p, nil, r[15].At), RuleDependencyDegraded)
	if s == nil || s.Level != Trigger || s.Scope != "" || s.Tenant != "miami-dade" || !strings.Contains(s.Summary, "MaxStartups") {
		t.Fatalf("refusals: %+v", s)
	}
	if s := only(t, DependencySignals(r[:17], p, nil, r[16].At), RuleDependencyDegraded); s == nil || s.Level != Hold {
		t.Fatalf("refusal one probe ago: %+v, want hold", s)
	}
	if s := only(t, DependencySignals(r[:19], p, nil, r[18].At), RuleDependencyDegraded); s != nil {
		t.Fatalf("no refusals in the recent probes: %+v", s)
	}
	// A severity override: off drops the signal.
	off := func(string, string) model.Severity { return model.SeverityOff }
	if sig := DependencySignals(r[:16], p, off, r[15].At); len(sig) != 0 {
		t.Fatalf("severity off: %+v", sig)
	}
}

func TestDependencyErrorRateFromTheImporter(t *testing.T) {
	p := DefaultDependencyParams()
	h := series("mongodb:roster", model.KindMongoDB, 20, func(i int) map[string]float64 {
		v := map[string]float64{model.ValueCalls: 100, model.ValueErrorRate: 0.01, model.ValueP95Ms: 20, model.ValueBreakerOpen: 0}
		if i >= 17 {
			v[model.ValueErrorRate] = 0.4
		}
		return v
	})
	s := only(t, DependencySignals(h, p, nil, h[19].At), RuleDependencyDegraded)
	if s == nil || s.Level != Trigger || !strings.Contains(s.Summary, "40% of calls failing (usually 1%)") {
		t.Fatalf("error rate: %+v", s)
	}
	// Few calls: a rate of 1 in 2 is no evidence.
	for i := range h {
		h[i].Values[model.ValueCalls] = 2
	}
	if s := only(t, DependencySignals(h, p, nil, h[19].At), RuleDependencyDegraded); s != nil {
		t.Fatalf("two calls: %+v", s)
	}
}

// Through the engine and the lifecycle: for-durations, keep-firing-for,
// and source-down of the probe covered by dependency-down.
func TestEngineDependencyAlertsFireAndResolve(t *testing.T) {
	e := NewEngine(nil, DefaultParams(), nil)
	e.SetDependencies(DefaultDependencyParams(), map[string]map[string]model.Severity{"probe-redis": {RuleDependencyDown: model.SeverityWarning}})
	h := series("redis:main", model.KindRedis, 60, func(i int) map[string]float64 {
		if i >= 20 && i < 30 {
			return nil
		}
		return map[string]float64{model.ValueLatencyMs: 1}
	})
	failing := h[20].At
	e.SetSources([]model.SourceHealth{{Name: "probe-redis", Kind: "redis", FailingSince: &failing}},
		map[string]time.Duration{"probe-redis": time.Minute})
	var fired, resolved []model.Transition
	for i := range h {
		if i == 30 {
			e.SetSources([]model.SourceHealth{{Name: "probe-redis", Kind: "redis", Healthy: true}}, nil)
		}
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
	if len(fired) != 1 || fired[0].Alert.Rule != RuleDependencyDown || fired[0].Alert.Severity != model.SeverityWarning ||
		fired[0].Alert.Scope != model.ScopeShared || !fired[0].At.Equal(h[22].At.Add(time.Second)) {
		t.Fatalf("fired %+v; want one dependency-down (warning by the override) a minute after the first failure, source-down covered", fired)
	}
	for _, a := range e.Active() {
		if a.Rule == RuleSourceDown {
			t.Fatalf("source-down active beside dependency-down: %+v", a)
		}
	}
	// Resolved: the failure at 02:14:30 holds it until 02:15:30; three good
	// probes (02:15, 02:15:30, 02:16) clear the signal,
	// then keep_firing_for (2 min) passes.
	if len(resolved) != 1 || resolved[0].Alert.Rule != RuleDependencyDown || !resolved[0].At.Equal(h[35].At.Add(time.Second)) {
		t.Fatalf("resolved %+v", resolved)
	}
}

func TestEngineMeasureKeepsABoundedOrderedHistory(t *testing.T) {
	e := NewEngine(nil, DefaultParams(), nil)
	p := DefaultDependencyParams()
	p.MaxSamples = 10
	e.SetDependencies(p, nil)
	h := series("store", model.KindStore, 30, func(int) map[string]float64 { return map[string]float64{model.ValueLatencyMs: 1} })
	e.Measure(h[20:])
	e.Measure(h[:20]) // late, older: in order, then bounded
	got := e.deps["store"]
	if len(got) != 10 || !got[0].At.Equal(h[20].At) || !got[9].At.Equal(h[29].At) {
		t.Fatalf("history %d from %v to %v", len(got), got[0].At, got[len(got)-1].At)
	}
}
