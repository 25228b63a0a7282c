package api

import (
	"context"
	"slices"
	"sync"

	"github.com/etlhub/etlhub/model"
	"github.com/etlhub/etlhub/store"
)

// Live fans changes out to the event streams (GET /api/v1/events): each
// subscriber hears of the tenants its token may see, and only of those. The
// hub shares one with the API (Options.Live) so that what its collectors
// store reaches the open pages as pushes do.
type Live = live

// NewLive is an empty fan-out.
func NewLive() *Live { return &live{} }

// Changed tells the event streams that these observations were stored.
func (l *live) Changed(obs []model.Observation) {
	seen := map[string]bool{}
	var tenants []string
	for i := range obs {
		if t := obs[i].Tenant; !seen[t] {
			seen[t] = true
			tenants = append(tenants, t)
		}
	}
	if len(tenants) > 0 {
		l.publish(tenants)
	}
}

type live struct {
	mu   sync.Mutex
	subs map[*subscriber]struct{}
}

type subscriber struct {
	p  *principal
	ch chan []string
}

func (l *live) subscribe(p *principal) *subscriber {
	sub := &subscriber{p: p, ch: make(chan []string, 1)}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.subs == nil {
		l.subs = map[*subscriber]struct{}{}
	}
	l.subs[sub] = struct{}{}
	return sub
}

func (l *live) unsubscribe(sub *subscriber) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.subs, sub)
}

// publish tells every subscriber that may see one of tenants. A subscriber
// that has not read the last change yet keeps it, with these tenants added:
// the page reads the whole status on a change anyway, so nothing is lost.
func (l *live) publish(tenants []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for sub := range l.subs {
		var seen []string
		for _, t := range tenants {
			if sub.p.CanSee(t) {
				seen = append(seen, t)
			}
		}
		if len(seen) == 0 {
			continue
		}
		select {
		case old := <-sub.ch:
			for _, t := range old {
				if !slices.Contains(seen, t) {
					seen = append(seen, t)
				}
			}
		default:
		}
		sub.ch <- seen
	}
}

// liveIngest publishes the tenants of what was stored through it.
type liveIngest struct {
	Ingester
	live *live
}

func (l liveIngest) Ingest(ctx context.Context, via string, obs []model.Observation) (store.IngestResult, error) {
	res, err := l.Ingester.Ingest(ctx, via, obs)
	if err == nil {
		l.live.Changed(obs)
	}
	return res, err
}
