package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/internal/testsrv"
	"github.com/etlhub/etlhub/model"
)

// TestLease: the compare-and-set lease on both backends: one holder at a
// time, renewals keep the token, every new acquisition raises it, a
// release frees it at once.
func TestLease(t *testing.T) {
	for name, open := range backends {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			ctx := context.Background()
			t0 := time.Date(2026, 12, 3, 2, 0, 0, 0, time.UTC)
			ttl := 10 * time.Second
			a, ok, err := s.AcquireLease(ctx, "leader", "a", t0, ttl)
			if err != nil || !ok || a.Token != 1 {
				t.Fatalf("first acquisition: %+v %v %v", a, ok, err)
			}
			if _, ok, err := s.AcquireLease(ctx, "leader", "b", t0.Add(time.Second), ttl); err != nil || ok {
				t.Fatalf("b took a's valid lease: %v %v", ok, err)
			}
			a2, ok, err := s.AcquireLease(ctx, "leader", "a", t0.Add(3*time.Second), ttl)
			if err != nil || !ok || a2.Token != 1 || !a2.ExpiresAt.Equal(t0.Add(13*time.Second)) || !a2.AcquiredAt.Equal(t0) {
				t.Fatalf("renewal: %+v %v %v", a2, ok, err)
			}
			// a stops renewing: at expiry b takes it with a new token.
			if _, ok, _ := s.AcquireLease(ctx, "leader", "b", t0.Add(12999*time.Millisecond), ttl); ok {
				t.Fatal("b took the lease before it expired")
			}
			b, ok, err := s.AcquireLease(ctx, "leader", "b", t0.Add(13*time.Second), ttl)
			if err != nil || !ok || b.Token != 2 {
				t.Fatalf("takeover: %+v %v %v", b, ok, err)
			}
			if _, ok, _ := s.AcquireLease(ctx, "leader", "a", t0.Add(14*time.Second), ttl); ok {
				t.Fatal("the deposed holder renewed")
			}
			got, ok, err := s.ReadLease(ctx, "leader")
			if err != nil || !ok || got.Holder != "b" || got.Token != 2 {
				t.Fatalf("read: %+v %v %v", got, ok, err)
			}
			if err := s.ReleaseLease(ctx, "leader", "b", 2, t0.Add(15*time.Second)); err != nil {
				t.Fatal(err)
			}
			a3, ok, err := s.AcquireLease(ctx, "leader", "a", t0.Add(15*time.Second), ttl)
			if err != nil || !ok || a3.Token != 3 {
				t.Fatalf("after a release: %+v %v %v", a3, ok, err)
			}
			// The holder retaking its own expired lease starts a new term.
			a4, ok, err := s.AcquireLease(ctx, "leader", "a", t0.Add(40*time.Second), ttl)
			if err != nil || !ok || a4.Token != 4 {
				t.Fatalf("retaking an expired lease: %+v %v %v", a4, ok, err)
			}

			if err := s.SeeReplica(ctx, Replica{ID: "a", Address: "10.0.0.1:8080", StartedAt: t0, LastSeen: t0.Add(40 * time.Second)}, t0); err != nil {
				t.Fatal(err)
			}
			if err := s.SeeReplica(ctx, Replica{ID: "b", Address: "10.0.0.2:8080", StartedAt: t0, LastSeen: t0.Add(time.Second)}, t0); err != nil {
				t.Fatal(err)
			}
			reps, err := s.Replicas(ctx, t0.Add(10*time.Second))
			if err != nil || len(reps) != 1 || reps[0].ID != "a" || reps[0].Address != "10.0.0.1:8080" {
				t.Fatalf("replicas: %+v %v", reps, err)
			}
		})
	}
}

