package collectors

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/model"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// memSink is a small in-memory Sink.
type memSink struct {
	mu     sync.Mutex
	obs    []model.Observation
	ms     []model.Measurement
	health map[string]model.SourceHealth
	logs   []model.LogSignal
}

func (m *memSink) ObserveLogs(_ context.Context, sigs []model.LogSignal) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.logs = append(m.logs, sigs...)
	return nil
}

func (m *memSink) Measure(_ context.Context, ms []model.Measurement) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ms = append(m.ms, ms...)
	return nil
}

func (m *memSink) measurements() []model.Measurement {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]model.Measurement(nil), m.ms...)
}

func (m *memSink) Ingest(_ context.Context, obs []model.Observation) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.obs = append(m.obs, obs...)
	return nil
}

func (m *memSink) SaveSource(_ context.Context, h model.SourceHealth) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.health == nil {
		m.health = map[string]model.SourceHealth{}
	}
	m.health[h.Name] = h
	return nil
}

func (m *memSink) Source(_ context.Context, name string) (model.SourceHealth, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	h, ok := m.health[name]
	if !ok {
		return h, fmt.Errorf("not found")
	}
	return h, nil
}

const legacyBody = `{"data": {"pipelines": [
  {"id": "L-1", "customer": {"slug": "broward"}, "status": "RUNNING", "started": 1788235200,
   "progress": {"done": "120", "total": 3000}, "heartbeat": "2026-09-01T04:05:00Z"},
  {"id": "L-2", "customer": {"slug": "dade"}, "status": "OK", "started": "2026-09-01T03:00:00Z",
   "finished": "2026-09-01T04:00:00Z", "progress": {"done": 10, "total": 10}}
]}}`

func legacyConfig(url string) SourceConfig {
	c := SourceConfig{
		Name: "legacy", Kind: "httpjson", URL: url, Timeout: 500 * time.Millisecond,
		Headers: map[string]config.Secret{"Authorization": "Bearer s3cr3t-token"},
		HTTPJSON: &HTTPJSONConfig{
			RunsPath: "data.pipelines",
			Fields: map[string]string{"run_id": "id", "tenant": "customer.slug", "state": "status",
				"started_at": "started", "finished_at": "finished", "rows_done": "progress.done",
				"rows_total": "progress.total", "updated_at": "heartbeat"},
			StateMap: map[string]string{"RUNNING": "running", "OK": "succeeded"},
			Defaults: map[string]string{"job": "legacy-sync"},
		},
	}
	var p config.Problems
	c.Validate(&p, "sources[0]")
	if p.Len() > 0 {
		panic(fmt.Sprint(p))
	}
	return c
}

func TestHTTPJSONMapsRuns(t *testing.T) {
	var auth string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth = r.Header.Get("Authorization")
		io.WriteString(w, legacyBody)
	}))
	defer srv.Close()
	c, err := New(legacyConfig(srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 9, 1, 4, 6, 0, 0, time.UTC)
	res, err := c.Collect(context.Background(), now)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "Bearer s3cr3t-token" {
		t.Fatalf("Authorization header %q not sent", auth)
	}
	if len(res.Observations) != 2 || len(res.Rejected) != 0 {
		t.Fatalf("got %d observations, %d rejected: %v", len(res.Observations), len(res.Rejected), res.Rejected)
	}
	o := res.Observations[0]
	if o.Tenant != "broward" || o.Job != "legacy-sync" || o.State != model.StateRunning || o.RowsDone != 120 ||
		o.RowsTotal != 3000 || !o.StartedAt.Equal(time.Unix(1788235200, 0)) || !o.At.Equal(now) || o.Source != "legacy" {
		t.Fatalf("mapped observation = %+v", o)
	}
	if res.Observations[1].State != model.StateSucceeded || res.Observations[1].FinishedAt == nil {
		t.Fatalf("second run = %+v", res.Observations[1])
	}
}

