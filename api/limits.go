package api

import "github.com/etlhub/etlhub/internal/config"

// IngestConfig bounds push ingest (the ingest section).
type IngestConfig struct {
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// MaxItems caps the observations of one push (413 beyond).
	MaxItems int `yaml:"max_items"`
	// MaxUnconfiguredJobs caps the tenant/job pairs outside jobs[] that
	// pushes may create.
	MaxUnconfiguredJobs int `yaml:"max_unconfigured_jobs"`
}

// Validate sets defaults and checks the section at key.
func (c *IngestConfig) Validate(p *config.Problems, key string) {
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 10 << 20
	}
	if c.MaxBodyBytes < 1024 || c.MaxBodyBytes > 1<<30 {
		p.Add(key+".max_body_bytes", "%d is outside 1 KiB..1 GiB", c.MaxBodyBytes)
	}
	if c.MaxItems == 0 {
		c.MaxItems = DefaultMaxItems
	}
	if c.MaxItems < 1 || c.MaxItems > 1_000_000 {
		p.Add(key+".max_items", "%d is outside 1..1000000", c.MaxItems)
	}
	if c.MaxUnconfiguredJobs == 0 {
		c.MaxUnconfiguredJobs = DefaultMaxUnconfiguredJobs
	}
	if c.MaxUnconfiguredJobs < 1 {
		p.Add(key+".max_unconfigured_jobs", "%d must be at least 1", c.MaxUnconfiguredJobs)
	}
}

// SilencesConfig bounds silences (the silences section).
type SilencesConfig struct {
	// MaxActive caps active and planned silences (per tenant for a scoped token).
	MaxActive int `yaml:"max_active"`
}

// Validate sets defaults and checks the section at key.
func (c *SilencesConfig) Validate(p *config.Problems, key string) {
	if c.MaxActive == 0 {
		c.MaxActive = DefaultMaxSilences
	}
	if c.MaxActive < 1 {
		p.Add(key+".max_active", "%d must be at least 1", c.MaxActive)
	}
}
