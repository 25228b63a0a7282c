// Package pagerduty sends alert transitions to the PagerDuty Events API v2
// through github.com/PagerDuty/go-pagerduty: trigger on firing, resolve on
// resolved, the alert's fingerprint as dedup_key.
package pagerduty

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/PagerDuty/go-pagerduty"
	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/model"
	"github.com/etlhub/etlhub/notifier"
)

// DefaultEventsURL is PagerDuty's (US) Events API v2 base; the EU region is
// https://events.eu.pagerduty.com.
const DefaultEventsURL = "https://events.pagerduty.com"

// Config is one PagerDuty receiver.
type Config struct {
	// RoutingKey is the integration key of a service, e.g. "${PD_ROUTING_KEY}".
	RoutingKey config.Secret `yaml:"routing_key"`
	// EventsURL is the Events API base (EU region, a proxy, tests).
	EventsURL string        `yaml:"events_url"`
	Timeout   time.Duration `yaml:"timeout"`
}

// Validate sets defaults and checks the section at key.
func (c *Config) Validate(p *config.Problems, key string) {
	if c.EventsURL == "" {
		c.EventsURL = DefaultEventsURL
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	if len(c.RoutingKey.Value()) != 32 {
		p.Add(key+".routing_key", "must be a 32-character integration key")
	}
	if u, err := url.Parse(c.EventsURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		p.Add(key+".events_url", "%q is not an http(s) URL", c.EventsURL)
	}
}

// Notifier is a PagerDuty receiver.
type Notifier struct {
	cfg    Config
	client *pagerduty.Client
}

// New builds a receiver from a validated config.
func New(c Config) *Notifier {
	pd := pagerduty.NewClient("", pagerduty.WithV2EventsAPIEndpoint(strings.TrimRight(c.EventsURL, "/")))
	pd.HTTPClient = &capture{c: &http.Client{Timeout: c.Timeout}}
	return &Notifier{cfg: c, client: pd}
}

// capture keeps the status and Retry-After of the answer, which
// go-pagerduty's errors do not always carry (a non-JSON error page).
type capture struct{ c *http.Client }

type answer struct {
	status     int
	retryAfter string
}

type answerKey struct{}

func (h *capture) Do(r *http.Request) (*http.Response, error) {
	resp, err := h.c.Do(r)
	if a, ok := r.Context().Value(answerKey{}).(*answer); ok && err == nil {
		a.status, a.retryAfter = resp.StatusCode, resp.Header.Get("Retry-After")
	}
	return resp, err
}

// DedupKey is the fingerprint, hashed when longer than PagerDuty's 255.
func DedupKey(fp string) string {
	if len(fp) <= 255 {
		return fp
	}
	sum := sha256.Sum256([]byte(fp))
	return fp[:190] + "#" + hex.EncodeToString(sum[:])
}

// Severity maps ours to PagerDuty's: critical, error, warning, info.
func Severity(s model.Severity) string {
	switch s {
	case model.SeverityCritical:
		return "critical"
	case model.SeverityWarning:
		return "warning"
	}
	return "info"
}

// Event builds the Events API v2 event for a message.
func (n *Notifier) Event(m notifier.Message) *pagerduty.V2Event {
	a := m.Alert
	action := "trigger"
	switch m.Event {
	case model.TransitionResolved:
		action = "resolve"
	case model.TransitionAcknowledged:
		action = "acknowledge"
	}
	dedup := a.Fingerprint
	if m.Grouped() {
		dedup = "group|" + m.GroupKey
	}
	ev := &pagerduty.V2Event{RoutingKey: n.cfg.RoutingKey.Value(), Action: action, DedupKey: DedupKey(dedup),
		Client: "etlhub"}
	if _, ok := notifier.WebURL(m.DashboardURL); ok {
		ev.ClientURL = m.DashboardURL // PagerDuty links it: http(s) only
	}
	if action == "trigger" {
		ev.Payload = &pagerduty.V2Payload{
			Summary: notifier.Clip(m.GroupSummary(), 1024), Source: "etlhub", Severity: Severity(a.Severity),
			Component: a.Job, Group: a.Tenant, Class: a.Rule, Details: notifier.Details(a),
		}
		if len(m.Group) > 1 {
			members := make([]map[string]any, 0, len(m.Group))
			for _, g := range m.Group {
				members = append(members, map[string]any{"tenant": g.Tenant, "job": g.Job, "summary": notifier.Clip(g.Summary, 300)})
			}
			ev.Payload.Details = map[string]any{"group": m.GroupKey, "count": len(m.Group), "alerts": members}
			ev.Payload.Group = ""
			ev.Payload.Component = ""
		}
		if !a.FiredAt.IsZero() {
			ev.Payload.Timestamp = a.FiredAt.UTC().Format(time.RFC3339)
		}
	}
	return ev
}

// Notify sends the event; 429 and 5xx are retried, other 4xx are not.
func (n *Notifier) Notify(ctx context.Context, m notifier.Message) (string, error) {
	var ans answer
	ctx = context.WithValue(ctx, answerKey{}, &ans)
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()
	resp, err := n.client.ManageEventWithContext(ctx, n.Event(m))
	if err != nil {
		var apiErr pagerduty.EventsAPIV2Error
		if errors.As(err, &apiErr) && ans.status == 0 {
			ans.status = apiErr.StatusCode
		}
		if ans.status >= 400 {
			return "", n.scrub(notifier.Classify(ans.status, ans.retryAfter, fmt.Errorf("pagerduty: %w", err)))
		}
		return "", n.scrub(notifier.Transport(fmt.Errorf("pagerduty: %w", err)))
	}
	return resp.DedupKey, nil
}

func (n *Notifier) scrub(err error) error { return notifier.Scrub(err, n.cfg.RoutingKey.Value()) }

// VerifySignature checks a Webhooks v3 X-PagerDuty-Signature header: one or
// more comma-separated "v1=<hex HMAC-SHA256 of the body>"; any match passes.
func VerifySignature(secret, body []byte, header string) bool {
	if len(secret) == 0 || header == "" {
		return false
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	want := mac.Sum(nil)
	for _, part := range strings.Split(header, ",") {
		v, ok := strings.CutPrefix(strings.TrimSpace(part), "v1=")
		if !ok {
			continue
		}
		got, err := hex.DecodeString(v)
		if err == nil && hmac.Equal(got, want) {
			return true
		}
	}
	return false
}

// WebhookEvent is the part of a Webhooks v3 message the hub reads.
type WebhookEvent struct {
	Event struct {
		ID         string `json:"id"`
		EventType  string `json:"event_type"`
		OccurredAt string `json:"occurred_at"`
		// Agent is who or what initiated the event: a user_reference for a
		// person (summary is their name), or a service or integration.
		Agent *struct {
			ID      string `json:"id"`
			Type    string `json:"type"`
			Summary string `json:"summary"`
		} `json:"agent"`
		Data struct {
			Type        string `json:"type"`
			IncidentKey string `json:"incident_key"`
		} `json:"data"`
	} `json:"event"`
}
