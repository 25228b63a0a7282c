package api

import (
	"context"
	"hash/fnv"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/etlhub/etlhub/model"
	"github.com/etlhub/etlhub/rules"
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

	// What changes without a new observation (an alert firing because time
	// passed, a night turning late at its deadline, an acknowledgement from
	// PagerDuty, a page delivered) is found by the watcher: while a page
	// listens, every watchEvery it reads digest and tells the tenants whose
	// digest differs from the last one read. last outlives the watcher, so
	// a change while no page listened (a stream reconnecting) is told once
	// one listens again.
	digest     func(ctx context.Context) (map[string]uint64, error)
	watchEvery time.Duration
	log        *slog.Logger
	last       map[string]uint64
	stopWatch  context.CancelFunc
	watchDone  chan struct{}
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
	if l.digest != nil && l.stopWatch == nil {
		ctx, cancel := context.WithCancel(context.Background())
		l.stopWatch, l.watchDone = cancel, make(chan struct{})
		go l.watch(ctx, l.watchDone)
	}
	return sub
}

func (l *live) unsubscribe(sub *subscriber) {
	l.mu.Lock()
	delete(l.subs, sub)
	var done chan struct{}
	if len(l.subs) == 0 && l.stopWatch != nil {
		l.stopWatch()
		done = l.watchDone
		l.stopWatch, l.watchDone = nil, nil
	}
	l.mu.Unlock()
	if done != nil {
		<-done // the last stream waits for the watcher it started
	}
}

// watch reads the digest every watchEvery until ctx ends and publishes the
// tenants whose digest changed (appeared or went away included).
func (l *live) watch(ctx context.Context, done chan struct{}) {
	defer close(done)
	every := l.watchEvery
	if every <= 0 {
		every = time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, every*5)
		cur, err := l.digest(rctx)
		cancel()
		if err != nil {
			// The pages notice by themselves (their reads fail); say it
			// once per spell, not every second.
			if !failing && ctx.Err() == nil && l.log != nil {
				l.log.Warn("event streams: reading what changed failed; changes without new observations wait", "error", err)
			}
			failing = true
			continue
		}
		failing = false
		l.mu.Lock()
		var changed []string
		if l.last != nil {
			for t, h := range cur {
				if old, ok := l.last[t]; !ok || old != h {
					changed = append(changed, t)
				}
			}
			for t := range l.last {
				if _, ok := cur[t]; !ok {
					changed = append(changed, t)
				}
			}
		}
		l.last = cur
		l.mu.Unlock()
		if len(changed) > 0 {
			sort.Strings(changed)
			l.publish(changed)
		}
	}
}

// digests sums, per tenant, what the board and the alerts page show that
// the rules and the alert lifecycle change by themselves: each job's risk,
// active alerts, deadline and tonight's and last night's outcome; each
// active alert's state, acknowledgement and severity; each notification's
// delivery. Shared alerts count under the tenant "" (the unscoped pages
// read everything again). Predictions that drift minute by minute are left
// out: they move the risk when it matters. A tenant's digest is a sum of
// its items' hashes, so the order they are read in does not matter.
func (s *server) digests(ctx context.Context) (map[string]uint64, error) {
	sums := map[string]uint64{}
	f := fnv.New64a()
	var buf []byte
	item := func(tenant string, parts ...string) {
		f.Reset()
		buf = buf[:0]
		for _, p := range parts {
			buf = append(append(buf, p...), 0)
		}
		f.Write(buf)
		h := f.Sum64()
		// Mixed (splitmix64's finaliser) before summing, so that items
		// differing in one part do not cancel out.
		h ^= h >> 30
		h *= 0xbf58476d1ce4e5b9
		h ^= h >> 27
		h *= 0x94d049bb133111eb
		h ^= h >> 31
		sums[tenant] += h
	}
	var stamp [4][20]byte
	ts := func(i int, t *time.Time) string {
		if t == nil || t.IsZero() {
			return "-"
		}
		return string(t.UTC().AppendFormat(stamp[i][:0], time.RFC3339))
	}
	if s.o.Views != nil {
		for k, v := range s.o.Views.JobViews() {
			parts := []string{"job", k.Job, v.Risk, strconv.Itoa(v.ActiveAlerts), ts(0, v.Deadline)}
			for _, o := range []*rules.Outcome{v.Outcome, v.LastNight} {
				if o == nil {
					parts = append(parts, "-")
					continue
				}
				night := o.Night
				parts = append(parts, o.Kind, ts(1, &night), ts(2, o.FinishedAt), strconv.Itoa(o.Attempts))
			}
			item(k.Tenant, parts...)
		}
	}
	if s.o.Store == nil {
		return sums, nil
	}
	alerts, err := s.o.Store.ListAlerts(ctx, store.AlertFilter{States: []model.AlertState{model.AlertPending, model.AlertFiring}, Limit: 1000})
	if err != nil {
		return nil, err
	}
	for _, a := range alerts {
		item(a.Tenant, "alert", a.ID, string(a.State), string(a.Severity), a.AckedBy, strconv.FormatBool(a.Silenced))
	}
	notes, err := s.o.Store.ListOutbox(ctx, "", 200)
	if err != nil {
		return nil, err
	}
	for _, n := range notes {
		item(n.Alert.Tenant, "note", strconv.FormatUint(n.ID, 10), n.Status, strconv.Itoa(n.Attempts))
	}
	return sums, nil
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
