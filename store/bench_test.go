package store

import (
	"context"
	"fmt"
	"slices"
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

// BenchmarkIngestStepsPG times each statement of one PostgreSQL ingest
// transaction (fsync on, the benchmark's own server), 1000 heartbeats a
// batch over 10,000 runs that exist, one caller (no group): where the
// store's time per observation goes (BENCHMARKS.md, "Replicas").
//
//	go test -run '^$' -bench IngestStepsPG -benchtime 50x ./store/
func BenchmarkIngestStepsPG(b *testing.B) {
	pg := testsrv.NewPostgres(b, true)
	s, err := Open(context.Background(), Config{Driver: "postgres", DSN: config.Secret(pg.DSN(b))}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	ctx := context.Background()
	heartbeats := func(seq int) []model.Observation {
		out := make([]model.Observation, 1000)
		now := time.Now().UTC()
		for i := range out {
			n := seq*1000 + i
			o := obs(now.Format(time.RFC3339), fmt.Sprintf("t%05d", n%10000), fmt.Sprintf("t%05d-r", n%10000), model.StateRunning, int64(n), 1e8)
			o.At, o.UpdatedAt = now, &now
			out[i] = o
		}
		return out
	}
	for i := 0; i < 10; i++ {
		if _, err := s.Ingest(ctx, heartbeats(i)); err != nil {
			b.Fatal(err)
		}
	}
	var steps [4]time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		all := heartbeats(10 + i)
		rows := make([]observationRow, len(all))
		keys := make([]RunKey, len(all))
		for j := range all {
			rows[j], keys[j] = toObservationRow(&all[j]), keyOf(&all[j])
		}
		slices.SortFunc(keys, compareRunKeys)
		t0 := time.Now()
		tx := s.db.WithContext(ctx).Begin()
		if _, _, err := insertObservationsPG(ctx, tx, rows); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		runs, err := loadRunsPG(ctx, tx, keys)
		if err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		for j := range all {
			runs[keyOf(&all[j])].Apply(&all[j])
		}
		upd := make([]runRow, len(keys))
		for j, k := range keys {
			upd[j] = toRunRow(runs[k])
		}
		if err := upsertRunsPG(ctx, tx, upd); err != nil {
			b.Fatal(err)
		}
		t3 := time.Now()
		if err := tx.Commit().Error; err != nil {
			b.Fatal(err)
		}
		for j, d := range []time.Duration{t1.Sub(t0), t2.Sub(t1), t3.Sub(t2), time.Since(t3)} {
			steps[j] += d
		}
	}
	for j, name := range []string{"insert-obs-ms", "lock-runs-ms", "upsert-runs-ms", "commit-ms"} {
		b.ReportMetric(float64(steps[j].Microseconds())/1000/float64(b.N), name)
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "obs/s")
}
