package importer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/etlhub/etlhub/importer/coord"
	"github.com/etlhub/etlhub/importer/inbox"
	"github.com/etlhub/etlhub/internal/retry"
	"github.com/etlhub/etlhub/model"
	"github.com/redis/go-redis/v9"
)

// workers are the process's pool: each worker goes round the group's
// tenants and takes a queued run of a tenant whose lock it gets; holding
// the lock, it renews it with a heartbeat, carries the run through the
// stages from its checkpoint, and ends it or schedules its next attempt.
type workers struct {
	store  workStore
	rdb    *redis.Client // the tenants' locks (coord)
	guard  *guard
	stages *stages
	// metrics counts the attempts by outcome and times them.
	metrics *metrics
	log     *slog.Logger
	id      string // this process, as a run's worker
	tenants []TenantConfig
	// idle is how long a worker waits when no tenant had work for it.
	idle time.Duration
	// lockTTL is the tenant lock's; every beat the lock is renewed and
	// the run's progress saved.
	lockTTL, beat time.Duration
	maxAttempts   int
	// attempts spaces the attempts of a run after a transient failure.
	attempts retry.Policy
}

// workStore is what the workers need of the run store.
type workStore interface {
	active(ctx context.Context, tenant string) (string, error)
	claim(ctx context.Context, tenant string) (msgID, runID string, err error)
	loadRecord(ctx context.Context, id string) (*record, error)
	drop(ctx context.Context, tenant, msgID, runID string) error
	save(ctx context.Context, rec *record, lock *coord.Lock) error
	finish(ctx context.Context, rec *record, msgID string, lock *coord.Lock) error
}

// work is one worker: it goes round the group's tenants, each worker
// starting at a different one, and takes a queued run of a tenant whose lock
// it gets. The lock makes a tenant's concurrency one, so a tenant with many
// uploads cannot hold more than one worker while others wait.
func (w *workers) work(ctx context.Context, n int) {
	tenants := w.tenants
	for i := n; ctx.Err() == nil; i++ {
		busy := false
		for k := range tenants {
			if ctx.Err() != nil {
				return
			}
			if w.tryTenant(ctx, tenants[(i+k)%len(tenants)]) {
				busy = true
			}
		}
		if !busy {
			select {
			case <-ctx.Done():
			case <-time.After(w.idle):
			}
		}
	}
}

// tryTenant works on the tenant's queued run if it has one, no other worker
// holds the tenant, and the run is not waiting out a backoff; it says
// whether it did.
func (w *workers) tryTenant(ctx context.Context, t TenantConfig) bool {
	active, err := w.store.active(ctx, t.Name)
	if active == "" || err != nil {
		return false
	}
	lock, err := coord.Acquire(ctx, w.rdb, t.Name, w.lockTTL)
	if err != nil {
		return false
	}
	defer lock.Release(context.WithoutCancel(ctx))
	msgID, runID, err := w.store.claim(ctx, t.Name)
	if err != nil || msgID == "" {
		if err != nil && ctx.Err() == nil {
			w.log.Warn("queue read failed", "tenant", t.Name, "run_id", active, "error", err)
		}
		return false
	}
	rec, err := w.store.loadRecord(ctx, runID)
	if errors.Is(err, redis.Nil) {
		// The entry names a run Redis no longer has (its data was lost):
		// drop the entry rather than hold the tenant up for ever.
		w.log.Error("queued run not found; its queue entry is dropped", "tenant", t.Name, "run_id", runID, "stage", model.StageQueued, "attempt", 0)
		w.store.drop(ctx, t.Name, msgID, runID)
		return false
	}
	if err != nil {
		w.log.Warn("queued run unreadable", "tenant", t.Name, "run_id", runID, "error", err)
		return false
	}
	if rec.Obs.State.Terminal() { // finished, but the worker died before acknowledging
		w.store.finish(ctx, rec, msgID, lock)
		return false
	}
	if rec.RetryAt != nil && time.Now().Before(*rec.RetryAt) {
		return false
	}
	w.run(ctx, t, lock, msgID, rec)
	return true
}

