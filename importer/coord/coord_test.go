package coord

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/etlhub/etlhub/internal/testsrv"
	"github.com/redis/go-redis/v9"
)

func TestMain(m *testing.M) { testsrv.Main(m) }

func client(t *testing.T) (*redis.Client, *testsrv.Redis) {
	r := testsrv.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr, DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second})
	t.Cleanup(func() { rdb.Close() })
	return rdb, r
}

func TestOneWorkerPerTenant(t *testing.T) {
	rdb, _ := client(t)
	ctx := context.Background()
	a, err := Acquire(ctx, rdb, "dade", 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Acquire(ctx, rdb, "dade", time.Second); !errors.Is(err, ErrHeld) {
		t.Fatalf("a second worker got the lock: %v", err)
	}
	if _, err := Acquire(ctx, rdb, "broward", time.Second); err != nil {
		t.Fatalf("another tenant is blocked: %v", err)
	}
	if err := a.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	// Worker a stops renewing (it hangs); after the ttl another takes over
	// with a higher fencing token, and a learns it lost the lock.
	var b *Lock
	deadline := time.Now().Add(3 * time.Second)
	for b == nil && time.Now().Before(deadline) {
		b, _ = Acquire(ctx, rdb, "dade", time.Second)
		if b == nil {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if b == nil || b.Fence <= a.Fence {
		t.Fatalf("takeover: %+v after %+v", b, a)
	}
	if err := a.Renew(ctx); !errors.Is(err, ErrLost) {
		t.Fatalf("the old holder renewed a lost lock: %v", err)
	}
	a.Release(ctx) // must not release b's lock
	if _, err := Acquire(ctx, rdb, "dade", time.Second); !errors.Is(err, ErrHeld) {
		t.Fatal("the old holder's release freed the new holder's lock")
	}
	b.Release(ctx)
	if _, err := Acquire(ctx, rdb, "dade", time.Second); err != nil {
		t.Fatalf("after release: %v", err)
	}
}

func TestRedisDown(t *testing.T) {
	rdb, srv := client(t)
	ctx := context.Background()
	l, err := Acquire(ctx, rdb, "dade", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	if err := l.Renew(ctx); err == nil || errors.Is(err, ErrLost) || !strings.Contains(err.Error(), "redis renew dade") {
		t.Fatalf("renew with redis down: %v (must not claim the lock is lost: it may not be)", err)
	}
	if _, err := Acquire(ctx, rdb, "broward", time.Minute); err == nil || errors.Is(err, ErrHeld) {
		t.Fatalf("acquire with redis down: %v", err)
	}
}
