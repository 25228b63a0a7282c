package store

import (
	"context"
	"time"

	"gorm.io/gorm"
)

// blindRow is an interval a hub replica could not reach its store: nothing
// could be stored or collected then, so the rules do not judge jobs' silences
// over it.
type blindRow struct {
	ID      uint64    `gorm:"primaryKey;autoIncrement"`
	Replica string    `gorm:"size:256;not null"`
	From    time.Time `gorm:"column:from_at;not null"`
	To      time.Time `gorm:"column:to_at;not null;index"`
	Reason  string    `gorm:"size:512;not null"`
}

func (blindRow) TableName() string { return "etlhub_blind_intervals" }

// BlindInterval is one recorded outage of the store, as a replica saw it.
type BlindInterval struct {
	Replica string
	From    time.Time
	To      time.Time
	Reason  string
}

// RecordBlind stores an outage once the store answers again, and forgets
// those that ended before forget.
func (s *Store) RecordBlind(ctx context.Context, b BlindInterval, forget time.Time) error {
	row := blindRow{Replica: b.Replica, From: b.From.UTC(), To: b.To.UTC(), Reason: clip(b.Reason, 512)}
	return s.write(ctx, "blind_record", func(tx *gorm.DB) error {
		if err := tx.Create(&row).Error; err != nil {
			return err
		}
		return tx.Where("to_at < ?", forget.UTC()).Delete(&blindRow{}).Error
	})
}

// BlindSince lists the outages that ended at or after since.
func (s *Store) BlindSince(ctx context.Context, since time.Time) ([]BlindInterval, error) {
	var rows []blindRow
	err := s.read(ctx, "blind_since", func(db *gorm.DB) error {
		return db.Where("to_at >= ?", since.UTC()).Order("from_at").Limit(10000).Find(&rows).Error
	})
	out := make([]BlindInterval, 0, len(rows))
	for _, r := range rows {
		out = append(out, BlindInterval{Replica: r.Replica, From: r.From.UTC(), To: r.To.UTC(), Reason: r.Reason})
	}
	return out, err
}
