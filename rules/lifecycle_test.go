package rules

import (
	"testing"
	"time"

	"github.com/etlhub/etlhub/model"
)

var t0 = time.Date(2026, 9, 10, 2, 0, 0, 0, time.UTC)

func sig(fp string, lvl Level) Signal {
	return Signal{Rule: "r", Severity: model.SeverityCritical, Fingerprint: fp, Tenant: "dade", Job: "j", Level: lvl, Summary: fp}
}

func at(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }

func TestForDurationAndHysteresis(t *testing.T) {
	l := NewLifecycle(map[string]Timing{"r": {For: 3 * time.Minute, KeepFiringFor: 5 * time.Minute}})
	steps := []struct {
		m    int
		lvl  Level // 0: no signal
		want string
	}{
		{0, Trigger, ""},
		{1, 0, ""}, // the trigger went away while pending: dropped, never notified
		{2, Trigger, ""},
		{4, Trigger, ""},
		{5, Trigger, "firing"}, // held 3 minutes
		{6, Hold, ""},          // hysteresis: a hold keeps it firing
		{12, Hold, ""},
		{13, 0, ""},
		{16, 0, ""},
		{17, 0, "resolved"}, // 5 minutes after it was last seen (12)
	}
	for _, s := range steps {
		var sigs []Signal
		if s.lvl != 0 {
			sigs = []Signal{sig("a", s.lvl)}
		}
		tr, _ := l.Step(sigs, at(s.m), nil)
		got := ""
		if len(tr) == 1 {
			got = string(tr[0].Status)
		} else if len(tr) > 1 {
			t.Fatalf("minute %d: %d transitions", s.m, len(tr))
		}
		if got != s.want {
			t.Fatalf("minute %d: transition %q, want %q", s.m, got, s.want)
		}
	}
}

func TestRestoreDoesNotPageTwice(t *testing.T) {
	l := NewLifecycle(nil)
	tr, changed := l.Step([]Signal{sig("a", Trigger)}, at(0), nil)
	if len(tr) != 1 || len(changed) != 1 {
		t.Fatalf("first fire: %d transitions", len(tr))
	}
	// A restart: a new lifecycle restored from what was persisted.
	l2 := NewLifecycle(nil)
	l2.Restore(changed)
	if tr, _ := l2.Step([]Signal{sig("a", Trigger)}, at(1), nil); len(tr) != 0 {
		t.Fatalf("paged again after a restart: %+v", tr)
	}
	// And it still resolves: it was not forgotten.
	if tr, _ := l2.Step(nil, at(30), nil); len(tr) != 1 || tr[0].Status != "resolved" {
		t.Fatalf("after restart the alert did not resolve: %+v", tr)
	}
}

func TestSilenceMutesFiringButNeverItsResolve(t *testing.T) {
	sil := Silence{Matchers: []Matcher{{Name: "tenant", Value: "dade"}}, StartsAt: at(10), EndsAt: at(60)}
	if err := sil.Validate(); err != nil {
		t.Fatal(err)
	}
	silencer := Silencing([]Silence{sil})
	l := NewLifecycle(nil)
	// Fired before the silence: notified.
	tr, _ := l.Step([]Signal{sig("before", Trigger)}, at(5), silencer)
	if len(tr) != 1 || tr[0].Alert.Silenced {
		t.Fatalf("fired before the silence: %+v", tr)
	}
	// Fired during the silence: silenced.
	tr, _ = l.Step([]Signal{sig("before", Trigger), sig("during", Trigger)}, at(15), silencer)
	if len(tr) != 1 || !tr[0].Alert.Silenced || tr[0].Alert.Fingerprint != "during" {
		t.Fatalf("fired during the silence: %+v", tr)
	}
	// Both resolve during the silence: the one notified before keeps its resolve.
	tr, _ = l.Step(nil, at(40), silencer)
	if len(tr) != 2 {
		t.Fatalf("resolves: %+v", tr)
	}
	for _, x := range tr {
		if x.Alert.Fingerprint == "before" && x.Alert.Silenced {
			t.Fatal("the silence swallowed the resolve of an alert that fired before it")
		}
		if x.Alert.Fingerprint == "during" && !x.Alert.Silenced {
			t.Fatal("the resolve of a silenced firing is notified")
		}
	}
}

func TestSilenceValidation(t *testing.T) {
	for name, s := range map[string]Silence{
		"no matchers":   {StartsAt: at(0), EndsAt: at(1)},
		"unknown label": {Matchers: []Matcher{{Name: "colour", Value: "x"}}, StartsAt: at(0), EndsAt: at(1)},
		"bad regex":     {Matchers: []Matcher{{Name: "job", Value: "(", IsRegex: true}}, StartsAt: at(0), EndsAt: at(1)},
		"ends first":    {Matchers: []Matcher{{Name: "job", Value: "x"}}, StartsAt: at(1), EndsAt: at(0)},
	} {
		if err := s.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	re := Silence{Matchers: []Matcher{{Name: "job", Value: "roster-.*", IsRegex: true}}, StartsAt: at(0), EndsAt: at(10)}
	if !re.Matches(&model.Alert{Job: "roster-import"}, at(5)) || re.Matches(&model.Alert{Job: "gradebook"}, at(5)) || re.Matches(&model.Alert{Job: "roster-import"}, at(10)) {
		t.Fatal("regex matcher or time range wrong")
	}
}
