package importer

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/etlhub/etlhub/internal/breaker"
	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/internal/retry"
)

// What the importer sees of a dependency, from its own calls: the error
// rate and latency of the window, the calls under way, the breaker; served
// to the hub at GET /api/v1/dependencies (behind the status token).
func TestDependencyStatsFromTheCalls(t *testing.T) {
	g := &guard{log: slog.New(slog.DiscardHandler), tries: 1,
		policy: retry.Policy{Base: time.Millisecond, Max: time.Millisecond, Factor: 2},
		breakers: map[string]*breaker.Breaker{
			"mongo": breaker.New("mongo", 3, time.Minute, time.Hour),
			"redis": breaker.New("redis", 3, time.Minute, time.Hour)}}
	cfg := &Config{StatusToken: config.Secret("tok-0123456789")}
	im := &Importer{cfg: cfg, log: g.log, guard: g, metrics: newMetrics(cfg, &runStore{}, g)}
	g.failures = im.metrics.failures
	ctx := context.Background()
	for i := 0; i < 8; i++ {
		g.call(ctx, nil, "mongo", func() error { return nil })
	}
	down := errors.New("connection refused")
	for i := 0; i < 2; i++ {
		g.call(ctx, nil, "mongo", func() error { return down })
	}
	for i := 0; i < 3; i++ { // redis fails until its breaker opens
		g.call(ctx, nil, "redis", func() error { return down })
	}
	// A cancelled call counts neither way.
	cctx, cancel := context.WithCancel(ctx)
	g.call(cctx, nil, "mongo", func() error { cancel(); return cctx.Err() })
	// One call under way.
	release, started := make(chan struct{}), make(chan struct{})
	go g.call(ctx, nil, "mongo", func() error { close(started); <-release; return nil })
	<-started
	defer close(release)

	deps := im.Dependencies(time.Now())
	if len(deps) != 2 || deps[0].Name != "mongo" || deps[1].Name != "redis" {
		t.Fatalf("dependencies %+v", deps)
	}
	m := deps[0]
	if m.Calls != 10 || m.Errors != 2 || m.ErrorRate == nil || *m.ErrorRate != 0.2 || m.P95Ms == nil || m.InFlight != 1 || m.Breaker != breaker.Closed {
		t.Fatalf("mongo %+v", m)
	}
	if r := deps[1]; r.Breaker != breaker.Open || r.LastError != "connection refused" || r.Calls != 3 || *r.ErrorRate != 1 {
		t.Fatalf("redis %+v", r)
	}
	srv := httptest.NewServer(im.handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/api/v1/dependencies")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("without the token: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("GET", srv.URL+"/api/v1/dependencies", nil)
	req.Header.Set("Authorization", "Bearer tok-0123456789")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Dependencies []DependencyStat `json:"dependencies"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || len(body.Dependencies) != 2 || body.Dependencies[1].Breaker != breaker.Open {
		t.Fatalf("served %+v, %v", body, err)
	}
}
