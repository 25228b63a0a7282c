package app

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/etlhub/etlhub/collectors"
	"github.com/etlhub/etlhub/collectors/sumologic"
	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/model"
	"github.com/etlhub/etlhub/rules"
	"github.com/etlhub/etlhub/store"
	"github.com/robfig/cron/v3"
)

// LogsConfig turns log searches into signals for the rules.
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
	Kind     string        `yaml:"kind"`
	Schedule string        `yaml:"schedule"`
	Window   time.Duration `yaml:"window"`
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
		if s.Kind != rules.LogErrors && s.Kind != rules.LogActivity {
			p.Add(k+".kind", "%q is not errors or activity", s.Kind)
		}
		if s.Schedule == "" {
			s.Schedule = "*/5 * * * *"
		}
		if _, err := collectors.ParseSchedule(s.Schedule); err != nil {
			p.Add(k+".schedule", "%v", err)
		}
		if s.Window == 0 {
			s.Window = 15 * time.Minute
		}
		defaults := map[*string]string{&s.TenantField: "tenant", &s.JobField: "job", &s.MessageField: "msg",
			&s.CountField: "_count", &s.TimeField: "time"}
		for f, d := range defaults {
			if *f == "" {
				*f = d
			}
		}
		if s.Kind == rules.LogErrors && s.Threshold == 0 {
			s.Threshold = 10
		}
		if s.Kind == rules.LogActivity && s.SilenceAfter == 0 {
			s.SilenceAfter = 20 * time.Minute
		}
		if s.DownAfter == 0 {
			s.DownAfter = 30 * time.Minute
		}
	}
}

// logSearches runs every search on its cron: a service whose searches run
// on its context, so stopping the hub cancels a search in flight.
type logSearches struct {
	cfg    *Config
	st     *store.Store
	engine *rules.Engine
	sumo   *sumologic.Client
	log    *slog.Logger
	now    func() time.Time
	cron   *cron.Cron
	cancel context.CancelFunc
}

func newLogSearches(cfg *Config, st *store.Store, engine *rules.Engine, log *slog.Logger, now func() time.Time) *logSearches {
	l := &logSearches{cfg: cfg, st: st, engine: engine, log: log.With("part", "logs"), now: now,
		cron: cron.New(cron.WithLocation(time.UTC), cron.WithParser(model.Cron),
			cron.WithChain(cron.Recover(collectors.CronLogger{L: log}), cron.SkipIfStillRunning(collectors.CronLogger{L: log})))}
	if cfg.Logs.SumoLogic != nil {
		l.sumo = sumologic.New(*cfg.Logs.SumoLogic)
	}
	return l
}

func (l *logSearches) Name() string { return "log searches" }

func (l *logSearches) Start(ctx context.Context) error {
	ctx, l.cancel = context.WithCancel(ctx)
	for i := range l.cfg.Logs.Searches {
		s := l.cfg.Logs.Searches[i]
		if _, err := l.cron.AddFunc(s.Schedule, func() { l.run(ctx, s, l.now().UTC()) }); err != nil {
			return fmt.Errorf("log search %q: %w", s.Name, err)
		}
	}
	l.cron.Start()
	return nil
}

func (l *logSearches) Stop() {
	if l.cancel != nil {
		l.cancel()
	}
	<-l.cron.Stop().Done()
}

// run performs one search, feeds its signals to the rules and records the
// search's health like any source's.
func (l *logSearches) run(ctx context.Context, s LogSearchConfig, now time.Time) {
	name := "logs:" + s.Name
	h, err := l.st.Source(ctx, name)
	if err != nil {
		h = model.SourceHealth{Name: name}
	}
	h.Kind = s.Source
	start := time.Now()
	rows, err := l.rows(ctx, s, now)
	var sigs []rules.LogSignal
	if err == nil {
		sigs = aggregateLogs(s, rows, now, l.cfg.Jobs)
		l.engine.ObserveLogs(sigs)
	} else {
		l.log.Warn("log search failed", "search", s.Name, "error", err)
	}
	h.Record(now, time.Since(start), len(rows), err)
	if serr := l.st.SaveSource(ctx, h); serr != nil {
		l.log.Error("saving log search health failed", "error", serr)
	}
}

func (l *logSearches) rows(ctx context.Context, s LogSearchConfig, now time.Time) ([]map[string]string, error) {
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
func aggregateLogs(s LogSearchConfig, rows []map[string]string, now time.Time, jobs []model.JobSpec) []rules.LogSignal {
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
	if s.Kind == rules.LogActivity {
		for _, j := range jobs {
			k := model.JobKey{Tenant: j.Tenant, Job: j.Job}
			if by[k] == nil {
				by[k] = &acc{}
			}
		}
	}
	out := make([]rules.LogSignal, 0, len(by))
	for k, a := range by {
		sig := rules.LogSignal{Search: s.Name, Kind: s.Kind, Tenant: k.Tenant, Job: k.Job, At: now, Window: s.Window,
			Count: a.n, LastSeen: a.last, Threshold: s.Threshold, SilenceAfter: s.SilenceAfter}
		for m, n := range a.msgs {
			sig.Examples = append(sig.Examples, rules.Count{Text: m, N: n})
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
func readLogFiles(s LogSearchConfig, now time.Time) ([]map[string]string, error) {
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
		fh, err := os.Open(f)
		if err != nil {
			return nil, err
		}
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
		fh.Close()
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
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
