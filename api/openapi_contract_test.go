package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/model"
	"github.com/etlhub/etlhub/rules"
	"github.com/etlhub/etlhub/store"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/prometheus/client_golang/prometheus"
)

// The contract test drives every operation of api/openapi.json against
// running hubs (the real engine, a real SQLite store) and checks each answer
// against the document: the status code is declared, the body is valid
// against the declared schema, it holds no field the schema does not
// declare, and every status code the document declares for an operation is
// one some request here really gets. Requests meant to be good must be valid
// against the document too, and those the hub refuses for their content
// must be refused by the document's schema as well.

const (
	ctAdmin = "contract-admin-0123456789"
	ctOp    = "contract-operator-0123456789"
	ctView  = "contract-viewer-0123456789"
	ctAlpha = "contract-alpha-0123456789"
	// Ping keys: alpha's unconfigured nightly-export, and four of bravo's.
	ctPing  = "contract-alpha-ping-0123456789"
	ctPingB = "contract-bravo-ping-%d-0123456789"
)

func init() {
	for _, ct := range []string{"text/html", "text/css", "text/javascript", "application/x-ndjson", "text/event-stream"} {
		openapi3filter.RegisterBodyDecoder(ct, openapi3filter.PlainBodyDecoder)
	}
}

// contractActions stands in for the alerting loop: acks succeed for alerts
// the store has firing, webhooks answer by their signature.
type contractActions struct {
	st     *store.Store
	mu     sync.Mutex
	posted []rules.External
}

func (a *contractActions) Ack(ctx context.Context, id, who string) (model.Alert, error) {
	found, err := a.st.ListAlerts(ctx, store.AlertFilter{ID: id, Limit: 1})
	if err != nil {
		return model.Alert{}, err
	}
	if len(found) == 0 || found[0].State != model.AlertFiring {
		return model.Alert{}, rules.ErrNoAlert
	}
	al := found[0]
	al.AckedBy, al.AckedAt = who, time.Date(2026, 9, 1, 6, 0, 0, 0, time.UTC)
	return al, nil
}

func (a *contractActions) PagerDutyWebhook(_ context.Context, _ []byte, sig string) error {
	switch sig {
	case "v1=good":
		return nil
	case "v1=duplicate":
		return ErrDuplicateEvent
	case "v1=stale":
		return ErrStaleEvent
	case "v1=not-an-event":
		return fmt.Errorf("%w: no event", ErrBadPayload)
	case "v1=store-down":
		return errors.New("the store is down")
	}
	return ErrBadSignature
}

func (a *contractActions) PostExternal(xs []rules.External) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.posted = append(a.posted, xs...)
}

// contractViews gives alpha's job everything a view can hold.
type contractViews struct{ now time.Time }

func (v contractViews) JobViews() map[model.JobKey]JobView {
	fin, lo, hi, dl := v.now.Add(40*time.Minute), v.now.Add(30*time.Minute), v.now.Add(55*time.Minute), v.now.Add(time.Hour)
	night := time.Date(2026, 9, 1, 4, 0, 0, 0, time.UTC)
	done := night.Add(90 * time.Minute)
	return map[model.JobKey]JobView{
		{Tenant: "alpha", Job: "roster-import"}: {Risk: string(model.RiskAtRisk), PredictedFinish: &fin, Deadline: &dl, PBreach: 0.3,
			Basis: "history", LearnedFrom: 12, Why: "slower than usual", Logs: "3 errors", ActiveAlerts: 1, FinishLo: &lo, FinishHi: &hi,
			Outcome: &rules.Outcome{Night: night, Deadline: dl, Kind: rules.OutcomeRunning, Attempts: 1, Summary: "running"},
			LastNight: &rules.Outcome{Night: night.Add(-24 * time.Hour), Deadline: dl.Add(-24 * time.Hour), Kind: rules.OutcomeOnTime,
				FinishedAt: &done, SpareS: 600, Attempts: 2, Failed: 1, Retried: true, RunID: "alpha-run-0", Summary: "on time"}},
	}
}

// contractCluster is two replicas, the first leading.
type contractCluster struct {
	st  *store.Store
	now time.Time
}

func (c contractCluster) Cluster(ctx context.Context) (ClusterStatus, error) {
	if err := c.st.Ping(ctx); err != nil {
		return ClusterStatus{}, err
	}
	return ClusterStatus{Self: "hub-b", Store: "postgres", LeaseTTL: "15s", LeaseRenew: "5s",
		Lease: &LeaseStatus{Holder: "hub-a", Token: 3, ExpiresAt: c.now.Add(10 * time.Second), RenewedAt: c.now.Add(-5 * time.Second),
			AcquiredAt: c.now.Add(-time.Hour), Valid: true},
		Replicas: []ReplicaStatus{
			{ID: "hub-a", Address: "10.0.0.1:8080", Version: "1.4.0", Role: "leader", StartedAt: c.now.Add(-2 * time.Hour), LastSeen: c.now.Add(-5 * time.Second)},
			{ID: "hub-b", Address: "10.0.0.2:8080", Version: "1.4.0", Role: "follower", StartedAt: c.now.Add(-time.Hour), LastSeen: c.now, Self: true},
		}}, nil
}

type contractHub struct {
	srv     *httptest.Server
	st      *store.Store
	actions *contractActions
}

type hubTweak func(*Options)

