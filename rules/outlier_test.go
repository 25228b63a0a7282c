package rules

import (
	"strings"
	"testing"
	"time"

	"github.com/etlhub/etlhub/model"
)

// TestAnOutlierTimeDoesNotSilenceTheJob: an observation whose times lie far
// in the future (stored before they were checked, or by a path that does not
// check them) must not move the job's night: tonight's real failure still
// fires (issue 13, item 4).
func TestAnOutlierTimeDoesNotSilenceTheJob(t *testing.T) {
	night := time.Date(2026, 9, 10, 2, 0, 0, 0, time.UTC)
	far := time.Date(2199, 9, 10, 2, 0, 0, 0, time.UTC)
	typo := time.Date(2062, 9, 10, 2, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		bad  model.Observation
	}{
		{"started_at in 2199", model.Observation{At: night.Add(time.Minute), RunStatus: model.RunStatus{StartedAt: &far}}},
		{"a one-digit typo, 2062", model.Observation{At: night.Add(time.Minute), RunStatus: model.RunStatus{StartedAt: &typo, UpdatedAt: &typo}}},
		{"at in 2199", model.Observation{At: far}},
		{"files in 2199", model.Observation{At: night.Add(time.Minute), FilesArrivedAt: &far, RunStatus: model.RunStatus{State: model.StateWaiting}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := spec(t, "UTC", "0 2 * * *", "09:00")
			e := NewEngine([]model.JobSpec{s}, DefaultParams(), nil)
			bad := tc.bad
			bad.Source, bad.Tenant, bad.Job, bad.RunID = "importer", "dade", "roster-import", "bogus"
			if bad.State == "" {
				bad.State = model.StateRunning
			}
			e.Observe([]model.Observation{bad}, night.Add(time.Minute))
			obs := simulate(nightPlan{start: night, rows: 30000, rate: 500, failAt: 0.3}, "r1")
			tr := drive(e, obs, night, night.Add(time.Hour))
			f := firing(tr, RuleFailed)
			if len(f) != 1 || f[0].Alert.RunID != "r1" || !strings.Contains(f[0].Alert.Summary, "mongo: connection reset") {
				t.Fatalf("after an outlier observation, tonight's failure raised %+v", f)
			}
		})
	}
}
