package store

import (
	"context"
	"testing"
	"time"

	"github.com/etlhub/etlhub/model"
)

// The contract on every backend: history kept in order, the newest of each
// subject is its latest (a late older one does not replace it), pruning drops
// old history and subjects no longer measured.
func TestMeasurementsLatestHistoryAndPrune(t *testing.T) {
	for name, open := range backends {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			ctx := context.Background()
			t0 := ts("2026-09-01T03:00:00Z")
			m := func(at time.Time, subject string, kind model.DependencyKind, up bool, lat float64) model.Measurement {
				x := model.Measurement{At: at, Source: "probe", Subject: subject, Kind: kind, Up: up,
					Values: map[string]float64{model.ValueLatencyMs: lat}}
				if !up {
					x.Error, x.Values = "dial tcp: connection refused", nil
				}
				return x
			}
			if err := s.SaveMeasurements(ctx, []model.Measurement{
				m(t0, "redis:main", model.KindRedis, true, 1),
				m(t0.Add(time.Minute), "redis:main", model.KindRedis, true, 2),
				m(t0, "mongodb:roster", model.KindMongoDB, true, 5),
			}); err != nil {
				t.Fatal(err)
			}
			// A late, older measurement joins the history but is not the latest.
			if err := s.SaveMeasurements(ctx, []model.Measurement{
				m(t0.Add(30*time.Second), "redis:main", model.KindRedis, false, 0),
				m(t0.Add(2*time.Minute), "mongodb:roster", model.KindMongoDB, false, 0),
			}); err != nil {
				t.Fatal(err)
			}
			deps, err := s.Dependencies(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(deps) != 2 || deps[0].Subject != "mongodb:roster" || deps[0].Up || deps[0].Error == "" ||
				deps[1].Subject != "redis:main" || !deps[1].Up || deps[1].Values[model.ValueLatencyMs] != 2 {
				t.Fatalf("latest: %+v", deps)
			}
			var hist []model.Measurement
			if err := s.MeasurementsSince(ctx, t0, "redis:main", func(ms []model.Measurement) error {
				hist = append(hist, ms...)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if len(hist) != 3 || !hist[1].At.Equal(t0.Add(30*time.Second)) || hist[1].Up || hist[2].Values[model.ValueLatencyMs] != 2 {
				t.Fatalf("history: %+v", hist)
			}
			n, err := s.PruneMeasurements(ctx, t0.Add(90*time.Second))
			if err != nil || n != 4 {
				t.Fatalf("pruned %d, %v; want the 4 rows before 03:01:30", n, err)
			}
			deps, _ = s.Dependencies(ctx)
			if len(deps) != 1 || deps[0].Subject != "mongodb:roster" {
				t.Fatalf("after prune, latest: %+v (redis:main was last measured before the cut)", deps)
			}
		})
	}
}
