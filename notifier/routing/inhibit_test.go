package routing

import (
	"testing"

	"github.com/etlhub/etlhub/internal/config"
)

func TestInhibitRules(t *testing.T) {
	var p config.Problems
	rs := CompileInhibitRules([]InhibitRuleConfig{
		{SourceMatchers: []string{`alertname="source-down"`}, TargetMatchers: []string{`alertname=~"stalled|freshness"`}, Equal: []string{"source"}},
		{SourceMatchers: []string{`severity="critical"`}, TargetMatchers: []string{`severity="warning"`}, Equal: []string{"tenant", "job"}},
	}, &p, "notify.inhibit_rules")
	if p.Len() != 0 {
		t.Fatal(p.Err("f"))
	}
	sources := []Labeled{
		{"down", map[string]string{"alertname": "source-down", "source": "importer"}},
		{"crit", map[string]string{"alertname": "deadline-missed", "severity": "critical", "tenant": "dade", "job": "roster"}},
	}
	targets := []Labeled{
		{"stalled-importer", map[string]string{"alertname": "stalled", "source": "importer"}},
		{"stalled-other", map[string]string{"alertname": "stalled", "source": "sis"}},
		{"warn-dade", map[string]string{"severity": "warning", "tenant": "dade", "job": "roster"}},
		{"warn-broward", map[string]string{"severity": "warning", "tenant": "broward", "job": "roster"}},
		{"warn-nojob", map[string]string{"severity": "warning", "tenant": "dade"}}, // job "" != "roster"
		{"down", map[string]string{"alertname": "source-down", "source": "importer"}},
	}
	got := Inhibited(rs, sources, targets)
	want := map[string]bool{"stalled-importer": true, "warn-dade": true}
	for _, tg := range targets {
		if got[tg.ID] != want[tg.ID] {
			t.Errorf("%s inhibited = %v, want %v", tg.ID, got[tg.ID], want[tg.ID])
		}
	}
	// An alert matching both sides does not inhibit itself.
	self := CompileInhibitRules([]InhibitRuleConfig{{SourceMatchers: []string{`a=x`}, TargetMatchers: []string{`a=x`}}}, &p, "k")
	one := []Labeled{{"1", map[string]string{"a": "x"}}}
	if Inhibited(self, one, one)["1"] {
		t.Error("an alert inhibited itself")
	}
	CompileInhibitRules([]InhibitRuleConfig{{SourceMatchers: []string{`a=~"("`}}}, &p, "notify.inhibit_rules")
	if p.Len() != 2 {
		t.Errorf("want a bad matcher and a missing target_matchers, got %v", p.Err("f"))
	}
}
