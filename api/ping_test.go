package api

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/model"
	"github.com/etlhub/etlhub/store"
)

const (
	dadeKey    = "dade-nightly-ping-key-0123"
	browardKey = "broward-nightly-ping-key-4567"
)

// pingHub is a hub with a ping key for dade/nightly-export and one for
// broward/nightly-export, on a clock the test moves.
type pingHub struct {
	*hardened
	mu   sync.Mutex
	now  time.Time
	logs *syncLog
}

type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newPingHub(t *testing.T, mod func(*Options)) *pingHub {
	t.Helper()
	h := &pingHub{now: time.Date(2026, 9, 1, 5, 0, 0, 0, time.UTC), logs: &syncLog{}}
	h.hardened = newHardened(t, func(o *Options) {
		o.Auth.PingKeys = []PingKeyConfig{
			{Name: "dade-export", Key: config.Secret(dadeKey), Tenant: "dade", Job: "nightly-export"},
			{Name: "broward-export", Key: config.Secret(browardKey), Tenant: "broward", Job: "nightly-export"},
		}
		o.Now = h.clock
		o.Log = slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		if mod != nil {
			mod(o)
		}
	})
	return h
}

func (h *pingHub) clock() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.now
}

func (h *pingHub) advance(d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.now = h.now.Add(d)
}

// ping sends a ping without a bearer token.
func (h *pingHub) ping(t *testing.T, method, path, body string) (int, map[string]any, string) {
	t.Helper()
	return h.call(t, "", method, path, body)
}

