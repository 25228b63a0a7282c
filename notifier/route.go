package notifier

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/rules"
)

// Route sends alerts that match to a receiver. Routes are tried in order;
// the first match wins unless it says continue.
type Route struct {
	// Match is label: value (exact); MatchRE is label: regular expression.
	// Labels: rule, tenant, job, severity, source.
	Match    map[string]string `yaml:"match"`
	MatchRE  map[string]string `yaml:"match_re"`
	Receiver string            `yaml:"receiver"`
	Continue bool              `yaml:"continue"`
	// GroupBy folds firing alerts that share these labels (rule, tenant,
	// job, severity) into one notification, sent GroupWait after the first:
	// twenty tenants breaching for one cause make one page, not twenty.
	GroupBy   []string      `yaml:"group_by"`
	GroupWait time.Duration `yaml:"group_wait"`

	re map[string]*regexp.Regexp
}

var routeLabels = map[string]bool{"rule": true, "tenant": true, "job": true, "severity": true, "source": true}

var groupLabels = map[string]bool{"rule": true, "tenant": true, "job": true, "severity": true}

// Validate checks the route at key against the known receivers.
func (r *Route) Validate(p *config.Problems, key string, receivers map[string]bool) {
	if !receivers[r.Receiver] {
		p.Add(key+".receiver", "%q is not a configured receiver", r.Receiver)
	}
	for l := range r.Match {
		if !routeLabels[l] {
			p.Add(key+".match."+l, "is not one of rule, tenant, job, severity, source")
		}
	}
	for _, l := range r.GroupBy {
		if !groupLabels[l] {
			p.Add(key+".group_by", "%q is not one of rule, tenant, job, severity", l)
		}
	}
	if len(r.GroupBy) > 0 && r.GroupWait == 0 {
		r.GroupWait = 30 * time.Second
	}
	if r.GroupWait < 0 || r.GroupWait > time.Hour {
		p.Add(key+".group_wait", "%v is outside 0..1h", r.GroupWait)
	}
	r.re = map[string]*regexp.Regexp{}
	for l, v := range r.MatchRE {
		if !routeLabels[l] {
			p.Add(key+".match_re."+l, "is not one of rule, tenant, job, severity, source")
			continue
		}
		re, err := regexp.Compile("^(?:" + v + ")$")
		if err != nil {
			p.Add(key+".match_re."+l, "%v", err)
			continue
		}
		r.re[l] = re
	}
}

func (r *Route) matches(a *rules.Alert) bool {
	for l, v := range r.Match {
		if rules.Label(a, l) != v {
			return false
		}
	}
	for l, re := range r.re {
		if !re.MatchString(rules.Label(a, l)) {
			return false
		}
	}
	return true
}

// Router picks receivers for an alert.
type Router struct {
	Routes  []Route
	Default string
}

// Target is where one alert goes: a receiver, and its group when grouped.
type Target struct {
	Receiver  string
	GroupKey  string // "" when not grouped
	GroupWait time.Duration
}

// Targets are the receivers of an alert, each once, in route order.
func (rt *Router) Targets(a *rules.Alert) []Target {
	var out []Target
	seen := map[string]bool{}
	for i := range rt.Routes {
		r := &rt.Routes[i]
		if !r.matches(a) {
			continue
		}
		if !seen[r.Receiver] {
			seen[r.Receiver] = true
			out = append(out, Target{Receiver: r.Receiver, GroupKey: GroupKey(a, r.GroupBy), GroupWait: r.GroupWait})
		}
		if !r.Continue {
			return out
		}
	}
	if len(out) == 0 && rt.Default != "" {
		out = append(out, Target{Receiver: rt.Default})
	}
	return out
}

// Receivers are the names of Targets.
func (rt *Router) Receivers(a *rules.Alert) []string {
	var out []string
	for _, t := range rt.Targets(a) {
		out = append(out, t.Receiver)
	}
	return out
}

// GroupKey is "label=value,..." of an alert's group_by labels, sorted; ""
// without grouping.
func GroupKey(a *rules.Alert, by []string) string {
	if len(by) == 0 {
		return ""
	}
	labels := append([]string(nil), by...)
	sort.Strings(labels)
	parts := make([]string, len(labels))
	for i, l := range labels {
		parts[i] = l + "=" + rules.Label(a, l)
	}
	return strings.Join(parts, ",")
}

// GroupLabels parses a group key back into labels.
func GroupLabels(key string) map[string]string {
	out := map[string]string{}
	for _, p := range strings.Split(key, ",") {
		if k, v, ok := strings.Cut(p, "="); ok {
			out[k] = v
		}
	}
	return out
}

// String describes the router for logs.
func (rt *Router) String() string {
	return fmt.Sprintf("%d routes, default %q", len(rt.Routes), rt.Default)
}
