package app

import (
	"context"
	"sync"
	"time"

	"github.com/etlhub/etlhub/model"
	"github.com/etlhub/etlhub/store"
	"github.com/prometheus/client_golang/prometheus"
)

// Ingestor is the hub's one ingest path: collectors and the push API both
// store through it, so both feed the same runs and rules.
type Ingestor struct {
	store *store.Store
	count *prometheus.CounterVec
	// after is called with the observations once they are stored (the rules),
	// the clock they arrived by and the store transaction that holds them
	// (0: unknown, or shared with another's).
	after func([]model.Observation, time.Time, int64)
	// measured is called with measurements once they are stored (the
	// dependency rules).
	measured func([]model.Measurement)
	// logged is called with log searches' signals (the log rules).
	logged func([]model.LogSignal)
	// now is the hub's clock (simulated in the demo).
	now func() time.Time
	// fed remembers the (source, tenant) pairs already in the store, so a
	// collection writes only the tenants a source feeds for the first time.
	fed sync.Map
}

// NewIngestor counts what it stores in reg.
func NewIngestor(s *store.Store, reg prometheus.Registerer) *Ingestor {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "etlhub_ingest_observations_total",
		Help: "Observations ingested, by path (push, ping, collector) and result (stored, duplicate, future: refused, from after the clock)."}, []string{"via", "result"})
	reg.MustRegister(c)
	for _, via := range []string{"push", "ping", "collector"} {
		for _, r := range []string{"stored", "duplicate"} {
			c.WithLabelValues(via, r)
		}
	}
	return &Ingestor{store: s, count: c, now: time.Now}
}

// Ingest stores observations that arrived via "push" or "collector".
func (i *Ingestor) Ingest(ctx context.Context, via string, obs []model.Observation) (store.IngestResult, error) {
	res, err := i.save(ctx, via, obs)
	if err != nil {
		return res, err
	}
	i.handOn(obs, res.Xact)
	return res, nil
}

// save stores observations and counts them.
func (i *Ingestor) save(ctx context.Context, via string, obs []model.Observation) (store.IngestResult, error) {
	res, err := i.store.Ingest(store.IngestFor(ctx, i), obs)
	if err != nil {
		return res, err
	}
	i.count.WithLabelValues(via, "stored").Add(float64(res.Inserted))
	i.count.WithLabelValues(via, "duplicate").Add(float64(res.Duplicates))
	return res, nil
}

// handOn gives stored observations to the rules (and the pages' event
// streams) on the hub's clock.
func (i *Ingestor) handOn(obs []model.Observation, xact int64) {
	if i.after != nil {
		i.after(obs, i.now().UTC(), xact)
	}
}

// Batched is the ingest path of a replay: Add hands observations to the
// rules at once, on the hub's clock, as Ingest does once it has stored
// them, and stores them in batches of up to size, as a pusher sending
// batches would; Flush stores the rest. Only a hub that reads no
// observation back before Flush may use it (a stepped hub on SQLite: there
// are no other replicas' rows to follow): the rules then see what they
// would have seen through Ingest, a tick at a time, without a store
// transaction each tick.
type Batched struct {
	i       *Ingestor
	via     string
	size    int
	pending []model.Observation
}

// Batched makes a batched ingest path for via.
func (i *Ingestor) Batched(via string, size int) *Batched {
	return &Batched{i: i, via: via, size: max(size, 1)}
}

// Add hands obs to the rules and stores it once a batch is full.
func (b *Batched) Add(ctx context.Context, obs []model.Observation) error {
	b.i.handOn(obs, 0)
	b.pending = append(b.pending, obs...)
	if len(b.pending) >= b.size {
		return b.Flush(ctx)
	}
	return nil
}

// Flush stores what is pending.
func (b *Batched) Flush(ctx context.Context) error {
	if len(b.pending) == 0 {
		return nil
	}
	_, err := b.i.save(ctx, b.via, b.pending)
	b.pending = b.pending[:0]
	return err
}

// collectorSink adapts the Ingestor and the store to collectors.Sink.
type collectorSink struct {
	*Ingestor
}

func (c collectorSink) Ingest(ctx context.Context, obs []model.Observation) error {
	// A source's "at" is checked against the clock as a push's is: an
	// observation from the future is not stored (its other times are
	// bounded by "at" when it is decoded).
	now := c.now().UTC()
	keep := obs[:0:0]
	for i := range obs {
		if obs[i].CheckClock(now) == nil {
			keep = append(keep, obs[i])
		}
	}
	if n := len(obs) - len(keep); n > 0 {
		c.count.WithLabelValues("collector", "future").Add(float64(n))
	}
	if len(keep) == 0 {
		return nil
	}
	if _, err := c.Ingestor.Ingest(ctx, "collector", keep); err != nil {
		return err
	}
	// Which tenants each source feeds: a tenant-scoped token sees the
	// health of these sources only.
	fed := map[string][]string{}
	var fresh [][2]string
	for i := range keep {
		k := [2]string{keep[i].Source, keep[i].Tenant}
		if _, known := c.fed.LoadOrStore(k, false); !known {
			fed[k[0]] = append(fed[k[0]], k[1])
			fresh = append(fresh, k)
		}
	}
	if err := c.store.NoteSourceTenants(ctx, fed); err != nil {
		for _, k := range fresh { // written next time
			c.fed.Delete(k)
		}
		return err
	}
	return nil
}

// Measure stores probes' measurements (validated by the runner; one from
// the future is not stored) and hands them to the rules.
func (c collectorSink) Measure(ctx context.Context, ms []model.Measurement) error {
	now := c.now().UTC()
	keep := ms[:0:0]
	for i := range ms {
		if !ms[i].At.After(now.Add(model.MaxSkew)) {
			keep = append(keep, ms[i])
		}
	}
	if len(keep) == 0 {
		return nil
	}
	if err := c.store.SaveMeasurements(ctx, keep); err != nil {
		return err
	}
	if c.measured != nil {
		c.measured(keep)
	}
	return nil
}

// ObserveLogs hands log searches' signals to the rules.
func (c collectorSink) ObserveLogs(_ context.Context, sigs []model.LogSignal) error {
	if c.logged != nil {
		c.logged(sigs)
	}
	return nil
}

func (c collectorSink) SaveSource(ctx context.Context, h model.SourceHealth) error {
	return c.store.SaveSource(ctx, h)
}

func (c collectorSink) Source(ctx context.Context, name string) (model.SourceHealth, error) {
	return c.store.Source(ctx, name)
}

// Ping says whether the store answers (the store probe's measurement).
func (c collectorSink) Ping(ctx context.Context) error { return c.store.Ping(ctx) }
