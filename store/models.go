package store

import (
	"time"

	"github.com/etlhub/etlhub/model"
)

var allModels = []any{&schemaRow{}, &observationRow{}, &runRow{}, &sourceRow{}, &alertRow{}, &alertEventRow{}, &silenceRow{}, &outboxRow{}, &webhookEventRow{}, &sourceTenantRow{}, &leaseRow{}, &replicaRow{}, &blindRow{}, &measurementRow{}, &dependencyRow{}, &reloadRow{}}

// observationRow is one stored observation. (run_id, hash) is unique, so an
// unchanged repeat is not stored twice.
type observationRow struct {
	ID              uint64      `gorm:"primaryKey;autoIncrement"`
	RunID           string      `gorm:"size:256;not null;uniqueIndex:ux_obs_run_hash,priority:1"`
	Hash            string      `gorm:"size:32;not null;uniqueIndex:ux_obs_run_hash,priority:2"`
	At              time.Time   `gorm:"not null;index:ix_obs_at"`
	Source          string      `gorm:"size:128;not null"`
	Tenant          string      `gorm:"size:128;not null"`
	Job             string      `gorm:"size:128;not null"`
	State           string      `gorm:"size:16;not null"`
	Stage           model.Stage `gorm:"size:64;not null"`
	StartedAt       *time.Time  ``
	UpdatedAt       *time.Time  `gorm:"autoUpdateTime:false"` // what was sent, never the ingest time
	FinishedAt      *time.Time  ``
	RowsDone        int64       `gorm:"not null"`
	RowsTotal       int64       `gorm:"not null"`
	Error           string      `gorm:"size:4096;not null"`
	FilesArrivedAt  *time.Time  ``
	Attempt         int         `gorm:"not null"`
	QualityErrors   *int64      ``
	QualityWarnings *int64      ``
	URL             string      `gorm:"size:2048;not null"`
}

func (observationRow) TableName() string { return "observations" }

func toObservationRow(o *model.Observation) observationRow {
	r := observationRow{
		RunID: o.RunID, Hash: o.Hash(), At: o.At.UTC(), Source: o.Source, Tenant: o.Tenant, Job: o.Job,
		State: string(o.State), Stage: o.Stage, StartedAt: o.StartedAt, UpdatedAt: o.UpdatedAt,
		FinishedAt: o.FinishedAt, RowsDone: o.RowsDone, RowsTotal: o.RowsTotal, Error: o.Error,
		FilesArrivedAt: o.FilesArrivedAt, Attempt: o.Attempt, URL: o.URL,
	}
	if o.Quality != nil {
		e, w := o.Quality.Errors, o.Quality.Warnings
		r.QualityErrors, r.QualityWarnings = &e, &w
	}
	return r
}

func (r *observationRow) observation() model.Observation {
	o := model.Observation{
		At: r.At.UTC(), RunStatus: model.RunStatus{
			Source: r.Source, Tenant: r.Tenant, Job: r.Job, RunID: r.RunID,
			State: model.State(r.State), Stage: r.Stage, StartedAt: utc(r.StartedAt), UpdatedAt: utc(r.UpdatedAt),
			FinishedAt: utc(r.FinishedAt), RowsDone: r.RowsDone, RowsTotal: r.RowsTotal, Error: r.Error,
		},
		FilesArrivedAt: utc(r.FilesArrivedAt), Attempt: r.Attempt, URL: r.URL,
	}
	if r.QualityErrors != nil && r.QualityWarnings != nil {
		o.Quality = &model.Quality{Errors: *r.QualityErrors, Warnings: *r.QualityWarnings}
	}
	return o
}

