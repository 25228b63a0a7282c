package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/etlhub/etlhub/internal/testsrv"
)

var binary string

// syncBuffer is a bytes.Buffer safe for the process's writes and the test's reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "etlhub-bin-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "etlhub")
	// The version reaches etlhub_build_info the way a release build sets it.
	args := []string{"build", "-ldflags=-X main.version=" + e2eVersion, "-o", binary}
	if raceEnabled {
		args = append(args, "-race")
	}
	out, err := exec.Command("go", append(args, ".")...).CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building etlhub: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	testsrv.StopAll()
	os.RemoveAll(dir)
	os.Exit(code)
}

const (
	adminTok  = "admin-token-0123456789"
	viewTok   = "viewer-token-0123456789"
	opTok     = "operator-token-0123456789"
	dadeTok   = "dade-only-token-0123456789"
	legacyKey = "legacy-api-key-abcdef"
)

// hubProc is a running `etlhub serve`.
type hubProc struct {
	t    *testing.T
	url  string
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan error
	// polkDone is when polk's night succeeded (the metrics tests).
	polkDone time.Time
}

// startHub writes a config with the given sources and jobs and runs the binary.
func startHub(t *testing.T, sources, jobs string) *hubProc {
	t.Helper()
	return startHubIn(t, t.TempDir(), sources, jobs, "")
}

// startHubIn runs a hub whose store lives in dir; extra is more config.
func startHubIn(t *testing.T, dir, sources, jobs, extra string) *hubProc {
	t.Helper()
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	cfg := fmt.Sprintf(`listen: %s
log: {level: debug, format: json}
store: {path: %s}
auth:
  tokens:
    - {name: admin, token: "${T_ADMIN}", role: admin}
    - {name: viewer, token: "${T_VIEW}", role: viewer}
    - {name: operator, token: "${T_OP}", role: operator}
    - {name: dade, token: "${T_DADE}", role: operator, tenants: [dade]}
sources:
%s
jobs:
%s
%s
`, addr, filepath.Join(dir, "hub.db"), sources, jobs, extra)
	return runHub(t, dir, addr, cfg)
}

