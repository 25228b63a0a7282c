package notifier

import (
	"fmt"
	"regexp"

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

	re map[string]*regexp.Regexp
}

var routeLabels = map[string]bool{"rule": true, "tenant": true, "job": true, "severity": true, "source": true}

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

func routeLabel(a *rules.Alert, l string) string {
	switch l {
	case "rule":
		return a.Rule
	case "tenant":
		return a.Tenant
	case "job":
		return a.Job
	case "severity":
		return a.Severity
	case "source":
		return a.Source
	}
	return ""
}

func (r *Route) matches(a *rules.Alert) bool {
	for l, v := range r.Match {
		if routeLabel(a, l) != v {
			return false
		}
	}
	for l, re := range r.re {
		if !re.MatchString(routeLabel(a, l)) {
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

// Receivers are the receivers of an alert, each once, in route order.
func (rt *Router) Receivers(a *rules.Alert) []string {
	var out []string
	seen := map[string]bool{}
	for i := range rt.Routes {
		r := &rt.Routes[i]
		if !r.matches(a) {
			continue
		}
		if !seen[r.Receiver] {
			seen[r.Receiver] = true
			out = append(out, r.Receiver)
		}
		if !r.Continue {
			return out
		}
	}
	if len(out) == 0 && rt.Default != "" {
		out = append(out, rt.Default)
	}
	return out
}

// String describes the router for logs.
func (rt *Router) String() string {
	return fmt.Sprintf("%d routes, default %q", len(rt.Routes), rt.Default)
}
