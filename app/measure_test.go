package app

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/etlhub/etlhub/model"
	"github.com/etlhub/etlhub/rules"
)

// The collectors' sink stores measurements and hands them to the rules; a
// restarted hub learns the same history back from the store (warm), so a
// dependency-down that began before the restart keeps its onset.
func TestMeasurementsReachTheStoreAndTheRules(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hub.db")
	cfg, probs := parse(t, base+"store: {driver: sqlite, path: "+path+"}\nrules: {tick: 1s}\n")
	if len(probs) != 0 {
		t.Fatalf("%+v", probs)
	}
	ctx := context.Background()
	sim := time.Date(2026, 12, 3, 3, 0, 0, 0, time.UTC)
	h, err := New(ctx, cfg, Options{Now: func() time.Time { return sim }, Stepped: true})
	if err != nil {
		t.Fatal(err)
	}
	sink := collectorSink{h.Ingest}
	var ms []model.Measurement
	for i := 0; i < 4; i++ {
		ms = append(ms, model.Measurement{At: sim.Add(time.Duration(i-3) * 30 * time.Second), Source: "mongo", Subject: "mongodb:roster",
			Kind: model.KindMongoDB, Error: "server selection timeout"})
	}
	future := model.Measurement{At: sim.Add(time.Hour), Source: "mongo", Subject: "mongodb:later", Kind: model.KindMongoDB, Up: true}
	if err := sink.Measure(ctx, append(ms, future)); err != nil {
		t.Fatal(err)
	}
	deps, err := h.Store.Dependencies(ctx)
	if err != nil || len(deps) != 1 || deps[0].Subject != "mongodb:roster" || deps[0].Up {
		t.Fatalf("stored latest %+v, %v; want mongodb:roster down (the one from the future refused)", deps, err)
	}
	if trans, err := h.Alerting.StepTransitions(ctx, sim); err != nil || len(trans) != 0 {
		t.Fatalf("first step: %+v, %v; want it pending", trans, err)
	}
	trans, err := h.Alerting.StepTransitions(ctx, sim.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(trans) != 1 || trans[0].Alert.Rule != rules.RuleDependencyDown || trans[0].Alert.Scope != model.ScopeShared {
		t.Fatalf("transitions %+v; want dependency-down firing after its minute", trans)
	}
	h.Stop()

	h, err = New(ctx, cfg, Options{Now: func() time.Time { return sim.Add(2 * time.Minute) }, Stepped: true})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Stop()
	trans, err = h.Alerting.StepTransitions(ctx, sim.Add(2*time.Minute))
	if err != nil || len(trans) != 0 {
		t.Fatalf("after a restart: %+v, %v; want the alert still firing, nothing new", trans, err)
	}
	active := h.Alerting.Engine().Active()
	if len(active) != 1 || active[0].Rule != rules.RuleDependencyDown || active[0].Details["since"] == nil {
		t.Fatalf("active after restart %+v", active)
	}
}
