package collectors

import (
	"context"
	"time"

	awsc "github.com/etlhub/etlhub/collectors/aws"
	"github.com/etlhub/etlhub/internal/config"
)

// validateAWS checks what the AWS kinds share: no url or headers (those
// are the HTTP kinds'), region, endpoint, credentials and retry.
func validateAWS(c *SourceConfig, p *config.Problems, key string) {
	if c.URL != "" {
		p.Add(key+".url", "is only for the HTTP kinds (httpjson, importer); an AWS kind takes endpoint and region")
	}
	if len(c.Headers) > 0 {
		p.Add(key+".headers", "is only for the HTTP kinds (httpjson, importer)")
	}
	awsc.ValidateSource(p, key, &c.Region, &c.Endpoint, c.Credentials, &c.Retry)
}

func validateStepFunctions(c *SourceConfig, p *config.Problems, key string) {
	validateAWS(c, p, key)
	if c.StepFunctions == nil {
		p.Add(key+".stepfunctions", "is required for kind stepfunctions")
		return
	}
	c.StepFunctions.Validate(p, key+".stepfunctions")
}

func validateBatch(c *SourceConfig, p *config.Problems, key string) {
	validateAWS(c, p, key)
	if c.Batch == nil {
		p.Add(key+".batch", "is required for kind batch")
		return
	}
	c.Batch.Validate(p, key+".batch")
}

// awsSource is what the AWS kinds share of a source's config.
func (c SourceConfig) awsSource() awsc.Source {
	return awsc.Source{Name: c.Name, Region: c.Region, Endpoint: c.Endpoint, Credentials: c.Credentials,
		Timeout: c.Timeout, Retry: c.Retry}
}

// awsCollector adapts an AWS kind to the Collector interface.
type awsCollector struct {
	collect func(ctx context.Context, now time.Time) (awsc.Result, error)
}

func (a awsCollector) Collect(ctx context.Context, now time.Time) (Result, error) {
	r, err := a.collect(ctx, now)
	return Result{Observations: r.Observations, Measurements: r.Measurements, Rejected: r.Rejected}, err
}

func newStepFunctions(c SourceConfig) (Collector, error) {
	sf, err := awsc.NewStepFunctions(c.awsSource(), *c.StepFunctions)
	if err != nil {
		return nil, err
	}
	return awsCollector{sf.Collect}, nil
}

func newBatch(c SourceConfig) (Collector, error) {
	b, err := awsc.NewBatch(c.awsSource(), *c.Batch)
	if err != nil {
		return nil, err
	}
	return awsCollector{b.Collect}, nil
}

func validateSQS(c *SourceConfig, p *config.Problems, key string) {
	validateAWS(c, p, key)
	if c.SQS == nil {
		p.Add(key+".sqs", "is required for kind sqs")
		return
	}
	c.SQS.Validate(p, key+".sqs")
}

func validateLambda(c *SourceConfig, p *config.Problems, key string) {
	validateAWS(c, p, key)
	if c.Lambda == nil {
		p.Add(key+".lambda", "is required for kind lambda")
		return
	}
	c.Lambda.Validate(p, key+".lambda")
}

func newSQS(c SourceConfig) (Collector, error) {
	q, err := awsc.NewSQS(c.awsSource(), *c.SQS)
	if err != nil {
		return nil, err
	}
	return awsCollector{q.Collect}, nil
}

func newLambda(c SourceConfig) (Collector, error) {
	l, err := awsc.NewLambda(c.awsSource(), *c.Lambda)
	if err != nil {
		return nil, err
	}
	return awsCollector{l.Collect}, nil
}
