package rules

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/etlhub/etlhub/model"
)

// BenchmarkTick100k evaluates every rule for 100,000 jobs, each mid-load with
// five nights of history, and reports the time per tick and the process's
// peak RSS.
//
//	go test -run '^$' -bench Tick100k -benchtime 5x ./rules/
func BenchmarkTick100k(b *testing.B) {
	const n = 100_000
	zones := []string{"America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles", "UTC"}
	specs := make([]model.JobSpec, n)
	for i := range specs {
		s := model.JobSpec{Tenant: fmt.Sprintf("t%05d", i/2), Job: fmt.Sprintf("job%d", i%2), Timezone: zones[i%len(zones)],
			Schedule: fmt.Sprintf("%d %d * * *", (i%4)*15, i%4), Deadline: fmt.Sprintf("%02d:00", 5+i%3),
			StaleAfter: model.Duration(20 * time.Minute)}
		if err := s.Compile(); err != nil {
			b.Fatal(err)
		}
		specs[i] = s
	}
	e := NewEngine(specs, DefaultParams(), nil)
	// Five nights of history and tonight's progress for every job, fed as
	// observations the way the ingest path feeds them.
	night0 := time.Date(2026, 9, 10, 0, 0, 0, 0, time.UTC)
	for i := range specs {
		s := &specs[i]
		var obs []model.Observation
		for d := 5; d >= 0; d-- {
			start := s.NextStart(night0.Add(-time.Duration(d)*24*time.Hour + 3*time.Hour))
			id := fmt.Sprintf("%s/%d", s.Key(), d)
			steps := 12
			if d == 0 {
				steps = 6 // tonight: half way
			}
			for k := 0; k <= steps; k++ {
				at := start.Add(time.Duration(10+5*k) * time.Minute)
				st := model.StateRunning
				var fin *time.Time
				if k == steps && d > 0 {
					st, fin = model.StateSucceeded, &at
				}
				upd := at
				obs = append(obs, model.Observation{At: at, RunStatus: model.RunStatus{
					Source: "importer", Tenant: s.Tenant, Job: s.Job, RunID: id,
					State: st, Stage: "loading", StartedAt: &start, UpdatedAt: &upd, FinishedAt: fin,
					RowsDone: int64(k * 1000), RowsTotal: 12000,
				}})
			}
		}
		e.Observe(obs, obs[len(obs)-1].At)
	}
	now := night0.Add(3*24*time.Hour + 0)
	now = specs[0].NextStart(night0.Add(3 * time.Hour)).Add(45 * time.Minute)
	first := time.Now()
	e.Tick(now)
	firstTick := time.Since(first)
	runtime.GC()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		now = now.Add(time.Minute)
		e.Tick(now)
	}
	b.StopTimer()
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/tick")
	b.ReportMetric(firstTick.Seconds(), "s/first-tick")
	b.ReportMetric(peakRSSMiB(), "MiB-peak-rss")
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "MiB-live-heap")
	if len(e.Views()) != n {
		b.Fatalf("%d views, want %d", len(e.Views()), n)
	}
}

// peakRSSMiB reads the process's peak resident set (VmHWM) on Linux.
func peakRSSMiB() float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return -1
}
