package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/etlhub/etlhub/model"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Filter narrows queries to tenants (empty: all).
type Filter struct {
	Tenants []string
}

func (f Filter) apply(db *gorm.DB) *gorm.DB {
	if len(f.Tenants) > 0 {
		db = db.Where("tenant IN ?", f.Tenants)
	}
	return db
}

// LatestRuns returns the current run of every job: the one that started last.
func (s *Store) LatestRuns(ctx context.Context, f Filter) (map[model.JobKey]model.Run, error) {
	return s.latestPerJob(ctx, "latest_runs", f, "")
}

// LastSuccess returns the last succeeded run of every job.
func (s *Store) LastSuccess(ctx context.Context, f Filter) (map[model.JobKey]model.Run, error) {
	return s.latestPerJob(ctx, "last_success", f, string(model.StateSucceeded))
}

func (s *Store) latestPerJob(ctx context.Context, op string, f Filter, state string) (map[model.JobKey]model.Run, error) {
	if s.dialect == "postgres" {
		return s.latestPerJobPG(ctx, op, f, state)
	}
	out := map[model.JobKey]model.Run{}
	err := s.read(ctx, op, func(db *gorm.DB) error {
		sub := "SELECT MAX(r2.sort_at) FROM runs r2 WHERE r2.tenant = runs.tenant AND r2.job = runs.job"
		q := f.apply(db.Model(&runRow{}))
		if state != "" {
			sub += " AND r2.state = ?"
			q = q.Where("state = ? AND sort_at = ("+sub+")", state, state)
		} else {
			q = q.Where("sort_at = (" + sub + ")")
		}
		var rows []runRow
		if err := q.Find(&rows).Error; err != nil {
			return err
		}
		for i := range rows {
			r := rows[i].run()
			k := model.JobKey{Tenant: r.Tenant, Job: r.Job}
			// Two runs may share a start time; keep the one seen last.
			if old, ok := out[k]; !ok || r.LastSeenAt.After(old.LastSeenAt) {
				out[k] = r
			}
		}
		return nil
	})
	return out, err
}

// latestPerJobPG is latestPerJob in one pass over the runs in index order
// (tenant, job, sort_at): DISTINCT ON keeps each job's first row, where a
// correlated MAX per run read the job's runs again for every run.
func (s *Store) latestPerJobPG(ctx context.Context, op string, f Filter, state string) (map[model.JobKey]model.Run, error) {
	out := map[model.JobKey]model.Run{}
	err := s.read(ctx, op, func(db *gorm.DB) error {
		var where []string
		var args []any
		if state != "" {
			where, args = append(where, "state = ?"), append(args, state)
		}
		if len(f.Tenants) > 0 {
			where, args = append(where, "tenant IN ?"), append(args, f.Tenants)
		}
		q := `SELECT DISTINCT ON (tenant, job) ` + runColumns + ` FROM runs`
		if len(where) > 0 {
			q += " WHERE " + strings.Join(where, " AND ")
		}
		// Two runs may share a start time; keep the one seen last.
		q += " ORDER BY tenant, job, sort_at DESC, last_seen_at DESC"
		rs, err := db.Raw(q, args...).Rows()
		if err != nil {
			return err
		}
		defer rs.Close()
		for rs.Next() {
			row, err := scanRun(rs)
			if err != nil {
				return err
			}
			r := row.run()
			out[model.JobKey{Tenant: r.Tenant, Job: r.Job}] = r
		}
		return rs.Err()
	})
	return out, err
}

