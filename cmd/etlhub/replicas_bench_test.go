package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/etlhub/etlhub/internal/testsrv"
)

// The replicas' benchmarks (BENCHMARKS.md, "Replicas"): `etlhub serve`
// processes on one PostgreSQL server of the benchmark's own, with fsync on.
//
//	go test -run '^$' -bench Replicas -benchtime 200x ./cmd/etlhub/
//
// ETLHUB_BENCH_BINARY runs another build of etlhub instead of the one
// TestMain built (a build from before a change, to compare in one run on
// a noisy machine); the benchmarks need nothing set.

const (
	benchBatch   = 1000  // observations a push
	benchPushers = 6     // concurrent pushers
	benchJobs    = 10000 // tenants with one job each
)

// benchCluster starts n replicas on a new database of pg, stopped when b
// (the outer benchmark) ends.
func benchCluster(b *testing.B, pg *testsrv.PostgresServer, n int, defaultLease bool) *chaos {
	c := &chaos{t: b, t0: time.Now().UTC(), dir: b.TempDir(), dsn: pg.DSN(b), defaultLease: defaultLease,
		bin: os.Getenv("ETLHUB_BENCH_BINARY"), extra: "ingest: {max_unconfigured_jobs: 20000, max_items: 10000}"}
	for i := 0; i < n; i++ {
		c.start()
	}
	end := time.Now().Add(60 * time.Second)
	for c.leader() == nil {
		if time.Now().After(end) {
			b.Fatal("no leader within 60 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	return c
}

// pushBody is one push of distinct observations, each of its own job (the
// sequence goes round benchJobs tenants); started is when their runs began.
func pushBody(seq *atomic.Int64, runSuffix, state string, started time.Time) string {
	var sb strings.Builder
	now := time.Now().UTC()
	at, began := now.Format(time.RFC3339Nano), started.Format(time.RFC3339)
	finished := ""
	if state == "succeeded" {
		finished = fmt.Sprintf(`,"finished_at":%q`, at)
	}
	for i := 0; i < benchBatch; i++ {
		n := seq.Add(1)
		j := n % benchJobs
		fmt.Fprintf(&sb, `{"at":%q,"tenant":"t%05d","job":"nightly","run_id":"t%05d-%s","state":%q,"stage":"loading","started_at":%q,"updated_at":%q,"rows_done":%d,"rows_total":100000000%s}`+"\n",
			at, j, j, runSuffix, state, began, at, n, finished)
	}
	return sb.String()
}

// push sends one body and says whether it was taken (200).
func push(b *testing.B, url, body string) bool {
	req, _ := http.NewRequest("POST", url+"/api/v1/observations", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+adminTok)
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Errorf("push: %v", err)
		return false
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		b.Errorf("push: %d %.300s", resp.StatusCode, msg)
		return false
	}
	return true
}

// BenchmarkReplicasPush: push ingest through 1 and 3 replicas; an op is one
// push of 1000 observations, benchPushers at once spread over the replicas.
func BenchmarkReplicasPush(b *testing.B) {
	pg := testsrv.NewPostgres(b, true)
	clusters := map[int]*chaos{}
	for _, n := range []int{1, 3} {
		b.Run(fmt.Sprintf("replicas=%d", n), func(sub *testing.B) {
			c := clusters[n]
			if c == nil {
				c = benchCluster(b, pg, n, false)
				clusters[n] = c
			}
			live := c.live()
			var seq, next atomic.Int64
			began := time.Now().UTC().Add(-time.Hour)
			var wg sync.WaitGroup
			sub.ResetTimer()
			start := time.Now()
			for p := 0; p < benchPushers; p++ {
				wg.Add(1)
				go func(p int) {
					defer wg.Done()
					for next.Add(1) <= int64(sub.N) {
						if !push(sub, live[p%len(live)].url, pushBody(&seq, "r", "running", began)) {
							return
						}
					}
				}(p)
			}
			wg.Wait()
			el := time.Since(start)
			sub.ReportMetric(float64(sub.N*benchBatch)/el.Seconds(), "obs/s")
		})
	}
}

// BenchmarkReplicasStatus: GET /api/v1/status on a follower of three
// replicas at 10,000 jobs, each with last night's run succeeded and
// tonight's running; an op is one request, one at a time; with no pushes,
// and with a push of 1000 observations a second to another replica.
func BenchmarkReplicasStatus(b *testing.B) {
	pg := testsrv.NewPostgres(b, true)
	var c *chaos
	var follower *replica
	var lat []time.Duration
	for _, pushing := range []bool{false, true} {
		name := "jobs=10000"
		if pushing {
			// One push a second to the other replicas meanwhile: the board
			// changes between requests.
			name += ",pushing"
		}
		b.Run(name, func(sub *testing.B) {
			if c == nil {
				c = benchCluster(b, pg, 3, false)
				var seq atomic.Int64
				now := time.Now().UTC()
				for i := 0; i < benchJobs/benchBatch; i++ {
					push(b, c.live()[i%3].url, pushBody(&seq, "yesterday", "succeeded", now.Add(-25*time.Hour)))
				}
				for i := 0; i < benchJobs/benchBatch; i++ {
					push(b, c.live()[i%3].url, pushBody(&seq, "tonight", "running", now.Add(-time.Hour)))
				}
				l := c.leader()
				for _, r := range c.live() {
					if r != l {
						follower = r
					}
				}
				var st struct{ Jobs []any }
				if code := getJSON(follower.url+"/api/v1/status", viewTok, &st); code != 200 || len(st.Jobs) < benchJobs {
					b.Fatalf("status: %d, %d jobs", code, len(st.Jobs))
				}
			}
			stop := make(chan struct{})
			var wg sync.WaitGroup
			if pushing {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var seq atomic.Int64
					began := time.Now().UTC().Add(-time.Hour)
					t := time.NewTicker(time.Second)
					defer t.Stop()
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						case <-t.C:
						}
						for _, r := range c.live() {
							if r != follower {
								push(sub, r.url, pushBody(&seq, "tonight", "running", began))
								break
							}
						}
					}
				}()
			}
			lat = lat[:0]
			sub.ResetTimer()
			for i := 0; i < sub.N; i++ {
				s := time.Now()
				req, _ := http.NewRequest("GET", follower.url+"/api/v1/status", nil)
				req.Header.Set("Authorization", "Bearer "+viewTok)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					sub.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					sub.Fatalf("status: %d", resp.StatusCode)
				}
				lat = append(lat, time.Since(s))
			}
			sub.StopTimer()
			close(stop)
			wg.Wait()
			slices.Sort(lat)
			q := func(p float64) float64 { return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))]) / 1e6 }
			sub.ReportMetric(q(0.5), "p50-ms")
			sub.ReportMetric(q(0.99), "p99-ms")
			sub.ReportMetric(float64(lat[len(lat)-1])/1e6, "max-ms")
		})
	}
}

// BenchmarkReplicasFailover: kill -9 of the leader of three replicas with
// the default lease (15 s, renewed every 5 s) to the first tick of the new
// leader; an op is one kill (a new replica replaces the one killed).
func BenchmarkReplicasFailover(b *testing.B) {
	pg := testsrv.NewPostgres(b, false)
	var c *chaos
	b.Run("lease=default", func(sub *testing.B) {
		if c == nil {
			c = benchCluster(b, pg, 3, true)
		}
		var took []time.Duration
		sub.ResetTimer()
		for i := 0; i < sub.N; i++ {
			l := c.leader()
			for l == nil {
				time.Sleep(100 * time.Millisecond)
				l = c.leader()
			}
			killed := time.Now()
			c.kill(l)
			took = append(took, c.failover(killed, 60*time.Second))
			sub.StopTimer()
			c.start()
			sub.StartTimer()
		}
		sub.StopTimer()
		slices.Sort(took)
		sub.ReportMetric(took[len(took)/2].Seconds(), "median-s")
		sub.ReportMetric(took[len(took)-1].Seconds(), "worst-s")
		sub.Logf("failover over %d kills: %v", len(took), took)
	})
}
