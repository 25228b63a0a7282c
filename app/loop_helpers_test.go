package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/etlhub/etlhub/alerting"
	"github.com/etlhub/etlhub/rules"
	"github.com/etlhub/etlhub/store"
	"github.com/prometheus/client_golang/prometheus"
)

// testLoop is the alert loop as the hub wires it from a config, with its
// store and engine at hand for the tests.
type testLoop struct {
	*alerting.Loop
	st     *store.Store
	engine *rules.Engine
}

func newRuleLoop(cfg *Config, st *store.Store, log *slog.Logger, reg prometheus.Registerer) *testLoop {
	l := alerting.New(cfg.alerting(nil), st, log, reg)
	return &testLoop{Loop: l, st: st, engine: l.Engine()}
}

func (l *testLoop) tick(ctx context.Context, now time.Time) { _ = l.Step(ctx, now) }
