package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	pdKey        = "PDROUTINGKEY0123456789abcdefABCD"
	slackToken   = "xoxb-111-222-slacksecrettoken"
	pdHookSecret = "pd-webhook-signing-secret"
)

// pdServer follows the Events API v2 and PagerDuty's deduplication: a
// trigger for an open incident with the same dedup_key opens nothing new.
type pdServer struct {
	mu        sync.Mutex
	delay     time.Duration
	events    []map[string]any // every event received, in order
	incidents map[string]string
}

func (p *pdServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var ev map[string]any
	json.NewDecoder(r.Body).Decode(&ev)
	if p.delay > 0 {
		time.Sleep(p.delay) // a slow receiver, so a crash lands mid-delivery
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.incidents == nil {
		p.incidents = map[string]string{}
	}
	p.events = append(p.events, ev)
	k, _ := ev["dedup_key"].(string)
	switch ev["event_action"] {
	case "trigger":
		if p.incidents[k] != "triggered" && p.incidents[k] != "acknowledged" {
			p.incidents[k] = "triggered"
		}
	case "acknowledge":
		p.incidents[k] = "acknowledged"
	case "resolve":
		p.incidents[k] = "resolved"
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(202)
	fmt.Fprintf(w, `{"status":"success","message":"Event processed","dedup_key":%q}`, k)
}

func (p *pdServer) snapshot() ([]map[string]any, map[string]string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	inc := map[string]string{}
	for k, v := range p.incidents {
		inc[k] = v
	}
	return append([]map[string]any(nil), p.events...), inc
}

// slackServer answers chat.postMessage and chat.update.
type slackServer struct {
	mu    sync.Mutex
	calls []string // "method text"
	seq   int
}

func (s *slackServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	s.mu.Lock()
	defer s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if r.PostForm.Get("token") != slackToken && r.Header.Get("Authorization") != "Bearer "+slackToken {
		io.WriteString(w, `{"ok":false,"error":"invalid_auth"}`)
		return
	}
	m := strings.TrimPrefix(r.URL.Path, "/api/")
	s.calls = append(s.calls, m+" "+r.PostForm.Get("text"))
	s.seq++
	fmt.Fprintf(w, `{"ok":true,"channel":"C1","ts":"1700000000.%06d"}`, s.seq)
}

func (s *slackServer) snapshot() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.calls...)
}

func notifyConfig(pdURL, slackURL string) string {
	return fmt.Sprintf(`rules: {tick: 1s, timings: {stalled: {keep_firing_for: 0s}}}
notify:
  pagerduty_webhook_secret: "${PD_HOOK}"
  retry: {base: 200ms, max: 1s}
  receivers:
    - {name: oncall, pagerduty: {routing_key: "${PD_KEY}", events_url: %q, timeout: 5s}, rate_per_minute: 6000}
    - {name: team, slack: {token: "${SLACK_TOKEN}", channel: "#etl", api_url: %q}, rate_per_minute: 6000}
  routes:
    - {match: {severity: critical}, receiver: oncall, continue: true}
    - {receiver: team}
`, pdURL, slackURL+"/api/")
}

// receivers starts local PagerDuty (answering after delay) and Slack
// servers and returns them with the notify config that points at them.
func receivers(t *testing.T, delay time.Duration) (*pdServer, *slackServer, string) {
	pd := &pdServer{delay: delay}
	pds := httptest.NewServer(pd)
	t.Cleanup(pds.Close)
	sl := &slackServer{}
	sls := httptest.NewServer(sl)
	t.Cleanup(sls.Close)
	t.Setenv("PD_KEY", pdKey)
	t.Setenv("SLACK_TOKEN", slackToken)
	t.Setenv("PD_HOOK", pdHookSecret)
	return pd, sl, notifyConfig(pds.URL, sls.URL)
}

func stalledJobs(n int) string {
	tenants := make([]string, n)
	for i := range tenants {
		tenants[i] = fmt.Sprintf("t%02d", i)
	}
	return nowJobs(", severity: {stalled: critical}", tenants...)
}

