package importer

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/etlhub/etlhub/internal/breaker"
	"github.com/etlhub/etlhub/internal/retry"
)

// TestCancelledProbeFreesTheBreaker: the call that probes a half-open
// breaker is cancelled (its run lost the tenant lock); the next call
// probes again instead of being refused for ever.
func TestCancelledProbeFreesTheBreaker(t *testing.T) {
	g := &guard{log: slog.New(slog.DiscardHandler), tries: 1, policy: retry.Policy{Base: time.Millisecond, Max: time.Millisecond, Factor: 2},
		breakers: map[string]*breaker.Breaker{"mongo": breaker.New("mongo", 1, 20*time.Millisecond, time.Minute)}}
	g.failures = newMetrics(&Config{}, &runStore{}, g).failures
	down := errors.New("server selection timeout")
	if err := g.call(context.Background(), nil, "mongo", func() error { return down }); !errors.Is(err, down) {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond) // the cooldown ends; the next call is the probe
	ctx, cancel := context.WithCancel(context.Background())
	g.call(ctx, nil, "mongo", func() error { cancel(); return ctx.Err() })
	called := false
	if err := g.call(context.Background(), nil, "mongo", func() error { called = true; return nil }); err != nil || !called {
		t.Fatalf("after a cancelled probe the breaker refuses: %v", err)
	}
	if s := g.breakers["mongo"].Snapshot(); s.State != breaker.Closed {
		t.Fatalf("breaker %s after a good call", s.State)
	}
}
