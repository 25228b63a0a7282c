// Package store keeps observations, runs and source health in SQL through
// gorm: SQLite by default, PostgreSQL through a DSN, the same code for both.
// The store is the only shared state of the hub; every part can restart and
// pick up where it was.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/etlhub/etlhub/internal/config"
	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Config selects and tunes the database.
type Config struct {
	// Driver is "sqlite" (default) or "postgres".
	Driver string `yaml:"driver"`
	// Path is the SQLite file.
	Path string `yaml:"path"`
	// DSN is the PostgreSQL connection string, e.g. "${ETLHUB_PG_DSN}".
	DSN config.Secret `yaml:"dsn"`
	// BusyTimeout is how long SQLite waits on a lock.
	BusyTimeout time.Duration `yaml:"busy_timeout"`
	// MaxOpenConns caps PostgreSQL connections.
	MaxOpenConns int `yaml:"max_open_conns"`
}

// Validate sets defaults and checks the section.
func (c *Config) Validate(p *config.Problems, key string) {
	if c.Driver == "" {
		c.Driver = "sqlite"
	}
	if c.BusyTimeout == 0 {
		c.BusyTimeout = 5 * time.Second
	}
	if c.MaxOpenConns == 0 {
		c.MaxOpenConns = 10
	}
	switch c.Driver {
	case "sqlite":
		if c.Path == "" {
			c.Path = "etlhub.db"
		}
		if c.DSN != "" {
			p.Add(key+".dsn", "is for driver postgres; SQLite takes path")
		}
	case "postgres":
		if c.DSN == "" {
			p.Add(key+".dsn", "is required for driver postgres")
		}
		if c.Path != "" {
			p.Add(key+".path", "is for driver sqlite; PostgreSQL takes dsn")
		}
	default:
		p.Add(key+".driver", "%q is not sqlite or postgres", c.Driver)
	}
}

// Store is the hub's database.
type Store struct {
	db      *gorm.DB
	dialect string
	// writeMu makes SQLite single-writer: concurrent writers would only meet
	// SQLITE_BUSY. PostgreSQL writers run concurrently.
	writeMu sync.Mutex
	metrics *Metrics
	// lock is SQLite's one-hub-per-file lock (nil on PostgreSQL).
	lock *fileLock
	// stmts keeps SQLite's prepared statements (nil on PostgreSQL).
	stmts *stmtPool
	// fencing guards the leader's writes (lease.go).
	fencing fencing
	// group commits concurrent ingests together (group.go).
	group ingestGroup
	// cache keeps the reads of what only this process writes (cache.go).
	cache caches
	// changes counts this process's committed writes to runs (RunsVersion).
	changes atomic.Uint64
}

// Open connects, tunes and migrates. A SQLite file is the hub's alone: a
// second Open of it (in this process or another) fails with ErrLocked until
// the first store is closed.
func Open(ctx context.Context, c Config, m *Metrics) (*Store, error) {
	return open(ctx, c, m, sqliteDriver)
}

