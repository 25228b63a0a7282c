package notifier

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/etlhub/etlhub/internal/retry"
	"github.com/etlhub/etlhub/model"
	"github.com/etlhub/etlhub/store"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// Outbox is the part of the store the worker needs.
type Outbox interface {
	DueOutbox(ctx context.Context, now time.Time, limit int) ([]store.OutboxItem, error)
	OutboxDelivered(ctx context.Context, id uint64, at time.Time, ref string) error
	OutboxRetry(ctx context.Context, id uint64, next time.Time, reason string) error
	OutboxFailed(ctx context.Context, id uint64, reason string) error
	OutboxRef(ctx context.Context, fingerprint, receiver string) (string, error)
	PendingGroup(ctx context.Context, receiver, groupKey string, event model.TransitionKind) ([]store.OutboxItem, error)
	GroupFiring(ctx context.Context, receiver, groupKey string) (int64, error)
}

// Receiver is a named notifier with its rate limit.
type Receiver struct {
	Name     string
	Notifier Notifier
	// Limit is deliveries a second; Burst how many may go at once.
	Limit rate.Limit
	Burst int
}

// Worker delivers the outbox.
type Worker struct {
	outbox    Outbox
	receivers map[string]*Receiver
	limiters  map[string]*rate.Limiter
	policy    retry.Policy
	maxAge    time.Duration
	dashboard string
	log       *slog.Logger
	now       func() time.Time
	metrics   *Metrics
	kick      chan struct{}
}

// WorkerOptions tune a worker.
type WorkerOptions struct {
	Policy       retry.Policy
	MaxAge       time.Duration // give up on a notification this old
	DashboardURL string
	Log          *slog.Logger
	Now          func() time.Time
	Metrics      *Metrics
}

// NewWorker delivers outbox rows to receivers.
func NewWorker(o Outbox, receivers []Receiver, opt WorkerOptions) *Worker {
	w := &Worker{outbox: o, receivers: map[string]*Receiver{}, limiters: map[string]*rate.Limiter{},
		policy: opt.Policy, maxAge: opt.MaxAge, dashboard: opt.DashboardURL, log: opt.Log, now: opt.Now,
		metrics: opt.Metrics, kick: make(chan struct{}, 1)}
	if w.now == nil {
		w.now = time.Now
	}
	if w.maxAge == 0 {
		w.maxAge = 24 * time.Hour
	}
	for i := range receivers {
		r := receivers[i]
		w.receivers[r.Name] = &r
		if r.Limit > 0 {
			w.limiters[r.Name] = rate.NewLimiter(r.Limit, max(r.Burst, 1))
		}
	}
	return w
}

// Kick wakes the worker (new rows were queued).
func (w *Worker) Kick() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends.
func (w *Worker) Run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		w.RunOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.kick:
		}
	}
}

// RunOnce delivers what is due now and reports how many were attempted.
func (w *Worker) RunOnce(ctx context.Context) int {
	now := w.now().UTC()
	items, err := w.outbox.DueOutbox(ctx, now, 200)
	if err != nil {
		if ctx.Err() == nil {
			w.log.Error("reading the outbox failed", "error", err)
		}
		return 0
	}
	n := 0
	handled := map[uint64]bool{} // went out with a group earlier in this pass
	for _, it := range items {
		if ctx.Err() != nil {
			return n
		}
		if handled[it.ID] {
			continue
		}
		if lim := w.limiters[it.Receiver]; lim != nil && !lim.AllowN(now, 1) {
			continue // over the receiver's rate: next pass
		}
		n++
		for _, id := range w.deliver(ctx, it, now) {
			handled[id] = true
		}
	}
	return n
}

// deliver sends one notification (or its whole group) and returns the ids
// of the outbox rows it settled. It runs Alertmanager's notify pipeline in
// stages: group, look up the previous message, send, decide.
func (w *Worker) deliver(ctx context.Context, it store.OutboxItem, now time.Time) []uint64 {
	log := w.log.With("receiver", it.Receiver, "fingerprint", it.Fingerprint, "event", it.Event, "attempt", it.Attempts+1)
	r := w.receivers[it.Receiver]
	if r == nil {
		w.finish(ctx, it, "failed", w.outbox.OutboxFailed(ctx, it.ID, "receiver "+it.Receiver+" is no longer configured"))
		log.Warn("notification dropped: unknown receiver")
		return nil
	}
	m, batch, ok := w.group(ctx, it, log)
	if !ok {
		return nil
	}
	w.previous(ctx, it, &m, log)
	start := time.Now()
	ref, err := r.Notifier.Notify(ctx, m)
	w.metrics.latency(it.Receiver, time.Since(start))
	w.decide(ctx, it, batch, now, ref, err, log)
	return ids(batch)
}

