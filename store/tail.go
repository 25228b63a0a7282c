package store

import (
	"context"

	"github.com/etlhub/etlhub/model"
	"gorm.io/gorm"
)

// Replicas on PostgreSQL each take pushes, but only the leader runs the
// rules: it must see what every replica stored. Each observation row carries
// the id of the transaction that wrote it (column xact, PostgreSQL only), and
// a reader follows the table by transaction: every transaction older than
// the oldest one still running (the snapshot's xmin) has committed or rolled
// back, so rows with xact below that horizon can be read once and for all,
// none missed however long a push's transaction takes to commit.

// migrateTail adds the column and its index (PostgreSQL).
func (s *Store) migrateTail(tx *gorm.DB) error {
	if s.dialect != "postgres" {
		return nil
	}
	for _, q := range []string{
		"ALTER TABLE observations ADD COLUMN IF NOT EXISTS xact bigint NOT NULL DEFAULT (pg_current_xact_id()::text::bigint)",
		"CREATE INDEX IF NOT EXISTS ix_obs_xact ON observations (xact)",
	} {
		if err := tx.Exec(q).Error; err != nil {
			return err
		}
	}
	return nil
}

// Tails says whether ObservationsCommitted can follow the table (PostgreSQL;
// SQLite is one hub, which sees what it stores itself).
func (s *Store) Tails() bool { return s.dialect == "postgres" }

// ObservationHorizon is where a reader of ObservationsCommitted starts: what
// committed before it is already in the table (read it with
// ObservationsSince).
func (s *Store) ObservationHorizon(ctx context.Context) (int64, error) {
	var h int64
	err := s.read(ctx, "observations_horizon", func(db *gorm.DB) error {
		return db.Raw("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint").Scan(&h).Error
	})
	return h, err
}

// ObservationsCommitted hands fn, in batches in at order, the observations
// written by transactions from the horizon from up to the current one, but
// for the transactions in skip (those whose observations the reader has
// already: IngestResult.Xact), and returns the new horizon (the next
// call's from).
func (s *Store) ObservationsCommitted(ctx context.Context, from int64, skip []int64, fn func([]model.Observation) error) (int64, error) {
	to, err := s.ObservationHorizon(ctx)
	if err != nil || to <= from {
		return from, err
	}
	var own []int64
	for _, x := range skip {
		if x >= from && x < to {
			own = append(own, x)
		}
	}
	err = s.read(ctx, "observations_committed", func(db *gorm.DB) error {
		// One pass over the range (ix_obs_xact), streamed in at order and
		// scanned by hand: every replica follows the others' observations.
		q, args := `SELECT `+observationColumns+` FROM observations WHERE xact >= ? AND xact < ?`, []any{from, to}
		if len(own) > 0 {
			q, args = q+` AND xact NOT IN ?`, append(args, own)
		}
		rs, err := db.Raw(q+` ORDER BY at, id`, args...).Rows()
		if err != nil {
			return err
		}
		defer rs.Close()
		batch := make([]model.Observation, 0, 5000)
		for rs.Next() {
			var r observationRow
			if err := scanObservation(rs, &r); err != nil {
				return err
			}
			batch = append(batch, r.observation())
			if len(batch) == cap(batch) {
				if err := fn(batch); err != nil {
					return err
				}
				batch = make([]model.Observation, 0, 5000)
			}
		}
		if err := rs.Err(); err != nil {
			return err
		}
		if len(batch) > 0 {
			return fn(batch)
		}
		return nil
	})
	if err != nil {
		return from, err
	}
	return to, nil
}
