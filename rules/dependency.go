package rules

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/etlhub/etlhub/model"
)

// Dependency rules: they judge what probes measured of the dependencies the
// imports share (Redis, MongoDB, SFTP, the hub's store, queues), one subject
// at a time. Their alerts are about shared infrastructure: scope shared
// (unless the subject is one tenant's), no tenant or job.
const (
	// RuleDependencyDown: the latest probes could not reach the subject.
	RuleDependencyDown = "dependency-down"
	// RuleDependencyDegraded: the subject answers, but far slower or with
	// far more errors than its own learned baseline, or saturated (memory
	// or connections near the limit, connections refused, keys evicted, a
	// caller's breaker open).
	RuleDependencyDegraded = "dependency-degraded"
)

// DependencyParams tune the dependency rules. Each condition has a trigger
// level and a lower clear level (hysteresis): a degraded alert starts at the
// trigger and is held until the value falls below the clear level; the
// rules' for and keep_firing_for (rules.timings) add the time side.
type DependencyParams struct {
	// Window is how much of a subject's history is kept for its baseline;
	// MaxSamples bounds it per subject.
	Window     time.Duration
	MaxSamples int
	// Stale: a subject whose latest measurement is older than this is not
	// judged (its probe stopped; source-down speaks for the probe).
	Stale time.Duration
	// Recent is how many of the latest measurements are "now": their median
	// is compared with the baseline, so one slow probe does not trigger, and
	// a down alert clears only once all of them are up.
	Recent int
	// MinBaseline is how many earlier measurements a baseline needs.
	MinBaseline int
	// Latency (latency_ms, p95_ms): triggered at LatencyTrigger times the
	// baseline's median and at least LatencyMADs robust deviations
	// (1.4826·MAD) and LatencyFloorMs above it; held at LatencyClear times.
	LatencyTrigger, LatencyClear float64
	LatencyMADs                  float64
	LatencyFloorMs               float64
	// ErrorRate (error_rate, with at least MinCalls calls): triggered at
	// ErrorRateTrigger above the baseline's median, held at ErrorRateClear.
	ErrorRateTrigger, ErrorRateClear float64
	MinCalls                         float64
	// Saturation (memory_used_ratio, connections_used_ratio): triggered at
	// SaturationTrigger, held at SaturationClear.
	SaturationTrigger, SaturationClear float64
	// Queue tunes queue-backlog and dead-letters.
	Queue QueueParams
}

// DefaultDependencyParams: a day of history, three probes make "now", a
// baseline of at least 12 probes; latency 4× its usual (and 20 ms more)
// triggers, under 2× clears; 90% memory or connections triggers, under 80%
// clears; 20% errors trigger, under 5% clear.
func DefaultDependencyParams() DependencyParams {
	return DependencyParams{Window: 24 * time.Hour, MaxSamples: 5000, Stale: 15 * time.Minute, Recent: 3, MinBaseline: 12,
		LatencyTrigger: 4, LatencyClear: 2, LatencyMADs: 6, LatencyFloorMs: 20,
		ErrorRateTrigger: 0.2, ErrorRateClear: 0.05, MinCalls: 10,
		SaturationTrigger: 0.9, SaturationClear: 0.8, Queue: DefaultQueueParams()}
}

// DependencySeverities are the default severities of the rules that judge
// measurements (the dependency and queue rules; a queue's like a job's
// stalled and failed); a source's severity map overrides them
// (sources[].severity).
var DependencySeverities = map[string]model.Severity{
	RuleDependencyDown:     model.SeverityCritical,
	RuleDependencyDegraded: model.SeverityWarning,
	RuleQueueBacklog:       model.SeverityWarning,
	RuleDeadLetters:        model.SeverityWarning,
}

