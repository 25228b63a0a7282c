package model

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
	"gopkg.in/yaml.v3"
)

// Duration is a time.Duration written as a Go duration string ("20m", "1h30m").
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// ParseDuration parses a Go duration that must not be negative.
func ParseDuration(s string) (Duration, error) {
	v, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration like 90s, 20m or 1h30m", s)
	}
	if v < 0 {
		return 0, fmt.Errorf("%q is negative", s)
	}
	return Duration(v), nil
}

// durationHint is how a duration is written (as in the config loader's messages).
const durationHint = "(use 30s, 5m, 1h)"

// valueError is a problem with the YAML value at n, in the form the config
// loader reports with the key's path.
func valueError(n *yaml.Node, format string, args ...any) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: ", n.Line) + fmt.Sprintf(format, args...)}}
}

// UnmarshalYAML reads a duration; a bad one is reported with its line and
// the rest of the config is still checked.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return valueError(n, "is not a duration %s", durationHint)
	}
	v, err := time.ParseDuration(strings.TrimSpace(n.Value))
	if err != nil {
		return valueError(n, "%q is not a duration %s", n.Value, durationHint)
	}
	if v < 0 {
		return valueError(n, "%q is negative", n.Value)
	}
	*d = Duration(v)
	return nil
}

// UnmarshalText implements encoding.TextUnmarshaler (YAML and JSON strings).
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalText writes the Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// JobSpec is what is expected of one tenant's job: when it starts and by when
// it must have succeeded, all in the job's own time zone.
type JobSpec struct {
	Tenant          string              `yaml:"tenant" json:"tenant"`
	Job             string              `yaml:"job" json:"job"`
	Timezone        string              `yaml:"timezone" json:"timezone"`
	Schedule        string              `yaml:"schedule" json:"schedule"`
	Deadline        string              `yaml:"deadline" json:"deadline"`
	StaleAfter      Duration            `yaml:"stale_after" json:"stale_after"`
	MaxDuration     Duration            `yaml:"max_duration" json:"max_duration,omitempty"`
	SuccessMaxAge   Duration            `yaml:"success_max_age" json:"success_max_age,omitempty"`
	FilesExpectedBy string              `yaml:"files_expected_by" json:"files_expected_by,omitempty"`
	Severity        map[string]Severity `yaml:"severity" json:"severity,omitempty"`
	Source          string              `yaml:"source" json:"source,omitempty"`

	loc      *time.Location
	sched    cron.Schedule
	dlMin    int // deadline, minutes after local midnight
	filesMin int // files_expected_by, minutes after local midnight, or -1
}

// Key is "tenant/job".
func (s *JobSpec) Key() string { return s.Tenant + "/" + s.Job }

// Location is the job's time zone (after Compile).
func (s *JobSpec) Location() *time.Location { return s.loc }

// SpecError names the field of a job spec that is wrong.
type SpecError struct {
	Field string
	Msg   string
}

func (e *SpecError) Error() string { return e.Field + ": " + e.Msg }

// Compile validates the spec and prepares it for schedule arithmetic.
func (s *JobSpec) Compile() error {
	if strings.TrimSpace(s.Tenant) == "" || len(s.Tenant) > MaxNameLen {
		return &SpecError{"tenant", "is required (at most 128 bytes)"}
	}
	if strings.TrimSpace(s.Job) == "" || len(s.Job) > MaxNameLen {
		return &SpecError{"job", "is required (at most 128 bytes)"}
	}
	tz := s.Timezone
	if tz == "" {
		tz = "UTC"
	}
	loc, err := loadLocation(tz)
	if err != nil {
		return &SpecError{"timezone", fmt.Sprintf("%q is not an IANA time zone", s.Timezone)}
	}
	s.loc = loc
	if strings.HasPrefix(strings.TrimSpace(s.Schedule), "CRON_TZ=") || strings.HasPrefix(strings.TrimSpace(s.Schedule), "TZ=") {
		return &SpecError{"schedule", "set the time zone with timezone, not inside the schedule"}
	}
	sched, err := ParseCron(s.Schedule)
	if err != nil {
		return &SpecError{"schedule", fmt.Sprintf("%q is not a 5-field cron expression: %v", s.Schedule, err)}
	}
	s.sched = sched
	if s.dlMin, err = parseHHMM(s.Deadline); err != nil {
		return &SpecError{"deadline", err.Error()}
	}
	s.filesMin = -1
	if s.FilesExpectedBy != "" {
		if s.filesMin, err = parseHHMM(s.FilesExpectedBy); err != nil {
			return &SpecError{"files_expected_by", err.Error()}
		}
	}
	if s.StaleAfter <= 0 {
		return &SpecError{"stale_after", "is required and must be positive"}
	}
	for rule, sev := range s.Severity {
		if !sev.Valid() {
			return &SpecError{"severity." + rule, fmt.Sprintf("%q is not critical, warning, info or off", sev)}
		}
	}
	return nil
}

