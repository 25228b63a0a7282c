package api

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/store"
	"github.com/prometheus/client_golang/prometheus"
)

// The request log names the client that connected; X-Forwarded-For counts
// only when it comes from a configured proxy, so nobody can put another
// address in the hub's logs.
func TestRequestLogTrustsOnlyConfiguredProxies(t *testing.T) {
	st, err := store.Open(context.Background(), store.Config{Driver: "sqlite", Path: filepath.Join(t.TempDir(), "h.db")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	auth := AuthConfig{Tokens: []TokenConfig{{Name: "op", Token: config.Secret(tok), Role: "operator"}}}
	var p config.Problems
	auth.Validate(&p, "auth")
	for _, tc := range []struct {
		name    string
		proxies []string
		remote  string
		want    string
	}{
		{"no proxy configured", nil, "192.0.2.7:4242", "192.0.2.7"},
		{"from a configured proxy", []string{"192.0.2.0/24"}, "192.0.2.7:4242", "203.0.113.9"},
		{"from elsewhere with proxies configured", []string{"10.0.0.1"}, "192.0.2.7:4242", "192.0.2.7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			reg := prometheus.NewRegistry()
			h := New(Options{Store: st, Auth: auth, Gatherer: reg, TrustedProxies: tc.proxies,
				Log: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
			req := httptest.NewRequest("GET", "/api/v1/sources", nil)
			req.RemoteAddr = tc.remote
			req.Header.Set("X-Forwarded-For", "203.0.113.9")
			req.Header.Set("X-Real-IP", "203.0.113.9")
			req.Header.Set("Authorization", "Bearer "+tok)
			h.ServeHTTP(httptest.NewRecorder(), req)
			var line struct {
				Client string `json:"client"`
			}
			if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
				t.Fatalf("log %q: %v", logs.String(), err)
			}
			if line.Client != tc.want {
				t.Errorf("logged client %q, want %q", line.Client, tc.want)
			}
		})
	}
}
