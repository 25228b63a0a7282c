package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/etlhub/etlhub/model"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// measurementRow is one stored measurement of a dependency (the history the
// rules learn baselines from; pruned by retention.measurements).
type measurementRow struct {
	ID      uint64    `gorm:"primaryKey;autoIncrement"`
	At      time.Time `gorm:"not null;index:ix_meas_at;index:ix_meas_subject,priority:2"`
	Subject string    `gorm:"size:256;not null;index:ix_meas_subject,priority:1"`
	Source  string    `gorm:"size:128;not null"`
	Kind    string    `gorm:"size:32;not null"`
	Tenant  string    `gorm:"size:128;not null"`
	Job     string    `gorm:"size:128;not null"`
	Up      bool      `gorm:"not null"`
	Error   string    `gorm:"size:4096;not null"`
	Values  string    `gorm:"type:text;not null"` // JSON object of name → number
}

func (measurementRow) TableName() string { return "measurements" }

// dependencyRow is the latest measurement of each subject.
type dependencyRow struct {
	Subject string    `gorm:"primaryKey;size:256"`
	At      time.Time `gorm:"not null;index"`
	Source  string    `gorm:"size:128;not null"`
	Kind    string    `gorm:"size:32;not null"`
	Tenant  string    `gorm:"size:128;not null"`
	Job     string    `gorm:"size:128;not null"`
	Up      bool      `gorm:"not null"`
	Error   string    `gorm:"size:4096;not null"`
	Values  string    `gorm:"type:text;not null"`
}

func (dependencyRow) TableName() string { return "dependencies" }

func toMeasurementRow(m *model.Measurement) (measurementRow, error) {
	v := "{}"
	if len(m.Values) > 0 {
		b, err := json.Marshal(m.Values)
		if err != nil {
			return measurementRow{}, fmt.Errorf("measurement %s: values: %w", m.Subject, err)
		}
		v = string(b)
	}
	return measurementRow{At: m.At.UTC(), Subject: m.Subject, Source: m.Source, Kind: string(m.Kind), Tenant: m.Tenant,
		Job: m.Job, Up: m.Up, Error: m.Error, Values: v}, nil
}

func measurementOf(at time.Time, subject, source, kind, tenant, job string, up bool, errText, values string) model.Measurement {
	m := model.Measurement{At: at.UTC(), Subject: subject, Source: source, Kind: model.DependencyKind(kind), Tenant: tenant,
		Job: job, Up: up, Error: errText}
	if values != "" && values != "{}" {
		_ = json.Unmarshal([]byte(values), &m.Values) // written by us from a map: it parses
	}
	return m
}

// SaveMeasurements stores validated measurements: each joins its subject's
// history, and the newest of each subject becomes its latest (an older one
// arriving late does not replace a newer latest).
func (s *Store) SaveMeasurements(ctx context.Context, ms []model.Measurement) error {
	if len(ms) == 0 {
		return nil
	}
	rows := make([]measurementRow, 0, len(ms))
	latest := map[string]dependencyRow{}
	for i := range ms {
		r, err := toMeasurementRow(&ms[i])
		if err != nil {
			return err
		}
		rows = append(rows, r)
		if l, ok := latest[r.Subject]; !ok || !r.At.Before(l.At) {
			latest[r.Subject] = dependencyRow{Subject: r.Subject, At: r.At, Source: r.Source, Kind: r.Kind, Tenant: r.Tenant,
				Job: r.Job, Up: r.Up, Error: r.Error, Values: r.Values}
		}
	}
	return s.write(ctx, "save_measurements", func(tx *gorm.DB) error {
		if err := tx.CreateInBatches(rows, maxBatch).Error; err != nil {
			return err
		}
		for _, l := range latest {
			// Only a newer measurement replaces the latest.
			err := tx.Clauses(clause.OnConflict{
				Columns:   []clause.Column{{Name: "subject"}},
				DoUpdates: clause.AssignmentColumns([]string{"at", "source", "kind", "tenant", "job", "up", "error", "values"}),
				Where:     clause.Where{Exprs: []clause.Expression{clause.Expr{SQL: "dependencies.at <= excluded.at"}}},
			}).Create(&l).Error
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// Dependencies returns the latest measurement of every subject, by subject.
func (s *Store) Dependencies(ctx context.Context) ([]model.Measurement, error) {
	var out []model.Measurement
	err := s.read(ctx, "dependencies", func(db *gorm.DB) error {
		var rows []dependencyRow
		if err := db.Order("subject").Find(&rows).Error; err != nil {
			return err
		}
		for _, r := range rows {
			out = append(out, measurementOf(r.At, r.Subject, r.Source, r.Kind, r.Tenant, r.Job, r.Up, r.Error, r.Values))
		}
		return nil
	})
	return out, err
}

// MeasurementsSince calls fn with the measurements taken at or after since,
// in at order, in batches (the rules' warm-up). subject, when not empty,
// keeps one subject's.
func (s *Store) MeasurementsSince(ctx context.Context, since time.Time, subject string, fn func([]model.Measurement) error) error {
	return s.read(ctx, "measurements_since", func(db *gorm.DB) error {
		q := db.Model(&measurementRow{}).Where("at >= ?", since.UTC())
		if subject != "" {
			q = q.Where("subject = ?", subject)
		}
		return pagesByAt(q, 1000, func(r *measurementRow) (time.Time, uint64) { return r.At, r.ID },
			func(rows []measurementRow) error {
				ms := make([]model.Measurement, len(rows))
				for i, r := range rows {
					ms[i] = measurementOf(r.At, r.Subject, r.Source, r.Kind, r.Tenant, r.Job, r.Up, r.Error, r.Values)
				}
				return fn(ms)
			})
	})
}

// PruneMeasurements deletes the history measured before before, and the
// latest of subjects not measured since (a dependency no longer probed); it
// reports how many history rows went.
func (s *Store) PruneMeasurements(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.write(ctx, "prune_measurements", func(tx *gorm.DB) error {
		r := tx.Where("at < ?", before.UTC()).Delete(&measurementRow{})
		if r.Error != nil {
			return r.Error
		}
		n = r.RowsAffected
		return tx.Where("at < ?", before.UTC()).Delete(&dependencyRow{}).Error
	})
	return n, err
}
