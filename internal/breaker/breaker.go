// Package breaker is a circuit breaker per dependency: after Threshold
// consecutive failures it opens and fails fast for Cooldown, then lets one
// probe through (half-open); the probe's success closes it, its failure
// opens it again for twice as long (up to MaxCooldown). It is a pure state
// machine: the caller passes now.
package breaker

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// State of a breaker.
type State string

const (
	// Closed: calls go through; failures are counted.
	Closed State = "closed"
	// Open: calls fail fast until the cooldown ends.
	Open State = "open"
	// HalfOpen: one probe call is allowed; its result decides.
	HalfOpen State = "half-open"
)

// ErrOpen is returned by Allow while the breaker is open.
var ErrOpen = errors.New("circuit open")

// Breaker guards one dependency.
type Breaker struct {
	Name        string
	Threshold   int
	Cooldown    time.Duration
	MaxCooldown time.Duration

	mu        sync.Mutex
	state     State
	failures  int
	openedAt  time.Time
	cooldown  time.Duration
	probing   bool
	probeAt   time.Time
	lastError string
	opens     int
}

// New is a closed breaker.
func New(name string, threshold int, cooldown, maxCooldown time.Duration) *Breaker {
	return &Breaker{Name: name, Threshold: threshold, Cooldown: cooldown, MaxCooldown: maxCooldown, state: Closed}
}

// OpenError says which breaker is open and since when.
type OpenError struct {
	Name      string
	Since     time.Time
	Until     time.Time
	LastError string
}

func (e *OpenError) Error() string {
	return fmt.Sprintf("%s: circuit open since %s after repeated failures (last: %s); next probe at %s",
		e.Name, e.Since.UTC().Format(time.RFC3339), e.LastError, e.Until.UTC().Format(time.RFC3339))
}

func (e *OpenError) Unwrap() error { return ErrOpen }

// Allow says whether a call may go now; while open it returns an *OpenError.
func (b *Breaker) Allow(now time.Time) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case Open:
		if now.Before(b.openedAt.Add(b.cooldown)) {
			return &OpenError{Name: b.Name, Since: b.openedAt, Until: b.openedAt.Add(b.cooldown), LastError: b.lastError}
		}
		b.state, b.probing, b.probeAt = HalfOpen, true, now
		return nil
	case HalfOpen:
		// One probe at a time; a probe whose outcome never came (its caller
		// vanished without Record or Abandon) stops counting after a
		// cooldown, so the breaker cannot stay half-open for ever.
		if b.probing && now.Before(b.probeAt.Add(max(b.cooldown, b.Cooldown))) {
			return &OpenError{Name: b.Name, Since: b.openedAt, Until: b.probeAt.Add(max(b.cooldown, b.Cooldown)), LastError: b.lastError}
		}
		b.probing, b.probeAt = true, now
	}
	return nil
}

// Abandon reports a call let through whose outcome is unknown (its caller
// gave up: a cancelled context). It says nothing of the dependency, so it
// counts neither way; a probe it ends lets the next call probe.
func (b *Breaker) Abandon() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == HalfOpen {
		b.probing = false
	}
}

// Record reports a call's outcome (err nil for success).
func (b *Breaker) Record(now time.Time, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err == nil {
		b.state, b.failures, b.probing, b.cooldown = Closed, 0, false, 0
		return
	}
	b.lastError = err.Error()
	b.failures++
	switch {
	case b.state == HalfOpen:
		b.cooldown = min(2*b.cooldown, b.MaxCooldown)
		b.trip(now)
	case b.failures >= b.Threshold:
		b.cooldown = b.Cooldown
		b.trip(now)
	}
}

func (b *Breaker) trip(now time.Time) {
	b.state, b.openedAt, b.probing = Open, now, false
	b.opens++
}

// Snapshot is a breaker's state for the status API and metrics.
type Snapshot struct {
	Name      string    `json:"name"`
	State     State     `json:"state"`
	Failures  int       `json:"consecutive_failures"`
	OpenedAt  time.Time `json:"opened_at,omitzero"`
	Opens     int       `json:"opens"`
	LastError string    `json:"last_error,omitempty"`
}

// Snapshot reads the breaker.
func (b *Breaker) Snapshot() Snapshot {
	b.mu.Lock()
	defer b.mu.Unlock()
	return Snapshot{Name: b.Name, State: b.state, Failures: b.failures, OpenedAt: b.openedAt, Opens: b.opens, LastError: b.lastError}
}
