package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/etlhub/etlhub/model"
	"gorm.io/gorm"
)

// PostgreSQL's ingest statements take each column as one array parameter
// and unnest them: a statement of 20 parameters whatever the rows, parsed
// and planned once per connection (pgx caches it), instead of gorm's
// multi-row VALUES of 20 parameters a row, built by reflection and planned
// anew each call. Rows are read with explicit columns and scanned by hand
// for the same reason. SQLite keeps gorm's batches (ingest.go).

// pgChunk bounds the rows of one array statement (memory, not a limit of
// PostgreSQL's).
const pgChunk = 10000

// conn is the transaction's database/sql handle under gorm.
func conn(tx *gorm.DB) (interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, error) {
	c, ok := tx.Statement.ConnPool.(interface {
		ExecContext(context.Context, string, ...any) (sql.Result, error)
		QueryContext(context.Context, string, ...any) (*sql.Rows, error)
	})
	if !ok {
		return nil, fmt.Errorf("store: no database/sql connection under gorm (%T)", tx.Statement.ConnPool)
	}
	return c, nil
}

const pgInsertObservations = `INSERT INTO observations (run_id, hash, at, source, tenant, job, state, stage,
 started_at, updated_at, finished_at, rows_done, rows_total, error, files_arrived_at, attempt,
 quality_errors, quality_warnings, url)
SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::text[],
 $7::text[], $8::text[], $9::timestamptz[], $10::timestamptz[], $11::timestamptz[], $12::bigint[],
 $13::bigint[], $14::text[], $15::timestamptz[], $16::bigint[], $17::bigint[], $18::bigint[], $19::text[])
ON CONFLICT (run_id, hash) DO NOTHING
RETURNING run_id, hash, xact`

// obsKey names a stored observation: (run_id, hash) is unique.
type obsKey struct{ runID, hash string }

// insertObservationsPG stores rows, skipping those already stored, and
// returns the keys it inserted and the transaction that wrote them (0 when
// every row was stored already).
func insertObservationsPG(ctx context.Context, tx *gorm.DB, rows []observationRow) (inserted map[obsKey]bool, xact int64, err error) {
	c, err := conn(tx)
	if err != nil {
		return nil, 0, err
	}
	inserted = make(map[obsKey]bool, len(rows))
	for start := 0; start < len(rows); start += pgChunk {
		part := rows[start:min(start+pgChunk, len(rows))]
		n := len(part)
		var (
			runID, hash, source, tenant, job, state, stage, errs, url = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
			at                                                        = make([]time.Time, n)
			startedAt, updatedAt, finishedAt, filesAt                 = make([]*time.Time, n), make([]*time.Time, n), make([]*time.Time, n), make([]*time.Time, n)
			rowsDone, rowsTotal, attempt                              = make([]int64, n), make([]int64, n), make([]int64, n)
			qErrs, qWarns                                             = make([]*int64, n), make([]*int64, n)
		)
		for i := range part {
			r := &part[i]
			runID[i], hash[i], at[i], source[i], tenant[i], job[i] = r.RunID, r.Hash, r.At, r.Source, r.Tenant, r.Job
			state[i], stage[i], startedAt[i], updatedAt[i], finishedAt[i] = r.State, string(r.Stage), r.StartedAt, r.UpdatedAt, r.FinishedAt
			rowsDone[i], rowsTotal[i], errs[i], filesAt[i], attempt[i] = r.RowsDone, r.RowsTotal, r.Error, r.FilesArrivedAt, int64(r.Attempt)
			qErrs[i], qWarns[i], url[i] = r.QualityErrors, r.QualityWarnings, r.URL
		}
		rs, err := c.QueryContext(ctx, pgInsertObservations, runID, hash, at, source, tenant, job, state, stage,
			startedAt, updatedAt, finishedAt, rowsDone, rowsTotal, errs, filesAt, attempt, qErrs, qWarns, url)
		if err != nil {
			return nil, 0, fmt.Errorf("insert observations: %w", err)
		}
		for rs.Next() {
			var k obsKey
			if err := rs.Scan(&k.runID, &k.hash, &xact); err != nil {
				rs.Close()
				return nil, 0, fmt.Errorf("insert observations: %w", err)
			}
			inserted[k] = true
		}
		if err := rs.Err(); err != nil {
			return nil, 0, fmt.Errorf("insert observations: %w", err)
		}
		rs.Close()
	}
	return inserted, xact, nil
}

