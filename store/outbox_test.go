package store

import (
	"context"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/etlhub/etlhub/model"
)

// A delivery error is cut to 1024 bytes on a character, never inside one:
// PostgreSQL refuses invalid UTF-8, and the API serves the text as JSON.
func TestOutboxErrorCutOnACharacter(t *testing.T) {
	for name, open := range backends {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			ctx := context.Background()
			at := time.Date(2026, 9, 1, 5, 0, 0, 0, time.UTC)
			a := model.Alert{ID: "a1", Fingerprint: "fp1", Rule: "stalled", Severity: "warning", Tenant: "t", Job: "j",
				State: model.AlertFiring, PendingSince: at, FiredAt: at, LastSeen: at}
			tr := model.Transition{At: at, Status: "firing", Alert: a}
			if err := s.SaveAlerts(ctx, []model.Alert{a}, []model.Transition{tr},
				[]Notification{{Receiver: "slack", Trans: tr}, {Receiver: "pd", Trans: tr}}); err != nil {
				t.Fatal(err)
			}
			due, err := s.DueOutbox(ctx, at, 10)
			if err != nil || len(due) != 2 {
				t.Fatalf("due = %v, %v", due, err)
			}
			// 1023 ASCII bytes then a 2-byte "é": a byte cut at 1024 splits it.
			retry := strings.Repeat("x", 1023) + "é tail"
			// Bytes that are not UTF-8 at all, from a receiver's answer.
			failed := "slack: \xff\xfe bad answer " + strings.Repeat("€", 400)
			if err := s.OutboxRetry(ctx, due[0].ID, at.Add(time.Minute), retry); err != nil {
				t.Fatalf("retry: %v", err)
			}
			if err := s.OutboxFailed(ctx, due[1].ID, failed); err != nil {
				t.Fatalf("failed: %v", err)
			}
			items, err := s.ListOutbox(ctx, "", 10)
			if err != nil {
				t.Fatal(err)
			}
			got := map[uint64]string{}
			for _, it := range items {
				got[it.ID] = it.LastError
			}
			for _, id := range []uint64{due[0].ID, due[1].ID} {
				e := got[id]
				if !utf8.ValidString(e) || len(e) > 1024 || len(e) < 1000 {
					t.Errorf("outbox %d: last_error is %d bytes, valid UTF-8 %v: %q", id, len(e), utf8.ValidString(e), e[max(0, len(e)-8):])
				}
			}
			if e := got[due[0].ID]; e != strings.Repeat("x", 1023) {
				t.Errorf("retry error not cut before the character: ends %q", e[len(e)-4:])
			}
			if e := got[due[1].ID]; !strings.HasPrefix(e, "slack: ") || !strings.Contains(e, "bad answer €") {
				t.Errorf("failed error lost its text: %q", e[:40])
			}
		})
	}
}
