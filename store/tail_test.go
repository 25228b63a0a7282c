package store

import (
	"context"
	"testing"

	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/internal/testsrv"
	"github.com/etlhub/etlhub/model"
)

// TestTail (PostgreSQL): a replica following the observations by
// transaction sees what another replica stored, once, including a push
// whose transaction commits after a later one's.
func TestTail(t *testing.T) {
	dsn := config.Secret(testsrv.Postgres(t))
	leader := mustOpen(t, Config{Driver: "postgres", DSN: dsn})
	other := mustOpen(t, Config{Driver: "postgres", DSN: dsn})
	ctx := context.Background()
	from, err := leader.ObservationHorizon(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var skip []int64
	read := func() []string {
		t.Helper()
		var ids []string
		next, err := leader.ObservationsCommitted(ctx, from, skip, func(obs []model.Observation) error {
			for _, o := range obs {
				ids = append(ids, o.RunID)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		from = next
		return ids
	}
	// A slow push: its transaction is open while another commits.
	slow := other.db.Begin()
	row := toObservationRow(ptr(obs("2026-09-01T05:00:00Z", "dade", "slow", model.StateRunning, 1, 10)))
	if err := slow.Create(&row).Error; err != nil {
		t.Fatal(err)
	}
	if _, err := other.Ingest(ctx, []model.Observation{obs("2026-09-01T05:01:00Z", "dade", "fast", model.StateRunning, 1, 10)}); err != nil {
		t.Fatal(err)
	}
	if got := read(); len(got) != 0 {
		t.Fatalf("read past a transaction still open: %v", got)
	}
	if err := slow.Commit().Error; err != nil {
		t.Fatal(err)
	}
	got := read()
	if len(got) != 2 || got[0] != "slow" || got[1] != "fast" {
		t.Fatalf("after the commit: %v, want [slow fast] in at order", got)
	}
	if got := read(); len(got) != 0 {
		t.Fatalf("read twice: %v", got)
	}
	// What the reader stored itself it has handed on already (Xact, when
	// the transaction was its alone): only the other replica's rows come
	// back, though the reader's committed between them.
	if _, err := other.Ingest(ctx, []model.Observation{obs("2026-09-01T05:02:00Z", "dade", "theirs-1", model.StateRunning, 1, 10)}); err != nil {
		t.Fatal(err)
	}
	if res, err := leader.Ingest(ctx, []model.Observation{obs("2026-09-01T05:02:30Z", "dade", "no-owner", model.StateRunning, 1, 10)}); err != nil || res.Xact != 0 {
		t.Fatalf("an ingest of no owner: xact %d, %v; want 0 (not to be skipped)", res.Xact, err)
	}
	res, err := leader.Ingest(IngestFor(ctx, leader), []model.Observation{obs("2026-09-01T05:03:00Z", "dade", "mine", model.StateRunning, 1, 10)})
	if err != nil || res.Xact == 0 {
		t.Fatalf("an owner's ingest: xact %d, %v", res.Xact, err)
	}
	skip = []int64{res.Xact}
	if _, err := other.Ingest(ctx, []model.Observation{obs("2026-09-01T05:04:00Z", "dade", "theirs-2", model.StateRunning, 1, 10)}); err != nil {
		t.Fatal(err)
	}
	if got := read(); len(got) != 3 || got[0] != "theirs-1" || got[1] != "no-owner" || got[2] != "theirs-2" {
		t.Fatalf("after pushes to both: %v, want [theirs-1 no-owner theirs-2]", got)
	}
	// A new reader (a restarted replica) reads the table whoever wrote it.
	var all []string
	if err := leader.ObservationsSince(ctx, ts("2026-09-01T00:00:00Z"), func(obs []model.Observation) error {
		for _, o := range obs {
			all = append(all, o.RunID)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(all) != 6 {
		t.Errorf("stored: %v, want all 6 observations", all)
	}
}

func ptr[T any](v T) *T { return &v }
