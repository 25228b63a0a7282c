package api

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/model"
	"github.com/etlhub/etlhub/store"
	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
)

const tok = "operator-token-0123456789"

type storeIngest struct{ st *store.Store }

func (s storeIngest) Ingest(ctx context.Context, _ string, obs []model.Observation) (store.IngestResult, error) {
	return s.st.Ingest(ctx, obs)
}

func newServer(t *testing.T) *httptest.Server {
	st, err := store.Open(context.Background(), store.Config{Driver: "sqlite", Path: filepath.Join(t.TempDir(), "h.db")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	auth := AuthConfig{Tokens: []TokenConfig{{Name: "op", Token: config.Secret(tok), Role: "operator"}}}
	var p config.Problems
	auth.Validate(&p, "auth")
	reg := prometheus.NewRegistry()
	h := New(Options{Store: st, Ingest: storeIngest{st}, Auth: auth, Gatherer: reg, Registerer: reg,
		Log: slog.New(slog.DiscardHandler), MaxBodyBytes: 4096})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func do(t *testing.T, srv *httptest.Server, method, path, body string) (int, map[string]any) {
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var out map[string]any
	json.Unmarshal(data, &out)
	return resp.StatusCode, out
}

// TestHostileRequestsGetOneErrorShape: every refusal is JSON with a code
// and a message, and the server keeps serving.
func TestHostileRequestsGetOneErrorShape(t *testing.T) {
	srv := newServer(t)
	for _, tc := range []struct {
		method, path, body string
		code               int
		kind               string
	}{
		{"GET", "/api/v1/nope", "", 404, "not_found"},
		{"DELETE", "/api/v1/status", "", 405, "method_not_allowed"},
		{"POST", "/api/v1/observations", "[" + strings.Repeat("{}, ", 1250), 413, "body_too_large"},
		{"POST", "/api/v1/observations", strings.Repeat("x", 5000), 400, "invalid_json"},
		{"POST", "/api/v1/observations", "[1, 2", 400, "invalid_json"},
		{"POST", "/api/v1/observations", "   ", 400, "empty"},
		{"GET", "/api/v1/jobs/a/b/runs?limit=100000", "", 400, "bad_request"},
		{"GET", "/api/v1/jobs/a/b/runs?before=%00%ff", "", 400, "bad_request"},
		{"GET", "/api/v1/alerts?state=everything", "", 400, "bad_request"},
		{"GET", "/api/v1/jobs/a/b", "", 404, "not_found"},
		{"POST", "/api/v1/silences", `{"matchers": "all"}`, 400, "invalid_json"},
	} {
		code, body := do(t, srv, tc.method, tc.path, tc.body)
		e, _ := body["error"].(map[string]any)
		if code != tc.code || e == nil || e["code"] != tc.kind || e["message"] == "" {
			t.Errorf("%s %s: %d %v, want %d %s", tc.method, tc.path, code, body, tc.code, tc.kind)
		}
	}
	if code, _ := do(t, srv, "GET", "/healthz", ""); code != 200 {
		t.Fatal("the server stopped serving")
	}
}

func TestPushedItemsAreJudgedOneByOne(t *testing.T) {
	srv := newServer(t)
	future := time.Now().UTC().Add(time.Hour).Format(time.RFC3339)
	body := `[{"at":"2026-09-01T05:00:00Z","tenant":"a","job":"b","run_id":"r","state":"running"},
	          {"at":"2026-09-01T05:00:00Z","tenant":"a","job":"b","run_id":"r2","state":"running","rows_done":-1},
	          {"at":"` + future + `","tenant":"a","job":"b","run_id":"r3","state":"running"}]`
	code, res := do(t, srv, "POST", "/api/v1/observations", body)
	if code != 200 || res["accepted"] != 1.0 || res["rejected"] != 2.0 {
		t.Fatalf("%d %v", code, res)
	}
	errs := res["errors"].([]any)
	if !strings.Contains(errs[0].(map[string]any)["error"].(string), "rows_done") ||
		!strings.Contains(errs[1].(map[string]any)["error"].(string), "in the future") || errs[1].(map[string]any)["index"] != 2.0 {
		t.Fatalf("errors %v", errs)
	}
}

// TestOpenAPIMatchesTheRoutes keeps openapi.json in step with the router:
// every route is documented and every documented path is served.
func TestOpenAPIMatchesTheRoutes(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	st, _ := store.Open(context.Background(), store.Config{Driver: "sqlite", Path: filepath.Join(t.TempDir(), "h.db")}, nil)
	defer st.Close()
	reg := prometheus.NewRegistry()
	h := New(Options{Store: st, Gatherer: reg, Log: slog.New(slog.DiscardHandler), Actions: noActions{}}).(interface {
		Routes() gin.RoutesInfo
	})
	served := map[string]bool{}
	for _, r := range h.Routes() {
		path := regexp.MustCompile(`[:*]([a-z_]+)`).ReplaceAllString(r.Path, "{$1}")
		served[r.Method+" "+path] = true
		if !documented[r.Method+" "+path] {
			t.Errorf("%s %s is served but not in openapi.json", r.Method, path)
		}
	}
	for k := range documented {
		if !served[k] {
			t.Errorf("%s is documented but not served", k)
		}
	}
	srv := httptest.NewServer(h.(http.Handler))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/api/v1/openapi.json")
	if err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("serving openapi.json: %v %v", resp.StatusCode, err)
	}
}

type noActions struct{}

func (noActions) Ack(context.Context, string, string) (model.Alert, error) { return model.Alert{}, nil }
func (noActions) PagerDutyWebhook(context.Context, []byte, string) error   { return nil }
