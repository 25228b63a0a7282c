package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/model"
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

// heapPeak runs fn while sampling the heap in use, and returns the peak
// above what was in use before.
func heapPeak(fn func()) uint64 {
	// A low GC target makes the heap follow what is kept, not garbage.
	defer debug.SetGCPercent(debug.SetGCPercent(20))
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	base := m.HeapInuse
	peak := base
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapInuse)
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	fn()
	close(stop)
	<-done
	return peak - base
}

func emptyObjects(size int, array bool) []byte {
	var b bytes.Buffer
	if array {
		b.WriteByte('[')
	}
	for b.Len() < size-4 {
		if array {
			if b.Len() > 1 {
				b.WriteByte(',')
			}
			b.WriteString("{}")
		} else {
			b.WriteString("{}\n")
		}
	}
	if array {
		b.WriteByte(']')
	}
	return b.Bytes()
}

// TestPushMemoryIsBounded: a 10 MiB body of "{}" items costs the hub a
// small multiple of the body, not twenty times it, alone and three at once;
// past the item cap it is refused with 413 (issue 13, item 7).
func TestPushMemoryIsBounded(t *testing.T) {
	h := newHardened(t, func(o *Options) { o.MaxBodyBytes = 11 << 20 })
	for _, array := range []bool{true, false} {
		body := emptyObjects(10<<20, array)
		measurePush(t, h, body, 413, true, fmt.Sprintf("10 MiB of {} (array %v)", array))
	}
}

// TestPushDecodesAsAStream: with the item cap lifted, every item of a body
// is judged, and memory still does not grow with the items rejected.
func TestPushDecodesAsAStream(t *testing.T) {
	h := newHardened(t, func(o *Options) { o.MaxBodyBytes, o.MaxItems = 11<<20, 10_000_000 })
	for _, array := range []bool{true, false} {
		// Larger than smallBody, so JSON lines are streamed too.
		body := emptyObjects(2<<20, array)
		measurePush(t, h, body, 422, false, fmt.Sprintf("2 MiB of {} (array %v, no item cap)", array))
	}
}

// measurePush sends body alone and three times at once, checks the answer
// and that the heap grew by less than five times the bodies in flight.
func measurePush(t *testing.T, h *hardened, body []byte, want int, three bool, what string) {
	t.Helper()
	send := func() {
		req, _ := http.NewRequest("POST", h.srv.URL+"/api/v1/observations", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+dadeTok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return
		}
		defer resp.Body.Close()
		var res struct {
			PushResult
			Error apiError `json:"error"`
		}
		json.NewDecoder(resp.Body).Decode(&res)
		switch {
		case resp.StatusCode != want:
			t.Errorf("%s: answered %d, want %d", what, resp.StatusCode, want)
		case want == 413 && (res.Error.Code != "too_many_items" || !strings.Contains(res.Error.Message, "ingest.max_items")):
			t.Errorf("%s: 413 without the reason: %+v", what, res.Error)
		case want == 422 && (res.Received < len(body)/4 || res.Accepted != 0 || len(res.Errors) != maxItemErrors):
			t.Errorf("%s: received %d, accepted %d, %d errors listed", what, res.Received, res.Accepted, len(res.Errors))
		}
	}
	one := heapPeak(send)
	t.Logf("%s: heap peak +%.1f MiB alone", what, float64(one)/(1<<20))
	if one > 5*uint64(len(body)) {
		t.Errorf("%s: one push took %d MiB of heap, more than 5x the body", what, one>>20)
	}
	if !three {
		return
	}
	all := heapPeak(func() {
		var wg sync.WaitGroup
		for range 3 {
			wg.Add(1)
			go func() { defer wg.Done(); send() }()
		}
		wg.Wait()
	})
	t.Logf("%s: heap peak +%.1f MiB three at once", what, float64(all)/(1<<20))
	if all > 5*3*uint64(len(body)) {
		t.Errorf("%s: three pushes at once took %d MiB of heap, more than 5x the bodies", what, all>>20)
	}
}

