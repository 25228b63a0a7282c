package app

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestWatchdogHealth(t *testing.T) {
	now := time.Date(2026, 12, 3, 3, 0, 0, 0, time.UTC)
	ok := watchdogHealth{LastTick: now.Add(-20 * time.Second), Tick: 30 * time.Second, MaxOutboxAge: 15 * time.Minute,
		OldestOutbox: now.Add(-time.Minute)}
	for _, tc := range []struct {
		name string
		h    func(h watchdogHealth) watchdogHealth
		want bool
	}{
		{"healthy", func(h watchdogHealth) watchdogHealth { return h }, true},
		{"store down", func(h watchdogHealth) watchdogHealth { h.StoreDown = true; return h }, false},
		{"no tick yet", func(h watchdogHealth) watchdogHealth { h.LastTick = time.Time{}; return h }, false},
		{"rules stuck", func(h watchdogHealth) watchdogHealth { h.LastTick = now.Add(-2 * time.Minute); return h }, false},
		{"outbox not draining", func(h watchdogHealth) watchdogHealth { h.OldestOutbox = now.Add(-16 * time.Minute); return h }, false},
		{"empty outbox", func(h watchdogHealth) watchdogHealth { h.OldestOutbox = time.Time{}; return h }, true},
	} {
		if got, why := tc.h(ok).healthy(now); got != tc.want || (!got && why == "") {
			t.Errorf("%s: healthy %v (%q), want %v", tc.name, got, why, tc.want)
		}
	}
}

// TestWatchdogPings: the hub pings the watchdog every interval (POST) while
// its rules tick; the URL's key stays out of the logs.
func TestWatchdogPings(t *testing.T) {
	var mu sync.Mutex
	var pings []time.Time
	stand := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Method != "POST" || r.URL.Path != "/ping/check-key" || len(b) == 0 {
			t.Errorf("ping: %s %s %q", r.Method, r.URL.Path, b)
		}
		mu.Lock()
		pings = append(pings, time.Now())
		mu.Unlock()
	}))
	defer stand.Close()
	cfg, probs := parse(t, base+"store: {driver: sqlite, path: "+filepath.Join(t.TempDir(), "hub.db")+"}\nrules: {tick: 1s}\n"+
		"notify:\n  watchdog: {url: \""+stand.URL+"/ping/check-key\", interval: 1s, method: post, timeout: 900ms}\n")
	if len(probs) != 0 {
		t.Fatalf("%+v", probs)
	}
	ctx := context.Background()
	h, err := New(ctx, cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer h.Stop()
	waitFor(t, "three pings", 20*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(pings) >= 3 })
}
