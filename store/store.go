// Package store keeps observations, runs and source health in SQL through
// gorm: SQLite by default, PostgreSQL through a DSN, the same code for both.
// The store is the only shared state of the hub; every part can restart and
// pick up where it was.
package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
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
}

// Open connects, tunes and migrates.
func Open(ctx context.Context, c Config, m *Metrics) (*Store, error) {
	var dial gorm.Dialector
	switch c.Driver {
	case "", "sqlite":
		if c.Path == "" {
			return nil, errors.New("store: sqlite path is empty")
		}
		if err := prepareSQLiteFile(c.Path); err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		bt := c.BusyTimeout
		if bt == 0 {
			bt = 5 * time.Second
		}
		dsn := fmt.Sprintf("file:%s?_journal_mode=WAL&_busy_timeout=%d&_foreign_keys=on&_synchronous=NORMAL&_txlock=immediate",
			c.Path, bt.Milliseconds())
		dial = sqlite.Open(dsn)
	case "postgres":
		dial = postgres.Open(c.DSN.Value())
	default:
		return nil, fmt.Errorf("store: unknown driver %q", c.Driver)
	}
	db, err := gorm.Open(dial, &gorm.Config{
		Logger:                 logger.Discard,
		SkipDefaultTransaction: true,
		PrepareStmt:            false,
		NowFunc:                func() time.Time { return time.Now().UTC() },
	})
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %s", c.Driver, redact(err.Error(), c.DSN.Value()))
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	s := &Store{db: db, dialect: db.Dialector.Name(), metrics: m}
	if s.dialect == "sqlite" {
		// WAL lets readers run beside the one writer.
		sqlDB.SetMaxOpenConns(4)
	} else {
		sqlDB.SetMaxOpenConns(c.MaxOpenConns)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := sqlDB.PingContext(pctx); err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("store: connect %s: %s", c.Driver, redact(err.Error(), c.DSN.Value()))
	}
	if err := s.migrate(); err != nil {
		sqlDB.Close()
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

func (s *Store) migrate() error {
	if err := s.db.AutoMigrate(allModels...); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	return nil
}

// Close releases the database.
func (s *Store) Close() error {
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