func (h *pingHub) runs(t *testing.T, tenant string) []model.Run {
	t.Helper()
	runs, _, err := h.st.Runs(context.Background(), model.JobKey{Tenant: tenant, Job: "nightly-export"}, store.Page{Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	return runs
}

func TestPingLifecycle(t *testing.T) {
	h := newPingHub(t, nil)
	code, res, raw := h.ping(t, "POST", "/ping/"+dadeKey+"/start", "")
	if code != 200 || res["state"] != "running" {
		t.Fatalf("start: %d %s", code, raw)
	}
	rid := res["run_id"].(string)
	started := h.clock()
	h.advance(time.Minute)
	// Heartbeats carry the job's last sign of progress.
	progress := h.clock().Add(-20 * time.Second)
	if code, _, raw := h.ping(t, "POST", "/ping/"+dadeKey+"/heartbeat?updated_at="+progress.Format(time.RFC3339), ""); code != 200 {
		t.Fatalf("heartbeat: %d %s", code, raw)
	}
	runs := h.runs(t, "dade")
	if len(runs) != 1 || runs[0].RunID != rid || runs[0].State != model.StateRunning || !runs[0].UpdatedAt.Equal(progress) ||
		!runs[0].StartedAt.Equal(started) {
		t.Fatalf("after a heartbeat: %+v", runs)
	}
	h.advance(2 * time.Minute)
	// healthchecks pings by GET as well; a success closes the open run.
	code, res, raw = h.ping(t, "GET", "/ping/"+dadeKey, "")
	if code != 200 || res["run_id"] != rid || res["state"] != "succeeded" {
		t.Fatalf("success: %d %s", code, raw)
	}
	runs = h.runs(t, "dade")
	if len(runs) != 1 || runs[0].State != model.StateSucceeded || runs[0].FinishedAt.Sub(*runs[0].StartedAt) != 3*time.Minute ||
		runs[0].Error != "" || runs[0].Source != "ping:dade-export" {
		t.Fatalf("after success: %+v", runs)
	}
	// A retried success is a duplicate; a heartbeat or start with its rid is refused.
	if code, res, raw := h.ping(t, "POST", "/ping/"+dadeKey+"/0?rid="+rid, ""); code != 200 || res["duplicate"] != true {
		t.Fatalf("second success: %d %s", code, raw)
	}
	for _, p := range []string{"/heartbeat", "/start"} {
		if code, res, raw := h.ping(t, "POST", "/ping/"+dadeKey+p+"?rid="+rid, ""); code != 409 || errCode(res) != "run_finished" {
			t.Fatalf("%s of a finished run: %d %s", p, code, raw)
		}
	}

	// A failure with an exit code and output; without a start the run starts when it ends.
	h.advance(time.Hour)
	code, res, raw = h.ping(t, "POST", "/ping/"+dadeKey+"/3", "loading rows\nERROR: table students is locked\n")
	if code != 200 || res["state"] != "failed" || res["run_id"] == rid {
		t.Fatalf("exit 3: %d %s", code, raw)
	}
	runs = h.runs(t, "dade")
	if len(runs) != 2 || runs[0].State != model.StateFailed || runs[0].Error != "exit code 3\nloading rows\nERROR: table students is locked" ||
		!runs[0].StartedAt.Equal(*runs[0].FinishedAt) {
		t.Fatalf("after exit 3: %+v", runs[0])
	}
	// ?duration= places the start of a run the hub never heard start.
	h.advance(time.Hour)
	if code, _, raw := h.ping(t, "POST", "/ping/"+dadeKey+"/fail?duration=90.5", "boom"); code != 200 {
		t.Fatalf("fail: %d %s", code, raw)
	}
	runs = h.runs(t, "dade")
	if runs[0].Error != "failed after 1m30.5s\nboom" || runs[0].FinishedAt.Sub(*runs[0].StartedAt) != 90500*time.Millisecond {
		t.Fatalf("after fail: %+v", runs[0])
	}
}

// TestPingRunIDs: concurrent runs with ?rid= do not collide; starts
// without one derive distinct ids; a finish without rid closes the most
// recent open run.
func TestPingRunIDs(t *testing.T) {
	h := newPingHub(t, nil)
	for _, rid := range []string{"a", "b"} {
		if code, _, raw := h.ping(t, "POST", "/ping/"+dadeKey+"/start?rid="+rid, ""); code != 200 {
			t.Fatalf("start %s: %d %s", rid, code, raw)
		}
		h.advance(time.Second)
	}
	if code, _, raw := h.ping(t, "POST", "/ping/"+dadeKey+"/1?rid=a", "a broke"); code != 200 {
		t.Fatalf("fail a: %d %s", code, raw)
	}
	// Two starts at the same instant still make two runs.
	var ids []string
	for range 2 {
		_, res, _ := h.ping(t, "POST", "/ping/"+dadeKey+"/start", "")
		ids = append(ids, res["run_id"].(string))
	}
	if ids[0] == ids[1] {
		t.Fatalf("two starts derived one run id %q", ids[0])
	}
	_, res, _ := h.ping(t, "POST", "/ping/"+dadeKey, "")
	if res["run_id"] != ids[1] {
		t.Fatalf("success closed %v, want the most recent open run %s", res["run_id"], ids[1])
	}
	state := map[string]model.State{}
	for _, r := range h.runs(t, "dade") {
		state[r.RunID] = r.State
	}
	want := map[string]model.State{"a": model.StateFailed, "b": model.StateRunning, ids[0]: model.StateRunning, ids[1]: model.StateSucceeded}
	for id, s := range want {
		if state[id] != s {
			t.Errorf("run %s is %q, want %q (all: %v)", id, state[id], s, state)
		}
	}
	for _, bad := range []string{"?rid=", "?rid=" + strings.Repeat("r", 129), "?rid=a%20b", "?rid=%3Cx%3E", "?updated_at=yesterday"} {
		if code, res, raw := h.ping(t, "POST", "/ping/"+dadeKey+"/start"+bad, ""); code != 400 || errCode(res) != "bad_request" {
			t.Errorf("%s: %d %s", bad, code, raw)
		}
	}
	for _, bad := range []string{"/256", "/-1", "/+1", "/1x", "/success", "/0/extra"} {
		if code, _, raw := h.ping(t, "POST", "/ping/"+dadeKey+bad, ""); code != 404 {
			t.Errorf("%s: %d %s", bad, code, raw)
		}
	}
}

// TestPingKeysAreScoped: a key reports for its own tenant and job only,
// whatever the request names; unknown keys learn nothing; keys are never
// logged or answered.
func TestPingKeysAreScoped(t *testing.T) {
	h := newPingHub(t, nil)
	if code, _, raw := h.ping(t, "POST", "/ping/"+browardKey+"/start?rid=shared", ""); code != 200 {
		t.Fatalf("broward start: %d %s", code, raw)
	}
	// dade's key, broward's run id, a tenant in the query, broward's admin
	// token on top: dade's job gets its own run; broward's stays running.
	req, _ := http.NewRequest("POST", h.srv.URL+"/ping/"+dadeKey+"/fail?rid=shared&tenant=broward&job=nightly-export", strings.NewReader("x"))
	req.Header.Set("Authorization", "Bearer "+adminTok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("dade fail: %d", resp.StatusCode)
	}
	b := h.runs(t, "broward")
	if len(b) != 1 || b[0].State != model.StateRunning {
		t.Fatalf("broward's run was touched with dade's key: %+v", b)
	}
	d := h.runs(t, "dade")
	if len(d) != 1 || d[0].RunID != "shared" || d[0].State != model.StateFailed {
		t.Fatalf("dade's runs: %+v", d)
	}
	// Without rid, dade's success finds no open run of dade's (broward's does not count).
	if _, res, _ := h.ping(t, "POST", "/ping/"+dadeKey, ""); res["run_id"] == "shared" {
		t.Fatalf("dade's success closed %v", res)
	}
	if b := h.runs(t, "broward"); b[0].State != model.StateRunning {
		t.Fatalf("broward's run was closed by dade's success: %+v", b)
	}

	// Unknown keys, a key that is a prefix of one, a bearer token as a key: 404, the same answer.
	var answers []string
	for _, k := range []string{"no-such-key-0123456789", dadeKey[:len(dadeKey)-1], dadeKey + "x", adminTok} {
		code, res, raw := h.ping(t, "POST", "/ping/"+k+"/start", "")
		if code != 404 || errCode(res) != "not_found" {
			t.Fatalf("key %q: %d %s", k, code, raw)
		}
		answers = append(answers, raw)
	}
	for _, a := range answers {
		if a != answers[0] {
			t.Errorf("unknown keys get different answers: %s vs %s", a, answers[0])
		}
		for _, secret := range []string{dadeKey, browardKey, "dade", "broward", "no-such-key"} {
			if strings.Contains(a, secret) {
				t.Errorf("the answer to an unknown key shows %q: %s", secret, a)
			}
		}
	}
	logs := h.logs.String()
	if !strings.Contains(logs, `"token":"ping:dade-export"`) {
		t.Errorf("the request log does not name the ping key: %s", logs)
	}
	for _, secret := range []string{dadeKey, browardKey, "no-such-key-0123456789", adminTok} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log shows the key %q:\n%s", secret, logs)
		}
	}
}

