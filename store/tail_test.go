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
	// What the reader stored itself its ingest handed on already: only the
	// other replica's rows come back, though the reader's commit between them.
	if _, err := other.Ingest(ctx, []model.Observation{obs("2026-09-01T05:02:00Z", "dade", "theirs-1", model.StateRunning, 1, 10)}); err != nil {
		t.Fatal(err)
	}
	if _, err := leader.Ingest(ctx, []model.Observation{obs("2026-09-01T05:03:00Z", "dade", "mine", model.StateRunning, 1, 10)}); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Ingest(ctx, []model.Observation{obs("2026-09-01T05:04:00Z", "dade", "theirs-2", model.StateRunning, 1, 10)}); err != nil {
		t.Fatal(err)
	}
	if got := read(); len(got) != 2 || got[0] != "theirs-1" || got[1] != "theirs-2" {
		t.Fatalf("after pushes to both: %v, want [theirs-1 theirs-2]", got)
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
	if len(all) != 5 {
		t.Errorf("stored: %v, want all 5 observations", all)
	}
}

// The skipped transactions are bounded and forgotten once passed.
func TestOwnXactsBounded(t *testing.T) {
	var o ownXacts
	for i := int64(1); i <= maxOwnXacts+10; i++ {
		o.add(i)
	}
	if len(o.ids) != maxOwnXacts || o.ids[0] != 11 {
		t.Fatalf("kept %d from %d, want %d from 11", len(o.ids), o.ids[0], maxOwnXacts)
	}
	got := o.in(100, 200)
	if len(got) != 100 || got[0] != 100 || got[99] != 199 {
		t.Errorf("in [100, 200): %d ids from %d", len(got), got[0])
	}
	if len(o.ids) != maxOwnXacts+10-199 || o.ids[0] != 200 {
		t.Errorf("after passing 200: %d kept from %d", len(o.ids), o.ids[0])
	}
}

func ptr[T any](v T) *T { return &v }
