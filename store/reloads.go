package store

import (
	"context"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// reloadRow is the cluster's config generation: a replica that reloads its
// config counts it up, and every other replica, seeing it change, reloads
// its own (app/reload.go). One row.
type reloadRow struct {
	ID         int       `gorm:"primaryKey;autoIncrement:false"`
	Generation int64     `gorm:"not null"`
	ByReplica  string    `gorm:"size:256;not null"`
	At         time.Time `gorm:"not null"`
}

func (reloadRow) TableName() string { return "etlhub_reloads" }

// ConfigReload is the last reload a replica announced.
type ConfigReload struct {
	Generation int64     // 0: none yet
	By         string    // the replica that reloaded
	At         time.Time // when
}

// AnnounceReload records that replica by reloaded its config at at, and
// returns the new generation.
func (s *Store) AnnounceReload(ctx context.Context, by string, at time.Time) (ConfigReload, error) {
	var out reloadRow
	err := s.write(ctx, "announce_reload", func(tx *gorm.DB) error {
		row := reloadRow{ID: 1, Generation: 1, ByReplica: by, At: at.UTC()}
		if err := tx.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "id"}}, DoUpdates: clause.Set{
			{Column: clause.Column{Name: "generation"}, Value: gorm.Expr("etlhub_reloads.generation + 1")},
			{Column: clause.Column{Name: "by_replica"}, Value: by},
			{Column: clause.Column{Name: "at"}, Value: at.UTC()},
		}}).Create(&row).Error; err != nil {
			return err
		}
		return tx.First(&out, 1).Error
	})
	return ConfigReload{Generation: out.Generation, By: out.ByReplica, At: out.At.UTC()}, err
}

// LastReload returns the last reload announced (Generation 0: none).
func (s *Store) LastReload(ctx context.Context) (ConfigReload, error) {
	var rows []reloadRow
	err := s.read(ctx, "last_reload", func(db *gorm.DB) error {
		return db.Where("id = ?", 1).Limit(1).Find(&rows).Error
	})
	if err != nil || len(rows) == 0 {
		return ConfigReload{}, err
	}
	return ConfigReload{Generation: rows[0].Generation, By: rows[0].ByReplica, At: rows[0].At.UTC()}, nil
}
