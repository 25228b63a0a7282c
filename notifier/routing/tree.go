package routing

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/etlhub/etlhub/internal/config"
)

// Alertmanager's defaults, inherited by every route that does not set its own.
const (
	DefaultGroupWait      = 30 * time.Second
	DefaultGroupInterval  = 5 * time.Minute
	DefaultRepeatInterval = 4 * time.Hour
)

// RouteConfig is one node of the routing tree as written in the config: the
// root (notify.route) and its nested routes, as in Alertmanager's route block.
type RouteConfig struct {
	Receiver string `yaml:"receiver"`
	// GroupBy: the labels whose values make a group; "..." alone groups by
	// every label (each alert alone); [] puts all of a route's alerts in one.
	GroupBy []string `yaml:"group_by"`
	// Matchers are Alertmanager's: name=value, !=, =~, !~ (anchored).
	Matchers []string `yaml:"matchers"`
	// Match and MatchRE are Alertmanager's older forms, still read.
	Match               map[string]string `yaml:"match"`
	MatchRE             map[string]string `yaml:"match_re"`
	Continue            bool              `yaml:"continue"`
	GroupWait           *Duration         `yaml:"group_wait"`
	GroupInterval       *Duration         `yaml:"group_interval"`
	RepeatInterval      *Duration         `yaml:"repeat_interval"`
	MuteTimeIntervals   []string          `yaml:"mute_time_intervals"`
	ActiveTimeIntervals []string          `yaml:"active_time_intervals"`
	Routes              []*RouteConfig    `yaml:"routes"`
}

// Options are what a route decides for the alerts it takes; every one but
// the time intervals is inherited from the parent unless the route sets it.
type Options struct {
	Receiver string
	// GroupBy is sorted; GroupByAll is "...".
	GroupBy    []string
	GroupByAll bool
	// Ungrouped (a flat route without group_by, etlhub's older form): each
	// alert is notified on its own, at once.
	Ungrouped           bool
	GroupWait           time.Duration
	GroupInterval       time.Duration
	RepeatInterval      time.Duration
	MuteTimeIntervals   []string
	ActiveTimeIntervals []string
}

// Node is a compiled route.
type Node struct {
	// Key is where the route is in the config (notify.route.routes[1]).
	Key      string
	Matchers Matchers
	Continue bool
	Options
	Routes []*Node
}

var labelNameSyntax = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// Env is what routes refer to: the receivers and time intervals by name
// (nil: not checked).
type Env struct {
	Receivers map[string]bool
	Intervals map[string]bool
}

// Compile checks the tree at key and builds it; problems name their key.
func Compile(c *RouteConfig, p *config.Problems, key string, env Env) *Node {
	if c.Receiver == "" {
		p.Add(key+".receiver", "the root route needs a receiver (the default)")
	}
	if len(c.Matchers) > 0 || len(c.Match) > 0 || len(c.MatchRE) > 0 {
		p.Add(key, "the root route must not have matchers: it takes every alert")
	}
	if c.Continue {
		p.Add(key+".continue", "the root route cannot continue")
	}
	if len(c.MuteTimeIntervals) > 0 || len(c.ActiveTimeIntervals) > 0 {
		p.Add(key, "the root route cannot have mute_time_intervals or active_time_intervals")
	}
	root := Options{GroupWait: DefaultGroupWait, GroupInterval: DefaultGroupInterval, RepeatInterval: DefaultRepeatInterval}
	return compile(c, p, key, env, root)
}

