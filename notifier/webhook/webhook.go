// Package webhook posts alert transitions as Alertmanager's webhook JSON
// (version 4), so tools that take Alertmanager's webhooks (karma, Grafana
// OnCall, Opsgenie and Teams bridges) take etlhub's. A body can be signed
// with HMAC-SHA256 so the receiver knows it came from this hub.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"time"

	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/model"
	"github.com/etlhub/etlhub/notifier"
)

// Headers of a signed delivery: the signature is "sha256=" and the hex
// HMAC-SHA256, keyed by the secret, of the timestamp, a dot and the body.
const (
	SignatureHeader = "X-Etlhub-Signature"
	TimestampHeader = "X-Etlhub-Timestamp"
)

// Config is one webhook receiver.
type Config struct {
	// URL is where the JSON is posted; a secret, since such URLs often
	// carry a token.
	URL config.Secret `yaml:"url"`
	// HMACSecret, when set, signs every body (SignatureHeader).
	HMACSecret config.Secret `yaml:"hmac_secret"`
	// BearerToken, when set, is sent as Authorization: Bearer.
	BearerToken config.Secret `yaml:"bearer_token"`
	// MaxAlerts caps the alerts in one body (0: all); the rest are counted
	// in truncatedAlerts.
	MaxAlerts int           `yaml:"max_alerts"`
	Timeout   time.Duration `yaml:"timeout"`
}

// Validate sets defaults and checks the section at key.
func (c *Config) Validate(p *config.Problems, key string) {
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	if u, err := url.Parse(c.URL.Value()); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		p.Add(key+".url", "is not an http(s) URL")
	}
	if c.HMACSecret != "" && len(c.HMACSecret.Value()) < 16 {
		p.Add(key+".hmac_secret", "must be at least 16 characters")
	}
	if c.MaxAlerts < 0 {
		p.Add(key+".max_alerts", "must not be negative")
	}
	if c.Timeout < 0 {
		p.Add(key+".timeout", "must not be negative")
	}
}

// Payload is Alertmanager's webhook body, version 4.
type Payload struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []Alert           `json:"alerts"`
}

// Alert is one alert of a Payload.
type Alert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// Labels are an alert's identifying labels in Alertmanager's terms:
// alertname is the rule.
func Labels(a model.Alert) map[string]string {
	l := map[string]string{"alertname": a.Rule, "severity": string(a.Severity)}
	for k, v := range map[string]string{"tenant": a.Tenant, "job": a.Job, "run_id": a.RunID, "source": a.Source} {
		if v != "" {
			l[k] = v
		}
	}
	return l
}

// Annotations are an alert's summary and details as strings.
func Annotations(a model.Alert, event model.TransitionKind) map[string]string {
	an := map[string]string{"summary": a.Summary}
	for k, v := range a.Details {
		switch x := v.(type) {
		case string:
			an[k] = x
		default:
			b, _ := json.Marshal(x)
			an[k] = string(b)
		}
	}
	if !a.Night.IsZero() {
		an["night"] = a.Night.UTC().Format(time.RFC3339)
	}
	if event != model.TransitionFiring && event != model.TransitionResolved {
		an["etlhub_event"] = string(event) // acknowledged: the status stays firing
	}
	if a.AckedBy != "" {
		an["acknowledged_by"] = a.AckedBy
	}
	return an
}

