package store

import (
	"context"
	"time"

	"github.com/etlhub/etlhub/model"
	"gorm.io/gorm"
)

// MaxJobRuns caps the runs JobRunsSince reads (30 nights with retries fit
// many times over).
const MaxJobRuns = 2000

// JobRunsSince returns a job's runs that started (or were first seen) at or
// after since, oldest first, at most MaxJobRuns (the newest ones).
func (s *Store) JobRunsSince(ctx context.Context, k model.JobKey, since time.Time) ([]model.Run, error) {
	var out []model.Run
	err := s.read(ctx, "job_runs_since", func(db *gorm.DB) error {
		var rows []runRow
		if err := db.Where("tenant = ? AND job = ? AND sort_at >= ?", k.Tenant, k.Job, since.UTC()).
			Order("sort_at DESC, run_id DESC").Limit(MaxJobRuns).Find(&rows).Error; err != nil {
			return err
		}
		out = make([]model.Run, len(rows))
		for i := range rows {
			out[len(rows)-1-i] = rows[i].run()
		}
		return nil
	})
	return out, err
}

// FirstObservationAt is when the oldest observation the store holds was
// made (ok false: it holds none). Before it the hub has no record of any
// job: a night then without a run is unknown, not missed.
func (s *Store) FirstObservationAt(ctx context.Context) (first time.Time, ok bool, err error) {
	err = s.read(ctx, "first_observation", func(db *gorm.DB) error {
		var rows []observationRow
		if err := db.Select("at").Order("at").Limit(1).Find(&rows).Error; err != nil {
			return err
		}
		if len(rows) == 1 {
			first, ok = rows[0].At.UTC(), true
		}
		return nil
	})
	return first, ok, err
}