func compile(c *RouteConfig, p *config.Problems, key string, env Env, parent Options) *Node {
	n := &Node{Key: key, Continue: c.Continue, Options: parent}
	if c.Receiver != "" {
		n.Receiver = c.Receiver
		if env.Receivers != nil && !env.Receivers[c.Receiver] {
			p.Add(key+".receiver", "%q is not a configured receiver", c.Receiver)
		}
	}
	if c.GroupBy != nil {
		n.GroupBy, n.GroupByAll, n.Ungrouped = nil, false, false
		seen := map[string]bool{}
		for _, l := range c.GroupBy {
			switch {
			case l == "...":
				n.GroupByAll = true
			case !labelNameSyntax.MatchString(l):
				p.Add(key+".group_by", "%q is not a label name", l)
			case seen[l]:
				p.Add(key+".group_by", "%q is listed twice", l)
			default:
				n.GroupBy = append(n.GroupBy, l)
			}
			seen[l] = true
		}
		if n.GroupByAll && len(c.GroupBy) > 1 {
			p.Add(key+".group_by", `"..." groups by every label and must be alone`)
		}
		sort.Strings(n.GroupBy)
	}
	durs := []struct {
		name string
		v    *Duration
		to   *time.Duration
		min  time.Duration
	}{{"group_wait", c.GroupWait, &n.GroupWait, 0}, {"group_interval", c.GroupInterval, &n.GroupInterval, time.Second},
		{"repeat_interval", c.RepeatInterval, &n.RepeatInterval, time.Second}}
	for _, d := range durs {
		if d.v == nil {
			continue
		}
		if time.Duration(*d.v) < d.min {
			p.Add(key+"."+d.name, "%v is too short (at least %v)", time.Duration(*d.v), d.min)
		}
		*d.to = time.Duration(*d.v)
	}
	if n.GroupWait > time.Hour {
		p.Add(key+".group_wait", "%v is longer than an hour: the first page would wait that long", n.GroupWait)
	}
	for i, s := range c.Matchers {
		ms, err := ParseMatchers(s)
		if err != nil {
			p.Add(fmt.Sprintf("%s.matchers[%d]", key, i), "%v", err)
			continue
		}
		n.Matchers = append(n.Matchers, ms...)
	}
	for _, l := range sortedKeys(c.Match) {
		if !labelNameSyntax.MatchString(l) {
			p.Add(key+".match."+l, "is not a label name")
			continue
		}
		m, _ := NewMatcher(MatchEqual, l, c.Match[l])
		n.Matchers = append(n.Matchers, m)
	}
	for _, l := range sortedKeys(c.MatchRE) {
		if !labelNameSyntax.MatchString(l) {
			p.Add(key+".match_re."+l, "is not a label name")
			continue
		}
		m, err := NewMatcher(MatchRegexp, l, c.MatchRE[l])
		if err != nil {
			p.Add(key+".match_re."+l, "%v", err)
			continue
		}
		n.Matchers = append(n.Matchers, m)
	}
	n.MuteTimeIntervals, n.ActiveTimeIntervals = c.MuteTimeIntervals, c.ActiveTimeIntervals
	for field, names := range map[string][]string{"mute_time_intervals": c.MuteTimeIntervals, "active_time_intervals": c.ActiveTimeIntervals} {
		for i, name := range names {
			if env.Intervals != nil && !env.Intervals[name] {
				p.Add(fmt.Sprintf("%s.%s[%d]", key, field, i), "%q is not one of time_intervals", name)
			}
		}
	}
	for i, cc := range c.Routes {
		if cc == nil {
			p.Add(fmt.Sprintf("%s.routes[%d]", key, i), "is empty")
			continue
		}
		n.Routes = append(n.Routes, compile(cc, p, fmt.Sprintf("%s.routes[%d]", key, i), env, n.Options))
	}
	return n
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Match is the routes an alert with these labels ends at, in tree order, as
// Alertmanager walks it: depth first, the first matching child wins unless
// it continues, and a route none of whose children match takes the alert
// itself. nil when the route's own matchers do not pass.
func (n *Node) Match(labels map[string]string) []*Node {
	if !n.Matchers.Matches(labels) {
		return nil
	}
	var all []*Node
	for _, c := range n.Routes {
		m := c.Match(labels)
		all = append(all, m...)
		if m != nil && !c.Continue {
			break
		}
	}
	if len(all) == 0 {
		all = append(all, n)
	}
	return all
}

// maxGroupKey keeps keys within the store's column; longer ones are hashed.
const maxGroupKey = 400

// GroupKey names the group of an alert with these labels on this route:
// "label=value,..." of its group_by, sorted; "{}" when the route groups all
// its alerts together; "" when every alert stands alone (no grouping, or
// group_by "...").
func (n *Node) GroupKey(labels map[string]string) string {
	if n.Ungrouped || n.GroupByAll {
		return ""
	}
	if len(n.GroupBy) == 0 {
		return "{}"
	}
	parts := make([]string, len(n.GroupBy))
	for i, l := range n.GroupBy {
		parts[i] = l + "=" + labels[l]
	}
	k := strings.Join(parts, ",")
	if len(k) > maxGroupKey {
		sum := sha256.Sum256([]byte(k))
		return "sha256:" + hex.EncodeToString(sum[:16])
	}
	return k
}

// Muted reports whether the route sends nothing at now: one of its
// mute_time_intervals holds, or it has active_time_intervals and none does.
func (n *Node) Muted(intervals Intervals, now time.Time) bool {
	for _, name := range n.MuteTimeIntervals {
		if intervals.Contains(name, now) {
			return true
		}
	}
	if len(n.ActiveTimeIntervals) == 0 {
		return false
	}
	for _, name := range n.ActiveTimeIntervals {
		if intervals.Contains(name, now) {
			return false
		}
	}
	return true
}

// Describe is the route's matchers and settings on one line.
func (n *Node) Describe() string {
	var b strings.Builder
	if len(n.Matchers) == 0 {
		b.WriteString("{}")
	} else {
		b.WriteString(n.Matchers.String())
	}
	if n.Continue {
		b.WriteString("  continue: true")
	}
	fmt.Fprintf(&b, "  receiver: %s", n.Receiver)
	switch {
	case n.Ungrouped:
	case n.GroupByAll:
		b.WriteString("  group_by: [...]")
	default:
		fmt.Fprintf(&b, "  group_by: [%s]", strings.Join(n.GroupBy, ", "))
	}
	if len(n.MuteTimeIntervals) > 0 {
		fmt.Fprintf(&b, "  mute: [%s]", strings.Join(n.MuteTimeIntervals, ", "))
	}
	if len(n.ActiveTimeIntervals) > 0 {
		fmt.Fprintf(&b, "  active: [%s]", strings.Join(n.ActiveTimeIntervals, ", "))
	}
	return b.String()
}

// Print writes the tree, one route a line, marking with "*" the routes in
// mark (what Match returned).
func (n *Node) Print(w io.Writer, mark []*Node) {
	marked := map[*Node]bool{}
	for _, m := range mark {
		marked[m] = true
	}
	var walk func(x *Node, prefix string, last bool, root bool)
	walk = func(x *Node, prefix string, last, root bool) {
		branch, next := "├── ", "│   "
		if last {
			branch, next = "└── ", "    "
		}
		star := ""
		if marked[x] {
			star = "* "
		}
		desc := x.Describe()
		if root {
			desc = "default-route" + strings.TrimPrefix(desc, "{}")
		}
		fmt.Fprintf(w, "%s%s%s%s\n", prefix, branch, star, desc)
		for i, c := range x.Routes {
			walk(c, prefix+next, i == len(x.Routes)-1, false)
		}
	}
	walk(n, "", true, true)
}
