package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/etlhub/etlhub/model"
	"gorm.io/gorm"
)

// Outbox statuses.
const (
	// OutboxPending: waiting for delivery (or for a retry at next_at).
	OutboxPending = "pending"
	// OutboxDelivered: the receiver accepted it. Terminal.
	OutboxDelivered = "delivered"
	// OutboxFailed: the receiver refused it for good (a 4xx other than 429)
	// or retries ran out. Terminal; the reason is kept.
	OutboxFailed = "failed"
)

// OutboxItem is one notification to one receiver: a transition of an alert.
type OutboxItem struct {
	ID          uint64               `json:"id"`
	Fingerprint string               `json:"fingerprint"`
	Receiver    string               `json:"receiver"`
	Event       model.TransitionKind `json:"event"`
	Status      string               `json:"status"`
	Attempts    int                  `json:"attempts"`
	CreatedAt   time.Time            `json:"created_at"`
	NextAt      time.Time            `json:"next_at"`
	DeliveredAt *time.Time           `json:"delivered_at,omitempty"`
	LastError   string               `json:"last_error,omitempty"`
	Ref         string               `json:"ref,omitempty"` // the receiver's id for it (a Slack message ts)
	GroupKey    string               `json:"group_key,omitempty"`
	Alert       model.Alert          `json:"alert"`
}

type outboxRow struct {
	ID          uint64               `gorm:"primaryKey;autoIncrement"`
	Fingerprint string               `gorm:"size:512;not null;index:ix_outbox_fp,priority:1"`
	Receiver    string               `gorm:"size:128;not null;index:ix_outbox_fp,priority:2"`
	Event       model.TransitionKind `gorm:"size:16;not null"`
	Status      string               `gorm:"size:16;not null;index:ix_outbox_due,priority:1"`
	Attempts    int                  `gorm:"not null"`
	CreatedAt   time.Time            `gorm:"not null"`
	NextAt      time.Time            `gorm:"not null;index:ix_outbox_due,priority:2"`
	DeliveredAt *time.Time
	LastError   string `gorm:"size:1024;not null"`
	Ref         string `gorm:"size:256;not null"`
	GroupKey    string `gorm:"size:512;not null;index"`
	Body        string `gorm:"type:text;not null"`
}

func (outboxRow) TableName() string { return "outbox" }

func (r *outboxRow) item() (OutboxItem, error) {
	it := OutboxItem{ID: r.ID, Fingerprint: r.Fingerprint, Receiver: r.Receiver, Event: r.Event, Status: r.Status,
		Attempts: r.Attempts, CreatedAt: r.CreatedAt.UTC(), NextAt: r.NextAt.UTC(), DeliveredAt: utc(r.DeliveredAt),
		LastError: r.LastError, Ref: r.Ref, GroupKey: r.GroupKey}
	if err := json.Unmarshal([]byte(r.Body), &it.Alert); err != nil {
		return it, fmt.Errorf("outbox %d: %w", r.ID, err)
	}
	return it, nil
}

// Notification asks SaveAlerts to queue a transition for a receiver.
type Notification struct {
	Receiver string
	Trans    model.Transition
	GroupKey string        // grouped with other alerts of this key
	Wait     time.Duration // hold it this long (group_wait) before it is due
}

func outboxRows(ns []Notification) ([]outboxRow, error) {
	out := make([]outboxRow, 0, len(ns))
	for _, n := range ns {
		b, err := json.Marshal(n.Trans.Alert)
		if err != nil {
			return nil, err
		}
		at := n.Trans.At.UTC()
		out = append(out, outboxRow{Fingerprint: n.Trans.Alert.Fingerprint, Receiver: n.Receiver, Event: n.Trans.Status,
			Status: OutboxPending, CreatedAt: at, NextAt: at.Add(n.Wait), GroupKey: n.GroupKey, Body: string(b)})
	}
	return out, nil
}

// DueOutbox returns pending notifications due at now, oldest first, each the
// oldest pending one of its fingerprint and receiver (so a resolve never goes
// before its trigger).
func (s *Store) DueOutbox(ctx context.Context, now time.Time, limit int) ([]OutboxItem, error) {
	return s.outboxItems(ctx, "outbox_due", func(db *gorm.DB) *gorm.DB {
		return db.Where("status = ? AND next_at <= ?", OutboxPending, now.UTC()).
			Where("NOT EXISTS (SELECT 1 FROM outbox o2 WHERE o2.fingerprint = outbox.fingerprint AND o2.receiver = outbox.receiver AND o2.status = ? AND o2.id < outbox.id)", OutboxPending).
			Order("id").Limit(limit)
	})
}

