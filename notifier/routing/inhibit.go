package routing

import (
	"fmt"

	"github.com/etlhub/etlhub/internal/config"
)

// InhibitRuleConfig is one of notify.inhibit_rules, as in Alertmanager: a
// firing alert matching source_matchers mutes the alerts matching
// target_matchers that have the same values of the equal labels.
type InhibitRuleConfig struct {
	SourceMatchers []string `yaml:"source_matchers"`
	TargetMatchers []string `yaml:"target_matchers"`
	Equal          []string `yaml:"equal"`
}

// InhibitRule is a compiled InhibitRuleConfig.
type InhibitRule struct {
	Source, Target Matchers
	Equal          []string
}

// CompileInhibitRules checks the rules at key and builds them.
func CompileInhibitRules(cs []InhibitRuleConfig, p *config.Problems, key string) []InhibitRule {
	var out []InhibitRule
	for i, c := range cs {
		k := fmt.Sprintf("%s[%d]", key, i)
		r := InhibitRule{Source: matcherList(c.SourceMatchers, p, k+".source_matchers"), Target: matcherList(c.TargetMatchers, p, k+".target_matchers")}
		if len(c.SourceMatchers) == 0 {
			p.Add(k+".source_matchers", "at least one is required")
		}
		if len(c.TargetMatchers) == 0 {
			p.Add(k+".target_matchers", "at least one is required")
		}
		for j, l := range c.Equal {
			if !labelNameSyntax.MatchString(l) {
				p.Add(fmt.Sprintf("%s.equal[%d]", k, j), "%q is not a label name", l)
			}
		}
		r.Equal = c.Equal
		out = append(out, r)
	}
	return out
}

func matcherList(lines []string, p *config.Problems, key string) Matchers {
	var out Matchers
	for i, s := range lines {
		ms, err := ParseMatchers(s)
		if err != nil {
			p.Add(fmt.Sprintf("%s[%d]", key, i), "%v", err)
			continue
		}
		out = append(out, ms...)
	}
	return out
}

// Labeled is an alert as inhibition sees it: an identity and its labels.
type Labeled struct {
	ID     string
	Labels map[string]string
}

// Inhibited lists the targets muted by a source: for some rule the target
// matches its target matchers, a different source alert matches its source
// matchers, and both have the same value (or both none) of every equal label.
func Inhibited(rules []InhibitRule, sources, targets []Labeled) map[string]bool {
	out := map[string]bool{}
	for _, r := range rules {
		var src []Labeled
		for _, s := range sources {
			if r.Source.Matches(s.Labels) {
				src = append(src, s)
			}
		}
		if len(src) == 0 {
			continue
		}
		for _, t := range targets {
			if out[t.ID] || !r.Target.Matches(t.Labels) {
				continue
			}
			for _, s := range src {
				if s.ID != t.ID && sameValues(r.Equal, s.Labels, t.Labels) {
					out[t.ID] = true
					break
				}
			}
		}
	}
	return out
}

func sameValues(names []string, a, b map[string]string) bool {
	for _, n := range names {
		if a[n] != b[n] {
			return false
		}
	}
	return true
}
