// Package retry holds pure retry policies: given an attempt number (and a
// source of randomness), when to try again. No sleeping, no clocks.
package retry

import (
	"context"
	"math"
	"time"
)

// Policy is exponential backoff with full jitter, capped.
type Policy struct {
	Base   time.Duration // delay before the first retry, before jitter
	Max    time.Duration // cap on any delay
	Factor float64       // growth per attempt; 2 when zero
	// Jitter is the fraction of the delay that is randomised: 0 gives exact
	// exponential delays, 1 gives "full jitter" (uniform in [0, delay]).
	Jitter float64
}

// Default is the policy for calls to status sources and notification receivers.
var Default = Policy{Base: 2 * time.Second, Max: 5 * time.Minute, Factor: 2, Jitter: 0.5}

// Delay is how long to wait after the failed attempt number attempt (1-based).
// rnd is a number in [0, 1) supplied by the caller, so the policy stays pure.
func (p Policy) Delay(attempt int, rnd float64) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	f := p.Factor
	if f <= 0 {
		f = 2
	}
	d := float64(p.Base) * math.Pow(f, float64(attempt-1))
	if p.Max > 0 && d > float64(p.Max) {
		d = float64(p.Max)
	}
	j := p.Jitter
	if j < 0 {
		j = 0
	} else if j > 1 {
		j = 1
	}
	d = d*(1-j) + d*j*rnd
	return time.Duration(d)
}

// NextAt is when to try again after attempt failed at now.
func (p Policy) NextAt(now time.Time, attempt int, rnd float64) time.Time {
	return now.Add(p.Delay(attempt, rnd))
}

// Do calls fn up to attempts times, waiting the policy's delay (with jitter
// from rnd) between failures, and stops early when ctx ends or retryable
// says an error is not worth another try. It returns fn's last error.
func Do(ctx context.Context, p Policy, attempts int, rnd func() float64, retryable func(error) bool, fn func() error) error {
	var err error
	for a := 1; a <= attempts; a++ {
		if err = fn(); err == nil || a == attempts || (retryable != nil && !retryable(err)) {
			return err
		}
		t := time.NewTimer(p.Delay(a, rnd()))
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
	return err
}