// runRow is the derived state of one run. Its indexes are its key and
// (tenant, job, sort_at): a heartbeat changes neither, so on PostgreSQL
// (fillfactor 70) its update stays on the row's page without touching an
// index (a HOT update); prune's scan by last_seen_at reads the table. A run belongs to one tenant and
// job for ever: (tenant, job, run_id) is its key, so a run_id another tenant
// (or job) also uses names a different run.
type runRow struct {
	Tenant          string      `gorm:"primaryKey;size:128;index:ix_run_job,priority:1"`
	Job             string      `gorm:"primaryKey;size:128;index:ix_run_job,priority:2"`
	RunID           string      `gorm:"primaryKey;size:256;index:ix_run_id"`
	Source          string      `gorm:"size:128;not null"`
	SortAt          time.Time   `gorm:"not null;index:ix_run_job,priority:3"`
	State           string      `gorm:"size:16;not null"`
	Stage           model.Stage `gorm:"size:64;not null"`
	Attempt         int         `gorm:"not null"`
	StartedAt       *time.Time  ``
	UpdatedAt       *time.Time  `gorm:"autoUpdateTime:false"` // what was sent, never the ingest time
	FinishedAt      *time.Time  ``
	RowsDone        int64       `gorm:"not null"`
	RowsTotal       int64       `gorm:"not null"`
	Error           string      `gorm:"size:4096;not null"`
	FilesArrivedAt  *time.Time  ``
	QualityErrors   int64       `gorm:"not null"`
	QualityWarnings int64       `gorm:"not null"`
	URL             string      `gorm:"size:2048;not null"`
	FirstSeenAt     time.Time   `gorm:"not null"`
	LastSeenAt      time.Time   `gorm:"not null"`
}

func (runRow) TableName() string { return "runs" }

func toRunRow(r *model.Run) runRow {
	return runRow{
		RunID: r.RunID, Source: r.Source, Tenant: r.Tenant, Job: r.Job, SortAt: r.SortAt().UTC(),
		State: string(r.State), Stage: r.Stage, Attempt: r.Attempt, StartedAt: r.StartedAt,
		UpdatedAt: r.UpdatedAt, FinishedAt: r.FinishedAt, RowsDone: r.RowsDone, RowsTotal: r.RowsTotal,
		Error: r.Error, FilesArrivedAt: r.FilesArrivedAt, QualityErrors: r.QualityErrors,
		QualityWarnings: r.QualityWarnings, URL: r.URL, FirstSeenAt: r.FirstSeenAt.UTC(), LastSeenAt: r.LastSeenAt.UTC(),
	}
}

func (r *runRow) run() model.Run {
	return model.Run{
		RunStatus: model.RunStatus{
			RunID: r.RunID, Source: r.Source, Tenant: r.Tenant, Job: r.Job, State: model.State(r.State),
			Stage: r.Stage, StartedAt: utc(r.StartedAt), UpdatedAt: utc(r.UpdatedAt),
			FinishedAt: utc(r.FinishedAt), RowsDone: r.RowsDone, RowsTotal: r.RowsTotal, Error: r.Error,
		}, Attempt: r.Attempt,
		FilesArrivedAt: utc(r.FilesArrivedAt), QualityErrors: r.QualityErrors, QualityWarnings: r.QualityWarnings,
		URL: r.URL, FirstSeenAt: r.FirstSeenAt.UTC(), LastSeenAt: r.LastSeenAt.UTC(),
	}
}

// sourceRow is a collector source's health.
type sourceRow struct {
	Name                string `gorm:"primaryKey;size:128"`
	Kind                string `gorm:"size:32;not null"`
	Healthy             bool   `gorm:"not null"`
	LastRunAt           *time.Time
	LastSuccessAt       *time.Time
	LastErrorAt         *time.Time
	LastError           string `gorm:"size:4096;not null"`
	ConsecutiveFailures int    `gorm:"not null"`
	FailingSince        *time.Time
	LastDurationMs      int64 `gorm:"not null"`
	LastObservations    int   `gorm:"not null"`
	NextAttemptAt       *time.Time
}

func (sourceRow) TableName() string { return "sources" }

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
