package collectors

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/model"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestAggregateSumoRecordsAndMessages(t *testing.T) {
	s := LogSearchConfig{Name: "errs", Kind: model.LogErrors, Window: 15 * time.Minute}
	var p config.Problems
	lc := LogsConfig{Searches: []LogSearchConfig{s}}
	lc.Validate(&p, "logs")
	s = lc.Searches[0]
	s.Source = "file"
	now := time.Date(2026, 9, 1, 5, 15, 0, 0, time.UTC)
	records := []map[string]string{
		{"tenant": "dade", "job": "roster-import", "msg": "mongo: server selection timeout", "_count": "20"},
		{"tenant": "dade", "job": "roster-import", "msg": "redis: i/o timeout", "_count": "7"},
		{"tenant": "broward", "job": "roster-import", "msg": "sftp: EOF", "_count": "1"},
		{"tenant": "", "job": "x", "_count": "99"}, // no tenant: not attributable
	}
	sigs := aggregateLogs(s, records, now, nil)
	if len(sigs) != 2 || sigs[1].Tenant != "dade" || sigs[1].Count != 27 || sigs[1].Examples[0] != (model.LogCount{Text: "mongo: server selection timeout", N: 20}) {
		t.Fatalf("signals = %+v", sigs)
	}
	msgs := []map[string]string{
		{"tenant": "dade", "job": "roster-import", "msg": "x", "_messagetime": "1788239400000"},
		{"tenant": "dade", "job": "roster-import", "msg": "x", "_messagetime": "1788239700000"},
	}
	sigs = aggregateLogs(s, msgs, now, nil)
	if sigs[0].Count != 2 || !sigs[0].LastSeen.Equal(time.UnixMilli(1788239700000)) {
		t.Fatalf("messages = %+v", sigs)
	}
	s.Kind = model.LogActivity
	if sigs = aggregateLogs(s, nil, now, []model.JobKey{{Tenant: "quiet", Job: "roster-import"}}); len(sigs) != 1 || sigs[0].Tenant != "quiet" || sigs[0].Count != 0 {
		t.Fatalf("an activity search gives silent jobs no signal: %+v", sigs)
	}
}

// TestLogSearchesInTheRunner: file log searches are sources of the one
// runner: a search that reads gives signals and a healthy logs:NAME, one
// that fails is unhealthy, counted in the metrics, and backs off.
func TestLogSearchesInTheRunner(t *testing.T) {
	dir := t.TempDir()
	now := time.Now().UTC().Truncate(time.Second)
	var lines []string
	for i := 0; i < 12; i++ {
		lines = append(lines, fmt.Sprintf(`{"time":%q,"level":"ERROR","msg":"mongo: server selection timeout","tenant":"dade","job":"roster-import","run_id":"r1"}`,
			now.Add(-time.Duration(i)*time.Minute).Format(time.RFC3339)))
	}
	lines = append(lines, fmt.Sprintf(`{"time":%q,"level":"INFO","msg":"loading","tenant":"dade","job":"roster-import"}`, now.Format(time.RFC3339)),
		fmt.Sprintf(`{"time":%q,"level":"ERROR","msg":"old","tenant":"dade","job":"roster-import"}`, now.Add(-time.Hour).Format(time.RFC3339)),
		"not json at all")
	if err := os.WriteFile(filepath.Join(dir, "importer.jsonl"), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	logs := LogsConfig{Searches: []LogSearchConfig{
		{Name: "importer-errors", Source: "file", Path: dir, Kind: model.LogErrors, Match: map[string]string{"level": "error"}},
		{Name: "gone", Source: "file", Path: filepath.Join(dir, "nope"), Kind: model.LogErrors},
	}}
	var p config.Problems
	logs.Validate(&p, "logs")
	if p.Len() != 0 {
		t.Fatal(p)
	}
	sink := &memSink{}
	reg := prometheus.NewRegistry()
	r, err := NewRunner(RunnerConfig{Logs: logs}, sink, slog.New(slog.DiscardHandler), NewMetrics(reg), func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(r.Names(), ","); got != "logs:importer-errors,logs:gone" {
		t.Fatalf("names %s", got)
	}
	ctx := context.Background()
	if !r.RunOnce(ctx, "logs:importer-errors") || !r.RunOnce(ctx, "logs:gone") {
		t.Fatal("a search did not run")
	}
	if len(sink.logs) != 1 || sink.logs[0].Count != 12 || sink.logs[0].Tenant != "dade" || sink.logs[0].Search != "importer-errors" {
		t.Fatalf("signals %+v", sink.logs)
	}
	ok, bad := sink.health["logs:importer-errors"], sink.health["logs:gone"]
	if !ok.Healthy || ok.LastObservations != 12 || ok.Kind != "file" || bad.Healthy || !strings.Contains(bad.LastError, "no such file") || bad.NextAttemptAt == nil {
		t.Fatalf("health: %+v / %+v", ok, bad)
	}
	// Backing off: the failing search does not run again before its next attempt.
	if r.RunOnce(ctx, "logs:gone") {
		t.Fatal("a failing search ran again at once: no backoff")
	}
	if d := bad.NextAttemptAt.Sub(now); d < 30*time.Second || d > 90*time.Second {
		t.Fatalf("first backoff %v, want about the base (1m)", d)
	}
	if v := testutil.ToFloat64(r.metrics.up.WithLabelValues("logs:gone")); v != 0 {
		t.Fatalf("etlhub_source_up{source=logs:gone} = %v", v)
	}
	if v := testutil.ToFloat64(r.metrics.runs.WithLabelValues("logs:gone", "error")); v != 1 {
		t.Fatalf("error runs of logs:gone = %v", v)
	}
	if v := testutil.ToFloat64(r.metrics.up.WithLabelValues("logs:importer-errors")); v != 1 {
		t.Fatalf("etlhub_source_up{source=logs:importer-errors} = %v", v)
	}
}

func TestLogSearchConfigProblems(t *testing.T) {
	l := LogsConfig{Searches: []LogSearchConfig{
		{Name: "s", Source: "sumologic", Query: "error", Kind: model.LogErrors},
		{Name: "f", Source: "file", Path: "/x", Kind: "both", Timeout: time.Hour, Backoff: BackoffConfig{Base: time.Hour, Max: time.Minute}},
	}}
	var p config.Problems
	l.Validate(&p, "logs")
	got := fmt.Sprint(p.Err("etlhub.yaml"))
	for _, want := range []string{"logs.searches[0].source", "logs.searches[1].kind", "logs.searches[1].timeout", "logs.searches[1].backoff.max"} {
		if !strings.Contains(got, want) {
			t.Errorf("no problem at %s in %s", want, got)
		}
	}
}