func stalledObs(tenant string, now time.Time, frozenFor time.Duration) []byte {
	return []byte(fmt.Sprintf(`{"at":%q,"tenant":%q,"job":"roster-import","run_id":"%s/1","state":"running","stage":"loading","started_at":%q,"updated_at":%q,"rows_done":10,"rows_total":100}`,
		now.Format(time.RFC3339), tenant, tenant, now.Add(-time.Hour).Format(time.RFC3339), now.Add(-frozenFor).Format(time.RFC3339)))
}

func signPD(body []byte) string {
	mac := hmac.New(sha256.New, []byte(pdHookSecret))
	mac.Write(body)
	return "v1=" + hex.EncodeToString(mac.Sum(nil))
}

// TestPagesAcksAndResolves follows one alert through PagerDuty and Slack.
func TestPagesAcksAndResolves(t *testing.T) {
	pd, sl, notify := receivers(t, 0)
	h := startHubIn(t, t.TempDir(), "  []", stalledJobs(1), notify)
	now := time.Now().UTC()
	if code, _ := h.call("POST", "/api/v1/observations", opTok, stalledObs("t00", now, 30*time.Minute)); code != 200 {
		t.Fatal("push failed")
	}
	var key string
	h.eventually("PagerDuty has a trigger and Slack a message", 20*time.Second, func() bool {
		ev, _ := pd.snapshot()
		if len(ev) == 0 || len(sl.snapshot()) == 0 {
			return false
		}
		key, _ = ev[0]["dedup_key"].(string)
		return ev[0]["event_action"] == "trigger" && ev[0]["routing_key"] == pdKey
	})
	_, body := h.call("GET", "/api/v1/alerts?state=firing", viewTok, nil)
	alert := body["alerts"].([]any)[0].(map[string]any)
	id := alert["id"].(string)

	// A PagerDuty webhook with a bad signature is refused; a signed one acks.
	hook := []byte(fmt.Sprintf(`{"event":{"id":"01","event_type":"incident.acknowledged","occurred_at":%q,"agent":{"id":"PJANE","type":"user_reference","summary":"Jane Doe"},"data":{"type":"incident","incident_key":%q}}}`,
		time.Now().UTC().Format(time.RFC3339Nano), key))
	req, _ := http.NewRequest("POST", h.url+"/api/v1/webhooks/pagerduty", strings.NewReader(string(hook)))
	req.Header.Set("X-PagerDuty-Signature", "v1=00"+strings.Repeat("ab", 31))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 401 {
		t.Fatalf("badly signed webhook: %v %v", resp.StatusCode, err)
	}
	req, _ = http.NewRequest("POST", h.url+"/api/v1/webhooks/pagerduty", strings.NewReader(string(hook)))
	req.Header.Set("X-PagerDuty-Signature", "v1=deadbeef, "+signPD(hook))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 204 {
		t.Fatalf("signed webhook: %v %v", resp.StatusCode, err)
	}
	// The same signed body again (a replay, or PagerDuty redelivering) is
	// answered but not acted on; a signed body from 2019 is refused.
	req, _ = http.NewRequest("POST", h.url+"/api/v1/webhooks/pagerduty", strings.NewReader(string(hook)))
	req.Header.Set("X-PagerDuty-Signature", signPD(hook))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("replayed webhook: %v %v", resp.StatusCode, err)
	}
	stale := []byte(strings.Replace(string(hook), time.Now().UTC().Format("2006-01-02T"), "2019-03-01T", 1))
	stale = []byte(strings.Replace(string(stale), `"id":"01"`, `"id":"02"`, 1))
	req, _ = http.NewRequest("POST", h.url+"/api/v1/webhooks/pagerduty", strings.NewReader(string(stale)))
	req.Header.Set("X-PagerDuty-Signature", signPD(stale))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 400 {
		t.Fatalf("a signed webhook from 2019: %v %v", resp.StatusCode, err)
	}
	h.eventually("Slack shows the acknowledgement", 10*time.Second, func() bool {
		for _, c := range sl.snapshot() {
			if strings.HasPrefix(c, "chat.postMessage Acknowledged by Jane Doe") {
				return true
			}
		}
		return false
	})
	if ev, _ := pd.snapshot(); len(ev) != 1 {
		t.Fatalf("an ack that came from PagerDuty was sent back to it: %v", ev)
	}
	// Acknowledging in the hub sends PagerDuty an acknowledge event.
	if code, _ := h.call("POST", "/api/v1/alerts/"+id+"/ack", viewTok, nil); code != 403 {
		t.Fatalf("viewer ack: %d", code)
	}
	if code, body := h.call("POST", "/api/v1/alerts/"+id+"/ack", opTok, nil); code != 200 || body["acked_by"] != "etlhub:operator" {
		t.Fatalf("ack: %d %v", code, body)
	}
	h.eventually("PagerDuty gets the acknowledge", 10*time.Second, func() bool {
		_, inc := pd.snapshot()
		return inc[key] == "acknowledged"
	})
	// The heartbeat comes back: the alert resolves everywhere.
	later := time.Now().UTC()
	h.call("POST", "/api/v1/observations", opTok, stalledObs("t00", later, 0))
	h.eventually("PagerDuty gets the resolve", 20*time.Second, func() bool {
		_, inc := pd.snapshot()
		return inc[key] == "resolved"
	})
	h.eventually("every notification is delivered", 10*time.Second, func() bool {
		_, body := h.call("GET", "/api/v1/notifications?status=pending", viewTok, nil)
		return len(body["notifications"].([]any)) == 0
	})
	_, body = h.call("GET", "/api/v1/notifications", viewTok, nil)
	raw, _ := json.Marshal(body)
	logs := h.logs.String()
	for _, secret := range []string{pdKey, slackToken, pdHookSecret} {
		if strings.Contains(logs, secret) || strings.Contains(string(raw), secret) {
			t.Fatalf("secret %q leaked into logs or the API", secret[:6])
		}
	}
}

