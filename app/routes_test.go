package app

import (
	"strings"
	"testing"
	"time"

	"github.com/etlhub/etlhub/alerting"
	"github.com/etlhub/etlhub/model"
)

const receiversDoc = `notify:
  receivers:
    - {name: pd, pagerduty: {routing_key: "0123456789abcdef0123456789abcdef"}}
    - {name: slack, slack: {webhook_url: "https://hooks.example/x"}}
    - {name: dade, slack: {webhook_url: "https://hooks.example/y"}}
`

func TestRoutingTreeConfig(t *testing.T) {
	doc := base + receiversDoc + `  time_intervals:
    - name: dade-maintenance
      time_intervals: [{weekdays: [sunday], times: [{start_time: "02:00", end_time: "06:00"}], location: America/New_York}]
  route:
    receiver: slack
    group_by: [alertname]
    routes:
      - matchers: ['severity="critical"']
        receiver: pd
        group_wait: 0s
        repeat_interval: 2h
        continue: true
      - matchers: ['tenant=~"miami-.*|dade"']
        receiver: dade
        mute_time_intervals: [dade-maintenance]
`
	c, probs := parse(t, doc)
	if len(probs) != 0 {
		t.Fatalf("%+v", probs)
	}
	rt := c.Notify.Router()
	weekday := time.Date(2026, 9, 1, 8, 0, 0, 0, time.UTC)
	sundayNight := time.Date(2026, 9, 6, 7, 0, 0, 0, time.UTC) // 03:00 in New York
	a := model.Alert{Fingerprint: "f", Rule: "stalled", Severity: "critical", Tenant: "dade", Job: "roster-import"}
	trans := []model.Transition{{At: weekday, Status: "firing", Alert: a}, {At: sundayNight, Status: "firing", Alert: a}}
	notes := alerting.Notifications(rt, trans, nil, nil)
	var got []string
	for _, n := range notes {
		got = append(got, n.Receiver+"@"+n.Trans.At.Format("Mon")+"/"+n.GroupKey+"/"+n.Wait.String())
	}
	if want := "pd@Tue/alertname=stalled/0s dade@Tue/alertname=stalled/30s pd@Sun/alertname=stalled/0s"; strings.Join(got, " ") != want {
		t.Errorf("notifications %s, want %s (dade muted in its maintenance window)", strings.Join(got, " "), want)
	}
	if n := alerting.Notifications(rt, []model.Transition{{At: weekday, Status: "firing", Alert: model.Alert{Rule: "x", Severity: "info", Tenant: "broward"}}}, nil, nil); len(n) != 1 || n[0].Receiver != "slack" {
		t.Errorf("the root takes what no route does: %+v", n)
	}
}

func TestRoutingTreeProblems(t *testing.T) {
	for _, tc := range []struct {
		name, notify string
		want         []string
	}{
		{"flat and tree together", `  default_receiver: slack
  routes: [{match: {severity: critical}, receiver: pd}]
  route: {receiver: slack}
`, []string{
			"notify.routes: is the older flat form of notify.route: move each route under notify.route.routes",
			"notify.default_receiver: is notify.route.receiver when notify.route is set: move it there",
		}},
		{"bad tree", `  route:
    receiver: slack
    routes:
      - matchers: ['tenant=~"(dade"']
        receiver: pagerduty
      - receiver: pd
        group_wait: 2h
        active_time_intervals: [office]
`, []string{
			"notify.route.routes[0].matchers[0]: tenant=~\"(dade\": error parsing regexp: missing closing ): `(dade`",
			`notify.route.routes[0].receiver: "pagerduty" is not a configured receiver`,
			"notify.route.routes[1].group_wait: 2h0m0s is longer than an hour",
			`notify.route.routes[1].active_time_intervals[0]: "office" is not one of time_intervals`,
		}},
		{"bad interval and inhibit rule", `  route: {receiver: slack}
  time_intervals:
    - name: x
      time_intervals: [{times: [{start_time: "18:00", end_time: "08:00"}], weekdays: [funday], location: Mars/Olympus}]
  inhibit_rules:
    - {source_matchers: ['alertname="source-down"'], target_matchers: ['alertname=~"(stalled"'], equal: [source]}
`, []string{
			"notify.time_intervals[0].time_intervals[0].location: \"Mars/Olympus\" is not a time zone",
			"notify.time_intervals[0].time_intervals[0].times[0]: start_time 18:00 is not before end_time 08:00",
			"notify.time_intervals[0].time_intervals[0].weekdays[0]: \"funday\" is not a weekday",
			"notify.inhibit_rules[0].target_matchers[0]: ",
		}},
		{"a duration in Alertmanager's form", "  route: {receiver: slack, repeat_interval: 1d, group_interval: soon}\n",
			[]string{`notify.route.group_interval: "soon" is not a duration`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, probs := parse(t, base+receiversDoc+tc.notify)
			var got []string
			for _, p := range probs {
				if p.Line == 0 {
					t.Errorf("no line for %s: %s", p.Key, p.Msg)
				}
				got = append(got, p.Key+": "+p.Msg)
			}
			joined := strings.Join(got, "\n")
			for _, w := range tc.want {
				if !strings.Contains(joined, w) {
					t.Errorf("missing %q in:\n%s", w, joined)
				}
			}
			if len(got) != len(tc.want) {
				t.Errorf("%d problems, want %d:\n%s", len(got), len(tc.want), joined)
			}
		})
	}
}