func TestHTTPJSONRejectsBadItemsByName(t *testing.T) {
	body := `{"data": {"pipelines": [
	  {"id": "ok", "customer": {"slug": "a"}, "status": "RUNNING"},
	  {"id": "x", "customer": {"slug": "a"}, "status": "EXPLODED"},
	  {"id": "y", "customer": {"slug": "a"}, "status": "RUNNING", "progress": {"done": -4}},
	  {"id": "z", "customer": {"slug": "a"}, "status": "RUNNING", "started": "yesterday"}]}}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) }))
	defer srv.Close()
	c, _ := New(legacyConfig(srv.URL))
	res, err := c.Collect(context.Background(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Observations) != 1 || len(res.Rejected) != 3 {
		t.Fatalf("%d good, %d rejected; want 1 and 3", len(res.Observations), len(res.Rejected))
	}
	for i, want := range []string{`data.pipelines[1]: field "state"`, `data.pipelines[2]: field "rows_done"`, `data.pipelines[3]: field "started_at"`} {
		if !strings.Contains(res.Rejected[i].Error(), want) {
			t.Errorf("rejection %d = %q, want it to name %s", i, res.Rejected[i], want)
		}
	}
}

func TestImporterCollectorReadsRuns(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/runs" {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, `{"runs": [{"source": "importer", "tenant": "dade", "job": "roster-import", "run_id": "dade/1", "state": "running",
		  "stage": "loading", "started_at": "2026-09-01T04:00:00Z", "updated_at": "2026-09-01T04:05:00Z",
		  "rows_done": 5, "rows_total": 10, "files_arrived_at": "2026-09-01T03:58:00Z", "quality": {"errors": 1, "warnings": 2}}]}`)
	}))
	defer srv.Close()
	// The importer says "source": "importer"; the hub knows this importer
	// as the source it configured (jobs[].source, the source's health and
	// the tenants it feeds are by that name).
	cfg := SourceConfig{Name: "importer-east", Kind: "importer", URL: srv.URL}
	var p config.Problems
	cfg.Validate(&p, "s")
	c, _ := New(cfg)
	res, err := c.Collect(context.Background(), time.Date(2026, 9, 1, 4, 6, 0, 0, time.UTC))
	if err != nil || len(res.Observations) != 1 {
		t.Fatalf("collect: %v, %+v", err, res)
	}
	o := res.Observations[0]
	if o.Source != "importer-east" || o.Quality == nil || o.Quality.Warnings != 2 || o.FilesArrivedAt == nil {
		t.Fatalf("observation = %+v", o)
	}
}

// TestBadSourcesLeaveTheRunnerHealthy feeds each bad answer a source can give
// and checks the source is marked unhealthy with the reason, nothing is
// stored, and the secret header never shows in the reason.
func TestBadSourcesLeaveTheRunnerHealthy(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	cases := []struct {
		name    string
		handler http.HandlerFunc
		reason  string
	}{
		{"5xx", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "upstream exploded; token was "+r.Header.Get("Authorization"), 503)
		}, "HTTP 503"},
		{"garbage", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "<html>oops</html>") }, "not JSON"},
		{"wrong shape", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"data": {"pipelines": 7}}`) }, "not an array"},
		{"huge", func(w http.ResponseWriter, r *http.Request) {
			chunk := strings.Repeat("x", 1<<20)
			io.WriteString(w, `{"data": "`)
			for i := 0; i < 200; i++ {
				if _, err := io.WriteString(w, chunk); err != nil {
					return
				}
			}
		}, "exceeds the"},
		{"silent", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-block:
			case <-r.Context().Done():
			}
		}, "timeout"},
		{"hangs up", func(w http.ResponseWriter, r *http.Request) {
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
		}, "EOF"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			sink := &memSink{}
			reg := prometheus.NewRegistry()
			m := NewMetrics(reg)
			clock := time.Date(2026, 9, 1, 4, 0, 0, 0, time.UTC)
			cfg := legacyConfig(srv.URL)
			if tc.name == "huge" {
				// A limit well under the body, so hitting it cannot lose a
				// race with the timeout on a busy machine.
				cfg.MaxBodyBytes = 1 << 20
				// And a timeout far beyond the time to send 1 MiB on
				// loopback, even at a load average of 40.
				cfg.Timeout = 10 * time.Second
			}
			r, err := NewRunner(RunnerConfig{Sources: []SourceConfig{cfg}}, sink, slog.New(slog.DiscardHandler), m, func() time.Time { return clock })
			if err != nil {
				t.Fatal(err)
			}
			if !r.RunOnce(context.Background(), "legacy") {
				t.Fatal("collection did not run")
			}
			h := sink.health["legacy"]
			if h.Healthy || h.ConsecutiveFailures != 1 || !strings.Contains(h.LastError, tc.reason) {
				t.Fatalf("health = %+v; want unhealthy with %q", h, tc.reason)
			}
			if strings.Contains(h.LastError, "s3cr3t-token") {
				t.Fatalf("the secret header leaked into the reason: %q", h.LastError)
			}
			if len(sink.obs) != 0 {
				t.Fatalf("%d observations stored from a bad answer", len(sink.obs))
			}
			if h.NextAttemptAt == nil || !h.NextAttemptAt.After(clock) {
				t.Fatalf("no backoff after failure: %+v", h.NextAttemptAt)
			}
			// A tick inside the backoff does not call the source again.
			if r.RunOnce(context.Background(), "legacy") {
				t.Fatal("collected again while backing off")
			}
			if got := testutil.ToFloat64(m.runs.WithLabelValues("legacy", "error")); got != 1 {
				t.Fatalf("error count metric = %v, want 1", got)
			}
		})
	}
}

