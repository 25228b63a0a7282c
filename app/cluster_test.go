package app

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/etlhub/etlhub/api"
	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/internal/testsrv"
	"github.com/etlhub/etlhub/model"
	"github.com/etlhub/etlhub/rules"
	"github.com/etlhub/etlhub/store"
)

func TestMain(m *testing.M) { testsrv.Main(m) }

// waitFor polls cond until it holds or the deadline passes (the machine may
// be slow: the deadline is generous, the poll quick).
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestReplicas: two hubs on one PostgreSQL store: one leads; a push to the
// follower reaches the leader's rules; GET /api/v1/cluster on either shows
// both and the lease; when the leader stops, the other takes over at once
// (the lease is released) with a new fencing token.
func TestReplicas(t *testing.T) {
	dsn := testsrv.Postgres(t)
	doc := base + "store: {driver: postgres, dsn: \"" + dsn + "\"}\nrules: {tick: 1s}\ncluster: {lease_ttl: 3s, lease_renew: 1s}\n"
	ctx := context.Background()
	// The hubs' clock runs from 01:30, inside the job's night.
	t0, sim := time.Now(), time.Date(2026, 12, 3, 1, 30, 0, 0, time.UTC)
	clock := func() time.Time { return sim.Add(time.Since(t0)) }
	start := func(id string) (*Hub, *httptest.Server) {
		cfg, probs := parse(t, strings.Replace(doc, "cluster: {", "cluster: {replica_id: "+id+", ", 1))
		if len(probs) != 0 {
			t.Fatalf("%+v", probs)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		cfg.Cluster.Advertise = ln.Addr().String()
		h, err := New(ctx, cfg, Options{Now: clock, Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("hub", id)})
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Start(ctx); err != nil {
			t.Fatal(err)
		}
		srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: h.Handler}}
		srv.Start()
		t.Cleanup(func() { srv.Close(); h.Stop() })
		return h, srv
	}
	a, aSrv := start("hub-a")
	waitFor(t, "hub-a leads", 20*time.Second, a.Leader)
	b, bSrv := start("hub-b")
	time.Sleep(1500 * time.Millisecond)
	if b.Leader() {
		t.Fatal("two leaders")
	}

	now := clock()
	started := now.Add(-10 * time.Minute)
	obs := model.Observation{At: now, RunStatus: model.RunStatus{
		Source: "push", Tenant: "dade", Job: "roster-import", RunID: "r1", State: model.StateRunning,
		Stage: model.StageLoading, StartedAt: &started, UpdatedAt: &now, RowsDone: 10, RowsTotal: 100,
	}}
	if _, err := b.Ingest.Ingest(ctx, "push", []model.Observation{obs}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the leader's rules see the follower's push", 20*time.Second, func() bool {
		v, ok := a.Alerting.JobViews()[model.JobKey{Tenant: "dade", Job: "roster-import"}]
		return ok && v.Risk == string(model.RiskRunning)
	})

	cluster := func(srv *httptest.Server) api.ClusterStatus {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+"/api/v1/cluster", nil)
		req.Header.Set("Authorization", "Bearer 0123456789abcdef0123")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var st api.ClusterStatus
		if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&st) != nil {
			t.Fatalf("cluster: %d", resp.StatusCode)
		}
		return st
	}
	var st api.ClusterStatus
	waitFor(t, "both replicas listed", 10*time.Second, func() bool { st = cluster(bSrv); return len(st.Replicas) == 2 })
	if st.Self != "hub-b" || st.Lease == nil || st.Lease.Holder != "hub-a" || !st.Lease.Valid ||
		st.Replicas[0].Role != "leader" || st.Replicas[1].Role != "follower" || !st.Replicas[1].Self {
		t.Fatalf("cluster from the follower: %+v %+v", st, st.Lease)
	}
	token := st.Lease.Token
	if got := cluster(aSrv); got.Self != "hub-a" || !got.Replicas[0].Self {
		t.Fatalf("cluster from the leader: %+v", got)
	}

	// An alert posted to the follower (Alertmanager's API) goes to the
	// leader's rules, which save it.
	req, _ := http.NewRequest("POST", bSrv.URL+"/api/v2/alerts",
		strings.NewReader(`[{"labels":{"alertname":"DiskFull","tenant":"dade","severity":"warning"},"annotations":{"summary":"disk"}}]`))
	req.Header.Set("Authorization", "Bearer 0123456789abcdef0123")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("posting an alert to the follower: %d", resp.StatusCode)
	}
	waitFor(t, "the leader saves the alert posted to the follower", 20*time.Second, func() bool {
		as, err := b.Store.ListAlerts(ctx, store.AlertFilter{States: []model.AlertState{model.AlertFiring}})
		return err == nil && len(as) == 1 && as[0].Summary == "disk"
	})

	a.Stop()
	waitFor(t, "hub-b takes over", 10*time.Second, b.Leader)
	if st := cluster(bSrv); st.Lease == nil || st.Lease.Holder != "hub-b" || st.Lease.Token != token+1 {
		t.Fatalf("after the takeover: %+v", st.Lease)
	}
}

