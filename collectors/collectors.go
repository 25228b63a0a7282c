// Package collectors pulls run statuses from status sources on a schedule and
// turns them into observations. One interface, one registry of kinds; the
// Runner schedules every configured source on its own cron with a timeout per
// call, backoff after failures and health recorded after every attempt.
package collectors

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	awsc "github.com/etlhub/etlhub/collectors/aws"
	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/internal/redact"
	"github.com/etlhub/etlhub/model"
)

// Collector reads one source once.
type Collector interface {
	// Collect returns the observations the source reports now. An error means
	// the source could not be read at all; nothing of that attempt is stored.
	Collect(ctx context.Context, now time.Time) (Result, error)
}

// Result is what one collection read.
type Result struct {
	Observations []model.Observation
	// Measurements are what a probe saw of a dependency or a queue (the
	// contract: model.Measurement). A probe that cannot reach its
	// dependency returns its Up=false measurement and the error: the
	// measurement is stored (dependency-down reads it) and the attempt
	// counts as failed (source health, backoff).
	Measurements []model.Measurement
	// Rejected are items the source sent that are not valid observations
	// or measurements.
	Rejected []error
	// Logs are a log search's signals (one per tenant's job), for the log
	// rules; Lines is how many log lines the search read (its health's count).
	Logs  []model.LogSignal
	Lines int
}

// SourceConfig is one configured status source.
type SourceConfig struct {
	Name string `yaml:"name"`
	// Kind selects the collector (Kinds lists them): httpjson, importer and
	// the AWS kinds read run statuses; redis, mongodb, sftp and store probe
	// a dependency.
	Kind string `yaml:"kind"`
	// Schedule is a cron expression (5 fields, UTC) or @every DURATION.
	Schedule string `yaml:"schedule"`
	// Timeout bounds one collection, connection to last byte.
	Timeout time.Duration `yaml:"timeout"`
	// URL is the status API of the HTTP kinds (httpjson, importer).
	URL    string `yaml:"url"`
	Method string `yaml:"method"`
	// Headers are sent with every request; values may be "${ENV_VAR}".
	Headers map[string]config.Secret `yaml:"headers"`
	// MaxBodyBytes bounds a response; a larger one fails the attempt.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// Backoff after consecutive failures: Base doubling up to Max.
	Backoff BackoffConfig `yaml:"backoff"`
	// DownAfter is how long a source may fail before source-down fires.
	DownAfter time.Duration `yaml:"down_after"`
	// HTTPJSON maps a generic status API's JSON to observations.
	HTTPJSON *HTTPJSONConfig `yaml:"httpjson"`
	// Probe is what the probe kinds (redis, mongodb, sftp, store) share:
	// the subject measured, and the tenant and job it serves when not shared.
	Probe ProbeConfig `yaml:"probe"`
	// Redis, MongoDB and SFTP are the probe kinds' own settings.
	Redis   *RedisProbeConfig `yaml:"redis"`
	MongoDB *MongoProbeConfig `yaml:"mongodb"`
	SFTP    *SFTPProbeConfig  `yaml:"sftp"`
	// Severity overrides the dependency rules' severities for what this
	// source measures (dependency-down, dependency-degraded: critical,
	// warning, info or off); checked by the hub's config, which knows the rules.
	Severity map[string]model.Severity `yaml:"severity"`

	// Region, Endpoint, Credentials and Retry are the AWS kinds': the
	// region ("" = the standard chain's), an endpoint override, static keys
	// ("${ENV}"; nil = the standard chain) and the SDK retryer's policy.
	Region      string            `yaml:"region"`
	Endpoint    string            `yaml:"endpoint"`
	Credentials *awsc.Credentials `yaml:"credentials"`
	Retry       awsc.Retry        `yaml:"retry"`
	// StepFunctions watches the executions of state machines.
	StepFunctions *awsc.StepFunctionsConfig `yaml:"stepfunctions"`
	// Batch watches the jobs of AWS Batch job queues.
	Batch *awsc.BatchConfig `yaml:"batch"`
	// SQS measures queues (depth, in flight, oldest message, dead letters).
	SQS *awsc.SQSConfig `yaml:"sqs"`
	// Lambda measures functions (errors, throttles, durations) from CloudWatch.
	Lambda *awsc.LambdaConfig `yaml:"lambda"`
}

// BackoffConfig is the retry policy after failures.
type BackoffConfig struct {
	Base time.Duration `yaml:"base"`
	Max  time.Duration `yaml:"max"`
}

// validate sets the defaults (base, max) and checks the policy at key.
func (b *BackoffConfig) validate(p *config.Problems, key string, base, max time.Duration) {
	if b.Base == 0 {
		b.Base = base
	}
	if b.Max == 0 {
		b.Max = max
	}
	if b.Max < b.Base {
		p.Add(key+".max", "%v is less than base %v", b.Max, b.Base)
	}
}

// validateSchedule sets the default schedule and checks it at key.
func validateSchedule(p *config.Problems, key string, s *string, def string) {
	if *s == "" {
		*s = def
	}
	if _, err := ParseSchedule(*s); err != nil {
		p.Add(key, "%v", err)
	}
}

