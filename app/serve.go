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

// Serve runs the hub until ctx is done, then shuts down gracefully: the API
// stops taking requests (those in flight get shutdown_grace), then every
// service stops in reverse order of start, its context cancelled. ready, if
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
	h, err := New(ctx, cfg, Options{Log: log, Registry: reg})
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h.Handler, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 60 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("api listening", "addr", ln.Addr().String())
	svcCtx, cancelServices := context.WithCancel(ctx)
	defer cancelServices()
	if err := h.Start(svcCtx); err != nil {
		srv.Close()
		h.Stop()
		return err
	}
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
	cancelServices()
	h.Stop()
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	log.Info("stopped")
	return nil
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