// locations caches time zones: each time.LoadLocation parses the zone
// database anew and holds kilobytes, which 100,000 jobs would multiply.
var locations sync.Map // name -> *time.Location

func loadLocation(name string) (*time.Location, error) {
	if l, ok := locations.Load(name); ok {
		return l.(*time.Location), nil
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	v, _ := locations.LoadOrStore(name, l)
	return v.(*time.Location), nil
}

func parseHHMM(v string) (int, error) {
	var h, m int
	if len(v) != 5 || v[2] != ':' {
		return 0, fmt.Errorf("%q is not a local time HH:MM", v)
	}
	if _, err := fmt.Sscanf(v, "%02d:%02d", &h, &m); err != nil || h > 23 || m > 59 {
		return 0, fmt.Errorf("%q is not a local time HH:MM", v)
	}
	return h*60 + m, nil
}

// NextStart is the first scheduled start strictly after t, in UTC.
//
// The schedule is matched against local wall-clock time, so a daily job runs
// once a night across daylight-saving changes: on the autumn night the
// repeated hour does not start it twice, and on the spring night a start in the
// skipped hour runs the same wall-clock distance after the change (02:30
// becomes 03:30 daylight time).
func (s *JobSpec) NextStart(t time.Time) time.Time {
	wall := toWall(t.In(s.loc))
	for i := 0; i < 1000; i++ {
		wall = s.sched.Next(wall)
		if wall.IsZero() {
			return time.Time{}
		}
		real := localAt(wall.Year(), wall.Month(), wall.Day(), wall.Hour(), wall.Minute(), s.loc)
		if real.After(t) {
			return real.UTC()
		}
	}
	return time.Time{}
}

// localAt is the instant a local clock reads y-mo-d h:mi. A time that does
// not exist (skipped by a spring-forward change) is read with the offset in
// effect before the change, as RFC 5545 does: 02:30 becomes 03:30 daylight
// time. A time that happens twice (autumn) is its first occurrence.
func localAt(y int, mo time.Month, d, h, mi int, loc *time.Location) time.Time {
	t := time.Date(y, mo, d, h, mi, 0, 0, loc)
	if t.Hour() == h && t.Minute() == mi {
		if earlier := t.Add(-time.Hour); earlier.Hour() == h && earlier.Minute() == mi {
			return earlier
		}
		return t
	}
	naive := time.Date(y, mo, d, h, mi, 0, 0, time.UTC)
	_, off := naive.Add(-12 * time.Hour).In(loc).Zone()
	return naive.Add(-time.Duration(off) * time.Second)
}

// toWall reinterprets a local time's clock reading as UTC.
func toWall(l time.Time) time.Time {
	return time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), l.Second(), l.Nanosecond(), time.UTC)
}

// PrevStart is the latest scheduled start at or before t, in UTC, or the zero
// time when there is none within 400 days.
func (s *JobSpec) PrevStart(t time.Time) time.Time {
	t = t.UTC()
	back := time.Hour
	var from time.Time
	for {
		from = t.Add(-back)
		if n := s.NextStart(from.Add(-time.Second)); !n.After(t) {
			break
		}
		if back > 400*24*time.Hour {
			return time.Time{}
		}
		back *= 2
	}
	prev := time.Time{}
	n := s.NextStart(from.Add(-time.Second))
	for !n.After(t) {
		prev = n
		n = s.NextStart(n)
	}
	return prev
}

// atLocal returns the first instant at minutes-after-midnight m on the local day
// of start, or of the next day when that is not after start.
func (s *JobSpec) atLocal(start time.Time, m int) time.Time {
	l := start.In(s.loc)
	t := localAt(l.Year(), l.Month(), l.Day(), m/60, m%60, s.loc)
	if !t.After(l) {
		t = localAt(l.Year(), l.Month(), l.Day()+1, m/60, m%60, s.loc)
	}
	return t.UTC()
}

// DeadlineFor is the deadline of the run scheduled at start.
func (s *JobSpec) DeadlineFor(start time.Time) time.Time { return s.atLocal(start, s.dlMin) }

// FilesExpectedFor is when files are expected for the run scheduled at start;
// ok is false when the spec does not say.
func (s *JobSpec) FilesExpectedFor(start time.Time) (time.Time, bool) {
	if s.filesMin < 0 {
		return time.Time{}, false
	}
	return s.atLocal(start.Add(-time.Minute), s.filesMin), true
}

// SeverityFor applies the spec's override for rule to the default severity.
func (s *JobSpec) SeverityFor(rule string, def Severity) Severity {
	if v, ok := s.Severity[rule]; ok {
		return v
	}
	return def
}

// MarshalJSON is the plain spec.
func (s *JobSpec) MarshalJSON() ([]byte, error) {
	type plain JobSpec
	return json.Marshal((*plain)(s))
}
