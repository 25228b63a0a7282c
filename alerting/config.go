package alerting

import (
	"strings"
	"time"

	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/rules"
)

// RulesConfig tunes the rules engine.
type RulesConfig struct {
	// Tick is how often every rule is evaluated.
	Tick time.Duration `yaml:"tick"`
	// History is how far back observations are replayed into the rules at
	// start-up (what they learn durations and rates from).
	History time.Duration `yaml:"history"`
	// PageProbability is the breach probability at which predicted-breach pages.
	PageProbability float64 `yaml:"page_probability"`
	// SlowdownPersistence is the mean remaining length of a slowdown.
	SlowdownPersistence time.Duration `yaml:"slowdown_persistence"`
	// MinHistory is how many nights a job needs before its history is trusted.
	MinHistory int `yaml:"min_history"`
	// Timings override a rule's for-duration and keep-firing-for.
	Timings map[string]TimingConfig `yaml:"timings"`
}

// TimingConfig is one rule's pending and hysteresis durations.
type TimingConfig struct {
	For           time.Duration `yaml:"for"`
	KeepFiringFor time.Duration `yaml:"keep_firing_for"`
}

// RuleTimings are the rules' for-durations and keep-firing-fors, the defaults
// with the section's overrides.
func (r *RulesConfig) RuleTimings() map[string]rules.Timing {
	t := rules.DefaultTimings()
	for name, v := range r.Timings {
		t[name] = rules.Timing{For: v.For, KeepFiringFor: v.KeepFiringFor}
	}
	return t
}

// Validate sets defaults and checks the section.
func (r *RulesConfig) Validate(p *config.Problems, key string) {
	d := rules.DefaultParams()
	if r.Tick == 0 {
		r.Tick = 30 * time.Second
	}
	if r.History == 0 {
		r.History = 21 * 24 * time.Hour
	}
	if r.PageProbability == 0 {
		r.PageProbability = d.PageProbability
	}
	if r.SlowdownPersistence == 0 {
		r.SlowdownPersistence = d.SlowdownPersistence
	}
	if r.MinHistory == 0 {
		r.MinHistory = d.MinHistory
	}
	if r.Tick < time.Second || r.Tick > 10*time.Minute {
		p.Add(key+".tick", "%v is outside 1s..10m", r.Tick)
	}
	if r.PageProbability <= 0 || r.PageProbability > 1 {
		p.Add(key+".page_probability", "%v is not in (0, 1]", r.PageProbability)
	}
	if r.MinHistory < 1 {
		p.Add(key+".min_history", "must be at least 1")
	}
	for name, t := range r.Timings {
		if !rules.IsRule(name) {
			p.Add(key+".timings."+name, "is not a rule (%s)", strings.Join(rules.Names, ", "))
		}
		if t.For < 0 || t.KeepFiringFor < 0 {
			p.Add(key+".timings."+name, "durations must not be negative")
		}
	}
}

// EngineParams are the engine's parameters with the section's values.
func (r *RulesConfig) EngineParams() rules.Params {
	p := rules.DefaultParams()
	p.PageProbability = r.PageProbability
	p.SlowdownPersistence = r.SlowdownPersistence
	p.MinHistory = r.MinHistory
	return p
}
