package importer

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/etlhub/etlhub/importer/coord"
	"github.com/etlhub/etlhub/internal/breaker"
	"github.com/etlhub/etlhub/internal/retry"
	"github.com/prometheus/client_golang/prometheus"
)

// guard makes the calls to the importer's dependencies: each through the
// dependency's circuit breaker, retried with backoff and jitter while the
// breaker lets it, every failure counted and logged, and recorded in the
// run it was made for.
type guard struct {
	// breakers fail fast on a dependency that keeps failing: "redis",
	// "mongo", and "sftp:<tenant>" for each tenant's endpoint.
	breakers map[string]*breaker.Breaker
	// policy spaces the retries of one call, up to tries.
	policy retry.Policy
	tries  int
	log    *slog.Logger
	// failures counts the failed calls by dependency (nil: not counted).
	failures *prometheus.CounterVec
	// deps is what the importer sees of each dependency's calls
	// (GET /api/v1/dependencies).
	deps depStats
}

func newGuard(cfg *Config, log *slog.Logger) *guard {
	g := &guard{breakers: map[string]*breaker.Breaker{}, log: log, tries: 4,
		policy: retry.Policy{Base: 300 * time.Millisecond, Max: 5 * time.Second, Factor: 2, Jitter: 0.5}}
	bc := cfg.Breaker
	for _, name := range []string{"redis", "mongo"} {
		g.breakers[name] = breaker.New(name, bc.Threshold, bc.Cooldown, 10*bc.Cooldown)
	}
	for _, t := range cfg.Tenants {
		g.breakers["sftp:"+t.Name] = breaker.New("sftp:"+t.Name, bc.Threshold, bc.Cooldown, 10*bc.Cooldown)
	}
	return g
}

// callLog is where a call records what happened for the run it is made
// for (an attempt): the failures, the recovery, and the run's logger.
type callLog interface {
	failed(dep string, err error, now time.Time)
	recovered(dep string, now time.Time)
	logger() *slog.Logger
}

// permanent marks an error that another attempt would not fix.
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

// call calls fn through dep's breaker, retrying with backoff and jitter
// while the breaker lets it; rl (nil outside a run) records the failures.
func (g *guard) call(ctx context.Context, rl callLog, dep string, fn func() error) error {
	b := g.breakers[dep]
	try := 0
	return retry.Do(ctx, g.policy, g.tries, rand.Float64, func(err error) bool {
		return !errors.Is(err, breaker.ErrOpen) && !errors.Is(err, coord.ErrHeld) &&
			!errors.Is(err, coord.ErrLost) && !errors.As(err, new(permanent)) && ctx.Err() == nil
	}, func() error {
		try++
		now := time.Now()
		if err := b.Allow(now); err != nil {
			if rl != nil {
				rl.failed(dep, err, now.UTC())
			}
			return err
		}
		end, abandon := g.deps.begin(dep)
		err := fn()
		switch {
		case err == nil || errors.Is(err, coord.ErrHeld) || errors.Is(err, coord.ErrLost) || errors.As(err, new(permanent)):
			end(false)
			b.Record(time.Now(), nil) // the dependency answered
			if rl != nil {
				rl.recovered(dep, time.Now().UTC())
			}
		case ctx.Err() == nil:
			end(true)
			b.Record(time.Now(), err)
			g.count(dep)
			l := g.log
			if rl != nil {
				rl.failed(dep, err, time.Now().UTC())
				l = rl.logger()
			}
			l.Warn("dependency call failed", "dependency", dep, "try", try, "of", g.tries, "error", err)
		default:
			abandon()
			b.Abandon() // cancelled: the call's outcome says nothing of the dependency
		}
		return err
	})
}

// count counts a failed call to dep.
func (g *guard) count(dep string) {
	if g.failures != nil {
		g.failures.WithLabelValues(dep).Inc()
	}
}

// snapshots are the state of every dependency's breaker, by name.
func (g *guard) snapshots() []breaker.Snapshot {
	names := make([]string, 0, len(g.breakers))
	for n := range g.breakers {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]breaker.Snapshot, 0, len(names))
	for _, n := range names {
		out = append(out, g.breakers[n].Snapshot())
	}
	return out
}
