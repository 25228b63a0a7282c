package alerting

import (
	"context"
	"log/slog"
	"slices"
	"sort"
	"time"

	"github.com/etlhub/etlhub/model"
	"github.com/etlhub/etlhub/rules"
	"github.com/etlhub/etlhub/store"
	"github.com/prometheus/client_golang/prometheus"
)

// alertRules are the rules the engine can raise, for series that exist from
// the start (a rule that never fired reads 0, not absent).
func alertRules() []string {
	out := slices.Clone(rules.Names)
	sort.Strings(out)
	return out
}

var (
	severities   = []model.Severity{model.SeverityCritical, model.SeverityWarning, model.SeverityInfo}
	activeStates = []model.AlertState{model.AlertPending, model.AlertFiring}
	risks        = []model.Risk{model.RiskBreached, model.RiskPredicted, model.RiskAtRisk, model.RiskRunning, model.RiskOK, model.RiskIdle}
)

// stateSource is what the hub knows at this moment: the engine's alerts and
// job views.
type stateSource interface {
	Active() []model.Alert
	Views() map[model.JobKey]rules.View
}

// backlogSource reads the outbox's pending notifications.
type backlogSource interface {
	OutboxBacklog(ctx context.Context) ([]store.Backlog, error)
}

// jobLabel names a job in the per-job gauges: "job" is Prometheus's own
// target label, which would rename ours to exported_job on every scrape.
const jobLabel = "etl_job"

// stateCollector exposes what etlhub knows (alerts by state, each job's
// risk, breach probability and last success, the outbox backlog) as gauges
// read at scrape time, so they are never stale.
type stateCollector struct {
	state     stateSource
	backlog   backlogSource
	jobs      []model.JobKey
	receivers []string
	now       func() time.Time
	log       *slog.Logger

	alerts, pBreach, risk, lastSuccess, activeAlerts *prometheus.Desc
	outboxPending, outboxOldest, scrapeErr           *prometheus.Desc
}

func newStateCollector(cfg Config, state stateSource, backlog backlogSource, now func() time.Time, log *slog.Logger) *stateCollector {
	c := &stateCollector{state: state, backlog: backlog, now: now, log: log,
		alerts: prometheus.NewDesc("etlhub_alerts", "Active alerts by rule (alertname for alerts posted by Prometheus), severity and state (pending, firing).",
			[]string{"rule", "severity", "state"}, nil),
		pBreach: prometheus.NewDesc("etlhub_job_breach_probability", "Predicted probability that tonight's run of the job misses its deadline (0..1).",
			[]string{"tenant", jobLabel}, nil),
		risk: prometheus.NewDesc("etlhub_job_risk", "1 for the job's current risk (breached, predicted-breach, at-risk, running, ok, idle), 0 for the others.",
			[]string{"tenant", jobLabel, "risk"}, nil),
		lastSuccess: prometheus.NewDesc("etlhub_job_last_success_timestamp_seconds", "When the job last succeeded (Unix time); absent until a success is seen.",
			[]string{"tenant", jobLabel}, nil),
		activeAlerts: prometheus.NewDesc("etlhub_job_firing_alerts", "Firing alerts of the job.",
			[]string{"tenant", jobLabel}, nil),
		outboxPending: prometheus.NewDesc("etlhub_outbox_pending", "Notifications waiting for delivery (or a retry), by receiver.",
			[]string{"receiver"}, nil),
		outboxOldest: prometheus.NewDesc("etlhub_outbox_oldest_pending_seconds", "Age of the oldest notification waiting for delivery, by receiver (0 when none waits).",
			[]string{"receiver"}, nil),
		scrapeErr: prometheus.NewDesc("etlhub_state_scrape_error", "1 when the outbox backlog could not be read for this scrape.", nil, nil),
	}
	for _, j := range cfg.Jobs {
		c.jobs = append(c.jobs, model.JobKey{Tenant: j.Tenant, Job: j.Job})
	}
	c.receivers = append(c.receivers, cfg.Receivers...)
	return c
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.alerts, c.pBreach, c.risk, c.lastSuccess, c.activeAlerts, c.outboxPending, c.outboxOldest, c.scrapeErr} {
		ch <- d
	}
}

type alertKey struct{ rule, severity, state string }

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	counts := map[alertKey]int{}
	for _, r := range alertRules() {
		for _, sev := range severities {
			for _, st := range activeStates {
				counts[alertKey{r, string(sev), string(st)}] = 0
			}
		}
	}
	for _, a := range c.state.Active() {
		counts[alertKey{a.Rule, string(a.Severity), string(a.State)}]++
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.alerts, prometheus.GaugeValue, float64(n), k.rule, k.severity, k.state)
	}

	views := c.state.Views()
	for _, k := range c.jobs {
		v, seen := views[k]
		ch <- prometheus.MustNewConstMetric(c.pBreach, prometheus.GaugeValue, v.Prediction.PBreach, k.Tenant, k.Job)
		ch <- prometheus.MustNewConstMetric(c.activeAlerts, prometheus.GaugeValue, float64(v.Active), k.Tenant, k.Job)
		cur := v.Risk
		if !seen || cur == "" {
			cur = model.RiskIdle
		}
		for _, r := range risks {
			x := 0.0
			if r == cur {
				x = 1
			}
			ch <- prometheus.MustNewConstMetric(c.risk, prometheus.GaugeValue, x, k.Tenant, k.Job, string(r))
		}
		if !v.LastSuccess.IsZero() {
			ch <- prometheus.MustNewConstMetric(c.lastSuccess, prometheus.GaugeValue, float64(v.LastSuccess.UnixMilli())/1000, k.Tenant, k.Job)
		}
	}

	pending := map[string]store.Backlog{}
	for _, r := range c.receivers {
		pending[r] = store.Backlog{Receiver: r}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	bl, err := c.backlog.OutboxBacklog(ctx)
	failed := 0.0
	if err != nil {
		failed = 1
		c.log.Warn("reading the outbox backlog for /metrics failed", "error", err)
	}
	for _, b := range bl {
		pending[b.Receiver] = b
	}
	now := c.now()
	for r, b := range pending {
		age := 0.0
		if b.Pending > 0 && !b.Oldest.IsZero() {
			age = max(0, now.Sub(b.Oldest).Seconds())
		}
		ch <- prometheus.MustNewConstMetric(c.outboxPending, prometheus.GaugeValue, float64(b.Pending), r)
		ch <- prometheus.MustNewConstMetric(c.outboxOldest, prometheus.GaugeValue, age, r)
	}
	ch <- prometheus.MustNewConstMetric(c.scrapeErr, prometheus.GaugeValue, failed)
}
