package importer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/etlhub/etlhub/importer/coord"
	"github.com/etlhub/etlhub/importer/inbox"
	"github.com/etlhub/etlhub/importer/load"
	"github.com/etlhub/etlhub/importer/oneroster"
	"github.com/etlhub/etlhub/internal/breaker"
	"github.com/etlhub/etlhub/internal/retry"
	"github.com/etlhub/etlhub/model"
	"github.com/redis/go-redis/v9"
)

// work is one worker: it goes round the group's tenants, each worker
// starting at a different one, and takes a queued run of a tenant whose lock
// it gets. The lock makes a tenant's concurrency one, so a tenant with many
// uploads cannot hold more than one worker while others wait.
func (im *Importer) work(ctx context.Context, n int) {
	tenants := im.cfg.Tenants
	idle := min(im.cfg.Poll, time.Second)
	for i := n; ctx.Err() == nil; i++ {
		busy := false
		for k := range tenants {
			if ctx.Err() != nil {
				return
			}
			if im.tryTenant(ctx, tenants[(i+k)%len(tenants)]) {
				busy = true
			}
		}
		if !busy {
			select {
			case <-ctx.Done():
			case <-time.After(idle):
			}
		}
	}
}

// tryTenant works on the tenant's queued run if it has one, no other worker
// holds the tenant, and the run is not waiting out a backoff; it says
// whether it did.
func (im *Importer) tryTenant(ctx context.Context, t TenantConfig) bool {
	active, err := im.rdb.Get(ctx, activeKey(t.Name)).Result()
	if active == "" || err != nil {
		return false
	}
	lock, err := coord.Acquire(ctx, im.rdb, t.Name, im.cfg.LockTTL)
	if err != nil {
		return false
	}
	defer lock.Release(context.WithoutCancel(ctx))
	msgID, runID, err := im.claim(ctx, t.Name)
	if err != nil || msgID == "" {
		if err != nil && ctx.Err() == nil {
			im.log.Warn("queue read failed", "tenant", t.Name, "run_id", active, "error", err)
		}
		return false
	}
	rec, err := im.loadRecord(ctx, runID)
	if errors.Is(err, redis.Nil) {
		// The entry names a run Redis no longer has (its data was lost):
		// drop the entry rather than hold the tenant up for ever.
		im.log.Error("queued run not found; its queue entry is dropped", "tenant", t.Name, "run_id", runID, "stage", "queued", "attempt", 0)
		im.drop(ctx, t.Name, msgID, runID)
		return false
	}
	if err != nil {
		im.log.Warn("queued run unreadable", "tenant", t.Name, "run_id", runID, "error", err)
		return false
	}
	if rec.Obs.State.Terminal() { // finished, but the worker died before acknowledging
		im.finish(ctx, rec, msgID, lock)
		return false
	}
	if rec.RetryAt != nil && time.Now().Before(*rec.RetryAt) {
		return false
	}
	im.run(ctx, t, lock, msgID, rec)
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
}

