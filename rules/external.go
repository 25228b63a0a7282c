package rules

import (
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"strings"
	"time"

	"github.com/etlhub/etlhub/model"
)

// ExternalSource is the source of alerts posted by other systems
// (Prometheus, through POST /api/v2/alerts).
const ExternalSource = "prometheus"

// externalPrefix starts the fingerprint of every posted alert.
const externalPrefix = "external|"

// External is an alert posted in Alertmanager's format. It is active until
// EndsAt; the poster re-posts it to keep it active.
type External struct {
	Labels       map[string]string
	Annotations  map[string]string
	StartsAt     time.Time
	EndsAt       time.Time
	GeneratorURL string
}

// IsExternal reports whether an alert was posted by another system.
func IsExternal(a *model.Alert) bool { return strings.HasPrefix(a.Fingerprint, externalPrefix) }

// ExternalFingerprint identifies a posted alert by its label set.
func ExternalFingerprint(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		h.Write([]byte(k + "\x00" + labels[k] + "\x00"))
	}
	return externalPrefix + hex.EncodeToString(h.Sum(nil)[:12])
}

func (x *External) signal() Signal {
	sev := model.Severity(x.Labels["severity"])
	if sev != model.SeverityCritical && sev != model.SeverityWarning && sev != model.SeverityInfo {
		sev = model.SeverityWarning
	}
	sum := x.Annotations["summary"]
	if sum == "" {
		sum = x.Annotations["description"]
	}
	if sum == "" {
		sum = x.Labels["alertname"]
	}
	return Signal{Rule: x.Labels["alertname"], Severity: sev, Fingerprint: ExternalFingerprint(x.Labels),
		Tenant: x.Labels["tenant"], Job: x.Labels["etl_job"], Source: ExternalSource, Level: Trigger, Summary: sum,
		Details: map[string]any{"labels": x.Labels, "annotations": x.Annotations, "ends_at": x.EndsAt.UTC().Format(time.RFC3339),
			"starts_at": x.StartsAt.UTC().Format(time.RFC3339), "generator_url": x.GeneratorURL}}
}

// externalFromAlert rebuilds a posted alert from its stored form (restart).
func externalFromAlert(a *model.Alert) (External, bool) {
	x := External{Labels: stringMap(a.Details["labels"]), Annotations: stringMap(a.Details["annotations"])}
	if len(x.Labels) == 0 {
		return x, false
	}
	if s, ok := a.Details["ends_at"].(string); ok {
		x.EndsAt, _ = time.Parse(time.RFC3339, s)
	}
	if s, ok := a.Details["starts_at"].(string); ok {
		x.StartsAt, _ = time.Parse(time.RFC3339, s)
	}
	x.GeneratorURL, _ = a.Details["generator_url"].(string)
	return x, !x.EndsAt.IsZero()
}

// ExternalLabels are a posted alert's own labels (nil for ours).
func ExternalLabels(a *model.Alert) map[string]string {
	if !IsExternal(a) {
		return nil
	}
	return stringMap(a.Details["labels"])
}

func stringMap(v any) map[string]string {
	switch m := v.(type) {
	case map[string]string:
		return m
	case map[string]any:
		out := make(map[string]string, len(m))
		for k, x := range m {
			if s, ok := x.(string); ok {
				out[k] = s
			}
		}
		return out
	}
	return nil
}

// PostExternal takes alerts posted at now: each is active until its EndsAt.
func (e *Engine) PostExternal(xs []External, now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.external == nil {
		e.external = map[string]External{}
	}
	for _, x := range xs {
		e.external[ExternalFingerprint(x.Labels)] = x
	}
}

// externalSignals are the posted alerts still active at now; expired ones
// are forgotten (their alerts resolve).
func (e *Engine) externalSignals(now time.Time) []Signal {
	var out []Signal
	fps := make([]string, 0, len(e.external))
	for fp := range e.external {
		fps = append(fps, fp)
	}
	sort.Strings(fps)
	for _, fp := range fps {
		x := e.external[fp]
		if !x.EndsAt.After(now) {
			delete(e.external, fp)
			continue
		}
		out = append(out, x.signal())
	}
	return out
}