func newContractHub(t *testing.T, now time.Time, tweaks ...hubTweak) *contractHub {
	t.Helper()
	st, err := store.Open(context.Background(), store.Config{Driver: "sqlite", Path: filepath.Join(t.TempDir(), "contract.db")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	auth := AuthConfig{Tokens: []TokenConfig{
		{Name: "admin", Token: config.Secret(ctAdmin), Role: "admin"},
		{Name: "op", Token: config.Secret(ctOp), Role: "operator"},
		{Name: "viewer", Token: config.Secret(ctView), Role: "viewer"},
		{Name: "alpha", Token: config.Secret(ctAlpha), Role: "operator", Tenants: []string{"alpha"}},
	}, PingKeys: []PingKeyConfig{{Name: "alpha-export", Key: config.Secret(ctPing), Tenant: "alpha", Job: "nightly-export"}}}
	for i := 1; i <= 4; i++ {
		auth.PingKeys = append(auth.PingKeys, PingKeyConfig{Name: fmt.Sprintf("bravo-%d", i), Key: config.Secret(fmt.Sprintf(ctPingB, i)),
			Tenant: "bravo", Job: fmt.Sprintf("export-%d", i)})
	}
	var p config.Problems
	auth.Validate(&p, "auth")
	if err := p.Err("auth"); err != nil {
		t.Fatal(err)
	}
	jobs := []model.JobSpec{
		{Tenant: "alpha", Job: "roster-import", Timezone: "America/New_York", Schedule: "0 0 * * *", Deadline: "06:00",
			StaleAfter: model.Duration(20 * time.Minute), MaxDuration: model.Duration(3 * time.Hour), FilesExpectedBy: "23:30",
			Severity: map[string]model.Severity{rules.RuleStalled: model.SeverityWarning}, Source: "alpha-sis"},
		{Tenant: "alpha", Job: "never-seen", Timezone: "UTC", Schedule: "0 1 * * *", Deadline: "05:00", StaleAfter: model.Duration(time.Hour)},
		{Tenant: "bravo", Job: "roster-import", Timezone: "UTC", Schedule: "0 0 * * *", Deadline: "06:00", StaleAfter: model.Duration(time.Hour)},
	}
	for i := range jobs {
		if err := jobs[i].Compile(); err != nil {
			t.Fatal(err)
		}
	}
	actions := &contractActions{st: st}
	reg := prometheus.NewRegistry()
	o := Options{Store: st, Ingest: storeIngest{st}, Jobs: jobs, Auth: auth, Views: contractViews{now}, Actions: actions, Cluster: contractCluster{st, now},
		Reload:   func(context.Context) (ReloadResult, error) { return ReloadResult{Status: "reloaded"}, nil },
		Gatherer: reg, Registerer: reg, Log: slog.New(slog.DiscardHandler), Now: func() time.Time { return now }}
	for _, tw := range tweaks {
		tw(&o)
	}
	srv := httptest.NewServer(New(o))
	t.Cleanup(srv.Close)
	return &contractHub{srv: srv, st: st, actions: actions}
}

// seed leaves what pushes, collectors, the rules and people leave.
func (h *contractHub) seed(t *testing.T, now time.Time) {
	t.Helper()
	ctx := context.Background()
	push := `{"at":"2026-09-01T05:00:00Z","source":"alpha-sis","tenant":"alpha","job":"roster-import","run_id":"alpha/roster-import/2026-09-01#1","state":"running","stage":"loading","started_at":"2026-09-01T04:00:00Z","updated_at":"2026-09-01T04:59:00Z","rows_done":50,"rows_total":200,"files_arrived_at":"2026-08-31T23:10:00Z","attempt":1,"quality":{"errors":2,"warnings":5},"url":"https://importer.example/runs/1"}
{"at":"2026-09-01T03:00:00Z","tenant":"alpha","job":"roster-import","run_id":"alpha-run-0","state":"succeeded","started_at":"2026-09-01T01:00:00Z","finished_at":"2026-09-01T02:30:00Z","rows_done":200,"rows_total":200}
{"at":"2026-09-01T05:00:00Z","tenant":"alpha","job":"pushed-only","run_id":"shared-id","state":"failed","error":"boom"}
{"at":"2026-09-01T05:00:00Z","tenant":"bravo","job":"roster-import","run_id":"shared-id","state":"waiting"}`
	if code, body := h.call(t, ctAdmin, "POST", "/api/v1/observations", push, ""); code != 200 {
		t.Fatalf("seeding: %d %s", code, body)
	}
	for _, src := range []string{"alpha-sis", "bravo-sis"} {
		fail := errors.New("timeout")
		if src == "alpha-sis" {
			fail = nil
		}
		sh := model.SourceHealth{Name: src, Kind: "http_json"}
		sh.Record(now.Add(-time.Minute), 1500*time.Millisecond, 3, fail)
		if err := h.st.SaveSource(ctx, sh); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.st.NoteSourceTenants(ctx, map[string][]string{"alpha-sis": {"alpha"}, "bravo-sis": {"bravo"}}); err != nil {
		t.Fatal(err)
	}
	if err := h.st.SaveMeasurements(ctx, []model.Measurement{
		{At: now.Add(-30 * time.Second), Source: "redis-main", Subject: "redis:main", Kind: model.KindRedis, Up: true,
			Values: map[string]float64{model.ValueLatencyMs: 0.4, model.ValueMemoryUsedRatio: 0.93}},
		{At: now.Add(-time.Minute), Source: "alpha-sftp", Subject: "sftp:sftp.alpha.example:22", Kind: model.KindSFTP, Tenant: "alpha",
			Error: "3 of 3 connections refused"},
	}); err != nil {
		t.Fatal(err)
	}
	alert := func(id, tenant string, state model.AlertState) model.Alert {
		a := model.Alert{ID: id, Fingerprint: "stalled|" + tenant + "|" + id, Rule: rules.RuleStalled, Severity: model.SeverityCritical, Tenant: tenant,
			Job: "roster-import", RunID: "r", Source: tenant + "-sis", Night: now.Add(-2 * time.Hour), Summary: "stalled",
			Details: map[string]any{"stalled_for_s": 1200}, State: state, PendingSince: now.Add(-time.Hour), LastSeen: now}
		if state != model.AlertPending {
			a.FiredAt = now.Add(-50 * time.Minute)
		}
		if state == model.AlertResolved {
			a.ResolvedAt = now.Add(-10 * time.Minute)
		}
		return a
	}
	ext := alert("e1e1e1e1e1e1e1e1", "alpha", model.AlertFiring)
	labels := map[string]string{"alertname": "DiskFull", "tenant": "alpha", "severity": "warning"}
	ext.Rule, ext.Severity, ext.Source, ext.Fingerprint = "DiskFull", model.SeverityWarning, rules.ExternalSource, rules.ExternalFingerprint(labels)
	ext.Details = map[string]any{"labels": labels, "annotations": map[string]string{"summary": "disk full"},
		"ends_at": now.Add(5 * time.Minute).Format(time.RFC3339), "generator_url": "http://prometheus.example/graph"}
	silencedOne := alert("a2a2a2a2a2a2a2a2", "alpha", model.AlertFiring)
	silencedOne.Silenced, silencedOne.Inhibited = true, true
	shared := alert("s1s1s1s1s1s1s1s1", "", model.AlertFiring)
	shared.Rule, shared.Job, shared.Scope = "shared-slowdown", "", model.ScopeShared
	shared.Affected = []model.Affected{{Tenant: "alpha", Job: "roster-import"}, {Tenant: "bravo", Job: "roster-import"}}
	silencedOne.GroupedUnder = shared.Fingerprint
	changed := []model.Alert{alert("a1a1a1a1a1a1a1a1", "alpha", model.AlertFiring), silencedOne, shared, alert("a3a3a3a3a3a3a3a3", "alpha", model.AlertPending),
		alert("b1b1b1b1b1b1b1b1", "bravo", model.AlertFiring), ext}
	var trans []model.Transition
	var notify []store.Notification
	for _, a := range changed {
		tr := model.Transition{At: now.Add(-time.Hour), Status: "firing", Alert: a}
		trans = append(trans, tr)
		notify = append(notify, store.Notification{Receiver: "pager", Trans: tr, GroupKey: a.Tenant})
	}
	if err := h.st.SaveAlerts(ctx, changed, trans, notify); err != nil {
		t.Fatal(err)
	}
	resolved := alert("a4a4a4a4a4a4a4a4", "alpha", model.AlertResolved)
	if err := h.st.SaveAlerts(ctx, []model.Alert{resolved}, []model.Transition{{At: now, Status: "resolved", Alert: resolved}}, nil); err != nil {
		t.Fatal(err)
	}
	for _, sl := range []rules.Silence{
		{ID: "alphasilence", Matchers: []rules.Matcher{{Name: "tenant", Value: "alpha"}, {Name: "rule", Value: "stall.*", IsRegex: true}},
			StartsAt: now.Add(-time.Hour), EndsAt: now.Add(time.Hour), CreatedBy: "admin", Comment: "maintenance", CreatedAt: now.Add(-time.Hour)},
		{ID: "bravosilence", Matchers: []rules.Matcher{{Name: "tenant", Value: "bravo"}},
			StartsAt: now.Add(time.Hour), EndsAt: now.Add(2 * time.Hour), CreatedBy: "admin", CreatedAt: now},
	} {
		if err := h.st.SaveSilence(ctx, sl); err != nil {
			t.Fatal(err)
		}
	}
}

func (h *contractHub) call(t *testing.T, token, method, path, body, ctype string) (int, string) {
	t.Helper()
	resp := h.do(t, token, method, path, body, ctype, nil)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (h *contractHub) do(t *testing.T, token, method, path, body, ctype string, header http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, h.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		if ctype == "" {
			ctype = "application/json"
		}
		req.Header.Set("Content-Type", ctype)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// contractCase is one request; route names the document's operation
// ("GET /api/v1/runs/{run_id}"). request says what the document must say of
// the request: "valid" (it must pass), "invalid" (the document's schema
// must refuse it, as the hub does), or "" (not checked: a refusal the
// document cannot express, such as a missing token or a full store).
type contractCase struct {
	name    string
	hub     *contractHub
	route   string
	token   string
	method  string
	path    string
	body    string
	ctype   string
	header  http.Header
	code    int
	request string
	check   func(t *testing.T, body []byte)
}

func TestEveryRouteAnswersAsTheOpenAPIDocumentSays(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 9, 1, 6, 0, 0, 0, time.UTC)
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(openAPI)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(ctx); err != nil {
		t.Fatalf("the document is not valid OpenAPI: %v", err)
	}

	main := newContractHub(t, now, func(o *Options) { o.EventStreamFor = 100 * time.Millisecond })
	main.seed(t, now)
	// tight has small limits and a full silence list.
	tight := newContractHub(t, now, func(o *Options) { o.MaxSilences, o.MaxBodyBytes, o.MaxItems = 1, 4096, 2 })
	if err := tight.st.SaveSilence(ctx, rules.Silence{ID: "only", Matchers: []rules.Matcher{{Name: "tenant", Value: "alpha"}},
		StartsAt: now, EndsAt: now.Add(time.Hour), CreatedBy: "admin", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	// down's store is closed; noPoster's alert actions take no Prometheus alerts.
	down := newContractHub(t, now)
	down.st.Close()
	// refusing's config has a problem; failing's reload fails; noPoster has
	// no config file to read again.
	refusing := newContractHub(t, now, func(o *Options) {
		o.Reload = func(context.Context) (ReloadResult, error) {
			return ReloadResult{Status: "refused", Problems: []ConfigProblem{{Line: 12, Key: "jobs[0].stale_after", Message: `"5 minutes" is not a duration`}}}, nil
		}
	})
	failing := newContractHub(t, now, func(o *Options) {
		o.Reload = func(context.Context) (ReloadResult, error) {
			return ReloadResult{}, errors.New("collectors would not start")
		}
	})
	// stale read the board once, then lost its store.
	stale := newContractHub(t, now)
	if code, body := stale.call(t, ctView, "GET", "/api/v1/status", "", ""); code != 200 {
		t.Fatalf("status: %d %s", code, body)
	}
	stale.st.Close()
	noPoster := newContractHub(t, now, func(o *Options) { o.Actions, o.Reload = noActions{}, nil })
	// capped takes one unconfigured job and one ping per key.
	capped := newContractHub(t, now, func(o *Options) { o.MaxUnconfiguredJobs, o.PingRate, o.PingBurst = 1, 0.001, 1 })
	pingB := func(i int) string { return "/ping/" + fmt.Sprintf(ctPingB, i) }

	obs := func(tenant, job, run string, extra string) string {
		return `{"at":"2026-09-01T05:30:00Z","tenant":"` + tenant + `","job":"` + job + `","run_id":"` + run + `","state":"running"` + extra + `}`
	}
	silenceBody := `{"matchers":[{"name":"tenant","value":"alpha"},{"name":"job","value":"roster-.*","is_regex":true}],"ends_at":"2026-09-01T08:00:00Z","comment":"deploy"}`
	amSilenceBody := `{"matchers":[{"name":"alertname","value":"DiskFull","isRegex":false,"isEqual":true},{"name":"tenant","value":"alpha","isRegex":false}],` +
		`"startsAt":"2026-09-01T06:00:00Z","endsAt":"2026-09-01T07:00:00Z","createdBy":"amtool-user","comment":"disk swap"}`
	amAlertBody := `[{"labels":{"alertname":"RedisMemoryHigh","tenant":"alpha","severity":"warning"},"annotations":{"summary":"redis at 95%"},` +
		`"startsAt":"2026-09-01T05:55:00Z","generatorURL":"http://prometheus.example/graph"}]`
	big := func(n int) string { return `{"comment":"` + strings.Repeat("x", n) + `"}` }
	sig := func(s string) http.Header { return http.Header{"X-Pagerduty-Signature": {s}} }
	webhook := `{"event":{"id":"e1","event_type":"incident.acknowledged","occurred_at":"2026-09-01T05:59:00Z","data":{"id":"P1"}}}`
	runID := url.PathEscape("alpha/roster-import/2026-09-01#1")
	var createdSilence string
	// example is a request body the document shows its readers.
	example := func(name string) string {
		s := doc.Components.Schemas[name]
		if s == nil || s.Value.Example == nil {
			t.Fatalf("the document has no example of %s", name)
		}
		b, err := json.Marshal(s.Value.Example)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	cases := []contractCase{
		{name: "liveness", route: "GET /healthz", path: "/healthz", code: 200, request: "valid"},
		{name: "ready", route: "GET /readyz", path: "/readyz", code: 200, request: "valid"},
		{name: "not ready", hub: down, route: "GET /readyz", path: "/readyz", code: 503, request: "valid"},
		{name: "metrics", route: "GET /metrics", token: ctView, path: "/metrics", code: 200, request: "valid",
			check: wantIn("etlhub_http_requests_total")},
		{name: "metrics without token", route: "GET /metrics", path: "/metrics", code: 401},
		{name: "metrics for a scoped token", route: "GET /metrics", token: ctAlpha, path: "/metrics", code: 403, request: "valid"},
		{name: "document", route: "GET /api/v1/openapi.json", path: "/api/v1/openapi.json", code: 200, request: "valid", check: wantIn(`"openapi": "3.0.3"`)},
		{name: "dashboard", route: "GET /", path: "/", code: 200, request: "valid", check: wantIn("<html")},
		{name: "dashboard script", route: "GET /ui/{file}", path: "/ui/app.js", code: 200, request: "valid"},
		{name: "dashboard style", route: "GET /ui/{file}", path: "/ui/style.css", code: 200, request: "valid"},
		{name: "dashboard missing file", route: "GET /ui/{file}", path: "/ui/nope.js", code: 404, request: "valid"},

		{name: "status", route: "GET /api/v1/status", token: ctView, path: "/api/v1/status", code: 200, request: "valid",
			check: wantIn(`"risk":"at-risk"`, `"configured":false`, `"progress_pct":25`)},
		{name: "status of jobs without runs", route: "GET /api/v1/status", token: ctAlpha, path: "/api/v1/status?tenant=alpha&state=none", code: 200, request: "valid",
			check: wantIn(`"job":"never-seen"`)},
		{name: "status with a bad token", route: "GET /api/v1/status", token: "not-a-token-0123456789", path: "/api/v1/status", code: 401},
		{name: "status of another tenant", route: "GET /api/v1/status", token: ctAlpha, path: "/api/v1/status?tenant=bravo", code: 403, request: "valid"},
		{name: "status, store down after a read", hub: stale, route: "GET /api/v1/status", token: ctView, path: "/api/v1/status", code: 200, request: "valid",
			check: wantIn(`"stale_since"`)},
		{name: "status, store down", hub: down, route: "GET /api/v1/status", token: ctView, path: "/api/v1/status", code: 503, request: "valid"},

		{name: "job", route: "GET /api/v1/jobs/{tenant}/{job}", token: ctView, path: "/api/v1/jobs/alpha/roster-import", code: 200, request: "valid",
			check: wantIn(`"current_run"`, `"last_success"`, `"stale_after":"20m0s"`, `"last_night"`)},
		{name: "job known from pushes only", route: "GET /api/v1/jobs/{tenant}/{job}", token: ctView, path: "/api/v1/jobs/alpha/pushed-only", code: 200, request: "valid",
			check: wantIn(`"spec":null`)},
		{name: "job never seen", route: "GET /api/v1/jobs/{tenant}/{job}", token: ctView, path: "/api/v1/jobs/alpha/never-seen", code: 200, request: "valid"},
		{name: "job without token", route: "GET /api/v1/jobs/{tenant}/{job}", path: "/api/v1/jobs/alpha/roster-import", code: 401},
		{name: "job of another tenant", route: "GET /api/v1/jobs/{tenant}/{job}", token: ctAlpha, path: "/api/v1/jobs/bravo/roster-import", code: 403, request: "valid"},
		{name: "no such job", route: "GET /api/v1/jobs/{tenant}/{job}", token: ctView, path: "/api/v1/jobs/alpha/nope", code: 404, request: "valid"},
		{name: "job, store down", hub: down, route: "GET /api/v1/jobs/{tenant}/{job}", token: ctView, path: "/api/v1/jobs/alpha/roster-import", code: 503, request: "valid"},

		{name: "runs, first page", route: "GET /api/v1/jobs/{tenant}/{job}/runs", token: ctView, path: "/api/v1/jobs/alpha/roster-import/runs?limit=1", code: 200, request: "valid",
			check: func(t *testing.T, b []byte) {
				var page struct{ Next string }
				json.Unmarshal(b, &page)
				if page.Next == "" {
					t.Errorf("a first page of 1 of 2 runs has no next: %s", b)
				}
			}},
		{name: "runs, bad limit", route: "GET /api/v1/jobs/{tenant}/{job}/runs", token: ctView, path: "/api/v1/jobs/alpha/roster-import/runs?limit=0", code: 400, request: "invalid"},
		{name: "runs, bad cursor", route: "GET /api/v1/jobs/{tenant}/{job}/runs", token: ctView, path: "/api/v1/jobs/alpha/roster-import/runs?before=nonsense", code: 400, request: "valid"},
		{name: "runs without token", route: "GET /api/v1/jobs/{tenant}/{job}/runs", path: "/api/v1/jobs/alpha/roster-import/runs", code: 401},
		{name: "runs of another tenant", route: "GET /api/v1/jobs/{tenant}/{job}/runs", token: ctAlpha, path: "/api/v1/jobs/bravo/roster-import/runs", code: 403, request: "valid"},
		{name: "runs, store down", hub: down, route: "GET /api/v1/jobs/{tenant}/{job}/runs", token: ctView, path: "/api/v1/jobs/alpha/roster-import/runs", code: 503, request: "valid"},

		{name: "nights", route: "GET /api/v1/jobs/{tenant}/{job}/nights", token: ctView, path: "/api/v1/jobs/alpha/roster-import/nights?limit=3", code: 200, request: "valid",
			check: wantIn(`"timezone":"America/New_York"`, `"kind":"running"`, `"kind":"late"`, `"on_time_rate":0`)},
		{name: "nights, bad limit", route: "GET /api/v1/jobs/{tenant}/{job}/nights", token: ctView, path: "/api/v1/jobs/alpha/roster-import/nights?limit=91", code: 400, request: "invalid"},
		{name: "nights without token", route: "GET /api/v1/jobs/{tenant}/{job}/nights", path: "/api/v1/jobs/alpha/roster-import/nights", code: 401},
		{name: "nights of another tenant", route: "GET /api/v1/jobs/{tenant}/{job}/nights", token: ctAlpha, path: "/api/v1/jobs/bravo/roster-import/nights", code: 403, request: "valid"},
		{name: "nights of an unconfigured job", route: "GET /api/v1/jobs/{tenant}/{job}/nights", token: ctView, path: "/api/v1/jobs/alpha/pushed-only/nights", code: 404, request: "valid"},
		{name: "nights, store down", hub: down, route: "GET /api/v1/jobs/{tenant}/{job}/nights", token: ctView, path: "/api/v1/jobs/alpha/roster-import/nights", code: 503, request: "valid"},

		{name: "district", route: "GET /api/v1/district/{tenant}", token: ctAlpha, path: "/api/v1/district/alpha", code: 200, request: "valid",
			check: wantIn(`"name":"first file seen","meaning"`, `"at":"2026-08-31T23:10:00Z"`, `"kind":"error","count":2`, `"job":"never-seen"`)},
		{name: "district without token", route: "GET /api/v1/district/{tenant}", path: "/api/v1/district/alpha", code: 401},
		{name: "another district", route: "GET /api/v1/district/{tenant}", token: ctAlpha, path: "/api/v1/district/bravo", code: 403, request: "valid"},
		{name: "no such district", route: "GET /api/v1/district/{tenant}", token: ctView, path: "/api/v1/district/nobody", code: 404, request: "valid"},
		{name: "district, store down", hub: down, route: "GET /api/v1/district/{tenant}", token: ctView, path: "/api/v1/district/alpha", code: 503, request: "valid"},

		{name: "events", route: "GET /api/v1/events", token: ctAlpha, path: "/api/v1/events", code: 200, request: "valid", check: wantIn("event: hello")},
		{name: "events without token", route: "GET /api/v1/events", path: "/api/v1/events", code: 401},

		{name: "run", route: "GET /api/v1/runs/{run_id}", token: ctView, path: "/api/v1/runs/" + runID, code: 200, request: "valid",
			check: wantIn(`"quality":{"errors":2,"warnings":5}`, `"files_arrived_at"`)},
		{name: "run of a shared id, named", route: "GET /api/v1/runs/{run_id}", token: ctView, path: "/api/v1/runs/shared-id?tenant=bravo&job=roster-import", code: 200, request: "valid"},
		{name: "run of a shared id", route: "GET /api/v1/runs/{run_id}", token: ctView, path: "/api/v1/runs/shared-id", code: 409, request: "valid"},
		{name: "run without token", route: "GET /api/v1/runs/{run_id}", path: "/api/v1/runs/shared-id", code: 401},
		{name: "no such run", route: "GET /api/v1/runs/{run_id}", token: ctView, path: "/api/v1/runs/nope", code: 404, request: "valid"},
		{name: "run, store down", hub: down, route: "GET /api/v1/runs/{run_id}", token: ctView, path: "/api/v1/runs/nope", code: 503, request: "valid"},

		{name: "sources", route: "GET /api/v1/sources", token: ctView, path: "/api/v1/sources", code: 200, request: "valid", check: wantIn(`"failing_since"`, `"tenants":["alpha"]`)},
		{name: "sources of a scoped token", route: "GET /api/v1/sources", token: ctAlpha, path: "/api/v1/sources", code: 200, request: "valid"},
		{name: "sources without token", route: "GET /api/v1/sources", path: "/api/v1/sources", code: 401},
		{name: "dependencies", route: "GET /api/v1/dependencies", token: ctView, path: "/api/v1/dependencies", code: 200, request: "valid",
			check: wantIn(`"subject":"redis:main"`, `"memory_used_ratio":0.93`, `"up":false`)},
		{name: "dependencies of a scoped token", route: "GET /api/v1/dependencies", token: ctAlpha, path: "/api/v1/dependencies", code: 200, request: "valid",
			check: func(t *testing.T, body []byte) {
				wantIn(`"subject":"sftp:sftp.alpha.example:22"`)(t, body)
				wantOut(`redis:main`)(t, body) // shared infrastructure: tokens of every tenant only
			}},
		{name: "dependencies without token", route: "GET /api/v1/dependencies", path: "/api/v1/dependencies", code: 401},
		{name: "dependencies, store down", hub: down, route: "GET /api/v1/dependencies", token: ctView, path: "/api/v1/dependencies", code: 503, request: "valid"},
		{name: "sources, store down", hub: down, route: "GET /api/v1/sources", token: ctView, path: "/api/v1/sources", code: 503, request: "valid"},

		{name: "alerts", route: "GET /api/v1/alerts", token: ctView, path: "/api/v1/alerts", code: 200, request: "valid",
			check: wantIn(`"state":"pending"`, `"DiskFull"`, `"scope":"shared"`, `"affected":[{"tenant":"alpha"`, `"grouped_under":"stalled||s1s1s1s1s1s1s1s1"`)},
		{name: "resolved alerts", route: "GET /api/v1/alerts", token: ctView, path: "/api/v1/alerts?state=resolved&severity=critical&limit=5", code: 200, request: "valid",
			check: wantIn(`"resolved_at"`)},
		{name: "no alerts", route: "GET /api/v1/alerts", token: ctView, path: "/api/v1/alerts?rule=nope", code: 200, request: "valid",
			check: wantIn(`{"alerts":[]}`)},
		{name: "alerts, bad state", route: "GET /api/v1/alerts", token: ctView, path: "/api/v1/alerts?state=everything", code: 400, request: "invalid"},
		{name: "alerts, bad limit", route: "GET /api/v1/alerts", token: ctView, path: "/api/v1/alerts?limit=5000", code: 400, request: "invalid"},
		{name: "alerts without token", route: "GET /api/v1/alerts", path: "/api/v1/alerts", code: 401},
		{name: "alerts of another tenant", route: "GET /api/v1/alerts", token: ctAlpha, path: "/api/v1/alerts?tenant=bravo", code: 403, request: "valid"},
		{name: "alerts, store down", hub: down, route: "GET /api/v1/alerts", token: ctView, path: "/api/v1/alerts", code: 503, request: "valid"},

		{name: "ack", route: "POST /api/v1/alerts/{id}/ack", token: ctOp, method: "POST", path: "/api/v1/alerts/a1a1a1a1a1a1a1a1/ack", code: 200, request: "valid",
			check: wantIn(`"acked_by":"etlhub:op"`)},
		{name: "ack without token", route: "POST /api/v1/alerts/{id}/ack", method: "POST", path: "/api/v1/alerts/a1a1a1a1a1a1a1a1/ack", code: 401},
		{name: "ack by a viewer", route: "POST /api/v1/alerts/{id}/ack", token: ctView, method: "POST", path: "/api/v1/alerts/a1a1a1a1a1a1a1a1/ack", code: 403, request: "valid"},
		{name: "ack of another tenant's alert", route: "POST /api/v1/alerts/{id}/ack", token: ctAlpha, method: "POST", path: "/api/v1/alerts/b1b1b1b1b1b1b1b1/ack", code: 404, request: "valid"},
		{name: "ack of a resolved alert", route: "POST /api/v1/alerts/{id}/ack", token: ctOp, method: "POST", path: "/api/v1/alerts/a4a4a4a4a4a4a4a4/ack", code: 409, request: "valid"},
		{name: "ack, store down", hub: down, route: "POST /api/v1/alerts/{id}/ack", token: ctOp, method: "POST", path: "/api/v1/alerts/a1a1a1a1a1a1a1a1/ack", code: 503, request: "valid"},

		{name: "silences", route: "GET /api/v1/silences", token: ctView, path: "/api/v1/silences", code: 200, request: "valid", check: wantIn(`"is_regex":true`)},
		{name: "silences without token", route: "GET /api/v1/silences", path: "/api/v1/silences", code: 401},
		{name: "silences, store down", hub: down, route: "GET /api/v1/silences", token: ctView, path: "/api/v1/silences", code: 503, request: "valid"},

		{name: "create silence", route: "POST /api/v1/silences", token: ctAlpha, method: "POST", path: "/api/v1/silences", body: silenceBody, code: 201, request: "valid",
			check: func(t *testing.T, b []byte) {
				var sl rules.Silence
				json.Unmarshal(b, &sl)
				createdSilence = sl.ID
				if sl.ID == "" || sl.CreatedBy != "alpha" {
					t.Errorf("created %s", b)
				}
			}},
		{name: "create the document's example silence", route: "POST /api/v1/silences", token: ctOp, method: "POST", path: "/api/v1/silences",
			body: example("SilenceRequest"), code: 201, request: "valid"},
		{name: "create silence, unknown field", route: "POST /api/v1/silences", token: ctOp, method: "POST", path: "/api/v1/silences",
			body: `{"matchers":[{"name":"tenant","value":"alpha"}],"ends_at":"2026-09-01T08:00:00Z","reason":"x"}`, code: 400, request: "invalid"},
		{name: "create silence without token", route: "POST /api/v1/silences", method: "POST", path: "/api/v1/silences", body: silenceBody, code: 401},
		{name: "create silence by a viewer", route: "POST /api/v1/silences", token: ctView, method: "POST", path: "/api/v1/silences", body: silenceBody, code: 403, request: "valid"},
		{name: "create silence for another tenant", route: "POST /api/v1/silences", token: ctAlpha, method: "POST", path: "/api/v1/silences",
			body: `{"matchers":[{"name":"tenant","value":"bravo"}],"ends_at":"2026-09-01T08:00:00Z"}`, code: 403, request: "valid"},
		{name: "create silence, list full", hub: tight, route: "POST /api/v1/silences", token: ctOp, method: "POST", path: "/api/v1/silences", body: silenceBody, code: 409, request: "valid"},
		{name: "create silence, body too large", route: "POST /api/v1/silences", token: ctOp, method: "POST", path: "/api/v1/silences", body: big(70 << 10), code: 413},
		{name: "create silence without matchers", route: "POST /api/v1/silences", token: ctOp, method: "POST", path: "/api/v1/silences",
			body: `{"matchers":[],"ends_at":"2026-09-01T08:00:00Z"}`, code: 422, request: "invalid"},
		{name: "create silence, unknown label", route: "POST /api/v1/silences", token: ctOp, method: "POST", path: "/api/v1/silences",
			body: `{"matchers":[{"name":"colour","value":"red"}],"ends_at":"2026-09-01T08:00:00Z"}`, code: 422, request: "invalid"},
		{name: "create silence, too long a comment", route: "POST /api/v1/silences", token: ctOp, method: "POST", path: "/api/v1/silences",
			body: `{"matchers":[{"name":"tenant","value":"alpha"}],"ends_at":"2026-09-01T08:00:00Z","comment":"` + strings.Repeat("c", 1025) + `"}`, code: 422, request: "invalid"},
		{name: "create silence, store down", hub: down, route: "POST /api/v1/silences", token: ctOp, method: "POST", path: "/api/v1/silences", body: silenceBody, code: 503, request: "valid"},

		{name: "expire silence without token", route: "DELETE /api/v1/silences/{id}", method: "DELETE", path: "/api/v1/silences/alphasilence", code: 401},
		{name: "expire silence by a viewer", route: "DELETE /api/v1/silences/{id}", token: ctView, method: "DELETE", path: "/api/v1/silences/alphasilence", code: 403, request: "valid"},
		{name: "expire another tenant's silence", route: "DELETE /api/v1/silences/{id}", token: ctAlpha, method: "DELETE", path: "/api/v1/silences/bravosilence", code: 403, request: "valid"},
		{name: "expire silence", route: "DELETE /api/v1/silences/{id}", token: ctAlpha, method: "DELETE", path: "/api/v1/silences/alphasilence", code: 204, request: "valid"},
		{name: "expire an expired silence", route: "DELETE /api/v1/silences/{id}", token: ctOp, method: "DELETE", path: "/api/v1/silences/alphasilence", code: 404, request: "valid"},
		{name: "expire silence, store down", hub: down, route: "DELETE /api/v1/silences/{id}", token: ctOp, method: "DELETE", path: "/api/v1/silences/x", code: 503, request: "valid"},

		{name: "cluster", route: "GET /api/v1/cluster", token: ctAdmin, path: "/api/v1/cluster", code: 200, request: "valid",
			check: wantIn(`"role":"leader"`, `"token":3`)},
		{name: "reload", route: "POST /api/v1/reload", method: "POST", token: ctAdmin, path: "/api/v1/reload", code: 200, request: "valid", check: wantIn(`"status":"reloaded"`)},
		{name: "reload refused", hub: refusing, route: "POST /api/v1/reload", method: "POST", token: ctAdmin, path: "/api/v1/reload", code: 422, request: "valid",
			check: wantIn(`"key":"jobs[0].stale_after"`)},
		{name: "reload, no file", hub: noPoster, route: "POST /api/v1/reload", method: "POST", token: ctAdmin, path: "/api/v1/reload", code: 404, request: "valid"},
		{name: "reload failed", hub: failing, route: "POST /api/v1/reload", method: "POST", token: ctAdmin, path: "/api/v1/reload", code: 500, request: "valid"},
		{name: "reload for an operator", route: "POST /api/v1/reload", method: "POST", token: ctOp, path: "/api/v1/reload", code: 403, request: "valid"},
		{name: "reload without token", route: "POST /api/v1/reload", method: "POST", path: "/api/v1/reload", code: 401},
		{name: "cluster for an operator", route: "GET /api/v1/cluster", token: ctOp, path: "/api/v1/cluster", code: 403, request: "valid"},
		{name: "cluster without token", route: "GET /api/v1/cluster", path: "/api/v1/cluster", code: 401},
		{name: "cluster, store down", hub: down, route: "GET /api/v1/cluster", token: ctAdmin, path: "/api/v1/cluster", code: 503, request: "valid"},
		{name: "notifications", route: "GET /api/v1/notifications", token: ctView, path: "/api/v1/notifications", code: 200, request: "valid", check: wantIn(`"group_key":"alpha"`)},
		{name: "pending notifications", route: "GET /api/v1/notifications", token: ctAlpha, path: "/api/v1/notifications?status=pending", code: 200, request: "valid"},
		{name: "notifications, bad status", route: "GET /api/v1/notifications", token: ctView, path: "/api/v1/notifications?status=lost", code: 400, request: "invalid"},
		{name: "notifications without token", route: "GET /api/v1/notifications", path: "/api/v1/notifications", code: 401},
		{name: "notifications, store down", hub: down, route: "GET /api/v1/notifications", token: ctView, path: "/api/v1/notifications", code: 503, request: "valid"},

		{name: "webhook", route: "POST /api/v1/webhooks/pagerduty", method: "POST", path: "/api/v1/webhooks/pagerduty", body: webhook, header: sig("v1=good"), code: 204, request: "valid"},
		{name: "webhook, duplicate", route: "POST /api/v1/webhooks/pagerduty", method: "POST", path: "/api/v1/webhooks/pagerduty", body: webhook, header: sig("v1=duplicate"), code: 200, request: "valid"},
		{name: "webhook, not an event", route: "POST /api/v1/webhooks/pagerduty", method: "POST", path: "/api/v1/webhooks/pagerduty", body: `{"messages":[]}`, header: sig("v1=not-an-event"), code: 400, request: "valid"},
		{name: "webhook, stale", route: "POST /api/v1/webhooks/pagerduty", method: "POST", path: "/api/v1/webhooks/pagerduty", body: webhook, header: sig("v1=stale"), code: 400, request: "valid"},
		{name: "webhook, bad signature", route: "POST /api/v1/webhooks/pagerduty", method: "POST", path: "/api/v1/webhooks/pagerduty", body: webhook, header: sig("v1=forged"), code: 401, request: "valid"},
		{name: "webhook, too large", route: "POST /api/v1/webhooks/pagerduty", method: "POST", path: "/api/v1/webhooks/pagerduty", body: big(1 << 20), header: sig("v1=good"), code: 413},
		{name: "webhook, store down", route: "POST /api/v1/webhooks/pagerduty", method: "POST", path: "/api/v1/webhooks/pagerduty", body: webhook, header: sig("v1=store-down"), code: 503, request: "valid"},

		{name: "push one", route: "POST /api/v1/observations", token: ctOp, method: "POST", path: "/api/v1/observations",
			body: obs("alpha", "roster-import", "alpha/roster-import/2026-09-01#1", `,"rows_done":60,"rows_total":200,"started_at":"2026-09-01T04:00:00Z","finished_at":null,"quality":{"errors":1}`),
			code: 200, request: "valid", check: wantIn(`"accepted":1`)},
		{name: "push the document's example", route: "POST /api/v1/observations", token: ctOp, method: "POST", path: "/api/v1/observations",
			body: example("ObservationIn"), code: 200, request: "valid", check: wantIn(`"accepted":1`)},
		{name: "push an array, some bad", route: "POST /api/v1/observations", token: ctOp, method: "POST", path: "/api/v1/observations",
			body: "[" + obs("alpha", "roster-import", "r2", "") + "," + obs("alpha", "roster-import", "r3", `,"rows_done":-1`) + "]",
			code: 200, request: "invalid", check: wantIn(`"rejected":1`, `"index":1`)},
		{name: "push JSON lines", route: "POST /api/v1/observations", token: ctOp, method: "POST", path: "/api/v1/observations", ctype: "application/x-ndjson",
			body: obs("alpha", "roster-import", "r4", "") + "\n" + obs("alpha", "roster-import", "r5", "") + "\n", code: 200, request: "valid", check: wantIn(`"accepted":2`)},
		{name: "push JSON lines, one bad", route: "POST /api/v1/observations", token: ctOp, method: "POST", path: "/api/v1/observations", ctype: "application/x-ndjson",
			body: obs("alpha", "roster-import", "r4", "") + "\n" + obs("", "roster-import", "r5", "") + "\n", code: 200, request: "invalid", check: wantIn(`"line":2`, `"rejected":1`)},
		{name: "push, all rejected", route: "POST /api/v1/observations", token: ctOp, method: "POST", path: "/api/v1/observations",
			body: obs("alpha", "roster-import", "r6", `,"state":"exploded"`), code: 422, request: "invalid", check: wantIn(`"accepted":0`, `is not one of waiting`)},
		{name: "push, too long a run id", route: "POST /api/v1/observations", token: ctOp, method: "POST", path: "/api/v1/observations",
			body: obs("alpha", "roster-import", strings.Repeat("r", model.MaxRunIDLen+1), ""), code: 422, request: "invalid"},
		{name: "push, unknown field", route: "POST /api/v1/observations", token: ctOp, method: "POST", path: "/api/v1/observations",
			body: obs("alpha", "roster-import", "r7", `,"colour":"red"`), code: 422, request: "invalid"},
		{name: "push, not JSON", route: "POST /api/v1/observations", token: ctOp, method: "POST", path: "/api/v1/observations", body: "hello", code: 400, request: "invalid"},
		{name: "push, empty", route: "POST /api/v1/observations", token: ctOp, method: "POST", path: "/api/v1/observations", body: "  \n", code: 400},
		{name: "push without token", route: "POST /api/v1/observations", method: "POST", path: "/api/v1/observations", body: obs("alpha", "roster-import", "r8", ""), code: 401},
		{name: "push by a viewer", route: "POST /api/v1/observations", token: ctView, method: "POST", path: "/api/v1/observations", body: obs("alpha", "roster-import", "r8", ""), code: 403, request: "valid"},
		{name: "push, body too large", hub: tight, route: "POST /api/v1/observations", token: ctOp, method: "POST", path: "/api/v1/observations",
			body: obs("alpha", "roster-import", "r9", `,"error":"`+strings.Repeat("e", 5000)+`"`), code: 413},
		{name: "push, too many items", hub: tight, route: "POST /api/v1/observations", token: ctOp, method: "POST", path: "/api/v1/observations",
			body: "[" + obs("alpha", "j", "1", "") + "," + obs("alpha", "j", "2", "") + "," + obs("alpha", "j", "3", "") + "]", code: 413},
		{name: "push, store down", hub: down, route: "POST /api/v1/observations", token: ctOp, method: "POST", path: "/api/v1/observations", body: obs("alpha", "roster-import", "r8", ""), code: 503, request: "valid"},

		{name: "am status", route: "GET /api/v2/status", token: ctView, path: "/api/v2/status", code: 200, request: "valid"},
		{name: "am status without token", route: "GET /api/v2/status", path: "/api/v2/status", code: 401},
		{name: "am alerts", route: "GET /api/v2/alerts", token: ctView, path: "/api/v2/alerts", code: 200, request: "valid",
			check: wantIn(`"state":"suppressed"`, `"alertname":"DiskFull"`, `"generatorURL":"http://prometheus.example/graph"`)},
		{name: "am alerts, filtered", route: "GET /api/v2/alerts", token: ctAlpha, path: "/api/v2/alerts?filter=alertname%3D~%22Disk.*%22&filter=tenant%3Dalpha&silenced=false&inhibited=false&active=true", code: 200, request: "valid"},
		{name: "am alerts, bad filter", route: "GET /api/v2/alerts", token: ctView, path: "/api/v2/alerts?filter=%7Bnot+a+matcher", code: 400, request: "valid"},
		{name: "am alerts, bad flag", route: "GET /api/v2/alerts", token: ctView, path: "/api/v2/alerts?active=maybe", code: 400, request: "invalid"},
		{name: "am alerts without token", route: "GET /api/v2/alerts", path: "/api/v2/alerts", code: 401},
		{name: "am alerts, store down", hub: down, route: "GET /api/v2/alerts", token: ctView, path: "/api/v2/alerts", code: 503, request: "valid"},

		{name: "am post alerts", route: "POST /api/v2/alerts", token: ctAlpha, method: "POST", path: "/api/v2/alerts", body: amAlertBody, code: 200, request: "valid",
			check: func(t *testing.T, _ []byte) {
				main.actions.mu.Lock()
				defer main.actions.mu.Unlock()
				if len(main.actions.posted) != 1 || main.actions.posted[0].Labels["alertname"] != "RedisMemoryHigh" {
					t.Errorf("posted %+v", main.actions.posted)
				}
			}},
		{name: "am post the document's example alert", route: "POST /api/v2/alerts", token: ctOp, method: "POST", path: "/api/v2/alerts",
			body: "[" + example("PostableAlert") + "]", code: 200, request: "valid"},
		{name: "am post alerts without alertname", route: "POST /api/v2/alerts", token: ctOp, method: "POST", path: "/api/v2/alerts",
			body: `[{"labels":{"severity":"warning"}}]`, code: 400, request: "invalid"},
		{name: "am post alerts, bad label value", route: "POST /api/v2/alerts", token: ctOp, method: "POST", path: "/api/v2/alerts",
			body: `[{"labels":{"alertname":"X","note":"` + strings.Repeat("n", 1025) + `"}}]`, code: 400, request: "invalid"},
		{name: "am post alerts without token", route: "POST /api/v2/alerts", method: "POST", path: "/api/v2/alerts", body: amAlertBody, code: 401},
		{name: "am post alerts by a viewer", route: "POST /api/v2/alerts", token: ctView, method: "POST", path: "/api/v2/alerts", body: amAlertBody, code: 403, request: "valid"},
		{name: "am post alerts for another tenant", route: "POST /api/v2/alerts", token: ctAlpha, method: "POST", path: "/api/v2/alerts",
			body: `[{"labels":{"alertname":"X","tenant":"bravo"}}]`, code: 403, request: "valid"},
		{name: "am post alerts, too large", hub: tight, route: "POST /api/v2/alerts", token: ctOp, method: "POST", path: "/api/v2/alerts",
			body: `[{"labels":{"alertname":"X"},"annotations":{"a":"` + strings.Repeat("a", 5000) + `"}}]`, code: 413},
		{name: "am post alerts to a hub without alerts", hub: noPoster, route: "POST /api/v2/alerts", token: ctOp, method: "POST", path: "/api/v2/alerts", body: amAlertBody, code: 501, request: "valid"},

		{name: "am silences", route: "GET /api/v2/silences", token: ctView, path: "/api/v2/silences", code: 200, request: "valid", check: wantIn(`"state":"pending"`)},
		{name: "am silences without token", route: "GET /api/v2/silences", path: "/api/v2/silences", code: 401},
		{name: "am silences, store down", hub: down, route: "GET /api/v2/silences", token: ctView, path: "/api/v2/silences", code: 503, request: "valid"},
		{name: "am post silence", route: "POST /api/v2/silences", token: ctAlpha, method: "POST", path: "/api/v2/silences", body: amSilenceBody, code: 200, request: "valid", check: wantIn(`"silenceID"`)},
		{name: "am post the document's example silence", route: "POST /api/v2/silences", token: ctOp, method: "POST", path: "/api/v2/silences",
			body: example("PostableSilence"), code: 200, request: "valid"},
		{name: "am post silence, negative matcher", route: "POST /api/v2/silences", token: ctOp, method: "POST", path: "/api/v2/silences",
			body: `{"matchers":[{"name":"alertname","value":"DiskFull"},{"name":"tenant","value":"alpha","isRegex":false,"isEqual":false}],"endsAt":"2026-09-01T07:00:00Z"}`,
			code: 200, request: "valid", check: wantIn(`"silenceID"`)},
		{name: "am post silence, only matchers that pass an empty label", route: "POST /api/v2/silences", token: ctOp, method: "POST", path: "/api/v2/silences",
			body: `{"matchers":[{"name":"tenant","value":"alpha","isRegex":false,"isEqual":false}],"endsAt":"2026-09-01T07:00:00Z"}`, code: 400, request: "valid"},
		{name: "am post silence, update", route: "POST /api/v2/silences", token: ctOp, method: "POST", path: "/api/v2/silences",
			body: `{"id":"abc","matchers":[{"name":"tenant","value":"alpha"}],"endsAt":"2026-09-01T07:00:00Z"}`, code: 400, request: "invalid"},
		{name: "am post silence without token", route: "POST /api/v2/silences", method: "POST", path: "/api/v2/silences", body: amSilenceBody, code: 401},
		{name: "am post silence by a viewer", route: "POST /api/v2/silences", token: ctView, method: "POST", path: "/api/v2/silences", body: amSilenceBody, code: 403, request: "valid"},
		{name: "am post silence for another tenant", route: "POST /api/v2/silences", token: ctAlpha, method: "POST", path: "/api/v2/silences",
			body: `{"matchers":[{"name":"tenant","value":"bravo"}],"endsAt":"2026-09-01T07:00:00Z"}`, code: 403, request: "valid"},
		{name: "am post silence, list full", hub: tight, route: "POST /api/v2/silences", token: ctOp, method: "POST", path: "/api/v2/silences", body: amSilenceBody, code: 409, request: "valid"},
		{name: "am post silence, too large", route: "POST /api/v2/silences", token: ctOp, method: "POST", path: "/api/v2/silences", body: big(70 << 10), code: 413},
		{name: "am post silence, store down", hub: down, route: "POST /api/v2/silences", token: ctOp, method: "POST", path: "/api/v2/silences", body: amSilenceBody, code: 503, request: "valid"},
		{name: "am silences filtered", route: "GET /api/v2/silences", token: ctView, path: "/api/v2/silences?filter=tenant%3Dbravo", code: 200, request: "valid", check: wantIn(`"bravosilence"`)},
		{name: "am silences filtered to none", route: "GET /api/v2/silences", token: ctView, path: "/api/v2/silences?filter=tenant%3Dnobody", code: 200, request: "valid", check: wantIn(`[]`)},
		{name: "am silences, bad filter", route: "GET /api/v2/silences", token: ctView, path: "/api/v2/silences?filter=%7E%7E", code: 400, request: "valid"},
		{name: "am expire silence without token", route: "DELETE /api/v2/silence/{id}", method: "DELETE", path: "/api/v2/silence/bravosilence", code: 401},
		{name: "am expire silence by a viewer", route: "DELETE /api/v2/silence/{id}", token: ctView, method: "DELETE", path: "/api/v2/silence/bravosilence", code: 403, request: "valid"},
		{name: "am expire another tenant's silence", route: "DELETE /api/v2/silence/{id}", token: ctAlpha, method: "DELETE", path: "/api/v2/silence/bravosilence", code: 403, request: "valid"},
		{name: "am expire an unknown silence", route: "DELETE /api/v2/silence/{id}", token: ctOp, method: "DELETE", path: "/api/v2/silence/nosuch", code: 404, request: "valid"},
		{name: "am expire silence, store down", hub: down, route: "DELETE /api/v2/silence/{id}", token: ctOp, method: "DELETE", path: "/api/v2/silence/x", code: 503, request: "valid"},
		{name: "am expire silence", route: "DELETE /api/v2/silence/{id}", token: ctOp, method: "DELETE", path: "/api/v2/silence/bravosilence", code: 200, request: "valid"},
		{name: "am receivers", route: "GET /api/v2/receivers", token: ctView, path: "/api/v2/receivers", code: 200, request: "valid"},
		{name: "am receivers without token", route: "GET /api/v2/receivers", path: "/api/v2/receivers", code: 401},

		{name: "ping start", route: "POST /ping/{key}/{action}", method: "POST", path: "/ping/" + ctPing + "/start?rid=ct-1", code: 200, request: "valid",
			check: wantIn(`"run_id":"ct-1"`, `"state":"running"`)},
		{name: "ping heartbeat", route: "POST /ping/{key}/{action}", method: "POST", path: "/ping/" + ctPing + "/heartbeat?rid=ct-1&updated_at=2026-09-01T05:59:00Z", code: 200, request: "valid"},
		{name: "ping heartbeat from the future", route: "POST /ping/{key}/{action}", method: "POST", path: "/ping/" + ctPing + "/heartbeat?rid=ct-1&updated_at=2026-09-01T07:00:00Z", code: 422, request: "valid"},
		{name: "ping exit code", route: "POST /ping/{key}/{action}", method: "POST", path: "/ping/" + ctPing + "/3?rid=ct-1", body: "boom\n", ctype: "text/plain", code: 200, request: "valid",
			check: wantIn(`"state":"failed"`)},
		{name: "ping start of a finished run", route: "POST /ping/{key}/{action}", method: "POST", path: "/ping/" + ctPing + "/start?rid=ct-1", code: 409, request: "valid"},
		{name: "ping, bad rid", route: "POST /ping/{key}/{action}", method: "POST", path: "/ping/" + ctPing + "/start?rid=a%20b", code: 400, request: "invalid"},
		{name: "ping, no such ping", route: "POST /ping/{key}/{action}", method: "POST", path: "/ping/" + ctPing + "/nope", code: 404, request: "invalid"},
		{name: "ping, unknown key", route: "POST /ping/{key}/{action}", method: "POST", path: "/ping/unknown-key-0123456789/start", code: 404, request: "valid"},
		{name: "ping, too large", hub: tight, route: "POST /ping/{key}/{action}", method: "POST", path: "/ping/" + ctPing + "/fail", body: strings.Repeat("x", 5000), ctype: "text/plain", code: 413},
		{name: "ping, store down", hub: down, route: "POST /ping/{key}/{action}", method: "POST", path: "/ping/" + ctPing + "/start", code: 503, request: "valid"},
		{name: "ping success", route: "POST /ping/{key}", method: "POST", path: "/ping/" + ctPing, body: "all good", ctype: "text/plain", code: 200, request: "valid",
			check: wantIn(`"state":"succeeded"`)},
		{name: "ping success, bad duration", route: "POST /ping/{key}", method: "POST", path: "/ping/" + ctPing + "?duration=long", code: 400, request: "invalid"},
		{name: "ping success, unknown key", route: "POST /ping/{key}", method: "POST", path: "/ping/unknown-key-0123456789", code: 404, request: "valid"},
		{name: "ping success, too large", hub: tight, route: "POST /ping/{key}", method: "POST", path: "/ping/" + ctPing, body: strings.Repeat("x", 5000), ctype: "text/plain", code: 413},
		{name: "ping success, store down", hub: down, route: "POST /ping/{key}", method: "POST", path: "/ping/" + ctPing, code: 503, request: "valid"},
		{name: "ping success by GET", route: "GET /ping/{key}", path: "/ping/" + ctPing + "?duration=12", code: 200, request: "valid"},
		{name: "ping success by GET, empty rid", route: "GET /ping/{key}", path: "/ping/" + ctPing + "?rid=", code: 400, request: "invalid"},
		{name: "ping success by GET, unknown key", route: "GET /ping/{key}", path: "/ping/unknown-key-0123456789", code: 404, request: "valid"},
		{name: "ping success by GET, store down", hub: down, route: "GET /ping/{key}", path: "/ping/" + ctPing, code: 503, request: "valid"},
		{name: "ping start by GET", route: "GET /ping/{key}/{action}", path: "/ping/" + ctPing + "/start", code: 200, request: "valid"},
		{name: "ping by GET, updated_at on a start", route: "GET /ping/{key}/{action}", path: "/ping/" + ctPing + "/start?updated_at=2026-09-01T05:59:00Z", code: 400},
		{name: "ping by GET, unknown key", route: "GET /ping/{key}/{action}", path: "/ping/unknown-key-0123456789/fail", code: 404, request: "valid"},
		{name: "ping heartbeat by GET of a finished run", route: "GET /ping/{key}/{action}", path: "/ping/" + ctPing + "/heartbeat?rid=ct-1", code: 409, request: "valid"},
		{name: "ping by GET, store down", hub: down, route: "GET /ping/{key}/{action}", path: "/ping/" + ctPing + "/1", code: 503, request: "valid"},
		// capped: alpha's ping takes the one unconfigured job; bravo's are refused, then limited.
		{name: "ping, the one unconfigured job", hub: capped, route: "POST /ping/{key}/{action}", method: "POST", path: "/ping/" + ctPing + "/start", code: 200, request: "valid"},
		{name: "ping success by GET, a job too many", hub: capped, route: "GET /ping/{key}", path: pingB(1), code: 422, request: "valid"},
		{name: "ping success by GET, too often", hub: capped, route: "GET /ping/{key}", path: pingB(1), code: 429, request: "valid"},
		{name: "ping success, a job too many", hub: capped, route: "POST /ping/{key}", method: "POST", path: pingB(2), code: 422, request: "valid"},
		{name: "ping success, too often", hub: capped, route: "POST /ping/{key}", method: "POST", path: pingB(2), code: 429, request: "valid"},
		{name: "ping by GET, a job too many", hub: capped, route: "GET /ping/{key}/{action}", path: pingB(3) + "/start", code: 422, request: "valid"},
		{name: "ping by GET, too often", hub: capped, route: "GET /ping/{key}/{action}", path: pingB(3) + "/start", code: 429, request: "valid"},
		{name: "ping, a job too many", hub: capped, route: "POST /ping/{key}/{action}", method: "POST", path: pingB(4) + "/0", code: 422, request: "valid"},
		{name: "ping, too often", hub: capped, route: "POST /ping/{key}/{action}", method: "POST", path: pingB(4) + "/0", code: 429, request: "valid"},
	}

	seen := map[string]map[int]bool{} // route → status codes answered
	opts := &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true, AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.hub
			if h == nil {
				h = main
			}
			method := tc.method
			if method == "" {
				method = "GET"
			}
			if want := method + " "; !strings.HasPrefix(tc.route, want) {
				t.Fatalf("route %q is not a %s", tc.route, method)
			}
			template := strings.TrimPrefix(tc.route, method+" ")
			item := doc.Paths.Value(template)
			if item == nil || item.GetOperation(method) == nil {
				t.Fatalf("%s is not in the document", tc.route)
			}
			resp := h.do(t, tc.token, method, tc.path, tc.body, tc.ctype, tc.header)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if seen[tc.route] == nil {
				seen[tc.route] = map[int]bool{}
			}
			seen[tc.route][resp.StatusCode] = true
			if resp.StatusCode != tc.code {
				t.Fatalf("%s %s: %d, want %d: %.300s", method, tc.path, resp.StatusCode, tc.code, body)
			}

			// The request, as the document sees it.
			req, _ := http.NewRequest(method, h.srv.URL+tc.path, bytes.NewReader([]byte(tc.body)))
			if tc.body != "" {
				ct := tc.ctype
				if ct == "" {
					ct = "application/json"
				}
				req.Header.Set("Content-Type", ct)
			}
			for k, v := range tc.header {
				req.Header[k] = v
			}
			route := &routers.Route{Spec: doc, Path: template, PathItem: item, Method: method, Operation: item.GetOperation(method)}
			in := &openapi3filter.RequestValidationInput{Request: req, PathParams: pathParams(template, req.URL.Path), Route: route, Options: opts}
			if tc.ctype == "application/x-ndjson" {
				// kin-openapi reads no JSON lines: each line against the line's schema.
				in.Options = &openapi3filter.Options{ExcludeRequestBody: true, AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}
			}
			reqErr := openapi3filter.ValidateRequest(ctx, in)
			if tc.ctype == "application/x-ndjson" && reqErr == nil {
				lineSchema := item.GetOperation(method).RequestBody.Value.Content.Get(tc.ctype).Schema.Value
				for _, line := range strings.Split(tc.body, "\n") {
					if strings.TrimSpace(line) == "" {
						continue
					}
					var v any
					if reqErr = json.Unmarshal([]byte(line), &v); reqErr == nil {
						reqErr = lineSchema.VisitJSON(v)
					}
					if reqErr != nil {
						break
					}
				}
				in.Options = opts
			}
			switch tc.request {
			case "valid":
				if reqErr != nil {
					t.Errorf("the hub takes this request, the document refuses it: %v", reqErr)
				}
			case "invalid":
				if reqErr == nil {
					t.Errorf("the hub refuses this request (%d), the document's schema takes it", resp.StatusCode)
				}
			}

			// The answer, as the document says it must be.
			rin := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header, Options: opts}
			rin.SetBodyBytes(body)
			if err := openapi3filter.ValidateResponse(ctx, rin); err != nil {
				t.Errorf("the answer does not match the document: %v\n%.600s", err, body)
			}
			if mt := item.GetOperation(method).Responses.Status(resp.StatusCode); mt != nil && mt.Value != nil {
				if media := mt.Value.Content.Get("application/json"); media != nil && media.Schema != nil && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
					var v any
					if err := json.Unmarshal(body, &v); err != nil {
						t.Fatalf("not JSON: %v", err)
					}
					if extra := undeclared("$", v, media.Schema.Value); len(extra) > 0 {
						t.Errorf("the answer has fields the document does not declare: %v", extra)
					}
				}
			}
			if tc.check != nil {
				tc.check(t, body)
			}
		})
	}
	if createdSilence == "" {
		t.Errorf("no silence was created")
	}

	// Every status code the document declares is one the hub answers.
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			route := method + " " + path
			for code := range op.Responses.Map() {
				var n int
				fmt.Sscan(code, &n)
				if !seen[route][n] {
					t.Errorf("%s declares %s, which no request here got", route, code)
				}
			}
		}
	}
}

