package importer

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/etlhub/etlhub/importer/inbox"
	"github.com/etlhub/etlhub/importer/load"
	"github.com/etlhub/etlhub/importer/oneroster"
	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/internal/testsrv"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// BenchmarkEndToEnd runs one upload through SFTP download (real sshd),
// validation and the load into FerretDB (SQLite backend), and beside it, in
// the same run, the ceiling: raw InsertMany of the same documents into the
// same server. ETLHUB_BENCH_STUDENTS sets the size (350000 is Miami-Dade).
// A sub-benchmark per OneRoster version; each resets the process's peak RSS
// before it starts, so MiB-peak-rss is its own.
//
//	ETLHUB_BENCH_STUDENTS=350000 go test -run '^$' -bench EndToEnd -benchtime 1x -timeout 60m ./importer/
func BenchmarkEndToEnd(b *testing.B) {
	students := 20000
	if v, err := strconv.Atoi(os.Getenv("ETLHUB_BENCH_STUDENTS")); err == nil && v > 0 {
		students = v
	}
	sshd := testsrv.StartSSHD(b)
	uri := testsrv.FerretDB(b)
	for _, version := range []string{"1.1", "1.2"} {
		b.Run("v"+version, func(b *testing.B) { benchEndToEnd(b, sshd, uri, students, version) })
	}
}

func benchEndToEnd(b *testing.B, sshd *testsrv.SSHD, uri string, students int, version string) {
	ctx := context.Background()
	src := filepath.Join(sshd.Root, "inbox-"+version)
	counts, err := oneroster.Generate(src, oneroster.GenOptions{Students: students, Seed: 1, Version: version})
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(src)
	rows := counts.Total()
	resetPeakRSS()
	mc, err := mongo.Connect(options.Client().ApplyURI(uri).SetTimeout(10 * time.Minute))
	if err != nil {
		b.Fatal(err)
	}
	defer mc.Disconnect(ctx)
	db := mc.Database("bench")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		work := b.TempDir()
		start := time.Now()
		c, err := inbox.Dial(ctx, inbox.Config{Host: sshd.Host, Port: sshd.Port, User: sshd.User,
			PrivateKey: config.Secret(sshd.KeyPEM), KnownHosts: sshd.KnownHosts, Dir: src, Timeout: time.Minute})
		if err != nil {
			b.Fatal(err)
		}
		list, _ := c.List()
		for _, e := range list {
			if _, err := c.Download(e.Name, filepath.Join(work, e.Name)); err != nil {
				b.Fatal(err)
			}
		}
		c.Close()
		dl := time.Since(start)
		vstart := time.Now()
		rep := oneroster.NewReport(5)
		res, err := oneroster.Validate(os.DirFS(work), rep.Add)
		if err != nil || rep.Finish(res).Errors != 0 {
			b.Fatalf("validation: %v %d errors", err, rep.Errors)
		}
		val := time.Since(vstart)
		lstart := time.Now()
		if _, err := (&load.Loader{DB: db}).Load(ctx, "dade-"+version, fmt.Sprintf("bench-%s#%d", version, i), os.DirFS(work), nil); err != nil {
			b.Fatal(err)
		}
		ld := time.Since(lstart)
		wall := time.Since(start)
		b.StopTimer()
		ceiling := rawInsert(b, db, work)
		b.StartTimer()
		b.ReportMetric(wall.Seconds(), "s-wall")
		b.ReportMetric(float64(rows)/wall.Seconds(), "rows/s")
		b.ReportMetric(dl.Seconds(), "s-download")
		b.ReportMetric(val.Seconds(), "s-validate")
		b.ReportMetric(100*val.Seconds()/wall.Seconds(), "%-validate")
		b.ReportMetric(ld.Seconds(), "s-load")
		b.ReportMetric(ceiling.Seconds(), "s-ceiling-insert")
		b.ReportMetric(100*ceiling.Seconds()/wall.Seconds(), "%-of-ceiling")
		b.ReportMetric(peakRSS(), "MiB-peak-rss")
	}
}

// rawInsert is the ceiling: the same documents, InsertMany batches of 1000
// from 4 goroutines, no validation, no SFTP, no publish.
func rawInsert(b *testing.B, db *mongo.Database, dir string) time.Duration {
	start := time.Now()
	for _, e := range load.Entities {
		f, err := os.Open(filepath.Join(dir, e+".csv"))
		if err != nil {
			continue
		}
		c := db.Collection("ceiling_" + e)
		c.Drop(context.Background())
		r := csv.NewReader(f)
		hdr, _ := r.Read()
		hdr = append([]string(nil), hdr...)
		jobs := make(chan []any, 4)
		var wg sync.WaitGroup
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for docs := range jobs {
					if _, err := c.InsertMany(context.Background(), docs, options.InsertMany().SetOrdered(false)); err != nil {
						b.Error(err)
					}
				}
			}()
		}
		docs := make([]any, 0, 1000)
		for {
			rec, err := r.Read()
			if err == io.EOF {
				break
			}
			d := bson.D{{Key: "_id", Value: rec[0]}, {Key: "tenant", Value: "dade"}}
			for i := 1; i < len(rec); i++ {
				if rec[i] != "" {
					d = append(d, bson.E{Key: hdr[i], Value: rec[i]})
				}
			}
			docs = append(docs, d)
			if len(docs) == 1000 {
				jobs <- docs
				docs = make([]any, 0, 1000)
			}
		}
		if len(docs) > 0 {
			jobs <- docs
		}
		close(jobs)
		wg.Wait()
		f.Close()
		c.Drop(context.Background())
	}
	return time.Since(start)
}

// resetPeakRSS starts the process's peak RSS (VmHWM) over from its
// current RSS.
func resetPeakRSS() { os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

func peakRSS() float64 {
	data, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			kb, _ := strconv.ParseFloat(strings.Fields(l)[1], 64)
			return kb / 1024
		}
	}
	return -1
}
