package routing

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/etlhub/etlhub/internal/config"
	"gopkg.in/yaml.v3"
)

func TestParseMatchers(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // String of the result, or "error"
	}{
		{`severity=critical`, `{severity="critical"}`},
		{`severity = "critical"`, `{severity="critical"}`},
		{`{tenant=~"miami-.*", job!="roster"}`, `{tenant=~"miami-.*", job!="roster"}`},
		{`tenant!~miami|broward`, `{tenant!~"miami|broward"}`},
		{`summary="a, b"`, `{summary="a, b"}`},
		{`summary="say \"hi\""`, `{summary="say \"hi\""}`},
		{`path="C:\\temp"`, `{path="C:\\temp"}`},
		{`x="a\nb"`, `{x="a\nb"}`},
		{`empty=""`, `{empty=""}`},
		{`a=b,c=d,`, `{a="b", c="d"}`},
		{`ns:sub=x`, `{ns:sub="x"}`},
		{`bad`, "error"},
		{`1abc=x`, "error"},
		{`a="unterminated`, "error"},
		{`a=in"side`, "error"},
		{`a=~"(unclosed"`, "error"},
	} {
		ms, err := ParseMatchers(tc.in)
		got := "error"
		if err == nil {
			got = ms.String()
		}
		if got != tc.want {
			t.Errorf("ParseMatchers(%q) = %s (%v), want %s", tc.in, got, err, tc.want)
		}
	}
}

func TestMatcherOperatorsAndAnchoring(t *testing.T) {
	for _, tc := range []struct {
		m     string
		value string
		want  bool
	}{
		{`t=a`, "a", true},
		{`t=a`, "ab", false},
		{`t!=a`, "", true},
		{`t!=a`, "a", false},
		{`t=~a.*`, "abc", true},
		{`t=~b`, "abc", false}, // anchored: not a substring match
		{`t=~"a|b"`, "b", true},
		{`t!~"a|b"`, "c", true},
		{`t!~"a|b"`, "a", false},
		{`t=""`, "", true}, // an absent label is ""
		{`t=~".+"`, "", false},
	} {
		m, err := ParseMatcher(tc.m)
		if err != nil {
			t.Fatal(err)
		}
		if got := m.Matches(tc.value); got != tc.want {
			t.Errorf("%s on %q = %v, want %v", tc.m, tc.value, got, tc.want)
		}
	}
}

const treeYAML = `
receiver: default
group_by: [alertname]
group_wait: 10s
routes:
  - matchers: ['severity="critical"']
    receiver: pager
    group_by: [tenant, alertname]
    continue: true
    repeat_interval: 1h
  - matchers: ['tenant=~"miami-.*"']
    receiver: dade
    routes:
      - matchers: [job="roster-import"]
        receiver: dade-roster
        group_by: ['...']
        mute_time_intervals: [nights]
  - match: {team: data}
    match_re: {service: "etl|sftp"}
    receiver: data
    group_by: []
    group_interval: 1m
`

func compileTree(t *testing.T, src string) *Node {
	t.Helper()
	var c RouteConfig
	if err := yaml.Unmarshal([]byte(src), &c); err != nil {
		t.Fatal(err)
	}
	var p config.Problems
	n := Compile(&c, &p, "notify.route", Env{})
	if p.Len() != 0 {
		t.Fatal(p.Err("tree"))
	}
	return n
}

func receivers(ns []*Node) string {
	var out []string
	for _, n := range ns {
		out = append(out, n.Receiver)
	}
	return strings.Join(out, ",")
}

func TestTreeMatchAndInheritance(t *testing.T) {
	root := compileTree(t, treeYAML)
	for _, tc := range []struct {
		labels map[string]string
		want   string
	}{
		{map[string]string{"alertname": "x"}, "default"},
		{map[string]string{"severity": "critical"}, "pager"}, // a continuing match still counts: not the root too
		{map[string]string{"severity": "critical", "tenant": "miami-dade"}, "pager,dade"},
		{map[string]string{"tenant": "miami-dade", "job": "roster-import"}, "dade-roster"},
		{map[string]string{"tenant": "miami-dade", "job": "other"}, "dade"},
		{map[string]string{"tenant": "broward", "team": "data", "service": "sftp"}, "data"},
		{map[string]string{"team": "data", "service": "sftp-x"}, "default"}, // match_re is anchored
	} {
		if got := receivers(root.Match(tc.labels)); got != tc.want {
			t.Errorf("%v routed to %s, want %s", tc.labels, got, tc.want)
		}
	}
	pager, dade, data := root.Routes[0], root.Routes[1], root.Routes[2]
	roster := dade.Routes[0]
	if pager.RepeatInterval != time.Hour || pager.GroupWait != 10*time.Second || pager.GroupInterval != DefaultGroupInterval {
		t.Errorf("pager timing %v/%v/%v: repeat_interval its own, group_wait inherited, group_interval the default",
			pager.GroupWait, pager.GroupInterval, pager.RepeatInterval)
	}
	if strings.Join(dade.GroupBy, ",") != "alertname" || roster.Receiver != "dade-roster" || !roster.GroupByAll {
		t.Errorf("dade inherits group_by: %v; roster groups by everything: %v", dade.GroupBy, roster.GroupByAll)
	}
	if len(dade.MuteTimeIntervals) != 0 || len(roster.MuteTimeIntervals) != 1 {
		t.Error("mute_time_intervals are not inherited")
	}
	if data.GroupInterval != time.Minute || len(data.GroupBy) != 0 || data.GroupByAll {
		t.Errorf("data: group_interval %v, group_by %v", data.GroupInterval, data.GroupBy)
	}
	l := map[string]string{"alertname": "predicted-breach", "tenant": "miami-dade", "severity": "critical"}
	if k := pager.GroupKey(l); k != "alertname=predicted-breach,tenant=miami-dade" {
		t.Errorf("group key %q", k)
	}
	if k := data.GroupKey(l); k != "{}" {
		t.Errorf("group_by [] puts all in one group: key %q", k)
	}
	if k := roster.GroupKey(l); k != "" {
		t.Errorf(`group_by [...] leaves each alert alone: key %q`, k)
	}
	var b bytes.Buffer
	root.Print(&b, root.Match(map[string]string{"tenant": "miami-dade", "job": "roster-import"}))
	if !strings.Contains(b.String(), `* {job="roster-import"}  receiver: dade-roster`) || !strings.HasPrefix(b.String(), "└── default-route") {
		t.Errorf("tree:\n%s", b.String())
	}
}