func TestRecoveryResetsHealth(t *testing.T) {
	fail := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fail {
			w.WriteHeader(500)
			return
		}
		io.WriteString(w, legacyBody)
	}))
	defer srv.Close()
	sink := &memSink{}
	clock := time.Date(2026, 9, 1, 4, 0, 0, 0, time.UTC)
	r, _ := NewRunner(RunnerConfig{Sources: []SourceConfig{legacyConfig(srv.URL)}}, sink, slog.New(slog.DiscardHandler), nil, func() time.Time { return clock })
	r.RunOnce(context.Background(), "legacy")
	fail = false
	clock = clock.Add(time.Hour) // past any backoff
	r.RunOnce(context.Background(), "legacy")
	h := sink.health["legacy"]
	if !h.Healthy || h.ConsecutiveFailures != 0 || h.LastObservations != 2 || len(sink.obs) != 2 {
		t.Fatalf("after recovery health = %+v, %d stored", h, len(sink.obs))
	}
}

type panicky struct{}

func (panicky) Collect(context.Context, time.Time) (Result, error) { panic("boom") }

func TestPanicIsAFailureNotACrash(t *testing.T) {
	sink := &memSink{}
	r := &Runner{sink: sink, log: slog.New(slog.DiscardHandler), now: time.Now}
	r.sources = []*source{{cfg: SourceConfig{Name: "p", Timeout: time.Second}, c: panicky{}, health: model.SourceHealth{Name: "p"}}}
	r.RunOnce(context.Background(), "p")
	if h := sink.health["p"]; h.Healthy || !strings.Contains(h.LastError, "panicked: boom") {
		t.Fatalf("health after panic = %+v", h)
	}
}

func TestConfigProblemsNameKeys(t *testing.T) {
	c := SourceConfig{Name: "x", Kind: "ftp", URL: "gopher://x", Schedule: "every day",
		HTTPJSON: &HTTPJSONConfig{Fields: map[string]string{"colour": "c"}}}
	var p config.Problems
	c.Validate(&p, "sources[2]")
	got := fmt.Sprint(p)
	for _, want := range []string{"sources[2].kind", "sources[2].schedule"} {
		if !strings.Contains(got, want) {
			t.Errorf("problems %s do not name %s", got, want)
		}
	}
	// Which keys a kind needs is the kind's: an importer needs an http(s) url.
	c = SourceConfig{Name: "x", Kind: "importer", URL: "gopher://x"}
	p = config.Problems{}
	c.Validate(&p, "sources[3]")
	if got := fmt.Sprint(p); !strings.Contains(got, "sources[3].url") {
		t.Errorf("problems %s do not name sources[3].url", got)
	}
}
