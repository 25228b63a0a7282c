package rules

import (
	"strings"
	"testing"
	"time"

	"github.com/etlhub/etlhub/model"
)

func TestLogSignalsRaiseAndExplain(t *testing.T) {
	s := spec(t, "UTC", "0 2 * * *", "08:00")
	e := NewEngine([]model.JobSpec{s}, DefaultParams(), nil)
	night := time.Date(2026, 9, 10, 2, 0, 0, 0, time.UTC)
	// The run freezes at 02:35; error lines pile up.
	obs := simulate(nightPlan{start: night, rows: 30000, rate: 500, stallAt: 0.5, stallFor: 90 * time.Minute}, "r1")
	var tr []model.Transition
	now := night
	i := 0
	for ; now.Before(night.Add(70 * time.Minute)); now = now.Add(time.Minute) {
		j := i
		for j < len(obs) && !obs[j].At.After(now) {
			j++
		}
		e.Observe(obs[i:j], now)
		i = j
		if now.Minute()%5 == 0 {
			e.ObserveLogs([]model.LogSignal{
				{Search: "importer-errors", Kind: model.LogErrors, Tenant: "dade", Job: "roster-import", At: now, Window: 15 * time.Minute,
					Count: 27, Threshold: 10, Examples: []model.LogCount{{Text: "mongo: server selection timeout", N: 20}, {Text: "redis: i/o timeout", N: 7}}},
				{Search: "importer-activity", Kind: model.LogActivity, Tenant: "dade", Job: "roster-import", At: now, Window: 15 * time.Minute,
					LastSeen: time.Date(2026, 9, 10, 2, 30, 0, 0, time.UTC), SilenceAfter: 20 * time.Minute},
			})
		}
		x, _ := e.Tick(now)
		tr = append(tr, x...)
	}
	spike := firing(tr, RuleLogErrorSpike)
	if len(spike) != 1 || !strings.Contains(spike[0].Alert.Summary, `20× "mongo: server selection timeout"`) {
		t.Fatalf("log-error-spike = %+v", spike)
	}
	silent := firing(tr, RuleLogSilence)
	if len(silent) != 1 || !silent[0].At.Equal(time.Date(2026, 9, 10, 2, 51, 0, 0, time.UTC)) {
		t.Fatalf("log-silence = %+v, want one at 02:51 (last line 02:30 + 20m)", silent)
	}
	stalled := firing(tr, RuleStalled)
	if len(stalled) != 1 || !strings.Contains(stalled[0].Alert.Summary, "logs: 27 error lines in the last 15m0s") {
		t.Fatalf("stalled does not carry the log context: %+v", stalled)
	}
}

func TestLogSpikeAgainstTheUsual(t *testing.T) {
	s := spec(t, "UTC", "0 2 * * *", "08:00")
	e := NewEngine([]model.JobSpec{s}, DefaultParams(), nil)
	now := time.Date(2026, 9, 10, 1, 0, 0, 0, time.UTC)
	sig := func(n int) model.LogSignal {
		return model.LogSignal{Search: "errs", Kind: model.LogErrors, Tenant: "dade", Job: "roster-import", At: now, Window: 5 * time.Minute, Count: n}
	}
	for k := 0; k < 10; k++ {
		e.ObserveLogs([]model.LogSignal{sig(2)})
		if tr, _ := e.Tick(now); len(firing(tr, RuleLogErrorSpike)) != 0 {
			t.Fatal("fired on the usual count")
		}
		now = now.Add(5 * time.Minute)
	}
	e.ObserveLogs([]model.LogSignal{sig(40)})
	tr, _ := e.Tick(now)
	if f := firing(tr, RuleLogErrorSpike); len(f) != 1 || !strings.Contains(f[0].Alert.Summary, "usually at most 2") {
		t.Fatalf("spike over the usual: %+v", f)
	}
}
