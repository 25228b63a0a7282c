package model

import "time"

// LogKind is what a log search counts.
type LogKind string

const (
	// LogErrors counts error lines: spikes alert (log-error-spike), and
	// they are the context of the job's other alerts.
	LogErrors LogKind = "errors"
	// LogActivity counts any lines: a running job that logs nothing is
	// silent (log-silence).
	LogActivity LogKind = "activity"
)

// LogSearchSource is the source name a log search's health is kept under
// (logs:NAME in /api/v1/sources, the metrics and source-down).
func LogSearchSource(search string) string { return "logs:" + search }

// LogSignal is what one log search found for one tenant's job in a window:
// a log search collector's result, the log rules' input.
type LogSignal struct {
	Search   string
	Kind     LogKind
	Tenant   string
	Job      string
	At       time.Time // end of the window
	Window   time.Duration
	Count    int
	LastSeen time.Time  // latest matching line, zero when none in the window
	Examples []LogCount // the most frequent messages
	// Threshold is the count at which errors alert; SilenceAfter how long a
	// running job may go without a line.
	Threshold    int
	SilenceAfter time.Duration
}

// LogCount is a message and how often it was seen.
type LogCount struct {
	Text string
	N    int
}

// Fresh reports whether a signal still describes now (within two windows).
func (s *LogSignal) Fresh(now time.Time) bool {
	return !s.At.IsZero() && now.Sub(s.At) <= 2*s.Window+time.Minute
}
