package store

import (
	"context"
	"time"

	"github.com/etlhub/etlhub/model"
	"gorm.io/gorm"
)

// LastFiring is the newest firing notification queued for an alert and a
// receiver: when, and whether it still waits for delivery.
type LastFiring struct {
	At      time.Time
	Pending bool
}

// FiringKey names an alert's notifications to one receiver.
type FiringKey struct{ Fingerprint, Receiver string }

// LastFirings are, for these fingerprints and every receiver, the newest
// firing notification queued (what repeat_interval counts from).
func (s *Store) LastFirings(ctx context.Context, fingerprints []string) (map[FiringKey]LastFiring, error) {
	out := map[FiringKey]LastFiring{}
	for len(fingerprints) > 0 {
		chunk := fingerprints[:min(len(fingerprints), 500)]
		fingerprints = fingerprints[len(chunk):]
		err := s.read(ctx, "outbox_last_firings", func(db *gorm.DB) error {
			newest := db.Model(&outboxRow{}).Select("MAX(id)").Where("event = ? AND fingerprint IN ?", model.TransitionFiring, chunk).Group("fingerprint, receiver")
			var rows []outboxRow
			if err := db.Where("id IN (?)", newest).Find(&rows).Error; err != nil {
				return err
			}
			for _, r := range rows {
				out[FiringKey{r.Fingerprint, r.Receiver}] = LastFiring{At: r.CreatedAt.UTC(), Pending: r.Status == OutboxPending}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// GroupLastFiring is when a group's newest firing notification to a
// receiver went out (or is due, while pending); zero when it never had one
// (what group_interval counts from).
func (s *Store) GroupLastFiring(ctx context.Context, receiver, groupKey string) (time.Time, error) {
	var rows []outboxRow
	err := s.read(ctx, "outbox_group_last", func(db *gorm.DB) error {
		return db.Where("receiver = ? AND group_key = ? AND event = ?", receiver, groupKey, model.TransitionFiring).Order("id DESC").Limit(1).Find(&rows).Error
	})
	if err != nil || len(rows) == 0 {
		return time.Time{}, err
	}
	if d := rows[0].DeliveredAt; d != nil {
		return d.UTC(), nil
	}
	return rows[0].NextAt.UTC(), nil
}

// GroupFiring counts the alerts of a group, as notified to a receiver,
// that still fire: the group's page resolves when none is left. It goes by
// the alerts queued in the group, so it holds for a group of any labels.
func (s *Store) GroupFiring(ctx context.Context, receiver, groupKey string) (int64, error) {
	var n int64
	err := s.read(ctx, "outbox_group_firing", func(db *gorm.DB) error {
		members := db.Model(&outboxRow{}).Select("fingerprint").Where("receiver = ? AND group_key = ? AND event = ?", receiver, groupKey, model.TransitionFiring)
		return db.Model(&alertRow{}).Where("state = ? AND fingerprint IN (?)", model.AlertFiring, members).Count(&n).Error
	})
	return n, err
}
