package app

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/etlhub/etlhub/collectors"
	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/internal/retry"
	"github.com/etlhub/etlhub/model"
	"github.com/etlhub/etlhub/notifier"
	"github.com/etlhub/etlhub/notifier/slack"
	"github.com/etlhub/etlhub/store"
	"github.com/robfig/cron/v3"
)

// DigestConfig is a product owners' Slack digest on a schedule.
type DigestConfig struct {
	Name     string `yaml:"name"`
	Receiver string `yaml:"receiver"` // a Slack receiver
	// Schedule is 5-field cron in Timezone, e.g. "30 7 * * *".
	Schedule string   `yaml:"schedule"`
	Timezone string   `yaml:"timezone"`
	Tenants  []string `yaml:"tenants"` // the group of tenants; empty: all
	// Window is how far back the digest looks (default 24h).
	Window time.Duration `yaml:"window"`
}

func (d *DigestConfig) validate(p *config.Problems, key string, n *NotifyConfig) {
	if d.Name == "" {
		p.Add(key+".name", "is required")
	}
	ok := false
	for _, r := range n.Receivers {
		ok = ok || (r.Name == d.Receiver && r.Slack != nil)
	}
	if !ok {
		p.Add(key+".receiver", "%q is not a configured Slack receiver", d.Receiver)
	}
	if d.Timezone == "" {
		d.Timezone = "UTC"
	}
	if _, err := time.LoadLocation(d.Timezone); err != nil {
		p.Add(key+".timezone", "%q is not an IANA time zone", d.Timezone)
	} else if _, err := model.ParseCron("CRON_TZ=" + d.Timezone + " " + d.Schedule); err != nil {
		p.Add(key+".schedule", "%q is not a 5-field cron expression: %v", d.Schedule, err)
	}
	if d.Window == 0 {
		d.Window = 24 * time.Hour
	}
	if d.Window < time.Hour || d.Window > 31*24*time.Hour {
		p.Add(key+".window", "%v is outside 1h..744h", d.Window)
	}
}

// digests posts every configured digest on its schedule: a service whose
// sends run on its context, so stopping the hub cancels a digest in flight
// instead of waiting out its timeout.
type digests struct {
	cfg    digestsConfig
	st     *store.Store
	log    *slog.Logger
	now    func() time.Time
	cron   *cron.Cron
	cancel context.CancelFunc
}

// digestsConfig is what the digests take: their section (notify.digests)
// and, of the others, the Slack receivers they post to, the jobs they
// report on and the dashboard's URL.
type digestsConfig struct {
	Digests   []DigestConfig
	Slack     map[string]*slack.Config // by receiver name
	Jobs      []model.JobSpec
	PublicURL string
}

// digests is the digests' part of the config.
func (c *Config) digests() digestsConfig {
	d := digestsConfig{Digests: c.Notify.Digests, Slack: map[string]*slack.Config{}, Jobs: c.Jobs, PublicURL: c.PublicURL}
	for _, r := range c.Notify.Receivers {
		if r.Slack != nil {
			d.Slack[r.Name] = r.Slack
		}
	}
	return d
}

func newDigests(cfg digestsConfig, st *store.Store, log *slog.Logger, now func() time.Time) *digests {
	return &digests{cfg: cfg, st: st, log: log.With("part", "digest"), now: now,
		cron: cron.New(cron.WithParser(model.Cron), cron.WithChain(cron.Recover(collectors.CronLogger{L: log}), cron.SkipIfStillRunning(collectors.CronLogger{L: log})))}
}

func (d *digests) Name() string { return "digests" }

func (d *digests) Start(ctx context.Context) error {
	ctx, d.cancel = context.WithCancel(ctx)
	for i := range d.cfg.Digests {
		dc := d.cfg.Digests[i]
		var sc slack.Config
		if r := d.cfg.Slack[dc.Receiver]; r != nil {
			sc = *r
		}
		n := slack.New(sc)
		if _, err := d.cron.AddFunc("CRON_TZ="+dc.Timezone+" "+dc.Schedule, func() {
			sctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
			defer cancel()
			if err := d.send(sctx, dc, n, d.now().UTC()); err != nil {
				d.log.Error("digest not sent", "digest", dc.Name, "error", err)
			}
		}); err != nil {
			return fmt.Errorf("digest %q: %w", dc.Name, err)
		}
	}
	d.cron.Start()
	return nil
}

func (d *digests) Stop() {
	if d.cancel != nil {
		d.cancel()
	}
	<-d.cron.Stop().Done()
}

// send builds the digest for the window ending now and posts it, retrying
// a few times on errors worth retrying.
func (d *digests) send(ctx context.Context, dc DigestConfig, n *slack.Notifier, now time.Time) error {
	from := now.Add(-dc.Window)
	f := store.Filter{Tenants: dc.Tenants}
	runs, err := d.st.RunsBetween(ctx, from.Add(-48*time.Hour), now, f)
	if err != nil {
		return err
	}
	prev, err := d.st.RunsBetween(ctx, from.AddDate(0, 0, -7).Add(-48*time.Hour), now.AddDate(0, 0, -7), f)
	if err != nil {
		return err
	}
	firings, err := d.st.FiringsBetween(ctx, from, now)
	if err != nil {
		return err
	}
	tenants := map[string]bool{}
	for _, t := range dc.Tenants {
		tenants[t] = true
	}
	specs := d.cfg.Jobs[:0:0]
	for _, s := range d.cfg.Jobs {
		if len(tenants) == 0 || tenants[s.Tenant] {
			specs = append(specs, s)
		}
	}
	kept := firings[:0]
	for _, f := range firings {
		if len(tenants) == 0 || tenants[f.Alert.Tenant] {
			kept = append(kept, f)
		}
	}
	dg := notifier.BuildDigest(dc.Name, specs, runs, prev, kept, from, now)
	dg.DashboardURL = d.cfg.PublicURL
	policy := retry.Policy{Base: 10 * time.Second, Max: time.Minute, Factor: 2, Jitter: 0.5}
	for attempt := 1; ; attempt++ {
		err = n.PostDigest(ctx, &dg)
		var ne *notifier.Error
		if err == nil || attempt == 4 || !asRetry(err, &ne) {
			break
		}
		wait := policy.Delay(attempt, rand.Float64())
		if ne.RetryAfter > wait {
			wait = ne.RetryAfter
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
	if err == nil {
		d.log.Info("digest sent", "digest", dc.Name, "nights", dg.Nights, "on_time", dg.OnTime)
	}
	return err
}

func asRetry(err error, ne **notifier.Error) bool {
	e, ok := err.(*notifier.Error)
	if !ok || !e.Retry {
		return false
	}
	*ne = e
	return true
}