// TestPushItemCap: past the cap on items a push is refused whole with 413
// and the reason; nothing of it is stored.
func TestPushItemCap(t *testing.T) {
	h := newHardened(t, func(o *Options) { o.MaxItems = 3 })
	item := `{"at":"2026-09-01T05:00:00Z","tenant":"dade","job":"roster-import","run_id":"r%d","state":"running"}`
	var lines, arr []string
	for i := range 4 {
		lines = append(lines, fmt.Sprintf(item, i))
		arr = append(arr, fmt.Sprintf(item, i))
	}
	for _, body := range []string{strings.Join(lines, "\n"), "[" + strings.Join(arr, ",") + "]"} {
		code, res, raw := h.call(t, dadeTok, "POST", "/api/v1/observations", body)
		if code != 413 || errCode(res) != "too_many_items" || !strings.Contains(raw, "3") {
			t.Fatalf("4 items past a cap of 3: %d %s", code, raw)
		}
	}
	if n, _ := h.st.CountObservations(context.Background()); n != 0 {
		t.Fatalf("%d observations of refused pushes were stored", n)
	}
	code, res, raw := h.call(t, dadeTok, "POST", "/api/v1/observations", strings.Join(lines[:3], "\n"))
	if code != 200 || res["accepted"] != 3.0 {
		t.Fatalf("3 items at a cap of 3: %d %s", code, raw)
	}
	// A JSON-lines body keeps judging line by line: a broken line is one
	// rejected item with its line number.
	code, res, raw = h.call(t, dadeTok, "POST", "/api/v1/observations", "\n"+lines[0]+"\n{broken\n"+strings.Replace(lines[1], "r1", "r9", 1))
	errs, _ := res["errors"].([]any)
	if code != 200 || res["accepted"] != 1.0 || len(errs) != 1 || errs[0].(map[string]any)["line"] != 3.0 {
		t.Fatalf("a broken line among good ones: %d %s", code, raw)
	}
}

// TestScopedTokensSeeOnlyTheirTenants: silences, sources (their last errors
// included) and metrics do not leak across tenants (issue 13, item 2).
func TestScopedTokensSeeOnlyTheirTenants(t *testing.T) {
	h := newHardened(t, func(o *Options) {
		o.Jobs = []model.JobSpec{{Tenant: "dade", Job: "roster-import", Source: "dade-api"}}
	})
	ctx := context.Background()
	for _, src := range []string{"dade-api", "broward-api", "shared-importer"} {
		hl := model.SourceHealth{Name: src, Kind: "httpjson"}
		hl.Record(time.Now(), time.Second, 0, fmt.Errorf("%s: upstream said 503 for its secret detail", src))
		if err := h.st.SaveSource(ctx, hl); err != nil {
			t.Fatal(err)
		}
	}
	// broward-api fed broward; the shared importer fed both.
	if err := h.st.NoteSourceTenants(ctx, map[string][]string{"broward-api": {"broward"}, "shared-importer": {"broward", "dade"}}); err != nil {
		t.Fatal(err)
	}
	names := func(token string) (string, []string) {
		code, res, raw := h.call(t, token, "GET", "/api/v1/sources", "")
		if code != 200 {
			t.Fatalf("sources: %d %s", code, raw)
		}
		var out []string
		for _, s := range res["sources"].([]any) {
			out = append(out, s.(map[string]any)["name"].(string))
		}
		return raw, out
	}
	raw, got := names(dadeView)
	if fmt.Sprint(got) != "[dade-api shared-importer]" || strings.Contains(raw, "broward") {
		t.Fatalf("dade's viewer sees sources %v: %s", got, raw)
	}
	if _, got := names(viewerTok); fmt.Sprint(got) != "[broward-api dade-api shared-importer]" {
		t.Fatalf("an unscoped viewer sees sources %v", got)
	}

	ends := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	for _, tc := range []struct{ token, tenant string }{{adminTok, "broward"}, {dadeTok, "dade"}} {
		code, _, raw := h.call(t, tc.token, "POST", "/api/v1/silences",
			`{"matchers":[{"name":"tenant","value":"`+tc.tenant+`"}],"ends_at":"`+ends+`","comment":"`+tc.tenant+` maintenance"}`)
		if code != 201 {
			t.Fatalf("silence for %s: %d %s", tc.tenant, code, raw)
		}
	}
	code, _, raw := h.call(t, adminTok, "POST", "/api/v1/silences",
		`{"matchers":[{"name":"rule","value":"source-down"}],"ends_at":"`+ends+`","comment":"every tenant"}`)
	if code != 201 {
		t.Fatalf("unscoped silence: %d %s", code, raw)
	}
	code, res, raw := h.call(t, dadeView, "GET", "/api/v1/silences", "")
	if code != 200 || len(res["silences"].([]any)) != 1 || strings.Contains(raw, "broward") || strings.Contains(raw, "every tenant") {
		t.Fatalf("dade's viewer lists silences: %d %s", code, raw)
	}
	if _, res, _ := h.call(t, viewerTok, "GET", "/api/v1/silences", ""); len(res["silences"].([]any)) != 3 {
		t.Fatalf("an unscoped viewer lists %v", res)
	}
	// A scoped token may not silence beyond its tenant.
	for _, m := range []string{`{"name":"rule","value":"stalled"}`, `{"name":"tenant","value":"dade|broward","is_regex":true}`,
		`{"name":"tenant","value":"broward"}`} {
		code, res, _ := h.call(t, dadeTok, "POST", "/api/v1/silences", `{"matchers":[`+m+`],"ends_at":"`+ends+`"}`)
		if code != 403 || errCode(res) != "forbidden" {
			t.Fatalf("dade silencing %s: %d %v", m, code, res)
		}
	}

	code, res, _ = h.call(t, dadeView, "GET", "/metrics", "")
	if code != 403 || !strings.Contains(fmt.Sprint(res), "every tenant") {
		t.Fatalf("/metrics for a scoped token: %d %v", code, res)
	}
	if code, _, _ := h.call(t, viewerTok, "GET", "/metrics", ""); code != 200 {
		t.Fatalf("/metrics for an unscoped viewer: %d", code)
	}
}

