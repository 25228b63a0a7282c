package app

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/etlhub/etlhub/model"
	"github.com/etlhub/etlhub/rules"
)

// TestLogSearchesRunAsSources: the hub's log searches run in the one
// collectors runner: a file search's error lines raise log-error-spike, and
// a failing search shows as an unhealthy source in /api/v1/sources and in
// /metrics, backing off like any source.
func TestLogSearchesRunAsSources(t *testing.T) {
	dir := t.TempDir()
	now := time.Now().UTC().Truncate(time.Second)
	line := fmt.Sprintf(`{"time":%q,"level":"ERROR","msg":"mongo: server selection timeout","tenant":"dade","job":"roster-import"}`+"\n",
		now.Add(-time.Minute).Format(time.RFC3339))
	if err := os.WriteFile(filepath.Join(dir, "importer.jsonl"), []byte(strings.Repeat(line, 12)), 0o644); err != nil {
		t.Fatal(err)
	}
	doc := base + "store: {driver: sqlite, path: " + filepath.Join(t.TempDir(), "hub.db") + "}\n" +
		"logs:\n  searches:\n" +
		"    - {name: importer-errors, source: file, path: " + dir + ", kind: errors, match: {level: error}}\n" +
		"    - {name: gone, source: file, path: " + filepath.Join(dir, "nope") + ", kind: errors, down_after: 1m}\n"
	cfg, probs := parse(t, doc)
	if len(probs) != 0 {
		t.Fatalf("%+v", probs)
	}
	ctx := context.Background()
	h, err := New(ctx, cfg, Options{Now: func() time.Time { return now }, Stepped: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Start(ctx); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h.Handler)
	t.Cleanup(func() { srv.Close(); h.Stop() })
	get := func(path string) string {
		code, b := adminCall(t, "GET", srv.URL+path)
		if code != 200 {
			t.Fatalf("%s: %d %s", path, code, b)
		}
		return b
	}
	// The runner runs every search once at start.
	waitFor(t, "both searches ran", 10*time.Second, func() bool {
		ok, err1 := h.Store.Source(ctx, "logs:importer-errors")
		bad, err2 := h.Store.Source(ctx, "logs:gone")
		return err1 == nil && err2 == nil && ok.Healthy && bad.ConsecutiveFailures == 1
	})
	bad, _ := h.Store.Source(ctx, "logs:gone")
	if bad.NextAttemptAt == nil || !bad.NextAttemptAt.After(now) || !strings.Contains(bad.LastError, "no such file") {
		t.Fatalf("the failing search does not back off: %+v", bad)
	}
	src := get("/api/v1/sources")
	if !strings.Contains(src, `"logs:gone"`) || !strings.Contains(src, `"logs:importer-errors"`) {
		t.Fatalf("/api/v1/sources: %s", src)
	}
	metrics := get("/metrics")
	for _, want := range []string{`etlhub_source_up{source="logs:gone"} 0`, `etlhub_source_up{source="logs:importer-errors"} 1`,
		`etlhub_collector_runs_total{result="error",source="logs:gone"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics has no %s", want)
		}
	}
	trans, err := h.Alerting.StepTransitions(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	var spike *model.Transition
	for i := range trans {
		if trans[i].Alert.Rule == rules.RuleLogErrorSpike {
			spike = &trans[i]
		}
	}
	if spike == nil || !strings.Contains(spike.Alert.Summary, `12 error lines in the last 15m0s (threshold 10`) {
		t.Fatalf("no spike from the file logs: %+v", trans)
	}
	// Failing past down_after, the search is a source that is down.
	later := now.Add(2 * time.Minute)
	trans, _ = h.Alerting.StepTransitions(ctx, later)
	trans2, _ := h.Alerting.StepTransitions(ctx, later.Add(10*time.Minute))
	var down bool
	for _, tr := range append(trans, trans2...) {
		if tr.Alert.Rule == rules.RuleSourceDown && strings.Contains(tr.Alert.Summary, "logs:gone") {
			down = true
		}
	}
	if !down {
		t.Fatalf("no source-down for the failing search: %+v %+v", trans, trans2)
	}
}
