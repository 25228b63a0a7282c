package alerting

import (
	"github.com/etlhub/etlhub/notifier/routing"
	"github.com/etlhub/etlhub/rules"
)

// signalLabels are a signal's labels for inhibit_rules: a posted alert's
// own, and alertname (also rule), severity, tenant, job, run_id, source and
// night (the job's night, so rules can pin the same one) where set.
func signalLabels(s *rules.Signal) map[string]string {
	out := map[string]string{}
	if m, ok := s.Details["labels"].(map[string]string); ok && s.Source == rules.ExternalSource {
		for k, v := range m {
			out[k] = v
		}
	}
	night := ""
	if !s.Night.IsZero() {
		night = s.Night.UTC().Format("2006-01-02T15:04Z")
	}
	for k, v := range map[string]string{"alertname": s.Rule, "rule": s.Rule, "severity": string(s.Severity), "tenant": s.Tenant,
		"job": s.Job, "run_id": s.RunID, "source": s.Source, "night": night} {
		if _, ok := out[k]; !ok && v != "" {
			out[k] = v
		}
	}
	return out
}

// Inhibitor applies notify.inhibit_rules: a source is an alert that fires or
// triggers this tick; nil (the built-in inhibitions) when none are set.
func Inhibitor(rs []routing.InhibitRule) rules.Inhibitor {
	if len(rs) == 0 {
		return nil
	}
	return func(signals []rules.Signal, firing func(string) bool) map[string]bool {
		var sources, targets []routing.Labeled
		for i := range signals {
			s := &signals[i]
			x := routing.Labeled{ID: s.Fingerprint, Labels: signalLabels(s)}
			targets = append(targets, x)
			if s.Level == rules.Trigger || firing(s.Fingerprint) {
				sources = append(sources, x)
			}
		}
		return routing.Inhibited(rs, sources, targets)
	}
}
