package api

import (
	"context"
	"hash/fnv"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"
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
func NewLive() *Live {
	return &live{epoch: strconv.FormatInt(time.Now().UnixNano(), 36)}
}

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

	// Every change has an id, EPOCH.SEQ (the epoch is this fan-out's: a
	// restarted or reloaded hub has another), sent with its event; the last
	// maxRecent changes are kept, so a page that reconnects with the id of
	// the last event it heard (Last-Event-ID) hears at once of what changed
	// while it was away, and of everything when that is more than was kept
	// or the id is of another epoch.
	epoch  string
	seq    uint64
	recent []change
	kept   int // tenants in recent

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

// maxRecent and maxRecentTenants bound the changes kept for pages that
// reconnect (a page is away for about a second between two streams; the
// watcher and the pushes make a few changes a second): the last 1024
// changes, of 16,384 tenants in all at most.
const (
	maxRecent        = 1024
	maxRecentTenants = 16384
)

// change is one change published: its sequence number and tenants.
type change struct {
	seq     uint64
	tenants []string
}

// note is what a subscriber has not read yet: the tenants of one or more
// changes up to seq, or all (everything may have changed).
type note struct {
	seq     uint64
	tenants []string
	all     bool
}

type subscriber struct {
	p  *principal
	ch chan note
}

// id is the event id of change seq.
func (l *live) id(seq uint64) string { return l.epoch + "." + strconv.FormatUint(seq, 10) }

// subscribe adds a subscriber; lastID is the id of the last event it heard
// before (Last-Event-ID; "" for none). It returns the id of the state it
// starts from: every change after it reaches the subscriber, and what
// changed after lastID is waiting for it already.
func (l *live) subscribe(p *principal, lastID string) (*subscriber, string) {
	sub := &subscriber{p: p, ch: make(chan note, 1)}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.subs == nil {
		l.subs = map[*subscriber]struct{}{}
	}
	l.subs[sub] = struct{}{}
	if lastID != "" {
		if missed := l.since(p, lastID); missed.all || len(missed.tenants) > 0 {
			sub.ch <- missed
		}
	}
	if l.digest != nil && l.stopWatch == nil {
		ctx, cancel := context.WithCancel(context.Background())
		l.stopWatch, l.watchDone = cancel, make(chan struct{})
		go l.watch(ctx, l.watchDone)
	}
	return sub, l.id(l.seq)
}

// since is what p may see of the changes after the one lastID names; all
// when that is not known (another epoch, a malformed id, or older than the
// changes kept). Called with mu held.
func (l *live) since(p *principal, lastID string) note {
	out := note{seq: l.seq}
	epoch, n, ok := strings.Cut(lastID, ".")
	seq, err := strconv.ParseUint(n, 10, 64)
	if !ok || err != nil || epoch != l.epoch || seq > l.seq || (len(l.recent) > 0 && seq+1 < l.recent[0].seq) {
		out.all = true
		return out
	}
	for _, c := range l.recent {
		if c.seq <= seq {
			continue
		}
		for _, t := range c.tenants {
			if p.CanSee(t) && !slices.Contains(out.tenants, t) {
				out.tenants = append(out.tenants, t)
			}
		}
	}
	return out
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
// the page reads those tenants again on a change, so nothing is lost.
func (l *live) publish(tenants []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	l.recent = append(l.recent, change{seq: l.seq, tenants: tenants})
	l.kept += len(tenants)
	drop := 0
	for len(l.recent)-drop > 1 && (len(l.recent)-drop > maxRecent || l.kept > maxRecentTenants) {
		l.kept -= len(l.recent[drop].tenants)
		drop++
	}
	if drop > 0 {
		l.recent = append(l.recent[:0], l.recent[drop:]...)
	}
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
		n := note{seq: l.seq, tenants: seen}
		select {
		case old := <-sub.ch:
			n.all = old.all
			for _, t := range old.tenants {
				if !slices.Contains(n.tenants, t) {
					n.tenants = append(n.tenants, t)
				}
			}
		default:
		}
		sub.ch <- n
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
