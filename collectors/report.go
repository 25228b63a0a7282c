package collectors

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"time"
)

// ErrNoReport: the source keeps no data-quality reports (it is not an
// importer), or it has none for the run (not validated yet, or expired).
var ErrNoReport = errors.New("no data-quality report")

// reporter is a collector whose source keeps each run's data-quality report.
type reporter interface {
	report(ctx context.Context, runID string) ([]byte, error)
}

// report reads the importer's GET /api/v1/report?run_id=: the run's
// data-quality report (findings by code and file with what each means, how
// to fix it and examples with line, column and value), as the importer
// stored it.
func (c *importerCollector) report(ctx context.Context, runID string) ([]byte, error) {
	body, err := c.f.get(ctx, c.reportURL+"?run_id="+url.QueryEscape(runID))
	var he *HTTPError
	if errors.As(err, &he) && he.Status == 404 {
		return nil, ErrNoReport
	}
	return body, err
}

// KeepsReports says whether the source named name keeps its runs'
// data-quality reports (an importer).
func (r *Runner) KeepsReports(name string) bool {
	for _, x := range r.sources {
		if x.cfg.Name == name {
			_, ok := x.c.(reporter)
			return ok
		}
	}
	return false
}

// Report reads the data-quality report of run runID from the source named
// name, for a page that shows it: each try within the source's timeout, one
// more try after a failure that may pass (a timeout, a refused connection,
// 429 or 5xx) following the source's backoff, bounded by ctx. Errors name
// the source and carry no secret of it (the source's scrubber ran).
func (r *Runner) Report(ctx context.Context, name, runID string) ([]byte, error) {
	var s *source
	for _, x := range r.sources {
		if x.cfg.Name == name {
			s = x
		}
	}
	if s == nil {
		return nil, ErrNoReport
	}
	rp, ok := s.c.(reporter)
	if !ok {
		return nil, ErrNoReport
	}
	var body []byte
	var err error
	for attempt := 1; attempt <= 2; attempt++ {
		body, err = rp.report(ctx, runID)
		if err == nil || errors.Is(err, ErrNoReport) || !transient(err) || attempt == 2 {
			break
		}
		wait := s.policy.Delay(attempt, rand.Float64())
		if wait > 2*time.Second {
			wait = 2 * time.Second
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("source %s: %w", name, ctx.Err())
		case <-time.After(wait):
		}
	}
	if err != nil && !errors.Is(err, ErrNoReport) {
		return nil, fmt.Errorf("source %s: %w", name, s.red.Error(err))
	}
	return body, err
}

// transient: a failure worth one more try.
func transient(err error) bool {
	var he *HTTPError
	if errors.As(err, &he) {
		return he.Status == 429 || he.Status >= 500
	}
	return true // the network, a timeout
}
