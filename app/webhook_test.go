package app

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/etlhub/etlhub/api"
	"github.com/etlhub/etlhub/store"
	"github.com/prometheus/client_golang/prometheus"
)

const hookSecret = "pd-webhook-signing-secret"

func signed(body []byte) string {
	mac := hmac.New(sha256.New, []byte(hookSecret))
	mac.Write(body)
	return "v1=" + hex.EncodeToString(mac.Sum(nil))
}

func hookLoop(t *testing.T, path string) *testLoop {
	t.Helper()
	st, err := store.Open(context.Background(), store.Config{Driver: "sqlite", Path: path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := &Config{}
	cfg.Notify.PagerDutyWebhookSecret = hookSecret
	cfg.Notify.PagerDutyWebhookWindow = 5 * time.Minute
	return newRuleLoop(cfg, st, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
}

// A correctly signed body is taken once, and only while it is fresh: an old
// one, or the same one again (also after a restart), changes nothing.
func TestPagerDutyWebhookReplaysAreRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hub.db")
	l := hookLoop(t, path)
	ctx := context.Background()
	body := func(id string, at time.Time) []byte {
		return []byte(fmt.Sprintf(`{"event":{"id":%q,"event_type":"incident.acknowledged","occurred_at":%q,
		  "agent":{"id":"P1","type":"user_reference","summary":"Jane Doe"},"data":{"type":"incident","incident_key":"k"}}}`,
			id, at.UTC().Format(time.RFC3339Nano)))
	}
	old := body("evt-2019", time.Date(2019, 3, 1, 8, 0, 0, 0, time.UTC))
	if err := l.PagerDutyWebhook(ctx, old, signed(old)); !errors.Is(err, api.ErrStaleEvent) {
		t.Fatalf("a signed body from 2019: %v, want a stale refusal", err)
	}
	late := body("evt-late", time.Now().Add(-6*time.Minute))
	if err := l.PagerDutyWebhook(ctx, late, signed(late)); !errors.Is(err, api.ErrStaleEvent) {
		t.Fatalf("a body 6 minutes old: %v", err)
	}
	fresh := body("evt-1", time.Now().Add(-30*time.Second))
	if err := l.PagerDutyWebhook(ctx, fresh, signed(fresh)); err != nil {
		t.Fatalf("a fresh body: %v", err)
	}
	if err := l.PagerDutyWebhook(ctx, fresh, signed(fresh)); !errors.Is(err, api.ErrDuplicateEvent) {
		t.Fatalf("the same body again: %v, want a duplicate", err)
	}
	l.st.Close()
	l = hookLoop(t, path)
	if err := l.PagerDutyWebhook(ctx, fresh, signed(fresh)); !errors.Is(err, api.ErrDuplicateEvent) {
		t.Fatalf("the same body after a restart: %v, want a duplicate", err)
	}
	if err := l.PagerDutyWebhook(ctx, fresh, "v1=00"); !errors.Is(err, api.ErrBadSignature) {
		t.Fatalf("a bad signature: %v", err)
	}
}
