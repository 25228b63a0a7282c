package model

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDecodeRejectsBadObservationsByField(t *testing.T) {
	long := strings.Repeat("x", MaxNameLen+1)
	for _, tc := range []struct {
		name, body, field string
	}{
		{"bad time", `{"at":"yesterday","tenant":"a","job":"b","run_id":"c","state":"running"}`, `"at"`},
		{"missing at", `{"tenant":"a","job":"b","run_id":"c","state":"running"}`, `"at"`},
		{"unknown state", `{"at":"2026-09-01T05:00:00Z","tenant":"a","job":"b","run_id":"c","state":"Running"}`, `"state"`},
		{"negative rows", `{"at":"2026-09-01T05:00:00Z","tenant":"a","job":"b","run_id":"c","state":"running","rows_done":-1}`, `"rows_done"`},
		{"over-long tenant", `{"at":"2026-09-01T05:00:00Z","tenant":"` + long + `","job":"b","run_id":"c","state":"running"}`, `"tenant"`},
		{"rows as text", `{"at":"2026-09-01T05:00:00Z","tenant":"a","job":"b","run_id":"c","state":"running","rows_total":"many"}`, `"rows_total"`},
		{"unknown field", `{"at":"2026-09-01T05:00:00Z","tenant":"a","job":"b","run_id":"c","state":"running","rows_dn":1}`, `"rows_dn"`},
		{"no tenant", `{"at":"2026-09-01T05:00:00Z","job":"b","run_id":"c","state":"running"}`, `"tenant"`},
		{"finish before start", `{"at":"2026-09-01T05:00:00Z","tenant":"a","job":"b","run_id":"c","state":"failed","started_at":"2026-09-01T05:00:00Z","finished_at":"2026-09-01T04:00:00Z"}`, `"finished_at"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode([]byte(tc.body), DecodeOptions{Strict: true, DefaultSource: "push"})
			if err == nil || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("error %v, want one naming %s", err, tc.field)
			}
		})
	}
	o, err := Decode([]byte(`{"at":"2026-09-01T01:00:00-04:00","tenant":"a","job":"b","run_id":"c","state":"waiting"}`), DecodeOptions{Strict: true, DefaultSource: "push"})
	if err != nil || o.At.Location() != time.UTC || o.At.Hour() != 5 || o.Source != "push" {
		t.Fatalf("good observation: %+v, %v", o, err)
	}
}

func TestHashIgnoresObservationTimeOnly(t *testing.T) {
	a := Observation{At: time.Unix(1, 0), RunStatus: RunStatus{Tenant: "a", Job: "b", RunID: "c", State: StateRunning, RowsDone: 5}}
	b := a
	b.At = time.Unix(100, 0)
	if a.Hash() != b.Hash() {
		t.Fatal("same content observed twice hashes differently")
	}
	b.RowsDone = 6
	if a.Hash() == b.Hash() {
		t.Fatal("different progress hashes the same")
	}
}

func mustSpec(t *testing.T, s JobSpec) *JobSpec {
	t.Helper()
	if s.StaleAfter == 0 {
		s.StaleAfter = Duration(20 * time.Minute)
	}
	if err := s.Compile(); err != nil {
		t.Fatal(err)
	}
	return &s
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func TestDeadlineAcrossMidnight(t *testing.T) {
	s := mustSpec(t, JobSpec{Tenant: "a", Job: "b", Timezone: "America/Los_Angeles", Schedule: "30 22 * * *", Deadline: "02:00"})
	start := s.PrevStart(utc("2026-09-02T08:00:00Z")) // 01:00 PDT on the 2nd
	if want := utc("2026-09-02T05:30:00Z"); !start.Equal(want) {
		t.Fatalf("previous start %v, want %v (22:30 PDT on the 1st)", start, want)
	}
	if dl, want := s.DeadlineFor(start), utc("2026-09-02T09:00:00Z"); !dl.Equal(want) {
		t.Fatalf("deadline %v, want %v (02:00 PDT the next day)", dl, want)
	}
}

func TestScheduleOnTheAutumnChangeNight(t *testing.T) {
	// 2026-11-01: New York falls back from 02:00 EDT to 01:00 EST; 01:30 happens twice.
	s := mustSpec(t, JobSpec{Tenant: "a", Job: "b", Timezone: "America/New_York", Schedule: "30 1 * * *", Deadline: "03:00"})
	first := s.NextStart(utc("2026-11-01T00:00:00Z"))
	if want := utc("2026-11-01T05:30:00Z"); !first.Equal(want) { // 01:30 EDT
		t.Fatalf("start on the change night %v, want %v", first, want)
	}
	// The job runs once that night, not again at 01:30 EST.
	if next := s.NextStart(first); !next.Equal(utc("2026-11-02T06:30:00Z")) {
		t.Fatalf("next start %v, want 2026-11-02T06:30Z (once a night)", next)
	}
	// The deadline 03:00 EST is 4.5 hours later, not 3.5.
	if dl := s.DeadlineFor(first); !dl.Equal(utc("2026-11-01T08:00:00Z")) {
		t.Fatalf("deadline %v, want 08:00Z", dl)
	}
	if got := s.PrevStart(utc("2026-11-01T07:00:00Z")); !got.Equal(first) {
		t.Fatalf("PrevStart during the repeated hour = %v, want %v", got, first)
	}
}

func TestScheduleOnTheSpringChangeNight(t *testing.T) {
	// 2026-03-08: New York jumps from 02:00 EST to 03:00 EDT; 02:30 does not exist.
	s := mustSpec(t, JobSpec{Tenant: "a", Job: "b", Timezone: "America/New_York", Schedule: "30 2 * * *", Deadline: "06:00"})
	start := s.NextStart(utc("2026-03-08T05:00:00Z"))
	dl := s.DeadlineFor(start)
	if !start.Before(dl) || dl.Sub(start) > 4*time.Hour {
		t.Fatalf("on the spring change night start %v deadline %v", start, dl)
	}
	if want := utc("2026-03-08T10:00:00Z"); !dl.Equal(want) {
		t.Fatalf("deadline %v, want %v (06:00 EDT)", dl, want)
	}
}

func TestRunApplyKeepsNewest(t *testing.T) {
	var r Run
	t1, t2 := utc("2026-09-01T05:00:00Z"), utc("2026-09-01T05:05:00Z")
	r.Apply(&Observation{At: t2, RunStatus: RunStatus{RunID: "x", State: StateRunning, RowsDone: 50}})
	started := utc("2026-09-01T04:00:00Z")
	if !r.Apply(&Observation{At: t1, RunStatus: RunStatus{RunID: "x", State: StateWaiting, StartedAt: &started}}) {
		t.Fatal("an older observation with a missing start time changed nothing")
	}
	if r.State != StateRunning || r.RowsDone != 50 || r.StartedAt == nil || !r.FirstSeenAt.Equal(t1) {
		t.Fatalf("run = %+v", r)
	}
}

func TestSpecErrorsNameFields(t *testing.T) {
	for field, s := range map[string]JobSpec{
		"timezone":    {Tenant: "a", Job: "b", Timezone: "Nowhere/Land", Schedule: "0 1 * * *", Deadline: "02:00", StaleAfter: 1},
		"schedule":    {Tenant: "a", Job: "b", Schedule: "0 1 * *", Deadline: "02:00", StaleAfter: 1},
		"deadline":    {Tenant: "a", Job: "b", Schedule: "0 1 * * *", Deadline: "2am", StaleAfter: 1},
		"stale_after": {Tenant: "a", Job: "b", Schedule: "0 1 * * *", Deadline: "02:00"},
	} {
		err := s.Compile()
		if se, ok := err.(*SpecError); !ok || se.Field != field {
			t.Errorf("%s: error %v", field, err)
		}
	}
}

func TestDeadlineInTheSkippedHour(t *testing.T) {
	// 22:15 New York on 2026-03-07, deadline 02:50: on the 8th 02:50 does not
	// exist; it is read with the offset before the change (EST), 07:50Z.
	s := mustSpec(t, JobSpec{Tenant: "a", Job: "b", Timezone: "America/New_York", Schedule: "15 22 * * *", Deadline: "02:50"})
	start := s.NextStart(utc("2026-03-07T12:00:00Z"))
	if !start.Equal(utc("2026-03-08T03:15:00Z")) {
		t.Fatalf("start %v", start)
	}
	if dl := s.DeadlineFor(start); !dl.Equal(utc("2026-03-08T07:50:00Z")) {
		t.Fatalf("deadline %v, want 2026-03-08T07:50Z", dl)
	}
}

// TestEveryTimeIsBoundedByAt: a job's times may not lie far after the
// observation's own "at" (nor absurdly before it); the error names the field.
func TestEveryTimeIsBoundedByAt(t *testing.T) {
	base := `{"at":"2026-09-01T05:00:00Z","tenant":"a","job":"b","run_id":"c","state":"running"`
	for _, field := range []string{"started_at", "updated_at", "finished_at", "files_arrived_at"} {
		bad := []string{"2199-09-01T05:00:00Z", "2062-09-01T05:00:00Z", "2026-09-01T05:11:00Z", "2026-07-01T05:00:00Z"}
		if field == "files_arrived_at" {
			bad[3] = "2025-08-01T05:00:00Z" // files may keep old modification times, not that old
		}
		for _, v := range bad {
			body := base + `,"` + field + `":"` + v + `"}`
			if field == "finished_at" {
				body = strings.Replace(body, `"running"`, `"failed"`, 1)
			}
			_, err := Decode([]byte(body), DecodeOptions{Strict: true, DefaultSource: "push"})
			var fe *FieldError
			if err == nil || !errors.As(err, &fe) || fe.Field != field {
				t.Errorf("%s %s: error %v, want one naming %s", field, v, err, field)
			}
		}
		// A little skew between machines is fine.
		if _, err := Decode([]byte(base+`,"`+field+`":"2026-09-01T05:04:00Z"}`), DecodeOptions{Strict: true, DefaultSource: "push"}); err != nil {
			t.Errorf("%s 4 minutes after at: %v", field, err)
		}
	}
	o := Observation{At: time.Date(2026, 9, 1, 5, 20, 0, 0, time.UTC)}
	if err := o.CheckClock(time.Date(2026, 9, 1, 5, 0, 0, 0, time.UTC)); err == nil || !strings.Contains(err.Error(), `"at"`) {
		t.Errorf("at 20 minutes ahead of the clock: %v", err)
	}
}
