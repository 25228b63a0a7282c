package app

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/internal/retry"
	"github.com/etlhub/etlhub/notifier"
	"github.com/etlhub/etlhub/notifier/email"
	"github.com/etlhub/etlhub/notifier/pagerduty"
	"github.com/etlhub/etlhub/notifier/routing"
	"github.com/etlhub/etlhub/notifier/slack"
	"github.com/etlhub/etlhub/notifier/webhook"
	"github.com/etlhub/etlhub/store"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// NotifyConfig says where alerts go.
type NotifyConfig struct {
	Receivers []ReceiverConfig `yaml:"receivers"`
	// Route is the routing tree, Alertmanager's route block: nested routes
	// with matchers, continue, group_by and the group and repeat intervals.
	Route *routing.RouteConfig `yaml:"route"`
	// TimeIntervals are named periods that routes mute or activate on.
	TimeIntervals []routing.TimeIntervalConfig `yaml:"time_intervals"`
	// InhibitRules replace the built-in inhibitions when set.
	InhibitRules []routing.InhibitRuleConfig `yaml:"inhibit_rules"`
	// Routes and DefaultReceiver are the older flat form: routes tried in
	// order, the first match wins unless it continues, else the default.
	Routes          []notifier.Route `yaml:"routes"`
	DefaultReceiver string           `yaml:"default_receiver"`
	Retry           NotifyRetry      `yaml:"retry"`
	// PagerDutyWebhookSecret verifies PagerDuty Webhooks v3 calls to
	// POST /api/v1/webhooks/pagerduty; without it the endpoint refuses all.
	PagerDutyWebhookSecret config.Secret `yaml:"pagerduty_webhook_secret"`
	// PagerDutyWebhookWindow is how far a webhook's occurred_at may be from
	// the hub's clock (default 5m): an older signed body is a replay.
	PagerDutyWebhookWindow time.Duration `yaml:"pagerduty_webhook_window"`
	// Digests are product owners' summaries, posted to Slack on a schedule.
	Digests []DigestConfig `yaml:"digests"`
	// Watchdog is a dead man's switch pinged while the hub is healthy.
	Watchdog *WatchdogConfig `yaml:"watchdog"`

	tree      *routing.Node
	intervals routing.Intervals
	inhibit   []routing.InhibitRule
}

// NotifyRetry is the delivery retry policy.
type NotifyRetry struct {
	Base   time.Duration `yaml:"base"`
	Max    time.Duration `yaml:"max"`
	MaxAge time.Duration `yaml:"max_age"` // give up on a notification this old
}

// ReceiverConfig is one receiver: exactly one of pagerduty, slack, webhook
// or email.
type ReceiverConfig struct {
	Name          string            `yaml:"name"`
	PagerDuty     *pagerduty.Config `yaml:"pagerduty"`
	Slack         *slack.Config     `yaml:"slack"`
	Webhook       *webhook.Config   `yaml:"webhook"`
	Email         *email.Config     `yaml:"email"`
	RatePerMinute float64           `yaml:"rate_per_minute"`
}

// kinds counts the receiver kinds configured on r (one is right).
func (r *ReceiverConfig) kinds() int {
	n := 0
	for _, set := range []bool{r.PagerDuty != nil, r.Slack != nil, r.Webhook != nil, r.Email != nil} {
		if set {
			n++
		}
	}
	return n
}