// open is Open with SQLite's database/sql driver named (tests wrap it).
func open(ctx context.Context, c Config, m *Metrics, sqliteDriver string) (s *Store, err error) {
	var dial gorm.Dialector
	var lock *fileLock
	var stmts *stmtPool
	defer func() {
		if err != nil {
			if stmts != nil {
				stmts.close()
			}
			lock.release()
		}
	}()
	switch c.Driver {
	case "", "sqlite":
		if c.Path == "" {
			return nil, errors.New("store: sqlite path is empty")
		}
		if err := prepareSQLiteFile(c.Path); err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		if lock, err = lockSQLite(c.Path); err != nil {
			return nil, err
		}
		bt := c.BusyTimeout
		if bt == 0 {
			bt = 5 * time.Second
		}
		// sqliteDriver is mattn/go-sqlite3 with cgo, the pure-Go
		// modernc.org/sqlite without (a static binary): sqlite_*.go.
		conn, err := sql.Open(sqliteDriver, sqliteDSN(c.Path, bt))
		if err != nil {
			return nil, fmt.Errorf("store: open sqlite: %w", err)
		}
		stmts = newStmtPool(conn, 256)
		dial = sqlite.Dialector{DriverName: sqliteDriver, Conn: stmts}
	case "postgres":
		dial = postgres.Open(c.DSN.Value())
	default:
		return nil, fmt.Errorf("store: unknown driver %q", c.Driver)
	}
	db, err := gorm.Open(dial, &gorm.Config{
		Logger:                 logger.Discard,
		SkipDefaultTransaction: true,
		// SQLite's statements are prepared once and kept by stmts
		// (stmtcache.go), in transactions too; pgx caches PostgreSQL's
		// on its own.
		NowFunc: func() time.Time { return time.Now().UTC() },
	})
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %s", c.Driver, redact(err.Error(), c.DSN.Value()))
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	s = &Store{db: db, dialect: db.Dialector.Name(), metrics: m, lock: lock, stmts: stmts}
	if s.dialect == "sqlite" {
		// WAL lets readers run beside the one writer.
		sqlDB.SetMaxOpenConns(4)
	} else {
		sqlDB.SetMaxOpenConns(c.MaxOpenConns)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := sqlDB.PingContext(pctx); err != nil {
		if stmts == nil {
			sqlDB.Close()
		}
		return nil, fmt.Errorf("store: connect %s: %s", c.Driver, redact(err.Error(), c.DSN.Value()))
	}
	if err := s.migrate(); err != nil {
		if stmts == nil {
			sqlDB.Close()
		}
		return nil, err
	}
	return s, nil
}

// redact removes a DSN (which may hold a password) from an error text.
func redact(msg, dsn string) string {
	if dsn == "" {
		return msg
	}
	return strings.ReplaceAll(msg, dsn, "<dsn>")
}

// schemaRow records which migrations a database has had, beyond what
// AutoMigrate does by itself (it adds tables, columns and indexes, but never
// changes a primary key).
type schemaRow struct {
	ID      int `gorm:"primaryKey;autoIncrement:false"`
	Version int `gorm:"not null"`
}

func (schemaRow) TableName() string { return "etlhub_schema" }

// schemaVersion 2: runs are keyed by (tenant, job, run_id), no longer by
// run_id alone.
const schemaVersion = 2

func (s *Store) migrate() error {
	err := s.db.Transaction(func(tx *gorm.DB) error {
		if s.dialect == "postgres" {
			// Replicas starting together migrate one after the other.
			if err := tx.Exec("SELECT pg_advisory_xact_lock(7305001)").Error; err != nil {
				return err
			}
		}
		m := tx.Migrator()
		version := 0
		if m.HasTable(&schemaRow{}) {
			var rows []schemaRow
			if err := tx.Find(&rows).Error; err != nil {
				return err
			}
			for _, r := range rows {
				version = max(version, r.Version)
			}
		}
		ownRuns := version < 2 && m.HasTable("runs")
		if ownRuns {
			if err := s.ownRunsBefore(tx); err != nil {
				return fmt.Errorf("runs by tenant and job: %w", err)
			}
		}
		if err := tx.AutoMigrate(allModels...); err != nil {
			return err
		}
		if err := s.migrateIngest(tx); err != nil {
			return fmt.Errorf("indexes for ingest: %w", err)
		}
		if err := s.migrateTail(tx); err != nil {
			return fmt.Errorf("observations by transaction: %w", err)
		}
		if ownRuns && s.dialect != "postgres" {
			if err := copyRunsV1(tx); err != nil {
				return fmt.Errorf("runs by tenant and job: %w", err)
			}
		}
		return tx.Save(&schemaRow{ID: 1, Version: schemaVersion}).Error
	})
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	return nil
}

// ownRunsBefore prepares a runs table keyed by run_id alone for the key
// (tenant, job, run_id). Every existing run keeps its row: each run_id had
// one, so no two rows meet under the new key. PostgreSQL changes the key in
// place; SQLite cannot, so the old table steps aside (its indexes dropped,
// their names are per database) and copyRunsV1 fills the new one.
func (s *Store) ownRunsBefore(tx *gorm.DB) error {
	if s.dialect == "postgres" {
		return tx.Exec("ALTER TABLE runs DROP CONSTRAINT IF EXISTS runs_pkey, ADD PRIMARY KEY (tenant, job, run_id)").Error
	}
	for _, q := range []string{
		"ALTER TABLE runs RENAME TO runs_v1",
		"DROP INDEX IF EXISTS ix_run_job",
		"DROP INDEX IF EXISTS idx_runs_state",
		"DROP INDEX IF EXISTS idx_runs_last_seen_at",
	} {
		if err := tx.Exec(q).Error; err != nil {
			return err
		}
	}
	return nil
}

// migrateIngest drops the indexes no query used, which every ingest paid
// for: observations by (tenant, job) (a run's are read by run_id), runs by
// state and by last_seen_at (read through (tenant, job, sort_at), pruned by
// a scan), and leaves room on the runs' pages for their updates.
func (s *Store) migrateIngest(tx *gorm.DB) error {
	for _, q := range []string{"DROP INDEX IF EXISTS ix_obs_job", "DROP INDEX IF EXISTS idx_runs_state", "DROP INDEX IF EXISTS idx_runs_last_seen_at"} {
		if err := tx.Exec(q).Error; err != nil {
			return err
		}
	}
	if s.dialect != "postgres" {
		return nil
	}
	// Set once: ALTER TABLE locks the table, which replicas are writing.
	var set int64
	if err := tx.Raw("SELECT count(*) FROM pg_class WHERE relname = 'runs' AND relkind = 'r' AND relnamespace = current_schema()::regnamespace AND 'fillfactor=70' = ANY(reloptions)").Scan(&set).Error; err != nil {
		return err
	}
	if set > 0 {
		return nil
	}
	return tx.Exec("ALTER TABLE runs SET (fillfactor = 70)").Error
}

func copyRunsV1(tx *gorm.DB) error {
	stmt := &gorm.Statement{DB: tx}
	if err := stmt.Parse(&runRow{}); err != nil {
		return err
	}
	cols := strings.Join(stmt.Schema.DBNames, ", ")
	if err := tx.Exec("INSERT INTO runs (" + cols + ") SELECT " + cols + " FROM runs_v1").Error; err != nil {
		return err
	}
	return tx.Exec("DROP TABLE runs_v1").Error
}

// Close releases the database (and SQLite's lock).
func (s *Store) Close() error {
	defer s.lock.release()
	if s.stmts != nil {
		return s.stmts.close()
	}
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}

// Dialect is "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.dialect }

// Ping checks that the database answers (readiness).
func (s *Store) Ping(ctx context.Context) error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	return sqlDB.PingContext(ctx)
}

// write runs fn as the one writer, inside a transaction.
func (s *Store) write(ctx context.Context, op string, fn func(tx *gorm.DB) error) error {
	defer s.metrics.observe(op, time.Now())
	if s.dialect == "sqlite" {
		s.writeMu.Lock()
		defer s.writeMu.Unlock()
	}
	err := s.db.WithContext(ctx).Transaction(fn)
	if err != nil {
		s.metrics.fail(op)
	}
	return err
}

// read runs fn with the context and timing.
func (s *Store) read(ctx context.Context, op string, fn func(db *gorm.DB) error) error {
	defer s.metrics.observe(op, time.Now())
	err := fn(s.db.WithContext(ctx))
	if err != nil {
		s.metrics.fail(op)
	}
	return err
}
