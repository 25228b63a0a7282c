package app

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
	"github.com/etlhub/etlhub/rules"
	"github.com/etlhub/etlhub/store"
)

func TestAggregateSumoRecordsAndMessages(t *testing.T) {
	s := LogSearchConfig{Name: "errs", Kind: rules.LogErrors, Window: 15 * time.Minute}
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
	if len(sigs) != 2 || sigs[1].Tenant != "dade" || sigs[1].Count != 27 || sigs[1].Examples[0] != (rules.Count{Text: "mongo: server selection timeout", N: 20}) {
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
	s.Kind = rules.LogActivity
	spec := model.JobSpec{Tenant: "quiet", Job: "roster-import"}
	if sigs = aggregateLogs(s, nil, now, []model.JobSpec{spec}); len(sigs) != 1 || sigs[0].Tenant != "quiet" || sigs[0].Count != 0 {
		t.Fatalf("an activity search gives silent jobs no signal: %+v", sigs)
	}
}

// TestFileLogSearchFeedsTheRules reads the importer's JSON logs from a
// directory and finds the spike; a missing directory marks the search unhealthy.
func TestFileLogSearchFeedsTheRules(t *testing.T) {
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
	os.WriteFile(filepath.Join(dir, "importer.jsonl"), []byte(strings.Join(lines, "\n")+"\n"), 0o644)

	spec := model.JobSpec{Tenant: "dade", Job: "roster-import", Timezone: "UTC", Schedule: "0 2 * * *", Deadline: "08:00",
		StaleAfter: model.Duration(20 * time.Minute)}
	spec.Compile()
	cfg := &Config{Jobs: []model.JobSpec{spec}, Logs: LogsConfig{Searches: []LogSearchConfig{
		{Name: "importer-errors", Source: "file", Path: dir, Kind: rules.LogErrors, Match: map[string]string{"level": "error"}},
		{Name: "gone", Source: "file", Path: filepath.Join(dir, "nope"), Kind: rules.LogErrors},
	}}}
	var p config.Problems
	cfg.Logs.Validate(&p, "logs")
	if p.Len() != 0 {
		t.Fatal(p)
	}
	st, err := store.Open(context.Background(), store.Config{Driver: "sqlite", Path: filepath.Join(t.TempDir(), "h.db")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	engine := rules.NewEngine(cfg.Jobs, rules.DefaultParams(), nil)
	l := &logSearches{cfg: cfg, st: st, engine: engine, log: slog.New(slog.DiscardHandler)}
	l.run(context.Background(), cfg.Logs.Searches[0], now)
	l.run(context.Background(), cfg.Logs.Searches[1], now)
	tr, _ := engine.Tick(now)
	var spike *model.Transition
	for i := range tr {
		if tr[i].Alert.Rule == rules.RuleLogErrorSpike {
			spike = &tr[i]
		}
	}
	if spike == nil || !strings.Contains(spike.Alert.Summary, `12 error lines in the last 15m0s (threshold 10`) {
		t.Fatalf("no spike from the file logs: %+v", tr)
	}
	ok, _ := st.Source(context.Background(), "logs:importer-errors")
	bad, _ := st.Source(context.Background(), "logs:gone")
	if !ok.Healthy || ok.LastObservations != 12 || bad.Healthy || !strings.Contains(bad.LastError, "no such file") {
		t.Fatalf("health: %+v / %+v", ok, bad)
	}
}
