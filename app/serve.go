package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/etlhub/etlhub/api"
	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/store"
	"github.com/prometheus/client_golang/prometheus"
	promcollectors "github.com/prometheus/client_golang/prometheus/collectors"
)

// LogConfig selects log level and format.
type LogConfig struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// Validate sets defaults and checks the section at key.
func (l *LogConfig) Validate(p *config.Problems, key string) {
	if l.Level == "" {
		l.Level = "info"
	}
	switch l.Level {
	case "debug", "info", "warn", "error":
	default:
		p.Add(key+".level", "%q is not debug, info, warn or error", l.Level)
	}
	if l.Format == "" {
		l.Format = "json"
	}
	if l.Format != "json" && l.Format != "text" {
		p.Add(key+".format", "%q is not json or text", l.Format)
	}
}

// NewLogger builds the process logger from the log section.
func NewLogger(c LogConfig, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// Serve runs the hub until ctx is done, then shuts down gracefully: the API
// stops taking requests (those in flight get shutdown_grace), then every
// service stops in reverse order of start, its context cancelled. ready, if
// not nil, receives the API's address once it listens.
func Serve(ctx context.Context, cfg *Config, log *slog.Logger, ready func(addr string)) error {
	return ServeWith(ctx, cfg, log, ServeOptions{Ready: ready})
}

// ServeOptions are Serve's hooks.
type ServeOptions struct {
	// Ready, if not nil, receives the API's address once it listens.
	Ready func(addr string)
	// Load reads the config again (nil: no reloads).
	Load func() (*Config, error)
	// Reload receives a value for each SIGHUP: the config is read again
	// (Load) and applied on this replica (reload.go).
	Reload <-chan struct{}
}

// ServeWith is Serve with reloads.
func ServeWith(ctx context.Context, cfg *Config, log *slog.Logger, o ServeOptions) error {
	// Bind first: a port in use fails at once, not after the store is
	// opened and the rules warmed. Connections wait in the backlog until the
	// API serves them.
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	defer ln.Close()
	// The process's metrics and the store's outlive a reload; the hub's
	// own are new with each.
	base := prometheus.NewRegistry()
	base.MustRegister(promcollectors.NewGoCollector(), promcollectors.NewProcessCollector(promcollectors.ProcessCollectorOpts{}), buildInfo(cfg.Version))
	st, err := store.Open(ctx, cfg.Store, store.NewMetrics(base))
	if err != nil {
		return err
	}
	defer st.Close()
	log.Info("store open", "driver", st.Dialect())
	svcCtx, cancelServices := context.WithCancel(ctx)
	defer cancelServices()
	reqs := make(chan reloadReq)
	var apiReload func(context.Context) (api.ReloadResult, error)
	if o.Load != nil {
		apiReload = func(rctx context.Context) (api.ReloadResult, error) {
			q := reloadReq{why: "POST /api/v1/reload", reply: make(chan api.ReloadResult, 1)}
			select {
			case reqs <- q:
			case <-rctx.Done():
				return api.ReloadResult{}, rctx.Err()
			}
			select {
			case res := <-q.reply:
				return res, nil
			case <-rctx.Done():
				return api.ReloadResult{}, rctx.Err()
			}
		}
	}
	build := func(bctx context.Context, c *Config) (*Hub, error) {
		return New(bctx, c, Options{Log: log, Store: st, Base: base, Reload: apiReload})
	}
	h, err := build(ctx, cfg)
	if err != nil {
		return err
	}
	handler := &swapHandler{}
	handler.set(h.Handler)
	r := &reloader{log: log, load: o.Load, build: build, handler: handler, cur: h}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 60 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("api listening", "addr", ln.Addr().String())
	if err := h.Start(svcCtx); err != nil {
		srv.Close()
		h.Stop()
		return err
	}
	if o.Ready != nil {
		o.Ready(ln.Addr().String())
	}

	// Replicas on PostgreSQL reload together: a replica that reloads
	// announces it in the store, and the others, seeing the announcement,
	// read their own config files again (reload.go).
	self := h.Config.Cluster.ReplicaID
	var seen store.ConfigReload
	announced := make(chan store.ConfigReload, 1)
	together := o.Load != nil && st.Dialect() == "postgres"
	if together {
		if last, err := st.LastReload(ctx); err == nil {
			seen = last
		}
		go watchReloads(svcCtx, st, seen.Generation, reloadPoll, announced)
	}
	announce := func(res *api.ReloadResult) {
		if !together || res.Status != "reloaded" {
			return
		}
		a, err := st.AnnounceReload(svcCtx, self, time.Now())
		if err != nil {
			log.Warn("config reloaded here, but the other replicas could not be told: reload them on their own", "error", err)
			// The store's error is in the log, not in the answer.
			res.Replicas = "not told: the store did not take the announcement (see the log); reload the other replicas on their own"
			return
		}
		seen = a
		res.Replicas = "told: each reads its own config file again"
	}

	var serveErr error
loop:
	for {
		select {
		case <-ctx.Done():
			log.Info("shutting down")
			break loop
		case serveErr = <-errc:
			break loop
		case <-o.Reload:
			if o.Load == nil {
				log.Warn("SIGHUP: this hub cannot read its config again")
				continue
			}
			res := r.reload(svcCtx, "SIGHUP")
			announce(&res)
		case q := <-reqs:
			res := r.reload(svcCtx, q.why)
			announce(&res)
			q.reply <- res
		case a := <-announced:
			if a.Generation <= seen.Generation {
				continue
			}
			seen = a
			if a.By == self {
				continue
			}
			r.reload(svcCtx, "replica "+a.By+" reloaded")
		}
	}
	grace := cfg.ShutdownGrace
	if grace <= 0 {
		grace = 15 * time.Second
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Warn("http shutdown", "error", err)
	}
	cancelServices()
	r.cur.Stop()
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	log.Info("stopped")
	return nil
}

// reloadPoll is how often a replica looks for another's reload.
var reloadPoll = 2 * time.Second

// watchReloads sends on out each reload announced in the store after
// generation from (the newest only, when the last is not yet taken).
func watchReloads(ctx context.Context, st *store.Store, from int64, every time.Duration, out chan store.ConfigReload) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// A store that does not answer is told by the store's watch; the
		// next poll tries again.
		rctx, cancel := context.WithTimeout(ctx, every)
		a, err := st.LastReload(rctx)
		cancel()
		if err != nil || a.Generation <= from {
			continue
		}
		from = a.Generation
		select {
		case <-out:
		default:
		}
		out <- a
	}
}

