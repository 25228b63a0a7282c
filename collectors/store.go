package collectors

import (
	"context"
	"fmt"
	"time"

	"github.com/etlhub/etlhub/model"
)

// Pinger is a sink that can say whether its database answers (the hub's
// store): the store kind's probe pings it.
type Pinger interface {
	Ping(ctx context.Context) error
}

// storeProbe measures the hub's own store: a ping's round trip.
type storeProbe struct {
	cfg     SourceConfig
	subject string
	ping    Pinger // set by the runner from its sink
}

func newStoreProbe(c SourceConfig) (Collector, error) {
	return &storeProbe{cfg: c, subject: c.subject("store")}, nil
}

func (p *storeProbe) Collect(ctx context.Context, now time.Time) (Result, error) {
	m := p.cfg.measurement(now, model.KindStore, p.subject)
	if p.ping == nil {
		return down(m, fmt.Errorf("the runner's sink cannot be pinged"))
	}
	start := time.Now()
	if err := p.ping.Ping(ctx); err != nil {
		return down(m, describeNetErr(err, p.cfg.Timeout))
	}
	m.Values[model.ValueLatencyMs] = millis(time.Since(start))
	return Result{Measurements: []model.Measurement{m}}, nil
}
