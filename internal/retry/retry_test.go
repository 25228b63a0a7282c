package retry

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestDelayGrowsAndIsCapped(t *testing.T) {
	p := Policy{Base: time.Second, Max: 30 * time.Second, Factor: 2}
	want := []time.Duration{1, 2, 4, 8, 16, 30, 30}
	for i, w := range want {
		if got := p.Delay(i+1, 0.7); got != w*time.Second {
			t.Errorf("attempt %d: delay %v, want %v", i+1, got, w*time.Second)
		}
	}
}

func TestJitterStaysWithinBounds(t *testing.T) {
	p := Policy{Base: 10 * time.Second, Max: time.Minute, Jitter: 0.5}
	lo, hi := p.Delay(1, 0), p.Delay(1, 0.999999)
	if lo != 5*time.Second {
		t.Fatalf("lowest jittered delay %v, want 5s", lo)
	}
	if hi <= 9*time.Second || hi > 10*time.Second {
		t.Fatalf("highest jittered delay %v, want just under 10s", hi)
	}
	if a, b := p.Delay(3, 0.2), p.Delay(3, 0.8); a >= b {
		t.Fatalf("jitter does not spread delays: %v >= %v", a, b)
	}
}

func TestNextAtIsPure(t *testing.T) {
	now := time.Date(2026, 9, 1, 5, 0, 0, 0, time.UTC)
	if got := Default.NextAt(now, 1, 0); got != now.Add(time.Second) {
		t.Fatalf("NextAt = %v, want %v", got, now.Add(time.Second))
	}
}

func TestDoRetriesThenGivesUp(t *testing.T) {
	calls := 0
	fail := errors.New("connection reset")
	p := Policy{Base: time.Millisecond, Max: time.Millisecond}
	err := Do(context.Background(), p, 3, func() float64 { return 0 }, nil, func() error { calls++; return fail })
	if calls != 3 || err != fail {
		t.Fatalf("%d calls, %v", calls, err)
	}
	calls = 0
	err = Do(context.Background(), p, 5, func() float64 { return 0 }, func(error) bool { return false }, func() error { calls++; return fail })
	if calls != 1 {
		t.Fatalf("a non-retryable error was retried: %d calls", calls)
	}
	calls = 0
	if err := Do(context.Background(), p, 5, func() float64 { return 0 }, nil, func() error {
		calls++
		if calls < 3 {
			return fail
		}
		return nil
	}); err != nil || calls != 3 {
		t.Fatalf("%d calls, %v", calls, err)
	}
}
