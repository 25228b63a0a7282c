package rules

import (
	"fmt"
	"regexp"
	"time"

	"github.com/etlhub/etlhub/model"
)

// Matcher matches one alert label exactly, or by regular expression; with
// IsEqual false it matches the labels that do not (!=, !~).
type Matcher struct {
	Name    string `json:"name"`
	Value   string `json:"value"`
	IsRegex bool   `json:"is_regex,omitempty"`
	// IsEqual is true when absent (silences stored before it existed).
	IsEqual *bool `json:"is_equal,omitempty"`
}

// Negative reports a != or !~ matcher.
func (m *Matcher) Negative() bool { return m.IsEqual != nil && !*m.IsEqual }

// matches reports whether the label value v passes.
func (m *Matcher) matches(v string) bool {
	ok := v == m.Value
	if m.IsRegex {
		re, err := regexp.Compile("^(?:" + m.Value + ")$")
		if err != nil {
			return false // Validate refuses it; never silence on a broken matcher
		}
		ok = re.MatchString(v)
	}
	return ok != m.Negative()
}

// Silence mutes alerts that match all its matchers between StartsAt and EndsAt
// (a maintenance window is a silence planned ahead).
type Silence struct {
	ID        string    `json:"id"`
	Matchers  []Matcher `json:"matchers"`
	StartsAt  time.Time `json:"starts_at"`
	EndsAt    time.Time `json:"ends_at"`
	CreatedBy string    `json:"created_by"`
	Comment   string    `json:"comment"`
	CreatedAt time.Time `json:"created_at"`
}

// SilenceLabels are the labels a matcher may name.
var SilenceLabels = []string{"rule", "tenant", "job", "severity", "run_id", "source"}

// Label is an alert's value for a label name (rule, tenant, job, severity,
// run_id, source), "" for any other name.
func Label(a *model.Alert, name string) string {
	switch name {
	case "rule":
		return a.Rule
	case "tenant":
		return a.Tenant
	case "job":
		return a.Job
	case "severity":
		return string(a.Severity)
	case "run_id":
		return a.RunID
	case "source":
		return a.Source
	}
	return ExternalLabels(a)[name]
}

// Validate checks a silence before it is stored.
func (s *Silence) Validate() error {
	if len(s.Matchers) == 0 {
		return fmt.Errorf("matchers: at least one is required")
	}
	for i, m := range s.Matchers {
		ok := false
		for _, l := range SilenceLabels {
			ok = ok || l == m.Name
		}
		if !ok {
			return fmt.Errorf("matchers[%d].name: %q is not one of %v", i, m.Name, SilenceLabels)
		}
		if m.IsRegex {
			if _, err := regexp.Compile(m.Value); err != nil {
				return fmt.Errorf("matchers[%d].value: %v", i, err)
			}
		} else if m.Value == "" && !m.Negative() {
			return fmt.Errorf("matchers[%d].value: is required", i)
		}
	}
	// As in Alertmanager: a silence whose every matcher passes an absent
	// label (tenant!=dade alone) would mute nearly everything.
	empty := true
	for i := range s.Matchers {
		empty = empty && s.Matchers[i].matches("")
	}
	if empty {
		return fmt.Errorf("matchers: at least one must not match an empty label (tenant!=dade alone would silence nearly every alert)")
	}
	if !s.EndsAt.After(s.StartsAt) {
		return fmt.Errorf("ends_at: must be after starts_at")
	}
	if len(s.Comment) > 1024 {
		return fmt.Errorf("comment: at most 1024 bytes")
	}
	return nil
}

// Matches reports whether the silence covers a at now.
func (s *Silence) Matches(a *model.Alert, now time.Time) bool {
	if now.Before(s.StartsAt) || !now.Before(s.EndsAt) {
		return false
	}
	for i := range s.Matchers {
		if !s.Matchers[i].matches(Label(a, s.Matchers[i].Name)) {
			return false
		}
	}
	return true
}

// Silencing builds a Silencer from a set of silences.
func Silencing(silences []Silence) Silencer {
	return func(a *model.Alert, now time.Time) bool {
		for i := range silences {
			if silences[i].Matches(a, now) {
				return true
			}
		}
		return false
	}
}