// TestPingBodies: output is bounded, cleaned and stays text.
func TestPingBodies(t *testing.T) {
	h := newPingHub(t, func(o *Options) { o.MaxBodyBytes = 8 << 10 })
	code, res, raw := h.ping(t, "POST", "/ping/"+dadeKey+"/fail", strings.Repeat("x", 8<<10+1))
	if code != 413 || errCode(res) != "body_too_large" {
		t.Fatalf("oversized body: %d %s", code, raw)
	}
	if runs := h.runs(t, "dade"); len(runs) != 0 {
		t.Fatalf("an oversized ping stored a run: %+v", runs)
	}

	hostile := "\x1b[31mred\x1b[0m <script>alert(1)</script>\x00\x07 \u202egnp.exe\n" +
		"progress 10%\rprogress 100%\r\n\x1b]0;title\x07<img src=x onerror=alert(2)>\xff\n\n"
	code, _, raw = h.ping(t, "POST", "/ping/"+dadeKey+"/2", hostile)
	if code != 200 || strings.Contains(raw, "script") {
		t.Fatalf("hostile ping: %d %s (the answer echoes the body?)", code, raw)
	}
	runs := h.runs(t, "dade")
	want := "exit code 2\nred <script>alert(1)</script> gnp.exe\nprogress 100%\n<img src=x onerror=alert(2)>\uFFFD"
	if runs[0].Error != want {
		t.Fatalf("stored error %q, want %q", runs[0].Error, want)
	}
	// Shown by the API as JSON text, HTML-escaped.
	_, _, raw = h.call(t, adminTok, "GET", "/api/v1/jobs/dade/nightly-export/runs", "")
	if strings.Contains(raw, "<script>") || strings.Contains(raw, "<img") || !strings.Contains(raw, `\u003cscript\u003e`) {
		t.Fatalf("the runs answer shows the output unescaped: %s", raw)
	}

	// A long output keeps its end, within the error's limit, cut on a line.
	var long strings.Builder
	for i := range 2000 {
		long.WriteString("line " + strings.Repeat("é", i%7) + " " + string(rune('a'+i%26)) + "\n")
	}
	long.WriteString("the last line")
	h = newPingHub(t, nil)
	if code, _, raw := h.ping(t, "POST", "/ping/"+dadeKey+"/1", long.String()); code != 200 {
		t.Fatalf("long: %d %s", code, raw)
	}
	e := h.runs(t, "dade")[0].Error
	if len(e) > model.MaxErrorLen || !strings.HasPrefix(e, "exit code 1\n…\nline ") || !strings.HasSuffix(e, "\nthe last line") {
		t.Fatalf("long output kept as %d bytes: %.80q … %.40q", len(e), e, e[len(e)-40:])
	}
}

