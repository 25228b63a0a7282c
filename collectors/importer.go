package collectors

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/etlhub/etlhub/internal/redact"
	"github.com/etlhub/etlhub/model"
)

// importerCollector reads the importer's GET /api/v1/runs, which answers in
// the observation schema: {"runs": [observation, ...]} (a bare array works too).
type importerCollector struct {
	cfg SourceConfig
	f   *fetcher
	url string
}

func newImporter(c SourceConfig) (Collector, error) {
	u := strings.TrimRight(c.URL, "/")
	if !strings.HasSuffix(u, "/api/v1/runs") {
		u += "/api/v1/runs"
	}
	return &importerCollector{cfg: c, f: newFetcher(c), url: u}, nil
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
