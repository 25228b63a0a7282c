package store

import (
	"context"
	"encoding/json"
	"time"

	"github.com/etlhub/etlhub/rules"
	"gorm.io/gorm"
)

// silenceRow is one silence or maintenance window.
type silenceRow struct {
	ID        string    `gorm:"primaryKey;size:64"`
	StartsAt  time.Time `gorm:"not null"`
	EndsAt    time.Time `gorm:"not null;index"`
	CreatedBy string    `gorm:"size:128;not null"`
	Comment   string    `gorm:"size:1024;not null"`
	Matchers  string    `gorm:"type:text;not null"` // JSON
	CreatedAt time.Time `gorm:"not null"`
}

func (silenceRow) TableName() string { return "silences" }

// SaveSilence stores a new silence.
func (s *Store) SaveSilence(ctx context.Context, sl rules.Silence) error {
	m, err := json.Marshal(sl.Matchers)
	if err != nil {
		return err
	}
	row := silenceRow{ID: sl.ID, StartsAt: sl.StartsAt.UTC(), EndsAt: sl.EndsAt.UTC(), CreatedBy: sl.CreatedBy,
		Comment: sl.Comment, Matchers: string(m), CreatedAt: sl.CreatedAt.UTC()}
	defer s.cache.silences.wrote()
	return s.write(ctx, "save_silence", func(tx *gorm.DB) error { return tx.Create(&row).Error })
}

// ExpireSilence ends a silence at now; ErrNotFound when there is none.
func (s *Store) ExpireSilence(ctx context.Context, id string, now time.Time) error {
	defer s.cache.silences.wrote()
	return s.write(ctx, "expire_silence", func(tx *gorm.DB) error {
		r := tx.Model(&silenceRow{}).Where("id = ? AND ends_at > ?", id, now.UTC()).Update("ends_at", now.UTC())
		if r.Error != nil {
			return r.Error
		}
		if r.RowsAffected == 0 {
			return ErrNotFound
		}
		return nil
	})
}

// Silences lists silences that end after since.
func (s *Store) Silences(ctx context.Context, since time.Time) ([]rules.Silence, error) {
	// Kept on SQLite until a silence is saved or expired (cache.go): a read
	// for a later since filters the kept one, which holds every silence
	// that ended after the since it was read for.
	since = since.UTC()
	all, err := s.cache.silences.get(s.keeps(), since, func(kept time.Time) bool { return !since.Before(kept) },
		func() ([]rules.Silence, error) {
			var out []rules.Silence
			err := s.read(ctx, "silences", func(db *gorm.DB) error {
				var rows []silenceRow
				if err := db.Where("ends_at > ?", since).Order("starts_at, id").Find(&rows).Error; err != nil {
					return err
				}
				for _, r := range rows {
					sl := rules.Silence{ID: r.ID, StartsAt: r.StartsAt.UTC(), EndsAt: r.EndsAt.UTC(), CreatedBy: r.CreatedBy,
						Comment: r.Comment, CreatedAt: r.CreatedAt.UTC()}
					if err := json.Unmarshal([]byte(r.Matchers), &sl.Matchers); err != nil {
						return err
					}
					out = append(out, sl)
				}
				return nil
			})
			return out, err
		})
	if err != nil {
		return nil, err
	}
	return liveSilences(all, since), nil
}
