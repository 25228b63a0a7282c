package rules

import (
	"testing"
	"time"

	"github.com/etlhub/etlhub/model"
)

// A job's `severity: {RULE: off}` silences that rule whichever rule it is;
// freshness used to fire anyway, with severity "off".
func TestSeverityOffSilencesEveryRule(t *testing.T) {
	for _, tc := range []struct {
		name     string
		severity map[string]model.Severity
		want     model.Severity // the freshness alert's severity; "" for none
	}{
		{"default", nil, model.SeverityWarning},
		{"escalated", map[string]model.Severity{RuleFreshness: model.SeverityCritical}, model.SeverityCritical},
		{"off", map[string]model.Severity{RuleFreshness: model.SeverityOff}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := spec(t, "UTC", "0 2 * * *", "04:00")
			s.SuccessMaxAge = model.Duration(36 * time.Hour)
			s.Severity = tc.severity
			e := NewEngine([]model.JobSpec{s}, DefaultParams(), nil)
			night := time.Date(2026, 9, 10, 2, 0, 0, 0, time.UTC)
			// One good night, then two nights without a run: the last
			// success grows older than success_max_age.
			obs := simulate(nightPlan{start: night, filesLate: 5 * time.Minute, rows: 1000, rate: 100}, "r1")
			tr := drive(e, obs, night.Add(-time.Hour), night.Add(50*time.Hour))
			got := firing(tr, RuleFreshness)
			if tc.want == "" {
				if len(got) != 0 {
					t.Fatalf("freshness is off but fired: %+v", got[0].Alert)
				}
				for _, x := range tr {
					if x.Alert.Severity == model.SeverityOff {
						t.Fatalf("an alert with severity off: %+v", x.Alert)
					}
				}
				return
			}
			if len(got) != 1 || got[0].Alert.Severity != tc.want {
				t.Fatalf("freshness firing = %+v, want one with severity %s", got, tc.want)
			}
		})
	}
}

func TestEveryRuleIsNamed(t *testing.T) {
	for _, r := range []string{RuleLogErrorSpike, RuleLogSilence, RuleSourceDown, RuleFreshness, RuleStalled} {
		if !IsRule(r) {
			t.Errorf("%s missing from Names", r)
		}
	}
	if IsRule("stalld") {
		t.Error("stalld is a rule")
	}
}
