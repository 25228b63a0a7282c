package store

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/etlhub/etlhub/model"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// IngestResult counts what one Ingest call did.
type IngestResult struct {
	Inserted   int // new observations stored
	Duplicates int // unchanged repeats, not stored again
	// Runs are the runs these observations touched, as they are now.
	Runs []model.Run
	// Xact is, on PostgreSQL, the transaction that stored them when it
	// held no other owner's observations (IngestFor), else 0: a reader
	// that hands on what it stores may skip it when it follows the table
	// (ObservationsCommitted).
	Xact int64
}

type ownerKey struct{}

// IngestFor marks the Ingest calls of ctx as owner's (a pointer): concurrent calls of
// different owners may share a transaction (group commit), whose Xact is
// then given to none of them.
func IngestFor(ctx context.Context, owner any) context.Context {
	return context.WithValue(ctx, ownerKey{}, owner)
}

// maxBatch bounds the rows of one INSERT; both SQLite's and PostgreSQL's
// parameter limits stay far away. The pure-Go SQLite driver binds parameters
// in time quadratic in their number, so builds without cgo use smaller
// batches (sqlite_purego.go).
var maxBatch = 500

// Ingest stores validated observations and folds them into their runs, in one
// transaction: either all of a call lands or none of it. On PostgreSQL
// concurrent calls share a transaction (group.go), with array statements
// (ingest_pg.go); SQLite, one writer, takes gorm's batches.
func (s *Store) Ingest(ctx context.Context, obs []model.Observation) (IngestResult, error) {
	var res IngestResult
	if len(obs) == 0 {
		return res, nil
	}
	if s.dialect == "postgres" {
		return s.ingestGrouped(ctx, obs)
	}
	rows := make([]observationRow, len(obs))
	// A run is its tenant's and job's: the same run_id under another tenant
	// or job is another run, whatever a collector sends.
	keys := make([]RunKey, 0, 16)
	ids := make([]string, 0, 16)
	seen := map[RunKey]bool{}
	seenID := map[string]bool{}
	for i := range obs {
		rows[i] = toObservationRow(&obs[i])
		k := keyOf(&obs[i])
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
		if !seenID[k.RunID] {
			seenID[k.RunID] = true
			ids = append(ids, k.RunID)
		}
	}
	err := s.write(ctx, "ingest", func(tx *gorm.DB) error {
		for start := 0; start < len(rows); start += maxBatch {
			end := min(start+maxBatch, len(rows))
			r := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(rows[start:end])
			if r.Error != nil {
				return fmt.Errorf("insert observations: %w", r.Error)
			}
			res.Inserted += int(r.RowsAffected)
		}
		runs, err := loadRuns(tx, ids)
		if err != nil {
			return err
		}
		// Fold in at order so that the newest observation wins.
		order := make([]int, len(obs))
		for i := range order {
			order[i] = i
		}
		sort.SliceStable(order, func(a, b int) bool { return obs[order[a]].At.Before(obs[order[b]].At) })
		changed := map[RunKey]bool{}
		for _, i := range order {
			k := keyOf(&obs[i])
			r := runs[k]
			if r == nil {
				r = &model.Run{}
				runs[k] = r
			}
			if r.Apply(&obs[i]) {
				changed[k] = true
			}
		}
		upd := make([]runRow, 0, len(changed))
		for _, k := range keys {
			if changed[k] {
				upd = append(upd, toRunRow(runs[k]))
			}
			res.Runs = append(res.Runs, *runs[k])
		}
		for start := 0; start < len(upd); start += maxBatch {
			end := min(start+maxBatch, len(upd))
			r := tx.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "tenant"}, {Name: "job"}, {Name: "run_id"}},
				UpdateAll: true}).Create(upd[start:end])
			if r.Error != nil {
				return fmt.Errorf("upsert runs: %w", r.Error)
			}
		}
		return nil
	})
	if err != nil {
		return IngestResult{}, err
	}
	s.changes.Add(1)
	res.Duplicates = len(obs) - res.Inserted
	return res, nil
}

// RunKey names one run: its tenant, job and run_id.
type RunKey struct {
	Tenant string
	Job    string
	RunID  string
}

func keyOf(o *model.Observation) RunKey { return RunKey{o.Tenant, o.Job, o.RunID} }

// loadRuns reads the runs with these ids, of every tenant and job.
func loadRuns(tx *gorm.DB, ids []string) (map[RunKey]*model.Run, error) {
	out := make(map[RunKey]*model.Run, len(ids))
	for start := 0; start < len(ids); start += maxBatch {
		end := min(start+maxBatch, len(ids))
		var rows []runRow
		if err := tx.Where("run_id IN ?", ids[start:end]).Find(&rows).Error; err != nil {
			return nil, fmt.Errorf("load runs: %w", err)
		}
		for i := range rows {
			r := rows[i].run()
			out[RunKey{r.Tenant, r.Job, r.RunID}] = &r
		}
	}
	return out, nil
}

// Prune deletes observations observed before obsBefore and runs last seen
// before runsBefore; it reports how many of each went.
func (s *Store) Prune(ctx context.Context, obsBefore, runsBefore time.Time) (obsN, runsN int64, err error) {
	err = s.write(ctx, "prune", func(tx *gorm.DB) error {
		r := tx.Where("at < ?", obsBefore.UTC()).Delete(&observationRow{})
		if r.Error != nil {
			return r.Error
		}
		obsN = r.RowsAffected
		r = tx.Where("last_seen_at < ?", runsBefore.UTC()).Delete(&runRow{})
		runsN = r.RowsAffected
		return r.Error
	})
	s.changes.Add(1)
	return obsN, runsN, err
}
