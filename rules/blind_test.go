package rules

import (
	"testing"
	"time"

	"github.com/etlhub/etlhub/model"
)

func TestSeen(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 2, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	for _, tc := range []struct {
		name  string
		blind []Interval
		want  time.Duration
	}{
		{"none", nil, 60 * time.Minute},
		{"inside", []Interval{{at(10), at(40)}}, 30 * time.Minute},
		{"overlapping the ends", []Interval{{at(-10), at(5)}, {at(50), at(70)}}, 45 * time.Minute},
		{"overlapping each other", []Interval{{at(20), at(40)}, {at(10), at(30)}, {at(35), at(36)}}, 30 * time.Minute},
		{"outside", []Interval{{at(-30), at(-10)}, {at(70), at(80)}}, 60 * time.Minute},
		{"all of it", []Interval{{at(-1), at(61)}}, 0},
	} {
		if got := Seen(at(0), at(60), tc.blind); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestBlindIsNotAStall: a run whose heartbeats the hub could not store (its
// store was down for 30 minutes) is not stalled because of the hub; the
// same silence with the hub watching is.
func TestBlindIsNotAStall(t *testing.T) {
	sp := spec(t, "UTC", "0 2 * * *", "06:00")
	start := time.Date(2026, 12, 3, 2, 5, 0, 0, time.UTC)
	beat := start.Add(10 * time.Minute)
	now := beat.Add(35 * time.Minute) // stale after 20m
	for _, tc := range []struct {
		name    string
		blind   []Interval
		stalled bool
	}{
		{"watching", nil, true},
		{"blind for 30 of the 35 minutes", []Interval{{beat.Add(2 * time.Minute), beat.Add(32 * time.Minute)}}, false},
	} {
		e := NewEngine([]model.JobSpec{sp}, DefaultParams(), nil)
		e.Observe([]model.Observation{{At: beat, RunStatus: model.RunStatus{
			Source: "push", Tenant: sp.Tenant, Job: sp.Job, RunID: "r1", State: model.StateRunning,
			Stage: model.StageLoading, StartedAt: &start, UpdatedAt: &beat, RowsDone: 10, RowsTotal: 100,
		}}}, beat)
		e.SetBlind(tc.blind)
		e.Tick(now)
		got := false
		for _, a := range e.Active() {
			got = got || a.Rule == RuleStalled
		}
		if got != tc.stalled {
			t.Errorf("%s: stalled %v, want %v", tc.name, got, tc.stalled)
		}
	}
}
