package store

import (
	"cmp"
	"context"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/etlhub/etlhub/model"
	"gorm.io/gorm"
)

// Group commit (PostgreSQL). Concurrent Ingest calls of one process share
// transactions: a call queues its observations and, while fewer than
// maxFlushes transactions are under way, takes everything queued into one
// (its own among it); otherwise it waits until a transaction has taken its
// observations and committed (or failed). Each call returns only once the
// transaction holding its observations has committed, so nothing is
// acknowledged that is not durable; a failed transaction fails every call
// it held, and each caller answers with the error (a pusher retries, and
// the observations that did land are duplicates then, not stored twice).
//
// A busy hub thus pays one commit (one WAL flush with fsync on) and a few
// statements for many requests, not for each.

// maxFlushes is how many ingest transactions one process runs at once:
// two keep the database busy while the next group gathers.
const maxFlushes = 2

// maxGroup bounds the observations one transaction takes (several pushes of
// the largest size).
const maxGroup = 40000

// groupTimeout bounds one group's transaction: it does not stop with the
// context of the call that happened to run it.
const groupTimeout = 30 * time.Second

type ingestCall struct {
	owner any // IngestFor's
	obs   []model.Observation
	res   IngestResult
	err   error
	taken bool
	done  chan struct{}
}

type ingestGroup struct {
	mu      sync.Mutex
	cond    *sync.Cond
	queue   []*ingestCall
	running int
}

func (s *Store) ingestGrouped(ctx context.Context, obs []model.Observation) (IngestResult, error) {
	g := &s.group
	call := &ingestCall{owner: ctx.Value(ownerKey{}), obs: obs, done: make(chan struct{})}
	g.mu.Lock()
	if g.cond == nil {
		g.cond = sync.NewCond(&g.mu)
	}
	g.queue = append(g.queue, call)
	for !call.taken {
		if g.running < maxFlushes {
			// Take the queue, up to maxGroup observations (this call's
			// always: it is queued first of those waiting for a slot).
			var batch []*ingestCall
			n := 0
			for len(g.queue) > 0 && (len(batch) == 0 || n+len(g.queue[0].obs) <= maxGroup) {
				c := g.queue[0]
				g.queue = g.queue[1:]
				c.taken = true
				n += len(c.obs)
				batch = append(batch, c)
			}
			g.running++
			g.mu.Unlock()
			s.flushGroup(ctx, batch)
			g.mu.Lock()
			g.running--
			g.cond.Broadcast()
			continue
		}
		g.cond.Wait()
	}
	g.mu.Unlock()
	<-call.done
	return call.res, call.err
}

// flushGroup stores the calls' observations in one transaction and answers
// each call.
func (s *Store) flushGroup(ctx context.Context, calls []*ingestCall) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), groupTimeout)
	defer cancel()
	var all []model.Observation
	if len(calls) == 1 {
		all = calls[0].obs
	} else {
		for _, c := range calls {
			all = append(all, c.obs...)
		}
	}
	if s.metrics != nil {
		s.metrics.grouped(len(calls), len(all))
	}
	rows := make([]observationRow, len(all))
	keys := make([]RunKey, 0, len(all))
	seen := make(map[RunKey]bool, len(all))
	for i := range all {
		rows[i] = toObservationRow(&all[i])
		if k := keyOf(&all[i]); !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	sorted := slices.Clone(keys)
	slices.SortFunc(sorted, compareRunKeys)
	var inserted map[obsKey]bool
	var runs map[RunKey]*model.Run
	var xact int64
	err := s.write(ctx, "ingest", func(tx *gorm.DB) error {
		var err error
		if inserted, xact, err = insertObservationsPG(ctx, tx, rows); err != nil {
			return err
		}
		if runs, err = loadRunsPG(ctx, tx, sorted); err != nil {
			return err
		}
		// Fold in at order so that the newest observation wins.
		order := make([]int, len(all))
		for i := range order {
			order[i] = i
		}
		sort.SliceStable(order, func(a, b int) bool { return all[order[a]].At.Before(all[order[b]].At) })
		fold := func(only map[RunKey]bool) map[RunKey]bool {
			changed := map[RunKey]bool{}
			for _, i := range order {
				k := keyOf(&all[i])
				if only != nil && !only[k] {
					continue
				}
				r := runs[k]
				if r == nil {
					r = &model.Run{}
					runs[k] = r
				}
				if r.Apply(&all[i]) {
					changed[k] = true
				}
			}
			return changed
		}
		existed := make(map[RunKey]bool, len(runs))
		for k := range runs {
			existed[k] = true
		}
		changed := fold(nil)
		var upd, fresh []runRow
		for _, k := range sorted {
			switch {
			case !existed[k]:
				fresh = append(fresh, toRunRow(runs[k]))
			case changed[k]:
				upd = append(upd, toRunRow(runs[k]))
			}
		}
		if err := upsertRunsPG(ctx, tx, upd); err != nil {
			return err
		}
		// A run new to this transaction may have been written meanwhile by
		// another (a push of the same run to another replica): the insert
		// waits for it, and then this transaction folds its observations
		// into what that one wrote instead of overwriting it.
		lost, err := insertRunsPG(ctx, tx, fresh)
		if err != nil || len(lost) == 0 {
			return err
		}
		again, err := loadRunsPG(ctx, tx, lost)
		if err != nil {
			return err
		}
		only := map[RunKey]bool{}
		for _, k := range lost {
			only[k] = true
			delete(runs, k)
			if r := again[k]; r != nil {
				runs[k] = r
			}
		}
		changed = fold(only)
		upd = upd[:0]
		for _, k := range lost {
			if changed[k] {
				upd = append(upd, toRunRow(runs[k]))
			}
		}
		return upsertRunsPG(ctx, tx, upd)
	})
	s.changes.Add(1)
	// The transaction is its calls' when they are one owner's (who hands on
	// what it stored and may skip it when following the table).
	for _, c := range calls {
		if c.owner == nil || c.owner != calls[0].owner {
			xact = 0
		}
	}
	// Each call is answered with its own counts: an observation is stored
	// by the first call that holds it.
	off := 0
	for _, c := range calls {
		if err != nil {
			c.err = err
		} else {
			ks := map[RunKey]bool{}
			for i := range c.obs {
				k := obsKey{rows[off+i].RunID, rows[off+i].Hash}
				if inserted[k] {
					c.res.Inserted++
					delete(inserted, k)
				}
				if rk := keyOf(&c.obs[i]); !ks[rk] {
					ks[rk] = true
					c.res.Runs = append(c.res.Runs, *runs[rk])
				}
			}
			c.res.Duplicates = len(c.obs) - c.res.Inserted
			c.res.Xact = xact
		}
		off += len(c.obs)
		close(c.done)
	}
}

func compareRunKeys(a, b RunKey) int {
	if c := cmp.Compare(a.Tenant, b.Tenant); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Job, b.Job); c != 0 {
		return c
	}
	return cmp.Compare(a.RunID, b.RunID)
}