// TestFailoverKeepsAlerts: a new leader carries on the alert lifecycle the
// old one saved: an alert pending when the leader stops fires on time (its
// pending start kept, not restarted), once, and is not resolved and fired
// again.
func TestFailoverKeepsAlerts(t *testing.T) {
	dsn := testsrv.Postgres(t)
	doc := base + "store: {driver: postgres, dsn: \"" + dsn + "\"}\nrules: {tick: 1s, timings: {stalled: {for: 4s}}}\ncluster: {lease_ttl: 3s, lease_renew: 1s}\n"
	ctx := context.Background()
	t0, sim := time.Now(), time.Date(2026, 12, 3, 2, 30, 0, 0, time.UTC)
	clock := func() time.Time { return sim.Add(time.Since(t0)) }
	start := func(id string) *Hub {
		cfg, probs := parse(t, strings.Replace(doc, "cluster: {", "cluster: {replica_id: "+id+", ", 1))
		if len(probs) != 0 {
			t.Fatalf("%+v", probs)
		}
		h, err := New(ctx, cfg, Options{Now: clock, Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("hub", id)})
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(h.Stop)
		return h
	}
	a := start("hub-a")
	waitFor(t, "hub-a leads", 20*time.Second, a.Leader)
	b := start("hub-b")

	// A run whose heartbeat stopped 30 minutes ago (stale after 20m).
	now := clock()
	started, beat := now.Add(-40*time.Minute), now.Add(-30*time.Minute)
	obs := model.Observation{At: now, RunStatus: model.RunStatus{
		Source: "push", Tenant: "dade", Job: "roster-import", RunID: "r1", State: model.StateRunning,
		Stage: model.StageLoading, StartedAt: &started, UpdatedAt: &beat, RowsDone: 10, RowsTotal: 100,
	}}
	if _, err := b.Ingest.Ingest(ctx, "push", []model.Observation{obs}); err != nil {
		t.Fatal(err)
	}
	stalled := func(h *Hub) (model.Alert, bool) {
		as, err := h.Store.ListAlerts(ctx, store.AlertFilter{Rule: rules.RuleStalled})
		if err != nil || len(as) == 0 {
			return model.Alert{}, false
		}
		return as[0], true
	}
	var pending model.Alert
	waitFor(t, "the leader saves the pending alert", 20*time.Second, func() bool {
		a, ok := stalled(b)
		pending = a
		return ok && a.State == model.AlertPending
	})
	a.Stop()
	waitFor(t, "hub-b takes over", 10*time.Second, b.Leader)
	var fired model.Alert
	waitFor(t, "the alert fires under the new leader", 20*time.Second, func() bool {
		a, ok := stalled(b)
		fired = a
		return ok && a.State == model.AlertFiring
	})
	if !fired.PendingSince.Equal(pending.PendingSince) {
		t.Fatalf("pending restarted: since %v under the old leader, %v under the new", pending.PendingSince, fired.PendingSince)
	}
	time.Sleep(3 * time.Second) // a few more ticks
	trans, err := b.Store.FiringsBetween(ctx, sim.Add(-time.Hour), clock().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(trans) != 1 {
		t.Fatalf("firings: %+v, want one", trans)
	}
	if a, _ := stalled(b); a.State != model.AlertFiring {
		t.Fatalf("after the takeover the alert is %s", a.State)
	}
}

// TestReloadedHubSeesPushesToTheHubItReplaces (PostgreSQL): a reload
// builds a new hub on the same store while the running one still takes
// pushes; what the running hub stores after the new hub has warmed reaches
// the new hub's rules through its tail (the running hub's rules had it, not
// the new one's: a transaction is skipped only by the loop that saw it).
func TestReloadedHubSeesPushesToTheHubItReplaces(t *testing.T) {
	dsn := testsrv.Postgres(t)
	doc := base + "store: {driver: postgres, dsn: \"" + dsn + "\"}\nrules: {tick: 1s}\n"
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{Driver: "postgres", DSN: config.Secret(dsn)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	t0, sim := time.Now(), time.Date(2026, 12, 3, 1, 30, 0, 0, time.UTC)
	clock := func() time.Time { return sim.Add(time.Since(t0)) }
	build := func() *Hub {
		cfg, probs := parse(t, doc)
		if len(probs) != 0 {
			t.Fatalf("%+v", probs)
		}
		h, err := New(ctx, cfg, Options{Now: clock, Store: st, Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	running, next := build(), build()
	now := clock()
	started := now.Add(-10 * time.Minute)
	obs := model.Observation{At: now, RunStatus: model.RunStatus{
		Source: "push", Tenant: "dade", Job: "roster-import", RunID: "r1", State: model.StateRunning,
		Stage: model.StageLoading, StartedAt: &started, UpdatedAt: &now, RowsDone: 10, RowsTotal: 100,
	}}
	res, err := running.Ingest.Ingest(ctx, "push", []model.Observation{obs})
	if err != nil || res.Xact == 0 {
		t.Fatalf("push to the running hub: xact %d, %v", res.Xact, err)
	}
	key := model.JobKey{Tenant: "dade", Job: "roster-import"}
	if err := next.Alerting.Tail(ctx, clock()); err != nil {
		t.Fatal(err)
	}
	next.Alerting.Engine().Tick(clock())
	if v, ok := next.Alerting.JobViews()[key]; !ok || v.Risk != string(model.RiskRunning) {
		t.Fatalf("the new hub's rules after its tail: %+v (%v), want the run pushed to the running hub", v, ok)
	}
}
