package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/etlhub/etlhub/model"
)

// TestSinceReadsEachOnce: ObservationsSince and MeasurementsSince hand over
// every row once, in at order, when later ids carry earlier times (a push of
// late observations after newer ones): paged by id while ordered by at,
// the second page skipped the first-stored rows and repeated late ones.
func TestSinceReadsEachOnce(t *testing.T) {
	for name, open := range backends {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			ctx := context.Background()
			base := ts("2026-09-01T06:00:00Z")
			// 6000 observations at 06:00 onwards first, then 6000 at 05:00
			// onwards (stored later, higher ids), a page being 5000.
			const n = 6000
			for _, off := range []time.Duration{0, -time.Hour} {
				batch := make([]model.Observation, n)
				for i := range batch {
					at := base.Add(off + time.Duration(i)*time.Second)
					o := obs(at.Format(time.RFC3339), "dade", fmt.Sprintf("r%d%s", i, off), model.StateRunning, int64(i), 1e6)
					batch[i] = o
				}
				if _, err := s.Ingest(ctx, batch); err != nil {
					t.Fatal(err)
				}
			}
			seen := map[string]int{}
			var last time.Time
			err := s.ObservationsSince(ctx, base.Add(-2*time.Hour), func(page []model.Observation) error {
				for _, o := range page {
					if o.At.Before(last) {
						return fmt.Errorf("%s at %s after %s: not in at order", o.RunID, o.At, last)
					}
					last = o.At
					seen[o.RunID]++
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(seen) != 2*n {
				t.Errorf("ObservationsSince: %d distinct observations, want %d", len(seen), 2*n)
			}
			for id, c := range seen {
				if c != 1 {
					t.Errorf("ObservationsSince: %s handed over %d times", id, c)
					break
				}
			}

			// Measurements: 1500 from 06:00, then 1500 from 05:00, pages of 1000.
			const m = 1500
			for _, off := range []time.Duration{0, -time.Hour} {
				ms := make([]model.Measurement, m)
				for i := range ms {
					ms[i] = model.Measurement{At: base.Add(off + time.Duration(i)*time.Second), Source: "probe",
						Subject: "redis:main", Kind: model.KindRedis, Up: true,
						Values: map[string]float64{"latency_ms": float64(i)}}
				}
				if err := s.SaveMeasurements(ctx, ms); err != nil {
					t.Fatal(err)
				}
			}
			ats := map[time.Time]int{}
			last = time.Time{}
			for _, subject := range []string{"", "redis:main"} {
				clear(ats)
				err = s.MeasurementsSince(ctx, base.Add(-2*time.Hour), subject, func(page []model.Measurement) error {
					for _, x := range page {
						if x.At.Before(last) {
							return fmt.Errorf("measurement at %s after %s: not in at order", x.At, last)
						}
						last = x.At
						ats[x.At]++
					}
					return nil
				})
				last = time.Time{}
				if err != nil {
					t.Fatal(err)
				}
				if len(ats) != 2*m {
					t.Errorf("MeasurementsSince(%q): %d distinct measurements, want %d", subject, len(ats), 2*m)
				}
				for at, c := range ats {
					if c != 1 {
						t.Errorf("MeasurementsSince(%q): the one at %s handed over %d times", subject, at, c)
						break
					}
				}
			}
		})
	}
}