// group is the message for it and the outbox rows it settles: a firing of
// a group takes every firing of the group waiting now into one message; a
// resolve of a group whose page still has firing alerts is folded into it
// (settled here: ok is false, as when the group went out already).
func (w *Worker) group(ctx context.Context, it store.OutboxItem, log *slog.Logger) (m Message, batch []store.OutboxItem, ok bool) {
	m = Message{Event: it.Event, Alert: it.Alert, DashboardURL: w.dashboard, GroupKey: it.GroupKey, Group: []model.Alert{it.Alert}}
	batch = []store.OutboxItem{it}
	if it.GroupKey == "" {
		return m, batch, true
	}
	switch it.Event {
	case model.TransitionFiring:
		members, err := w.outbox.PendingGroup(ctx, it.Receiver, it.GroupKey, model.TransitionFiring)
		if err != nil {
			members = []store.OutboxItem{it}
		}
		if len(members) == 0 {
			return m, nil, false // already sent with its group
		}
		batch = members
		m.Group = m.Group[:0]
		for _, x := range members {
			m.Group = append(m.Group, x.Alert)
		}
	case model.TransitionResolved:
		// The group's page resolves with its last alert.
		n, err := w.outbox.GroupFiring(ctx, it.Receiver, it.GroupKey)
		if err == nil && n > 0 {
			w.finish(ctx, it, "delivered", w.outbox.OutboxDelivered(ctx, it.ID, w.now(), ""))
			log.Debug("resolve folded into its group", "still_firing", n)
			return m, nil, false
		}
	}
	return m, batch, true
}

// previous gives a message that follows a firing (a resolve, an
// acknowledgement) the receiver's reference of that firing's message (the
// Slack thread, the PagerDuty dedup key).
func (w *Worker) previous(ctx context.Context, it store.OutboxItem, m *Message, log *slog.Logger) {
	if it.Event == model.TransitionFiring {
		return
	}
	ref, err := w.outbox.OutboxRef(ctx, it.Fingerprint, it.Receiver)
	if err != nil {
		log.Warn("reading the firing's ref failed", "error", err)
	}
	m.Ref = ref
}

// decide settles the batch after a send: delivered (with the receiver's
// reference), retried later (a retryable error of a notification younger
// than maxAge, not before the receiver's Retry-After), or failed for good.
func (w *Worker) decide(ctx context.Context, it store.OutboxItem, batch []store.OutboxItem, now time.Time, ref string, err error, log *slog.Logger) {
	if err == nil {
		for _, x := range batch {
			w.finish(ctx, x, "delivered", w.outbox.OutboxDelivered(ctx, x.ID, w.now(), ref))
		}
		log.Info("notification delivered", "alerts", len(batch))
		return
	}
	var ne *Error
	retryable := errors.As(err, &ne) && ne.Retry
	if retryable && now.Sub(it.CreatedAt) < w.maxAge {
		next := w.policy.NextAt(now, it.Attempts+1, rand.Float64())
		if ne.RetryAfter > 0 && now.Add(ne.RetryAfter).After(next) {
			next = now.Add(ne.RetryAfter)
		}
		for _, x := range batch {
			w.finish(ctx, x, "retry", w.outbox.OutboxRetry(ctx, x.ID, next, err.Error()))
		}
		log.Warn("notification failed; will retry", "error", err, "next_attempt", next.Format(time.RFC3339))
		return
	}
	for _, x := range batch {
		w.finish(ctx, x, "failed", w.outbox.OutboxFailed(ctx, x.ID, err.Error()))
	}
	log.Error("notification failed for good", "error", err)
}

func ids(items []store.OutboxItem) []uint64 {
	out := make([]uint64, len(items))
	for i, x := range items {
		out[i] = x.ID
	}
	return out
}

func (w *Worker) finish(ctx context.Context, it store.OutboxItem, result string, err error) {
	w.metrics.result(it.Receiver, result)
	if err != nil && ctx.Err() == nil {
		w.log.Error("recording a delivery failed", "id", it.ID, "error", err)
	}
}

// Metrics count deliveries.
type Metrics struct {
	results *prometheus.CounterVec
	seconds *prometheus.HistogramVec
}

// NewMetrics registers the notifier's metrics.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		results: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "etlhub_notifications_total",
			Help: "Delivery attempts by receiver and result (delivered, retry, failed)."}, []string{"receiver", "result"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "etlhub_notification_duration_seconds",
			Help: "Delivery latency by receiver.", Buckets: prometheus.DefBuckets}, []string{"receiver"}),
	}
	reg.MustRegister(m.results, m.seconds)
	return m
}

func (m *Metrics) result(receiver, r string) {
	if m != nil {
		m.results.WithLabelValues(receiver, r).Inc()
	}
}

func (m *Metrics) latency(receiver string, d time.Duration) {
	if m != nil {
		m.seconds.WithLabelValues(receiver).Observe(d.Seconds())
	}
}
