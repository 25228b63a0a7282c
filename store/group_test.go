package store

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/internal/testsrv"
	"github.com/etlhub/etlhub/model"
)

// TestIngestConcurrent: concurrent ingests, in one process (one group
// commit) and from two replicas on the same runs, each answered with its
// own counts: every distinct observation is stored once and counted as
// inserted by exactly one call, and every run ends at its newest
// observation whichever transaction held it.
func TestIngestConcurrent(t *testing.T) {
	dsn := testsrv.Postgres(t)
	a := mustOpen(t, Config{Driver: "postgres", DSN: config.Secret(dsn)})
	b := mustOpen(t, Config{Driver: "postgres", DSN: config.Secret(dsn)})
	ctx := context.Background()
	base := ts("2026-09-01T05:00:00Z")
	const callers, runs, beats = 8, 20, 25
	// Caller c sends heartbeats c, c+callers, ... of every run, and the
	// first heartbeat of every run (the same observation from all).
	body := func(c int) []model.Observation {
		var out []model.Observation
		for r := 0; r < runs; r++ {
			id := fmt.Sprintf("run-%02d", r)
			first := obs(base.Format(time.RFC3339), "dade", id, model.StateRunning, 0, 1000)
			out = append(out, first)
			for k := c; k < beats; k += callers {
				at := base.Add(time.Duration(k+1) * time.Second)
				o := obs(at.Format(time.RFC3339), "dade", id, model.StateRunning, int64(k+1), 1000)
				if k == beats-1 {
					o.State, o.FinishedAt = model.StateSucceeded, &at
				}
				out = append(out, o)
			}
		}
		return out
	}
	var mu sync.Mutex
	inserted, dups, sent := 0, 0, 0
	var wg sync.WaitGroup
	for c := 0; c < callers; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			st := a
			if c%2 == 1 {
				st = b
			}
			o := body(c)
			res, err := st.Ingest(ctx, o)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			inserted, dups, sent = inserted+res.Inserted, dups+res.Duplicates, sent+len(o)
			mu.Unlock()
		}(c)
	}
	wg.Wait()
	if want := runs * (beats + 1); inserted != want || inserted+dups != sent {
		t.Fatalf("inserted %d (want %d), duplicates %d, sent %d", inserted, want, dups, sent)
	}
	if n, err := a.CountObservations(ctx); err != nil || n != int64(runs*(beats+1)) {
		t.Fatalf("stored %d (%v), want %d", n, err, runs*(beats+1))
	}
	latest, err := a.LatestRuns(ctx, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(latest) != 1 {
		t.Fatalf("jobs %d", len(latest))
	}
	for r := 0; r < runs; r++ {
		got, err := a.RunsByID(ctx, fmt.Sprintf("run-%02d", r), Filter{})
		if err != nil || len(got) != 1 {
			t.Fatalf("run %d: %v %v", r, got, err)
		}
		if g := got[0]; g.State != model.StateSucceeded || g.RowsDone != beats {
			t.Fatalf("run %d ends %s at %d rows, want succeeded at %d", r, g.State, g.RowsDone, beats)
		}
	}
}

// TestRunsVersion: the runs' version stands while nothing is stored and
// changes when this store or another replica (another store on the same
// database) ingests.
func TestRunsVersion(t *testing.T) {
	dsn := config.Secret(testsrv.Postgres(t))
	a := mustOpen(t, Config{Driver: "postgres", DSN: dsn})
	b := mustOpen(t, Config{Driver: "postgres", DSN: dsn})
	lite := backends["sqlite"](t)
	ctx := context.Background()
	for _, c := range []struct {
		name         string
		reader, from *Store
	}{{"sqlite", lite, lite}, {"postgres, own", a, a}, {"postgres, another replica's", a, b}} {
		v0, ok, err := c.reader.RunsVersion(ctx)
		if err != nil || !ok {
			t.Fatalf("%s: version: %v %v", c.name, ok, err)
		}
		if v, _, _ := c.reader.RunsVersion(ctx); v != v0 {
			t.Fatalf("%s: the version moved without a write: %s -> %s", c.name, v0, v)
		}
		at := time.Now().UTC().Format(time.RFC3339Nano)
		if _, err := c.from.Ingest(ctx, []model.Observation{obs(at, "dade", "r1", model.StateRunning, time.Now().UnixNano(), 1<<62)}); err != nil {
			t.Fatal(err)
		}
		if v1, _, _ := c.reader.RunsVersion(ctx); v1 == v0 {
			t.Fatalf("%s: ingest left the version at %s", c.name, v0)
		}
	}
}
