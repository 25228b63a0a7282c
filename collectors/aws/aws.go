// Package aws reads the AWS services ETL pipelines are built on: Step
// Functions executions and AWS Batch jobs as runs (observations), SQS queues
// and Lambda functions as measurements. Every kind signs its calls with
// SigV4 (credentials from the standard chain, or static keys from the
// config), retries with the SDK's standard retryer (throttling answers
// included) and pages with the SDK's paginators; the caller's context bounds
// every call.
package aws

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	sdk "github.com/aws/aws-sdk-go-v2/aws"
	sdkretry "github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/model"
)

// Source is what every AWS kind shares: where, who and how to retry.
type Source struct {
	Name string
	// Region, e.g. us-east-1; "" takes the standard chain's (AWS_REGION,
	// the shared config's profile).
	Region string
	// Endpoint overrides the service's endpoint (a VPC endpoint, a local
	// server); "" uses AWS's.
	Endpoint string
	// Credentials are static keys; nil takes the standard chain
	// (environment, shared files, web identity, the instance's role).
	Credentials *Credentials
	// Timeout bounds one collection; each call also gets it as its HTTP timeout.
	Timeout time.Duration
	Retry   Retry
}

// Credentials are static keys, each "${ENV}" in the config.
type Credentials struct {
	AccessKeyID     config.Secret `yaml:"access_key_id"`
	SecretAccessKey config.Secret `yaml:"secret_access_key"`
	SessionToken    config.Secret `yaml:"session_token"`
}

// Secrets lists the values to scrub from errors and logs.
func (c *Credentials) Secrets() []string {
	if c == nil {
		return nil
	}
	return []string{c.AccessKeyID.Value(), c.SecretAccessKey.Value(), c.SessionToken.Value()}
}

// Retry is the SDK's standard retryer's policy for one call.
type Retry struct {
	// MaxAttempts per call, the first included (the SDK's default is 3).
	MaxAttempts int `yaml:"max_attempts"`
	// MaxBackoff bounds the wait between attempts (the SDK's default is 20s).
	MaxBackoff time.Duration `yaml:"max_backoff"`
}

// ValidateSource sets defaults and checks what the AWS kinds share.
func ValidateSource(p *config.Problems, key string, region, endpoint *string, creds *Credentials, r *Retry) {
	if *region != "" && !validRegion(*region) {
		p.Add(key+".region", "%q is not a region (e.g. us-east-1)", *region)
	}
	if *endpoint != "" {
		if u, err := url.Parse(*endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			p.Add(key+".endpoint", "is not an http(s) URL without credentials")
		}
	}
	if creds != nil {
		if creds.AccessKeyID == "" || creds.SecretAccessKey == "" {
			p.Add(key+".credentials", "access_key_id and secret_access_key are both required (or leave credentials out for the standard chain)")
		}
	}
	if r.MaxAttempts == 0 {
		r.MaxAttempts = sdkretry.DefaultMaxAttempts
	}
	if r.MaxAttempts < 1 || r.MaxAttempts > 10 {
		p.Add(key+".retry.max_attempts", "%d is outside 1..10", r.MaxAttempts)
	}
	if r.MaxBackoff == 0 {
		r.MaxBackoff = sdkretry.DefaultMaxBackoff
	}
	if r.MaxBackoff < 0 || r.MaxBackoff > 5*time.Minute {
		p.Add(key+".retry.max_backoff", "%v is outside 1ms..5m", r.MaxBackoff)
	}
}

func validRegion(s string) bool {
	if len(s) > 32 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return strings.Count(s, "-") >= 2
}

// httpClient bounds every call: connecting, the TLS handshake, the
// answer's headers and the whole call within the source's timeout. It keeps
// the TLS settings the standard chain gave the SDK's client (AWS_CA_BUNDLE).
func (s Source) httpClient(tlsConfig *tls.Config) *http.Client {
	if tlsConfig == nil {
		tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Timeout: s.Timeout, Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: min(5*time.Second, s.Timeout), KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   min(5*time.Second, s.Timeout),
		TLSClientConfig:       tlsConfig,
		ResponseHeaderTimeout: s.Timeout,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
	}}
}

// sdkConfig loads the SDK's configuration for s: region and credentials
// from the config or the standard chain, the standard retryer, an HTTP
// client bounded by the source's timeout, and the endpoint override.
func (s Source) sdkConfig(ctx context.Context) (sdk.Config, error) {
	opts := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithRetryer(func() sdk.Retryer {
			return sdkretry.NewStandard(func(o *sdkretry.StandardOptions) {
				o.MaxAttempts = s.Retry.MaxAttempts
				o.MaxBackoff = s.Retry.MaxBackoff
			})
		}),
	}
	if s.Region != "" {
		opts = append(opts, awsconfig.WithRegion(s.Region))
	}
	if s.Endpoint != "" {
		opts = append(opts, awsconfig.WithBaseEndpoint(s.Endpoint))
	}
	if c := s.Credentials; c != nil {
		opts = append(opts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(
			c.AccessKeyID.Value(), c.SecretAccessKey.Value(), c.SessionToken.Value())))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return cfg, fmt.Errorf("source %q: loading the AWS configuration: %w", s.Name, err)
	}
	var tlsConfig *tls.Config
	if bc, ok := cfg.HTTPClient.(*awshttp.BuildableClient); ok && bc.GetTransport().TLSClientConfig != nil {
		tlsConfig = bc.GetTransport().TLSClientConfig.Clone()
	}
	cfg.HTTPClient = s.httpClient(tlsConfig)
	if cfg.Region == "" {
		return cfg, fmt.Errorf("source %q: no region (set region, or AWS_REGION for the standard chain)", s.Name)
	}
	return cfg, nil
}

// Result is what one collection read.
type Result struct {
	Observations []model.Observation
	// Measurements are what the sqs and lambda kinds saw of their queues
	// and functions.
	Measurements []model.Measurement
	// Rejected are items that map to no tenant and job, or are not valid
	// observations, each naming the item and why.
	Rejected []error
}

// lastPart is what follows the last ':' or '/' of an ARN or URL (a name).
func lastPart(s string) string {
	if i := strings.LastIndexAny(s, ":/"); i >= 0 {
		return s[i+1:]
	}
	return s
}

// cut bounds s to n bytes on a character boundary.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func utc(t *time.Time) *time.Time {
	if t == nil || t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// msTime reads Batch's milliseconds since the epoch.
func msTime(p *int64) *time.Time {
	if p == nil || *p <= 0 {
		return nil
	}
	t := time.UnixMilli(*p).UTC()
	return &t
}
