package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// ErrNotLeader refuses a fenced write: this process does not hold the
// leader's lease, or held it and was deposed (the lease's fencing token
// moved on). Only the leader changes alerts, transitions and the outbox.
var ErrNotLeader = errors.New("store: not the leader (the lease is held by another replica, or this one's was lost)")

// leaseRow is one named lease: who holds it, until when, and its fencing
// token, which grows by one on every acquisition (a renewal keeps it).
type leaseRow struct {
	Name       string    `gorm:"primaryKey;size:64"`
	Holder     string    `gorm:"size:256;not null"`
	Token      int64     `gorm:"not null"`
	ExpiresAt  time.Time `gorm:"not null"`
	RenewedAt  time.Time `gorm:"not null"`
	AcquiredAt time.Time `gorm:"not null"`
}

func (leaseRow) TableName() string { return "etlhub_leases" }

// Lease is a lease as stored.
type Lease struct {
	Name       string    `json:"name"`
	Holder     string    `json:"holder"`
	Token      int64     `json:"token"`
	ExpiresAt  time.Time `json:"expires_at"`
	RenewedAt  time.Time `json:"renewed_at"`
	AcquiredAt time.Time `json:"acquired_at"`
}

// leaseTime is how lease times are stored: UTC, whole milliseconds, so
// both backends compare them the same way.
func leaseTime(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }

// acquireSQL takes or renews a lease in one statement, a compare-and-set
// the database applies atomically: the row is inserted (token 1) or, when
// the holder is the caller or the lease has expired, updated; the token
// grows unless the caller renews a lease it still holds. No row comes back
// when another holder's lease is still valid.
const acquireSQL = `INSERT INTO etlhub_leases (name, holder, token, expires_at, renewed_at, acquired_at)
VALUES (@name, @holder, 1, @expires, @now, @now)
ON CONFLICT (name) DO UPDATE SET
  token = CASE WHEN etlhub_leases.holder = excluded.holder AND etlhub_leases.expires_at > @now
    THEN etlhub_leases.token ELSE etlhub_leases.token + 1 END,
  acquired_at = CASE WHEN etlhub_leases.holder = excluded.holder AND etlhub_leases.expires_at > @now
    THEN etlhub_leases.acquired_at ELSE excluded.acquired_at END,
  holder = excluded.holder, expires_at = excluded.expires_at, renewed_at = excluded.renewed_at
WHERE etlhub_leases.holder = excluded.holder OR etlhub_leases.expires_at <= @now
RETURNING token, acquired_at`

// AcquireLease takes the lease name for holder until now+ttl, or renews it
// when holder has it: ok says whether holder holds it now. The times are
// the caller's clock: replicas' clocks must agree (NTP) to well within the
// lease's margin.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (Lease, bool, error) {
	now = leaseTime(now)
	l := Lease{Name: name, Holder: holder, ExpiresAt: leaseTime(now.Add(ttl)), RenewedAt: now}
	var got []struct {
		Token      int64
		AcquiredAt time.Time
	}
	err := s.write(ctx, "lease_acquire", func(tx *gorm.DB) error {
		return tx.Raw(acquireSQL, sql.Named("name", name), sql.Named("holder", holder),
			sql.Named("expires", l.ExpiresAt), sql.Named("now", now)).Scan(&got).Error
	})
	if err != nil {
		return Lease{}, false, fmt.Errorf("lease %s: %w", name, err)
	}
	if len(got) == 0 {
		return Lease{}, false, nil
	}
	l.Token, l.AcquiredAt = got[0].Token, got[0].AcquiredAt.UTC()
	return l, true, nil
}

// ReleaseLease gives the lease up at once (a clean shutdown), so another
// replica need not wait for it to expire. Only the holder with that token
// can release it.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string, token int64, now time.Time) error {
	return s.write(ctx, "lease_release", func(tx *gorm.DB) error {
		return tx.Model(&leaseRow{}).Where("name = ? AND holder = ? AND token = ?", name, holder, token).
			Update("expires_at", leaseTime(now)).Error
	})
}

// ReadLease returns the lease (ok false when nobody ever took it).
func (s *Store) ReadLease(ctx context.Context, name string) (Lease, bool, error) {
	var rows []leaseRow
	err := s.read(ctx, "lease_read", func(db *gorm.DB) error {
		return db.Where("name = ?", name).Limit(1).Find(&rows).Error
	})
	if err != nil || len(rows) == 0 {
		return Lease{}, false, err
	}
	r := rows[0]
	return Lease{Name: r.Name, Holder: r.Holder, Token: r.Token, ExpiresAt: r.ExpiresAt.UTC(), RenewedAt: r.RenewedAt.UTC(),
		AcquiredAt: r.AcquiredAt.UTC()}, true, nil
}