// DependencyRules lists the rules that judge measurements, sorted.
func DependencyRules() []string {
	out := make([]string, 0, len(DependencySeverities))
	for r := range DependencySeverities {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

// IsDependencyRule reports whether rule judges measurements.
func IsDependencyRule(rule string) bool { _, ok := DependencySeverities[rule]; return ok }

// Baseline is a robust summary of a value's history.
type Baseline struct {
	Median float64 `json:"median"`
	// MAD is the median absolute deviation from the median.
	MAD float64 `json:"mad"`
	N   int     `json:"n"`
}

// LearnBaseline is the median and MAD of values.
func LearnBaseline(values []float64) Baseline {
	if len(values) == 0 {
		return Baseline{}
	}
	med := quantile(values, 0.5)
	dev := make([]float64, len(values))
	for i, v := range values {
		dev[i] = math.Abs(v - med)
	}
	return Baseline{Median: med, MAD: quantile(dev, 0.5), N: len(values)}
}

// DependencySignals judges one subject's history (in at order, oldest
// first) at now: dependency-down when the latest probes failed,
// dependency-degraded when its latest probes are far from its baseline or
// saturated. severity gives a rule's severity for the subject's source.
// Pure: the same history and now give the same signals.
func DependencySignals(hist []model.Measurement, p DependencyParams, severity func(source, rule string) model.Severity, now time.Time) []Signal {
	if len(hist) == 0 {
		return nil
	}
	last := hist[len(hist)-1]
	if now.Sub(last.At) > p.Stale || last.At.After(now.Add(model.MaxSkew)) {
		return nil
	}
	// Only what is known by now counts.
	for len(hist) > 0 && hist[len(hist)-1].At.After(now) {
		hist = hist[:len(hist)-1]
	}
	if len(hist) == 0 {
		return nil
	}
	last = hist[len(hist)-1]
	recentN := max(1, p.Recent)
	recent := hist[max(0, len(hist)-recentN):]
	scope := model.ScopeShared
	if last.Tenant != "" {
		scope = ""
	}
	mk := func(rule string, lvl Level, summary string, details map[string]any) Signal {
		sev := DependencySeverities[rule]
		if severity != nil {
			sev = severity(last.Source, rule)
		}
		var affected []model.Affected
		if last.Tenant != "" && last.Job != "" {
			affected = []model.Affected{{Tenant: last.Tenant, Job: last.Job}}
		}
		details["subject"], details["kind"] = last.Subject, string(last.Kind)
		return Signal{Rule: rule, Severity: sev, Fingerprint: fingerprint(rule, last.Subject), Tenant: last.Tenant,
			Job: last.Job, Source: last.Source, Level: lvl, Summary: summary, Details: details, Scope: scope, Affected: affected}
	}
	var out []Signal
	// dependency-down: the latest probe failed (trigger); any of the recent
	// ones failed (hold: recovery needs Recent good probes in a row).
	downs := 0
	for _, m := range recent {
		if !m.Up {
			downs++
		}
	}
	if !last.Up || downs > 0 {
		lvl := Hold
		if !last.Up {
			lvl = Trigger
		}
		since := last.At
		for i := len(hist) - 1; i >= 0 && !hist[i].Up; i-- {
			since = hist[i].At
		}
		lastErr := last.Error
		if last.Up {
			for _, m := range recent {
				if !m.Up {
					lastErr = m.Error
				}
			}
		}
		sum := fmt.Sprintf("%s %s is down since %s: %s; %s", kindName(last.Kind), last.Subject, hhmmUTC(since),
			model.Clip(lastErr, 300), downAdvice(last.Kind))
		if lvl == Hold {
			sum = fmt.Sprintf("%s %s answers again (%d of the last %d probes failed): %s", kindName(last.Kind), last.Subject,
				downs, len(recent), model.Clip(lastErr, 300))
		}
		out = append(out, mk(RuleDependencyDown, lvl, sum, map[string]any{"since": since, "error": lastErr,
			"failed_recent": downs, "recent": len(recent)}))
	}
	if !last.Up {
		return dropOff(out)
	}
	// dependency-degraded: from the recent probes that were up.
	var ups []model.Measurement
	for _, m := range recent {
		if m.Up {
			ups = append(ups, m)
		}
	}
	base := hist[:len(hist)-len(recent)]
	if cut := last.At.Add(-p.Window); len(base) > 0 && base[0].At.Before(cut) {
		i := sort.Search(len(base), func(i int) bool { return !base[i].At.Before(cut) })
		base = base[i:]
	}
	var reasons []reason
	for _, name := range []string{model.ValueP95Ms, model.ValueLatencyMs} {
		if r, ok := latencyReason(name, ups, base, hist, p); ok {
			reasons = append(reasons, r)
		}
	}
	if r, ok := errorRateReason(ups, base, hist, p); ok {
		reasons = append(reasons, r)
	}
	for _, name := range []string{model.ValueMemoryUsedRatio, model.ValueConnectionsUsedRatio} {
		if r, ok := saturationReason(name, ups, hist, p); ok {
			reasons = append(reasons, r)
		}
	}
	for _, name := range []string{model.ValueRejectedConnections, model.ValueEvictionsPerS, model.ValueBreakerOpen, model.ValueThrottles} {
		if r, ok := eventReason(name, ups, hist); ok {
			reasons = append(reasons, r)
		}
	}
	if len(reasons) == 0 {
		return dropOff(out)
	}
	// The strongest reason leads: triggers before holds, then by how far
	// past its trigger it is.
	sort.SliceStable(reasons, func(i, j int) bool {
		if reasons[i].level != reasons[j].level {
			return reasons[i].level > reasons[j].level
		}
		return reasons[i].score > reasons[j].score
	})
	lvl := reasons[0].level
	texts := make([]string, len(reasons))
	var rd []map[string]any
	for i, r := range reasons {
		texts[i] = r.text
		rd = append(rd, map[string]any{"value": r.name, "now": r.now, "baseline": r.base, "since": r.since,
			"level": levelName(r.level)})
	}
	sum := fmt.Sprintf("%s %s %s since %s; %s", kindName(last.Kind), last.Subject, texts[0], hhmmUTC(reasons[0].since),
		advice(last.Kind, reasons[0].name))
	if len(texts) > 1 {
		sum += " (also: " + strings.Join(texts[1:], "; ") + ")"
	}
	out = append(out, mk(RuleDependencyDegraded, lvl, sum, map[string]any{"reasons": rd, "values": last.Values}))
	return dropOff(out)
}

func dropOff(s []Signal) []Signal {
	out := s[:0]
	for _, x := range s {
		if x.Severity != model.SeverityOff {
			out = append(out, x)
		}
	}
	return out
}

// reason is one condition a degraded subject meets.
type reason struct {
	name      string
	level     Level
	score     float64 // how far past its trigger (1: at it)
	now, base float64
	since     time.Time
	text      string
}

func levelName(l Level) string {
	if l == Trigger {
		return "trigger"
	}
	return "hold"
}

// values are the named values of ms that were measured.
func values(ms []model.Measurement, name string, up bool) []float64 {
	var out []float64
	for i := range ms {
		if up && !ms[i].Up {
			continue
		}
		if v, ok := ms[i].Values[name]; ok {
			out = append(out, v)
		}
	}
	return out
}

// since walks back from the newest measurement while hold(value) is true
// and returns the earliest such measurement's time.
func since(hist []model.Measurement, name string, hold func(float64) bool) time.Time {
	var t time.Time
	for i := len(hist) - 1; i >= 0; i-- {
		v, ok := hist[i].Values[name]
		if !hist[i].Up || !ok || !hold(v) {
			if t.IsZero() {
				t = hist[i].At
			}
			break
		}
		t = hist[i].At
	}
	return t
}

func latencyReason(name string, ups, base, hist []model.Measurement, p DependencyParams) (reason, bool) {
	cur := values(ups, name, true)
	if len(cur) == 0 {
		return reason{}, false
	}
	bv := values(base, name, true)
	if len(bv) < p.MinBaseline {
		return reason{}, false
	}
	b := LearnBaseline(bv)
	now := quantile(cur, 0.5)
	// A floor under the median: a sub-millisecond baseline would make any
	// blip look like a factor.
	med := math.Max(b.Median, 0.5)
	spread := p.LatencyMADs * 1.4826 * b.MAD
	trig := func(v float64) bool {
		return v >= p.LatencyTrigger*med && v-b.Median >= math.Max(p.LatencyFloorMs, spread)
	}
	hold := func(v float64) bool { return v >= p.LatencyClear*med && v-b.Median >= p.LatencyFloorMs/2 }
	lvl := Level(0)
	switch {
	case trig(now):
		lvl = Trigger
	case hold(now):
		lvl = Hold
	default:
		return reason{}, false
	}
	what := "latency"
	if name == model.ValueP95Ms {
		what = "p95 latency"
	}
	return reason{name: name, level: lvl, score: now / (p.LatencyTrigger * med), now: now, base: b.Median,
		since: since(hist, name, hold),
		text:  fmt.Sprintf("%s %.0f× its usual (%s vs %s)", what, now/med, ms(now), ms(b.Median))}, true
}

func errorRateReason(ups, base, hist []model.Measurement, p DependencyParams) (reason, bool) {
	var cur []float64
	for _, m := range ups {
		v, ok := m.Values[model.ValueErrorRate]
		if c, has := m.Values[model.ValueCalls]; ok && (!has || c >= p.MinCalls) {
			cur = append(cur, v)
		}
	}
	if len(cur) == 0 {
		return reason{}, false
	}
	usual := 0.0
	if bv := values(base, model.ValueErrorRate, true); len(bv) >= p.MinBaseline {
		usual = LearnBaseline(bv).Median
	}
	now := quantile(cur, 0.5)
	trig := func(v float64) bool { return v-usual >= p.ErrorRateTrigger }
	hold := func(v float64) bool { return v-usual >= p.ErrorRateClear }
	lvl := Level(0)
	switch {
	case trig(now):
		lvl = Trigger
	case hold(now):
		lvl = Hold
	default:
		return reason{}, false
	}
	return reason{name: model.ValueErrorRate, level: lvl, score: (now - usual) / p.ErrorRateTrigger, now: now, base: usual,
		since: since(hist, model.ValueErrorRate, hold),
		text:  fmt.Sprintf("%.0f%% of calls failing (usually %.0f%%)", 100*now, 100*usual)}, true
}

func saturationReason(name string, ups, hist []model.Measurement, p DependencyParams) (reason, bool) {
	cur := values(ups, name, true)
	if len(cur) == 0 {
		return reason{}, false
	}
	now := quantile(cur, 0.5)
	hold := func(v float64) bool { return v >= p.SaturationClear }
	lvl := Level(0)
	switch {
	case now >= p.SaturationTrigger:
		lvl = Trigger
	case hold(now):
		lvl = Hold
	default:
		return reason{}, false
	}
	what := "memory"
	if name == model.ValueConnectionsUsedRatio {
		what = "connections"
	}
	return reason{name: name, level: lvl, score: now / p.SaturationTrigger, now: now, base: p.SaturationTrigger,
		since: since(hist, name, hold),
		text:  fmt.Sprintf("%s at %.0f%% of its limit", what, 100*now)}, true
}

// eventReason: refused connections, evictions, an open breaker or Lambda
// throttles in the latest probe trigger; in any of the recent ones, hold.
func eventReason(name string, ups, hist []model.Measurement) (reason, bool) {
	if len(ups) == 0 {
		return reason{}, false
	}
	latest, _ := ups[len(ups)-1].Values[name]
	var anyV float64
	for _, m := range ups {
		anyV = math.Max(anyV, m.Values[name])
	}
	lvl := Level(0)
	switch {
	case latest > 0 && (name != model.ValueBreakerOpen || latest >= 1):
		lvl = Trigger
	case anyV > 0:
		lvl = Hold
	default:
		return reason{}, false
	}
	v := math.Max(latest, anyV)
	var text string
	switch name {
	case model.ValueRejectedConnections:
		text = fmt.Sprintf("refused %.0f connections", v)
	case model.ValueEvictionsPerS:
		text = fmt.Sprintf("evicting %.1f keys/s", v)
	case model.ValueThrottles:
		text = fmt.Sprintf("throttled %.0f invocations", v)
	default:
		text = "its callers' circuit breaker is open"
		if v < 1 {
			text = "its callers' circuit breaker is half-open"
		}
	}
	return reason{name: name, level: lvl, score: 1, now: v, since: since(hist, name, func(x float64) bool { return x > 0 }),
		text: text}, true
}

func ms(v float64) string {
	if v < 10 {
		return fmt.Sprintf("%.1f ms", v)
	}
	return fmt.Sprintf("%.0f ms", v)
}

func hhmmUTC(t time.Time) string {
	if t.IsZero() {
		return "?"
	}
	return t.UTC().Format("15:04") + " UTC"
}

func kindName(k model.DependencyKind) string {
	switch k {
	case model.KindRedis:
		return "Redis"
	case model.KindMongoDB:
		return "MongoDB"
	case model.KindSFTP:
		return "SFTP"
	case model.KindStore:
		return "The hub's store"
	case model.KindSQS:
		return "SQS"
	case model.KindLambda:
		return "Lambda"
	}
	return strings.ToUpper(string(k))
}

func downAdvice(k model.DependencyKind) string {
	switch k {
	case model.KindSFTP:
		return "check the SFTP server (sshd running, MaxStartups, disk) and the network to it first"
	case model.KindStore:
		return "check the hub's database (disk, connections) first: alerts are not being saved"
	}
	return "check the server is running and reachable from the importer first"
}

// advice is what to do first about a degraded subject's leading reason.
func advice(k model.DependencyKind, value string) string {
	switch value {
	case model.ValueMemoryUsedRatio:
		return "find what fills it (large keys, queues not drained) or raise maxmemory before writes fail"
	case model.ValueConnectionsUsedRatio:
		return "look for a connection leak or too many workers, or raise the connection limit"
	case model.ValueRejectedConnections:
		if k == model.KindSFTP {
			return "sshd refuses new logins (MaxStartups): too many parallel transfers; lower the importer's concurrency or raise MaxStartups"
		}
		return "clients are refused (maxclients): look for a connection leak or raise the limit"
	case model.ValueEvictionsPerS:
		return "keys are being evicted (locks and queues lost): raise maxmemory or drain what fills it"
	case model.ValueThrottles:
		return "invocations are refused (concurrency limit): raise its reserved concurrency or the account's limit, or slow its callers"
	case model.ValueBreakerOpen, model.ValueErrorRate:
		return "calls are failing: check the server's logs and load first"
	}
	switch k {
	case model.KindMongoDB:
		return "check its slow operations (db.currentOp()) and what else loads it first"
	case model.KindRedis:
		return "check its slow log and blocked clients first"
	case model.KindSFTP:
		return "check the SFTP server's load and disk first"
	}
	return "check what else loads it first"
}