// Validate sets defaults and checks the section.
func (n *NotifyConfig) Validate(p *config.Problems, key string) {
	if n.Retry.Base == 0 {
		n.Retry.Base = 5 * time.Second
	}
	if n.Retry.Max == 0 {
		n.Retry.Max = 10 * time.Minute
	}
	if n.Retry.MaxAge == 0 {
		n.Retry.MaxAge = 24 * time.Hour
	}
	if n.PagerDutyWebhookWindow == 0 {
		n.PagerDutyWebhookWindow = pagerduty.DefaultWebhookWindow
	}
	if n.PagerDutyWebhookWindow < 10*time.Second || n.PagerDutyWebhookWindow > 24*time.Hour {
		p.Add(key+".pagerduty_webhook_window", "%v is outside 10s..24h", n.PagerDutyWebhookWindow)
	}
	if n.Watchdog != nil {
		n.Watchdog.Validate(p, key+".watchdog")
	}
	names := map[string]bool{}
	for i := range n.Receivers {
		r := &n.Receivers[i]
		k := fmt.Sprintf("%s.receivers[%d]", key, i)
		if r.Name == "" {
			p.Add(k+".name", "is required")
		} else if names[r.Name] {
			p.Add(k+".name", "%q is used twice", r.Name)
		}
		names[r.Name] = true
		switch {
		case r.kinds() != 1:
			p.Add(k, "needs exactly one of pagerduty, slack, webhook or email")
		case r.PagerDuty != nil:
			r.PagerDuty.Validate(p, k+".pagerduty")
			if r.RatePerMinute == 0 {
				r.RatePerMinute = 120 // PagerDuty's events limit per routing key
			}
		case r.Slack != nil:
			r.Slack.Validate(p, k+".slack")
			if r.RatePerMinute == 0 {
				r.RatePerMinute = 60 // about one message a second per channel
			}
		case r.Webhook != nil:
			r.Webhook.Validate(p, k+".webhook")
			if r.RatePerMinute == 0 {
				r.RatePerMinute = 600
			}
		case r.Email != nil:
			r.Email.Validate(p, k+".email")
			if r.RatePerMinute == 0 {
				r.RatePerMinute = 30 // mail servers throttle bursts
			}
		}
		if r.RatePerMinute < 0 {
			p.Add(k+".rate_per_minute", "must be positive")
		}
	}
	n.intervals = routing.CompileIntervals(n.TimeIntervals, p, key+".time_intervals")
	n.inhibit = routing.CompileInhibitRules(n.InhibitRules, p, key+".inhibit_rules")
	if n.Route != nil {
		// The tree replaces the flat form; both at once would be ambiguous.
		if len(n.Routes) > 0 {
			p.Add(key+".routes", "is the older flat form of notify.route: move each route under notify.route.routes (match and match_re work there too)")
		}
		if n.DefaultReceiver != "" {
			p.Add(key+".default_receiver", "is notify.route.receiver when notify.route is set: move it there")
		}
		ivs := map[string]bool{}
		for name := range n.intervals {
			ivs[name] = true
		}
		n.tree = routing.Compile(n.Route, p, key+".route", routing.Env{Receivers: names, Intervals: ivs})
	}
	for i := range n.Routes {
		n.Routes[i].Validate(p, fmt.Sprintf("%s.routes[%d]", key, i), names)
	}
	if n.DefaultReceiver != "" && !names[n.DefaultReceiver] {
		p.Add(key+".default_receiver", "%q is not a configured receiver", n.DefaultReceiver)
	}
	for i := range n.Digests {
		n.Digests[i].validate(p, fmt.Sprintf("%s.digests[%d]", key, i), n)
	}
	if len(n.Receivers) > 0 && n.Route == nil && len(n.Routes) == 0 && n.DefaultReceiver == "" {
		p.Add(key+".route", "no route and no default_receiver: nothing would be sent")
	}
}

// Router is the validated config's routing, as the hub routes alerts.
func (n *NotifyConfig) Router() *notifier.Router {
	return &notifier.Router{Routes: n.Routes, Default: n.DefaultReceiver, Tree: n.tree, Intervals: n.intervals}
}

func (n *NotifyConfig) receivers() []notifier.Receiver {
	var out []notifier.Receiver
	for _, r := range n.Receivers {
		rc := notifier.Receiver{Name: r.Name, Limit: rate.Limit(r.RatePerMinute / 60), Burst: max(1, int(r.RatePerMinute/60))}
		switch {
		case r.PagerDuty != nil:
			rc.Notifier = pagerduty.New(*r.PagerDuty)
			rc.Burst = 10
		case r.Webhook != nil:
			rc.Notifier = webhook.New(r.Name, *r.Webhook)
		case r.Email != nil:
			rc.Notifier = email.New(*r.Email)
		default:
			rc.Notifier = slack.New(*r.Slack)
		}
		out = append(out, rc)
	}
	return out
}

// newWorker delivers the outbox on the clock now (nil: the real one); the
// demo passes its simulated clock, so a notification is due when its night
// says, not when the wall clock does.
// It takes its section (notify) and, of the others, the dashboard's URL.
func newWorker(n *NotifyConfig, publicURL string, st *store.Store, log *slog.Logger, reg prometheus.Registerer, now func() time.Time) *notifier.Worker {
	m := notifier.NewMetrics(reg)
	recv := n.receivers()
	for _, r := range recv {
		m.Known(r.Name)
	}
	return notifier.NewWorker(st, recv, notifier.WorkerOptions{
		Policy: retry.Policy{Base: n.Retry.Base, Max: n.Retry.Max, Factor: 2, Jitter: 0.5},
		MaxAge: n.Retry.MaxAge, DashboardURL: publicURL, Log: log.With("part", "notifier"),
		Metrics: m, Now: now,
	})
}

// isPagerDuty reports whether a receiver is a PagerDuty one.
func (n *NotifyConfig) isPagerDuty(name string) bool {
	for _, r := range n.Receivers {
		if r.Name == name {
			return r.PagerDuty != nil
		}
	}
	return false
}
