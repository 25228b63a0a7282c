package app

import (
	"github.com/etlhub/etlhub/internal/buildinfo"
	"github.com/prometheus/client_golang/prometheus"
)

// buildInfo is etlhub_build_info{version, revision, goversion} 1.
func buildInfo(version string) prometheus.Collector {
	return buildinfo.Collector("etlhub_build_info", "1, labelled with the version, VCS revision and Go version etlhub was built with.", version)
}
