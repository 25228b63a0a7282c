package notifier

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/model"
	"github.com/etlhub/etlhub/notifier/routing"
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

func (r *Route) matches(label func(string) string) bool {
	for l, v := range r.Match {
		if label(l) != v {
			return false
		}
	}
	for l, re := range r.re {
		if !re.MatchString(label(l)) {
			return false
		}
	}
	return true
}

// Router picks receivers for an alert: from the routing tree when Tree is
// set, else from the older flat list (Routes, then Default).
type Router struct {
	Routes  []Route
	Default string
	// Tree is notify.route, compiled; Intervals its time_intervals.
	Tree      *routing.Node
	Intervals routing.Intervals
}

// Target is where one alert goes: a receiver, and its group when grouped.
type Target struct {
	Receiver  string
	GroupKey  string // "" when not grouped
	GroupWait time.Duration
	// GroupInterval holds a new alert of a group notified less than this
	// ago; RepeatInterval re-notifies a still-firing alert (0: never, the
	// flat routes).
	GroupInterval  time.Duration
	RepeatInterval time.Duration
	// Route is the config key of the route that chose it.
	Route string
}

// Hop is one route an alert ends at, as `etlhub routes test` shows it: in
// tree order, a receiver as often as routes name it, muted ones included.
type Hop struct {
	Target
	Muted bool
	Node  *routing.Node // nil for the flat form
}

// Labels are an alert's labels for routing: a posted alert's own labels,
// and for every alert alertname and rule (the rule), severity, tenant, job,
// run_id and source where set and not posted.
func Labels(a *model.Alert) map[string]string {
	out := map[string]string{}
	for k, v := range rules.ExternalLabels(a) {
		out[k] = v
	}
	for k, v := range map[string]string{"alertname": a.Rule, "rule": a.Rule, "severity": string(a.Severity), "tenant": a.Tenant,
		"job": a.Job, "run_id": a.RunID, "source": a.Source} {
		if _, ok := out[k]; !ok && v != "" {
			out[k] = v
		}
	}
	return out
}

// Test routes labels at now and returns every route they end at.
func (rt *Router) Test(labels map[string]string, now time.Time) []Hop {
	if rt.Tree == nil {
		return rt.flat(func(l string) string { return labels[l] })
	}
	var out []Hop
	for _, n := range rt.Tree.Match(labels) {
		out = append(out, Hop{Node: n, Muted: n.Muted(rt.Intervals, now), Target: Target{Receiver: n.Receiver, GroupKey: n.GroupKey(labels),
			GroupWait: n.GroupWait, GroupInterval: n.GroupInterval, RepeatInterval: n.RepeatInterval, Route: n.Key}})
	}
	return out
}

func (rt *Router) flat(label func(string) string) []Hop {
	var out []Hop
	for i := range rt.Routes {
		r := &rt.Routes[i]
		if !r.matches(label) {
			continue
		}
		out = append(out, Hop{Target: Target{Receiver: r.Receiver, GroupKey: groupKey(label, r.GroupBy), GroupWait: r.GroupWait,
			Route: fmt.Sprintf("notify.routes[%d]", i)}})
		if !r.Continue {
			return out
		}
	}
	if len(out) == 0 && rt.Default != "" {
		out = append(out, Hop{Target: Target{Receiver: rt.Default, Route: "notify.default_receiver"}})
	}
	return out
}

// Targets are the receivers of an alert at now, each once, in route order;
// routes muted at now send nothing.
func (rt *Router) Targets(a *model.Alert, now time.Time) []Target {
	var hops []Hop
	if rt.Tree == nil {
		hops = rt.flat(func(l string) string { return rules.Label(a, l) })
	} else {
		hops = rt.Test(Labels(a), now)
	}
	var out []Target
	seen := map[string]bool{}
	for _, h := range hops {
		if h.Muted || h.Receiver == "" || seen[h.Receiver] {
			continue
		}
		seen[h.Receiver] = true
		out = append(out, h.Target)
	}
	return out
}

// Receivers are the names of Targets.
func (rt *Router) Receivers(a *model.Alert, now time.Time) []string {
	var out []string
	for _, t := range rt.Targets(a, now) {
		out = append(out, t.Receiver)
	}
	return out
}

// GroupKey is "label=value,..." of an alert's group_by labels, sorted; ""
// without grouping.
func GroupKey(a *model.Alert, by []string) string {
	return groupKey(func(l string) string { return rules.Label(a, l) }, by)
}

func groupKey(label func(string) string, by []string) string {
	if len(by) == 0 {
		return ""
	}
	labels := append([]string(nil), by...)
	sort.Strings(labels)
	parts := make([]string, len(labels))
	for i, l := range labels {
		parts[i] = l + "=" + label(l)
	}
	return strings.Join(parts, ",")
}

// GroupLabels parses a group key back into labels ({} for a hashed key or
// a route's one group).
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
	if rt.Tree != nil {
		return fmt.Sprintf("routing tree, default %q", rt.Tree.Receiver)
	}
	return fmt.Sprintf("%d routes, default %q", len(rt.Routes), rt.Default)
}