// kind is one registered collector kind: how to build it and how to check
// its own keys (each kind says which of url, addr, ... it needs).
type kind struct {
	new func(SourceConfig) (Collector, error)
	// validate sets the kind's defaults and checks its keys at key.
	validate func(c *SourceConfig, p *config.Problems, key string)
	// aws kinds take region, endpoint, credentials and retry (validateAWS).
	aws bool
}

// kinds is the one registry of collector kinds.
var kinds = map[string]kind{
	"httpjson":      {new: newHTTPJSON, validate: validateHTTPJSON},
	"importer":      {new: newImporter, validate: validateHTTPURL},
	"stepfunctions": {new: newStepFunctions, validate: validateStepFunctions, aws: true},
	"batch":         {new: newBatch, validate: validateBatch, aws: true},
	"redis":         {new: newRedisProbe, validate: validateRedis},
	"mongodb":       {new: newMongoProbe, validate: validateMongo},
	"sftp":          {new: newSFTPProbe, validate: validateSFTP},
	"store":         {new: newStoreProbe, validate: validateStore},
	"sqs":           {new: newSQS, validate: validateSQS, aws: true},
	"lambda":        {new: newLambda, validate: validateLambda, aws: true},
}

// Kinds lists the registered collector kinds.
func Kinds() []string {
	out := make([]string, 0, len(kinds))
	for k := range kinds {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// New builds the collector for a validated config.
func New(c SourceConfig) (Collector, error) {
	k, ok := kinds[c.Kind]
	if !ok {
		return nil, fmt.Errorf("source %q: unknown kind %q", c.Name, c.Kind)
	}
	return k.new(c)
}

// Validate sets defaults and checks one source at key.
func (c *SourceConfig) Validate(p *config.Problems, key string) {
	if strings.TrimSpace(c.Name) == "" || len(c.Name) > model.MaxNameLen {
		p.Add(key+".name", "is required (at most 128 bytes)")
	}
	k, ok := kinds[c.Kind]
	if !ok {
		p.Add(key+".kind", "%q is not one of %s", c.Kind, strings.Join(Kinds(), ", "))
	}
	validateSchedule(p, key+".schedule", &c.Schedule, "@every 1m")
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	if c.Timeout < 0 || c.Timeout > 10*time.Minute {
		p.Add(key+".timeout", "%v is outside 1ms..10m", c.Timeout)
	}
	if c.Method == "" {
		c.Method = "GET"
	}
	if c.Method != "GET" && c.Method != "POST" {
		p.Add(key+".method", "%q is not GET or POST", c.Method)
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 16 << 20
	}
	if c.MaxBodyBytes < 0 {
		p.Add(key+".max_body_bytes", "must be positive")
	}
	c.Backoff.validate(p, key+".backoff", 5*time.Second, 5*time.Minute)
	if c.DownAfter == 0 {
		c.DownAfter = 10 * time.Minute
	}
	for name, set := range map[string]bool{"httpjson": c.HTTPJSON != nil, "stepfunctions": c.StepFunctions != nil, "batch": c.Batch != nil,
		"sqs": c.SQS != nil, "lambda": c.Lambda != nil} {
		if set && c.Kind != name {
			p.Add(key+"."+name, "is only for kind %s", name)
		}
	}
	if ok && !k.aws {
		for name, set := range map[string]bool{"region": c.Region != "", "endpoint": c.Endpoint != "",
			"credentials": c.Credentials != nil, "retry": c.Retry != (awsc.Retry{})} {
			if set {
				p.Add(key+"."+name, "is only for the AWS kinds (%s)", strings.Join(awsKinds(), ", "))
			}
		}
	}
	c.otherBlocks(p, key)
	if ok {
		k.validate(c, p, key)
	}
}

func awsKinds() []string {
	var out []string
	for name, k := range kinds {
		if k.aws {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// validateHTTPURL checks the url of a kind that reads an HTTP API.
func validateHTTPURL(c *SourceConfig, p *config.Problems, key string) {
	if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		p.Add(key+".url", "%q is not an http(s) URL", redactURL(c.URL))
	}
}

func validateHTTPJSON(c *SourceConfig, p *config.Problems, key string) {
	validateHTTPURL(c, p, key)
	if c.HTTPJSON == nil {
		p.Add(key+".httpjson", "is required for kind httpjson")
	} else {
		c.HTTPJSON.validate(p, key+".httpjson")
	}
}

// scrubber scrubs the source's secrets: every header value (and the
// credentials in it), the URL's password and credential-like query values.
func (c *SourceConfig) scrubber() *redact.Scrubber {
	var secrets []string
	for _, v := range c.Headers {
		secrets = append(secrets, redact.HeaderSecrets(v.Value())...)
	}
	secrets = append(secrets, c.Credentials.Secrets()...)
	secrets = append(secrets, c.probeSecrets()...)
	return redact.New(append(secrets, redact.URLSecrets(c.URL)...)...)
}

// redactURL hides a URL's secrets (user-info password, credential-like
// query values) for a config problem.
func redactURL(s string) string {
	return redact.New(redact.URLSecrets(s)...).String(s)
}
