package rules

import (
	"fmt"
	"testing"
	"time"

	"github.com/etlhub/etlhub/model"
)

func TestJudgeKeepsTheNightsOutcome(t *testing.T) {
	night := time.Date(2026, 9, 1, 7, 0, 0, 0, time.UTC)
	dl := night.Add(3 * time.Hour)
	at := func(m int) time.Time { return night.Add(time.Duration(m) * time.Minute) }
	ok := func(id string, start, fin int) Attempt {
		return Attempt{RunID: id, State: model.StateSucceeded, Started: at(start), Finished: at(fin)}
	}
	failed := Attempt{RunID: "a", State: model.StateFailed, Started: at(0), Finished: at(30)}
	for _, c := range []struct {
		name     string
		attempts []Attempt
		now      time.Time
		kind     string
		summary  string
		late     int64
	}{
		{"succeeded late stays late the next morning", []Attempt{ok("a", 0, 224)}, at(600), OutcomeLate, "late by 44 min", 44 * 60},
		{"on time", []Attempt{ok("a", 0, 170)}, at(600), OutcomeOnTime, "on time, 10 min to spare", 0},
		{"retried and on time", []Attempt{failed, ok("b", 40, 150)}, at(600), OutcomeOnTime, "on time, 30 min to spare after 2 attempts", 0},
		{"still running past the deadline", []Attempt{{RunID: "a", State: model.StateRunning, Started: at(0)}}, at(245), OutcomeMissed, "missed: not done 1 h 5 min after the deadline (running)", 65 * 60},
		{"no run at all", nil, at(200), OutcomeMissed, "missed: not done 20 min after the deadline (no run)", 20 * 60},
		{"failed before the deadline", []Attempt{failed}, at(60), OutcomeFailed, "failed (attempt 1)", 0},
		{"retry running", []Attempt{failed, {RunID: "b", State: model.StateRunning, Started: at(40)}}, at(60), OutcomeRunning, "running (retry after 1 failed)", 0},
		{"not started", nil, at(-10), OutcomeScheduled, "not started", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := Judge(night, dl, c.attempts, c.now)
			if o.Kind != c.kind || o.Summary != c.summary || o.LateByS != c.late {
				t.Fatalf("got %s %q late %ds, want %s %q late %ds", o.Kind, o.Summary, o.LateByS, c.kind, c.summary, c.late)
			}
		})
	}
}

func TestNightsOfJudgesThirtyNights(t *testing.T) {
	s := spec(t, "America/New_York", "0 2 * * *", "06:00")
	first := s.NextStart(time.Date(2026, 8, 1, 12, 0, 0, 0, time.UTC))
	var runs []model.Run
	start := first
	for i := 0; i < 35; i++ {
		if i%7 != 3 { // every seventh night has no run
			st := start.Add(10 * time.Minute)
			fin := start.Add(3*time.Hour + time.Duration(i%5)*20*time.Minute) // 05:00 .. 06:20
			arr := start.Add(5 * time.Minute)
			runs = append(runs, model.Run{RunStatus: model.RunStatus{
				RunID: fmt.Sprintf("r%d", i), Tenant: "t", Job: "j", State: model.StateSucceeded,
				StartedAt: &st, FinishedAt: &fin,
			}, FilesArrivedAt: &arr, QualityErrors: int64(i)})
		}
		start = s.NextStart(start)
	}
	now := start.Add(-2 * time.Hour) // after the last night's deadline, before the next start's window
	nights := NightsOf(&s, runs, 30, now)
	if len(nights) != 30 {
		t.Fatalf("%d nights, want 30", len(nights))
	}
	if want := s.PrevStart(now); !nights[0].Night.Equal(want) {
		t.Fatalf("newest night %v, want %v", nights[0].Night, want)
	}
	for k, n := range nights {
		i := 34 - k
		want := OutcomeOnTime
		switch {
		case i%7 == 3:
			want = OutcomeMissed
		case i%5 >= 4:
			want = OutcomeLate
		}
		if n.Kind != want {
			t.Fatalf("night %d (%v): %s %q, want %s", i, n.Night, n.Kind, n.Summary, want)
		}
		if want != OutcomeMissed && (n.FilesArrivedAt == nil || n.QualityErrors != int64(i)) {
			t.Fatalf("night %d: files %v, quality %d", i, n.FilesArrivedAt, n.QualityErrors)
		}
	}
}

func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{20 * time.Second: "under a minute", 44 * time.Minute: "44 min",
		80 * time.Minute: "1 h 20 min", 2 * time.Hour: "2 h", 50 * time.Hour: "2 d 2 h"} {
		if got := HumanDuration(d); got != want {
			t.Errorf("%v: %q, want %q", d, got, want)
		}
	}
}

func TestEngineViewKeepsALateNightLate(t *testing.T) {
	s := spec(t, "UTC", "0 2 * * *", "06:00")
	e := NewEngine([]model.JobSpec{s}, DefaultParams(), nil)
	night := time.Date(2026, 9, 1, 2, 0, 0, 0, time.UTC)
	e.Tick(night.Add(-2 * time.Hour))
	st, fin := night, night.Add(4*time.Hour+44*time.Minute)
	e.Observe([]model.Observation{
		{At: night.Add(time.Minute), RunStatus: model.RunStatus{Source: "x", Tenant: "dade", Job: "roster-import", RunID: "r1", State: model.StateRunning, StartedAt: &st, UpdatedAt: &st}},
		{At: fin, RunStatus: model.RunStatus{Source: "x", Tenant: "dade", Job: "roster-import", RunID: "r1", State: model.StateSucceeded, StartedAt: &st, UpdatedAt: &fin, FinishedAt: &fin}},
	}, fin)
	e.Tick(fin.Add(2 * time.Hour))
	v := e.Views()[model.JobKey{Tenant: "dade", Job: "roster-import"}]
	if v.Risk != model.RiskBreached || v.Outcome.Kind != OutcomeLate || v.Outcome.Summary != "late by 44 min" {
		t.Fatalf("after a late success: risk %s, outcome %+v", v.Risk, v.Outcome)
	}
	e.Tick(night.Add(23*time.Hour + 30*time.Minute)) // the next night's window is open
	v = e.Views()[model.JobKey{Tenant: "dade", Job: "roster-import"}]
	if v.LastNight == nil || v.LastNight.Kind != OutcomeLate || v.Outcome.Kind != OutcomeScheduled {
		t.Fatalf("the next night: outcome %+v, last night %+v", v.Outcome, v.LastNight)
	}
}