// runColumns are the runs table's columns in the order scanRun reads them
// and upsertRunsPG writes them.
const runColumns = `tenant, job, run_id, source, sort_at, state, stage, attempt, started_at, updated_at,
 finished_at, rows_done, rows_total, error, files_arrived_at, quality_errors, quality_warnings, url,
 first_seen_at, last_seen_at`

func scanRun(rs *sql.Rows) (runRow, error) {
	var r runRow
	var stage string
	var attempt int64
	err := rs.Scan(&r.Tenant, &r.Job, &r.RunID, &r.Source, &r.SortAt, &r.State, &stage, &attempt, &r.StartedAt, &r.UpdatedAt,
		&r.FinishedAt, &r.RowsDone, &r.RowsTotal, &r.Error, &r.FilesArrivedAt, &r.QualityErrors, &r.QualityWarnings, &r.URL,
		&r.FirstSeenAt, &r.LastSeenAt)
	r.Stage, r.Attempt = model.Stage(stage), int(attempt)
	return r, err
}

// loadRunsPG reads the runs with these keys and locks them until the
// transaction ends, in key order (keys is sorted): two ingests of the same
// run fold one after the other, the second from what the first wrote, and
// never wait on each other in a cycle.
func loadRunsPG(ctx context.Context, tx *gorm.DB, keys []RunKey) (map[RunKey]*model.Run, error) {
	c, err := conn(tx)
	if err != nil {
		return nil, err
	}
	out := make(map[RunKey]*model.Run, len(keys))
	for start := 0; start < len(keys); start += pgChunk {
		part := keys[start:min(start+pgChunk, len(keys))]
		tenants, jobs, ids := make([]string, len(part)), make([]string, len(part)), make([]string, len(part))
		for i, k := range part {
			tenants[i], jobs[i], ids[i] = k.Tenant, k.Job, k.RunID
		}
		rs, err := c.QueryContext(ctx, `SELECT `+prefixed("r.", runColumns)+` FROM runs r
 JOIN unnest($1::text[], $2::text[], $3::text[]) AS k(tenant, job, run_id)
 ON r.tenant = k.tenant AND r.job = k.job AND r.run_id = k.run_id
 ORDER BY r.tenant, r.job, r.run_id FOR UPDATE OF r`, tenants, jobs, ids)
		if err != nil {
			return nil, fmt.Errorf("load runs: %w", err)
		}
		for rs.Next() {
			row, err := scanRun(rs)
			if err != nil {
				rs.Close()
				return nil, fmt.Errorf("load runs: %w", err)
			}
			r := row.run()
			out[RunKey{r.Tenant, r.Job, r.RunID}] = &r
		}
		if err := rs.Err(); err != nil {
			return nil, fmt.Errorf("load runs: %w", err)
		}
		rs.Close()
	}
	return out, nil
}

// prefixed puts p before every column of a list.
func prefixed(p, cols string) string {
	parts := strings.Split(cols, ",")
	for i := range parts {
		parts[i] = p + strings.TrimSpace(parts[i])
	}
	return strings.Join(parts, ", ")
}

const pgRunsFromArrays = `INSERT INTO runs (` + runColumns + `)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[], $7::text[],
 $8::bigint[], $9::timestamptz[], $10::timestamptz[], $11::timestamptz[], $12::bigint[], $13::bigint[], $14::text[],
 $15::timestamptz[], $16::bigint[], $17::bigint[], $18::text[], $19::timestamptz[], $20::timestamptz[])
ON CONFLICT (tenant, job, run_id) `

var pgUpsertRuns = func() string {
	var set []string
	for _, c := range strings.Split(runColumns, ",") {
		c = strings.TrimSpace(c)
		if c != "tenant" && c != "job" && c != "run_id" {
			set = append(set, c+" = EXCLUDED."+c)
		}
	}
	return pgRunsFromArrays + `DO UPDATE SET ` + strings.Join(set, ", ")
}()

const pgInsertRuns = pgRunsFromArrays + `DO NOTHING RETURNING tenant, job, run_id`

