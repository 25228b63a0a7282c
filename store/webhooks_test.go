package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

func TestWebhookEventsAreActedOnOnce(t *testing.T) {
	for name, open := range backends {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			ctx := context.Background()
			at := time.Date(2026, 9, 1, 9, 0, 0, 0, time.UTC)
			for i, want := range []bool{true, false, false} {
				first, err := s.FirstWebhookEvent(ctx, "pagerduty", "evt-1", at.Add(time.Duration(i)*time.Minute), at.Add(-10*time.Minute))
				if err != nil || first != want {
					t.Fatalf("delivery %d: first=%v, %v; want %v", i+1, first, err, want)
				}
			}
			if first, _ := s.FirstWebhookEvent(ctx, "pagerduty", "evt-2", at, at.Add(-10*time.Minute)); !first {
				t.Fatal("another event was taken for a replay")
			}
			// An event whose action failed is forgotten, so the retry counts.
			if err := s.ForgetWebhookEvent(ctx, "pagerduty", "evt-2"); err != nil {
				t.Fatal(err)
			}
			if first, _ := s.FirstWebhookEvent(ctx, "pagerduty", "evt-2", at, at.Add(-10*time.Minute)); !first {
				t.Fatal("a forgotten event is still taken for a replay")
			}
			// Past the window the id is forgotten (its timestamp refuses it).
			if first, _ := s.FirstWebhookEvent(ctx, "pagerduty", "evt-3", at.Add(time.Hour), at.Add(30*time.Minute)); !first {
				t.Fatal("evt-3")
			}
			if first, _ := s.FirstWebhookEvent(ctx, "pagerduty", "evt-1", at.Add(time.Hour), at.Add(30*time.Minute)); !first {
				t.Fatal("an old id was never pruned")
			}
		})
	}
}

func TestWebhookEventsSurviveRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hub.db")
	at := time.Date(2026, 9, 1, 9, 0, 0, 0, time.UTC)
	s := mustOpen(t, Config{Driver: "sqlite", Path: path})
	if first, err := s.FirstWebhookEvent(context.Background(), "pagerduty", "evt-1", at, at.Add(-time.Hour)); !first || err != nil {
		t.Fatal(first, err)
	}
	s.Close()
	s = mustOpen(t, Config{Driver: "sqlite", Path: path})
	if first, err := s.FirstWebhookEvent(context.Background(), "pagerduty", "evt-1", at.Add(time.Minute), at.Add(-time.Hour)); first || err != nil {
		t.Fatalf("replayed after a restart: first=%v %v", first, err)
	}
}
