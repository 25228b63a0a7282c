package store

import (
	"time"

	"gorm.io/gorm"
)

// pagesByAt reads q's rows in (at, id) order, size at a time, handing each
// page to fn. The next page starts after the last row's (at, id), the order
// itself: paging by id alone (gorm's FindInBatches) while ordering by at
// skips or repeats rows whenever ids and times disagree, which they do for
// every observation pushed late or stored by a slower transaction.
func pagesByAt[T any](q *gorm.DB, size int, key func(*T) (time.Time, uint64), fn func([]T) error) error {
	var lastAt time.Time
	var lastID uint64
	for first := true; ; first = false {
		p := q.Session(&gorm.Session{})
		if !first {
			// (at, id) > (lastAt, lastID), with at's bound first so that an
			// index on at serves it on both backends.
			p = p.Where("at >= ? AND (at > ? OR id > ?)", lastAt, lastAt, lastID)
		}
		var rows []T
		if err := p.Order("at, id").Limit(size).Find(&rows).Error; err != nil {
			return err
		}
		if len(rows) == 0 {
			return nil
		}
		if err := fn(rows); err != nil {
			return err
		}
		if len(rows) < size {
			return nil
		}
		lastAt, lastID = key(&rows[len(rows)-1])
	}
}
