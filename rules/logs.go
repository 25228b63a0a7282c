package rules

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/etlhub/etlhub/model"
)

// Log rule names.
const (
	RuleLogErrorSpike = "log-error-spike"
	RuleLogSilence    = "log-silence"
)

// logTrack keeps one search's signals for one job.
type logTrack struct {
	last     model.LogSignal
	lastSeen time.Time
	history  []int // past window counts, oldest first
}

const maxLogHistory = 96

// ObserveLogs feeds the results of a log search.
func (e *Engine) ObserveLogs(signals []model.LogSignal) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range signals {
		j := e.jobs[model.JobKey{Tenant: s.Tenant, Job: s.Job}]
		if j == nil {
			continue
		}
		if j.logs == nil {
			j.logs = map[string]*logTrack{}
		}
		t := j.logs[s.Search]
		if t == nil {
			t = &logTrack{}
			j.logs[s.Search] = t
		}
		if t.last.Search != "" {
			t.history = append(t.history, t.last.Count)
			if len(t.history) > maxLogHistory {
				t.history = t.history[1:]
			}
		}
		t.last = s
		if s.LastSeen.After(t.lastSeen) {
			t.lastSeen = s.LastSeen
		}
	}
}

// usual is the 90th percentile of past counts; ok is false with fewer than 8.
func (t *logTrack) usual() (float64, bool) {
	if len(t.history) < 8 {
		return 0, false
	}
	v := make([]float64, len(t.history))
	for i, c := range t.history {
		v[i] = float64(c)
	}
	return quantile(v, 0.9), true
}

func examples(c []model.LogCount) string {
	parts := make([]string, 0, len(c))
	for _, x := range c {
		parts = append(parts, fmt.Sprintf("%d× %q", x.N, x.Text))
	}
	return strings.Join(parts, ", ")
}

// logContext is the fresh error lines of a job, for its other alerts:
// "27 error lines in the last 15m: 20× "mongo: server selection timeout"".
func (j *JobState) logContext(now time.Time) string {
	var parts []string
	names := make([]string, 0, len(j.logs))
	for n := range j.logs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		s := &j.logs[n].last
		if s.Kind == model.LogErrors && s.Count > 0 && s.Fresh(now) {
			p := fmt.Sprintf("%d error lines in the last %v", s.Count, s.Window)
			if len(s.Examples) > 0 {
				p += ": " + examples(s.Examples[:min(len(s.Examples), 2)])
			}
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, "; ")
}

// evaluateLogs is log-error-spike and log-silence for one job.
func evaluateLogs(j *JobState, now time.Time, mk func(rule string, def model.Severity, key string, summary string, details map[string]any)) {
	for name, t := range j.logs {
		s := &t.last
		if !s.Fresh(now) {
			continue
		}
		switch s.Kind {
		case model.LogErrors:
			usual, have := t.usual()
			spike := s.Threshold > 0 && s.Count >= s.Threshold
			why := fmt.Sprintf("threshold %d", s.Threshold)
			if have && float64(s.Count) > 3*usual+5 {
				spike, why = true, fmt.Sprintf("usually at most %.0f", usual)
			}
			if spike {
				mk(RuleLogErrorSpike, model.SeverityWarning, name, fmt.Sprintf("%d error lines in the last %v (%s, search %s): %s",
					s.Count, s.Window, why, name, examples(s.Examples)),
					map[string]any{"count": s.Count, "window": s.Window.String(), "search": name, "usual_p90": usual})
			}
		case model.LogActivity:
			cur := j.current()
			if cur == nil || cur.state != model.StateRunning || s.SilenceAfter <= 0 {
				continue
			}
			since := t.lastSeen
			if since.IsZero() || since.Before(cur.started) {
				since = cur.started
			}
			if now.Sub(since) > s.SilenceAfter {
				mk(RuleLogSilence, model.SeverityWarning, name, fmt.Sprintf("run %s is running but has logged nothing for %.0f min (search %s)",
					cur.id, now.Sub(since).Minutes(), name),
					map[string]any{"last_line_at": t.lastSeen, "search": name})
			}
		}
	}
}