// insertRunsPG inserts new runs (distinct keys, in key order) and returns,
// in key order, those another transaction had inserted first.
func insertRunsPG(ctx context.Context, tx *gorm.DB, rows []runRow) ([]RunKey, error) {
	got := map[RunKey]bool{}
	err := runArrays(ctx, tx, pgInsertRuns, rows, func(rs *sql.Rows) error {
		var k RunKey
		if err := rs.Scan(&k.Tenant, &k.Job, &k.RunID); err != nil {
			return err
		}
		got[k] = true
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("insert runs: %w", err)
	}
	var lost []RunKey
	for i := range rows {
		if k := (RunKey{rows[i].Tenant, rows[i].Job, rows[i].RunID}); !got[k] {
			lost = append(lost, k)
		}
	}
	return lost, nil
}

// upsertRunsPG writes runs (distinct keys, in key order).
func upsertRunsPG(ctx context.Context, tx *gorm.DB, rows []runRow) error {
	if err := runArrays(ctx, tx, pgUpsertRuns, rows, nil); err != nil {
		return fmt.Errorf("upsert runs: %w", err)
	}
	return nil
}

// runArrays runs q with rows as column arrays, a chunk at a time, handing
// each row it returns to each (nil: q returns none).
func runArrays(ctx context.Context, tx *gorm.DB, q string, rows []runRow, each func(*sql.Rows) error) error {
	c, err := conn(tx)
	if err != nil {
		return err
	}
	for start := 0; start < len(rows); start += pgChunk {
		part := rows[start:min(start+pgChunk, len(rows))]
		n := len(part)
		var (
			tenant, job, runID, source, state, stage, errs, url = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
			sortAt, first, last                                 = make([]time.Time, n), make([]time.Time, n), make([]time.Time, n)
			startedAt, updatedAt, finishedAt, filesAt           = make([]*time.Time, n), make([]*time.Time, n), make([]*time.Time, n), make([]*time.Time, n)
			attempt, rowsDone, rowsTotal, qErrs, qWarns         = make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		)
		for i := range part {
			r := &part[i]
			tenant[i], job[i], runID[i], source[i], sortAt[i], state[i], stage[i] = r.Tenant, r.Job, r.RunID, r.Source, r.SortAt, r.State, string(r.Stage)
			attempt[i], startedAt[i], updatedAt[i], finishedAt[i], rowsDone[i], rowsTotal[i] = int64(r.Attempt), r.StartedAt, r.UpdatedAt, r.FinishedAt, r.RowsDone, r.RowsTotal
			errs[i], filesAt[i], qErrs[i], qWarns[i], url[i], first[i], last[i] = r.Error, r.FilesArrivedAt, r.QualityErrors, r.QualityWarnings, r.URL, r.FirstSeenAt, r.LastSeenAt
		}
		args := []any{tenant, job, runID, source, sortAt, state, stage, attempt,
			startedAt, updatedAt, finishedAt, rowsDone, rowsTotal, errs, filesAt, qErrs, qWarns, url, first, last}
		if each == nil {
			if _, err := c.ExecContext(ctx, q, args...); err != nil {
				return err
			}
			continue
		}
		rs, err := c.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		for rs.Next() {
			if err := each(rs); err != nil {
				rs.Close()
				return err
			}
		}
		err = rs.Err()
		rs.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// observationColumns are what scanObservation reads.
const observationColumns = `id, run_id, hash, at, source, tenant, job, state, stage, started_at, updated_at,
 finished_at, rows_done, rows_total, error, files_arrived_at, attempt, quality_errors, quality_warnings, url`

func scanObservation(rs *sql.Rows, r *observationRow) error {
	var stage string
	var attempt int64
	err := rs.Scan(&r.ID, &r.RunID, &r.Hash, &r.At, &r.Source, &r.Tenant, &r.Job, &r.State, &stage, &r.StartedAt, &r.UpdatedAt,
		&r.FinishedAt, &r.RowsDone, &r.RowsTotal, &r.Error, &r.FilesArrivedAt, &attempt, &r.QualityErrors, &r.QualityWarnings, &r.URL)
	r.Stage, r.Attempt = model.Stage(stage), int(attempt)
	return err
}