// outboxItems runs a query on the outbox and decodes its rows.
func (s *Store) outboxItems(ctx context.Context, op string, query func(*gorm.DB) *gorm.DB) ([]OutboxItem, error) {
	var out []OutboxItem
	err := s.read(ctx, op, func(db *gorm.DB) error {
		var rows []outboxRow
		if err := query(db).Find(&rows).Error; err != nil {
			return err
		}
		for i := range rows {
			it, err := rows[i].item()
			if err != nil {
				return err
			}
			out = append(out, it)
		}
		return nil
	})
	return out, err
}

// OutboxDelivered marks a notification delivered, with the receiver's ref.
func (s *Store) OutboxDelivered(ctx context.Context, id uint64, at time.Time, ref string) error {
	t := at.UTC()
	return s.fencedWrite(ctx, "outbox_delivered", func(tx *gorm.DB) error {
		return tx.Model(&outboxRow{}).Where("id = ?", id).
			Updates(map[string]any{"status": OutboxDelivered, "delivered_at": &t, "ref": ref, "attempts": gorm.Expr("attempts + 1")}).Error
	})
}

// OutboxRetry records a failed attempt to be tried again at next.
func (s *Store) OutboxRetry(ctx context.Context, id uint64, next time.Time, reason string) error {
	return s.fencedWrite(ctx, "outbox_retry", func(tx *gorm.DB) error {
		return tx.Model(&outboxRow{}).Where("id = ?", id).
			Updates(map[string]any{"next_at": next.UTC(), "last_error": clip(reason, 1024), "attempts": gorm.Expr("attempts + 1")}).Error
	})
}

// OutboxFailed gives up on a notification with the reason.
func (s *Store) OutboxFailed(ctx context.Context, id uint64, reason string) error {
	return s.fencedWrite(ctx, "outbox_failed", func(tx *gorm.DB) error {
		return tx.Model(&outboxRow{}).Where("id = ?", id).
			Updates(map[string]any{"status": OutboxFailed, "last_error": clip(reason, 1024), "attempts": gorm.Expr("attempts + 1")}).Error
	})
}

// OutboxRef is the receiver's ref of the last delivered firing of a
// fingerprint (the Slack message to update), or "".
func (s *Store) OutboxRef(ctx context.Context, fingerprint, receiver string) (string, error) {
	var rows []outboxRow
	err := s.read(ctx, "outbox_ref", func(db *gorm.DB) error {
		return db.Where("fingerprint = ? AND receiver = ? AND event = ? AND status = ?", fingerprint, receiver, model.TransitionFiring, OutboxDelivered).
			Order("id DESC").Limit(1).Find(&rows).Error
	})
	if err != nil || len(rows) == 0 {
		return "", err
	}
	return rows[0].Ref, nil
}

// ListOutbox lists notifications, newest first, optionally of one status.
func (s *Store) ListOutbox(ctx context.Context, status string, limit int) ([]OutboxItem, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	return s.outboxItems(ctx, "outbox_list", func(db *gorm.DB) *gorm.DB {
		q := db.Order("id DESC").Limit(limit)
		if status != "" {
			q = q.Where("status = ?", status)
		}
		return q
	})
}

// clip cuts an error text to at most n bytes on a character boundary, with
// bytes that are not UTF-8 replaced: PostgreSQL refuses invalid UTF-8.
func clip(s string, n int) string {
	return model.Clip(strings.ToValidUTF8(s, "\uFFFD"), n)
}

// PendingGroup returns the pending notifications of a group for a receiver
// and event, oldest first.
func (s *Store) PendingGroup(ctx context.Context, receiver, groupKey string, event model.TransitionKind) ([]OutboxItem, error) {
	return s.outboxItems(ctx, "outbox_group", func(db *gorm.DB) *gorm.DB {
		return db.Where("receiver = ? AND group_key = ? AND event = ? AND status = ?", receiver, groupKey, event, OutboxPending).
			Order("id").Limit(1000)
	})
}

// FiringMatching counts firing alerts whose labels equal these (rule, tenant,
// job, severity); a group resolves when none is left.
func (s *Store) FiringMatching(ctx context.Context, labels map[string]string) (int64, error) {
	var n int64
	err := s.read(ctx, "firing_matching", func(db *gorm.DB) error {
		q := db.Model(&alertRow{}).Where("state = ?", model.AlertFiring)
		for _, l := range []string{"rule", "tenant", "job", "severity"} {
			if v, ok := labels[l]; ok {
				q = q.Where(l+" = ?", v)
			}
		}
		return q.Count(&n).Error
	})
	return n, err
}