// TestKillMidDeliveryDeliversEverythingOnce kills the hub with SIGKILL while
// it delivers to a slow PagerDuty, restarts it, and checks every alert was
// paged once, in order.
func TestKillMidDeliveryDeliversEverythingOnce(t *testing.T) {
	const n = 12
	pd, _, notify := receivers(t, 150*time.Millisecond)
	dir := t.TempDir()
	// One config for both processes: computed again at the restart, the
	// jobs' schedule could move a minute past the runs' start, which would
	// put them in the night before and resolve their alerts.
	jobs := stalledJobs(n)
	h := startHubIn(t, dir, "  []", jobs, notify)
	now := time.Now().UTC()
	var lines []string
	for i := 0; i < n; i++ {
		lines = append(lines, string(stalledObs(fmt.Sprintf("t%02d", i), now, 30*time.Minute)))
	}
	if code, _ := h.call("POST", "/api/v1/observations", opTok, []byte(strings.Join(lines, "\n"))); code != 200 {
		t.Fatal("push failed")
	}
	h.eventually("a few pages went out", 20*time.Second, func() bool {
		ev, _ := pd.snapshot()
		return len(ev) >= 3
	})
	h.cmd.Process.Signal(syscall.SIGKILL)
	<-h.done
	h.done <- nil
	sent, _ := pd.snapshot()
	if len(sent) >= n {
		t.Fatalf("all %d pages went out before the kill; the test proves nothing", len(sent))
	}
	h2 := startHubIn(t, dir, "  []", jobs, notify)
	h2.eventually("every alert is paged", 30*time.Second, func() bool {
		_, inc := pd.snapshot()
		return len(inc) == n
	})
	h2.eventually("the outbox is empty", 10*time.Second, func() bool {
		_, body := h2.call("GET", "/api/v1/notifications?status=pending", viewTok, nil)
		return len(body["notifications"].([]any)) == 0
	})
	events, inc := pd.snapshot()
	triggers := map[string]int{}
	for _, e := range events {
		if e["event_action"] != "trigger" {
			t.Fatalf("unexpected %v before any resolve", e["event_action"])
		}
		triggers[e["dedup_key"].(string)]++
	}
	dups := 0
	for k, c := range triggers {
		if inc[k] != "triggered" {
			t.Fatalf("incident %s is %s", k, inc[k])
		}
		dups += c - 1
	}
	// At most the one event in flight at the kill is sent twice, and
	// PagerDuty folds it into the open incident by its dedup_key.
	if len(inc) != n || dups > 1 {
		t.Fatalf("%d incidents, %d duplicate triggers", len(inc), dups)
	}
	if c := strings.Count(h2.logs.String(), `"msg":"alert firing"`); c != 0 {
		t.Fatalf("the restarted hub fired %d alerts again", c)
	}
}