// RunsVersion names the runs' state as far as one replica can tell: it
// changes when runs change (an ingest commits, here or on any replica; this
// process prunes). ok false: the state cannot be named now (PostgreSQL: a
// transaction older than the newest observations is still under way, and
// may commit runs that would not change the name), so nothing read now may
// be kept by it. Readers keep what they read under a version and read again
// when it changes (the board).
func (s *Store) RunsVersion(ctx context.Context) (v string, ok bool, err error) {
	local := s.changes.Load()
	if s.dialect != "postgres" {
		// One hub writes the file: its own count is the version. The
		// store is asked anyway: one that does not answer has no version
		// (the board then says since when it is stale).
		err := s.read(ctx, "runs_version", func(db *gorm.DB) error {
			var one int
			return db.Raw("SELECT 1").Scan(&one).Error
		})
		return fmt.Sprintf("%d", local), err == nil, err
	}
	// Every ingest inserts observations stamped with its transaction (or
	// changes nothing: only repeats); once no older transaction runs,
	// nothing can commit below the newest stamp.
	var row struct{ Newest, Horizon int64 }
	err = s.read(ctx, "runs_version", func(db *gorm.DB) error {
		return db.Raw("SELECT coalesce(max(xact), 0) AS newest, pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS horizon FROM observations").Scan(&row).Error
	})
	if err != nil {
		return "", false, err
	}
	return fmt.Sprintf("%d/%d", row.Newest, local), row.Horizon > row.Newest, nil
}

// Page asks for up to Limit items before a cursor.
type Page struct {
	Limit  int
	Before string // opaque cursor from a previous page; "" for the first
}

// Runs lists a job's runs, newest first, a page at a time; next is the cursor
// of the following page, "" at the end.
func (s *Store) Runs(ctx context.Context, k model.JobKey, p Page) (runs []model.Run, next string, err error) {
	if p.Limit <= 0 || p.Limit > 500 {
		p.Limit = 50
	}
	err = s.read(ctx, "runs", func(db *gorm.DB) error {
		q := db.Where("tenant = ? AND job = ?", k.Tenant, k.Job)
		if p.Before != "" {
			at, id, err := decodeCursor(p.Before)
			if err != nil {
				return err
			}
			q = q.Where("sort_at < ? OR (sort_at = ? AND run_id < ?)", at, at, id)
		}
		var rows []runRow
		if err := q.Order(clause.OrderBy{Columns: []clause.OrderByColumn{
			{Column: clause.Column{Name: "sort_at"}, Desc: true},
			{Column: clause.Column{Name: "run_id"}, Desc: true},
		}}).Limit(p.Limit + 1).Find(&rows).Error; err != nil {
			return err
		}
		if len(rows) > p.Limit {
			rows = rows[:p.Limit]
			last := rows[len(rows)-1]
			next = encodeCursor(last.SortAt, last.RunID)
		}
		for i := range rows {
			runs = append(runs, rows[i].run())
		}
		return nil
	})
	return runs, next, err
}

// RunsByID returns the runs with this run_id that f lets through: one per
// tenant and job that used it, ordered by tenant and job.
func (s *Store) RunsByID(ctx context.Context, runID string, f Filter) ([]model.Run, error) {
	var out []model.Run
	err := s.read(ctx, "runs_by_id", func(db *gorm.DB) error {
		var rows []runRow
		if err := f.apply(db.Where("run_id = ?", runID)).Order("tenant, job").Limit(100).Find(&rows).Error; err != nil {
			return err
		}
		for i := range rows {
			out = append(out, rows[i].run())
		}
		return nil
	})
	return out, err
}

// Observations returns a run's observations in at order.
func (s *Store) Observations(ctx context.Context, k RunKey, limit int) ([]model.Observation, error) {
	var out []model.Observation
	err := s.read(ctx, "observations", func(db *gorm.DB) error {
		var rows []observationRow
		if err := db.Where("run_id = ? AND tenant = ? AND job = ?", k.RunID, k.Tenant, k.Job).Order("at, id").Limit(limit).Find(&rows).Error; err != nil {
			return err
		}
		for i := range rows {
			out = append(out, rows[i].observation())
		}
		return nil
	})
	return out, err
}

// CountObservations counts stored observations (tests, metrics).
func (s *Store) CountObservations(ctx context.Context) (int64, error) {
	var n int64
	err := s.read(ctx, "count", func(db *gorm.DB) error {
		return db.Model(&observationRow{}).Count(&n).Error
	})
	return n, err
}

