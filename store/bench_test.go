package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/internal/testsrv"
	"github.com/etlhub/etlhub/model"
)

// BenchmarkIngest measures push ingest into each backend in batches of 1000
// observations (100 runs progressing by 10 observations each per batch).
//
//	go test -run '^$' -bench Ingest -benchtime 50x ./store/
func BenchmarkIngest(b *testing.B) {
	for _, name := range []string{"sqlite", "postgres"} {
		b.Run(name, func(b *testing.B) {
			s := benchStore(b, name)
			ctx := context.Background()
			base := time.Date(2026, 9, 1, 4, 0, 0, 0, time.UTC)
			started := base
			batch := make([]model.Observation, 1000)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for j := range batch {
					run := j % 100
					at := base.Add(time.Duration(i*10+j/100) * time.Second)
					upd := at
					batch[j] = model.Observation{
						At: at, RunStatus: model.RunStatus{
							Source: "bench", Tenant: fmt.Sprintf("t%03d", run), Job: "roster-import",
							RunID: fmt.Sprintf("t%03d/roster-import/%d", run, i/50), State: model.StateRunning, Stage: "loading",
							StartedAt: &started, UpdatedAt: &upd, RowsDone: int64(i*10 + j/100), RowsTotal: 1 << 30,
						},
					}
				}
				res, err := s.Ingest(ctx, batch)
				if err != nil {
					b.Fatal(err)
				}
				if res.Inserted != len(batch) {
					b.Fatalf("inserted %d of %d", res.Inserted, len(batch))
				}
			}
			b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "obs/s")
		})
	}
}

func benchStore(b *testing.B, name string) *Store {
	b.Helper()
	var c Config
	switch name {
	case "sqlite":
		c = Config{Driver: "sqlite", Path: b.TempDir() + "/bench.db"}
	default:
		c = Config{Driver: "postgres", DSN: config.Secret(testsrv.Postgres(b))}
	}
	s, err := Open(context.Background(), c, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}
