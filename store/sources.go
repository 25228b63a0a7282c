package store

import (
	"context"
	"sort"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// sourceTenantRow says that a source fed a tenant: a collector stored an
// observation of the tenant under the source's name. A tenant-scoped token
// sees the health of the sources that feed its tenants, and only those.
type sourceTenantRow struct {
	Source string `gorm:"primaryKey;size:128"`
	Tenant string `gorm:"primaryKey;size:128"`
}

func (sourceTenantRow) TableName() string { return "source_tenants" }

// NoteSourceTenants records which tenants sources fed (source name →
// tenants); pairs already known are kept as they are.
func (s *Store) NoteSourceTenants(ctx context.Context, fed map[string][]string) error {
	var rows []sourceTenantRow
	for src, tenants := range fed {
		for _, t := range tenants {
			rows = append(rows, sourceTenantRow{Source: src, Tenant: t})
		}
	}
	if len(rows) == 0 {
		return nil
	}
	return s.write(ctx, "note_source_tenants", func(tx *gorm.DB) error {
		return tx.Clauses(clause.OnConflict{DoNothing: true}).CreateInBatches(rows, maxBatch).Error
	})
}

// SourceTenants returns the tenants each source fed, sorted.
func (s *Store) SourceTenants(ctx context.Context) (map[string][]string, error) {
	out := map[string][]string{}
	err := s.read(ctx, "source_tenants", func(db *gorm.DB) error {
		var rows []sourceTenantRow
		if err := db.Find(&rows).Error; err != nil {
			return err
		}
		for _, r := range rows {
			out[r.Source] = append(out[r.Source], r.Tenant)
		}
		for k := range out {
			sort.Strings(out[k])
		}
		return nil
	})
	return out, err
}