// log is the logger for the run's lines: tenant, run_id, stage and attempt
// on every one.
func (im *Importer) runLog(a *attempt) *slog.Logger {
	a.mu.Lock()
	defer a.mu.Unlock()
	o := a.rec.Obs
	return im.log.With("tenant", o.Tenant, "run_id", o.RunID, "stage", o.Stage, "attempt", o.Attempt, "worker", im.id)
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

// permanent marks an error that another attempt would not fix.
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

// errLockUnknown: Redis could not be reached for longer than the lock's TTL,
// so another worker may hold the tenant now.
var errLockUnknown = errors.New("the tenant lock could not be renewed for longer than its TTL")

// guarded calls fn through a dependency's breaker, retrying with backoff and
// jitter while the breaker lets it; a (may be nil) records the failures.
func (im *Importer) guarded(ctx context.Context, a *attempt, dep string, fn func() error) error {
	b := im.breakers[dep]
	try := 0
	return retry.Do(ctx, im.policy, im.tries, rand.Float64, func(err error) bool {
		return !errors.Is(err, breaker.ErrOpen) && !errors.Is(err, coord.ErrHeld) &&
			!errors.Is(err, coord.ErrLost) && !errors.As(err, new(permanent)) && ctx.Err() == nil
	}, func() error {
		try++
		now := time.Now()
		if err := b.Allow(now); err != nil {
			if a != nil {
				a.failed(dep, err, now.UTC())
			}
			return err
		}
		end, abandon := im.deps.begin(dep)
		err := fn()
		switch {
		case err == nil || errors.Is(err, coord.ErrHeld) || errors.Is(err, coord.ErrLost) || errors.As(err, new(permanent)):
			end(false)
			b.Record(time.Now(), nil) // the dependency answered
			if a != nil {
				a.recovered(dep, time.Now().UTC())
			}
		case ctx.Err() == nil:
			end(true)
			b.Record(time.Now(), err)
			im.metrics.failures.WithLabelValues(dep).Inc()
			l := im.log
			if a != nil {
				a.failed(dep, err, time.Now().UTC())
				l = im.runLog(a)
			}
			l.Warn("dependency call failed", "dependency", dep, "try", try, "of", im.tries, "error", err)
		default:
			abandon()
			b.Abandon() // cancelled: the call's outcome says nothing of the dependency
		}
		return err
	})
}

// sftp calls fn with the run's SFTP connection, dialling it when there is
// none; a failed call drops the connection so the retry dials afresh.
func (im *Importer) sftp(ctx context.Context, a *attempt, fn func(c *inbox.Client) error) error {
	return im.guarded(ctx, a, "sftp:"+a.t.Name, func() error {
		if a.conn == nil {
			c, err := inbox.Dial(ctx, a.t.SFTP)
			if err != nil {
				return err
			}
			a.conn = c
		}
		err := fn(a.conn)
		if err != nil {
			a.conn.Close()
			a.conn = nil
		}
		return err
	})
}

// checkpoint saves the run's record now, through the Redis breaker.
func (im *Importer) checkpoint(ctx context.Context, a *attempt) error {
	return im.guarded(ctx, a, "redis", func() error { return im.save(ctx, a.snapshot(), a.lock) })
}

// run is one attempt at a run, holding the tenant's lock: it resumes from
// the run's checkpoint and ends it, or schedules the next attempt.
func (im *Importer) run(ctx context.Context, t TenantConfig, lock *coord.Lock, msgID string, rec *record) {
	a := &attempt{rec: rec, t: t, lock: lock, open: map[string]int{}}
	began := time.Now()
	for i, o := range rec.Outages { // outages an earlier attempt left open
		if o.To == nil {
			a.open[o.Dependency] = i
		}
	}
	a.update(func(r *record) {
		r.Obs.Attempt++
		r.Obs.State, r.Obs.Error, r.RetryAt, r.Worker = model.StateRunning, "", nil, im.id
		if r.Obs.Stage == "queued" {
			r.Obs.Stage = "downloading"
		}
	})
	log := im.runLog(a)
	if rec.Obs.Attempt > 1 {
		log.Info("run resumed", "checkpoint", rec.Checkpoint.summary())
	} else {
		log.Info("run started", "files", len(rec.Files))
	}
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var beats sync.WaitGroup
	beats.Add(1)
	go func() { defer beats.Done(); im.heartbeat(runCtx, a, cancel) }()
	err := im.checkpoint(runCtx, a)
	if err == nil {
		err = im.stages(runCtx, a)
	}
	if cause := context.Cause(runCtx); cause != nil && ctx.Err() == nil && !errors.Is(cause, context.Canceled) {
		err = cause
	}
	cancel(nil)
	beats.Wait()
	if a.conn != nil {
		a.conn.Close()
	}
	log = im.runLog(a)
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
		if err := im.guarded(fctx, a, "redis", func() error { return im.finish(fctx, a.snapshot(), msgID, lock) }); err != nil {
			log.Error("run ended but could not be recorded; the next worker will record it", "state", state, "error", err)
		}
		im.metrics.attempts.WithLabelValues(t.Name, outcome).Inc()
		im.metrics.durations.WithLabelValues(t.Name, outcome).Observe(time.Since(began).Seconds())
	}
	switch {
	case err == nil:
		end(model.StateSucceeded, "succeeded")
		a.mu.Lock()
		rows, q := a.rec.Obs.RowsTotal, a.rec.Obs.Quality
		a.mu.Unlock()
		log.Info("run succeeded", "rows", rows, "quality", q)
	case errors.Is(err, coord.ErrLost) || errors.Is(err, errLockUnknown):
		im.metrics.attempts.WithLabelValues(t.Name, "lost").Inc()
		im.metrics.durations.WithLabelValues(t.Name, "lost").Observe(time.Since(began).Seconds())
		log.Warn("run abandoned: the tenant lock was lost; the worker that holds it continues the run", "error", err)
	case ctx.Err() != nil:
		im.metrics.attempts.WithLabelValues(t.Name, "stopped").Inc()
		im.metrics.durations.WithLabelValues(t.Name, "stopped").Observe(time.Since(began).Seconds())
		im.save(context.WithoutCancel(ctx), a.snapshot(), lock)
		log.Info("run paused: the importer is stopping; another worker resumes it")
	case errors.As(err, new(permanent)) || attemptNo >= im.cfg.MaxAttempts:
		a.update(func(r *record) { r.Obs.Error = model.Clip(err.Error(), model.MaxErrorLen) })
		end(model.StateFailed, "failed")
		log.Error("run failed", "error", err)
	default:
		at := im.attempts.NextAt(now, attemptNo, rand.Float64())
		a.update(func(r *record) {
			r.RetryAt = &at
			r.Obs.Error = model.Clip(fmt.Sprintf("attempt %d of %d failed, retrying at %s: %v", attemptNo, im.cfg.MaxAttempts,
				at.Format(time.RFC3339), err), model.MaxErrorLen)
		})
		im.metrics.attempts.WithLabelValues(t.Name, "retrying").Inc()
		im.metrics.durations.WithLabelValues(t.Name, "retrying").Observe(time.Since(began).Seconds())
		if serr := im.checkpoint(context.WithoutCancel(ctx), a); serr != nil {
			log.Error("could not record the failed attempt", "error", serr)
		}
		log.Warn("run attempt failed; it resumes from its checkpoint", "error", err, "retry_at", at)
	}
}

