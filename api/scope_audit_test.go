package api

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/model"
	"github.com/etlhub/etlhub/rules"
	"github.com/etlhub/etlhub/store"
	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
)

// The scope audit: a token scoped to tenant alpha, on a hub that holds the
// data of alpha and bravo. Every string of bravo's below carries "bravo".
const (
	alphaTok    = "alpha-operator-0123456789"
	auditAdmin  = "audit-admin-0123456789"
	bravoRun    = "bravo-run-7"
	bravoError  = "bravo-error-text"
	bravoSumm   = "bravo-summary-text"
	bravoSource = "bravo-sis"
	bravoNote   = "bravo-silence-comment"
	bravoWhy    = "bravo-why-text"
	bravoAlert  = "b0b0b0b0b0b0b0b0"
	bravoExtFP  = "bravo-external-label"
	alphaAlert  = "a1a1a1a1a1a1a1a1"
	alphaPing   = "alpha-ping-key-0123456789"
)

// bravoMarkers and bravo's name may never appear in an answer to alpha's
// token, unless the request named them.
var bravoMarkers = []string{bravoRun, bravoError, bravoSumm, bravoSource, bravoNote, bravoWhy, bravoAlert, bravoExtFP}

// auditActions records what the API asked of the rules.
type auditActions struct {
	mu     sync.Mutex
	acked  []string
	posted []rules.External
}

func (a *auditActions) Ack(_ context.Context, id, who string) (model.Alert, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.acked = append(a.acked, id)
	return model.Alert{ID: id, AckedBy: who}, nil
}

func (a *auditActions) PagerDutyWebhook(context.Context, []byte, string) error {
	return ErrBadSignature
}

func (a *auditActions) PostExternal(xs []rules.External) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.posted = append(a.posted, xs...)
}

type auditViews struct{}

func (auditViews) JobViews() map[model.JobKey]JobView {
	return map[model.JobKey]JobView{
		{Tenant: "alpha", Job: "roster-import"}: {Risk: "ok", Why: "alpha-why-text"},
		{Tenant: "bravo", Job: "roster-import"}: {Risk: "at-risk", Why: bravoWhy},
	}
}

// scopeCase is one request of the audit. A read (write false) must answer
// without bravo's data; a write aimed at bravo must be refused (not 2xx)
// and change nothing, which after checks. want, when set, must appear, so
// that an empty answer does not pass for a scoped one.
type scopeCase struct {
	method, path, body string
	write              bool
	code               int // when not 0, the status expected
	want               string
	after              func(t *testing.T)
}

