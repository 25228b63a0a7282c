package sim

import (
	"strings"
	"testing"
	"time"

	"github.com/etlhub/etlhub/model"
	"github.com/etlhub/etlhub/rules"
)

// TestDemoConsoleEscapesOutsideText: the demo's API takes pushes and
// Prometheus alerts, whose tenant, job and summary reach the console. A
// summary with terminal escapes (set the title, clear the screen), a line
// break that forges a line, or a bidirectional override prints as one inert
// line.
func TestDemoConsoleEscapesOutsideText(t *testing.T) {
	e := rules.NewEngine(nil, rules.DefaultParams(), nil)
	now := time.Date(2026, 9, 1, 6, 0, 0, 0, time.UTC)
	hostile := "disk full\x1b]0;owned\x07\x1b[2J\r\n06:00  critical firing forged\u009b2J \u202eevil"
	e.PostExternal([]rules.External{{Labels: map[string]string{"alertname": "DiskFull", "tenant": "polk", "severity": "critical"},
		Annotations: map[string]string{"summary": hostile}, StartsAt: now, EndsAt: now.Add(time.Hour)}}, now)
	var trans []model.Transition
	for m := 0; m <= 10 && len(trans) == 0; m++ {
		trans, _ = e.Tick(now.Add(time.Duration(m) * time.Minute))
	}
	if len(trans) == 0 || !strings.Contains(trans[0].Alert.Summary, "\x1b") {
		t.Fatalf("the posted alert did not fire with its summary: %+v", trans)
	}
	var b strings.Builder
	printTransitions(&b, "06:00 EDT", trans)
	out := b.String()
	if strings.Count(out, "\n") != len(trans) || !strings.HasSuffix(out, "\n") {
		t.Errorf("a summary broke the console into more lines: %q", out)
	}
	for _, r := range strings.TrimSuffix(out, "\n") {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) {
			t.Fatalf("the console line holds control character %U: %q", r, out)
		}
	}
	if !strings.Contains(out, "disk full") || !strings.Contains(out, "forged") {
		t.Errorf("the summary's text is lost: %q", out)
	}
}

// A real import started after midnight UTC is shown under the simulated
// night's date, not the real clock's.
func TestDemoRunsCarryTheSimulatedNightsDate(t *testing.T) {
	sim := time.Date(2026, 12, 2, 7, 5, 0, 0, time.UTC) // 02:05 New York
	if got := onDate("polk/roster-import/2026-12-03#1", sim); got != "polk/roster-import/2026-12-02#1" {
		t.Fatalf("run id on the simulated clock: %s", got)
	}
	if got := onDate("not-a-run-id", sim); got != "not-a-run-id" {
		t.Fatalf("an unexpected id was changed: %s", got)
	}
}
