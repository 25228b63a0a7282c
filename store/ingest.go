package store

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/etlhub/etlhub/internal/status"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// IngestResult counts what one Ingest call did.
type IngestResult struct {
	Inserted   int // new observations stored
	Duplicates int // unchanged repeats, not stored again
	// Runs are the runs these observations touched, as they are now.
	Runs []status.Run
}

// maxBatch bounds the rows of one INSERT; both SQLite's and PostgreSQL's
// parameter limits stay far away.
const maxBatch = 500

// Ingest stores validated observations and folds them into their runs, in one
// transaction: either all of a call lands or none of it.
func (s *Store) Ingest(ctx context.Context, obs []status.Observation) (IngestResult, error) {
	var res IngestResult
	if len(obs) == 0 {
		return res, nil
	}
	rows := make([]observationRow, len(obs))
	ids := make([]string, 0, 16)
	seen := map[string]bool{}
	for i := range obs {
		rows[i] = toObservationRow(&obs[i])
		if !seen[obs[i].RunID] {
			seen[obs[i].RunID] = true
			ids = append(ids, obs[i].RunID)
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
		changed := map[string]bool{}
		for _, i := range order {
			r := runs[obs[i].RunID]
			if r == nil {
				r = &status.Run{}
				runs[obs[i].RunID] = r
			}
			if r.Apply(&obs[i]) {
				changed[obs[i].RunID] = true
			}
		}
		upd := make([]runRow, 0, len(changed))
		for _, id := range ids {
			if changed[id] {
				upd = append(upd, toRunRow(runs[id]))
			}
			res.Runs = append(res.Runs, *runs[id])
		}
		for start := 0; start < len(upd); start += maxBatch {
			end := min(start+maxBatch, len(upd))
			r := tx.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "run_id"}}, UpdateAll: true}).Create(upd[start:end])
			if r.Error != nil {
				return fmt.Errorf("upsert runs: %w", r.Error)
			}
		}
		return nil
	})
	if err != nil {
		return IngestResult{}, err
	}
	res.Duplicates = len(obs) - res.Inserted
	return res, nil
}

func loadRuns(tx *gorm.DB, ids []string) (map[string]*status.Run, error) {
	out := make(map[string]*status.Run, len(ids))
	for start := 0; start < len(ids); start += maxBatch {
		end := min(start+maxBatch, len(ids))
		var rows []runRow
		if err := tx.Where("run_id IN ?", ids[start:end]).Find(&rows).Error; err != nil {
			return nil, fmt.Errorf("load runs: %w", err)
		}
		for i := range rows {
			r := rows[i].run()
			out[r.RunID] = &r
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
	return obsN, runsN, err
}
