package collectors

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/etlhub/etlhub/internal/redact"
	"github.com/etlhub/etlhub/model"
)

// importerCollector reads the importer's GET /api/v1/runs, which answers in
// the observation schema: {"runs": [observation, ...]} (a bare array works too).
//
// It also reads the importer's GET /api/v1/dependencies (what the importer
// sees of each dependency it calls) and turns it into measurements: subject
// "redis:SOURCE", "mongodb:SOURCE" and "sftp:SOURCE:TENANT" (the importer's
// view, a baseline apart from the hub's own probes). An importer without that
// endpoint (404) gives runs only.
type importerCollector struct {
	cfg       SourceConfig
	f         *fetcher
	url       string
	depsURL   string
	reportURL string
}

func newImporter(c SourceConfig) (Collector, error) {
	u := strings.TrimRight(c.URL, "/")
	base := strings.TrimSuffix(u, "/api/v1/runs")
	if !strings.HasSuffix(u, "/api/v1/runs") {
		u += "/api/v1/runs"
	}
	return &importerCollector{cfg: c, f: newFetcher(c), url: u, depsURL: base + "/api/v1/dependencies", reportURL: base + "/api/v1/report"}, nil
}

// importerDependency is one entry of the importer's GET /api/v1/dependencies.
type importerDependency struct {
	Name      string   `json:"name"`
	Calls     float64  `json:"calls"`
	ErrorRate *float64 `json:"error_rate"`
	P50Ms     *float64 `json:"p50_ms"`
	P95Ms     *float64 `json:"p95_ms"`
	InFlight  float64  `json:"in_flight"`
	Breaker   string   `json:"breaker"`
	LastError string   `json:"last_error"`
}

// dependencies reads what the importer sees of its dependencies.
func (c *importerCollector) dependencies(ctx context.Context, now time.Time) ([]model.Measurement, error) {
	body, err := c.f.get(ctx, c.depsURL)
	var he *HTTPError
	if errors.As(err, &he) && he.Status == 404 {
		return nil, nil // an importer from before the endpoint
	}
	if err != nil {
		return nil, err
	}
	var env struct {
		Dependencies []importerDependency `json:"dependencies"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("dependencies: response is not JSON: %s", firstBytes(body, c.f.red))
	}
	var out []model.Measurement
	for _, d := range env.Dependencies {
		var kind model.DependencyKind
		subject, tenant := "", ""
		switch {
		case d.Name == "redis":
			kind, subject = model.KindRedis, "redis:"+c.cfg.Name
		case d.Name == "mongo" || d.Name == "mongodb":
			kind, subject = model.KindMongoDB, "mongodb:"+c.cfg.Name
		case strings.HasPrefix(d.Name, "sftp:"):
			tenant = strings.TrimPrefix(d.Name, "sftp:")
			kind, subject = model.KindSFTP, "sftp:"+c.cfg.Name+":"+tenant
		default:
			continue
		}
		m := model.Measurement{At: now.UTC(), Source: c.cfg.Name, Subject: subject, Kind: kind, Tenant: tenant, Up: true,
			Values: map[string]float64{model.ValueCalls: d.Calls, model.ValueInFlight: d.InFlight}}
		for name, v := range map[string]*float64{model.ValueErrorRate: d.ErrorRate, model.ValueP50Ms: d.P50Ms, model.ValueP95Ms: d.P95Ms} {
			if v != nil {
				m.Values[name] = *v
			}
		}
		switch d.Breaker {
		case "open":
			m.Values[model.ValueBreakerOpen] = 1
			// The importer fails fast on it: down, as the importer sees it.
			m.Up, m.Error = false, "the importer's circuit breaker is open: "+model.Clip(d.LastError, 1000)
		case "half-open":
			m.Values[model.ValueBreakerOpen] = 0.5
		default:
			m.Values[model.ValueBreakerOpen] = 0
		}
		out = append(out, m)
	}
	return out, nil
}

func (c *importerCollector) Collect(ctx context.Context, now time.Time) (Result, error) {
	body, err := c.f.get(ctx, c.url)
	if err != nil {
		return Result{}, err
	}
	items, err := runsArray(body, c.f.red)
	if err != nil {
		return Result{}, err
	}
	var res Result
	opt := model.DecodeOptions{DefaultAt: now, DefaultSource: c.cfg.Name}
	for i, raw := range items {
		o, err := model.Decode(raw, opt)
		if err != nil {
			res.Rejected = append(res.Rejected, fmt.Errorf("runs[%d]: %w", i, err))
			continue
		}
		// The source is the one the hub configured, whatever the payload
		// calls itself: source health, jobs[].source, source-down
		// inhibition and the tenants a source feeds all go by that name.
		o.Source = c.cfg.Name
		res.Observations = append(res.Observations, o)
	}
	ms, err := c.dependencies(ctx, now)
	if err != nil {
		// The runs were read: the attempt stands, the dependencies' error is
		// told as a rejected item (logged and counted).
		res.Rejected = append(res.Rejected, fmt.Errorf("dependencies: %w", err))
	}
	res.Measurements = ms
	return res, nil
}

// runsArray finds the array of runs in {"runs": [...]} or [...].
func runsArray(body []byte, red *redact.Scrubber) ([]json.RawMessage, error) {
	body = bytes.TrimSpace(body)
	var items []json.RawMessage
	if len(body) > 0 && body[0] == '[' {
		if err := json.Unmarshal(body, &items); err != nil {
			return nil, fmt.Errorf("response is not a JSON array of runs: %w", err)
		}
		return items, nil
	}
	var env struct {
		Runs *[]json.RawMessage `json:"runs"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("response is not JSON: %s", firstBytes(body, red))
	}
	if env.Runs == nil {
		return nil, fmt.Errorf(`response has no "runs" array: %s`, firstBytes(body, red))
	}
	return *env.Runs, nil
}

// firstBytes quotes the start of a body for an error: secrets scrubbed
// first, then cut on a character.
func firstBytes(b []byte, red *redact.Scrubber) string {
	return fmt.Sprintf("%q", red.Cut(string(b[:min(len(b), 4096)]), 80))
}
