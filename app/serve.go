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
	"github.com/etlhub/etlhub/collectors"
	"github.com/etlhub/etlhub/model"
	"github.com/etlhub/etlhub/store"
	"github.com/prometheus/client_golang/prometheus"
	promcollectors "github.com/prometheus/client_golang/prometheus/collectors"
)

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

// Serve runs the hub until ctx is done, then shuts down gracefully. ready, if
// not nil, receives the API's address once it listens.
func Serve(ctx context.Context, cfg *Config, log *slog.Logger, ready func(addr string)) error {
	// Bind first: a port in use fails at once, not after the store is
	// opened and the rules warmed. Connections wait in the backlog until the
	// API serves them.
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	defer ln.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(promcollectors.NewGoCollector(), promcollectors.NewProcessCollector(promcollectors.ProcessCollectorOpts{}), buildInfo(cfg.Version))

	st, err := store.Open(ctx, cfg.Store, store.NewMetrics(reg))
	if err != nil {
		return err
	}
	defer st.Close()
	log.Info("store open", "driver", st.Dialect())

	ing := NewIngestor(st, reg)
	rl := newRuleLoop(cfg, st, log, reg)
	if err := rl.warm(ctx, time.Now().UTC()); err != nil {
		return fmt.Errorf("rules: %w", err)
	}
	// Whatever is stored (pushed or collected) goes to the rules and is
	// announced to the pages' event streams.
	live := api.NewLive()
	ing.after = func(obs []model.Observation, now time.Time) {
		rl.engine.Observe(obs, now)
		live.Changed(obs)
	}
	rl.worker = newWorker(cfg, st, log, reg, nil)
	cm := collectors.NewMetrics(reg)
	for _, s := range cfg.Sources {
		cm.Known(s.Name)
	}
	runner, err := collectors.NewRunner(cfg.Sources, collectorSink{ing}, log, cm, time.Now)
	if err != nil {
		return err
	}

	handler := api.New(api.Options{
		Live:  live,
		Store: st, Ingest: ing, Jobs: cfg.Jobs, Auth: cfg.Auth, Gatherer: reg, Registerer: reg, Views: rl, Actions: rl,
		Log: log, MaxBodyBytes: cfg.Ingest.MaxBodyBytes, MaxItems: cfg.Ingest.MaxItems,
		MaxUnconfiguredJobs: cfg.Ingest.MaxUnconfiguredJobs, MaxSilences: cfg.Silences.MaxActive, TrustedProxies: cfg.TrustedProxies,
	})
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 60 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("api listening", "addr", ln.Addr().String())

	if err := runner.Start(ctx); err != nil {
		srv.Close()
		return err
	}
	pruneCtx, stopPrune := context.WithCancel(ctx)
	pruned := make(chan struct{})
	go func() { defer close(pruned); prune(pruneCtx, st, cfg.Retention, log) }()
	ruled := make(chan struct{})
	go func() { defer close(ruled); rl.run(pruneCtx) }()
	dg := startDigests(cfg, st, log)
	defer dg.stop()
	ls := startLogSearches(cfg, st, rl.engine, log)
	defer ls.stop()
	delivered := make(chan struct{})
	go func() { defer close(delivered); rl.worker.Run(pruneCtx) }()
	if ready != nil {
		ready(ln.Addr().String())
	}

	var serveErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case serveErr = <-errc:
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
	runner.Stop()
	stopPrune()
	<-pruned
	<-ruled
	<-delivered
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	log.Info("stopped")
	return nil
}

// prune deletes history older than the retention, every Every.
func prune(ctx context.Context, st *store.Store, r RetentionConfig, log *slog.Logger) {
	t := time.NewTicker(r.Every)
	defer t.Stop()
	for {
		now := time.Now().UTC()
		pctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		o, n, err := st.Prune(pctx, now.Add(-r.Observations), now.Add(-r.Runs))
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
