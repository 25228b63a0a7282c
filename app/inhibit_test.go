package app

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/etlhub/etlhub/alerting"
	"github.com/etlhub/etlhub/model"
	"github.com/etlhub/etlhub/rules"
)

// builtinInhibitRules are the built-in inhibitions written as config (the
// README shows them).
const builtinInhibitRules = `  route: {receiver: slack}
  inhibit_rules:
    - source_matchers: [alertname="deadline-missed"]
      target_matchers: ['alertname=~"predicted-breach|retries-exhausted"']
      equal: [tenant, job, night]
    - source_matchers: [alertname="predicted-breach"]
      target_matchers: [alertname="retries-exhausted"]
      equal: [tenant, job, night]
    - source_matchers: [alertname="source-down"]
      target_matchers: ['alertname=~"stalled|freshness"']
      equal: [source]
`

func sig(rule, tenant, job, source string, night time.Time, lvl rules.Level) rules.Signal {
	return rules.Signal{Rule: rule, Severity: "critical", Fingerprint: strings.Join([]string{rule, tenant, job, source, night.Format("0102")}, "|"),
		Tenant: tenant, Job: job, Source: source, Night: night, Level: lvl}
}

func inhibitedOf(l *rules.Lifecycle) string {
	var out []string
	for _, a := range l.Active() {
		if a.Inhibited {
			out = append(out, a.Fingerprint)
		}
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

func firingOf(l *rules.Lifecycle) string {
	var out []string
	for _, a := range l.Active() {
		if a.State == model.AlertFiring {
			out = append(out, a.Fingerprint)
		}
	}
	return strings.Join(out, " ")
}

// The built-in inhibitions written as inhibit_rules inhibit the same alerts
// once their sources fire; other configured rules replace them.
func TestInhibitRulesReplaceTheBuiltIns(t *testing.T) {
	c, probs := parse(t, base+receiversDoc+builtinInhibitRules)
	if len(probs) != 0 {
		t.Fatalf("%+v", probs)
	}
	night := time.Date(2026, 9, 1, 7, 0, 0, 0, time.UTC)
	other := night.Add(24 * time.Hour)
	now := night.Add(2 * time.Hour)
	ticks := [][]rules.Signal{
		{sig(rules.RuleSourceDown, "", "", "importer", time.Time{}, rules.Trigger),
			sig(rules.RulePredictedBreach, "dade", "roster", "importer", night, rules.Trigger)},
		{sig(rules.RuleSourceDown, "", "", "importer", time.Time{}, rules.Trigger),
			sig(rules.RulePredictedBreach, "dade", "roster", "importer", night, rules.Trigger),
			sig(rules.RuleStalled, "dade", "roster", "importer", night, rules.Trigger),        // inhibited: its source is down
			sig(rules.RuleStalled, "dade", "grades", "sis", night, rules.Trigger),             // another source
			sig(rules.RuleRetriesExhaust, "dade", "roster", "importer", night, rules.Trigger), // the breach covers it
			sig(rules.RuleRetriesExhaust, "dade", "roster", "importer", other, rules.Trigger)},
		{sig(rules.RuleDeadlineMissed, "dade", "roster", "importer", night, rules.Trigger), // covers the breach now
			sig(rules.RulePredictedBreach, "dade", "roster", "importer", night, rules.Hold),
			sig(rules.RuleSourceDown, "", "", "importer", time.Time{}, rules.Trigger),
			sig(rules.RuleStalled, "dade", "roster", "importer", night, rules.Trigger)},
	}
	builtin, configured := rules.NewLifecycle(nil), rules.NewLifecycle(nil)
	configured.SetInhibitor(alerting.Inhibitor(c.Notify.inhibit))
	for i, sigs := range ticks {
		at := now.Add(time.Duration(i) * time.Minute)
		builtin.Step(sigs, at, nil)
		configured.Step(sigs, at, nil)
		if b, g := inhibitedOf(builtin), inhibitedOf(configured); b != g {
			t.Errorf("tick %d: built-in inhibits [%s], the same rules as config [%s]", i, b, g)
		}
		if b, g := firingOf(builtin), firingOf(configured); b != g {
			t.Errorf("tick %d: built-in fires [%s], configured [%s]", i, b, g)
		}
	}
	got := firingOf(configured)
	for fp, want := range map[string]bool{"stalled|dade|roster|importer|0901": false, "retries-exhausted|dade|roster|importer|0901": false,
		"retries-exhausted|dade|roster|importer|0902": true, "stalled|dade|grades|sis|0901": true} {
		if strings.Contains(got, fp) != want {
			t.Errorf("%s firing = %v, want %v (firing: %s)", fp, !want, want, got)
		}
	}
	if got := inhibitedOf(configured); !strings.Contains(got, "predicted-breach|dade|roster|importer") {
		t.Errorf("deadline-missed did not cover the breach: [%s]", got)
	}

	// A configured rule of its own: warnings of a tenant whose critical fires.
	c, _ = parse(t, base+receiversDoc+`  route: {receiver: slack}
  inhibit_rules:
    - {source_matchers: [severity=critical], target_matchers: [severity=warning], equal: [tenant]}
`)
	l := rules.NewLifecycle(nil)
	l.SetInhibitor(alerting.Inhibitor(c.Notify.inhibit))
	warn := sig(rules.RuleFilesLate, "dade", "roster", "importer", night, rules.Trigger)
	warn.Severity, warn.Fingerprint = "warning", "files-late|dade"
	warnB := warn
	warnB.Tenant, warnB.Fingerprint = "broward", "files-late|broward"
	crit := sig(rules.RuleFailed, "dade", "grades", "importer", night, rules.Trigger)
	l.Step([]rules.Signal{crit}, now, nil)
	trans, _ := l.Step([]rules.Signal{crit, warn, warnB}, now.Add(time.Minute), nil)
	if fmt.Sprint(len(trans)) != "1" || trans[0].Alert.Fingerprint != "files-late|broward" {
		t.Errorf("want only broward's warning to fire, got %+v", trans)
	}
	// Stalled is no longer inhibited by a down source: the rules replaced the built-ins.
	l.Step([]rules.Signal{sig(rules.RuleSourceDown, "", "", "importer", time.Time{}, rules.Trigger)}, now, nil)
	trans, _ = l.Step([]rules.Signal{sig(rules.RuleSourceDown, "", "", "importer", time.Time{}, rules.Trigger),
		sig(rules.RuleStalled, "x", "y", "importer", night, rules.Trigger)}, now.Add(2*time.Minute), nil)
	if len(trans) != 1 || trans[0].Alert.Rule != rules.RuleStalled {
		t.Errorf("configured rules replace the built-ins: %+v", trans)
	}
}
