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
	read := func() []string {
		t.Helper()
		var ids []string
		next, err := leader.ObservationsCommitted(ctx, from, func(obs []model.Observation) error {
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
}

func ptr[T any](v T) *T { return &v }