func TestEveryRouteIsScopedToTheTokensTenants(t *testing.T) {
	now := time.Date(2026, 9, 1, 6, 0, 0, 0, time.UTC)
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{Driver: "sqlite", Path: filepath.Join(t.TempDir(), "scope.db")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	auth := AuthConfig{Tokens: []TokenConfig{
		{Name: "admin", Token: config.Secret(auditAdmin), Role: "admin"},
		{Name: "alpha-op", Token: config.Secret(alphaTok), Role: "operator", Tenants: []string{"alpha"}},
	}, PingKeys: []PingKeyConfig{{Name: "alpha-ping", Key: config.Secret(alphaPing), Tenant: "alpha", Job: "roster-import"}}}
	var p config.Problems
	auth.Validate(&p, "auth")
	actions := &auditActions{}
	reg := prometheus.NewRegistry()
	jobs := []model.JobSpec{
		{Tenant: "alpha", Job: "roster-import", Source: "alpha-sis", Timezone: "America/New_York", Schedule: "0 1 * * *", Deadline: "06:00", StaleAfter: model.Duration(20 * time.Minute)},
		{Tenant: "bravo", Job: "roster-import", Source: bravoSource, Timezone: "America/Chicago", Schedule: "0 1 * * *", Deadline: "06:00", StaleAfter: model.Duration(20 * time.Minute)},
	}
	for i := range jobs {
		if err := jobs[i].Compile(); err != nil {
			t.Fatal(err)
		}
	}
	handler := New(Options{Store: st, Ingest: storeIngest{st}, Jobs: jobs, Auth: auth, Views: auditViews{}, Actions: actions,
		Gatherer: reg, Registerer: reg, Log: slog.New(slog.DiscardHandler), Now: func() time.Time { return now },
		EventStreamFor: 200 * time.Millisecond})
	engine, ok := handler.(*gin.Engine)
	if !ok {
		t.Fatalf("New returns %T, not the gin engine", handler)
	}
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	h := &hardened{srv: srv, st: st}

	// Both tenants' data, as pushes, collectors, the rules and people leave it.
	h.push(t, auditAdmin, `{"at":"2026-09-01T05:00:00Z","tenant":"alpha","job":"roster-import","run_id":"alpha-run-1","state":"running","rows_done":1,"rows_total":10,"error":"alpha-error-text"}`)
	h.push(t, auditAdmin, `{"at":"2026-09-01T05:00:00Z","tenant":"bravo","job":"roster-import","run_id":"`+bravoRun+`","state":"failed","rows_done":1,"rows_total":10,"error":"`+bravoError+`"}`)
	for _, src := range []string{"alpha-sis", bravoSource, "shared-sis"} {
		if err := st.SaveSource(ctx, model.SourceHealth{Name: src, Kind: "http_json", Healthy: true}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.NoteSourceTenants(ctx, map[string][]string{"alpha-sis": {"alpha"}, bravoSource: {"bravo"}, "shared-sis": {"alpha", "bravo"}}); err != nil {
		t.Fatal(err)
	}
	if err := st.SaveMeasurements(ctx, []model.Measurement{
		{At: now, Source: "alpha-sftp", Subject: "sftp:alpha-inbox:22", Kind: model.KindSFTP, Tenant: "alpha", Up: true},
		{At: now, Source: bravoSource, Subject: "sftp:" + bravoSource + ":22", Kind: model.KindSFTP, Tenant: "bravo", Error: bravoError},
		{At: now, Source: "redis-main", Subject: "redis:main", Kind: model.KindRedis, Up: true},
	}); err != nil {
		t.Fatal(err)
	}
	alert := func(id, tenant, summary string) model.Alert {
		return model.Alert{ID: id, Fingerprint: "run_failed|" + tenant, Rule: "run_failed", Severity: "critical", Tenant: tenant,
			Job: "roster-import", RunID: tenant + "-run", Summary: summary, State: model.AlertFiring, PendingSince: now.Add(-time.Hour),
			FiredAt: now.Add(-time.Hour), LastSeen: now}
	}
	ext := alert("e2e2e2e2e2e2e2e2", "bravo", bravoSumm)
	ext.Fingerprint = rules.ExternalFingerprint(map[string]string{"alertname": "DiskFull", "tenant": "bravo", "note": bravoExtFP})
	ext.Details = map[string]any{"labels": map[string]string{"alertname": "DiskFull", "tenant": "bravo", "note": bravoExtFP},
		"annotations": map[string]string{"summary": bravoSumm}}
	changed := []model.Alert{alert(alphaAlert, "alpha", "alpha-summary-text"), alert(bravoAlert, "bravo", bravoSumm), ext}
	var trans []model.Transition
	var notify []store.Notification
	for _, a := range changed {
		tr := model.Transition{At: now.Add(-time.Hour), Status: "firing", Alert: a}
		trans = append(trans, tr)
		notify = append(notify, store.Notification{Receiver: "pager", Trans: tr})
	}
	if err := st.SaveAlerts(ctx, changed, trans, notify); err != nil {
		t.Fatal(err)
	}
	silence := func(id, tenant, comment string) {
		if err := st.SaveSilence(ctx, rules.Silence{ID: id, Matchers: []rules.Matcher{{Name: "tenant", Value: tenant}},
			StartsAt: now.Add(-time.Hour), EndsAt: now.Add(time.Hour), CreatedBy: "admin", Comment: comment, CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	silence("alpha-silence", "alpha", "alpha-silence-comment")
	silence("bravosilence1", "bravo", bravoNote)

	bravoSilenceActive := func(t *testing.T) {
		list, err := st.Silences(ctx, now)
		if err != nil {
			t.Fatal(err)
		}
		for _, sl := range list {
			if sl.ID == "bravosilence1" {
				return
			}
		}
		t.Errorf("bravo's silence was expired by alpha's token")
	}
	silenceCount := func(want int) func(t *testing.T) {
		return func(t *testing.T) {
			list, err := st.Silences(ctx, now)
			if err != nil {
				t.Fatal(err)
			}
			if len(list) != want {
				t.Errorf("%d silences after the refused write; want %d (%+v)", len(list), want, list)
			}
		}
	}
	noBravoAck := func(t *testing.T) {
		actions.mu.Lock()
		defer actions.mu.Unlock()
		for _, id := range actions.acked {
			if id == bravoAlert {
				t.Errorf("bravo's alert was acknowledged with alpha's token")
			}
		}
	}
	nothingPosted := func(t *testing.T) {
		actions.mu.Lock()
		defer actions.mu.Unlock()
		if len(actions.posted) != 0 {
			t.Errorf("alerts posted with alpha's token for another tenant: %+v", actions.posted)
		}
	}
	noNewBravoRun := func(t *testing.T) {
		runs, _, err := st.Runs(ctx, model.JobKey{Tenant: "bravo", Job: "roster-import"}, store.Page{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) != 1 || runs[0].RunID != bravoRun || runs[0].State != model.StateFailed {
			t.Errorf("bravo's runs changed by alpha's push: %+v", runs)
		}
	}
	silenceBody := func(matchers string) string {
		return `{"matchers":` + matchers + `,"ends_at":"2026-09-01T08:00:00Z","comment":"alpha tries"}`
	}
	amSilenceBody := func(matchers string) string {
		return `{"matchers":` + matchers + `,"startsAt":"2026-09-01T06:00:00Z","endsAt":"2026-09-01T08:00:00Z","createdBy":"x","comment":"alpha tries"}`
	}

	cases := map[string][]scopeCase{
		"GET /healthz":             {{method: "GET", path: "/healthz", code: 200}},
		"GET /readyz":              {{method: "GET", path: "/readyz", code: 200}},
		"GET /api/v1/openapi.json": {{method: "GET", path: "/api/v1/openapi.json", code: 200}},
		"GET /":                    {{method: "GET", path: "/", code: 200}},
		"GET /ui/*file":            {{method: "GET", path: "/ui/app.js", code: 200}},
		"GET /metrics":             {{method: "GET", path: "/metrics", code: 403}},
		"GET /api/v1/status": {
			{method: "GET", path: "/api/v1/status", code: 200, want: "alpha-run-1"},
			{method: "GET", path: "/api/v1/status?state=failed", code: 200},
			{method: "GET", path: "/api/v1/status?tenant=bravo", code: 403},
		},
		"GET /api/v1/jobs/:tenant/:job": {
			{method: "GET", path: "/api/v1/jobs/alpha/roster-import", code: 200, want: "alpha-why-text"},
			{method: "GET", path: "/api/v1/jobs/bravo/roster-import", code: 403},
		},
		"GET /api/v1/jobs/:tenant/:job/runs": {
			{method: "GET", path: "/api/v1/jobs/alpha/roster-import/runs", code: 200, want: "alpha-run-1"},
			{method: "GET", path: "/api/v1/jobs/bravo/roster-import/runs", code: 403},
		},
		"GET /api/v1/jobs/:tenant/:job/nights": {
			{method: "GET", path: "/api/v1/jobs/alpha/roster-import/nights", code: 200, want: "America/New_York"},
			{method: "GET", path: "/api/v1/jobs/bravo/roster-import/nights", code: 403},
		},
		"GET /api/v1/district/:tenant": {
			{method: "GET", path: "/api/v1/district/alpha", code: 200, want: "alpha-run-1"},
			{method: "GET", path: "/api/v1/district/bravo", code: 403},
		},
		// The stream ends when the request does; pushes of bravo's are not
		// announced to alpha (TestEventsAnnounceOnlyTheTokensTenants).
		"GET /api/v1/events": {{method: "GET", path: "/api/v1/events", code: 200, want: "event: hello"}},
		"GET /api/v1/runs/*run_id": {
			{method: "GET", path: "/api/v1/runs/alpha-run-1", code: 200, want: "alpha-error-text"},
			{method: "GET", path: "/api/v1/runs/" + bravoRun, code: 404},
			{method: "GET", path: "/api/v1/runs/" + bravoRun + "?tenant=bravo&job=roster-import", code: 404},
		},
		"GET /api/v1/sources": {{method: "GET", path: "/api/v1/sources", code: 200, want: "shared-sis"}},
		// Alpha's SFTP endpoint; not bravo's, nor the shared Redis (shared
		// infrastructure is for tokens of every tenant, as its alerts are).
		"GET /api/v1/dependencies": {{method: "GET", path: "/api/v1/dependencies", code: 200, want: "sftp:alpha-inbox:22"}},
		"GET /api/v1/alerts": {
			{method: "GET", path: "/api/v1/alerts", code: 200, want: alphaAlert},
			{method: "GET", path: "/api/v1/alerts?state=pending,firing,resolved&rule=run_failed", code: 200, want: alphaAlert},
			{method: "GET", path: "/api/v1/alerts?tenant=bravo", code: 403},
		},
		"GET /api/v1/silences": {{method: "GET", path: "/api/v1/silences", code: 200, want: "alpha-silence-comment"}},
		"POST /api/v1/silences": {
			{method: "POST", path: "/api/v1/silences", write: true, body: silenceBody(`[{"name":"tenant","value":"bravo"}]`), code: 403, after: silenceCount(2)},
			{method: "POST", path: "/api/v1/silences", write: true, body: silenceBody(`[{"name":"tenant","value":"alpha.*","is_regex":true}]`), code: 403, after: silenceCount(2)},
			{method: "POST", path: "/api/v1/silences", write: true, body: silenceBody(`[{"name":"rule","value":"run_failed"}]`), code: 403, after: silenceCount(2)},
		},
		"DELETE /api/v1/silences/:id": {
			{method: "DELETE", path: "/api/v1/silences/bravosilence1", write: true, code: 403, after: bravoSilenceActive},
		},
		"DELETE /api/v2/silence/:id": {
			{method: "DELETE", path: "/api/v2/silence/bravosilence1", write: true, code: 403, after: bravoSilenceActive},
		},
		"GET /api/v1/cluster":       {{method: "GET", path: "/api/v1/cluster", code: 403}},
		"POST /api/v1/reload":       {{method: "POST", path: "/api/v1/reload", write: true, code: 403}},
		"GET /api/v1/notifications": {{method: "GET", path: "/api/v1/notifications", code: 200, want: alphaAlert}},
		"POST /api/v1/alerts/:id/ack": {
			{method: "POST", path: "/api/v1/alerts/" + bravoAlert + "/ack", write: true, code: 404, after: noBravoAck},
		},
		// Signed by PagerDuty, no token: our fake refuses every signature.
		"POST /api/v1/webhooks/pagerduty": {{method: "POST", path: "/api/v1/webhooks/pagerduty", write: true, body: `{}`, code: 401}},
		"POST /api/v1/observations": {
			{method: "POST", path: "/api/v1/observations", write: true, code: 422, after: noNewBravoRun,
				body: `{"at":"2026-09-01T05:30:00Z","tenant":"bravo","job":"roster-import","run_id":"` + bravoRun + `","state":"succeeded","rows_done":10,"rows_total":10}`},
		},
		// Pings: the key names the tenant and job; nothing in the request
		// (a run id, a tenant, alpha's token) reaches bravo's.
		"POST /ping/:key/:action": {
			{method: "POST", path: "/ping/" + alphaPing + "/fail?rid=" + bravoRun + "&tenant=bravo", body: "alpha output", code: 200, want: `"state":"failed"`, after: noNewBravoRun},
			{method: "POST", path: "/ping/no-such-key-0123456789/start?rid=" + bravoRun, write: true, code: 404, after: noNewBravoRun},
		},
		"GET /ping/:key/:action": {
			{method: "GET", path: "/ping/" + alphaPing + "/start?rid=alpha-pinged&tenant=bravo", code: 200, want: "alpha-pinged", after: noNewBravoRun},
		},
		"POST /ping/:key": {
			{method: "POST", path: "/ping/" + alphaPing + "?tenant=bravo&job=roster-import", code: 200, want: `"state":"succeeded"`, after: noNewBravoRun},
		},
		"GET /ping/:key": {
			{method: "GET", path: "/ping/" + alphaPing + "?rid=" + bravoRun, code: 200, after: noNewBravoRun},
		},
		"GET /api/v2/status":    {{method: "GET", path: "/api/v2/status", code: 200}},
		"GET /api/v2/receivers": {{method: "GET", path: "/api/v2/receivers", code: 200}},
		"GET /api/v2/alerts": {
			{method: "GET", path: "/api/v2/alerts", code: 200, want: alphaAlert},
			{method: "GET", path: "/api/v2/alerts?filter=" + url.QueryEscape(`tenant="bravo"`), code: 200},
			{method: "GET", path: "/api/v2/alerts?filter=" + url.QueryEscape(`alertname="DiskFull"`), code: 200},
		},
		"POST /api/v2/alerts": {
			{method: "POST", path: "/api/v2/alerts", write: true, code: 403, after: nothingPosted,
				body: `[{"labels":{"alertname":"DiskFull","tenant":"bravo"},"annotations":{"summary":"alpha tries"}}]`},
			{method: "POST", path: "/api/v2/alerts", write: true, code: 403, after: nothingPosted,
				body: `[{"labels":{"alertname":"DiskFull"},"annotations":{"summary":"no tenant: every tenant's"}}]`},
		},
		"GET /api/v2/silences": {
			{method: "GET", path: "/api/v2/silences", code: 200, want: "alpha-silence-comment"},
			{method: "GET", path: "/api/v2/silences?filter=tenant%3Dbravo", code: 200},
		},
		"POST /api/v2/silences": {
			{method: "POST", path: "/api/v2/silences", write: true, body: amSilenceBody(`[{"name":"tenant","value":"bravo","isRegex":false}]`), code: 403, after: silenceCount(2)},
			{method: "POST", path: "/api/v2/silences", write: true, body: amSilenceBody(`[{"name":"tenant","value":"alpha|bravo","isRegex":true}]`), code: 403, after: silenceCount(2)},
			{method: "POST", path: "/api/v2/silences", write: true, body: amSilenceBody(`[{"name":"alertname","value":"DiskFull","isRegex":false}]`), code: 403, after: silenceCount(2)},
		},
	}

	seen := map[string]bool{}
	for _, r := range engine.Routes() {
		key := r.Method + " " + r.Path
		seen[key] = true
		tcs, ok := cases[key]
		if !ok {
			t.Errorf("route %s has no case in the scope audit: add one (what may a tenant-scoped token see or change there?)", key)
			continue
		}
		for _, tc := range tcs {
			t.Run(tc.method+" "+tc.path, func(t *testing.T) {
				code, _, raw := h.call(t, alphaTok, tc.method, tc.path, tc.body)
				if tc.code != 0 && code != tc.code {
					t.Errorf("status %d; want %d: %s", code, tc.code, raw)
				}
				if tc.write && code >= 200 && code < 300 {
					t.Errorf("a write aimed at bravo was accepted (%d): %s", code, raw)
				}
				// What the request itself named may be echoed (in "no run %q").
				asked := tc.path + tc.body
				for _, m := range append(bravoMarkers[:len(bravoMarkers):len(bravoMarkers)], "bravo") {
					if !strings.Contains(asked, m) && strings.Contains(raw, m) {
						t.Errorf("the answer shows bravo's %q: %s", m, raw)
					}
				}
				if tc.want != "" && !strings.Contains(raw, tc.want) {
					t.Errorf("the answer lacks alpha's %q (the case would pass on an empty answer): %s", tc.want, raw)
				}
				if tc.after != nil {
					tc.after(t)
				}
			})
		}
	}
	for key := range cases {
		if !seen[key] {
			t.Errorf("the audit has a case for %s, which is no longer a route", key)
		}
	}
	// The admin sees bravo's: the markers are really there to be leaked.
	for _, path := range []string{"/api/v1/status", "/api/v1/alerts", "/api/v1/silences", "/api/v1/sources", "/api/v2/alerts"} {
		code, _, raw := h.call(t, auditAdmin, http.MethodGet, path, "")
		if code != 200 || !strings.Contains(raw, "bravo") {
			t.Errorf("admin %s: %d, no bravo data: %s", path, code, raw)
		}
	}
}