// Build makes the body for a message to receiver; dashboard links it.
func Build(m notifier.Message, receiver string, maxAlerts int) Payload {
	status := model.TransitionFiring
	if m.Event == model.TransitionResolved {
		status = model.TransitionResolved
	}
	alerts := m.Group
	if len(alerts) == 0 {
		alerts = []model.Alert{m.Alert}
	}
	p := Payload{Version: "4", Status: string(status), Receiver: receiver, ExternalURL: m.DashboardURL,
		GroupLabels: map[string]string{}, CommonAnnotations: map[string]string{}}
	p.GroupKey = m.GroupKey
	if p.GroupKey == "" {
		p.GroupKey = "{}:{fingerprint=" + strconv.Quote(m.Alert.Fingerprint) + "}"
	}
	for k, v := range notifier.GroupLabels(m.GroupKey) {
		p.GroupLabels[k] = v
	}
	if maxAlerts > 0 && len(alerts) > maxAlerts {
		p.TruncatedAlerts = len(alerts) - maxAlerts
		alerts = alerts[:maxAlerts]
	}
	for i, a := range alerts {
		x := Alert{Status: string(status), Labels: Labels(a), Annotations: Annotations(a, m.Event), Fingerprint: a.Fingerprint,
			StartsAt: a.FiredAt, GeneratorURL: m.DashboardURL}
		if x.StartsAt.IsZero() {
			x.StartsAt = a.PendingSince
		}
		if status == model.TransitionResolved {
			x.EndsAt = a.ResolvedAt
		}
		p.Alerts = append(p.Alerts, x)
		if i == 0 {
			p.CommonLabels = copyMap(x.Labels)
			p.CommonAnnotations = copyMap(x.Annotations)
			continue
		}
		intersect(p.CommonLabels, x.Labels)
		intersect(p.CommonAnnotations, x.Annotations)
	}
	return p
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func intersect(common, m map[string]string) {
	for k, v := range common {
		if m[k] != v {
			delete(common, k)
		}
	}
}

// Sign is the signature header's value for a body sent at ts.
func Sign(secret []byte, ts string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts))
	mac.Write([]byte("."))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify checks a signature header for a body and its timestamp header; a
// receiver written in Go can use it.
func Verify(secret []byte, ts string, body []byte, signature string) bool {
	return len(secret) > 0 && hmac.Equal([]byte(Sign(secret, ts, body)), []byte(signature))
}

// Notifier is a webhook receiver.
type Notifier struct {
	cfg    Config
	name   string
	client *http.Client
	now    func() time.Time
}

// New builds a receiver named name from a validated config.
func New(name string, c Config) *Notifier {
	return &Notifier{cfg: c, name: name, client: &http.Client{Timeout: c.Timeout}, now: time.Now}
}

// Notify posts the message: 2xx is delivered; 429, 408 and 5xx are retried
// (429 after Retry-After); other answers are refused for good.
func (n *Notifier) Notify(ctx context.Context, m notifier.Message) (string, error) {
	body, err := json.Marshal(Build(m, n.name, n.cfg.MaxAlerts))
	if err != nil {
		return "", &notifier.Error{Err: fmt.Errorf("webhook: %w", err)}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.cfg.URL.Value(), bytes.NewReader(body))
	if err != nil {
		return "", n.scrub(&notifier.Error{Err: fmt.Errorf("webhook: %w", err)})
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "etlhub")
	if n.cfg.BearerToken != "" {
		req.Header.Set("Authorization", "Bearer "+n.cfg.BearerToken.Value())
	}
	if n.cfg.HMACSecret != "" {
		ts := strconv.FormatInt(n.now().Unix(), 10)
		req.Header.Set(TimestampHeader, ts)
		req.Header.Set(SignatureHeader, Sign([]byte(n.cfg.HMACSecret.Value()), ts, body))
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return "", n.scrub(notifier.Transport(fmt.Errorf("webhook: %w", err)))
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 == 2 {
		return "", nil
	}
	return "", n.scrub(notifier.Classify(resp.StatusCode, resp.Header.Get("Retry-After"),
		fmt.Errorf("webhook: HTTP %d: %s", resp.StatusCode, notifier.Clip(string(snippet), 200))))
}

func (n *Notifier) scrub(err error) error {
	secrets := []string{n.cfg.URL.Value(), n.cfg.HMACSecret.Value(), n.cfg.BearerToken.Value()}
	if u, perr := url.Parse(n.cfg.URL.Value()); perr == nil {
		if p, ok := u.User.Password(); ok {
			secrets = append(secrets, p)
		}
		if u.RawQuery != "" {
			secrets = append(secrets, u.RawQuery)
		}
	}
	sort.Slice(secrets, func(i, j int) bool { return len(secrets[i]) > len(secrets[j]) })
	return notifier.Scrub(err, secrets...)
}
