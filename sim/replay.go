package sim

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/etlhub/etlhub/alerting"
	"github.com/etlhub/etlhub/api"
	"github.com/etlhub/etlhub/app"
	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/model"
	"github.com/etlhub/etlhub/store"
)

// ReplayOptions are the inputs of a replay.
type ReplayOptions struct {
	Scenario     string
	Observations string
	Out          string
	StorePath    string // "" for a temporary SQLite file
	Tick         time.Duration
	// Rules is the rules section (rules: in etlhub.yaml; zero values take
	// its defaults).
	Rules alerting.RulesConfig
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

// Replay runs observations through the hub etlhub serve runs (app.New: the
// same ingest path into a SQLite store, the same rules and alert loop, the
// same services) on a simulated clock, and writes the transitions.
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
	obs := newObsReader(in, o.Observations)
	next, err := obs.next()
	if err != nil && !errors.Is(err, io.EOF) {
		return res, err
	}
	var clock, end time.Time
	if sc.Start != nil {
		clock = sc.Start.UTC().Truncate(o.Tick)
	} else if next != nil {
		clock = next.At.Truncate(o.Tick)
	}
	if sc.End != nil {
		end = sc.End.UTC()
	}

	// The hub as etlhub serve wires it, on the replay's simulated clock;
	// the replay steps the alert loop itself, one tick at a time. Nothing
	// serves its API: the token only satisfies the config.
	var tok [16]byte
	rand.Read(tok[:])
	cfg := &app.Config{Store: store.Config{Driver: "sqlite", Path: storePath}, Rules: o.Rules,
		Auth: api.AuthConfig{Tokens: []api.TokenConfig{{Name: "replay", Token: config.Secret(hex.EncodeToString(tok[:])), Role: "viewer"}}}}
	var p config.Problems
	cfg.Validate(&p)
	if err := p.Err("the replay's settings"); err != nil {
		return res, err
	}
	// The scenario's jobs were compiled and checked by LoadScenario (a
	// job's source names no configured source here: replay has none).
	cfg.Jobs = sc.Jobs
	var mu sync.Mutex
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	h, err := app.New(ctx, cfg, app.Options{Now: now, Stepped: true, Horizon: end})
	if err != nil {
		return res, err
	}
	if err := h.Start(ctx); err != nil {
		h.Stop()
		return res, err
	}
	defer h.Stop()

	tmp := o.Out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return res, err
	}
	defer os.Remove(tmp)
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)

	ing := h.Ingest.Batched("replay", 1000)
	var batch []model.Observation
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
		// The rules see each tick's observations at once, on the hub's
		// clock; the store takes them in batches of up to 1000, as a pusher
		// would send them.
		if len(batch) > 0 {
			if err := ing.Add(ctx, batch); err != nil {
				return res, err
			}
			res.Observations += len(batch)
		}
		trans, err := h.Alerting.StepTransitions(ctx, clock)
		if err != nil {
			return res, err
		}
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
		mu.Lock()
		clock = clock.Add(o.Tick)
		mu.Unlock()
	}
	if err := ing.Flush(ctx); err != nil {
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