// runHub runs `etlhub serve` on config cfg (written to dir), listening on addr.
func runHub(t *testing.T, dir, addr, cfg string) *hubProc {
	t.Helper()
	path := filepath.Join(dir, "etlhub.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	h := &hubProc{t: t, url: "http://" + addr, logs: &syncBuffer{}, done: make(chan error, 1)}
	h.cmd = exec.Command(binary, "serve", "--config", path)
	h.cmd.Env = append(os.Environ(), "T_ADMIN="+adminTok, "T_VIEW="+viewTok, "T_OP="+opTok, "T_DADE="+dadeTok, "LEGACY_KEY="+legacyKey)
	h.cmd.Stderr = h.logs
	h.cmd.Stdout = h.logs
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { h.done <- h.cmd.Wait() }()
	t.Cleanup(func() {
		h.cmd.Process.Kill()
		<-h.done
	})
	h.eventually("the hub answers /healthz", 30*time.Second, func() bool {
		code, _ := h.call("GET", "/healthz", "", nil)
		return code == 200
	})
	return h
}

func (h *hubProc) call(method, path, token string, body []byte) (int, map[string]any) {
	req, _ := http.NewRequest(method, h.url+path, bytes.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	var out map[string]any
	data, _ := io.ReadAll(resp.Body)
	json.Unmarshal(data, &out)
	return resp.StatusCode, out
}

// eventually polls cond until it holds; the hub is another process, so there
// is no signal to wait on.
func (h *hubProc) eventually(what string, d time.Duration, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		select {
		case err := <-h.done:
			h.done <- err
			h.t.Fatalf("the hub exited (%v) before %s; logs:\n%s", err, what, h.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting until %s; hub logs:\n%s", what, h.logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// metric reads one unlabelled sample from /metrics, -1 when absent.
func (h *hubProc) metric(name string) float64 {
	req, _ := http.NewRequest("GET", h.url+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+viewTok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			var f float64
			fmt.Sscanf(v, "%g", &f)
			return f
		}
	}
	return -1
}

// nowJobs specs roster-import jobs for tenants that started an hour ago and
// are due in six hours, so a test means the same at any time of day; extra
// is more of each spec (", severity: {...}").
func nowJobs(extra string, tenants ...string) string {
	start := time.Now().UTC().Add(-time.Hour)
	due := start.Add(7 * time.Hour)
	var b strings.Builder
	for _, t := range tenants {
		fmt.Fprintf(&b, "  - {tenant: %s, job: roster-import, timezone: UTC, schedule: \"%d %d * * *\", deadline: \"%s\", stale_after: 20m%s}\n",
			t, start.Minute(), start.Hour(), due.Format("15:04"), extra)
	}
	return b.String()
}

func jobsOf(body map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	list, _ := body["jobs"].([]any)
	for _, x := range list {
		j := x.(map[string]any)
		out[j["tenant"].(string)+"/"+j["job"].(string)] = j
	}
	return out
}

const jobsYAML = `  - {tenant: dade, job: roster-import, timezone: America/New_York, schedule: "15 3 * * *", deadline: "07:00", stale_after: 20m}`

// TestServeCollectsFromAnETLStatusAPI: a fake ETL status API's runs show in /api/v1/status.
func TestServeCollectsFromAnETLStatusAPI(t *testing.T) {
	var sawKey atomic.Value // the collector polls while the test reads it
	sawKey.Store("")
	etl := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawKey.Store(r.Header.Get("X-Api-Key"))
		now := time.Now().UTC()
		fmt.Fprintf(w, `{"items": [{"id": "sync-42", "org": "broward", "status": "RUNNING", "step": "loading",
		  "started": %q, "beat": %q, "done": 250, "total": 1000}]}`,
			now.Add(-30*time.Minute).Format(time.RFC3339), now.Format(time.RFC3339))
	}))
	defer etl.Close()
	sources := fmt.Sprintf(`  - name: legacy
    kind: httpjson
    url: %s
    schedule: "@every 1s"
    headers: {X-Api-Key: "${LEGACY_KEY}"}
    httpjson:
      runs_path: items
      fields: {run_id: id, tenant: org, state: status, stage: step, started_at: started, updated_at: beat, rows_done: done, rows_total: total}
      state_map: {RUNNING: running}
      defaults: {job: sis-sync}`, etl.URL)
	h := startHub(t, sources, jobsYAML)
	var row map[string]any
	h.eventually("broward's run shows in /api/v1/status", 20*time.Second, func() bool {
		_, body := h.call("GET", "/api/v1/status", viewTok, nil)
		row = jobsOf(body)["broward/sis-sync"]
		return row != nil
	})
	if row["state"] != "running" || row["stage"] != "loading" || row["progress_pct"] != 25.0 || row["run_id"] != "sync-42" {
		t.Fatalf("status row = %v", row)
	}
	if e, _ := row["elapsed_s"].(float64); e < 29*60 || e > 40*60 {
		t.Fatalf("elapsed_s = %v, want about 30 minutes", row["elapsed_s"])
	}
	if k := sawKey.Load().(string); k != legacyKey {
		t.Fatalf("the API key from the environment was not sent (got %q)", k)
	}
	// The configured job with no runs is listed too.
	_, body := h.call("GET", "/api/v1/status", viewTok, nil)
	if j := jobsOf(body)["dade/roster-import"]; j == nil || j["configured"] != true {
		t.Fatalf("configured job missing from status: %v", body)
	}
	_, body = h.call("GET", "/api/v1/sources", viewTok, nil)
	src := body["sources"].([]any)[0].(map[string]any)
	if src["name"] != "legacy" || src["healthy"] != true {
		t.Fatalf("source health = %v", src)
	}
	if strings.Contains(h.logs.String(), legacyKey) || strings.Contains(h.logs.String(), viewTok) {
		t.Fatal("a secret appears in the hub's logs")
	}
	// SIGTERM stops it gracefully.
	h.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-h.done:
		h.done <- err
		if err != nil {
			t.Fatalf("hub exited with %v after SIGTERM; logs:\n%s", err, h.logs)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("hub did not stop within 20s of SIGTERM")
	}
	if !strings.Contains(h.logs.String(), `"msg":"stopped"`) {
		t.Fatalf("no clean stop in the logs:\n%s", h.logs)
	}
}

func TestPushAndReadBack(t *testing.T) {
	h := startHub(t, "  []", jobsYAML)
	// Times of two hours ago: observations older than retention.observations
	// are pruned by the hub while the test reads them back.
	t0 := time.Now().UTC().Truncate(time.Minute).Add(-2 * time.Hour)
	at := func(m int) string { return t0.Add(time.Duration(m) * time.Minute).Format(time.RFC3339) }
	lines := strings.NewReplacer("T07:15", at(0), "T07:20", at(5), "T07:25", at(10)).Replace(`{"at":"T07:20","tenant":"dade","job":"roster-import","run_id":"dade/r/1","state":"running","stage":"loading","started_at":"T07:15","updated_at":"T07:20","rows_done":100,"rows_total":400}
{"at":"T07:25","tenant":"dade","job":"roster-import","run_id":"dade/r/1","state":"running","stage":"loading","started_at":"T07:15","updated_at":"T07:25","rows_done":300,"rows_total":400}
{"at":"T07:25","tenant":"dade","job":"roster-import","run_id":"dade/r/1","state":"exploded"}
{"at":"not a time","tenant":"dade","job":"roster-import","run_id":"dade/r/1","state":"running"}
`)
	code, body := h.call("POST", "/api/v1/observations", opTok, []byte(lines))
	if code != 200 || body["accepted"] != 2.0 || body["rejected"] != 2.0 {
		t.Fatalf("push answered %d %v", code, body)
	}
	errs := body["errors"].([]any)
	e0 := errs[0].(map[string]any)
	if e0["line"] != 3.0 || !strings.Contains(e0["error"].(string), `"state"`) {
		t.Fatalf("first item error = %v, want line 3 naming state", e0)
	}
	if e1 := errs[1].(map[string]any); e1["line"] != 4.0 || !strings.Contains(e1["error"].(string), `"at"`) {
		t.Fatalf("second item error = %v, want line 4 naming at", e1)
	}
	// The same push again stores nothing new.
	_, body = h.call("POST", "/api/v1/observations", opTok, []byte(lines))
	if body["accepted"] != 0.0 || body["duplicates"] != 2.0 {
		t.Fatalf("repeat push = %v", body)
	}
	_, body = h.call("GET", "/api/v1/jobs/dade/roster-import/runs", viewTok, nil)
	runs := body["runs"].([]any)
	if len(runs) != 1 || runs[0].(map[string]any)["rows_done"] != 300.0 {
		t.Fatalf("runs = %v", body)
	}
	_, body = h.call("GET", "/api/v1/runs/dade/r/1", viewTok, nil)
	if obs, _ := body["observations"].([]any); len(obs) != 2 {
		t.Fatalf("run detail = %v", body)
	}
	// An array works too, and a body that is not JSON gets one clear error.
	code, _ = h.call("POST", "/api/v1/observations", opTok, []byte(`[`+strings.Split(lines, "\n")[0]+`]`))
	if code != 200 {
		t.Fatalf("array push answered %d", code)
	}
	code, body = h.call("POST", "/api/v1/observations", opTok, []byte(`hello`))
	if code != 400 || body["error"].(map[string]any)["code"] != "invalid_json" {
		t.Fatalf("garbage push answered %d %v", code, body)
	}
}

func TestRolesAndTenantScopes(t *testing.T) {
	h := startHub(t, "  []", jobsYAML)
	obs := func(tenant string) []byte {
		return []byte(fmt.Sprintf(`{"at":"2026-09-01T07:20:00Z","tenant":%q,"job":"roster-import","run_id":"%s/1","state":"running"}`, tenant, tenant))
	}
	if code, _ := h.call("GET", "/api/v1/status", "", nil); code != 401 {
		t.Fatalf("no token: %d, want 401", code)
	}
	if code, _ := h.call("GET", "/api/v1/status", "wrong-token-wrong-token", nil); code != 401 {
		t.Fatalf("bad token: %d, want 401", code)
	}
	if code, body := h.call("POST", "/api/v1/observations", viewTok, obs("dade")); code != 403 {
		t.Fatalf("viewer push: %d %v, want 403", code, body)
	}
	if code, _ := h.call("POST", "/api/v1/observations", adminTok, obs("broward")); code != 200 {
		t.Fatalf("admin push: %d", code)
	}
	if code, _ := h.call("POST", "/api/v1/observations", dadeTok, obs("dade")); code != 200 {
		t.Fatalf("dade token pushing dade: %d", code)
	}
	code, body := h.call("POST", "/api/v1/observations", dadeTok, obs("broward"))
	if code != 422 || !strings.Contains(fmt.Sprint(body["errors"]), "outside this token's scope") {
		t.Fatalf("dade token pushing broward: %d %v", code, body)
	}
	_, body = h.call("GET", "/api/v1/status", dadeTok, nil)
	jobs := jobsOf(body)
	if jobs["broward/roster-import"] != nil || jobs["dade/roster-import"] == nil {
		t.Fatalf("a dade-scoped token sees %v", body)
	}
	if code, _ := h.call("GET", "/api/v1/status?tenant=broward", dadeTok, nil); code != 403 {
		t.Fatalf("dade token asking for broward: %d, want 403", code)
	}
	if code, _ := h.call("GET", "/api/v1/jobs/broward/roster-import/runs", dadeTok, nil); code != 403 {
		t.Fatalf("dade token reading broward runs: %d, want 403", code)
	}
	if code, _ := h.call("GET", "/api/v1/runs/broward/1", dadeTok, nil); code != 404 {
		t.Fatalf("dade token reading a broward run: %d, want 404", code)
	}
	if code, _ := h.call("GET", "/metrics", "", nil); code != 401 {
		t.Fatalf("/metrics without token: %d, want 401", code)
	}
	if code, _ := h.call("GET", "/readyz", "", nil); code != 200 {
		t.Fatalf("/readyz: %d", code)
	}
}

// TestBadSourcesLeaveTheHubHealthy: a source answering 5xx, garbage, a huge body
// or nothing leaves the hub serving and the source unhealthy with its reason.
func TestBadSourcesLeaveTheHubHealthy(t *testing.T) {
	hang := make(chan struct{})
	defer close(hang)
	mux := http.NewServeMux()
	mux.HandleFunc("/5xx", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "db down", 502) })
	mux.HandleFunc("/garbage", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "\x00\x01garbage{") })
	mux.HandleFunc("/huge/api/v1/runs", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"runs": [`)
		one := `{"tenant":"x","job":"y","run_id":"z","state":"running"},`
		chunk := strings.Repeat(one, (1<<20)/len(one))
		for i := 0; i < 200; i++ {
			if _, err := io.WriteString(w, chunk); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("/silent/api/v1/runs", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	})
	bad := httptest.NewServer(mux)
	defer bad.Close()
	src := func(name, kind, path string) string {
		s := fmt.Sprintf("  - name: %s\n    kind: %s\n    url: %s%s\n    schedule: \"@every 1s\"\n    timeout: 1s", name, kind, bad.URL, path)
		if kind == "httpjson" {
			s += "\n    httpjson: {runs_path: runs, fields: {run_id: id, tenant: t, job: j, state: s}}"
		}
		return s
	}
	sources := strings.Join([]string{
		src("five", "httpjson", "/5xx"), src("garbage", "httpjson", "/garbage"),
		src("huge", "importer", "/huge"), src("silent", "importer", "/silent"),
	}, "\n")
	h := startHub(t, sources, jobsYAML)
	want := map[string]string{"five": "HTTP 502", "garbage": "not JSON", "huge": "exceeds", "silent": "timeout"}
	h.eventually("every bad source is marked unhealthy", 30*time.Second, func() bool {
		_, body := h.call("GET", "/api/v1/sources", viewTok, nil)
		list, _ := body["sources"].([]any)
		ok := 0
		for _, x := range list {
			s := x.(map[string]any)
			if s["healthy"] == false && strings.Contains(s["last_error"].(string), want[s["name"].(string)]) {
				ok++
			}
		}
		return ok == len(want)
	})
	if code, _ := h.call("GET", "/healthz", "", nil); code != 200 {
		t.Fatal("hub unhealthy after bad sources")
	}
	_, body := h.call("GET", "/api/v1/status", viewTok, nil)
	if n := len(jobsOf(body)); n != 1 {
		t.Fatalf("bad sources stored runs: %v", body)
	}
	code, metrics := h.call("GET", "/metrics", viewTok, nil)
	_ = metrics
	if code != 200 {
		t.Fatalf("/metrics with a token: %d", code)
	}
}

func TestCheckConfig(t *testing.T) {
	for _, tc := range []struct {
		file string
		code int
		want []string
	}{
		{"testdata/good.yaml", 0, []string{"OK (1 sources, 1 jobs, 1 tokens)"}},
		{"testdata/bad.yaml", 1, []string{
			"testdata/bad.yaml:3: store.colour: unknown key",
		}},
		{"testdata/bad-values.yaml", 1, []string{
			"testdata/bad-values.yaml:2: listen:",
			"testdata/bad-values.yaml:6: auth.tokens[0].role: \"god\" is not viewer, operator or admin",
			"testdata/bad-values.yaml:9: sources[0].kind: \"ftp\"",
			"testdata/bad-values.yaml:13: sources[1].url:",
			"testdata/bad-values.yaml:17: jobs[0].timezone: \"Mars/Olympus\" is not an IANA time zone",
			"testdata/bad-values.yaml:22: jobs[1].deadline: \"25:00\" is not a local time HH:MM",
			"testdata/bad-values.yaml:23: jobs[2].tenant: environment variable NOT_SET_ANYWHERE is not set",
		}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run([]string{"check-config", tc.file}, &out, &errb)
			all := out.String() + errb.String()
			if code != tc.code {
				t.Fatalf("exit %d, want %d:\n%s", code, tc.code, all)
			}
			for _, w := range tc.want {
				if !strings.Contains(all, w) {
					t.Errorf("output lacks %q:\n%s", w, all)
				}
			}
		})
	}
}

// TestAlertsSilencesAndRestart: a stalled run raises an alert the API lists;
// a restart keeps it without paging again; silences need the operator role.
func TestAlertsSilencesAndRestart(t *testing.T) {
	dir := t.TempDir()
	now := time.Now().UTC()
	started := now.Add(-50 * time.Minute).Format(time.RFC3339)
	frozen := now.Add(-30 * time.Minute).Format(time.RFC3339)
	jobs := nowJobs("", "dade")
	h := startHubIn(t, dir, "  []", jobs, "rules: {tick: 1s}")
	obs := fmt.Sprintf(`{"at":%q,"tenant":"dade","job":"roster-import","run_id":"dade/1","state":"running","stage":"loading","started_at":%q,"updated_at":%q,"rows_done":10,"rows_total":100}`,
		now.Format(time.RFC3339), started, frozen)
	if code, body := h.call("POST", "/api/v1/observations", opTok, []byte(obs)); code != 200 {
		t.Fatalf("push: %d %v", code, body)
	}
	var alert map[string]any
	h.eventually("a stalled alert fires", 20*time.Second, func() bool {
		_, body := h.call("GET", "/api/v1/alerts?state=firing", viewTok, nil)
		list, _ := body["alerts"].([]any)
		for _, x := range list {
			if a := x.(map[string]any); a["rule"] == "stalled" {
				alert = a
				return true
			}
		}
		return false
	})
	if alert["severity"] != "warning" || !strings.Contains(alert["summary"].(string), "no heartbeat for 30 min") {
		t.Fatalf("stalled alert = %v", alert)
	}
	_, body := h.call("GET", "/api/v1/status", viewTok, nil)
	row := jobsOf(body)["dade/roster-import"]
	if row["active_alerts"] != 1.0 || row["risk"] == "" {
		t.Fatalf("status row lacks the alert and risk: %v", row)
	}

	// Silences: a viewer may not create one; an operator may; bad input is named.
	sil := fmt.Sprintf(`{"matchers":[{"name":"tenant","value":"dade"}],"ends_at":%q,"comment":"maintenance"}`, now.Add(time.Hour).Format(time.RFC3339))
	if code, _ := h.call("POST", "/api/v1/silences", viewTok, []byte(sil)); code != 403 {
		t.Fatalf("viewer created a silence: %d", code)
	}
	code, body := h.call("POST", "/api/v1/silences", opTok, []byte(`{"matchers":[{"name":"colour","value":"x"}],"ends_at":"2099-01-01T00:00:00Z"}`))
	if code != 422 || !strings.Contains(fmt.Sprint(body), "matchers[0].name") {
		t.Fatalf("bad silence: %d %v", code, body)
	}
	code, body = h.call("POST", "/api/v1/silences", opTok, []byte(sil))
	if code != 201 || body["created_by"] != "operator" {
		t.Fatalf("create silence: %d %v", code, body)
	}
	id := body["id"].(string)
	_, body = h.call("GET", "/api/v1/silences", viewTok, nil)
	if list, _ := body["silences"].([]any); len(list) != 1 {
		t.Fatalf("silences = %v", body)
	}
	if code, _ := h.call("DELETE", "/api/v1/silences/"+id, opTok, nil); code != 204 {
		t.Fatalf("expire silence: %d", code)
	}
	if code, _ := h.call("DELETE", "/api/v1/silences/"+id, opTok, nil); code != 404 {
		t.Fatalf("expire twice: %d, want 404", code)
	}

	// Restart on the same store: the alert is still firing and was not fired again.
	h.cmd.Process.Signal(syscall.SIGTERM)
	<-h.done
	h.done <- nil
	h2 := startHubIn(t, dir, "  []", jobs, "rules: {tick: 1s}")
	h2.eventually("the restarted hub has evaluated its rules three times", 20*time.Second, func() bool {
		return h2.metric("etlhub_rules_tick_duration_seconds_count") >= 3
	})
	_, body = h2.call("GET", "/api/v1/alerts?state=firing", viewTok, nil)
	n := 0
	for _, x := range body["alerts"].([]any) {
		if x.(map[string]any)["rule"] == "stalled" {
			n++
			if x.(map[string]any)["fired_at"] != alert["fired_at"] {
				t.Fatalf("the alert fired again after the restart: %v vs %v", x, alert)
			}
		}
	}
	if n != 1 {
		t.Fatalf("%d stalled alerts after restart, want 1: %v", n, body)
	}
	if c := strings.Count(h2.logs.String(), `"msg":"alert firing"`); c != 0 {
		t.Fatalf("the restarted hub logged %d new firings", c)
	}
}

func TestReplayWritesTransitions(t *testing.T) {
	dir := t.TempDir()
	scen := filepath.Join(dir, "scenario.json")
	os.WriteFile(scen, []byte(`{"version":1,"name":"t","start":"2026-09-01T01:00:00Z","end":"2026-09-01T06:00:00Z",
	 "jobs":[{"tenant":"dade","job":"roster-import","timezone":"UTC","schedule":"0 2 * * *","deadline":"05:00","stale_after":"20m"}]}`), 0o644)
	var lines []string
	for m := 0; m <= 60; m += 5 {
		at := time.Date(2026, 9, 1, 2, m, 0, 0, time.UTC)
		upd := at
		if m > 30 {
			upd = time.Date(2026, 9, 1, 2, 30, 0, 0, time.UTC) // frozen from 02:30
		}
		lines = append(lines, fmt.Sprintf(`{"at":%q,"source":"importer","tenant":"dade","job":"roster-import","run_id":"r1","state":"running","stage":"loading","started_at":"2026-09-01T02:00:00Z","updated_at":%q,"rows_done":%d,"rows_total":1000}`,
			at.Format(time.RFC3339), upd.Format(time.RFC3339), min(m, 30)*10))
	}
	obs := filepath.Join(dir, "obs.jsonl")
	os.WriteFile(obs, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	out := filepath.Join(dir, "alerts.jsonl")
	var so, se bytes.Buffer
	if code := run([]string{"replay", "--scenario", scen, "--observations", obs, "--out", out}, &so, &se); code != 0 {
		t.Fatalf("replay exit %d: %s", code, se.String())
	}
	data, _ := os.ReadFile(out)
	var stalled map[string]any
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var a map[string]any
		if err := json.Unmarshal([]byte(l), &a); err != nil {
			t.Fatalf("bad line %q: %v", l, err)
		}
		for _, k := range []string{"at", "tenant", "job", "severity", "status", "rule", "fingerprint", "summary"} {
			if _, ok := a[k]; !ok {
				t.Fatalf("line lacks %s: %s", k, l)
			}
		}
		if a["rule"] == "stalled" && a["status"] == "firing" {
			stalled = a
		}
	}
	if stalled == nil || stalled["at"] != "2026-09-01T02:51:00Z" {
		t.Fatalf("stalled firing = %v, want at 02:51 (heartbeat 02:30 + 20m)", stalled)
	}
	// Unsorted input is refused with the line.
	os.WriteFile(obs, []byte(lines[3]+"\n"+lines[1]+"\n"), 0o644)
	se.Reset()
	if code := run([]string{"replay", "--scenario", scen, "--observations", obs, "--out", out}, &so, &se); code != 1 || !strings.Contains(se.String(), "obs.jsonl:2: observations are not sorted") {
		t.Fatalf("unsorted input: exit %d, %s", code, se.String())
	}
}

// TestExamplesStayValid keeps the commented examples in step with the code.
func TestExamplesStayValid(t *testing.T) {
	for k, v := range map[string]string{"ETLHUB_TOKEN_IC": "ic-token-0123456789", "ETLHUB_TOKEN_PUSH": "push-token-0123456789",
		"ETLHUB_TOKEN_DADE": "dade-token-0123456789", "LEGACY_SYNC_TOKEN": "x", "PD_WEBHOOK_SECRET": "s",
		"PD_ROUTING_KEY": "0123456789abcdef0123456789abcdef", "SLACK_BOT_TOKEN": "xoxb-1-2-3", "SUMO_ACCESS_ID": "id", "SUMO_ACCESS_KEY": "key", "ETLHUB_TOKEN": "local-admin-token-change-me",
		"IMPORTER_STATUS_TOKEN": "importer-token-0123456789"} {
		t.Setenv(k, v)
	}
	for _, f := range []string{"../../examples/etlhub.yaml", "../../examples/quickstart.yaml", "../../examples/aws.yaml"} {
		var out, errb bytes.Buffer
		if code := run([]string{"check-config", f}, &out, &errb); code != 0 {
			t.Errorf("%s: exit %d: %s", f, code, errb.String())
		}
	}
}

func TestGenAndValidateRoster(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	if code := run([]string{"gen-roster", "--students", "500", "--out", dir}, &out, &errb); code != 0 {
		t.Fatalf("gen-roster: %d %s", code, errb.String())
	}
	out.Reset()
	if code := run([]string{"validate-roster", dir}, &out, &errb); code != 0 || !strings.Contains(out.String(), "0 errors") {
		t.Fatalf("a generated roster: exit %d\n%s", code, out.String())
	}
	// A misspelled header refuses the load and says where.
	users := filepath.Join(dir, "users.csv")
	data, _ := os.ReadFile(users)
	os.WriteFile(users, []byte(strings.Replace(string(data), "givenName", "GivenName", 1)), 0o644)
	out.Reset()
	csvPath := filepath.Join(t.TempDir(), "report.csv")
	code := run([]string{"validate-roster", "--csv", csvPath, dir}, &out, &errb)
	if code != 1 || !strings.Contains(out.String(), "file.header_mismatch") || !strings.Contains(out.String(), "decision: reject") {
		t.Fatalf("misspelled header: exit %d\n%s", code, out.String())
	}
	if rep, _ := os.ReadFile(csvPath); !strings.Contains(string(rep), `"file.header_mismatch","users.csv"`) {
		t.Fatalf("report CSV:\n%s", rep)
	}
}

// TestStatusBoard prints the hub's board worst first.
func TestStatusBoard(t *testing.T) {
	jobs := nowJobs("", "dade", "broward")
	h := startHubIn(t, t.TempDir(), "  []", jobs, "rules: {tick: 1s}")
	now := time.Now().UTC()
	obs := fmt.Sprintf(`{"at":%q,"tenant":"broward","job":"roster-import","run_id":"b/1","state":"running","stage":"loading","started_at":%q,"updated_at":%q,"rows_done":25,"rows_total":100}`,
		now.Format(time.RFC3339), now.Add(-time.Hour).Format(time.RFC3339), now.Add(-40*time.Minute).Format(time.RFC3339))
	h.call("POST", "/api/v1/observations", opTok, []byte(obs))
	h.eventually("broward is at risk", 20*time.Second, func() bool {
		_, body := h.call("GET", "/api/v1/status", viewTok, nil)
		return jobsOf(body)["broward/roster-import"]["risk"] == "at-risk"
	})
	t.Setenv("ETLHUB_URL", h.url)
	t.Setenv("ETLHUB_TOKEN", viewTok)
	var out, errb bytes.Buffer
	if code := run([]string{"status"}, &out, &errb); code != 0 {
		t.Fatalf("status: %d %s", code, errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "TENANT") || !strings.HasPrefix(lines[1], "broward") ||
		!strings.Contains(lines[1], "at-risk") || !strings.Contains(lines[1], "25%") || strings.Contains(out.String(), "\x1b[") {
		t.Fatalf("board:\n%s", out.String())
	}
	out.Reset()
	if code := run([]string{"status", "--tenant", "dade"}, &out, &errb); code != 0 || strings.Contains(out.String(), "broward") {
		t.Fatalf("--tenant dade:\n%s", out.String())
	}
	errb.Reset()
	if code := run([]string{"status", "--tenant", "nobody"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), `no tenant "nobody"`) {
		t.Fatalf("--tenant nobody: exit %d, %s", code, errb.String())
	}
	t.Setenv("ETLHUB_TOKEN", "")
	if code := run([]string{"status"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "ETLHUB_TOKEN") {
		t.Fatalf("without a token: %d %s", code, errb.String())
	}
}
