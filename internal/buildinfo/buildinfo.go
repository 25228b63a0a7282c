// Package buildinfo describes the running binary: the Prometheus gauge that
// carries its version, VCS revision and Go version.
package buildinfo

import (
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector is the gauge name{version, revision, goversion} 1. version is the
// one the binary was built with (-ldflags "-X main.version=..."); "" reads as
// "dev". The revision comes from the Go toolchain's VCS stamp.
func Collector(name, help, version string) prometheus.Collector {
	if version == "" {
		version = "dev"
	}
	revision := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && s.Value != "" {
				revision = s.Value
			}
		}
	}
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help,
		ConstLabels: prometheus.Labels{"version": version, "revision": revision, "goversion": runtime.Version()}},
		func() float64 { return 1 })
}
