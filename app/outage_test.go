package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/etlhub/etlhub/internal/testsrv"
	"github.com/etlhub/etlhub/rules"
	"github.com/etlhub/etlhub/store"
)

// TestStoreOutage: while PostgreSQL is down the hub stays up, /readyz says
// 503 with since when, pushes are answered 503 with Retry-After; once it is
// back pushes are taken again, and the hub's own blind interval does not
// become the job's stall (its heartbeats stopped only because the hub could
// not store them).
func TestStoreOutage(t *testing.T) {
	pg := testsrv.NewPostgres(t, false)
	doc := strings.Replace(base, "stale_after: 20m", "stale_after: 6s", 1) +
		"store: {driver: postgres, dsn: \"" + pg.DSN(t) + "\"}\nrules: {tick: 1s}\ncluster: {lease_ttl: 3s, lease_renew: 1s}\n"
	cfg, probs := parse(t, doc)
	if len(probs) != 0 {
		t.Fatalf("%+v", probs)
	}
	ctx := context.Background()
	t0, sim := time.Now(), time.Date(2026, 12, 3, 2, 30, 0, 0, time.UTC)
	clock := func() time.Time { return sim.Add(time.Since(t0)) }
	h, err := New(ctx, cfg, Options{Now: clock, Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Start(ctx); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h.Handler)
	t.Cleanup(func() { srv.Close(); h.Stop() })
	waitFor(t, "the hub leads", 20*time.Second, h.Leader)

	call := func(method, path, body string) (int, http.Header, string) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer 0123456789abcdef0123")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return 0, nil, ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	// The job heartbeats every half second, as a pusher that retries would.
	var refused, taken atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		started := clock().Add(-time.Minute)
		for {
			now := clock()
			body := fmt.Sprintf(`{"at":%q,"tenant":"dade","job":"roster-import","run_id":"r1","state":"running","stage":"loading","started_at":%q,"updated_at":%q,"rows_done":%d,"rows_total":1000000}`,
				now.Format(time.RFC3339Nano), started.Format(time.RFC3339), now.Format(time.RFC3339Nano), now.Sub(started).Milliseconds())
			code, hdr, _ := call("POST", "/api/v1/observations", body)
			switch {
			case code == 200:
				taken.Add(1)
			case code == 503 && hdr.Get("Retry-After") != "":
				refused.Add(1)
			default:
				t.Errorf("push: %d", code)
			}
			select {
			case <-stop:
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()
	waitFor(t, "pushes taken", 10*time.Second, func() bool { return taken.Load() >= 3 })

	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	var body string
	waitFor(t, "/readyz says the store is down, and since when", 15*time.Second, func() bool {
		var code int
		code, _, body = call("GET", "/readyz", "")
		return code == 503 && strings.Contains(body, "has not answered since")
	})
	time.Sleep(10 * time.Second) // longer than stale_after
	if refused.Load() == 0 {
		t.Error("no push was refused with 503 and Retry-After during the outage")
	}
	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "/readyz says ready again", 30*time.Second, func() bool { code, _, _ := call("GET", "/readyz", ""); return code == 200 })
	n := taken.Load()
	waitFor(t, "pushes taken again", 30*time.Second, func() bool { return taken.Load() > n+3 })
	waitFor(t, "the hub leads again", 30*time.Second, h.Leader)
	time.Sleep(4 * time.Second) // ticks after the outage
	close(stop)
	<-done
	as, err := h.Store.ListAlerts(ctx, store.AlertFilter{Rule: rules.RuleStalled, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 0 {
		t.Fatalf("the hub's own outage became the job's stall: %+v", as)
	}
	bs, err := h.Store.BlindSince(ctx, sim)
	if err != nil || len(bs) != 1 || bs[0].To.Sub(bs[0].From) < 8*time.Second {
		t.Fatalf("blind intervals recorded: %+v %v", bs, err)
	}
}
