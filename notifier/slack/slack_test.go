package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

const token = "xoxb-1234-5678-secretsecret"

// fakeSlack follows the Web API: form-encoded calls, {"ok": ...} answers,
// 429 with Retry-After when rate limited.
type fakeSlack struct {
	mu     sync.Mutex
	calls  []call
	faults []func(w http.ResponseWriter) bool
	seq    int
}

type call struct {
	method string
	form   map[string]string
}

func (f *fakeSlack) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.faults) > 0 {
		fault := f.faults[0]
		f.faults = f.faults[1:]
		if fault(w) {
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	r.ParseForm()
	// Slack takes the token as a bearer header or a form field.
	if r.Header.Get("Authorization") != "Bearer "+token && r.PostForm.Get("token") != token {
		io.WriteString(w, `{"ok":false,"error":"invalid_auth"}`)
		return
	}
	c := call{method: strings.TrimPrefix(r.URL.Path, "/api/"), form: map[string]string{}}
	for k := range r.PostForm {
		c.form[k] = r.PostForm.Get(k)
	}
	f.calls = append(f.calls, c)
	switch c.method {
	case "chat.postMessage":
		f.seq++
		fmt.Fprintf(w, `{"ok":true,"channel":"C0ALERTS","ts":"1700000000.%06d"}`, f.seq)
	case "chat.update":
		fmt.Fprintf(w, `{"ok":true,"channel":%q,"ts":%q}`, c.form["channel"], c.form["ts"])
	default:
		io.WriteString(w, `{"ok":false,"error":"unknown_method"}`)
	}
}

func setup(t *testing.T) (*fakeSlack, *Notifier) {
	f := &fakeSlack{}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c := Config{Token: token, Channel: "#etl-alerts", APIURL: srv.URL + "/api/", Timeout: time.Second}
	var p config.Problems
	c.Validate(&p, "slack")
	if p.Len() != 0 {
		t.Fatal(p)
	}
	return f, New(c)
}

func message(event string) notifier.Message {
	return notifier.Message{Event: model.TransitionKind(event), DashboardURL: "https://hub.example/", Alert: model.Alert{
		Fingerprint: "stalled|dade|roster-import|n|r1", Rule: "stalled", Severity: "warning", Tenant: "dade",
		Job: "roster-import", RunID: "r1", Summary: strings.Repeat("no heartbeat ", 500),
		FiredAt: time.Date(2026, 9, 1, 9, 0, 0, 0, time.UTC), ResolvedAt: time.Date(2026, 9, 1, 9, 30, 0, 0, time.UTC)}}
}

func TestOneMessagePerAlertUpdatedInPlace(t *testing.T) {
	f, n := setup(t)
	ref, err := n.Notify(context.Background(), message("firing"))
	if err != nil || ref != "C0ALERTS|1700000000.000001" {
		t.Fatalf("post: ref %q, %v", ref, err)
	}
	m := message("resolved")
	m.Ref = ref
	if _, err := n.Notify(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if len(f.calls) != 3 || f.calls[0].method != "chat.postMessage" || f.calls[1].method != "chat.update" ||
		f.calls[2].method != "chat.postMessage" {
		t.Fatalf("calls = %+v", f.calls)
	}
	if f.calls[0].form["channel"] != "#etl-alerts" || f.calls[1].form["ts"] != "1700000000.000001" ||
		f.calls[2].form["thread_ts"] != "1700000000.000001" {
		t.Fatalf("update or thread reply not on the first message: %+v", f.calls)
	}
	var blocks []map[string]any
	if err := json.Unmarshal([]byte(f.calls[0].form["blocks"]), &blocks); err != nil {
		t.Fatalf("blocks: %v", err)
	}
	if len(blocks) > MaxBlocks {
		t.Fatalf("%d blocks", len(blocks))
	}
	for _, b := range blocks {
		if txt, ok := b["text"].(map[string]any); ok && len(txt["text"].(string)) > MaxSectionText {
			t.Fatalf("a section of %d characters", len(txt["text"].(string)))
		}
	}
	if !strings.Contains(f.calls[1].form["blocks"], "RESOLVED") {
		t.Fatal("the updated message does not say resolved")
	}
}

func TestSlackFaults(t *testing.T) {
	for _, tc := range []struct {
		name       string
		fault      func(w http.ResponseWriter) bool
		retry      bool
		retryAfter time.Duration
	}{
		{"429 Retry-After", func(w http.ResponseWriter) bool {
			w.Header().Set("Retry-After", "3")
			w.WriteHeader(429)
			return true
		}, true, 3 * time.Second},
		{"500", func(w http.ResponseWriter) bool { w.WriteHeader(500); return true }, true, 0},
		{"channel_not_found is not retried", func(w http.ResponseWriter) bool {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"ok":false,"error":"channel_not_found"}`)
			return true
		}, false, 0},
		{"dropped connection", func(w http.ResponseWriter) bool {
			c, _, _ := w.(http.Hijacker).Hijack()
			c.Close()
			return true
		}, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, n := setup(t)
			f.faults = append(f.faults, tc.fault)
			_, err := n.Notify(context.Background(), message("firing"))
			var ne *notifier.Error
			if !errors.As(err, &ne) || ne.Retry != tc.retry || ne.RetryAfter != tc.retryAfter {
				t.Fatalf("error %v: %+v, want retry=%v after=%v", err, ne, tc.retry, tc.retryAfter)
			}
			if strings.Contains(err.Error(), token) {
				t.Fatalf("the token leaked: %v", err)
			}
		})
	}
}

func TestWebhookMode(t *testing.T) {
	var got map[string]any
	fail := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fail {
			fail = false
			w.WriteHeader(404)
			io.WriteString(w, "no_service")
			return
		}
		json.NewDecoder(r.Body).Decode(&got)
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	hook := srv.URL + "/services/T000/B000/XXXXSECRETXXXX"
	c := Config{WebhookURL: config.Secret(hook), Timeout: time.Second}
	var p config.Problems
	c.Validate(&p, "slack")
	n := New(c)
	_, err := n.Notify(context.Background(), message("firing"))
	var ne *notifier.Error
	if !errors.As(err, &ne) || ne.Retry || strings.Contains(err.Error(), "XXXXSECRETXXXX") {
		t.Fatalf("404 from a webhook: %v (%+v)", err, ne)
	}
	if _, err := n.Notify(context.Background(), message("firing")); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(fmt.Sprint(got["text"]), "[WARNING]") || got["blocks"] == nil {
		t.Fatalf("webhook body = %v", got)
	}
}

func TestConfigNeedsOneWay(t *testing.T) {
	for name, c := range map[string]Config{
		"nothing":        {},
		"both":           {Token: token, Channel: "#x", WebhookURL: "https://hooks.example/x"},
		"user token":     {Token: "xoxp-1", Channel: "#x"},
		"no channel":     {Token: token},
		"webhook no url": {WebhookURL: "not a url"},
	} {
		var p config.Problems
		c.Validate(&p, "slack")
		if p.Len() == 0 {
			t.Errorf("%s: accepted", name)
		}
	}
}