// TestFencing: with fencing on, the leader's writes need the lease's
// current token: a deposed leader's save fails, on both backends.
func TestFencing(t *testing.T) {
	for name, open := range backends {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			ctx := context.Background()
			now := time.Now().UTC()
			s.EnableFencing()
			a := model.Alert{ID: "x1", Fingerprint: "stalled|dade|r", Rule: "stalled", Severity: "warning", Tenant: "dade", State: model.AlertPending}
			if err := s.SaveAlerts(ctx, []model.Alert{a}, nil, nil); !errors.Is(err, ErrNotLeader) {
				t.Fatalf("a save without a lease: %v", err)
			}
			l, ok, err := s.AcquireLease(ctx, "leader", "a", now, time.Second)
			if err != nil || !ok {
				t.Fatal(ok, err)
			}
			s.SetFence(&Fence{Name: "leader", Holder: "a", Token: l.Token})
			if err := s.SaveAlerts(ctx, []model.Alert{a}, nil, nil); err != nil {
				t.Fatalf("the leader's save: %v", err)
			}
			// b takes the expired lease; a does not know yet.
			if _, ok, err := s.AcquireLease(ctx, "leader", "b", now.Add(2*time.Second), time.Second); err != nil || !ok {
				t.Fatal(ok, err)
			}
			if err := s.SaveAlerts(ctx, []model.Alert{a}, nil, nil); !errors.Is(err, ErrNotLeader) {
				t.Fatalf("a deposed leader's save: %v", err)
			}
			if err := s.OutboxFailed(ctx, 1, "x"); !errors.Is(err, ErrNotLeader) {
				t.Fatalf("a deposed leader's outbox update: %v", err)
			}
		})
	}
}

// TestFencingAcrossProcesses (PostgreSQL): two stores on one database, as
// two replicas: once the second took the lease, the first one's writes fail
// and the second one's land.
func TestFencingAcrossProcesses(t *testing.T) {
	dsn := config.Secret(testsrv.Postgres(t))
	old := mustOpen(t, Config{Driver: "postgres", DSN: dsn})
	next := mustOpen(t, Config{Driver: "postgres", DSN: dsn})
	ctx := context.Background()
	now := time.Now().UTC()
	old.EnableFencing()
	next.EnableFencing()
	l, ok, err := old.AcquireLease(ctx, "leader", "old", now, time.Second)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	old.SetFence(&Fence{Name: "leader", Holder: "old", Token: l.Token})
	n, ok, err := next.AcquireLease(ctx, "leader", "next", now.Add(2*time.Second), time.Minute)
	if err != nil || !ok || n.Token != l.Token+1 {
		t.Fatal(n, ok, err)
	}
	next.SetFence(&Fence{Name: "leader", Holder: "next", Token: n.Token})
	a := model.Alert{ID: "x1", Fingerprint: "stalled|dade|r", Rule: "stalled", Severity: "warning", Tenant: "dade", State: model.AlertPending}
	if err := old.SaveAlerts(ctx, []model.Alert{a}, nil, nil); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("the old leader's save: %v", err)
	}
	if err := next.SaveAlerts(ctx, []model.Alert{a}, nil, nil); err != nil {
		t.Fatalf("the new leader's save: %v", err)
	}
}

// A reload announced by one replica is read by another, each announcement
// a new generation (SQLite and PostgreSQL).
func TestReloadAnnouncements(t *testing.T) {
	for name, open := range backends {
		t.Run(name, func(t *testing.T) {
			a := open(t)
			ctx := context.Background()
			if r, err := a.LastReload(ctx); err != nil || r.Generation != 0 {
				t.Fatalf("before any: %+v %v", r, err)
			}
			at := ts("2026-12-04T04:00:00Z")
			for i, by := range []string{"hub-a", "hub-b", "hub-a"} {
				r, err := a.AnnounceReload(ctx, by, at.Add(time.Duration(i)*time.Second))
				if err != nil || r.Generation != int64(i+1) || r.By != by {
					t.Fatalf("announcement %d: %+v %v", i, r, err)
				}
			}
			r, err := a.LastReload(ctx)
			if err != nil || r.Generation != 3 || r.By != "hub-a" || !r.At.Equal(at.Add(2*time.Second)) {
				t.Fatalf("last: %+v %v", r, err)
			}
		})
	}
}
