package api

import (
	"strings"
	"testing"
	"time"

	"github.com/etlhub/etlhub/model"
)

// TestTextPartsCarryTheInstantsTheyName: a reason's times come with the
// instant each names, whichever way the rules write them ("11:00Z",
// "03:10 UTC", a full RFC 3339 time), on the right day around midnight; the
// parts' texts joined are the text as it was.
func TestTextPartsCarryTheInstantsTheyName(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, c := range []struct {
		name, text string
		ref        time.Time
		known      []time.Time
		want       []string // the instants of the times, in order
	}{
		{"the predictor's clocks, across midnight", "loading 10 of 100 rows (10%), slow; finish 00:40Z (between 00:20Z and 01:10Z); deadline 00:30Z",
			at("2026-09-01T23:50:00Z"), []time.Time{at("2026-09-02T00:30:00Z"), at("2026-09-02T00:40:00Z"), at("2026-09-02T00:20:00Z"), at("2026-09-02T01:10:00Z")},
			[]string{"2026-09-02T00:40:00Z", "2026-09-02T00:20:00Z", "2026-09-02T01:10:00Z", "2026-09-02T00:30:00Z"}},
		{"a known time beats the nearest day", "succeeded at 23:58Z",
			at("2026-09-02T06:00:00Z"), []time.Time{at("2026-09-01T23:58:41Z")}, []string{"2026-09-01T23:58:00Z"}},
		{"worded another way: HH:MM UTC", "redis:main down since 03:10 UTC (3 probes)",
			at("2026-09-01T03:30:00Z"), nil, []string{"2026-09-01T03:10:00Z"}},
		{"unknown clock: the nearest such moment", "since 23:50Z",
			at("2026-09-02T00:10:00Z"), nil, []string{"2026-09-01T23:50:00Z"}},
		{"a full time", "posted alert ends 2026-09-03T04:05:06+02:00.",
			at("2026-09-01T00:00:00Z"), nil, []string{"2026-09-03T02:05:06Z"}},
		{"seconds", "last line 04:05:06Z", at("2026-09-01T04:10:00Z"), nil, []string{"2026-09-01T04:05:06Z"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			parts := textParts(c.text, c.ref, c.known...)
			var joined strings.Builder
			var got []string
			for _, p := range parts {
				joined.WriteString(p.Text)
				if p.At != nil {
					got = append(got, p.At.UTC().Format(time.RFC3339))
				}
			}
			if joined.String() != c.text {
				t.Fatalf("parts join to %q, want the text %q", joined.String(), c.text)
			}
			if strings.Join(got, " ") != strings.Join(c.want, " ") {
				t.Fatalf("times %v, want %v (parts %+v)", got, c.want, parts)
			}
		})
	}
	for _, text := range []string{"", "no measurable progress yet", "took 11:00 of 12:00 (no zone)", "version 2026-09-01"} {
		if p := textParts(text, time.Now()); p != nil {
			t.Errorf("%q: parts %+v, want none (no time named)", text, p)
		}
	}
}

// TestStatusGivesTheReasonsTimes: GET /api/v1/status carries each job's
// reason in parts, its times as instants (why_parts), and the reason's
// text as it was (why).
func TestStatusGivesTheReasonsTimes(t *testing.T) {
	deadline := time.Date(2026, 9, 2, 0, 30, 0, 0, time.UTC)
	dade := model.JobKey{Tenant: "dade", Job: "roster-import"}
	why := "predicted to miss the 00:30Z deadline (p=0.90): finish 00:40 UTC"
	finish := deadline.Add(10 * time.Minute)
	views := &fakeViews{v: map[model.JobKey]JobView{dade: {Risk: "predicted-breach", Why: why, Deadline: &deadline, PredictedFinish: &finish}}}
	h := newHardened(t, func(o *Options) {
		o.Views = views
		o.Now = func() time.Time { return deadline.Add(-40 * time.Minute) }
	})
	h.push(t, adminTok, `{"at":"`+deadline.Add(-45*time.Minute).Format(time.RFC3339)+`","tenant":"dade","job":"roster-import","run_id":"d/1","state":"running"}`)
	code, body, raw := h.call(t, viewerTok, "GET", "/api/v1/status?tenant=dade", "")
	if code != 200 {
		t.Fatalf("%d %s", code, raw)
	}
	job := body["jobs"].([]any)[0].(map[string]any)
	if job["why"] != why {
		t.Fatalf("why %q, want the rules' text %q", job["why"], why)
	}
	var times []string
	for _, p := range job["why_parts"].([]any) {
		if at, ok := p.(map[string]any)["at"].(string); ok {
			times = append(times, at)
		}
	}
	if strings.Join(times, " ") != "2026-09-02T00:30:00Z 2026-09-02T00:40:00Z" {
		t.Fatalf("why_parts' times %v, want the deadline and the finish (the next day's)", times)
	}
}

// TestAlertSummaryTimesFromItsDetails: an alert read back from the store
// (its details' times are RFC 3339 strings, in nested lists too) has its
// summary's clock resolved to the day its details say, not to the day
// nearest the moment it was last seen.
func TestAlertSummaryTimesFromItsDetails(t *testing.T) {
	seen := time.Date(2026, 9, 3, 2, 0, 0, 0, time.UTC)
	a := model.Alert{Summary: "redis:main degraded: p95_ms 900 (baseline 3) since 03:10 UTC", LastSeen: seen, PendingSince: seen.Add(-time.Hour),
		Details: map[string]any{"reasons": []any{map[string]any{"value": "p95_ms", "since": "2026-09-01T03:10:00Z"}}}}
	v := alertView(a)
	var at []string
	for _, p := range v.SummaryParts {
		if p.At != nil {
			at = append(at, p.At.Format(time.RFC3339))
		}
	}
	if strings.Join(at, " ") != "2026-09-01T03:10:00Z" {
		t.Fatalf("summary times %v, want the details' since (2026-09-01T03:10:00Z)", at)
	}
	if v.Summary != a.Summary {
		t.Fatalf("summary %q changed", v.Summary)
	}
}
