package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"time"

	"github.com/etlhub/etlhub/alerting"
	"github.com/etlhub/etlhub/rules"
	"github.com/etlhub/etlhub/sim"
)

// replay feeds a scenario's observations through the ingest path and the
// rules on a simulated clock that ticks every minute, and writes the alert
// transitions as JSON lines (docs/architecture.md, "Replay").
func replay(ctx context.Context, c command, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	scen := fs.String("scenario", "", "scenario.json (jobs)")
	obsPath := fs.String("observations", "", "observations.jsonl, sorted by at")
	out := fs.String("out", "", "where to write alert transitions (JSON lines)")
	storePath := fs.String("store", "", "SQLite file to ingest into (default: a temporary file)")
	tick := fs.Duration("tick", time.Minute, "simulated clock step")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the replay to this file (go tool pprof)")
	params := rules.DefaultParams()
	fs.Float64Var(&params.PageProbability, "page-probability", params.PageProbability, "breach probability at which predicted-breach pages")
	fs.DurationVar(&params.SlowdownPersistence, "slowdown-persistence", params.SlowdownPersistence, "mean remaining length of a slowdown that has just begun")
	fs.Float64Var(&params.SlowdownShape, "slowdown-shape", params.SlowdownShape, "tail of slowdown lengths: an old slowdown lasts longer (1: memoryless)")
	if _, code, done := c.parse(fs, args, stdout, stderr); done {
		return code
	}
	if *scen == "" || *obsPath == "" || *out == "" {
		return c.fail(stderr, "--scenario, --observations and --out are required")
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "etlhub replay: --cpuprofile:", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "etlhub replay: --cpuprofile:", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	start := time.Now()
	res, err := sim.Replay(ctx, sim.ReplayOptions{
		Scenario: *scen, Observations: *obsPath, Out: *out, StorePath: *storePath, Tick: *tick,
		Rules: alerting.RulesConfig{PageProbability: params.PageProbability, SlowdownPersistence: params.SlowdownPersistence,
			SlowdownShape: params.SlowdownShape},
	})
	if err != nil {
		fmt.Fprintln(stderr, "etlhub replay:", err)
		return 1
	}
	fmt.Fprintf(stdout, "replayed %d observations of %d jobs over %d ticks in %.1fs: %d transitions -> %s\n",
		res.Observations, res.Jobs, res.Ticks, time.Since(start).Seconds(), res.Transitions, *out)
	return 0
}
