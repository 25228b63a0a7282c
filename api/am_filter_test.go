package api

import (
	"testing"

	"github.com/etlhub/etlhub/rules"
)

// Filters of amtool silence query, as Alertmanager applies them: each is
// matched against the value of the silence's matcher of that label.
func TestSilenceFilters(t *testing.T) {
	sl := &rules.Silence{Matchers: []rules.Matcher{{Name: "rule", Value: "stalled"}, {Name: "tenant", Value: "dade"}}}
	for _, c := range []struct {
		filters []string
		want    bool
	}{
		{nil, true},
		{[]string{"alertname=stalled"}, true},
		{[]string{"alertname=stalled", "tenant=dade"}, true},
		{[]string{"tenant=polk"}, false},
		{[]string{"tenant!=polk"}, true},
		{[]string{"tenant=~d.*"}, true},
		{[]string{"tenant!~d.*"}, false},
		{[]string{"job=roster-import"}, false}, // the silence has no job matcher
		{[]string{`job=""`}, true},             // ... which an empty filter value allows
		{[]string{`tenant!=""`}, true},
	} {
		var ms []amMatcher
		for _, f := range c.filters {
			m, err := parseMatcher(f)
			if err != nil {
				t.Fatal(err)
			}
			ms = append(ms, m)
		}
		if got := silenceMatchesFilters(sl, ms); got != c.want {
			t.Errorf("filters %v: %v, want %v", c.filters, got, c.want)
		}
	}
}