// attempt is one worker's go at a run.
type attempt struct {
	mu   sync.Mutex
	rec  *record
	t    TenantConfig
	lock *coord.Lock
	conn *inbox.Client
	open map[string]int // dependency -> index of its open outage in rec.Outages
	// base and worker make the run's logger.
	base   *slog.Logger
	worker string
}

// logger is the logger for the run's lines: tenant, run_id, stage and
// attempt on every one.
func (a *attempt) logger() *slog.Logger {
	a.mu.Lock()
	defer a.mu.Unlock()
	o := a.rec.Obs
	return a.base.With("tenant", o.Tenant, "run_id", o.RunID, "stage", o.Stage, "attempt", o.Attempt, "worker", a.worker)
}

func (a *attempt) update(f func(r *record)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	f(a.rec)
	now := time.Now().UTC()
	a.rec.Obs.UpdatedAt = &now
}

// snapshot is a copy of the record to save.
func (a *attempt) snapshot() *record {
	a.mu.Lock()
	defer a.mu.Unlock()
	b, _ := json.Marshal(a.rec)
	var r record
	json.Unmarshal(b, &r)
	return &r
}

// failed notes a failed call to dep in the run's outages and retry counts.
func (a *attempt) failed(dep string, err error, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.rec.Retries == nil {
		a.rec.Retries = map[string]int{}
	}
	a.rec.Retries[dep]++
	msg := model.Clip(err.Error(), 300)
	if i, ok := a.open[dep]; ok {
		a.rec.Outages[i].Failures++
		a.rec.Outages[i].Error = msg
		return
	}
	a.rec.Outages = append(a.rec.Outages, Outage{Dependency: dep, From: now, Failures: 1, Error: msg})
	a.open[dep] = len(a.rec.Outages) - 1
}

// recovered closes dep's open outage.
func (a *attempt) recovered(dep string, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if i, ok := a.open[dep]; ok {
		a.rec.Outages[i].To = &now
		delete(a.open, dep)
	}
}

// errLockUnknown: Redis could not be reached for longer than the lock's TTL,
// so another worker may hold the tenant now.
var errLockUnknown = errors.New("the tenant lock could not be renewed for longer than its TTL")

