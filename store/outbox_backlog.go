package store

import (
	"context"
	"time"

	"gorm.io/gorm"
)

// Backlog is one receiver's undelivered notifications: how many are pending
// and when the oldest of them was queued.
type Backlog struct {
	Receiver string
	Pending  int64
	Oldest   time.Time
}

// OutboxBacklog returns the pending notifications per receiver (receivers
// with none are left out).
func (s *Store) OutboxBacklog(ctx context.Context) ([]Backlog, error) {
	var out []Backlog
	err := s.read(ctx, "outbox_backlog", func(db *gorm.DB) error {
		var rows []struct {
			Receiver string
			N        int64
		}
		if err := db.Model(&outboxRow{}).Select("receiver, COUNT(*) AS n").Where("status = ?", OutboxPending).
			Group("receiver").Order("receiver").Scan(&rows).Error; err != nil {
			return err
		}
		for _, r := range rows {
			// The oldest row read as a row: MIN() over a time column comes
			// back as text on SQLite and as a time on PostgreSQL.
			var first []outboxRow
			if err := db.Select("id, created_at").Where("status = ? AND receiver = ?", OutboxPending, r.Receiver).
				Order("created_at").Limit(1).Find(&first).Error; err != nil {
				return err
			}
			b := Backlog{Receiver: r.Receiver, Pending: r.N}
			if len(first) == 1 {
				b.Oldest = first[0].CreatedAt.UTC()
			}
			out = append(out, b)
		}
		return nil
	})
	return out, err
}
