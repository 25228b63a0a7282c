package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/model"
	"github.com/etlhub/etlhub/notifier"
)

const secret = "hmac-secret-0123456789"

func alert(tenant string) model.Alert {
	at := time.Date(2026, 9, 1, 9, 30, 0, 0, time.UTC)
	return model.Alert{ID: "a1", Fingerprint: "fp-" + tenant, Rule: "predicted-breach", Severity: "critical", Tenant: tenant,
		Job: "roster-import", Summary: tenant + "/roster-import: predicted to miss <06:00>", State: model.AlertFiring,
		PendingSince: at, FiredAt: at, Details: map[string]any{"p_breach": 0.93, "why": "slow load"}}
}

func newNotifier(t *testing.T, url string, c Config) *Notifier {
	t.Helper()
	c.URL = config.Secret(url)
	var p config.Problems
	c.Validate(&p, "receivers[0].webhook")
	if p.Len() != 0 {
		t.Fatal(p.Err("config"))
	}
	return New("oncall-bridge", c)
}

// TestPayloadIsAlertmanagersWebhook: the body is Alertmanager's version 4
// webhook with our alert as labels and annotations, signed when a secret is
// set, and a receiver can verify the signature.
func TestPayloadIsAlertmanagersWebhook(t *testing.T) {
	var got Payload
	var sig, ts, auth string
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ = io.ReadAll(r.Body)
		sig, ts, auth = r.Header.Get(SignatureHeader), r.Header.Get(TimestampHeader), r.Header.Get("Authorization")
		if err := json.Unmarshal(body, &got); err != nil || r.Header.Get("Content-Type") != "application/json" {
			w.WriteHeader(400)
		}
	}))
	defer srv.Close()
	n := newNotifier(t, srv.URL+"/hook", Config{HMACSecret: secret, BearerToken: "bearer-abcdef"})
	m := notifier.Message{Event: "firing", Alert: alert("dade"), Group: []model.Alert{alert("dade"), alert("polk")},
		GroupKey: "rule=predicted-breach,severity=critical", DashboardURL: "https://hub.example/"}
	if _, err := n.Notify(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if got.Version != "4" || got.Status != "firing" || got.Receiver != "oncall-bridge" || len(got.Alerts) != 2 ||
		got.ExternalURL != "https://hub.example/" || got.GroupKey != m.GroupKey {
		t.Fatalf("payload = %+v", got)
	}
	a := got.Alerts[0]
	if a.Labels["alertname"] != "predicted-breach" || a.Labels["tenant"] != "dade" || a.Labels["job"] != "roster-import" ||
		a.Labels["severity"] != "critical" || a.Annotations["summary"] != "dade/roster-import: predicted to miss <06:00>" ||
		a.Annotations["p_breach"] != "0.93" || !a.StartsAt.Equal(alert("dade").FiredAt) || a.Fingerprint != "fp-dade" {
		t.Fatalf("alert = %+v", a)
	}
	if got.CommonLabels["alertname"] != "predicted-breach" || got.CommonLabels["tenant"] != "" || got.GroupLabels["rule"] != "predicted-breach" {
		t.Fatalf("common labels %v, group labels %v", got.CommonLabels, got.GroupLabels)
	}
	if !Verify([]byte(secret), ts, body, sig) || Verify([]byte("another-secret-0123456"), ts, body, sig) ||
		Verify([]byte(secret), ts, append(body, ' '), sig) || auth != "Bearer bearer-abcdef" {
		t.Fatalf("signature %q over ts %q does not verify (auth %q)", sig, ts, auth)
	}

	// A resolve says resolved with its end; max_alerts truncates.
	n = newNotifier(t, srv.URL+"/hook", Config{MaxAlerts: 1})
	r := alert("dade")
	r.State, r.ResolvedAt = model.AlertResolved, r.FiredAt.Add(time.Hour)
	m = notifier.Message{Event: "resolved", Alert: r, Group: []model.Alert{r, alert("polk")}}
	if _, err := n.Notify(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if got.Status != "resolved" || len(got.Alerts) != 1 || got.TruncatedAlerts != 1 || !got.Alerts[0].EndsAt.Equal(r.ResolvedAt) || sig != "" {
		t.Fatalf("resolve = %+v (signature %q)", got, sig)
	}
}

// TestRetryVerdicts: what the receiver answers decides whether the outbox
// retries, and no error carries the URL's token.
func TestRetryVerdicts(t *testing.T) {
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // so the server notices the client leaving
		switch r.URL.Query().Get("case") {
		case "429":
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(429)
		case "503":
			w.WriteHeader(503)
		case "400":
			w.WriteHeader(400)
			io.WriteString(w, "bad payload")
		case "hang":
			select {
			case <-hang:
			case <-r.Context().Done():
			}
		}
	}))
	defer srv.Close()
	defer close(hang)
	for _, tc := range []struct {
		name       string
		retry      bool
		retryAfter time.Duration
		says       string
	}{
		{"429", true, 7 * time.Second, "HTTP 429"},
		{"503", true, 0, "HTTP 503"},
		{"400", false, 0, "bad payload"},
		{"hang", true, 0, "timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newNotifier(t, srv.URL+"/hook?token=tok-secret-987&case="+tc.name, Config{Timeout: 300 * time.Millisecond})
			_, err := n.Notify(context.Background(), notifier.Message{Event: "firing", Alert: alert("dade")})
			var ne *notifier.Error
			if !errors.As(err, &ne) || ne.Retry != tc.retry || ne.RetryAfter != tc.retryAfter || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("err = %#v (%v), want retry=%v after %v saying %q", ne, err, tc.retry, tc.retryAfter, tc.says)
			}
			if strings.Contains(err.Error(), "tok-secret-987") {
				t.Fatalf("the error leaks the URL's token: %v", err)
			}
		})
	}
	// Refused connection: retried.
	dead := httptest.NewServer(http.NotFoundHandler())
	url := dead.URL
	dead.Close()
	_, err := newNotifier(t, url, Config{}).Notify(context.Background(), notifier.Message{Event: "firing", Alert: alert("dade")})
	var ne *notifier.Error
	if !errors.As(err, &ne) || !ne.Retry {
		t.Fatalf("refused connection: %v", err)
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	c := Config{URL: "ftp://x", HMACSecret: "short", MaxAlerts: -1}
	var p config.Problems
	c.Validate(&p, "notify.receivers[2].webhook")
	msg := p.Err("etlhub.yaml").Error()
	for _, want := range []string{"notify.receivers[2].webhook.url", "notify.receivers[2].webhook.hmac_secret", "notify.receivers[2].webhook.max_alerts"} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q lacks %s", msg, want)
		}
	}
}
