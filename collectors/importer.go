package collectors

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/etlhub/etlhub/internal/status"
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
	items, err := runsArray(body)
	if err != nil {
		return Result{}, err
	}
	var res Result
	opt := status.DecodeOptions{DefaultAt: now, DefaultSource: c.cfg.Name}
	for i, raw := range items {
		o, err := status.Decode(raw, opt)
		if err != nil {
			res.Rejected = append(res.Rejected, fmt.Errorf("runs[%d]: %w", i, err))
			continue
		}
		res.Observations = append(res.Observations, o)
	}
	return res, nil
}

// runsArray finds the array of runs in {"runs": [...]} or [...].
func runsArray(body []byte) ([]json.RawMessage, error) {
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
		return nil, fmt.Errorf("response is not JSON: %s", firstBytes(body))
	}
	if env.Runs == nil {
		return nil, fmt.Errorf(`response has no "runs" array: %s`, firstBytes(body))
	}
	return *env.Runs, nil
}

func firstBytes(b []byte) string {
	s := strings.ToValidUTF8(string(b), "?")
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return fmt.Sprintf("%q", s)
}
