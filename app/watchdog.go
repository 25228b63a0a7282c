package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/internal/lifecycle"
	"github.com/etlhub/etlhub/internal/retry"
	"github.com/etlhub/etlhub/store"
	"github.com/prometheus/client_golang/prometheus"
)

// WatchdogConfig is notify.watchdog: a dead man's switch. The leader pings
// URL every interval while its rules tick, the store answers and the outbox
// drains; a service such as healthchecks.io, Cronitor or Dead Man's Snitch
// pages when the pings stop (the hub died, wedged, lost its store, or no
// replica leads).
type WatchdogConfig struct {
	// URL is pinged; it usually holds the check's key, so it is a secret.
	URL config.Secret `yaml:"url"`
	// Interval between pings (default 1m); set the service's period to it
	// and its grace to a few intervals.
	Interval time.Duration `yaml:"interval"`
	// Method is GET (default) or POST.
	Method string `yaml:"method"`
	// Timeout of one ping (default 10s).
	Timeout time.Duration `yaml:"timeout"`
	// MaxOutboxAge: a pending notification older than this means the outbox
	// does not drain (default 15m).
	MaxOutboxAge time.Duration `yaml:"max_outbox_age"`
}

// Validate sets defaults and checks the section.
func (w *WatchdogConfig) Validate(p *config.Problems, key string) {
	if w.Interval == 0 {
		w.Interval = time.Minute
	}
	if w.Method == "" {
		w.Method = http.MethodGet
	}
	if w.Timeout == 0 {
		w.Timeout = 10 * time.Second
	}
	if w.MaxOutboxAge == 0 {
		w.MaxOutboxAge = 15 * time.Minute
	}
	if u, err := url.Parse(w.URL.Value()); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		p.Add(key+".url", "is not an http(s) URL")
	}
	if w.Interval < time.Second || w.Interval > time.Hour {
		p.Add(key+".interval", "%v is outside 1s..1h", w.Interval)
	}
	w.Method = strings.ToUpper(w.Method)
	if w.Method != http.MethodGet && w.Method != http.MethodPost {
		p.Add(key+".method", "%q is not GET or POST", w.Method)
	}
	if w.Timeout < 100*time.Millisecond || w.Timeout > w.Interval {
		p.Add(key+".timeout", "%v is outside 100ms..interval (%v)", w.Timeout, w.Interval)
	}
	if w.MaxOutboxAge < time.Minute {
		p.Add(key+".max_outbox_age", "%v is shorter than a minute", w.MaxOutboxAge)
	}
}

// watchdogHealth is what the watchdog judges the hub by.
type watchdogHealth struct {
	LastTick     time.Time // the rules' last complete tick (zero: none yet)
	Tick         time.Duration
	StoreDown    bool
	OldestOutbox time.Time // the oldest pending notification (zero: none)
	MaxOutboxAge time.Duration
}

// healthy says whether the hub is healthy enough to ping at now, and if not
// why. It is pure.
func (h watchdogHealth) healthy(now time.Time) (bool, string) {
	switch {
	case h.StoreDown:
		return false, "the store does not answer"
	case h.LastTick.IsZero():
		return false, "the rules have not ticked yet"
	case now.Sub(h.LastTick) > 3*h.Tick+5*time.Second:
		return false, fmt.Sprintf("the rules last ticked %v ago", now.Sub(h.LastTick).Round(time.Second))
	case !h.OldestOutbox.IsZero() && now.Sub(h.OldestOutbox) > h.MaxOutboxAge:
		return false, fmt.Sprintf("a notification has waited %v in the outbox", now.Sub(h.OldestOutbox).Round(time.Second))
	}
	return true, ""
}

// watchdog is the leader's pinger (a singleton).
type watchdog struct {
	cfg    WatchdogConfig
	tick   time.Duration
	st     *store.Store
	ticked func() time.Time
	watch  *storeWatch
	log    *slog.Logger
	client *http.Client
	pings  *prometheus.CounterVec
	last   prometheus.Gauge
}