func TestTreeProblemsNameTheirKey(t *testing.T) {
	src := `
receiver: nobody
matchers: [a=b]
routes:
  - matchers: ['tenant=~"(bad"']
    receiver: pager
    group_by: ['...', tenant]
    repeat_interval: 0s
    mute_time_intervals: [never-defined]
  - routes:
      - match_re: {job: "("}
`
	var c RouteConfig
	if err := yaml.Unmarshal([]byte(src), &c); err != nil {
		t.Fatal(err)
	}
	var p config.Problems
	Compile(&c, &p, "notify.route", Env{Receivers: map[string]bool{"pager": true}, Intervals: map[string]bool{}})
	got := p.Err("f").Error()
	for _, want := range []string{
		`notify.route.receiver: "nobody" is not a configured receiver`,
		`notify.route: the root route must not have matchers`,
		`notify.route.routes[0].matchers[0]: `,
		`notify.route.routes[0].group_by: "..." groups by every label and must be alone`,
		`notify.route.routes[0].repeat_interval: 0s is too short`,
		`notify.route.routes[0].mute_time_intervals[0]: "never-defined" is not one of time_intervals`,
		`notify.route.routes[1].routes[0].match_re.job: `,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
}

func TestDurations(t *testing.T) {
	for in, want := range map[string]time.Duration{"30s": 30 * time.Second, "4h": 4 * time.Hour, "1d12h": 36 * time.Hour,
		"1w": 7 * 24 * time.Hour, "0": 0, "1h30m": 90 * time.Minute, "1.5h": 90 * time.Minute, "250ms": 250 * time.Millisecond} {
		var d Duration
		if err := yaml.Unmarshal([]byte(in), &d); err != nil || time.Duration(d) != want {
			t.Errorf("%s = %v (%v), want %v", in, time.Duration(d), err, want)
		}
	}
	var d Duration
	if err := yaml.Unmarshal([]byte("soon"), &d); err == nil {
		t.Error("soon is a duration")
	}
	if s := Duration(36 * time.Hour).String(); s != "1d12h" {
		t.Errorf("String %s", s)
	}
}

func TestTimeIntervals(t *testing.T) {
	src := `
- name: weeknights
  time_intervals:
    - weekdays: ['monday:friday']
      times: [{start_time: "22:00", end_time: "24:00"}, {start_time: "00:00", end_time: "06:00"}]
      location: America/New_York
- name: month-end
  time_intervals:
    - days_of_month: ['-2:-1']
      months: [january, 'march:april', '12']
      years: ['2026:2027']
- name: first-week
  time_intervals:
    - days_of_month: ['1:7']
`
	var cs []TimeIntervalConfig
	if err := yaml.Unmarshal([]byte(src), &cs); err != nil {
		t.Fatal(err)
	}
	var p config.Problems
	iv := CompileIntervals(cs, &p, "notify.time_intervals")
	if p.Len() != 0 {
		t.Fatal(p.Err("f"))
	}
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	for _, tc := range []struct {
		name, at string
		want     bool
	}{
		{"weeknights", "2026-12-01T03:30:00Z", true},  // Mon 22:30 in New York (EST)
		{"weeknights", "2026-12-01T11:00:00Z", false}, // Tue 06:00 New York: end is exclusive
		{"weeknights", "2026-12-01T10:59:00Z", true},  // Tue 05:59
		{"weeknights", "2026-12-06T04:00:00Z", false}, // Sat 23:00 New York
		{"weeknights", "2026-07-01T02:30:00Z", true},  // Tue 22:30 EDT: the zone's summer offset
		{"weeknights", "2026-07-01T10:30:00Z", false}, // 06:30 EDT (05:30 would be in, were the offset fixed)
		{"month-end", "2026-01-30T12:00:00Z", true},
		{"month-end", "2026-01-29T12:00:00Z", false},
		{"month-end", "2026-04-29T00:00:00Z", true}, // April has 30 days
		{"month-end", "2026-02-28T00:00:00Z", false},
		{"month-end", "2026-12-31T00:00:00Z", true},
		{"month-end", "2028-12-31T00:00:00Z", false},
		{"first-week", "2026-02-07T23:59:00Z", true},
		{"first-week", "2026-02-08T00:00:00Z", false},
		{"undefined", "2026-02-01T00:00:00Z", false},
	} {
		if got := iv.Contains(tc.name, at(tc.at)); got != tc.want {
			t.Errorf("%s at %s = %v, want %v", tc.name, tc.at, got, tc.want)
		}
	}
}
