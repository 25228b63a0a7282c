// Package lifecycle is the one way a long-running part of etlhub starts and
// stops: Start(ctx) begins its work and returns once it is under way (an
// error means it did not start); Stop ends it and returns when everything it
// started has returned. A Group starts services in order and stops them in
// reverse, so that what a service depends on outlives it.
package lifecycle

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
)

// Service is a long-running part.
type Service interface {
	// Name names the service in logs and errors.
	Name() string
	// Start begins the work; the work ends when ctx is cancelled or Stop is
	// called, whichever comes first.
	Start(ctx context.Context) error
	// Stop cancels the work and waits for it. Stop on a service that was not
	// started, or twice, does nothing.
	Stop()
}

// Loop is a Service around one function that runs until its context is
// cancelled (a ticker loop, a worker).
type Loop struct {
	name   string
	run    func(ctx context.Context)
	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// NewLoop makes a service of run.
func NewLoop(name string, run func(ctx context.Context)) *Loop {
	return &Loop{name: name, run: run}
}

// Name implements Service.
func (l *Loop) Name() string { return l.name }

// Start implements Service: run starts in its own goroutine.
func (l *Loop) Start(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done != nil {
		return fmt.Errorf("%s: already started", l.name)
	}
	ctx, l.cancel = context.WithCancel(ctx)
	l.done = make(chan struct{})
	go func(done chan struct{}) { defer close(done); l.run(ctx) }(l.done)
	return nil
}

// Stop implements Service.
func (l *Loop) Stop() {
	l.mu.Lock()
	cancel, done := l.cancel, l.done
	l.mu.Unlock()
	if done == nil {
		return
	}
	cancel()
	<-done
}

// Funcs is a Service from a start and a stop function (a cron scheduler, a
// server that has its own).
type Funcs struct {
	N        string
	StartFn  func(ctx context.Context) error
	StopFn   func()
	stopOnce sync.Once
}

// Name implements Service.
func (f *Funcs) Name() string { return f.N }

// Start implements Service.
func (f *Funcs) Start(ctx context.Context) error {
	if f.StartFn == nil {
		return nil
	}
	return f.StartFn(ctx)
}

// Stop implements Service.
func (f *Funcs) Stop() {
	f.stopOnce.Do(func() {
		if f.StopFn != nil {
			f.StopFn()
		}
	})
}

// Group starts services in order and stops them in reverse.
type Group struct {
	Log      *slog.Logger
	services []Service
	started  []Service
}

// Add appends services; they start after those added before.
func (g *Group) Add(s ...Service) { g.services = append(g.services, s...) }

// Services lists the services in start order.
func (g *Group) Services() []Service { return append([]Service(nil), g.services...) }

// Start starts every service in order. When one fails, those already
// started are stopped (in reverse) and its error is returned.
func (g *Group) Start(ctx context.Context) error {
	for _, s := range g.services {
		if err := s.Start(ctx); err != nil {
			g.Stop()
			return fmt.Errorf("starting %s: %w", s.Name(), err)
		}
		g.started = append(g.started, s)
		if g.Log != nil {
			g.Log.Debug("service started", "service", s.Name())
		}
	}
	return nil
}

// Stop stops the started services in reverse order.
func (g *Group) Stop() {
	for i := len(g.started) - 1; i >= 0; i-- {
		g.started[i].Stop()
		if g.Log != nil {
			g.Log.Debug("service stopped", "service", g.started[i].Name())
		}
	}
	g.started = nil
}