func newWatchdogMetrics(reg prometheus.Registerer) (*prometheus.CounterVec, prometheus.Gauge) {
	pings := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "etlhub_watchdog_pings_total",
		Help: "Dead man's switch pings by result: ok, failed (the service did not take it), withheld (the hub is not healthy)."}, []string{"result"})
	last := prometheus.NewGauge(prometheus.GaugeOpts{Name: "etlhub_watchdog_last_ping_timestamp_seconds",
		Help: "When the dead man's switch was last pinged successfully (Unix time)."})
	for _, r := range []string{"ok", "failed", "withheld"} {
		pings.WithLabelValues(r)
	}
	reg.MustRegister(pings, last)
	return pings, last
}

func (w *watchdog) run(ctx context.Context) {
	t := time.NewTicker(w.cfg.Interval)
	defer t.Stop()
	for {
		w.once(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// once judges the hub and pings when it is healthy.
func (w *watchdog) once(ctx context.Context) {
	now := time.Now()
	h := watchdogHealth{LastTick: w.ticked(), Tick: w.tick, MaxOutboxAge: w.cfg.MaxOutboxAge}
	_, _, h.StoreDown = w.watch.Down()
	if !h.StoreDown {
		bctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
		bl, err := w.st.OutboxBacklog(bctx)
		cancel()
		if err != nil {
			h.StoreDown = true
		}
		for _, b := range bl {
			if !b.Oldest.IsZero() && (h.OldestOutbox.IsZero() || b.Oldest.Before(h.OldestOutbox)) {
				h.OldestOutbox = b.Oldest
			}
		}
	}
	if ok, why := h.healthy(now); !ok {
		w.pings.WithLabelValues("withheld").Inc()
		w.log.Warn("watchdog ping withheld: the hub is not healthy", "reason", why)
		return
	}
	// Two tries within the interval: a ping lost to a blip is sent again.
	pol := retry.Policy{Base: min(2*time.Second, w.cfg.Interval/4), Max: w.cfg.Interval / 2, Jitter: 0.5}
	err := retry.Do(ctx, pol, 2, rand.Float64, nil, func() error { return w.ping(ctx) })
	if err != nil {
		if ctx.Err() == nil {
			w.pings.WithLabelValues("failed").Inc()
			w.log.Warn("watchdog ping failed", "error", err)
		}
		return
	}
	w.pings.WithLabelValues("ok").Inc()
	w.last.Set(float64(time.Now().UnixMilli()) / 1000)
}

func (w *watchdog) ping(ctx context.Context) error {
	pctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	defer cancel()
	var body io.Reader
	if w.cfg.Method == http.MethodPost {
		body = strings.NewReader("etlhub: rules ticking, store answering, outbox draining\n")
	}
	req, err := http.NewRequestWithContext(pctx, w.cfg.Method, w.cfg.URL.Value(), body)
	if err != nil {
		return fmt.Errorf("watchdog request: %w", redactURL(err, w.cfg.URL.Value()))
	}
	req.Header.Set("User-Agent", "etlhub-watchdog")
	resp, err := w.client.Do(req)
	if err != nil {
		return redactURL(err, w.cfg.URL.Value())
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("watchdog answered %d", resp.StatusCode)
	}
	return nil
}

// redactURL keeps the check's URL (its key) out of an error.
func redactURL(err error, u string) error {
	if err == nil || u == "" {
		return err
	}
	return fmt.Errorf("%s", strings.ReplaceAll(err.Error(), u, "<watchdog url>"))
}

// newWatchdog takes its section (notify.watchdog) and the rules' tick.
func newWatchdog(wc WatchdogConfig, tick time.Duration, st *store.Store, ticked func() time.Time, watch *storeWatch, log *slog.Logger,
	pings *prometheus.CounterVec, last prometheus.Gauge) lifecycle.Service {
	w := &watchdog{cfg: wc, tick: tick, st: st, ticked: ticked, watch: watch, log: log.With("part", "watchdog"),
		client: &http.Client{Timeout: wc.Timeout}, pings: pings, last: last}
	return lifecycle.NewLoop("watchdog", w.run)
}
