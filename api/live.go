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
// out: they move the risk when it matters.
func (s *server) digests(ctx context.Context) (map[string]uint64, error) {
	sums := map[string]*digest{}
	sum := func(tenant string) *digest {
		d := sums[tenant]
		if d == nil {
			d = &digest{}
			sums[tenant] = d
		}
		return d
	}
	if s.o.Views != nil {
		views := s.o.Views.JobViews()
		keys := make([]model.JobKey, 0, len(views))
		for k := range views {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return keys[i].Tenant+"\x00"+keys[i].Job < keys[j].Tenant+"\x00"+keys[j].Job })
		for _, k := range keys {
			v := views[k]
			d := sum(k.Tenant)
			d.add("job", k.Job, v.Risk, strconv.Itoa(v.ActiveAlerts))
			if v.Deadline != nil {
				d.add(v.Deadline.UTC().Format(time.RFC3339))
			}
			for _, o := range []*rules.Outcome{v.Outcome, v.LastNight} {
				if o == nil {
					d.add("-")
					continue
				}
				fin := ""
				if o.FinishedAt != nil {
					fin = o.FinishedAt.UTC().Format(time.RFC3339)
				}
				d.add(o.Kind, o.Night.UTC().Format(time.RFC3339), fin, strconv.Itoa(o.Attempts))
			}
		}
	}
	if s.o.Store == nil {
		return flatten(sums), nil
	}
	alerts, err := s.o.Store.ListAlerts(ctx, store.AlertFilter{States: []model.AlertState{model.AlertPending, model.AlertFiring}, Limit: 1000})
	if err != nil {
		return nil, err
	}
	sort.Slice(alerts, func(i, j int) bool { return alerts[i].ID < alerts[j].ID })
	for _, a := range alerts {
		sum(a.Tenant).add("alert", a.ID, string(a.State), string(a.Severity), a.AckedBy, strconv.FormatBool(a.Silenced))
	}
	notes, err := s.o.Store.ListOutbox(ctx, "", 200)
	if err != nil {
		return nil, err
	}
	for _, n := range notes {
		sum(n.Alert.Tenant).add("note", strconv.FormatUint(n.ID, 10), n.Status, strconv.Itoa(n.Attempts))
	}
	return flatten(sums), nil
}

type digest struct{ h uint64 }

func (d *digest) add(parts ...string) {
	f := fnv.New64a()
	var b [8]byte
	for i := 0; i < 8; i++ {
		b[i] = byte(d.h >> (8 * i))
	}
	f.Write(b[:])
	for _, p := range parts {
		f.Write([]byte(p))
		f.Write([]byte{0})
	}
	d.h = f.Sum64()
}

func flatten(sums map[string]*digest) map[string]uint64 {
	out := make(map[string]uint64, len(sums))
	for t, d := range sums {
		out[t] = d.h
	}
	return out
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