// wantOut fails when the answer holds any of parts.
func wantOut(parts ...string) func(t *testing.T, body []byte) {
	return func(t *testing.T, body []byte) {
		for _, p := range parts {
			if bytes.Contains(body, []byte(p)) {
				t.Errorf("the answer holds %s: %.600s", p, body)
			}
		}
	}
}

func wantIn(parts ...string) func(t *testing.T, body []byte) {
	return func(t *testing.T, body []byte) {
		for _, p := range parts {
			if !bytes.Contains(body, []byte(p)) {
				t.Errorf("the answer lacks %s: %.600s", p, body)
			}
		}
	}
}

// pathParams reads a template's parameters from a path; a parameter in the
// last segment takes the rest of the path (run ids hold slashes).
func pathParams(template, path string) map[string]string {
	ts, ps := strings.Split(template, "/"), strings.Split(path, "/")
	out := map[string]string{}
	for i, seg := range ts {
		if i >= len(ps) {
			break
		}
		if strings.HasPrefix(seg, "{") {
			v := ps[i]
			if i == len(ts)-1 {
				v = strings.Join(ps[i:], "/")
			}
			out[strings.Trim(seg, "{}")] = v
		}
	}
	return out
}

// undeclared lists the fields of v that schema s does not declare (for
// this test, an object schema with properties is closed); a free-form
// object (no properties) or additionalProperties: true takes anything.
func undeclared(at string, v any, s *openapi3.Schema) []string {
	if s == nil {
		return nil
	}
	var out []string
	switch x := v.(type) {
	case map[string]any:
		props, free, additional := map[string]*openapi3.Schema{}, true, (*openapi3.Schema)(nil)
		var collect func(s *openapi3.Schema)
		collect = func(s *openapi3.Schema) {
			for k, p := range s.Properties {
				props[k] = p.Value
				free = false
			}
			if s.AdditionalProperties.Schema != nil {
				additional, free = s.AdditionalProperties.Schema.Value, false
			}
			if s.AdditionalProperties.Has != nil {
				free = *s.AdditionalProperties.Has
			}
			for _, sub := range s.AllOf {
				collect(sub.Value)
			}
		}
		collect(s)
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			switch {
			case props[k] != nil:
				out = append(out, undeclared(at+"."+k, x[k], props[k])...)
			case additional != nil:
				out = append(out, undeclared(at+"."+k, x[k], additional)...)
			case !free:
				out = append(out, at+"."+k)
			}
		}
	case []any:
		items := s.Items
		if items == nil && len(s.AllOf) > 0 {
			items = s.AllOf[0].Value.Items
		}
		if items != nil {
			for i, e := range x {
				out = append(out, undeclared(fmt.Sprintf("%s[%d]", at, i), e, items.Value)...)
			}
		}
	}
	return slices.Compact(out)
}