// heartbeat renews the lock and saves progress every heartbeat interval. It
// cancels the attempt when the lock is lost, or cannot be renewed for longer
// than its TTL (another worker may have it by then).
func (im *Importer) heartbeat(ctx context.Context, a *attempt, cancel context.CancelCauseFunc) {
	tick := time.NewTicker(im.cfg.Heartbeat)
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
			err = im.save(ctx, a.snapshot(), a.lock)
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
			im.metrics.failures.WithLabelValues("redis").Inc()
			im.runLog(a).Warn("heartbeat failed", "dependency", "redis", "error", err)
			if now.Sub(renewed) > im.cfg.LockTTL {
				cancel(errLockUnknown)
				return
			}
		default:
			a.recovered("redis", time.Now().UTC())
		}
	}
}

func (c checkpoint) summary() string {
	var done []string
	for _, s := range []struct {
		ok   bool
		name string
	}{{c.Downloaded, "downloaded"}, {c.Validated, "validated"}, {c.Published, "published"}, {c.Archived, "archived"}} {
		if s.ok {
			done = append(done, s.name)
		}
	}
	if !c.Published && len(c.Load) > 0 {
		rows := 0
		for _, m := range c.Load {
			rows += m.Rows
		}
		done = append(done, fmt.Sprintf("%d rows loaded", rows))
	}
	if len(done) == 0 {
		return "nothing done yet"
	}
	return strings.Join(done, ", ")
}

func (a *attempt) setStage(stage model.Stage) { a.update(func(r *record) { r.Obs.Stage = stage }) }

// stages carries the run from its checkpoint to the end: download, validate
// and decide, load and publish, archive. A stage done is not done again.
func (im *Importer) stages(ctx context.Context, a *attempt) error {
	rec := a.snapshot()
	ck := rec.Checkpoint
	id := rec.Obs.RunID
	safe := BatchName(id)
	dir := filepath.Join(im.cfg.WorkDir, safe)
	if _, err := privateDir(dir); err != nil {
		return err
	}
	if !ck.Downloaded || !localComplete(dir, ck.Sizes) {
		a.setStage("downloading")
		sizes := map[string]int64{}
		for _, f := range rec.Files {
			local := filepath.Join(dir, f)
			if err := im.sftp(ctx, a, func(c *inbox.Client) error { _, err := c.Download(f, local); return err }); err != nil {
				return err
			}
			st, err := os.Stat(local)
			if err != nil {
				return err
			}
			sizes[f] = st.Size()
		}
		a.update(func(r *record) { r.Checkpoint.Downloaded, r.Checkpoint.Sizes = true, sizes })
		if err := im.checkpoint(ctx, a); err != nil {
			return err
		}
	}
	files, err := uploadFS(dir, rec.Files)
	if err != nil {
		return permanent{err}
	}
	if cl, ok := files.(io.Closer); ok {
		defer cl.Close()
	}
	if !ck.Validated {
		if err := im.validate(ctx, a, files, safe); err != nil {
			return err
		}
	}
	rec = a.snapshot()
	if !rec.Checkpoint.Published {
		a.setStage("loading")
		ld := *im.loader // a copy per run: tenants load concurrently
		ld.Progress = func(done int64) {
			a.update(func(r *record) { r.Obs.RowsDone = done })
			a.recovered("mongo", time.Now().UTC()) // a batch went in
		}
		ld.Mark = func(e string, m load.Mark) {
			a.update(func(r *record) {
				if r.Checkpoint.Load == nil {
					r.Checkpoint.Load = load.Checkpoint{}
				}
				r.Checkpoint.Load[e] = m
			})
		}
		var ptr load.Pointer
		if err := im.guarded(ctx, a, "mongo", func() error {
			ld.Resume = a.snapshot().Checkpoint.Load // each try resumes from the marks so far
			var err error
			ptr, err = ld.Load(ctx, a.t.Name, id, files, rec.Checkpoint.Modes)
			return err
		}); err != nil {
			return err
		}
		if len(ptr.Duplicates) > 0 {
			im.runLog(a).Warn("rows not loaded: their sourcedId repeats an earlier row of the file (row.duplicate_sourcedid in the report)",
				"rows_by_file", ptr.Duplicates)
		}
		a.update(func(r *record) { r.Checkpoint.Published, r.Obs.Stage = true, "publishing" })
		if err := im.checkpoint(ctx, a); err != nil {
			return err
		}
	}
	if !rec.Checkpoint.Archived {
		a.setStage("publishing")
		if err := im.sftp(ctx, a, func(c *inbox.Client) error { return c.Archive(safe, rec.Files) }); err != nil {
			return err
		}
		a.update(func(r *record) { r.Checkpoint.Archived = true })
	}
	os.RemoveAll(dir)
	return nil
}