// run is one attempt at a run, holding the tenant's lock: it resumes from
// the run's checkpoint and ends it, or schedules the next attempt.
func (w *workers) run(ctx context.Context, t TenantConfig, lock *coord.Lock, msgID string, rec *record) {
	a := &attempt{rec: rec, t: t, lock: lock, open: map[string]int{}, base: w.log, worker: w.id}
	began := time.Now()
	for i, o := range rec.Outages { // outages an earlier attempt left open
		if o.To == nil {
			a.open[o.Dependency] = i
		}
	}
	a.update(func(r *record) {
		r.Obs.Attempt++
		r.Obs.State, r.Obs.Error, r.RetryAt, r.Worker = model.StateRunning, "", nil, w.id
		if r.Obs.Stage == model.StageQueued {
			r.Obs.Stage = model.StageDownloading
		}
	})
	log := a.logger()
	if rec.Obs.Attempt > 1 {
		log.Info("run resumed", "checkpoint", rec.Checkpoint.summary())
	} else {
		log.Info("run started", "files", len(rec.Files))
	}
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var beats sync.WaitGroup
	beats.Add(1)
	go func() { defer beats.Done(); w.heartbeat(runCtx, a, cancel) }()
	err := w.stages.checkpoint(runCtx, a)
	if err == nil {
		err = w.stages.run(runCtx, a)
	}
	if cause := context.Cause(runCtx); cause != nil && ctx.Err() == nil && !errors.Is(cause, context.Canceled) {
		err = cause
	}
	cancel(nil)
	beats.Wait()
	if a.conn != nil {
		a.conn.Close()
	}
	log = a.logger()
	now := time.Now().UTC()
	a.mu.Lock()
	attemptNo := a.rec.Obs.Attempt
	a.mu.Unlock()
	end := func(state model.State, outcome string) {
		a.update(func(r *record) {
			r.Obs.State, r.Obs.FinishedAt = state, &now
			if state == model.StateSucceeded {
				r.Obs.Stage, r.Obs.RowsDone = "", r.Obs.RowsTotal
			}
			for _, i := range a.open { // outages still open end with the run
				r.Outages[i].To = &now
			}
		})
		fctx := context.WithoutCancel(ctx)
		if err := w.guard.call(fctx, a, "redis", func() error { return w.store.finish(fctx, a.snapshot(), msgID, lock) }); err != nil {
			log.Error("run ended but could not be recorded; the next worker will record it", "state", state, "error", err)
		}
		w.metrics.attempts.WithLabelValues(t.Name, outcome).Inc()
		w.metrics.durations.WithLabelValues(t.Name, outcome).Observe(time.Since(began).Seconds())
	}
	switch {
	case err == nil:
		end(model.StateSucceeded, "succeeded")
		a.mu.Lock()
		rows, q := a.rec.Obs.RowsTotal, a.rec.Obs.Quality
		a.mu.Unlock()
		log.Info("run succeeded", "rows", rows, "quality", q)
	case errors.Is(err, coord.ErrLost) || errors.Is(err, errLockUnknown):
		w.metrics.attempts.WithLabelValues(t.Name, "lost").Inc()
		w.metrics.durations.WithLabelValues(t.Name, "lost").Observe(time.Since(began).Seconds())
		log.Warn("run abandoned: the tenant lock was lost; the worker that holds it continues the run", "error", err)
	case ctx.Err() != nil:
		w.metrics.attempts.WithLabelValues(t.Name, "stopped").Inc()
		w.metrics.durations.WithLabelValues(t.Name, "stopped").Observe(time.Since(began).Seconds())
		w.store.save(context.WithoutCancel(ctx), a.snapshot(), lock)
		log.Info("run paused: the importer is stopping; another worker resumes it")
	case errors.As(err, new(permanent)) || attemptNo >= w.maxAttempts:
		a.update(func(r *record) { r.Obs.Error = model.Clip(err.Error(), model.MaxErrorLen) })
		end(model.StateFailed, "failed")
		log.Error("run failed", "error", err)
	default:
		at := w.attempts.NextAt(now, attemptNo, rand.Float64())
		a.update(func(r *record) {
			r.RetryAt = &at
			r.Obs.Error = model.Clip(fmt.Sprintf("attempt %d of %d failed, retrying at %s: %v", attemptNo, w.maxAttempts,
				at.Format(time.RFC3339), err), model.MaxErrorLen)
		})
		w.metrics.attempts.WithLabelValues(t.Name, "retrying").Inc()
		w.metrics.durations.WithLabelValues(t.Name, "retrying").Observe(time.Since(began).Seconds())
		if serr := w.stages.checkpoint(context.WithoutCancel(ctx), a); serr != nil {
			log.Error("could not record the failed attempt", "error", serr)
		}
		log.Warn("run attempt failed; it resumes from its checkpoint", "error", err, "retry_at", at)
	}
}

// heartbeat renews the lock and saves progress every heartbeat interval. It
// cancels the attempt when the lock is lost, or cannot be renewed for longer
// than its TTL (another worker may have it by then).
func (w *workers) heartbeat(ctx context.Context, a *attempt, cancel context.CancelCauseFunc) {
	tick := time.NewTicker(w.beat)
	defer tick.Stop()
	renewed := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		a.update(func(*record) {})
		err := a.lock.Renew(ctx)
		if err == nil {
			renewed = time.Now()
			err = w.store.save(ctx, a.snapshot(), a.lock)
		}
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, coord.ErrLost):
			cancel(coord.ErrLost)
			return
		case err != nil:
			now := time.Now()
			a.failed("redis", err, now.UTC())
			w.guard.count("redis")
			a.logger().Warn("heartbeat failed", "dependency", "redis", "error", err)
			if now.Sub(renewed) > w.lockTTL {
				cancel(errLockUnknown)
				return
			}
		default:
			a.recovered("redis", time.Now().UTC())
		}
	}
}
