package notifier

import (
	"strings"
	"testing"
	"time"

	"github.com/etlhub/etlhub/model"
)

func TestBuildDigest(t *testing.T) {
	spec := model.JobSpec{Tenant: "dade", Job: "roster-import", Timezone: "America/New_York", Schedule: "0 2 * * *",
		Deadline: "05:00", StaleAfter: model.Duration(20 * time.Minute), FilesExpectedBy: "02:30"}
	if err := spec.Compile(); err != nil {
		t.Fatal(err)
	}
	tp := func(s string) *time.Time { v, _ := time.Parse(time.RFC3339, s); return &v }
	run := func(id, start, files, fin string, st model.State, qe int64, err string) model.Run {
		r := model.Run{RunStatus: model.RunStatus{RunID: id, Tenant: "dade", Job: "roster-import", State: st, StartedAt: tp(start), Error: err}, FilesArrivedAt: tp(files), QualityErrors: qe}
		if fin != "" {
			r.FinishedAt = tp(fin)
		}
		r.FirstSeenAt = *r.StartedAt
		return r
	}
	// Three nights (EDT: 02:00 = 06:00Z, deadline 05:00 = 09:00Z).
	runs := []model.Run{
		run("n1", "2026-09-01T06:00:00Z", "2026-09-01T06:10:00Z", "2026-09-01T08:00:00Z", model.StateSucceeded, 3, ""),
		run("n2a", "2026-09-02T06:00:00Z", "2026-09-02T07:00:00Z", "2026-09-02T07:30:00Z", model.StateFailed, 0, "mongo: connection reset"),
		run("n2b", "2026-09-02T07:40:00Z", "2026-09-02T07:40:00Z", "2026-09-02T09:45:00Z", model.StateSucceeded, 0, ""),
		run("n3", "2026-09-03T06:00:00Z", "2026-09-03T06:05:00Z", "", model.StateRunning, 0, ""),
	}
	prev := []model.Run{
		run("p1", "2026-08-25T06:00:00Z", "2026-08-25T06:00:00Z", "2026-08-25T08:00:00Z", model.StateSucceeded, 0, ""),
		run("p2", "2026-08-26T06:00:00Z", "2026-08-26T06:00:00Z", "2026-08-26T08:00:00Z", model.StateSucceeded, 0, ""),
	}
	firings := []model.Transition{{Status: "firing", Alert: model.Alert{Rule: "predicted-breach"}}, {Status: "firing", Alert: model.Alert{Rule: "stalled"}}, {Status: "firing", Alert: model.Alert{Rule: "stalled"}}}
	from, to := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 9, 4, 0, 0, 0, 0, time.UTC)
	d := BuildDigest("Florida districts", []model.JobSpec{spec}, runs, prev, firings, from, to)
	if d.Nights != 3 || d.OnTime != 1 || len(d.Late) != 1 || len(d.Missed) != 1 {
		t.Fatalf("nights %d, on time %d, late %v, missed %v", d.Nights, d.OnTime, d.Late, d.Missed)
	}
	if d.Late[0].Minutes != 45 {
		t.Fatalf("late by %v min, want 45", d.Late[0].Minutes)
	}
	if len(d.LateUploads) != 1 || d.LateUploads[0].Minutes != 30 {
		t.Fatalf("late uploads %v, want the 07:00Z delivery 30 min late", d.LateUploads)
	}
	if d.QualityErr != 3 || len(d.TopErrors) != 1 || d.TopErrors[0].Name != "mongo: connection reset" {
		t.Fatalf("quality %d, errors %v", d.QualityErr, d.TopErrors)
	}
	// A week earlier: two of three nights on time (the third had no run).
	if d.Alerts[0] != (Count{"stalled", 2}) || d.PrevOnTime != 2.0/3 {
		t.Fatalf("alerts %v, previous on-time %v", d.Alerts, d.PrevOnTime)
	}
	text := strings.Join(d.Text(), "\n")
	for _, want := range []string{"3 nights*, 1 on time: *33%* (-33 pts vs last week's 67%)", "dade/roster-import 45 min late",
		"never succeeded", "files 30 min late", "1× mongo: connection reset", "stalled 2"} {
		if !strings.Contains(text, want) {
			t.Errorf("digest lacks %q:\n%s", want, text)
		}
	}
}