// TestCardinalityGuards: pushes cannot create tenant/job rows without end
// outside the configured jobs, nor can silences pile up (issue 13, item 9).
func TestCardinalityGuards(t *testing.T) {
	mod := func(o *Options) {
		o.Jobs = []model.JobSpec{{Tenant: "dade", Job: "roster-import"}}
		o.MaxUnconfiguredJobs, o.MaxSilences = 2, 2
	}
	h := newHardened(t, mod)
	obs := func(tenant, job string) string {
		return `{"at":"2026-09-01T05:00:00Z","tenant":"` + tenant + `","job":"` + job + `","run_id":"r","state":"running"}`
	}
	h.push(t, adminTok, obs("dade", "roster-import"))
	h.push(t, adminTok, obs("x", "a"))
	h.push(t, adminTok, obs("x", "b"))
	code, res, raw := h.call(t, adminTok, "POST", "/api/v1/observations", obs("x", "c")+"\n"+strings.Replace(obs("x", "a"), `"r"`, `"r2"`, 1))
	errs, _ := res["errors"].([]any)
	if code != 200 || res["accepted"] != 1.0 || len(errs) != 1 ||
		!strings.Contains(errs[0].(map[string]any)["error"].(string), "ingest.max_unconfigured_jobs") {
		t.Fatalf("a third job outside the configured ones: %d %s", code, raw)
	}
	// The configured job and the known ones still take observations; a
	// restart (a new API over the same store) knows the jobs already made.
	h2 := &hardened{st: h.st}
	h2.srv = httptest.NewServer(New(func() Options {
		o := Options{Store: h.st, Ingest: storeIngest{h.st}, Auth: AuthConfig{Tokens: []TokenConfig{{Name: "admin", Token: config.Secret(adminTok), Role: "admin"}}},
			Gatherer: prometheus.NewRegistry(), Log: slog.New(slog.DiscardHandler)}
		mod(&o)
		return o
	}()))
	defer h2.srv.Close()
	if code, _, raw := h2.call(t, adminTok, "POST", "/api/v1/observations", obs("y", "d")); code != 422 || !strings.Contains(raw, "max_unconfigured_jobs") {
		t.Fatalf("after a restart, a new unconfigured job: %d %s", code, raw)
	}
	h2.push(t, adminTok, strings.Replace(obs("x", "b"), `"r"`, `"r2"`, 1))
	h2.push(t, adminTok, strings.Replace(obs("dade", "roster-import"), `"r"`, `"r2"`, 1))

	ends := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	silence := `{"matchers":[{"name":"tenant","value":"dade"}],"ends_at":"` + ends + `"}`
	for i := range 3 {
		code, res, raw := h.call(t, dadeTok, "POST", "/api/v1/silences", silence)
		if i < 2 && code != 201 {
			t.Fatalf("silence %d: %d %s", i, code, raw)
		}
		if i == 2 && (code != 409 || errCode(res) != "too_many_silences" || !strings.Contains(raw, "silences.max_active")) {
			t.Fatalf("a third active silence past a cap of 2: %d %s", code, raw)
		}
	}
}
