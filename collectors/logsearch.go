package collectors

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/etlhub/etlhub/collectors/sumologic"
	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/internal/redact"
	"github.com/etlhub/etlhub/model"
)

// LogsConfig is the logs section: saved log searches that turn log lines
// into signals for the rules. The runner schedules each like a source
// (logs:NAME), with its timeout, backoff and health.
type LogsConfig struct {
	SumoLogic *sumologic.Config `yaml:"sumologic"`
	Searches  []LogSearchConfig `yaml:"searches"`
}

// LogSearchConfig is one saved search on a cron.
type LogSearchConfig struct {
	Name string `yaml:"name"`
	// Source is sumologic (Query) or file (Path: a JSON-lines file or a
	// directory of them, e.g. the importer's own logs).
	Source string `yaml:"source"`
	Query  string `yaml:"query"`
	Path   string `yaml:"path"`
	// Kind is errors (counts; spikes alert and explain other alerts) or
	// activity (any lines; a running job that logs nothing is silent).
	Kind     model.LogKind `yaml:"kind"`
	Schedule string        `yaml:"schedule"`
	Window   time.Duration `yaml:"window"`
	// Timeout bounds one search (default: logs.sumologic.timeout for
	// sumologic, 1m for file).
	Timeout time.Duration `yaml:"timeout"`
	// Backoff after consecutive failures: Base doubling up to Max (1m, 30m):
	// a failing search skips its schedule until then.
	Backoff BackoffConfig `yaml:"backoff"`
	// Field names in the results.
	TenantField  string `yaml:"tenant_field"`
	JobField     string `yaml:"job_field"`
	MessageField string `yaml:"message_field"`
	CountField   string `yaml:"count_field"`
	TimeField    string `yaml:"time_field"`
	// Match keeps only lines whose fields equal these (file source), e.g. {level: ERROR}.
	Match        map[string]string `yaml:"match"`
	Threshold    int               `yaml:"threshold"`
	SilenceAfter time.Duration     `yaml:"silence_after"`
	DownAfter    time.Duration     `yaml:"down_after"`
}

// Validate sets defaults and checks the section.
func (l *LogsConfig) Validate(p *config.Problems, key string) {
	if l.SumoLogic != nil {
		l.SumoLogic.Validate(p, key+".sumologic")
	}
	names := map[string]bool{}
	for i := range l.Searches {
		s := &l.Searches[i]
		k := fmt.Sprintf("%s.searches[%d]", key, i)
		if s.Name == "" || names[s.Name] {
			p.Add(k+".name", "is required and unique")
		}
		names[s.Name] = true
		switch s.Source {
		case "sumologic":
			if l.SumoLogic == nil {
				p.Add(k+".source", "sumologic needs the logs.sumologic section")
			} else if s.Timeout == 0 {
				s.Timeout = l.SumoLogic.Timeout
			}
			if s.Query == "" {
				p.Add(k+".query", "is required for source sumologic")
			}
		case "file":
			if s.Path == "" {
				p.Add(k+".path", "is required for source file")
			}
		default:
			p.Add(k+".source", "%q is not sumologic or file", s.Source)
		}
		if s.Kind != model.LogErrors && s.Kind != model.LogActivity {
			p.Add(k+".kind", "%q is not errors or activity", s.Kind)
		}
		validateSchedule(p, k+".schedule", &s.Schedule, "*/5 * * * *")
		if s.Window == 0 {
			s.Window = 15 * time.Minute
		}
		if s.Timeout == 0 {
			s.Timeout = time.Minute
		}
		if s.Timeout < time.Second || s.Timeout > 30*time.Minute {
			p.Add(k+".timeout", "%v is outside 1s..30m", s.Timeout)
		}
		s.Backoff.validate(p, k+".backoff", time.Minute, 30*time.Minute)
		defaults := map[*string]string{&s.TenantField: "tenant", &s.JobField: "job", &s.MessageField: "msg",
			&s.CountField: "_count", &s.TimeField: "time"}
		for f, d := range defaults {
			if *f == "" {
				*f = d
			}
		}
		if s.Kind == model.LogErrors && s.Threshold == 0 {
			s.Threshold = 10
		}
		if s.Kind == model.LogActivity && s.SilenceAfter == 0 {
			s.SilenceAfter = 20 * time.Minute
		}
		if s.DownAfter == 0 {
			s.DownAfter = 30 * time.Minute
		}
	}
}

// source is how the runner schedules the search: a source named logs:NAME.
func (s *LogSearchConfig) source() SourceConfig {
	return SourceConfig{Name: model.LogSearchSource(s.Name), Kind: s.Source, Schedule: s.Schedule, Timeout: s.Timeout,
		Backoff: s.Backoff, DownAfter: s.DownAfter}
}

// logSearch is one log search as a collector: its result is log signals.
type logSearch struct {
	cfg  LogSearchConfig
	sumo *sumologic.Client // nil for file searches
	// jobs are the configured jobs: an activity search gives each a signal,
	// zero when it logged nothing.
	jobs []model.JobKey
}

// logSearchScrubber holds the Sumo Logic keys (the client scrubs its own
// errors; this keeps them out of what the search returns too).
func logSearchScrubber(l *LogsConfig) *redact.Scrubber {
	if l.SumoLogic == nil {
		return redact.New()
	}
	return redact.New(redact.BasicSecrets(l.SumoLogic.AccessID.Value(), l.SumoLogic.AccessKey.Value())...)
}

