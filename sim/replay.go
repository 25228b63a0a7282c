package sim

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/etlhub/etlhub/app"
	"github.com/etlhub/etlhub/model"
	"github.com/etlhub/etlhub/rules"
	"github.com/etlhub/etlhub/store"
	"github.com/prometheus/client_golang/prometheus"
)

// ReplayOptions are the inputs of a replay.
type ReplayOptions struct {
	Scenario     string
	Observations string
	Out          string
	StorePath    string // "" for a temporary SQLite file
	Tick         time.Duration
	Params       rules.Params
}

// ReplayResult counts what a replay did.
type ReplayResult struct {
	Jobs, Observations, Ticks, Transitions int
}

// Scenario is the jobs of a replay (bench/predict's scenario.json).
type Scenario struct {
	Name  string          `json:"name"`
	Start *time.Time      `json:"start"`
	End   *time.Time      `json:"end"`
	Jobs  []model.JobSpec `json:"jobs"`
}

// LoadScenario reads and compiles a scenario; errors name the job and field.
func LoadScenario(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var sc Scenario
	if err := json.Unmarshal(data, &sc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(sc.Jobs) == 0 {
		return nil, fmt.Errorf("%s: no jobs", path)
	}
	seen := map[string]bool{}
	for i := range sc.Jobs {
		if err := sc.Jobs[i].Compile(); err != nil {
			return nil, fmt.Errorf("%s: jobs[%d]: %w", path, i, err)
		}
		if seen[sc.Jobs[i].Key()] {
			return nil, fmt.Errorf("%s: jobs[%d]: %s is defined twice", path, i, sc.Jobs[i].Key())
		}
		seen[sc.Jobs[i].Key()] = true
	}
	return &sc, nil
}

// AlertLine is one line of a replay's output (docs/architecture.md, "Alert line").
type AlertLine struct {
	At          time.Time `json:"at"`
	Tenant      string    `json:"tenant"`
	Job         string    `json:"job"`
	Severity    string    `json:"severity"`
	Status      string    `json:"status"`
	Rule        string    `json:"rule"`
	Fingerprint string    `json:"fingerprint"`
	Summary     string    `json:"summary"`
	// Scope "shared", Affected and GroupedUnder: see model.Alert.
	Scope        string           `json:"scope,omitempty"`
	Affected     []model.Affected `json:"affected,omitempty"`
	GroupedUnder string           `json:"grouped_under,omitempty"`
}

// Replay runs observations through the same ingest path (a SQLite store) and
// rules as the live hub, on a simulated clock, and writes the transitions.
func Replay(ctx context.Context, o ReplayOptions) (ReplayResult, error) {
	var res ReplayResult
	sc, err := LoadScenario(o.Scenario)
	if err != nil {
		return res, err
	}
	res.Jobs = len(sc.Jobs)
	if o.Tick <= 0 {
		o.Tick = time.Minute
	}
	in, err := os.Open(o.Observations)
	if err != nil {
		return res, err
	}
	defer in.Close()

	storePath := o.StorePath
	if storePath == "" {
		dir, err := os.MkdirTemp("", "etlhub-replay-")
		if err != nil {
			return res, err
		}
		defer os.RemoveAll(dir)
		storePath = filepath.Join(dir, "replay.db")
	}
	st, err := store.Open(ctx, store.Config{Driver: "sqlite", Path: storePath}, nil)
	if err != nil {
		return res, err
	}
	defer st.Close()
	params := o.Params
	if sc.End != nil {
		params.Horizon = sc.End.UTC()
	}
	engine := rules.NewEngine(sc.Jobs, params, nil)
	// The rules see each tick's observations at once; the store takes them in
	// batches of up to 1000, as a pusher would send them. Both are the live
	// hub's code: the Ingestor stores, then hands the batch to the rules.
	ing := app.NewIngestor(st, prometheus.NewRegistry())
	var pending []model.Observation
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		_, err := ing.Ingest(ctx, "replay", pending)
		pending = pending[:0]
		return err
	}

	tmp := o.Out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return res, err
	}
	defer os.Remove(tmp)
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)

	obs := newObsReader(in, o.Observations)
	var clock time.Time
	if sc.Start != nil {
		clock = sc.Start.UTC().Truncate(o.Tick)
	}
	var end time.Time
	if sc.End != nil {
		end = sc.End.UTC()
	}
	var batch []model.Observation
	next, err := obs.next()
	if err != nil && !errors.Is(err, io.EOF) {
		return res, err
	}
	if clock.IsZero() && next != nil {
		clock = next.At.Truncate(o.Tick)
	}
	for {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		batch = batch[:0]
		for next != nil && !next.At.After(clock) {
			batch = append(batch, *next)
			if next, err = obs.next(); err != nil && !errors.Is(err, io.EOF) {
				return res, err
			}
		}
		if len(batch) > 0 {
			engine.Observe(batch, clock)
			pending = append(pending, batch...)
			if len(pending) >= 1000 {
				if err := flush(); err != nil {
					return res, err
				}
			}
			res.Observations += len(batch)
		}
		trans, _ := engine.Tick(clock)
		res.Ticks++
		for _, t := range trans {
			if t.Alert.Silenced {
				continue
			}
			a := t.Alert
			if err := enc.Encode(AlertLine{At: t.At, Tenant: a.Tenant, Job: a.Job, Severity: string(a.Severity),
				Status: string(t.Status), Rule: a.Rule, Fingerprint: a.Fingerprint, Summary: a.Summary,
				Scope: a.Scope, Affected: a.Affected, GroupedUnder: a.GroupedUnder}); err != nil {
				return res, err
			}
			res.Transitions++
		}
		if next == nil && (end.IsZero() || !clock.Before(end)) {
			break
		}
		clock = clock.Add(o.Tick)
	}
	if err := flush(); err != nil {
		return res, err
	}
	if err := w.Flush(); err != nil {
		return res, err
	}
	if err := f.Close(); err != nil {
		return res, err
	}
	return res, os.Rename(tmp, o.Out)
}

// obsReader reads JSON lines of observations, checking they come in at order.
type obsReader struct {
	sc   *bufio.Scanner
	name string
	line int
	last time.Time
}

func newObsReader(r io.Reader, name string) *obsReader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	return &obsReader{sc: sc, name: name}
}

func (r *obsReader) next() (*model.Observation, error) {
	for r.sc.Scan() {
		r.line++
		b := r.sc.Bytes()
		if len(b) == 0 {
			continue
		}
		o, err := model.Decode(b, model.DecodeOptions{DefaultSource: "replay"})
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", r.name, r.line, err)
		}
		if o.At.Before(r.last) {
			return nil, fmt.Errorf("%s:%d: observations are not sorted by at (%s after %s)", r.name, r.line,
				o.At.Format(time.RFC3339), r.last.Format(time.RFC3339))
		}
		r.last = o.At
		return &o, nil
	}
	if err := r.sc.Err(); err != nil {
		return nil, fmt.Errorf("%s:%d: %w", r.name, r.line+1, err)
	}
	return nil, io.EOF
}
