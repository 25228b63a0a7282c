package notifier

import (
	"fmt"
	"testing"
	"time"

	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/model"
	"github.com/etlhub/etlhub/notifier/routing"
	"github.com/etlhub/etlhub/rules"
	"gopkg.in/yaml.v3"
)

func treeRouter(t *testing.T, route, intervals string) *Router {
	t.Helper()
	var rc routing.RouteConfig
	var ic []routing.TimeIntervalConfig
	if err := yaml.Unmarshal([]byte(route), &rc); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal([]byte(intervals), &ic); err != nil {
		t.Fatal(err)
	}
	var p config.Problems
	rt := &Router{Intervals: routing.CompileIntervals(ic, &p, "notify.time_intervals")}
	rt.Tree = routing.Compile(&rc, &p, "notify.route", routing.Env{})
	if p.Len() != 0 {
		t.Fatal(p.Err("f"))
	}
	return rt
}

func TestTreeTargets(t *testing.T) {
	rt := treeRouter(t, `
receiver: slack
group_by: ['...']
group_wait: 0s
routes:
  - matchers: [severity="critical"]
    receiver: pd
    group_by: [alertname, tenant]
    repeat_interval: 1h
    continue: true
  - matchers: ['alertname=~"DiskFull|RedisMemory"']
    receiver: platform
  - matchers: ['tenant=~"miami-.*"']
    receiver: slack
    active_time_intervals: [office-hours]
  - matchers: ['tenant="broward"']
    receiver: broward
    mute_time_intervals: [night]
`, `
- name: office-hours
  time_intervals: [{weekdays: ['monday:friday'], times: [{start_time: "08:00", end_time: "18:00"}], location: America/New_York}]
- name: night
  time_intervals: [{times: [{start_time: "00:00", end_time: "06:00"}]}]
`)
	tuesdayNoon := time.Date(2026, 9, 1, 16, 0, 0, 0, time.UTC) // 12:00 in New York
	tuesdayNight := time.Date(2026, 9, 1, 3, 0, 0, 0, time.UTC)
	prom := model.Alert{Fingerprint: rules.ExternalFingerprint(map[string]string{"alertname": "DiskFull"}), Rule: "DiskFull", Severity: "warning",
		Source: rules.ExternalSource, Details: map[string]any{"labels": map[string]any{"alertname": "DiskFull", "job": "node", "instance": "sftp-1"}}}
	for _, tc := range []struct {
		a    model.Alert
		at   time.Time
		want string
	}{
		{model.Alert{Rule: "predicted-breach", Severity: "critical", Tenant: "miami-dade"}, tuesdayNoon, "[pd slack]"},
		{model.Alert{Rule: "predicted-breach", Severity: "critical", Tenant: "miami-dade"}, tuesdayNight, "[pd]"}, // slack only in office hours
		{model.Alert{Rule: "stalled", Severity: "warning", Tenant: "broward"}, tuesdayNoon, "[broward]"},
		{model.Alert{Rule: "stalled", Severity: "warning", Tenant: "broward"}, tuesdayNight, "[]"}, // muted at night: nothing
		{model.Alert{Rule: "stalled", Severity: "warning", Tenant: "palm-beach"}, tuesdayNight, "[slack]"},
		{prom, tuesdayNight, "[platform]"},
	} {
		if got := fmt.Sprint(rt.Receivers(&tc.a, tc.at)); got != tc.want {
			t.Errorf("%s %s/%s at %s: %s, want %s", tc.a.Rule, tc.a.Severity, tc.a.Tenant, tc.at.Format(time.RFC3339), got, tc.want)
		}
	}
	tg := rt.Targets(&model.Alert{Rule: "failed", Severity: "critical", Tenant: "miami-dade"}, tuesdayNoon)
	if len(tg) != 2 {
		t.Fatalf("targets %+v", tg)
	}
	if tg[0].Receiver != "pd" || tg[0].GroupKey != "alertname=failed,tenant=miami-dade" || tg[0].RepeatInterval != time.Hour ||
		tg[0].GroupWait != 0 || tg[0].GroupInterval != routing.DefaultGroupInterval || tg[0].Route != "notify.route.routes[0]" {
		t.Errorf("pd target %+v", tg[0])
	}
	if tg[1].GroupKey != "" || tg[1].Route != "notify.route.routes[2]" {
		t.Errorf(`group_by [...] inherited from the root leaves the alert alone: %+v`, tg[1])
	}
	// A posted alert keeps its own labels (job is Prometheus's).
	if l := Labels(&prom); l["job"] != "node" || l["instance"] != "sftp-1" || l["alertname"] != "DiskFull" || l["rule"] != "DiskFull" {
		t.Errorf("labels %v", l)
	}
	if g := GroupLabels("alertname=failed,tenant=dade"); g["alertname"] != "failed" || g["tenant"] != "dade" {
		t.Errorf("group labels %v", g)
	}
}

// The same receiver twice (continue) is one notification.
func TestTreeTargetsOncePerReceiver(t *testing.T) {
	rt := treeRouter(t, `
receiver: slack
routes:
  - {matchers: [severity=critical], receiver: pd, continue: true}
  - {matchers: [tenant=dade], receiver: pd}
`, `[]`)
	hops := rt.Test(map[string]string{"severity": "critical", "tenant": "dade"}, base)
	if len(hops) != 2 {
		t.Fatalf("routes test shows every route: %+v", hops)
	}
	if got := fmt.Sprint(rt.Receivers(&model.Alert{Severity: "critical", Tenant: "dade"}, base)); got != "[pd]" {
		t.Errorf("receivers %s", got)
	}
}