func TestPingRateLimit(t *testing.T) {
	h := newPingHub(t, nil)
	limited := 0
	for range PingBurst + 20 {
		code, res, _ := h.ping(t, "POST", "/ping/"+dadeKey+"/heartbeat", "")
		if code == 429 && errCode(res) == "rate_limited" {
			limited++
		}
	}
	if limited == 0 {
		t.Fatalf("%d pings in a burst, none limited", PingBurst+20)
	}
	// Another key is not limited by dade's.
	if code, _, raw := h.ping(t, "POST", "/ping/"+browardKey+"/heartbeat", ""); code != 200 {
		t.Fatalf("broward: %d %s", code, raw)
	}
}

func TestPingKeyConfig(t *testing.T) {
	t.Setenv("PING_SECRET", "ping-secret-from-env-0123")
	a := AuthConfig{
		Tokens: []TokenConfig{{Name: "op", Token: config.Secret("operator-token-0123456789"), Role: "operator"}},
		PingKeys: []PingKeyConfig{
			{Name: "ok", Key: config.Secret("ping-secret-from-env-0123"), Tenant: "dade", Job: "export"},
			{Name: "ok", Key: config.Secret("ping-secret-from-env-0123"), Tenant: "dade", Job: "export"},
			{Name: "short", Key: config.Secret("short-key"), Tenant: "dade", Job: "export"},
			{Name: "slash", Key: config.Secret("has/slash/in/it/0123"), Tenant: "dade", Job: "export"},
			{Name: "token", Key: config.Secret("operator-token-0123456789"), Tenant: "dade", Job: "export"},
			{Name: "", Key: config.Secret("no-tenant-no-job-0123"), Tenant: "", Job: "a\x07b"},
		},
	}
	var p config.Problems
	a.Validate(&p, "auth")
	err := p.Err("etlhub.yaml")
	if err == nil {
		t.Fatal("bad ping keys passed")
	}
	msg := err.Error()
	for _, want := range []string{
		"auth.ping_keys[1].name", "auth.ping_keys[1].key: is the same as another ping key's",
		"auth.ping_keys[2].key: must be 16 to 128", "auth.ping_keys[3].key: may hold only",
		"auth.ping_keys[4].key: is the same as a bearer token's", "auth.ping_keys[5].name: is required",
		"auth.ping_keys[5].tenant: is required", "auth.ping_keys[5].job: holds a control character",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("problems lack %q:\n%s", want, msg)
		}
	}
	for _, secret := range []string{"ping-secret-from-env-0123", "short-key", "has/slash", "operator-token-0123456789", "no-tenant-no-job"} {
		if strings.Contains(msg, secret) {
			t.Errorf("a problem shows the key %q:\n%s", secret, msg)
		}
	}
}