// Fence is the lease a leader's writes are fenced by.
type Fence struct {
	Name   string
	Holder string
	Token  int64
}

// fencing holds the fence of this process's writes.
type fencing struct {
	on    atomic.Bool
	fence atomic.Pointer[Fence]
}

// EnableFencing makes the leader's writes (alerts, transitions, the
// outbox) conditional on the fence: without one they fail with
// ErrNotLeader. Replicas on PostgreSQL enable it; SQLite is one hub, the
// leader for ever.
func (s *Store) EnableFencing() { s.fencing.on.Store(true) }

// SetFence sets the lease that the leader's writes must still hold (nil:
// this process is not the leader).
func (s *Store) SetFence(f *Fence) { s.fencing.fence.Store(f) }

// checkFence is the first statement of a fenced write: the lease must still
// carry this process's token. On PostgreSQL the lease row stays locked to
// the end of the transaction, so a new leader's acquisition waits for the
// write to commit, and a write after it fails.
func (s *Store) checkFence(tx *gorm.DB) error {
	if !s.fencing.on.Load() {
		return nil
	}
	f := s.fencing.fence.Load()
	if f == nil {
		return ErrNotLeader
	}
	q := tx.Model(&leaseRow{}).Select("token").Where("name = ? AND holder = ? AND token = ?", f.Name, f.Holder, f.Token)
	if s.dialect == "postgres" {
		q = q.Clauses(clause.Locking{Strength: "UPDATE"})
	}
	var tokens []int64
	if err := q.Scan(&tokens).Error; err != nil {
		return err
	}
	if len(tokens) == 0 {
		return ErrNotLeader
	}
	return nil
}

// fencedWrite is write, refused unless this process is the leader.
func (s *Store) fencedWrite(ctx context.Context, op string, fn func(tx *gorm.DB) error) error {
	return s.write(ctx, op, func(tx *gorm.DB) error {
		if err := s.checkFence(tx); err != nil {
			return err
		}
		return fn(tx)
	})
}

// replicaRow is one hub process that shares the store.
type replicaRow struct {
	ID        string    `gorm:"primaryKey;size:256"`
	Address   string    `gorm:"size:512;not null"`
	Version   string    `gorm:"size:64;not null"`
	StartedAt time.Time `gorm:"not null"`
	LastSeen  time.Time `gorm:"not null;index"`
}

func (replicaRow) TableName() string { return "etlhub_replicas" }

// Replica is a hub process as it last reported itself.
type Replica struct {
	ID        string    `json:"id"`
	Address   string    `json:"address"`
	Version   string    `json:"version"`
	StartedAt time.Time `json:"started_at"`
	LastSeen  time.Time `json:"last_seen"`
}

// SeeReplica records that r is alive at r.LastSeen, and forgets replicas
// not seen since forget.
func (s *Store) SeeReplica(ctx context.Context, r Replica, forget time.Time) error {
	row := replicaRow{ID: r.ID, Address: r.Address, Version: r.Version, StartedAt: leaseTime(r.StartedAt), LastSeen: leaseTime(r.LastSeen)}
	return s.write(ctx, "replica_seen", func(tx *gorm.DB) error {
		if err := tx.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "id"}},
			DoUpdates: clause.AssignmentColumns([]string{"address", "version", "last_seen"})}).Create(&row).Error; err != nil {
			return err
		}
		return tx.Where("last_seen < ?", leaseTime(forget)).Delete(&replicaRow{}).Error
	})
}

// Replicas lists the replicas seen at or after since, by id.
func (s *Store) Replicas(ctx context.Context, since time.Time) ([]Replica, error) {
	var rows []replicaRow
	err := s.read(ctx, "replicas", func(db *gorm.DB) error {
		return db.Where("last_seen >= ?", leaseTime(since)).Order("id").Find(&rows).Error
	})
	out := make([]Replica, 0, len(rows))
	for _, r := range rows {
		out = append(out, Replica{ID: r.ID, Address: r.Address, Version: r.Version, StartedAt: r.StartedAt.UTC(), LastSeen: r.LastSeen.UTC()})
	}
	return out, err
}
