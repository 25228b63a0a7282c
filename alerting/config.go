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
	// SlowdownPersistence is the mean remaining length of a slowdown that
	// has just begun.
	SlowdownPersistence time.Duration `yaml:"slowdown_persistence"`
	// SlowdownShape is how much longer an old slowdown is expected to last
	// (the tail of slowdown lengths; 1 means memoryless).
	SlowdownShape float64 `yaml:"slowdown_shape"`
	// MinHistory is how many nights a job needs before its history is trusted.
	MinHistory int `yaml:"min_history"`
	// Timings override a rule's for-duration and keep-firing-for.
	Timings map[string]TimingConfig `yaml:"timings"`
	// Dependencies tunes dependency-down and dependency-degraded.
	Dependencies DependencyRulesConfig `yaml:"dependencies"`
}

// DependencyRulesConfig tunes the dependency rules (rules.DependencyParams):
// each condition has a trigger level and a lower clear level.
type DependencyRulesConfig struct {
	// Window of history a subject's baseline is learned from.
	Window time.Duration `yaml:"window"`
	// Stale: a subject not measured for this long is not judged.
	Stale time.Duration `yaml:"stale"`
	// Recent probes make "now" (their median is judged).
	Recent int `yaml:"recent"`
	// MinBaseline probes before latency and error rates are judged.
	MinBaseline int `yaml:"min_baseline"`
	// Latency: trigger and clear as multiples of the baseline's median; the
	// trigger also needs latency_floor_ms more than it.
	LatencyTrigger float64 `yaml:"latency_trigger"`
	LatencyClear   float64 `yaml:"latency_clear"`
	LatencyFloorMs float64 `yaml:"latency_floor_ms"`
	// ErrorRate: above the baseline's, as fractions of calls.
	ErrorRateTrigger float64 `yaml:"error_rate_trigger"`
	ErrorRateClear   float64 `yaml:"error_rate_clear"`
	// Saturation: memory and connections as fractions of their limits.
	SaturationTrigger float64 `yaml:"saturation_trigger"`
	SaturationClear   float64 `yaml:"saturation_clear"`
	// QueueBacklogAge: an SQS queue whose oldest message is older (and
	// getting older) is not draining (queue-backlog); QueueBacklogClear
	// (lower) ends it. DeadLetterWindow: dead letters that arrived within it
	// and are still there hold dead-letters.
	QueueBacklogAge   time.Duration `yaml:"queue_backlog_age"`
	QueueBacklogClear time.Duration `yaml:"queue_backlog_clear"`
	DeadLetterWindow  time.Duration `yaml:"dead_letter_window"`
}

func (d *DependencyRulesConfig) validate(p *config.Problems, key string) {
	def := rules.DefaultDependencyParams()
	setD := func(v *time.Duration, x time.Duration) {
		if *v == 0 {
			*v = x
		}
	}
	setI := func(v *int, x int) {
		if *v == 0 {
			*v = x
		}
	}
	setF := func(v *float64, x float64) {
		if *v == 0 {
			*v = x
		}
	}
	setD(&d.Window, def.Window)
	setD(&d.Stale, def.Stale)
	setI(&d.Recent, def.Recent)
	setI(&d.MinBaseline, def.MinBaseline)
	setF(&d.LatencyTrigger, def.LatencyTrigger)
	setF(&d.LatencyClear, def.LatencyClear)
	setF(&d.LatencyFloorMs, def.LatencyFloorMs)
	setF(&d.ErrorRateTrigger, def.ErrorRateTrigger)
	setF(&d.ErrorRateClear, def.ErrorRateClear)
	setF(&d.SaturationTrigger, def.SaturationTrigger)
	setF(&d.SaturationClear, def.SaturationClear)
	setD(&d.QueueBacklogAge, def.Queue.BacklogAge)
	setD(&d.QueueBacklogClear, def.Queue.BacklogClear)
	setD(&d.DeadLetterWindow, def.Queue.DeadLetterWindow)
	if d.QueueBacklogClear <= 0 || d.QueueBacklogAge <= d.QueueBacklogClear {
		p.Add(key+".queue_backlog_clear", "%v must be above 0 and below queue_backlog_age (%v)", d.QueueBacklogClear, d.QueueBacklogAge)
	}
	if d.DeadLetterWindow < time.Minute || d.DeadLetterWindow > d.Window {
		p.Add(key+".dead_letter_window", "%v is outside 1m..window (%v)", d.DeadLetterWindow, d.Window)
	}
	if d.Window < time.Hour || d.Window > 30*24*time.Hour {
		p.Add(key+".window", "%v is outside 1h..720h", d.Window)
	}
	if d.Stale < time.Minute {
		p.Add(key+".stale", "%v is shorter than a minute", d.Stale)
	}
	if d.Recent < 1 || d.Recent > 100 {
		p.Add(key+".recent", "%d is outside 1..100", d.Recent)
	}
	if d.MinBaseline < 3 {
		p.Add(key+".min_baseline", "%d is less than 3", d.MinBaseline)
	}
	if d.LatencyClear < 1 || d.LatencyTrigger <= d.LatencyClear {
		p.Add(key+".latency_clear", "%v must be at least 1 and below latency_trigger (%v)", d.LatencyClear, d.LatencyTrigger)
	}
	if d.LatencyFloorMs < 0 {
		p.Add(key+".latency_floor_ms", "must not be negative")
	}
	if d.ErrorRateTrigger > 1 || d.ErrorRateClear <= 0 || d.ErrorRateTrigger <= d.ErrorRateClear {
		p.Add(key+".error_rate_clear", "%v must be above 0 and below error_rate_trigger (%v, at most 1)", d.ErrorRateClear, d.ErrorRateTrigger)
	}
	if d.SaturationTrigger > 1 || d.SaturationClear <= 0 || d.SaturationTrigger <= d.SaturationClear {
		p.Add(key+".saturation_clear", "%v must be above 0 and below saturation_trigger (%v, at most 1)", d.SaturationClear, d.SaturationTrigger)
	}
}

// DependencyParams are the dependency rules' parameters with the section's
// values (defaults where it sets none).
func (r *RulesConfig) DependencyParams() rules.DependencyParams {
	d := r.Dependencies
	d.validate(&config.Problems{}, "") // defaults only: Validate reported the problems
	p := rules.DefaultDependencyParams()
	p.Window, p.Stale, p.Recent, p.MinBaseline = d.Window, d.Stale, d.Recent, d.MinBaseline
	p.LatencyTrigger, p.LatencyClear, p.LatencyFloorMs = d.LatencyTrigger, d.LatencyClear, d.LatencyFloorMs
	p.ErrorRateTrigger, p.ErrorRateClear = d.ErrorRateTrigger, d.ErrorRateClear
	p.SaturationTrigger, p.SaturationClear = d.SaturationTrigger, d.SaturationClear
	p.Queue = rules.QueueParams{BacklogAge: d.QueueBacklogAge, BacklogClear: d.QueueBacklogClear, DeadLetterWindow: d.DeadLetterWindow}
	return p
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
	if r.SlowdownShape == 0 {
		r.SlowdownShape = d.SlowdownShape
	}
	if r.MinHistory == 0 {
		r.MinHistory = d.MinHistory
	}
	if r.SlowdownShape < 1 || r.SlowdownShape > 20 {
		p.Add(key+".slowdown_shape", "%v is outside 1..20 (1 is memoryless)", r.SlowdownShape)
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
	r.Dependencies.validate(p, key+".dependencies")
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
	p.SlowdownShape = r.SlowdownShape
	p.MinHistory = r.MinHistory
	return p
}
