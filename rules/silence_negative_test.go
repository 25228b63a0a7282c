package rules

import (
	"testing"
	"time"

	"github.com/etlhub/etlhub/model"
)

func TestNegativeAndRegexSilences(t *testing.T) {
	no := false
	at := time.Date(2026, 9, 1, 5, 0, 0, 0, time.UTC)
	win := func(ms ...Matcher) Silence { return Silence{Matchers: ms, StartsAt: at, EndsAt: at.Add(time.Hour)} }
	for _, tc := range []struct {
		name string
		s    Silence
		a    model.Alert
		want bool
	}{
		{"!= passes another tenant", win(Matcher{Name: "rule", Value: "stalled"}, Matcher{Name: "tenant", Value: "dade", IsEqual: &no}),
			model.Alert{Rule: "stalled", Tenant: "broward"}, true},
		{"!= refuses its tenant", win(Matcher{Name: "rule", Value: "stalled"}, Matcher{Name: "tenant", Value: "dade", IsEqual: &no}),
			model.Alert{Rule: "stalled", Tenant: "dade"}, false},
		{"!~ refuses a match", win(Matcher{Name: "rule", Value: "stalled"}, Matcher{Name: "tenant", Value: "miami-.*", IsRegex: true, IsEqual: &no}),
			model.Alert{Rule: "stalled", Tenant: "miami-dade"}, false},
		{"!~ passes the rest", win(Matcher{Name: "rule", Value: "stalled"}, Matcher{Name: "tenant", Value: "miami-.*", IsRegex: true, IsEqual: &no}),
			model.Alert{Rule: "stalled", Tenant: "broward"}, true},
		{"=~ is anchored", win(Matcher{Name: "job", Value: "roster", IsRegex: true}), model.Alert{Job: "roster-import"}, false},
	} {
		if err := tc.s.Validate(); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := tc.s.Matches(&tc.a, at.Add(time.Minute)); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	for name, s := range map[string]Silence{
		"only a negative matcher":   win(Matcher{Name: "tenant", Value: "dade", IsEqual: &no}),
		"only a match-all regex":    win(Matcher{Name: "tenant", Value: ".*", IsRegex: true}),
		"a regex that escapes":      win(Matcher{Name: "tenant", Value: "a)|(b", IsRegex: true}),
		"an empty positive matcher": win(Matcher{Name: "tenant", Value: ""}),
	} {
		if err := s.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
