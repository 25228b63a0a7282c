package api

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/etlhub/etlhub/model"
	"github.com/etlhub/etlhub/store"
)

// DefaultMaxUnconfiguredJobs and DefaultMaxSilences are the cardinality
// guards' defaults.
const (
	DefaultMaxUnconfiguredJobs = 1000
	DefaultMaxSilences         = 1000
)

// jobGuard caps the tenant/job pairs outside the configured jobs that pushes
// may create: each is a row on the board and in every status answer for
// ever. It knows the pairs the store has (reread every few minutes, so pairs
// pruned or made by another replica are seen) and those it admitted since.
type jobGuard struct {
	max        int
	configured map[model.JobKey]bool
	mu         sync.Mutex
	known      map[model.JobKey]bool
	extra      int // known pairs that are not configured
	loaded     time.Time
}

const jobGuardRefresh = 5 * time.Minute

// refresh rereads the pairs from the store when they are older than the refresh.
func (g *jobGuard) refresh(ctx context.Context, st *store.Store, now time.Time) error {
	g.mu.Lock()
	fresh := !g.loaded.IsZero() && now.Sub(g.loaded) < jobGuardRefresh
	g.mu.Unlock()
	if fresh {
		return nil
	}
	keys, err := st.JobKeys(ctx)
	if err != nil {
		return err
	}
	known := make(map[model.JobKey]bool, len(keys))
	extra := 0
	for _, k := range keys {
		known[k] = true
		if !g.configured[k] {
			extra++
		}
	}
	g.mu.Lock()
	g.known, g.extra, g.loaded = known, extra, now
	g.mu.Unlock()
	return nil
}

// admit reports why a pair may not be created, or "" when it may.
func (g *jobGuard) admit(k model.JobKey) string {
	if g.configured[k] {
		return ""
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.known[k] {
		return ""
	}
	if g.extra >= g.max {
		return fmt.Sprintf("tenant %q job %q would be a new job outside the configured ones, and %d exist already "+
			"(ingest.max_unconfigured_jobs: %d); configure it under jobs[]", k.Tenant, k.Job, g.extra, g.max)
	}
	g.known[k] = true
	g.extra++
	return ""
}