func (l *logSearch) Collect(ctx context.Context, now time.Time) (Result, error) {
	rows, err := l.rows(ctx, now)
	if err != nil {
		return Result{}, err
	}
	return Result{Logs: aggregateLogs(l.cfg, rows, now, l.jobs), Lines: len(rows)}, nil
}

func (l *logSearch) rows(ctx context.Context, now time.Time) ([]map[string]string, error) {
	s := &l.cfg
	if s.Source == "file" {
		return readLogFiles(s, now)
	}
	res, err := l.sumo.Search(ctx, sumologic.Query{Query: s.Query, From: now.Add(-s.Window), To: now})
	if err != nil {
		return nil, err
	}
	if len(res.Records) > 0 {
		return res.Records, nil
	}
	return res.Messages, nil
}

// aggregateLogs turns result rows into one signal per tenant's job: the sum
// of count_field (1 a row without it), the latest time, the top messages.
// Activity searches give every configured job a signal, zero when silent.
func aggregateLogs(s LogSearchConfig, rows []map[string]string, now time.Time, jobs []model.JobKey) []model.LogSignal {
	type acc struct {
		n    int
		last time.Time
		msgs map[string]int
	}
	by := map[model.JobKey]*acc{}
	for _, r := range rows {
		k := model.JobKey{Tenant: r[s.TenantField], Job: r[s.JobField]}
		if k.Tenant == "" || k.Job == "" {
			continue
		}
		a := by[k]
		if a == nil {
			a = &acc{msgs: map[string]int{}}
			by[k] = a
		}
		n := 1
		if v, err := strconv.Atoi(r[s.CountField]); err == nil && v >= 0 {
			n = v
		}
		a.n += n
		if m := r[s.MessageField]; m != "" {
			a.msgs[model.Clip(m, 200)] += n
		}
		if t := rowTime(r, s.TimeField); t.After(a.last) {
			a.last = t
		}
	}
	if s.Kind == model.LogActivity {
		for _, k := range jobs {
			if by[k] == nil {
				by[k] = &acc{}
			}
		}
	}
	out := make([]model.LogSignal, 0, len(by))
	for k, a := range by {
		sig := model.LogSignal{Search: s.Name, Kind: s.Kind, Tenant: k.Tenant, Job: k.Job, At: now, Window: s.Window,
			Count: a.n, LastSeen: a.last, Threshold: s.Threshold, SilenceAfter: s.SilenceAfter}
		for m, n := range a.msgs {
			sig.Examples = append(sig.Examples, model.LogCount{Text: m, N: n})
		}
		sort.Slice(sig.Examples, func(i, j int) bool {
			if sig.Examples[i].N != sig.Examples[j].N {
				return sig.Examples[i].N > sig.Examples[j].N
			}
			return sig.Examples[i].Text < sig.Examples[j].Text
		})
		if len(sig.Examples) > 3 {
			sig.Examples = sig.Examples[:3]
		}
		out = append(out, sig)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Tenant+out[i].Job < out[j].Tenant+out[j].Job })
	return out
}

// rowTime reads a row's time: RFC 3339 in field, or Sumo's _messagetime /
// _receipttime in epoch milliseconds.
func rowTime(r map[string]string, field string) time.Time {
	if v := r[field]; v != "" {
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			return t.UTC()
		}
	}
	for _, f := range []string{"_messagetime", "_receipttime"} {
		if ms, err := strconv.ParseInt(r[f], 10, 64); err == nil && ms > 0 {
			return time.UnixMilli(ms).UTC()
		}
	}
	return time.Time{}
}

// readLogFiles reads JSON-lines logs (a file, or *.jsonl and *.log in a
// directory) and keeps the lines of the window that match.
func readLogFiles(s *LogSearchConfig, now time.Time) ([]map[string]string, error) {
	files := []string{s.Path}
	if st, err := os.Stat(s.Path); err != nil {
		return nil, fmt.Errorf("log path: %w", err)
	} else if st.IsDir() {
		files = nil
		for _, pat := range []string{"*.jsonl", "*.log"} {
			m, _ := filepath.Glob(filepath.Join(s.Path, pat))
			files = append(files, m...)
		}
	}
	from := now.Add(-s.Window)
	var out []map[string]string
	for _, f := range files {
		if st, err := os.Stat(f); err != nil || st.ModTime().Before(from) {
			continue // untouched since before the window
		}
		rows, err := readLogFile(f, s, from, now)
		if err != nil {
			return nil, err
		}
		out = append(out, rows...)
	}
	return out, nil
}

func readLogFile(f string, s *LogSearchConfig, from, now time.Time) ([]map[string]string, error) {
	fh, err := os.Open(f)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	var out []map[string]string
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var raw map[string]any
		if json.Unmarshal(sc.Bytes(), &raw) != nil {
			continue // not a JSON line: not ours to count
		}
		row := make(map[string]string, len(raw))
		for k, v := range raw {
			if str, ok := v.(string); ok {
				row[k] = str
			} else {
				row[k] = fmt.Sprint(v)
			}
		}
		t := rowTime(row, s.TimeField)
		if t.Before(from) || t.After(now) || !matches(row, s.Match) {
			continue
		}
		delete(row, s.CountField)
		out = append(out, row)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", f, err)
	}
	return out, nil
}

func matches(row, want map[string]string) bool {
	for k, v := range want {
		if !strings.EqualFold(row[k], v) {
			return false
		}
	}
	return true
}
