package store

import (
	"context"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// webhookEventRow remembers a webhook event id (PagerDuty's event.id) so a
// replayed or redelivered body is acted on once, across restarts.
type webhookEventRow struct {
	Source     string    `gorm:"size:32;primaryKey"`
	EventID    string    `gorm:"size:128;primaryKey"`
	ReceivedAt time.Time `gorm:"not null;index"`
}

func (webhookEventRow) TableName() string { return "webhook_events" }

// FirstWebhookEvent records the event id of source at at; it reports false
// when the id was recorded before (a replay, or a redelivery of one already
// acted on). Ids received before forgetBefore are pruned: a body that old is
// refused by its timestamp anyway.
func (s *Store) FirstWebhookEvent(ctx context.Context, source, id string, at, forgetBefore time.Time) (bool, error) {
	first := false
	err := s.write(ctx, "webhook_event", func(tx *gorm.DB) error {
		r := tx.Clauses(clause.OnConflict{DoNothing: true}).
			Create(&webhookEventRow{Source: source, EventID: id, ReceivedAt: at.UTC()})
		if r.Error != nil {
			return r.Error
		}
		first = r.RowsAffected == 1
		return tx.Where("source = ? AND received_at < ?", source, forgetBefore.UTC()).Delete(&webhookEventRow{}).Error
	})
	return first, err
}

// ForgetWebhookEvent removes an event id whose action failed, so that the
// sender's retry is taken.
func (s *Store) ForgetWebhookEvent(ctx context.Context, source, id string) error {
	return s.write(ctx, "webhook_event_forget", func(tx *gorm.DB) error {
		return tx.Where("source = ? AND event_id = ?", source, id).Delete(&webhookEventRow{}).Error
	})
}
