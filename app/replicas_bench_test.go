package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/internal/testsrv"
)

const benchTok = "0123456789abcdef0123"

// benchCluster starts n hubs on one PostgreSQL store (fsync on) and
// returns their URLs, the leader's first.
func benchCluster(b *testing.B, dsn string, n int) []string {
	b.Helper()
	doc := base + "store: {driver: postgres, dsn: \"" + dsn + "\", max_open_conns: 8}\nrules: {tick: 1s}\ncluster: {lease_ttl: 4s, lease_renew: 1s}\ningest: {max_unconfigured_jobs: 20000, max_items: 10000}\n"
	ctx := context.Background()
	var urls []string
	var leader string
	for i := 0; i < n; i++ {
		var c Config
		if err := parseB(doc, &c); err != nil {
			b.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		c.Cluster.Advertise = ln.Addr().String()
		h, err := New(ctx, &c, Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			b.Fatal(err)
		}
		if err := h.Start(ctx); err != nil {
			b.Fatal(err)
		}
		srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: h.Handler}}
		srv.Start()
		b.Cleanup(func() { srv.Close(); h.Stop() })
		if i == 0 {
			end := time.Now().Add(20 * time.Second)
			for !h.Leader() && time.Now().Before(end) {
				time.Sleep(50 * time.Millisecond)
			}
			leader = srv.URL
		} else {
			urls = append(urls, srv.URL)
		}
	}
	return append([]string{leader}, urls...)
}

// BenchmarkPushInProcess is BenchmarkReplicasPush (cmd/etlhub) with the
// hubs in the benchmark's process, to profile the push path across them:
//
//	go test -run '^$' -bench PushInProcess -benchtime 60x -cpuprofile push.cpu ./app/
func BenchmarkPushInProcess(b *testing.B) {
	pg := testsrv.NewPostgres(b, true)
	for _, n := range []int{1, 3} {
		b.Run(fmt.Sprintf("replicas=%d", n), func(b *testing.B) {
			urls := benchCluster(b, pg.DSN(b), n)
			const batch, jobs = 1000, 10000
			var seq atomic.Int64
			body := func() string {
				var sb strings.Builder
				t0 := time.Now().UTC()
				now, began := t0.Format(time.RFC3339Nano), t0.Add(-time.Hour).Format(time.RFC3339)
				for i := 0; i < batch; i++ {
					n := seq.Add(1)
					j := n % jobs
					fmt.Fprintf(&sb, `{"at":%q,"tenant":"t%05d","job":"nightly","run_id":"t%05d-r","state":"running","stage":"loading","started_at":%q,"updated_at":%q,"rows_done":%d,"rows_total":100000000}`+"\n",
						now, j, j, began, now, n)
				}
				return sb.String()
			}
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			work := make(chan struct{}, b.N)
			for i := 0; i < b.N; i++ {
				work <- struct{}{}
			}
			close(work)
			for p := 0; p < 6; p++ {
				wg.Add(1)
				go func(p int) {
					defer wg.Done()
					for range work {
						u := urls[int(next.Add(1))%len(urls)]
						req, _ := http.NewRequest("POST", u+"/api/v1/observations", strings.NewReader(body()))
						req.Header.Set("Authorization", "Bearer "+benchTok)
						resp, err := http.DefaultClient.Do(req)
						if err != nil {
							b.Error(err)
							return
						}
						msg, _ := io.ReadAll(resp.Body)
						resp.Body.Close()
						if resp.StatusCode != 200 {
							b.Errorf("push: %d %.300s", resp.StatusCode, msg)
							return
						}
					}
				}(p)
			}
			wg.Wait()
			b.ReportMetric(float64(b.N*batch)/time.Since(start).Seconds(), "obs/s")
		})
	}
}

func parseB(doc string, c *Config) error {
	return config.Parse("etlhub.yaml", []byte(doc), c)
}

// BenchmarkStatusInProcess is BenchmarkReplicasStatus (cmd/etlhub) in the
// benchmark's process, to profile the board:
//
//	go test -run '^$' -bench StatusInProcess -benchtime 20x -cpuprofile status.cpu ./app/
func BenchmarkStatusInProcess(b *testing.B) {
	pg := testsrv.NewPostgres(b, true)
	urls := benchCluster(b, pg.DSN(b), 2)
	const batch, jobs = 1000, 10000
	now := time.Now().UTC()
	for _, night := range []struct {
		suffix, state string
		began         time.Time
	}{{"yesterday", "succeeded", now.Add(-25 * time.Hour)}, {"tonight", "running", now.Add(-time.Hour)}} {
		for k := 0; k < jobs/batch; k++ {
			var sb strings.Builder
			at := time.Now().UTC().Format(time.RFC3339Nano)
			for i := 0; i < batch; i++ {
				j := k*batch + i
				fin := ""
				if night.state == "succeeded" {
					fin = fmt.Sprintf(`,"finished_at":%q`, at)
				}
				fmt.Fprintf(&sb, `{"at":%q,"tenant":"t%05d","job":"nightly","run_id":"t%05d-%s","state":%q,"started_at":%q,"updated_at":%q,"rows_done":5,"rows_total":10%s}`+"\n",
					at, j, j, night.suffix, night.state, night.began.Format(time.RFC3339), at, fin)
			}
			req, _ := http.NewRequest("POST", urls[0]+"/api/v1/observations", strings.NewReader(sb.String()))
			req.Header.Set("Authorization", "Bearer "+benchTok)
			resp, err := http.DefaultClient.Do(req)
			if err != nil || resp.StatusCode != 200 {
				b.Fatalf("push: %v %v", err, resp)
			}
			resp.Body.Close()
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req, _ := http.NewRequest("GET", urls[1]+"/api/v1/status", nil)
		req.Header.Set("Authorization", "Bearer "+benchTok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("status: %v %v", err, resp)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}
