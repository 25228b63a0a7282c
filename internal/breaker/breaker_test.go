package breaker

import (
	"errors"
	"testing"
	"time"
)

func TestLifecycle(t *testing.T) {
	t0 := time.Date(2026, 9, 1, 3, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	b := New("mongo", 3, 10*time.Second, 40*time.Second)
	boom := errors.New("server selection timeout")
	for i := 0; i < 2; i++ {
		if b.Allow(at(i)) != nil {
			t.Fatal("closed breaker refused")
		}
		b.Record(at(i), boom)
	}
	if b.Snapshot().State != Closed {
		t.Fatal("opened before the threshold")
	}
	b.Allow(at(2))
	b.Record(at(2), boom)
	err := b.Allow(at(3))
	var oe *OpenError
	if !errors.As(err, &oe) || !errors.Is(err, ErrOpen) || oe.LastError != "server selection timeout" {
		t.Fatalf("open breaker: %v", err)
	}
	// After the cooldown one probe goes through; a second caller waits.
	if b.Allow(at(12)) != nil || b.Allow(at(12)) == nil || b.Snapshot().State != HalfOpen {
		t.Fatal("half-open should let exactly one probe through")
	}
	b.Record(at(12), boom) // the probe fails: open for twice as long
	if b.Allow(at(12+19)) == nil || b.Allow(at(12+21)) != nil {
		t.Fatal("the second cooldown is not 20s")
	}
	b.Record(at(33), nil)
	if s := b.Snapshot(); s.State != Closed || s.Failures != 0 || s.Opens != 2 {
		t.Fatalf("after a good probe: %+v", s)
	}
}

// A probe whose outcome never comes cannot keep the breaker half-open for
// ever: Abandon frees it at once, and without even that it lapses after a
// cooldown.
func TestAProbeWithoutOutcomeDoesNotHoldTheBreaker(t *testing.T) {
	t0 := time.Date(2026, 9, 1, 3, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	b := New("redis", 1, 10*time.Second, 40*time.Second)
	b.Allow(at(0))
	b.Record(at(0), errors.New("i/o timeout"))
	if b.Allow(at(11)) != nil {
		t.Fatal("no probe after the cooldown")
	}
	b.Abandon() // the probing call was cancelled
	if err := b.Allow(at(11)); err != nil {
		t.Fatalf("an abandoned probe still blocks the next one: %v", err)
	}
	// That probe's caller vanishes without a word.
	if b.Allow(at(12)) == nil {
		t.Fatal("two probes at once")
	}
	if b.Allow(at(11+9)) == nil {
		t.Fatal("the lost probe lapsed before a cooldown")
	}
	if err := b.Allow(at(11 + 11)); err != nil {
		t.Fatalf("a lost probe holds the breaker half-open: %v", err)
	}
	b.Record(at(23), nil)
	if b.Snapshot().State != Closed {
		t.Fatal("the next probe's success did not close it")
	}
	// Abandon while closed changes nothing.
	b.Abandon()
	if b.Allow(at(24)) != nil || b.Snapshot().Failures != 0 {
		t.Fatal("Abandon on a closed breaker")
	}
}