// validate checks the upload, sends the district its report, and decides
// by the tenant's policy whether to load.
func (im *Importer) validate(ctx context.Context, a *attempt, files fs.FS, safe string) error {
	a.setStage("validating")
	rep := oneroster.NewReport(5)
	res, err := oneroster.ValidateWith(files, a.t.Policy.Options(), rep.Add)
	if err != nil {
		return permanent{err}
	}
	rep.Finish(res)
	total := int64(0)
	modes := map[string]load.Mode{}
	for e, st := range rep.Files {
		total += int64(st.Rows)
		modes[e] = load.Mode(st.Mode)
	}
	a.update(func(r *record) {
		r.Obs.Quality = &model.Quality{Errors: int64(rep.Errors), Warnings: int64(rep.Warnings)}
		r.Obs.RowsTotal = total
	})
	var csvBuf strings.Builder
	rep.WriteCSV(&csvBuf)
	js, _ := json.MarshalIndent(rep, "", "  ")
	if err := im.sftp(ctx, a, func(c *inbox.Client) error {
		if err := c.Put("reports/"+safe+".csv", strings.NewReader(csvBuf.String())); err != nil {
			return err
		}
		return c.Put("reports/"+safe+".json", strings.NewReader(string(js)))
	}); err != nil {
		im.runLog(a).Warn("the district's report could not be uploaded", "error", err)
	}
	var current map[string]int
	if err := im.guarded(ctx, a, "mongo", func() error {
		var err error
		current, err = im.loader.Counts(ctx, a.t.Name)
		return err
	}); err != nil {
		return err
	}
	dec := a.t.Policy.Decide(rep, current)
	body, _ := json.Marshal(map[string]any{"run_id": a.rec.Obs.RunID, "report": rep, "decision": dec})
	if err := im.guarded(ctx, a, "redis", func() error {
		return im.rdb.Set(ctx, reportKey(a.rec.Obs.RunID), body, 30*24*time.Hour).Err()
	}); err != nil {
		return err
	}
	a.update(func(r *record) { r.Checkpoint.Validated, r.Checkpoint.Decision, r.Checkpoint.Modes = true, &dec, modes })
	if !dec.Load {
		if err := im.sftp(ctx, a, func(c *inbox.Client) error { return c.Archive(safe, a.snapshot().Files) }); err != nil {
			im.runLog(a).Warn("archiving the rejected upload failed", "error", err)
		}
		return permanent{fmt.Errorf("rejected by policy: %s", strings.Join(dec.Reasons, "; "))}
	}
	return im.checkpoint(ctx, a)
}

// BatchName is a run's name in file paths: its work directory, the
// district's reports/NAME.csv and .json, and archive/NAME/.
func BatchName(runID string) string { return strings.NewReplacer("/", "_", "#", "_").Replace(runID) }

// localComplete says the downloaded files are all here at their sizes.
func localComplete(dir string, sizes map[string]int64) bool {
	if len(sizes) == 0 {
		return false
	}
	for f, n := range sizes {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil || st.Size() != n {
			return false
		}
	}
	return true
}
