package routing

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// amRoute is a routing tree written for Alertmanager: the receivers are
// etlhub's names, everything else is as an Alertmanager user writes it.
const amRoute = `
receiver: product-slack
group_by: [alertname, tenant]
group_wait: 30s
group_interval: 5m
repeat_interval: 4h
routes:
  - matchers: ['severity="critical"', 'tenant=~"miami-.*|broward"']
    receiver: district-pager
    continue: true
    routes:
      - matchers: [alertname="deadline-missed"]
        receiver: district-escalation
  - matchers: ['severity="critical"']
    receiver: oncall-pager
    group_by: ['...']
    routes:
      - matchers: ['alertname=~"source-.*"']
        receiver: platform-pager
        continue: true
      - matchers: ['alertname!~"predicted-.*|stalled"', job="roster-import"]
        receiver: roster-pager
  - match:
      team: platform
    match_re:
      service: "sftp|redis"
    receiver: platform-slack
  - matchers: ['summary="late, again"']
    receiver: quoted
  - matchers: ['tenant!="miami-dade"', 'severity=~"warning|info"']
    receiver: others-slack
    continue: true
  - matchers: ['job=~"roster.*"']
    receiver: roster-slack
    mute_time_intervals: [weekends]
`

func TestRoutesAgreeWithAmtool(t *testing.T) {
	amtool, err := exec.LookPath("amtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("amtool (Debian prometheus-alertmanager) is not installed; scripts/test.sh installs it")
		}
		t.Skip("amtool not installed")
	}
	var rc RouteConfig
	if err := yaml.Unmarshal([]byte(amRoute), &rc); err != nil {
		t.Fatal(err)
	}
	var full struct {
		Route     yaml.Node `yaml:"route"`
		Receivers []map[string]string
	}
	var tree yaml.Node
	if err := yaml.Unmarshal([]byte(amRoute), &tree); err != nil {
		t.Fatal(err)
	}
	full.Route = *tree.Content[0]
	for _, r := range []string{"product-slack", "district-pager", "district-escalation", "oncall-pager", "platform-pager",
		"roster-pager", "platform-slack", "quoted", "others-slack", "roster-slack"} {
		full.Receivers = append(full.Receivers, map[string]string{"name": r})
	}
	doc, err := yaml.Marshal(map[string]any{"route": &full.Route, "receivers": full.Receivers,
		"time_intervals": []any{map[string]any{"name": "weekends", "time_intervals": []any{map[string]any{"weekdays": []string{"saturday", "sunday"}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "alertmanager.yml")
	if err := os.WriteFile(file, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	root := compileTree(t, amRoute)

	var sets []map[string]string
	for _, sev := range []string{"critical", "warning", "info"} {
		for _, tenant := range []string{"miami-dade", "broward", "palm-beach"} {
			for _, name := range []string{"deadline-missed", "predicted-breach", "source-down"} {
				for _, job := range []string{"roster-import", "grades"} {
					sets = append(sets, map[string]string{"severity": sev, "tenant": tenant, "alertname": name, "job": job})
				}
			}
		}
	}
	sets = append(sets,
		map[string]string{},
		map[string]string{"alertname": "DiskFull", "team": "platform", "service": "sftp"},
		map[string]string{"alertname": "DiskFull", "team": "platform", "service": "sftp-2"},
		map[string]string{"alertname": "RedisMemory", "team": "platform", "service": "redis", "severity": "critical"},
		map[string]string{"alertname": "x", "summary": "late, again"},
		map[string]string{"alertname": "x", "summary": "late"},
		map[string]string{"severity": "critical", "tenant": "miami-dade-2", "alertname": "stalled", "job": "roster-import"},
		map[string]string{"severity": "critical", "alertname": "failed", "job": "roster-import"},
		map[string]string{"severity": "critical", "alertname": "stalled", "job": "roster-import"},
		map[string]string{"severity": "warning", "job": "roster-nightly"},
		map[string]string{"severity": "warning", "tenant": "miami-dade", "job": "roster-nightly"},
	)
	for _, labels := range sets {
		keys := make([]string, 0, len(labels))
		for k := range labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		args := []string{"config", "routes", "test", "--config.file=" + file}
		for _, k := range keys {
			args = append(args, fmt.Sprintf("%s=%q", k, labels[k]))
		}
		cmd := exec.Command(amtool, args...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("amtool %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		want := strings.TrimSpace(string(out))
		if got := receivers(root.Match(labels)); got != want {
			t.Errorf("%v: etlhub routes to %q, amtool to %q", labels, got, want)
		}
	}
	t.Logf("%d label sets routed as amtool routes them", len(sets))
}
