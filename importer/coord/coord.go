// Package coord keeps importer workers apart through Redis: a lock per
// tenant with an expiry, renewal and a fencing token (so two workers never
// import one tenant at once, and a worker that lost its lock can be told
// apart), and progress heartbeats the status API reads.
package coord

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrHeld is returned when another worker holds the lock.
var ErrHeld = errors.New("the tenant is locked by another worker")

// ErrLost is returned when renewing a lock this worker no longer holds.
var ErrLost = errors.New("the lock was lost (expired and taken, or released)")

// Lock is a held tenant lock.
type Lock struct {
	rdb    *redis.Client
	key    string
	owner  string
	ttl    time.Duration
	Fence  int64 // increases with every acquisition of this tenant's lock
	Tenant string
}

// keys live under one prefix so that several installations can share a server.
func lockKey(tenant string) string  { return "etlhub:lock:" + tenant }
func fenceKey(tenant string) string { return "etlhub:fence:" + tenant }

// Acquire takes tenant's lock for ttl, or returns ErrHeld.
func Acquire(ctx context.Context, rdb *redis.Client, tenant string, ttl time.Duration) (*Lock, error) {
	var b [12]byte
	rand.Read(b[:])
	fence, err := rdb.Incr(ctx, fenceKey(tenant)).Result()
	if err != nil {
		return nil, fmt.Errorf("redis fence %s: %w", tenant, err)
	}
	owner := hex.EncodeToString(b[:]) + ":" + strconv.FormatInt(fence, 10)
	ok, err := rdb.SetNX(ctx, lockKey(tenant), owner, ttl).Result()
	if err != nil {
		return nil, fmt.Errorf("redis lock %s: %w", tenant, err)
	}
	if !ok {
		return nil, ErrHeld
	}
	return &Lock{rdb: rdb, key: lockKey(tenant), owner: owner, ttl: ttl, Fence: fence, Tenant: tenant}, nil
}

var renewScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("PEXPIRE", KEYS[1], ARGV[2]) else return 0 end`)
var releaseScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) else return 0 end`)

// Renew extends the lock by its ttl, or returns ErrLost.
func (l *Lock) Renew(ctx context.Context) error {
	n, err := renewScript.Run(ctx, l.rdb, []string{l.key}, l.owner, l.ttl.Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("redis renew %s: %w", l.Tenant, err)
	}
	if n == 0 {
		return ErrLost
	}
	return nil
}

// Release gives the lock up if this worker still holds it.
func (l *Lock) Release(ctx context.Context) error {
	_, err := releaseScript.Run(ctx, l.rdb, []string{l.key}, l.owner).Int()
	return err
}

// Progress is a run's heartbeat.
type Progress struct {
	Tenant    string    `json:"tenant"`
	RunID     string    `json:"run_id"`
	Stage     string    `json:"stage"`
	RowsDone  int64     `json:"rows_done"`
	RowsTotal int64     `json:"rows_total"`
	UpdatedAt time.Time `json:"updated_at"`
	Fence     int64     `json:"fence"`
}

func progressKey(tenant string) string { return "etlhub:progress:" + tenant }

// Beat records progress; it expires when heartbeats stop for ttl, so a dead
// worker's run shows its last heartbeat and no more.
func Beat(ctx context.Context, rdb *redis.Client, p Progress, ttl time.Duration) error {
	k := progressKey(p.Tenant)
	pipe := rdb.TxPipeline()
	pipe.HSet(ctx, k, "run_id", p.RunID, "stage", p.Stage, "rows_done", p.RowsDone, "rows_total", p.RowsTotal,
		"updated_at", p.UpdatedAt.UTC().Format(time.RFC3339Nano), "fence", p.Fence)
	pipe.Expire(ctx, k, ttl)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("redis heartbeat %s: %w", p.Tenant, err)
	}
	return nil
}

// Read returns a tenant's last heartbeat; ok is false when there is none.
func Read(ctx context.Context, rdb *redis.Client, tenant string) (p Progress, ok bool, err error) {
	m, err := rdb.HGetAll(ctx, progressKey(tenant)).Result()
	if err != nil || len(m) == 0 {
		return p, false, err
	}
	p = Progress{Tenant: tenant, RunID: m["run_id"], Stage: m["stage"]}
	p.RowsDone, _ = strconv.ParseInt(m["rows_done"], 10, 64)
	p.RowsTotal, _ = strconv.ParseInt(m["rows_total"], 10, 64)
	p.Fence, _ = strconv.ParseInt(m["fence"], 10, 64)
	p.UpdatedAt, _ = time.Parse(time.RFC3339Nano, m["updated_at"])
	return p, true, nil
}
