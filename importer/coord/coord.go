// Package coord keeps importer workers apart through Redis: a lock per
// tenant with an expiry, renewal and a fencing token (so two workers never
// import one tenant at once, and a worker that lost its lock can be told
// apart). Writes that only the holder may make check the lock's Owner.
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

// Owner identifies this holding of the lock (for fenced writes).
func (l *Lock) Owner() string { return l.owner }

// LockKey is the Redis key of tenant's lock.
func LockKey(tenant string) string { return lockKey(tenant) }

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
