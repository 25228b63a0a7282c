package app

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/etlhub/etlhub/model"
)

func serviceNames(h *Hub) []string {
	var out []string
	for _, s := range h.Services() {
		out = append(out, s.Name())
	}
	return out
}

// TestHubServices: app.New wires one list of services for serve and the
// demo (which steps the alert loop itself); they start, work on the hub's
// clock and stop within a second, with their contexts cancelled.
func TestHubServices(t *testing.T) {
	cfg, probs := parse(t, base+"store: {driver: sqlite, path: "+filepath.Join(t.TempDir(), "hub.db")+"}\nrules: {tick: 1s}\n")
	if len(probs) != 0 {
		t.Fatalf("%+v", probs)
	}
	ctx := context.Background()
	sim := time.Date(2026, 12, 3, 1, 30, 0, 0, time.UTC)
	for _, stepped := range []bool{false, true} {
		h, err := New(ctx, cfg, Options{Now: func() time.Time { return sim }, Stepped: stepped})
		if err != nil {
			t.Fatal(err)
		}
		names := serviceNames(h)
		want := []string{"store watch", "notifier", "alerting", "prune", "digests", "collectors"}
		if stepped {
			want = slices.DeleteFunc(slices.Clone(want), func(s string) bool { return s == "alerting" })
		}
		if !slices.Equal(names, want) {
			t.Fatalf("stepped=%v: services %v, want %v", stepped, names, want)
		}
		if err := h.Start(ctx); err != nil {
			t.Fatal(err)
		}
		// What is pushed reaches the rules on the hub's clock.
		started := sim.Add(-30 * time.Minute)
		obs := model.Observation{At: sim, RunStatus: model.RunStatus{
			Source: "push", Tenant: "dade", Job: "roster-import", RunID: "r1", State: model.StateRunning,
			Stage: model.StageLoading, StartedAt: &started, UpdatedAt: &sim, RowsDone: 10, RowsTotal: 100,
		}}
		if _, err := h.Ingest.Ingest(ctx, "push", []model.Observation{obs}); err != nil {
			t.Fatal(err)
		}
		if stepped {
			if err := h.Alerting.Step(ctx, sim); err != nil {
				t.Fatal(err)
			}
		} else {
			time.Sleep(1200 * time.Millisecond) // one tick of its own
		}
		if v, ok := h.Alerting.JobViews()[model.JobKey{Tenant: "dade", Job: "roster-import"}]; !ok || v.Risk != string(model.RiskRunning) {
			t.Fatalf("stepped=%v: the job's view %+v (%v), want running", stepped, v, ok)
		}
		done := make(chan struct{})
		go func() { h.Stop(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("stepped=%v: Stop did not return", stepped)
		}
	}
}
