package sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/etlhub/etlhub/api"
	"github.com/etlhub/etlhub/app"
	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/internal/lifecycle"
	"github.com/etlhub/etlhub/store"
)

// TestOneWiring: a service added to app runs in etlhub serve, the demo and
// replay alike, on each one's clock (the real one for serve, the simulated
// one for the demo and replay), and is stopped when they end: none of them
// wires a hub of its own.
func TestOneWiring(t *testing.T) {
	type run struct {
		started time.Time // the hub's clock when the service started
		stopped bool
	}
	var mu sync.Mutex
	var runs []*run
	startedOnce := make(chan struct{}, 10)
	app.ExtraServices = func(h *app.Hub) []lifecycle.Service {
		r := &run{}
		return []lifecycle.Service{&lifecycle.Funcs{N: "probe",
			StartFn: func(context.Context) error {
				mu.Lock()
				r.started = h.Now()
				runs = append(runs, r)
				mu.Unlock()
				startedOnce <- struct{}{}
				return nil
			},
			StopFn: func() { mu.Lock(); r.stopped = true; mu.Unlock() }}}
	}
	defer func() { app.ExtraServices = nil }()
	last := func(what string) *run {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		if len(runs) != 1 {
			t.Fatalf("%s: the service added to app ran %d times, want once", what, len(runs))
		}
		r := runs[0]
		runs = nil
		if !r.stopped {
			t.Fatalf("%s: the service was not stopped", what)
		}
		return r
	}
	waitStarted := func(what string) {
		t.Helper()
		select {
		case <-startedOnce:
		case <-time.After(2 * time.Minute):
			t.Fatalf("%s: the service added to app did not start", what)
		}
	}

	// serve
	cfg := &app.Config{Listen: "127.0.0.1:0", Store: store.Config{Driver: "sqlite", Path: filepath.Join(t.TempDir(), "hub.db")},
		Auth: api.AuthConfig{Tokens: []api.TokenConfig{{Name: "t", Token: "0123456789abcdef0123", Role: "admin"}}}}
	var p config.Problems
	cfg.Validate(&p)
	if err := p.Err("test"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Serve(ctx, cfg, slog.New(slog.DiscardHandler), nil) }()
	waitStarted("serve")
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	if r := last("serve"); time.Since(r.started).Abs() > time.Minute {
		t.Fatalf("serve: the service saw the clock at %v, not now", r.started)
	}

	// the demo
	ctx, cancel = context.WithCancel(context.Background())
	go func() {
		done <- Demo(ctx, DemoOptions{Listen: "127.0.0.1:0", Step: time.Millisecond, Out: &syncBuf{}, Dir: t.TempDir(), LiveStudents: 200},
			slog.New(slog.DiscardHandler))
	}()
	waitStarted("demo")
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) { // stopped while it loads the history
		t.Fatalf("demo: %v", err)
	}
	if r := last("demo"); time.Since(r.started) < 4*24*time.Hour {
		t.Fatalf("demo: the service saw the clock at %v, not the demo's simulated one (five nights back)", r.started)
	}

	// replay
	dir := t.TempDir()
	scen := filepath.Join(dir, "scenario.json")
	os.WriteFile(scen, []byte(`{"name":"t","start":"2026-09-01T01:00:00Z","end":"2026-09-01T03:00:00Z",
	 "jobs":[{"tenant":"dade","job":"roster-import","timezone":"UTC","schedule":"0 2 * * *","deadline":"05:00","stale_after":"20m"}]}`), 0o644)
	var lines []string
	for m := 0; m <= 30; m += 5 {
		lines = append(lines, fmt.Sprintf(`{"at":"2026-09-01T02:%02d:00Z","tenant":"dade","job":"roster-import","run_id":"r1","state":"running","started_at":"2026-09-01T02:00:00Z","updated_at":"2026-09-01T02:%02d:00Z","rows_done":%d,"rows_total":1000}`, m, m, m*10))
	}
	obs := filepath.Join(dir, "obs.jsonl")
	os.WriteFile(obs, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	res, err := Replay(context.Background(), ReplayOptions{Scenario: scen, Observations: obs, Out: filepath.Join(dir, "alerts.jsonl")})
	if err != nil {
		t.Fatal(err)
	}
	waitStarted("replay")
	if r := last("replay"); !r.started.Equal(time.Date(2026, 9, 1, 1, 0, 0, 0, time.UTC)) {
		t.Fatalf("replay: the service saw the clock at %v, not the scenario's start", r.started)
	}
	if res.Observations != 7 || res.Ticks != 121 {
		t.Fatalf("replay: %+v", res)
	}
}
