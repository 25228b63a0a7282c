package store

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/etlhub/etlhub/internal/status"
	"github.com/etlhub/etlhub/rules"
)

// TestHardeningContract runs the hardening scenarios (issue 13) on SQLite
// and PostgreSQL.
func TestHardeningContract(t *testing.T) {
	for name, open := range backends {
		t.Run(name, func(t *testing.T) {
			t.Run("a missing updated_at is stored as missing", func(t *testing.T) {
				s := open(t)
				ctx := context.Background()
				a := obs("2026-09-01T04:05:00Z", "dade", "dade/r/1", status.StateRunning, 10, 100)
				a.UpdatedAt = nil
				b := a
				b.At, b.RowsDone = ts("2026-09-01T04:10:00Z"), 20
				for _, o := range []status.Observation{a, b} {
					if _, err := s.Ingest(ctx, []status.Observation{o}); err != nil {
						t.Fatal(err)
					}
				}
				got, err := s.Observations(ctx, "dade/r/1", 10)
				if err != nil || len(got) != 2 {
					t.Fatalf("observations %v, %v", got, err)
				}
				for _, o := range got {
					if o.UpdatedAt != nil {
						t.Fatalf("observation at %v read back with updated_at %v; none was sent", o.At, o.UpdatedAt)
					}
				}
				r := mustLatest(t, s)[JobKey{"dade", "roster-import"}]
				if r.UpdatedAt != nil || r.RowsDone != 20 {
					t.Fatalf("run has updated_at %v (none was sent), rows %d", r.UpdatedAt, r.RowsDone)
				}
			})

			t.Run("a source's error cut at the limit stays valid UTF-8", func(t *testing.T) {
				s := open(t)
				ctx := context.Background()
				h := status.SourceHealth{Name: "legacy", Kind: "httpjson"}
				// 'é' is two bytes: the limit falls in the middle of one.
				msg := "x" + strings.Repeat("é", status.MaxErrorLen)
				h.Record(ts("2026-09-01T05:00:00Z"), time.Second, 0, errors.New(msg))
				if err := s.SaveSource(ctx, h); err != nil {
					t.Fatalf("saving a source whose error was cut: %v", err)
				}
				got, err := s.Source(ctx, "legacy")
				if err != nil {
					t.Fatal(err)
				}
				if !utf8.ValidString(got.LastError) || len(got.LastError) > status.MaxErrorLen || len(got.LastError) < status.MaxErrorLen-1 {
					t.Fatalf("last error: valid %v, %d bytes", utf8.ValidString(got.LastError), len(got.LastError))
				}
			})
		})
	}
}

// TestStalledRunStaysStalledAcrossRestart: a collector keeps reporting the
// same picture of a run without updated_at; its heartbeat is when that picture
// was first seen, live and after the hub restarts from its store.
func TestStalledRunStaysStalledAcrossRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hub.db")
	ctx := context.Background()
	spec := status.JobSpec{Tenant: "dade", Job: "roster-import", Timezone: "UTC", Schedule: "0 * * * *", Deadline: "23:59",
		StaleAfter: status.Duration(20 * time.Minute)}
	if err := spec.Compile(); err != nil {
		t.Fatal(err)
	}
	// Times are close to the wall clock: the bug filled updated_at with it.
	now := time.Now().UTC().Truncate(time.Minute)
	t0 := now.Add(-45 * time.Minute)
	started := t0.Add(-5 * time.Minute)
	var polls []status.Observation
	for at := t0; !at.After(now); at = at.Add(5 * time.Minute) {
		polls = append(polls, status.Observation{At: at, Source: "importer", Tenant: "dade", Job: "roster-import",
			RunID: "dade/1", State: status.StateRunning, Stage: "loading", StartedAt: &started, RowsDone: 10, RowsTotal: 100})
	}
	stalled := func(e *rules.Engine) bool {
		e.Tick(now)
		for _, a := range e.Active() {
			if a.Rule == rules.RuleStalled && a.State == rules.StateFiring {
				return true
			}
		}
		return false
	}
	s := mustOpen(t, Config{Driver: "sqlite", Path: path})
	if _, err := s.Ingest(ctx, polls); err != nil {
		t.Fatal(err)
	}
	live := rules.NewEngine([]status.JobSpec{spec}, rules.DefaultParams(), nil)
	live.Observe(polls, now)
	if !stalled(live) {
		t.Fatal("live: a run unchanged for 45 minutes (stale after 20m) is not stalled")
	}
	s.Close()

	s2 := mustOpen(t, Config{Driver: "sqlite", Path: path})
	warm := rules.NewEngine([]status.JobSpec{spec}, rules.DefaultParams(), nil)
	if err := s2.ObservationsSince(ctx, now.Add(-24*time.Hour), func(o []status.Observation) error {
		warm.Observe(o, now)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !stalled(warm) {
		t.Fatal("after a restart the stalled run looks fresh")
	}
}
