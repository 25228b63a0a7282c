package importer

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/etlhub/etlhub/internal/testsrv"
	"github.com/etlhub/etlhub/model"
	"github.com/redis/go-redis/v9"
)

// TestConcurrentPollsOpenAndQueueOneRun: processes of a group that poll a
// tenant at once (a detector lease changing hands mid-poll) open one run and
// queue it once; no second run is left waiting for files behind it.
func TestConcurrentPollsOpenAndQueueOneRun(t *testing.T) {
	rds := testsrv.StartRedis(t)
	ctx := context.Background()
	tc := TenantConfig{Name: "dade", Job: "roster-import"}
	cfg := &Config{LockTTL: time.Minute, Tenants: []TenantConfig{tc}}
	procs := make([]*Importer, 6)
	for i := range procs {
		procs[i] = assemble(cfg, slog.New(slog.DiscardHandler), redis.NewClient(&redis.Options{Addr: rds.Addr}), nil, fmt.Sprintf("proc-%d", i))
		defer procs[i].rdb.Close()
	}
	for night := 0; night < 20; night++ {
		day := time.Date(2026, 9, 1+night, 7, 0, 0, 0, time.UTC)
		var wg sync.WaitGroup
		ids := make([]string, len(procs))
		queued := make([]bool, len(procs))
		start := make(chan struct{})
		for i, im := range procs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				rec, _, err := im.store.openRecord(ctx, tc, day)
				if err != nil || rec == nil {
					return // nil: another process queued the run already
				}
				ids[i] = rec.Obs.RunID
				rec.Obs.Stage = model.StageQueued
				queued[i], err = im.store.enqueue(ctx, rec)
				if err != nil {
					t.Error(err)
				}
			}()
		}
		close(start)
		wg.Wait()
		n := 0
		for i := range procs {
			if queued[i] {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("night %d: %d processes queued the tenant's run (ids %v)", night, n, ids)
		}
		if l, _ := procs[0].rdb.XLen(ctx, queueKey("dade")).Result(); l != int64(night+1) {
			t.Fatalf("night %d: %d queue entries", night, l)
		}
		rs, err := procs[0].Runs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if r.Stage == model.StageAwaitingFiles {
				t.Fatalf("night %d: run %s left waiting for files beside the queued one", night, r.RunID)
			}
		}
		if len(rs) != night+1 {
			t.Fatalf("night %d: %d runs stored", night, len(rs))
		}
		// The night's run finishes; the tenant is free for the next one.
		procs[0].rdb.Del(ctx, activeKey("dade"))
	}
}
