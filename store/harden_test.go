package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/etlhub/etlhub/model"
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
				a := obs("2026-09-01T04:05:00Z", "dade", "dade/r/1", model.StateRunning, 10, 100)
				a.UpdatedAt = nil
				b := a
				b.At, b.RowsDone = ts("2026-09-01T04:10:00Z"), 20
				for _, o := range []model.Observation{a, b} {
					if _, err := s.Ingest(ctx, []model.Observation{o}); err != nil {
						t.Fatal(err)
					}
				}
				got, err := s.Observations(ctx, RunKey{"dade", "roster-import", "dade/r/1"}, 10)
				if err != nil || len(got) != 2 {
					t.Fatalf("observations %v, %v", got, err)
				}
				for _, o := range got {
					if o.UpdatedAt != nil {
						t.Fatalf("observation at %v read back with updated_at %v; none was sent", o.At, o.UpdatedAt)
					}
				}
				r := mustLatest(t, s)[model.JobKey{Tenant: "dade", Job: "roster-import"}]
				if r.UpdatedAt != nil || r.RowsDone != 20 {
					t.Fatalf("run has updated_at %v (none was sent), rows %d", r.UpdatedAt, r.RowsDone)
				}
			})

			t.Run("a run_id of another tenant makes a run of its own", func(t *testing.T) {
				s := open(t)
				ctx := context.Background()
				b := obs("2026-09-01T04:05:00Z", "broward", "shared/1", model.StateRunning, 10, 100)
				b.Error = "broward's secret error text"
				if _, err := s.Ingest(ctx, []model.Observation{b}); err != nil {
					t.Fatal(err)
				}
				// Tenant dade pushes broward's run_id, newer, with another job too.
				a := obs("2026-09-01T04:30:00Z", "dade", "shared/1", model.StateSucceeded, 1, 1)
				a2 := a
				a2.Job, a2.At = "other-job", ts("2026-09-01T04:31:00Z")
				if _, err := s.Ingest(ctx, []model.Observation{a, a2}); err != nil {
					t.Fatal(err)
				}
				latest := mustLatest(t, s)
				br := latest[model.JobKey{Tenant: "broward", Job: "roster-import"}]
				if br.RunID != "shared/1" || br.State != model.StateRunning || br.RowsDone != 10 || br.Error != b.Error {
					t.Fatalf("broward's run after dade pushed its run_id: %+v", br)
				}
				if d := latest[model.JobKey{Tenant: "dade", Job: "roster-import"}]; d.RunID != "shared/1" || d.State != model.StateSucceeded || d.Error != "" {
					t.Fatalf("dade's run: %+v", d)
				}
				if d := latest[model.JobKey{Tenant: "dade", Job: "other-job"}]; d.RunID != "shared/1" || d.Tenant != "dade" {
					t.Fatalf("dade's other job's run: %+v", d)
				}
				owners, err := s.RunsByID(ctx, "shared/1", Filter{Tenants: []string{"dade"}})
				if err != nil || len(owners) != 2 {
					t.Fatalf("dade's runs with id shared/1: %+v, %v", owners, err)
				}
				got, err := s.Observations(ctx, RunKey{Tenant: "broward", Job: "roster-import", RunID: "shared/1"}, 10)
				if err != nil || len(got) != 1 || got[0].Tenant != "broward" {
					t.Fatalf("broward's observations: %+v, %v", got, err)
				}
			})

			t.Run("a database of the old schema is migrated", func(t *testing.T) {
				s := open(t)
				ctx := context.Background()
				old := obs("2026-09-01T04:05:00Z", "broward", "shared/1", model.StateRunning, 10, 100)
				if _, err := s.Ingest(ctx, []model.Observation{old}); err != nil {
					t.Fatal(err)
				}
				// Put the runs table back as it was before runs had owners.
				db := s.db
				var rows []runRow
				if err := db.Find(&rows).Error; err != nil || len(rows) != 1 {
					t.Fatalf("runs: %v %v", rows, err)
				}
				if err := db.Migrator().DropTable(&runRow{}, &schemaRow{}); err != nil {
					t.Fatal(err)
				}
				if err := db.AutoMigrate(&runRowV1{}); err != nil {
					t.Fatal(err)
				}
				v1 := runRowV1(rows[0])
				if err := db.Create(&v1).Error; err != nil {
					t.Fatal(err)
				}
				if err := s.migrate(); err != nil {
					t.Fatalf("migrating the old schema: %v", err)
				}
				if err := s.migrate(); err != nil {
					t.Fatalf("migrating twice: %v", err)
				}
				a := obs("2026-09-01T04:30:00Z", "dade", "shared/1", model.StateSucceeded, 1, 1)
				if _, err := s.Ingest(ctx, []model.Observation{a}); err != nil {
					t.Fatal(err)
				}
				latest := mustLatest(t, s)
				if br := latest[model.JobKey{Tenant: "broward", Job: "roster-import"}]; br.RunID != "shared/1" || br.RowsDone != 10 {
					t.Fatalf("broward's migrated run: %+v", br)
				}
				if d := latest[model.JobKey{Tenant: "dade", Job: "roster-import"}]; d.State != model.StateSucceeded {
					t.Fatalf("dade's run: %+v", d)
				}
			})

			t.Run("sources remember the tenants they fed", func(t *testing.T) {
				s := open(t)
				ctx := context.Background()
				for range 2 {
					if err := s.NoteSourceTenants(ctx, map[string][]string{"api": {"dade", "broward"}, "logs": {"dade"}}); err != nil {
						t.Fatal(err)
					}
				}
				got, err := s.SourceTenants(ctx)
				if err != nil || fmt.Sprint(got) != "map[api:[broward dade] logs:[dade]]" {
					t.Fatalf("source tenants %v, %v", got, err)
				}
			})

			t.Run("a source's error cut at the limit stays valid UTF-8", func(t *testing.T) {
				s := open(t)
				ctx := context.Background()
				h := model.SourceHealth{Name: "legacy", Kind: "httpjson"}
				// 'é' is two bytes: the limit falls in the middle of one.
				msg := "x" + strings.Repeat("é", model.MaxErrorLen)
				h.Record(ts("2026-09-01T05:00:00Z"), time.Second, 0, errors.New(msg))
				if err := s.SaveSource(ctx, h); err != nil {
					t.Fatalf("saving a source whose error was cut: %v", err)
				}
				got, err := s.Source(ctx, "legacy")
				if err != nil {
					t.Fatal(err)
				}
				if !utf8.ValidString(got.LastError) || len(got.LastError) > model.MaxErrorLen || len(got.LastError) < model.MaxErrorLen-1 {
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
	// Times are close to the wall clock: the bug filled updated_at with it.
	now := time.Now().UTC().Truncate(time.Minute)
	t0 := now.Add(-45 * time.Minute)
	started := t0.Add(-5 * time.Minute)
	sched := started.Add(-10 * time.Minute)
	spec := model.JobSpec{Tenant: "dade", Job: "roster-import", Timezone: "UTC",
		Schedule: fmt.Sprintf("%d %d * * *", sched.Minute(), sched.Hour()), Deadline: sched.Add(6 * time.Hour).Format("15:04"),
		StaleAfter: model.Duration(20 * time.Minute)}
	if err := spec.Compile(); err != nil {
		t.Fatal(err)
	}
	var polls []model.Observation
	for at := t0; !at.After(now); at = at.Add(5 * time.Minute) {
		polls = append(polls, model.Observation{At: at, RunStatus: model.RunStatus{
			Source: "importer", Tenant: "dade", Job: "roster-import",
			RunID: "dade/1", State: model.StateRunning, Stage: "loading", StartedAt: &started, RowsDone: 10, RowsTotal: 100,
		}})
	}
	stalled := func(e *rules.Engine) bool {
		e.Tick(now)
		for _, a := range e.Active() {
			if a.Rule == rules.RuleStalled && a.State == model.AlertFiring {
				return true
			}
		}
		return false
	}
	s := mustOpen(t, Config{Driver: "sqlite", Path: path})
	if _, err := s.Ingest(ctx, polls); err != nil {
		t.Fatal(err)
	}
	live := rules.NewEngine([]model.JobSpec{spec}, rules.DefaultParams(), nil)
	live.Observe(polls, now)
	if !stalled(live) {
		t.Fatal("live: a run unchanged for 45 minutes (stale after 20m) is not stalled")
	}
	s.Close()

	s2 := mustOpen(t, Config{Driver: "sqlite", Path: path})
	warm := rules.NewEngine([]model.JobSpec{spec}, rules.DefaultParams(), nil)
	if err := s2.ObservationsSince(ctx, now.Add(-24*time.Hour), func(o []model.Observation) error {
		warm.Observe(o, now)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !stalled(warm) {
		t.Fatal("after a restart the stalled run looks fresh")
	}
}

// runRowV1 is the runs table before runs had owners (one row per run_id).
type runRowV1 struct {
	Tenant          string      `gorm:"size:128;not null;index:ix_run_job,priority:1"`
	Job             string      `gorm:"size:128;not null;index:ix_run_job,priority:2"`
	RunID           string      `gorm:"primaryKey;size:256"`
	Source          string      `gorm:"size:128;not null"`
	SortAt          time.Time   `gorm:"not null;index:ix_run_job,priority:3"`
	State           string      `gorm:"size:16;not null;index"`
	Stage           model.Stage `gorm:"size:64;not null"`
	Attempt         int         `gorm:"not null"`
	StartedAt       *time.Time  ``
	UpdatedAt       *time.Time  `gorm:"autoUpdateTime:false"`
	FinishedAt      *time.Time  ``
	RowsDone        int64       `gorm:"not null"`
	RowsTotal       int64       `gorm:"not null"`
	Error           string      `gorm:"size:4096;not null"`
	FilesArrivedAt  *time.Time  ``
	QualityErrors   int64       `gorm:"not null"`
	QualityWarnings int64       `gorm:"not null"`
	URL             string      `gorm:"size:2048;not null"`
	FirstSeenAt     time.Time   `gorm:"not null"`
	LastSeenAt      time.Time   `gorm:"not null;index"`
}

func (runRowV1) TableName() string { return "runs" }

// TestAnOutlierStoredAnywayDoesNotSurviveARestart: an observation with a
// far-future start stored before times were checked must not move the job's
// night when the hub restarts and replays its store: tonight's failure fires.
func TestAnOutlierStoredAnywayDoesNotSurviveARestart(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, Config{Driver: "sqlite", Path: filepath.Join(t.TempDir(), "hub.db")})
	now := time.Now().UTC().Truncate(time.Minute)
	sched := now.Add(-time.Hour)
	spec := model.JobSpec{Tenant: "dade", Job: "roster-import", Timezone: "UTC",
		Schedule: fmt.Sprintf("%d %d * * *", sched.Minute(), sched.Hour()), Deadline: sched.Add(6 * time.Hour).Format("15:04"),
		StaleAfter: model.Duration(20 * time.Minute)}
	if err := spec.Compile(); err != nil {
		t.Fatal(err)
	}
	far := time.Date(2199, 1, 1, 0, 0, 0, 0, time.UTC)
	started := sched.Add(5 * time.Minute)
	failed := now.Add(-10 * time.Minute)
	bogus := model.Observation{At: sched.Add(time.Minute), RunStatus: model.RunStatus{
		Source: "importer", Tenant: "dade", Job: "roster-import",
		RunID: "bogus", State: model.StateRunning, StartedAt: &far, UpdatedAt: &far,
	}}
	real := model.Observation{At: failed, RunStatus: model.RunStatus{
		Source: "importer", Tenant: "dade", Job: "roster-import", RunID: "real",
		State: model.StateFailed, Stage: "loading", StartedAt: &started, UpdatedAt: &failed, FinishedAt: &failed,
		Error: "mongo: connection reset",
	}}
	if _, err := s.Ingest(ctx, []model.Observation{bogus, real}); err != nil {
		t.Fatal(err)
	}
	e := rules.NewEngine([]model.JobSpec{spec}, rules.DefaultParams(), nil)
	if err := s.ObservationsSince(ctx, now.Add(-24*time.Hour), func(o []model.Observation) error {
		e.Observe(o, now)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	tr, _ := e.Tick(now)
	for _, x := range tr {
		if x.Alert.Rule == rules.RuleFailed && x.Alert.RunID == "real" {
			return
		}
	}
	t.Fatalf("after a restart with a 2199 start stored, tonight's failure raised %+v", tr)
}
