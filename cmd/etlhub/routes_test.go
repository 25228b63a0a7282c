package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const routesConfig = `auth:
  tokens:
    - {name: ic, token: "${ETLHUB_TOKEN_NOT_SET_IN_TESTS}", role: viewer}
notify:
  receivers:
    - {name: oncall, pagerduty: {routing_key: "${PD_KEY_NOT_SET_IN_TESTS}"}}
    - {name: etl-alerts, slack: {webhook_url: "https://hooks.example/x"}}
    - {name: dade, slack: {webhook_url: "https://hooks.example/y"}}
  time_intervals:
    - name: weekends
      time_intervals: [{weekdays: [saturday, sunday]}]
  route:
    receiver: etl-alerts
    routes:
      - matchers: ['severity="critical"']
        receiver: oncall
        continue: true
      - matchers: ['tenant=~"miami-.*"']
        receiver: dade
        mute_time_intervals: [weekends]
`

func TestRoutesTest(t *testing.T) {
	file := filepath.Join(t.TempDir(), "etlhub.yaml")
	if err := os.WriteFile(file, []byte(routesConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args        []string
		code        int
		out, stderr string
	}{
		{[]string{"severity=critical", "tenant=miami-dade", "--at", "2026-09-01T05:00:00Z"}, 0, "oncall,dade\n", ""},
		{[]string{"severity=warning", `tenant="broward"`}, 0, "etl-alerts\n", ""},
		{[]string{"tenant=miami-dade", "--at", "2026-09-05T05:00:00Z"}, 0, "dade\n", "note: dade (notify.route.routes[1]) is muted at 2026-09-05T05:00:00Z"},
		{[]string{"--expect", "oncall", "severity=critical", "tenant=miami-dade"}, 1, "oncall,dade\n", `the receivers are "oncall,dade", not the expected "oncall"`},
		{[]string{"--expect", "oncall", "severity=critical"}, 0, "oncall\n", ""},
		{[]string{"--tree", "severity=critical"}, 0, "oncall\nRouting tree:\n└── default-route  receiver: etl-alerts  group_by: []\n    ├── * {severity=\"critical\"}  continue: true", ""},
		{[]string{"tenant!=x"}, 2, "", `"tenant!=x" is not LABEL=VALUE`},
		{[]string{"--at", "yesterday", "a=b"}, 2, "", `--at "yesterday" is not an RFC 3339 time`},
	} {
		var out, errb bytes.Buffer
		code := run(append([]string{"routes", "test", "--config", file}, tc.args...), &out, &errb)
		if code != tc.code || !strings.HasPrefix(out.String(), tc.out) || !strings.Contains(errb.String(), tc.stderr) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit %d, %q, %q", tc.args, code, out.String(), errb.String(), tc.code, tc.out, tc.stderr)
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"routes", "show"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), `unknown routes command "show"`) {
		t.Errorf("routes show: exit %d, %q", code, errb.String())
	}
	// The older flat form routes as before.
	if code := run([]string{"routes", "test", "--config", "testdata/good.yaml", "severity=critical"}, &out, &errb); code != 0 {
		t.Errorf("flat config: exit %d, %s", code, errb.String())
	}
}
