package pagerduty

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/model"
	"github.com/etlhub/etlhub/notifier"
)

const key = "R0UT1NGKEY0123456789abcdefABCDEF"

// fakePD follows the Events API v2: POST /v2/enqueue, 202 with a dedup_key,
// 400 for an invalid event; faults are queued per test.
type fakePD struct {
	mu     sync.Mutex
	events []map[string]any
	faults []func(w http.ResponseWriter, r *http.Request) bool
}

func (f *fakePD) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	var fault func(w http.ResponseWriter, r *http.Request) bool
	if len(f.faults) > 0 {
		fault, f.faults = f.faults[0], f.faults[1:]
	}
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if fault != nil && fault(w, r) {
		return
	}
	if r.URL.Path != "/v2/enqueue" || r.Method != "POST" {
		http.NotFound(w, r)
		return
	}
	var ev map[string]any
	body, _ := io.ReadAll(r.Body)
	if json.Unmarshal(body, &ev) != nil || len(ev["routing_key"].(string)) != 32 {
		w.WriteHeader(400)
		io.WriteString(w, `{"status":"invalid event","message":"Event object is invalid","errors":["Length of 'routing_key' is incorrect"]}`)
		return
	}
	f.mu.Lock()
	f.events = append(f.events, ev)
	f.mu.Unlock()
	w.WriteHeader(202)
	io.WriteString(w, `{"status":"success","message":"Event processed","dedup_key":"`+ev["dedup_key"].(string)+`"}`)
}

func setup(t *testing.T, timeout time.Duration) (*fakePD, *Notifier) {
	f := &fakePD{}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c := Config{RoutingKey: key, EventsURL: srv.URL, Timeout: timeout}
	var p config.Problems
	c.Validate(&p, "pd")
	if p.Len() != 0 {
		t.Fatal(p)
	}
	return f, New(c)
}

func msg(event string) notifier.Message {
	return notifier.Message{Event: model.TransitionKind(event), DashboardURL: "https://hub.example/jobs/dade/roster-import", Alert: model.Alert{
		Fingerprint: "predicted-breach|dade|roster-import|2026-09-01T07:15Z", Rule: "predicted-breach", Severity: "critical",
		Tenant: "dade", Job: "roster-import", RunID: "dade/1", Summary: strings.Repeat("late ", 400),
		Details: map[string]any{"p_breach": 0.93, "deadline": "2026-09-01T11:00:00Z"}, FiredAt: time.Date(2026, 9, 1, 9, 0, 0, 0, time.UTC)}}
}

func TestTriggerAndResolveFollowTheEventsAPI(t *testing.T) {
	f, n := setup(t, 2*time.Second)
	if _, err := n.Notify(context.Background(), msg("firing")); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Notify(context.Background(), msg("resolved")); err != nil {
		t.Fatal(err)
	}
	if len(f.events) != 2 {
		t.Fatalf("%d events", len(f.events))
	}
	tr, rs := f.events[0], f.events[1]
	if tr["event_action"] != "trigger" || rs["event_action"] != "resolve" {
		t.Fatalf("actions %v, %v", tr["event_action"], rs["event_action"])
	}
	if tr["routing_key"] != key || rs["routing_key"] != key || tr["dedup_key"] != rs["dedup_key"] ||
		tr["dedup_key"] != "predicted-breach|dade|roster-import|2026-09-01T07:15Z" {
		t.Fatalf("keys differ between trigger and resolve: %v / %v", tr, rs)
	}
	p := tr["payload"].(map[string]any)
	if s := p["summary"].(string); len(s) != 1024 || !strings.HasSuffix(s, "...") {
		t.Fatalf("summary is %d characters, want 1024", len(s))
	}
	if p["severity"] != "critical" || p["group"] != "dade" || p["component"] != "roster-import" || p["class"] != "predicted-breach" {
		t.Fatalf("payload = %v", p)
	}
	d := p["custom_details"].(map[string]any)
	if d["tenant"] != "dade" || d["run_id"] != "dade/1" || d["p_breach"] != 0.93 {
		t.Fatalf("custom_details = %v", d)
	}
	if tr["client_url"] != "https://hub.example/jobs/dade/roster-import" {
		t.Fatalf("no dashboard link: %v", tr)
	}
}

func TestDedupKeyFitsPagerDuty(t *testing.T) {
	long := strings.Repeat("x", 400)
	k := DedupKey(long)
	if len(k) > 255 || k != DedupKey(long) || k == DedupKey(long+"y") {
		t.Fatalf("dedup key %d long, stable %v", len(k), k == DedupKey(long))
	}
}

func TestFaultsAreClassified(t *testing.T) {
	for _, tc := range []struct {
		name       string
		fault      func(w http.ResponseWriter, r *http.Request) bool
		retry      bool
		retryAfter time.Duration
	}{
		{"429 with Retry-After", func(w http.ResponseWriter, r *http.Request) bool {
			w.Header().Set("Retry-After", "17")
			w.WriteHeader(429)
			io.WriteString(w, `{"status":"throttle event","message":"Requests for this service are arriving too quickly."}`)
			return true
		}, true, 17 * time.Second},
		{"500", func(w http.ResponseWriter, r *http.Request) bool { w.WriteHeader(500); return true }, true, 0},
		{"502 from a proxy, in HTML", func(w http.ResponseWriter, r *http.Request) bool {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(502)
			io.WriteString(w, "<html>bad gateway</html>")
			return true
		}, true, 0},
		{"403 from a proxy, in HTML, is not retried", func(w http.ResponseWriter, r *http.Request) bool {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(403)
			return true
		}, false, 0},
		{"400 is not retried", func(w http.ResponseWriter, r *http.Request) bool {
			w.WriteHeader(400)
			io.WriteString(w, `{"status":"invalid event","message":"Event object is invalid","errors":["'payload.summary' is missing"]}`)
			return true
		}, false, 0},
		{"timeout", func(w http.ResponseWriter, r *http.Request) bool {
			io.Copy(io.Discard, r.Body) // lets the server notice the client hanging up
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
			return true
		}, true, 0},
		{"dropped connection", func(w http.ResponseWriter, r *http.Request) bool {
			c, _, _ := w.(http.Hijacker).Hijack()
			c.Close()
			return true
		}, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, n := setup(t, 300*time.Millisecond)
			f.faults = append(f.faults, tc.fault)
			_, err := n.Notify(context.Background(), msg("firing"))
			var ne *notifier.Error
			if !errors.As(err, &ne) {
				t.Fatalf("error %v is not classified", err)
			}
			if ne.Retry != tc.retry || ne.RetryAfter != tc.retryAfter {
				t.Fatalf("retry=%v after=%v, want %v %v (%v)", ne.Retry, ne.RetryAfter, tc.retry, tc.retryAfter, err)
			}
			if strings.Contains(err.Error(), key) {
				t.Fatalf("the routing key leaked into the error: %v", err)
			}
		})
	}
}

func TestConfigRejectsBadKeys(t *testing.T) {
	c := Config{RoutingKey: "short", EventsURL: "ftp://x"}
	var p config.Problems
	c.Validate(&p, "notify.receivers[0].pagerduty")
	if p.Len() != 2 {
		t.Fatalf("problems = %v", p)
	}
}
