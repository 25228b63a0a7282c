package api

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/store"
	"github.com/prometheus/client_golang/prometheus"
)

// Tokens of the hardening tests: an admin and an unscoped viewer see every
// tenant; the others are scoped to one.
const (
	adminTok   = "admin-token-0123456789"
	viewerTok  = "viewer-token-0123456789"
	dadeTok    = "dade-operator-0123456789"
	browardTok = "broward-operator-0123456789"
	dadeView   = "dade-viewer-0123456789"
)

type hardened struct {
	srv *httptest.Server
	st  *store.Store
}

func newHardened(t *testing.T, mod func(*Options)) *hardened {
	t.Helper()
	st, err := store.Open(context.Background(), store.Config{Driver: "sqlite", Path: filepath.Join(t.TempDir(), "h.db")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	auth := AuthConfig{Tokens: []TokenConfig{
		{Name: "admin", Token: config.Secret(adminTok), Role: "admin"},
		{Name: "viewer", Token: config.Secret(viewerTok), Role: "viewer"},
		{Name: "dade-op", Token: config.Secret(dadeTok), Role: "operator", Tenants: []string{"dade"}},
		{Name: "broward-op", Token: config.Secret(browardTok), Role: "operator", Tenants: []string{"broward"}},
		{Name: "dade-viewer", Token: config.Secret(dadeView), Role: "viewer", Tenants: []string{"dade"}},
	}}
	var p config.Problems
	auth.Validate(&p, "auth")
	reg := prometheus.NewRegistry()
	o := Options{Store: st, Ingest: storeIngest{st}, Auth: auth, Gatherer: reg, Registerer: reg,
		Log: slog.New(slog.DiscardHandler)}
	if mod != nil {
		mod(&o)
	}
	srv := httptest.NewServer(New(o))
	t.Cleanup(srv.Close)
	return &hardened{srv: srv, st: st}
}

// call sends a request with token and decodes the JSON answer.
func (h *hardened) call(t *testing.T, token, method, path, body string) (int, map[string]any, string) {
	t.Helper()
	req, _ := http.NewRequest(method, h.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var out map[string]any
	json.Unmarshal(data, &out)
	return resp.StatusCode, out, string(data)
}

func (h *hardened) push(t *testing.T, token, body string) map[string]any {
	t.Helper()
	code, res, raw := h.call(t, token, "POST", "/api/v1/observations", body)
	if code != 200 || res["accepted"] != 1.0 {
		t.Fatalf("push: %d %s", code, raw)
	}
	return res
}

func errCode(res map[string]any) string {
	e, _ := res["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

// TestRunIDCollisionCannotCrossTenants: a tenant that pushes another
// tenant's run_id makes a run of its own; it neither reads nor changes the
// other tenant's run (issue 13, item 1).
func TestRunIDCollisionCannotCrossTenants(t *testing.T) {
	h := newHardened(t, nil)
	h.push(t, browardTok, `{"at":"2026-09-01T05:00:00Z","tenant":"broward","job":"roster-import","run_id":"broward/2026-09-01#1",
		"state":"running","stage":"loading","rows_done":10,"rows_total":100,"error":"broward-only detail"}`)
	h.push(t, dadeTok, `{"at":"2026-09-01T05:10:00Z","tenant":"dade","job":"roster-import","run_id":"broward/2026-09-01#1",
		"state":"succeeded","rows_done":1,"rows_total":1}`)
	path := "/api/v1/runs/" + url.PathEscape("broward/2026-09-01#1")

	for _, tc := range []struct{ token, tenant, state string }{
		{dadeTok, "dade", "succeeded"},
		{browardTok, "broward", "running"},
	} {
		code, res, raw := h.call(t, tc.token, "GET", path, "")
		if code != 200 {
			t.Fatalf("%s reading its run: %d %s", tc.tenant, code, raw)
		}
		run := res["run"].(map[string]any)
		if run["tenant"] != tc.tenant || run["state"] != tc.state {
			t.Fatalf("%s reads run %v", tc.tenant, run)
		}
		for _, o := range res["observations"].([]any) {
			if o.(map[string]any)["tenant"] != tc.tenant {
				t.Fatalf("%s reads another tenant's observation %v", tc.tenant, o)
			}
		}
		if tc.tenant == "dade" && strings.Contains(raw, "broward-only") {
			t.Fatalf("dade reads broward's error text: %s", raw)
		}
	}
	// broward's board still shows its own run.
	_, res, _ := h.call(t, browardTok, "GET", "/api/v1/status", "")
	rows := res["jobs"].([]any)
	if len(rows) != 1 || rows[0].(map[string]any)["state"] != "running" || rows[0].(map[string]any)["tenant"] != "broward" {
		t.Fatalf("broward's board after dade pushed its run_id: %v", rows)
	}
	// An admin sees both: the run_id alone is ambiguous and says so.
	code, res, _ := h.call(t, adminTok, "GET", path, "")
	if code != 409 || errCode(res) != "ambiguous_run_id" {
		t.Fatalf("admin without tenant and job: %d %v", code, res)
	}
	code, res, _ = h.call(t, adminTok, "GET", path+"?tenant=broward&job=roster-import", "")
	if code != 200 || res["run"].(map[string]any)["tenant"] != "broward" {
		t.Fatalf("admin with tenant and job: %d %v", code, res)
	}
	// A scoped token asking for another tenant's run is told nothing.
	code, _, _ = h.call(t, dadeTok, "GET", path+"?tenant=broward&job=roster-import", "")
	if code != 404 {
		t.Fatalf("dade asking for broward's run by name: %d, want 404", code)
	}
}

// TestPushedTimesAreBounded: one far-future time must not be accepted (it
// would move the job's night); the error names the field (issue 13, item 4).
func TestPushedTimesAreBounded(t *testing.T) {
	h := newHardened(t, nil)
	for _, field := range []string{"started_at", "updated_at", "finished_at", "files_arrived_at"} {
		body := `{"at":"2026-09-01T05:00:00Z","tenant":"dade","job":"roster-import","run_id":"r","state":"failed","` + field + `":"2199-09-01T05:00:00Z"}`
		code, res, raw := h.call(t, dadeTok, "POST", "/api/v1/observations", body)
		errs, _ := res["errors"].([]any)
		if code != 422 || len(errs) != 1 || !strings.Contains(errs[0].(map[string]any)["error"].(string), `"`+field+`"`) {
			t.Errorf("%s in 2199: %d %s", field, code, raw)
		}
	}
}