// SaveSource writes a source's health.
func (s *Store) SaveSource(ctx context.Context, h model.SourceHealth) error {
	row := sourceRow{
		Name: h.Name, Kind: h.Kind, Healthy: h.Healthy, LastRunAt: h.LastRunAt, LastSuccessAt: h.LastSuccessAt,
		LastErrorAt: h.LastErrorAt, LastError: h.LastError, ConsecutiveFailures: h.ConsecutiveFailures,
		FailingSince: h.FailingSince, LastDurationMs: h.LastDurationMs, LastObservations: h.LastObservations,
		NextAttemptAt: h.NextAttemptAt,
	}
	defer s.cache.sources.wrote()
	return s.write(ctx, "save_source", func(tx *gorm.DB) error {
		return tx.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "name"}}, UpdateAll: true}).Create(&row).Error
	})
}

// ErrNotFound is returned for a missing item.
var ErrNotFound = errors.New("not found")

// Source reads one source's health.
func (s *Store) Source(ctx context.Context, name string) (model.SourceHealth, error) {
	var all []model.SourceHealth
	err := s.read(ctx, "source", func(db *gorm.DB) error {
		var rows []sourceRow
		if err := db.Where("name = ?", name).Find(&rows).Error; err != nil {
			return err
		}
		all = sourceHealth(rows)
		return nil
	})
	if err != nil {
		return model.SourceHealth{}, err
	}
	if len(all) == 0 {
		return model.SourceHealth{}, ErrNotFound
	}
	return all[0], nil
}

// Sources lists every source's health by name.
// On SQLite the last read is kept until a source's health is saved (cache.go).
func (s *Store) Sources(ctx context.Context) ([]model.SourceHealth, error) {
	out, err := s.cache.sources.get(s.keeps(), time.Time{}, always, func() ([]model.SourceHealth, error) {
		var out []model.SourceHealth
		err := s.read(ctx, "sources", func(db *gorm.DB) error {
			var rows []sourceRow
			if err := db.Order("name").Find(&rows).Error; err != nil {
				return err
			}
			out = sourceHealth(rows)
			return nil
		})
		return out, err
	})
	return slices.Clone(out), err
}

func sourceHealth(rows []sourceRow) []model.SourceHealth {
	out := make([]model.SourceHealth, len(rows))
	for i, r := range rows {
		out[i] = model.SourceHealth{
			Name: r.Name, Kind: r.Kind, Healthy: r.Healthy, LastRunAt: utc(r.LastRunAt),
			LastSuccessAt: utc(r.LastSuccessAt), LastErrorAt: utc(r.LastErrorAt), LastError: r.LastError,
			ConsecutiveFailures: r.ConsecutiveFailures, FailingSince: utc(r.FailingSince),
			LastDurationMs: r.LastDurationMs, LastObservations: r.LastObservations, NextAttemptAt: utc(r.NextAttemptAt),
		}
	}
	return out
}

// RunsBetween returns the runs that started (or were first seen) in
// [since, until), oldest first, optionally for some tenants.
func (s *Store) RunsBetween(ctx context.Context, since, until time.Time, f Filter) ([]model.Run, error) {
	var out []model.Run
	err := s.read(ctx, "runs_between", func(db *gorm.DB) error {
		var rows []runRow
		q := f.apply(db.Where("sort_at >= ? AND sort_at < ?", since.UTC(), until.UTC()))
		if err := q.Order("sort_at, run_id").Find(&rows).Error; err != nil {
			return err
		}
		for i := range rows {
			out = append(out, rows[i].run())
		}
		return nil
	})
	return out, err
}

// JobKeys lists every tenant/job that has a run.
func (s *Store) JobKeys(ctx context.Context) ([]model.JobKey, error) {
	var out []model.JobKey
	err := s.read(ctx, "job_keys", func(db *gorm.DB) error {
		return db.Model(&runRow{}).Distinct("tenant", "job").Find(&out).Error
	})
	return out, err
}
