package app

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/etlhub/etlhub/internal/lifecycle"
	"github.com/etlhub/etlhub/rules"
	"github.com/etlhub/etlhub/store"
	"github.com/prometheus/client_golang/prometheus"
)

// storeWatch pings the store every second on every replica. While it does
// not answer, /readyz says so (and since when), pushes are answered 503 with
// Retry-After, and the interval is the hub's blind interval: recorded in the
// store once it answers again (every replica's, so the leader of any later
// term knows), and given to the rules, which do not judge jobs' silences
// over it (rules.Seen).
type storeWatch struct {
	*lifecycle.Loop
	st      *store.Store
	log     *slog.Logger
	now     func() time.Time
	replica string
	every   time.Duration
	up      prometheus.Gauge

	mu        sync.Mutex
	lastOK    time.Time
	downSince time.Time
	reason    string
	// local are this replica's outages of the last day; unrecorded those
	// not stored yet; stored what every replica recorded (read when up).
	local      []rules.Interval
	unrecorded []store.BlindInterval
	stored     []rules.Interval
	readAt     time.Time
}

// blindMemory is how far back blind intervals count: longer than any job's
// stale_after or missed-start grace is expected to be.
const blindMemory = 48 * time.Hour

func newStoreWatch(st *store.Store, log *slog.Logger, now func() time.Time, replica string, reg prometheus.Registerer) *storeWatch {
	w := &storeWatch{st: st, log: log, now: now, replica: replica, every: time.Second, lastOK: now(),
		up: prometheus.NewGauge(prometheus.GaugeOpts{Name: "etlhub_store_up", Help: "1 while the store answers this replica's pings (every second)."})}
	w.up.Set(1)
	reg.MustRegister(w.up)
	w.Loop = lifecycle.NewLoop("store watch", w.run)
	return w
}

func (w *storeWatch) run(ctx context.Context) {
	t := time.NewTicker(w.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		w.check(ctx)
	}
}

// check pings once and records what changed.
func (w *storeWatch) check(ctx context.Context) {
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	err := w.st.Ping(pctx)
	cancel()
	if ctx.Err() != nil {
		return
	}
	now := w.now()
	w.mu.Lock()
	if err != nil {
		if w.downSince.IsZero() {
			w.downSince, w.reason = now, describeStoreError(err)
			w.up.Set(0)
			w.log.Error("the store does not answer: the hub is blind until it does", "reason", w.reason, "last_answer", w.lastOK)
		}
		w.mu.Unlock()
		return
	}
	if !w.downSince.IsZero() {
		b := store.BlindInterval{Replica: w.replica, From: w.lastOK, To: now, Reason: w.reason}
		w.unrecorded = append(w.unrecorded, b)
		w.local = append(w.local, rules.Interval{From: b.From, To: b.To})
		w.log.Warn("the store answers again", "blind_for", now.Sub(w.lastOK).Round(time.Second).String(), "from", b.From, "to", b.To)
		w.downSince, w.reason = time.Time{}, ""
		w.up.Set(1)
	}
	w.lastOK = now
	for len(w.local) > 0 && now.Sub(w.local[0].To) > blindMemory {
		w.local = w.local[1:]
	}
	pending := append([]store.BlindInterval(nil), w.unrecorded...)
	refresh := len(pending) > 0 || now.Sub(w.readAt) >= 10*time.Second
	w.mu.Unlock()

	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for i, b := range pending {
		if err := w.st.RecordBlind(rctx, b, now.Add(-blindMemory)); err != nil {
			w.log.Warn("recording the hub's blind interval failed; will retry", "error", err)
			pending = pending[:i]
			break
		}
	}
	var stored []rules.Interval
	if refresh {
		bs, err := w.st.BlindSince(rctx, now.Add(-blindMemory))
		if err != nil {
			refresh = false
		}
		for _, b := range bs {
			stored = append(stored, rules.Interval{From: b.From, To: b.To})
		}
	}
	w.mu.Lock()
	w.unrecorded = w.unrecorded[len(pending):]
	if refresh {
		w.stored, w.readAt = stored, now
	}
	w.mu.Unlock()
}

// Down says whether the store is unreachable, since when and why.
func (w *storeWatch) Down() (since time.Time, reason string, down bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lastOK, w.reason, !w.downSince.IsZero()
}

// Blind is every blind interval known at now: every replica's recorded
// outages, this one's, and the one going on.
func (w *storeWatch) Blind(now time.Time) []rules.Interval {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := append(append([]rules.Interval(nil), w.stored...), w.local...)
	if !w.downSince.IsZero() {
		out = append(out, rules.Interval{From: w.lastOK, To: now})
	}
	return out
}

// describeStoreError says why the store did not answer without quoting the
// driver's text (which may name hosts and users).
func describeStoreError(err error) string {
	msg := strings.ToLower(err.Error())
	switch {
	case errors.Is(err, context.DeadlineExceeded) || strings.Contains(msg, "timeout"):
		return "timed out"
	case strings.Contains(msg, "refused"):
		return "connection refused"
	case strings.Contains(msg, "shutting down") || strings.Contains(msg, "starting up") || strings.Contains(msg, "recovery"):
		return "the database is starting or shutting down"
	case strings.Contains(msg, "closed"):
		return "connection closed"
	default:
		return "the store answered with an error"
	}
}
