package store

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/internal/testsrv"
	"github.com/etlhub/etlhub/model"
	"github.com/etlhub/etlhub/rules"
)

func TestMain(m *testing.M) { testsrv.Main(m) }

// backends opens a fresh store on each backend the contract runs against.
var backends = map[string]func(t *testing.T) *Store{
	"sqlite": func(t *testing.T) *Store {
		return mustOpen(t, Config{Driver: "sqlite", Path: filepath.Join(t.TempDir(), "hub.db")})
	},
	"postgres": func(t *testing.T) *Store {
		return mustOpen(t, Config{Driver: "postgres", DSN: config.Secret(testsrv.Postgres(t))})
	},
}

func mustOpen(t *testing.T, c Config) *Store {
	t.Helper()
	s, err := Open(context.Background(), c, nil)
	if err != nil {
		t.Fatalf("open %s: %v", c.Driver, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func tp(s string) *time.Time { t := ts(s); return &t }

func obs(at, tenant, runID string, state model.State, done, total int64) model.Observation {
	return model.Observation{
		At: ts(at), RunStatus: model.RunStatus{
			Source: "importer", Tenant: tenant, Job: "roster-import", RunID: runID,
			State: state, Stage: "loading", StartedAt: tp("2026-09-01T04:00:00Z"), UpdatedAt: tp(at),
			RowsDone: done, RowsTotal: total,
		},
	}
}

// TestContract runs the same scenarios on SQLite and PostgreSQL.
func TestContract(t *testing.T) {
	for name, open := range backends {
		t.Run(name, func(t *testing.T) {
			t.Run("ingest derives runs and stores repeats once", func(t *testing.T) {
				s := open(t)
				ctx := context.Background()
				a := obs("2026-09-01T04:05:00Z", "dade", "dade/r/1", model.StateRunning, 10, 100)
				repeat := a
				repeat.At = ts("2026-09-01T04:10:00Z")
				b := obs("2026-09-01T04:15:00Z", "dade", "dade/r/1", model.StateRunning, 60, 100)
				b.Quality = &model.Quality{Errors: 2, Warnings: 5}
				res, err := s.Ingest(ctx, []model.Observation{a, repeat, b})
				if err != nil {
					t.Fatal(err)
				}
				if res.Inserted != 2 || res.Duplicates != 1 {
					t.Fatalf("inserted %d, duplicates %d; want 2 and 1", res.Inserted, res.Duplicates)
				}
				if n, _ := s.CountObservations(ctx); n != 2 {
					t.Fatalf("stored %d observations, want 2", n)
				}
				// The same batch again stores nothing new.
				res, err = s.Ingest(ctx, []model.Observation{a, b})
				if err != nil || res.Inserted != 0 {
					t.Fatalf("re-ingest inserted %d (err %v), want 0", res.Inserted, err)
				}
				latest, err := s.LatestRuns(ctx, Filter{})
				if err != nil {
					t.Fatal(err)
				}
				r := latest[model.JobKey{Tenant: "dade", Job: "roster-import"}]
				if r.RowsDone != 60 || r.QualityErrors != 2 || r.State != model.StateRunning {
					t.Fatalf("run = %+v; want rows_done 60, 2 quality errors, running", r)
				}
				if !r.FirstSeenAt.Equal(ts("2026-09-01T04:05:00Z")) || !r.LastSeenAt.Equal(ts("2026-09-01T04:15:00Z")) {
					t.Fatalf("seen %v..%v", r.FirstSeenAt, r.LastSeenAt)
				}
				got, err := s.Observations(ctx, RunKey{"dade", "roster-import", "dade/r/1"}, 10)
				if err != nil || len(got) != 2 || got[1].Quality == nil || got[1].Quality.Warnings != 5 {
					t.Fatalf("observations read back = %+v, %v", got, err)
				}
			})

			t.Run("an older observation does not roll a run back", func(t *testing.T) {
				s := open(t)
				ctx := context.Background()
				done := obs("2026-09-01T05:00:00Z", "dade", "dade/r/1", model.StateSucceeded, 100, 100)
				done.FinishedAt = tp("2026-09-01T05:00:00Z")
				if _, err := s.Ingest(ctx, []model.Observation{done}); err != nil {
					t.Fatal(err)
				}
				late := obs("2026-09-01T04:30:00Z", "dade", "dade/r/1", model.StateRunning, 50, 100)
				if _, err := s.Ingest(ctx, []model.Observation{late}); err != nil {
					t.Fatal(err)
				}
				r := mustLatest(t, s)[model.JobKey{Tenant: "dade", Job: "roster-import"}]
				if r.State != model.StateSucceeded || r.RowsDone != 100 {
					t.Fatalf("run rolled back to %s %d", r.State, r.RowsDone)
				}
			})

			t.Run("latest run, last success and tenant filter", func(t *testing.T) {
				s := open(t)
				ctx := context.Background()
				old := obs("2026-09-01T05:00:00Z", "dade", "dade/r/1", model.StateSucceeded, 100, 100)
				old.FinishedAt = tp("2026-09-01T05:00:00Z")
				nu := obs("2026-09-02T04:10:00Z", "dade", "dade/r/2", model.StateRunning, 5, 100)
				nu.StartedAt = tp("2026-09-02T04:00:00Z")
				other := obs("2026-09-02T04:10:00Z", "broward", "broward/r/1", model.StateWaiting, 0, 0)
				if _, err := s.Ingest(ctx, []model.Observation{old, nu, other}); err != nil {
					t.Fatal(err)
				}
				latest := mustLatest(t, s)
				if got := latest[model.JobKey{Tenant: "dade", Job: "roster-import"}].RunID; got != "dade/r/2" {
					t.Fatalf("latest dade run %q, want dade/r/2", got)
				}
				succ, err := s.LastSuccess(ctx, Filter{})
				if err != nil {
					t.Fatal(err)
				}
				if r := succ[model.JobKey{Tenant: "dade", Job: "roster-import"}]; r.RunID != "dade/r/1" || !r.FinishedAt.Equal(ts("2026-09-01T05:00:00Z")) {
					t.Fatalf("last success = %+v", r)
				}
				if _, ok := succ[model.JobKey{Tenant: "broward", Job: "roster-import"}]; ok {
					t.Fatal("broward never succeeded but has a last success")
				}
				only, err := s.LatestRuns(ctx, Filter{Tenants: []string{"broward"}})
				if err != nil || len(only) != 1 {
					t.Fatalf("filtered to broward: %d runs, %v", len(only), err)
				}
			})

			t.Run("runs page newest first with a cursor", func(t *testing.T) {
				s := open(t)
				ctx := context.Background()
				var batch []model.Observation
				for d := 1; d <= 7; d++ {
					o := obs(fmt.Sprintf("2026-09-%02dT05:00:00Z", d), "dade", fmt.Sprintf("dade/r/%d", d), model.StateSucceeded, 1, 1)
					o.StartedAt = tp(fmt.Sprintf("2026-09-%02dT04:00:00Z", d))
					batch = append(batch, o)
				}
				if _, err := s.Ingest(ctx, batch); err != nil {
					t.Fatal(err)
				}
				var ids []string
				cursor := ""
				for pages := 0; ; pages++ {
					runs, next, err := s.Runs(ctx, model.JobKey{Tenant: "dade", Job: "roster-import"}, Page{Limit: 3, Before: cursor})
					if err != nil {
						t.Fatal(err)
					}
					for _, r := range runs {
						ids = append(ids, r.RunID)
					}
					if next == "" || pages > 5 {
						break
					}
					cursor = next
				}
				want := "[dade/r/7 dade/r/6 dade/r/5 dade/r/4 dade/r/3 dade/r/2 dade/r/1]"
				if fmt.Sprint(ids) != want {
					t.Fatalf("paged ids %v, want %s", ids, want)
				}
				if _, _, err := s.Runs(ctx, model.JobKey{Tenant: "dade", Job: "roster-import"}, Page{Before: "garbage!"}); err == nil {
					t.Fatal("a forged cursor was accepted")
				}
			})

			t.Run("prune removes old observations and runs only", func(t *testing.T) {
				s := open(t)
				ctx := context.Background()
				o1 := obs("2026-08-01T05:00:00Z", "dade", "dade/r/old", model.StateSucceeded, 1, 1)
				o2 := obs("2026-09-01T05:00:00Z", "dade", "dade/r/new", model.StateRunning, 1, 2)
				if _, err := s.Ingest(ctx, []model.Observation{o1, o2}); err != nil {
					t.Fatal(err)
				}
				on, rn, err := s.Prune(ctx, ts("2026-08-15T00:00:00Z"), ts("2026-08-15T00:00:00Z"))
				if err != nil || on != 1 || rn != 1 {
					t.Fatalf("pruned %d observations and %d runs (%v), want 1 and 1", on, rn, err)
				}
				if n, _ := s.CountObservations(ctx); n != 1 {
					t.Fatalf("%d observations left, want 1", n)
				}
			})

			t.Run("an alert saved twice in one call keeps its last state", func(t *testing.T) {
				s := open(t)
				ctx := context.Background()
				a := model.Alert{ID: "x1", Fingerprint: "stalled|dade|r", Rule: "stalled", Severity: "warning", Tenant: "dade", State: model.AlertPending}
				b := a
				b.State = model.AlertFiring
				if err := s.SaveAlerts(ctx, []model.Alert{a, b}, nil, nil); err != nil {
					t.Fatal(err)
				}
				got, err := s.ListAlerts(ctx, AlertFilter{States: []model.AlertState{model.AlertPending, model.AlertFiring}})
				if err != nil || len(got) != 1 || got[0].State != model.AlertFiring {
					t.Fatalf("alerts = %+v, %v", got, err)
				}
			})

			t.Run("source health round trip", func(t *testing.T) {
				s := open(t)
				ctx := context.Background()
				h := model.SourceHealth{Name: "legacy", Kind: "httpjson"}
				h.Record(ts("2026-09-01T05:00:00Z"), 250*time.Millisecond, 0, fmt.Errorf("HTTP 503"))
				h.Record(ts("2026-09-01T05:01:00Z"), 10*time.Second, 0, fmt.Errorf("timeout"))
				if err := s.SaveSource(ctx, h); err != nil {
					t.Fatal(err)
				}
				got, err := s.Source(ctx, "legacy")
				if err != nil {
					t.Fatal(err)
				}
				if got.Healthy || got.ConsecutiveFailures != 2 || got.LastError != "timeout" ||
					!got.FailingSince.Equal(ts("2026-09-01T05:00:00Z")) || got.LastDurationMs != 10000 {
					t.Fatalf("health read back = %+v", got)
				}
				h.Record(ts("2026-09-01T05:02:00Z"), time.Second, 3, nil)
				if err := s.SaveSource(ctx, h); err != nil {
					t.Fatal(err)
				}
				all, _ := s.Sources(ctx)
				if len(all) != 1 || !all[0].Healthy || all[0].ConsecutiveFailures != 0 || all[0].FailingSince != nil {
					t.Fatalf("after recovery: %+v", all)
				}
				if _, err := s.Source(ctx, "nope"); err != ErrNotFound {
					t.Fatalf("missing source: %v, want ErrNotFound", err)
				}
			})

			t.Run("sources and silences read every tick follow every write", func(t *testing.T) {
				// On SQLite the reads are kept between writes (cache.go):
				// each read must still see the write before it, and what a
				// caller does to its copy must not reach the next caller.
				s := open(t)
				ctx := context.Background()
				now := ts("2026-09-01T05:00:00Z")
				for i := range 3 {
					all, err := s.Sources(ctx)
					if err != nil || len(all) != i {
						t.Fatalf("sources before save %d = %+v, %v", i, all, err)
					}
					if i > 0 {
						all[0].Name = "changed by a caller"
					}
					if err := s.SaveSource(ctx, model.SourceHealth{Name: fmt.Sprintf("s%d", i), Kind: "httpjson", Healthy: true}); err != nil {
						t.Fatal(err)
					}
				}
				if all, _ := s.Sources(ctx); len(all) != 3 || all[0].Name != "s0" {
					t.Fatalf("sources = %+v", all)
				}
				silence := func(id string, ends time.Time) rules.Silence {
					return rules.Silence{ID: id, Matchers: []rules.Matcher{{Name: "tenant", Value: "dade"}}, StartsAt: now,
						EndsAt: ends, CreatedBy: "ops", CreatedAt: now}
				}
				ids := func(since time.Time) []string {
					t.Helper()
					list, err := s.Silences(ctx, since)
					if err != nil {
						t.Fatal(err)
					}
					var out []string
					for _, sl := range list {
						out = append(out, sl.ID)
					}
					return out
				}
				if got := ids(now); len(got) != 0 {
					t.Fatalf("silences before any = %v", got)
				}
				if err := s.SaveSilence(ctx, silence("a", now.Add(time.Hour))); err != nil {
					t.Fatal(err)
				}
				if err := s.SaveSilence(ctx, silence("b", now.Add(2*time.Hour))); err != nil {
					t.Fatal(err)
				}
				if got := ids(now); !slices.Equal(got, []string{"a", "b"}) {
					t.Fatalf("silences = %v, want a b", got)
				}
				list, _ := s.Silences(ctx, now)
				list[0].Matchers[0].Value = "changed by a caller"
				// A later read ends what ended since; an earlier one reads again.
				if got := ids(now.Add(90 * time.Minute)); !slices.Equal(got, []string{"b"}) {
					t.Fatalf("silences 90 minutes on = %v, want b", got)
				}
				if got, _ := s.Silences(ctx, now); len(got) != 2 || got[0].Matchers[0].Value != "dade" {
					t.Fatalf("silences read again = %+v", got)
				}
				if err := s.ExpireSilence(ctx, "b", now.Add(time.Minute)); err != nil {
					t.Fatal(err)
				}
				if got := ids(now.Add(2 * time.Minute)); !slices.Equal(got, []string{"a"}) {
					t.Fatalf("silences after b expired = %v, want a", got)
				}
			})
		})
	}
}

func mustLatest(t *testing.T, s *Store) map[model.JobKey]model.Run {
	t.Helper()
	m, err := s.LatestRuns(context.Background(), Filter{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSQLiteSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hub.db")
	s := mustOpen(t, Config{Driver: "sqlite", Path: path})
	if _, err := s.Ingest(context.Background(), []model.Observation{obs("2026-09-01T05:00:00Z", "dade", "r1", model.StateRunning, 1, 2)}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2 := mustOpen(t, Config{Driver: "sqlite", Path: path})
	if n, _ := s2.CountObservations(context.Background()); n != 1 {
		t.Fatalf("after reopen %d observations, want 1", n)
	}
}
