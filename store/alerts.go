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

// alertRow is one alert (one fingerprint's current or last life).
type alertRow struct {
	Fingerprint string           `gorm:"primaryKey;size:512"`
	AlertID     string           `gorm:"size:32;not null;index"`
	Rule        string           `gorm:"size:64;not null;index"`
	Severity    model.Severity   `gorm:"size:16;not null"`
	Tenant      string           `gorm:"size:128;not null;index"`
	Job         string           `gorm:"size:128;not null"`
	State       model.AlertState `gorm:"size:16;not null;index"`
	UpdatedAt   time.Time        `gorm:"not null;autoUpdateTime:false"`
	Body        string           `gorm:"type:text;not null"` // the model.Alert as JSON
}

func (alertRow) TableName() string { return "alerts" }

// alertEventRow is one transition, in order: the history of what fired.
type alertEventRow struct {
	ID          uint64               `gorm:"primaryKey;autoIncrement"`
	At          time.Time            `gorm:"not null;index"`
	Fingerprint string               `gorm:"size:512;not null;index"`
	Status      model.TransitionKind `gorm:"size:16;not null"`
	Silenced    bool                 `gorm:"not null"`
	Body        string               `gorm:"type:text;not null"`
}

func (alertEventRow) TableName() string { return "alert_events" }

// SaveAlerts persists changed alerts, their transitions and the notifications
// they cause in one transaction, so a restart neither pages twice nor forgets,
// and no transition is lost between the alert and its notification.
func (s *Store) SaveAlerts(ctx context.Context, changed []model.Alert, trans []model.Transition, notify []Notification) error {
	if len(changed) == 0 && len(trans) == 0 && len(notify) == 0 {
		return nil
	}
	outbox, err := outboxRows(notify)
	if err != nil {
		return err
	}
	// The same alert may come twice (changes of several ticks): the last wins,
	// as one upsert statement may not touch a row twice.
	last := make(map[string]int, len(changed))
	for i := range changed {
		last[changed[i].Fingerprint] = i
	}
	rows := make([]alertRow, 0, len(last))
	for i := range changed {
		if last[changed[i].Fingerprint] != i {
			continue
		}
		a := &changed[i]
		b, err := json.Marshal(a)
		if err != nil {
			return err
		}
		rows = append(rows, alertRow{Fingerprint: a.Fingerprint, AlertID: a.ID, Rule: a.Rule, Severity: a.Severity, Tenant: a.Tenant,
			Job: a.Job, State: a.State, UpdatedAt: a.LastSeen.UTC(), Body: string(b)})
	}
	events := make([]alertEventRow, 0, len(trans))
	for _, t := range trans {
		b, err := json.Marshal(t.Alert)
		if err != nil {
			return err
		}
		events = append(events, alertEventRow{At: t.At.UTC(), Fingerprint: t.Alert.Fingerprint, Status: t.Status,
			Silenced: t.Alert.Silenced, Body: string(b)})
	}
	return s.fencedWrite(ctx, "save_alerts", func(tx *gorm.DB) error {
		for start := 0; start < len(rows); start += maxBatch {
			end := min(start+maxBatch, len(rows))
			if err := tx.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "fingerprint"}}, UpdateAll: true}).
				Create(rows[start:end]).Error; err != nil {
				return fmt.Errorf("save alerts: %w", err)
			}
		}
		if len(events) > 0 {
			if err := tx.CreateInBatches(events, maxBatch).Error; err != nil {
				return fmt.Errorf("save alert events: %w", err)
			}
		}
		if len(outbox) > 0 {
			if err := tx.CreateInBatches(outbox, maxBatch).Error; err != nil {
				return fmt.Errorf("queue notifications: %w", err)
			}
		}
		return nil
	})
}

// AlertFilter narrows ListAlerts.
type AlertFilter struct {
	Tenants  []string
	States   []model.AlertState
	Rule     string
	Severity model.Severity
	ID       string
	Limit    int
}

// ListAlerts returns alerts, most recently updated first.
func (s *Store) ListAlerts(ctx context.Context, f AlertFilter) ([]model.Alert, error) {
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 200
	}
	var out []model.Alert
	err := s.read(ctx, "list_alerts", func(db *gorm.DB) error {
		q := db.Model(&alertRow{})
		if len(f.Tenants) > 0 {
			q = q.Where("tenant IN ?", f.Tenants)
		}
		if len(f.States) > 0 {
			q = q.Where("state IN ?", f.States)
		}
		if f.Rule != "" {
			q = q.Where("rule = ?", f.Rule)
		}
		if f.Severity != "" {
			q = q.Where("severity = ?", f.Severity)
		}
		if f.ID != "" {
			q = q.Where("alert_id = ?", f.ID)
		}
		var rows []alertRow
		if err := q.Order("updated_at DESC, fingerprint").Limit(f.Limit).Find(&rows).Error; err != nil {
			return err
		}
		out = make([]model.Alert, 0, len(rows))
		for _, r := range rows {
			var a model.Alert
			if err := json.Unmarshal([]byte(r.Body), &a); err != nil {
				return fmt.Errorf("alert %s: %w", r.Fingerprint, err)
			}
			out = append(out, a)
		}
		return nil
	})
	return out, err
}

// ObservationsSince returns observations observed at or after since, in at
// order (to rebuild the rules' state after a restart).
func (s *Store) ObservationsSince(ctx context.Context, since time.Time, fn func([]model.Observation) error) error {
	return s.read(ctx, "observations_since", func(db *gorm.DB) error {
		return pagesByAt(db.Model(&observationRow{}).Where("at >= ?", since.UTC()), 5000,
			func(r *observationRow) (time.Time, uint64) { return r.At, r.ID },
			func(batch []observationRow) error {
				obs := make([]model.Observation, len(batch))
				for i := range batch {
					obs[i] = batch[i].observation()
				}
				return fn(obs)
			})
	})
}

// FiringsBetween returns the firing transitions in [since, until).
func (s *Store) FiringsBetween(ctx context.Context, since, until time.Time) ([]model.Transition, error) {
	var out []model.Transition
	err := s.read(ctx, "firings_between", func(db *gorm.DB) error {
		var rows []alertEventRow
		if err := db.Where("status = ? AND at >= ? AND at < ?", model.TransitionFiring, since.UTC(), until.UTC()).Order("id").Find(&rows).Error; err != nil {
			return err
		}
		for _, r := range rows {
			var a model.Alert
			if err := json.Unmarshal([]byte(r.Body), &a); err != nil {
				return fmt.Errorf("alert event %d: %w", r.ID, err)
			}
			out = append(out, model.Transition{At: r.At.UTC(), Status: r.Status, Alert: a})
		}
		return nil
	})
	return out, err
}
