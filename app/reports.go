package app

import (
	"context"
	"errors"

	"github.com/etlhub/etlhub/api"
	"github.com/etlhub/etlhub/collectors"
)

// runReports gives the API the data-quality reports the configured importer
// sources keep (the district's page shows them finding by finding).
type runReports struct{ r *collectors.Runner }

func (x runReports) KeepsReports(source string) bool { return x.r.KeepsReports(source) }

func (x runReports) Report(ctx context.Context, source, runID string) ([]byte, error) {
	b, err := x.r.Report(ctx, source, runID)
	if errors.Is(err, collectors.ErrNoReport) {
		return nil, api.ErrNoReport
	}
	return b, err
}