// RetentionConfig says how long history is kept.
type RetentionConfig struct {
	Observations time.Duration `yaml:"observations"`
	Runs         time.Duration `yaml:"runs"`
	// Measurements is how long probes' measurements of dependencies are
	// kept (at least the rules' dependency window: their baselines).
	Measurements time.Duration `yaml:"measurements"`
	Every        time.Duration `yaml:"every"`
}

// Validate sets defaults and checks the section at key.
func (r *RetentionConfig) Validate(p *config.Problems, key string) {
	if r.Observations == 0 {
		r.Observations = 30 * 24 * time.Hour
	}
	if r.Runs == 0 {
		r.Runs = 180 * 24 * time.Hour
	}
	if r.Every == 0 {
		r.Every = time.Hour
	}
	if r.Measurements == 0 {
		r.Measurements = 7 * 24 * time.Hour
	}
	if r.Observations < time.Hour {
		p.Add(key+".observations", "%v is shorter than an hour", r.Observations)
	}
	if r.Runs < r.Observations {
		p.Add(key+".runs", "%v is shorter than %s.observations (%v); runs are the history rules learn from", r.Runs, key, r.Observations)
	}
}

// prune deletes history older than the retention, every Every.
func prune(ctx context.Context, st *store.Store, r RetentionConfig, log *slog.Logger, clock func() time.Time) {
	t := time.NewTicker(r.Every)
	defer t.Stop()
	for {
		now := clock().UTC()
		pctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		o, n, err := st.Prune(pctx, now.Add(-r.Observations), now.Add(-r.Runs))
		if err == nil {
			var m int64
			m, err = st.PruneMeasurements(pctx, now.Add(-r.Measurements))
			if m > 0 {
				log.Info("pruned measurements", "measurements", m)
			}
		}
		cancel()
		if err != nil && ctx.Err() == nil {
			log.Warn("prune failed", "error", err)
		} else if o+n > 0 {
			log.Info("pruned history", "observations", o, "runs", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
