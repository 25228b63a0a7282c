// Package hub wires the hub together: configuration, the store, collectors,
// the ingest path and the API. cmd/etlhub only parses flags and calls in here,
// so tests run the whole hub in-process.
package app

import (
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/etlhub/etlhub/alerting"
	"github.com/etlhub/etlhub/api"
	"github.com/etlhub/etlhub/collectors"
	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/model"
	"github.com/etlhub/etlhub/rules"
	"github.com/etlhub/etlhub/store"
)

// Config is the hub's whole configuration (etlhub.yaml).
type Config struct {
	// Listen is the API's address.
	Listen string `yaml:"listen"`
	// TrustedProxies are the reverse proxies (addresses or CIDRs) whose
	// X-Forwarded-For names the client in request logs; none by default.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// ShutdownGrace is how long requests in flight may finish after SIGTERM
	// (a second signal exits at once).
	ShutdownGrace time.Duration `yaml:"shutdown_grace"`
	// Log sets the level (debug, info, warn, error) and format (json, text).
	Log LogConfig `yaml:"log"`
	// PublicURL is where people reach the dashboard (links in pages and messages).
	PublicURL string                    `yaml:"public_url"`
	Store     store.Config              `yaml:"store"`
	Cluster   ClusterConfig             `yaml:"cluster"`
	Retention RetentionConfig           `yaml:"retention"`
	Ingest    api.IngestConfig          `yaml:"ingest"`
	Silences  api.SilencesConfig        `yaml:"silences"`
	Auth      api.AuthConfig            `yaml:"auth"`
	Rules     alerting.RulesConfig      `yaml:"rules"`
	Notify    NotifyConfig              `yaml:"notify"`
	Logs      collectors.LogsConfig     `yaml:"logs"`
	Sources   []collectors.SourceConfig `yaml:"sources"`
	Jobs      []model.JobSpec           `yaml:"jobs"`
	// Version is the binary's version (not read from the file): shown in
	// etlhub_build_info.
	Version string `yaml:"-"`
}

// scopeList checks a list of tenants that scopes something: present but
// empty would read as "no tenant" and mean "every tenant".
func scopeList(p *config.Problems, key string, tenants []string, hint string) {
	if tenants != nil && len(tenants) == 0 {
		p.Add(key, "an empty list would mean every tenant; name the tenants, or %s", hint)
	}
	for i, t := range tenants {
		if strings.TrimSpace(t) == "" {
			p.Add(fmt.Sprintf("%s[%d]", key, i), "is empty")
		}
	}
}

// Load reads and validates a config file.
func Load(file string) (*Config, error) {
	var c Config
	if err := config.Load(file, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// Validate sets defaults and checks every section.
func (c *Config) Validate(p *config.Problems) {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8080"
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		p.Add("listen", "%q is not host:port", c.Listen)
	}
	for i, tp := range c.TrustedProxies {
		if _, _, err := net.ParseCIDR(tp); err != nil && net.ParseIP(tp) == nil {
			p.Add(fmt.Sprintf("trusted_proxies[%d]", i), "%q is not an IP address or CIDR", tp)
		}
	}
	if c.ShutdownGrace == 0 {
		c.ShutdownGrace = 15 * time.Second
	}
	if c.ShutdownGrace < 0 || c.ShutdownGrace > 10*time.Minute {
		p.Add("shutdown_grace", "%v is outside 0s..10m", c.ShutdownGrace)
	}
	c.Log.Validate(p, "log")
	c.Store.Validate(p, "store")
	c.Cluster.Validate(p, "cluster")
	c.Retention.Validate(p, "retention")
	c.Ingest.Validate(p, "ingest")
	c.Silences.Validate(p, "silences")
	c.Rules.Validate(p, "rules")
	if w := c.Rules.Dependencies.Window; c.Retention.Measurements < w {
		p.Add("retention.measurements", "%v is shorter than rules.dependencies.window (%v): the baselines are learned from it", c.Retention.Measurements, w)
	}
	c.Notify.Validate(p, "notify")
	c.Logs.Validate(p, "logs")
	c.Auth.Validate(p, "auth")
	if len(c.Auth.Tokens) == 0 {
		p.Add("auth.tokens", "at least one token is required: the API has no anonymous access")
	}
	for i, t := range c.Auth.Tokens {
		scopeList(p, fmt.Sprintf("auth.tokens[%d].tenants", i), t.Tenants, "leave the key out for a token of every tenant")
	}
	for i, d := range c.Notify.Digests {
		scopeList(p, fmt.Sprintf("notify.digests[%d].tenants", i), d.Tenants, "leave the key out for a digest of every tenant")
	}
	names := map[string]bool{}
	for i := range c.Sources {
		k := fmt.Sprintf("sources[%d]", i)
		c.Sources[i].Validate(p, k)
		if names[c.Sources[i].Name] {
			p.Add(k+".name", "%q is used twice", c.Sources[i].Name)
		}
		names[c.Sources[i].Name] = true
		for rule, sev := range c.Sources[i].Severity {
			if !rules.IsDependencyRule(rule) {
				p.Add(k+".severity."+rule, "is not a rule of measurements (%s)", strings.Join(rules.DependencyRules(), ", "))
			} else if !sev.Valid() {
				p.Add(k+".severity."+rule, "%q is not critical, warning, info or off", sev)
			}
		}
	}
	jobs := map[string]bool{}
	for i := range c.Jobs {
		k := fmt.Sprintf("jobs[%d]", i)
		j := &c.Jobs[i]
		for rule := range j.Severity {
			if !rules.IsRule(rule) {
				p.Add(k+".severity."+rule, "is not a rule (%s)", strings.Join(rules.Names, ", "))
			}
		}
		if err := j.Compile(); err != nil {
			if se, ok := err.(*model.SpecError); ok {
				p.Add(k+"."+se.Field, "%s", se.Msg)
			} else {
				p.Add(k, "%v", err)
			}
			continue
		}
		if jobs[j.Key()] {
			p.Add(k, "job %q of tenant %q is defined twice", j.Job, j.Tenant)
		}
		jobs[j.Key()] = true
		if j.Source != "" && !names[j.Source] {
			p.Add(k+".source", "%q is not a configured source", j.Source)
		}
	}
}
