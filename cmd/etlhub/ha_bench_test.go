package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/etlhub/etlhub/internal/testsrv"
)

// TestHABench measures BENCHMARKS.md's replica numbers (ETLHUB_HA_BENCH=1):
// push ingest through 1 and 3 replicas into one PostgreSQL with fsync on,
// and GET /api/v1/status latency at 10,000 jobs on a follower.
func TestHABench(t *testing.T) {
	if os.Getenv("ETLHUB_HA_BENCH") == "" {
		t.Skip("set ETLHUB_HA_BENCH=1 to measure")
	}
	pg := testsrv.NewPostgres(t, true)
	const batch, pushers, jobs = 1000, 6, 10000
	var failed atomic.Int64
	push := func(url string, body string) bool {
		req, _ := http.NewRequest("POST", url+"/api/v1/observations", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+adminTok)
		req.Header.Set("Content-Type", "application/x-ndjson")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 && failed.Add(1) == 1 {
			t.Logf("push: %d %.300s", resp.StatusCode, b)
		}
		return resp.StatusCode == 200
	}
	// body is one batch of distinct observations over jobs tenants.
	var seq atomic.Int64
	body := func() string {
		var b strings.Builder
		t0 := time.Now().UTC()
		now, began := t0.Format(time.RFC3339Nano), t0.Add(-time.Hour).Format(time.RFC3339)
		for i := 0; i < batch; i++ {
			n := seq.Add(1)
			j := n % jobs
			fmt.Fprintf(&b, `{"at":%q,"tenant":"t%05d","job":"nightly","run_id":"t%05d-r","state":"running","stage":"loading","started_at":%q,"updated_at":%q,"rows_done":%d,"rows_total":100000000}`+"\n",
				now, j, j, began, now, n)
		}
		return b.String()
	}
	for _, n := range []int{1, 3} {
		c := &chaos{t: t, t0: time.Now().UTC(), dir: t.TempDir(), dsn: pg.DSN(t),
			extra: "ingest: {max_unconfigured_jobs: 20000, max_items: 10000}"}
		for i := 0; i < n; i++ {
			c.start()
		}
		live := c.live()
		var done atomic.Int64
		var wg sync.WaitGroup
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		start := time.Now()
		for p := 0; p < pushers; p++ {
			wg.Add(1)
			go func(p int) {
				defer wg.Done()
				for ctx.Err() == nil {
					if push(live[p%len(live)].url, body()) {
						done.Add(batch)
					}
				}
			}(p)
		}
		wg.Wait()
		cancel()
		el := time.Since(start)
		t.Logf("push ingest, %d replica(s), %d pushers, batches of %d, fsync on: %d observations in %v = %.0f/s",
			n, pushers, batch, done.Load(), el.Round(time.Millisecond), float64(done.Load())/el.Seconds())
		if n == 3 {
			// The board of 10,000 jobs on a follower.
			var follower *replica
			l := c.leader()
			for _, r := range live {
				if r != l {
					follower = r
				}
			}
			var lat []time.Duration
			for i := 0; i < 200; i++ {
				s := time.Now()
				var st struct{ Jobs []any }
				if code := getJSON(follower.url+"/api/v1/status", viewTok, &st); code != 200 || len(st.Jobs) < jobs {
					t.Fatalf("status: %d, %d jobs", code, len(st.Jobs))
				}
				lat = append(lat, time.Since(s))
			}
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			t.Logf("GET /api/v1/status on a follower at %d jobs, 200 requests one at a time: p50 %v, p99 %v, max %v",
				jobs, lat[100].Round(time.Millisecond), lat[197].Round(time.Millisecond), lat[199].Round(time.Millisecond))
		}
		for _, r := range live {
			c.kill(r)
		}
	}
}
