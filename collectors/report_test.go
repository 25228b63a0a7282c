package collectors

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/etlhub/etlhub/internal/config"
)

// TestReportReadsTheImportersReport: a run's report comes from the
// importer's GET /api/v1/report with the source's token; one failure that
// may pass is tried again, a missing report is ErrNoReport at once, a
// source that is not an importer keeps none, and the token never shows in
// an error.
func TestReportReadsTheImportersReport(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		switch {
		case r.Header.Get("Authorization") != "Bearer s3cr3t-token":
			w.WriteHeader(401)
		case r.URL.Path != "/api/v1/report":
			w.WriteHeader(404)
		case r.URL.Query().Get("run_id") == "gone/1":
			w.WriteHeader(404)
		case r.URL.Query().Get("run_id") == "down/1":
			w.WriteHeader(503)
			w.Write([]byte("token s3cr3t-token refused upstream"))
		case n == 1:
			w.WriteHeader(502) // the first call fails; the retry passes
		default:
			w.Write([]byte(`{"run_id":"` + r.URL.Query().Get("run_id") + `","report":{"errors":1}}`))
		}
	}))
	defer srv.Close()
	imp := SourceConfig{Name: "imp", Kind: "importer", URL: srv.URL + "/api/v1/runs", Timeout: 2 * time.Second,
		Headers: map[string]config.Secret{"Authorization": "Bearer s3cr3t-token"}, Backoff: BackoffConfig{Base: 10 * time.Millisecond, Max: 20 * time.Millisecond}}
	var p config.Problems
	imp.Validate(&p, "sources[0]")
	if p.Len() > 0 {
		t.Fatal(p)
	}
	other := legacyConfig(srv.URL)
	r, err := NewRunner(RunnerConfig{Sources: []SourceConfig{imp, other}}, &memSink{}, slog.New(slog.DiscardHandler), nil, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if !r.KeepsReports("imp") || r.KeepsReports("legacy") || r.KeepsReports("nobody") {
		t.Fatal("KeepsReports: only the importer source keeps reports")
	}
	body, err := r.Report(ctx, "imp", "dade/roster-import/2026-09-01#1")
	if err != nil || !strings.Contains(string(body), `"run_id":"dade/roster-import/2026-09-01#1"`) || calls.Load() != 2 {
		t.Fatalf("report %s, %v after %d calls; want it on the second", body, err, calls.Load())
	}
	if _, err := r.Report(ctx, "imp", "gone/1"); !errors.Is(err, ErrNoReport) {
		t.Fatalf("a missing report: %v", err)
	}
	if _, err := r.Report(ctx, "legacy", "x/1"); !errors.Is(err, ErrNoReport) {
		t.Fatalf("a source that is not an importer: %v", err)
	}
	before := calls.Load()
	_, err = r.Report(ctx, "imp", "down/1")
	if err == nil || calls.Load()-before != 2 || strings.Contains(err.Error(), "s3cr3t-token") || !strings.Contains(err.Error(), "source imp") {
		t.Fatalf("an importer answering 503: %v after %d calls (want two, the token scrubbed, the source named)", err, calls.Load()-before)
	}
}
